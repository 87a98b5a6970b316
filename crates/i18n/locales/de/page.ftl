# The invitation page (GET /invite on the gateway). Placeholders ($name)
# are filled in by the page: keep them, never translate them. `WowChat`
# is the product's name.

page-title = Einladung annehmen · WowChat
brand = WowChat
noscript = Diese Seite benötigt JavaScript, um Ihre Einladung anzunehmen. Aktivieren Sie JavaScript für diese Website und öffnen Sie den Link aus der E-Mail erneut.
loading = Ihre Einladung wird geprüft…
invite-heading = Treten Sie { $workspace } auf WowChat bei
invite-from = { $inviter } hat Sie eingeladen, { $workspace } beizutreten.
invite-from_unknown = Sie wurden eingeladen, { $workspace } beizutreten.
invite-email = Ihre E-Mail-Adresse
invite-role = Ihre Rolle
invite-expires = Einladung gültig bis
form-heading = Erstellen Sie Ihr Konto
form-display_name-label = Ihr Name
form-display_name-hint = So sehen Ihre Kolleginnen und Kollegen Sie: 1 bis 100 Zeichen.
form-password-label = Passwort wählen
form-password-hint = 8 bis 128 Zeichen. Einige zusammenhanglose Wörter ergeben ein Passwort, das lang, leicht zu merken und schwer zu erraten ist.
form-submit = Annehmen und Konto erstellen
form-submitting = Ihr Konto wird erstellt…
field-display_name = Geben Sie Ihren Namen ein: 1 bis 100 Zeichen.
field-password = Wählen Sie ein Passwort mit 8 bis 128 Zeichen.
field-summary = Bitte korrigieren Sie das unten markierte Feld.
success-heading = Willkommen bei { $workspace }!
success-body = Ihr Konto ist bereit. Öffnen Sie WowChat und melden Sie sich als { $email } mit dem Passwort an, das Sie gerade gewählt haben.
success-status = Ihr Konto ist bereit.
action-open_app = WowChat öffnen
action-sign_in = Bei WowChat anmelden
action-try_again = Erneut versuchen
error-INVITATION_NOT_FOUND-heading = Dieser Einladungslink funktioniert nicht
error-INVITATION_NOT_FOUND-body = Der Link ist möglicherweise unvollständig. Öffnen Sie ihn erneut aus der Einladungs-E-Mail oder kopieren Sie den vollständigen Link in die Adressleiste. Falls er weiterhin nicht funktioniert, bitten Sie die Person, die Sie eingeladen hat, um eine neue Einladung.
error-INVITATION_EXPIRED-heading = Diese Einladung ist abgelaufen
error-INVITATION_EXPIRED-body = Einladungen sind nur begrenzte Zeit gültig. Bitten Sie die Person, die Sie eingeladen hat, Ihnen eine neue zu senden.
error-INVITATION_REVOKED-heading = Diese Einladung wurde zurückgezogen
error-INVITATION_REVOKED-body = Sie kann nicht mehr verwendet werden. Falls Sie weiterhin Zugriff benötigen, wenden Sie sich an die Person, die Sie eingeladen hat.
error-INVITATION_ALREADY_ACCEPTED-heading = Diese Einladung wurde bereits angenommen
error-INVITATION_ALREADY_ACCEPTED-body = Ihr Konto existiert bereits: Melden Sie sich stattdessen mit der E-Mail-Adresse und dem Passwort an, die Sie beim Annehmen gewählt haben.
error-USER_ALREADY_MEMBER-heading = Sie sind bereits Mitglied
error-USER_ALREADY_MEMBER-body = Im Arbeitsbereich gibt es bereits ein Konto mit dieser E-Mail-Adresse: Melden Sie sich stattdessen an.
error-INVITER_NOT_AUTHORIZED-heading = Diese Einladung kann nicht mehr verwendet werden
error-INVITER_NOT_AUTHORIZED-body = Die Person, die Sie eingeladen hat, kann diesem Arbeitsbereich keine Mitglieder mehr hinzufügen. Bitten Sie einen anderen Administrator des Arbeitsbereichs, Sie einzuladen.
error-SEAT_LIMIT_REACHED-heading = Der Arbeitsbereich ist voll
error-SEAT_LIMIT_REACHED-body = Alle Plätze sind belegt. Bitten Sie einen Administrator des Arbeitsbereichs, einen Platz freizugeben oder weitere Plätze hinzuzufügen, und öffnen Sie den Link dann erneut.
error-USER_ACCESS_EXPIRED-heading = Der Zugriff über diese Einladung ist abgelaufen
error-USER_ACCESS_EXPIRED-body = Bitten Sie die Person, die Sie eingeladen hat, um eine neue Einladung.
error-INVITATION_ATTEMPTS_EXCEEDED-heading = Zu viele Versuche
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-INVITATION_ATTEMPTS_EXCEEDED-body = Mit dieser Einladung gab es in kurzer Zeit zu viele Versuche. Warten Sie { $wait } und versuchen Sie es dann erneut.
error-busy-heading = WowChat ist ausgelastet
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-busy-body = Warten Sie { $wait } und versuchen Sie es dann erneut.
error-busy-body_no_wait = Warten Sie einen Moment und versuchen Sie es dann erneut.
error-unexpected-heading = Etwas ist schiefgelaufen
error-unexpected-body = Ihre Einladung konnte gerade nicht geprüft oder angenommen werden. Versuchen Sie es gleich noch einmal. Falls es weiterhin nicht klappt, wenden Sie sich an die Person, die Sie eingeladen hat.
error-offline-heading = WowChat ist nicht erreichbar
error-offline-body = Prüfen Sie Ihre Internetverbindung und versuchen Sie es dann erneut.

# The built-in roles' names (a workspace's own roles show as it named them).
role-name-owner = Inhaber
role-name-admin = Administrator
role-name-supervisor = Supervisor
role-name-agent = Agent
