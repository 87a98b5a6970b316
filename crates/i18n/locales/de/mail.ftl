# The emails WowChat sends. Placeholders ($name) are names and links as
# people typed them or the service made them: keep them, never translate
# them. `WowChat` is the product's name: keep it as it is.

## Words for what a command left empty

fallback-inviter = Ein Teammitglied
fallback-workspace = einem Arbeitsbereich
fallback-your-workspace = Ihrem Arbeitsbereich
fallback-greeting-name = und guten Tag
fallback-someone = Eine Person

## Roles, as they end a sentence ("… invited you to join Acme on WowChat as an admin.")
# $role: the role's name (role-name-… below, or a name the workspace gave a
# role of its own), shown in bold in the HTML email.

role-owner = als { $role }
role-admin = als { $role }
role-supervisor = als { $role }
role-agent = als { $role }
role-custom = mit der Rolle „{ $role }“
role-name-owner = Inhaber
role-name-admin = Administrator
role-name-supervisor = Supervisor
role-name-agent = Agent

## The invitation email

invitation-subject = { $inviter } hat Sie zu { $workspace } auf WowChat eingeladen
invitation-heading = Treten Sie { $workspace } auf WowChat bei
# $inviter: a name, with the email address in brackets when it differs.
invitation-invited = { $inviter } hat Sie eingeladen, { $workspace } auf WowChat beizutreten.
# $role: one of the role phrases above.
invitation-invited-as = { $inviter } hat Sie eingeladen, { $workspace } auf WowChat { $role } beizutreten.
invitation-accept-button = Einladung annehmen
invitation-accept-text = Nehmen Sie die Einladung an:
invitation-message-intro = { $inviter } hat eine Nachricht hinzugefügt:
invitation-message-note = { $inviter } hat diese Nachricht geschrieben, nicht WowChat.
link-fallback = Falls die Schaltfläche nicht funktioniert, öffnen Sie diesen Link:
# $expires: a date and time, written for this language; the time is UTC.
invitation-expires = Die Einladung läuft am { $expires } (UTC) ab.
invitation-footer = Sie erhalten diese E-Mail, weil { $inviter } { $invitee } zu { $workspace } auf WowChat eingeladen hat. Falls Sie sie nicht erwartet haben, können Sie sie ignorieren: Ohne Ihre Zustimmung passiert nichts.
invitation-footer-reply = Fragen? { $inviter } erreichen Sie, indem Sie auf diese E-Mail antworten.
unsubscribe-link = Keine WowChat-Einladungen mehr erhalten
unsubscribe-scope = (aus keinem Arbeitsbereich)
unsubscribe-text = Keine WowChat-Einladungen mehr erhalten (aus keinem Arbeitsbereich):

## The accepted notice (to the one who invited)

accepted-subject = { $user } hat Ihre Einladung zu { $workspace } angenommen
accepted-heading = Ihre Einladung wurde angenommen
accepted-greeting = Hallo { $inviter },
# $user: a name, with the email address in brackets when it differs.
accepted-joined = { $user } hat Ihre Einladung angenommen und ist { $workspace } auf WowChat beigetreten.
accepted-joined-as = { $user } hat Ihre Einladung angenommen und ist { $workspace } auf WowChat { $role } beigetreten.
accepted-member-button = Neues Mitglied ansehen
accepted-member-text = Das neue Mitglied ansehen:
accepted-everyone = Alle Mitglieder von { $workspace }:
accepted-footer = Sie erhalten diese E-Mail, weil Sie { $user } zu { $workspace } auf WowChat eingeladen haben.

## The join request confirmation

confirmation-subject = Bestätigen Sie Ihre Anfrage, { $workspace } auf WowChat beizutreten
confirmation-heading = Bestätigen Sie Ihre Anfrage, { $workspace } beizutreten
# $requester: a name, with the email address in brackets when it differs.
confirmation-asked = Jemand, wahrscheinlich Sie, hat als { $requester } darum gebeten, { $workspace } auf WowChat beizutreten.
confirmation-why = Bestätigen Sie die Anfrage, damit die Administratoren von { $workspace } sie sehen.
confirmation-why-text = Bestätigen Sie die Anfrage, damit die Administratoren von { $workspace } sie sehen:
confirmation-button = Anfrage bestätigen
confirmation-next = Die Administratoren entscheiden, ob Sie eingeladen werden. Falls ja, erhalten Sie eine Einladung per E-Mail.
confirmation-expires = Der Link ist bis { $expires } (UTC) gültig.
confirmation-footer = Sie erhalten diese E-Mail, weil bei einer Anfrage zum Beitritt zu { $workspace } auf WowChat { $requester } angegeben wurde. Falls Sie das nicht waren, ignorieren Sie diese E-Mail einfach: Solange die Anfrage nicht bestätigt wird, passiert nichts.
