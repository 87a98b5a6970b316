# The invitation page (GET /invite on the gateway). Placeholders ($name)
# are filled in by the page: keep them, never translate them. `WowChat`
# is the product's name.

page-title = Acceptez votre invitation · WowChat
brand = WowChat
noscript = Cette page a besoin de JavaScript pour accepter votre invitation. Activez JavaScript pour ce site, puis rouvrez le lien de l’e-mail.
loading = Vérification de votre invitation…
invite-heading = Rejoignez { $workspace } sur WowChat
invite-from = { $inviter } vous invite à rejoindre { $workspace }.
invite-from_unknown = Vous avez reçu une invitation à rejoindre { $workspace }.
invite-email = Votre adresse e-mail
invite-role = Votre rôle
invite-expires = Invitation valable jusqu’au
form-heading = Créez votre compte
form-display_name-label = Votre nom
form-display_name-hint = Le nom que verront vos collègues : de 1 à 100 caractères.
form-password-label = Choisissez un mot de passe
form-password-hint = De 8 à 128 caractères. Quelques mots sans rapport entre eux donnent un mot de passe long, facile à retenir et difficile à deviner.
form-submit = Accepter et créer mon compte
form-submitting = Création de votre compte…
field-display_name = Saisissez votre nom : de 1 à 100 caractères.
field-password = Choisissez un mot de passe de 8 à 128 caractères.
field-summary = Veuillez corriger le champ signalé ci-dessous.
success-heading = Bienvenue dans { $workspace } !
success-body = Votre compte est prêt. Ouvrez WowChat et connectez-vous en tant que { $email } avec le mot de passe que vous venez de choisir.
success-status = Votre compte est prêt.
action-open_app = Ouvrir WowChat
action-sign_in = Se connecter à WowChat
action-try_again = Réessayer
error-INVITATION_NOT_FOUND-heading = Ce lien d’invitation ne fonctionne pas
error-INVITATION_NOT_FOUND-body = Le lien est peut-être incomplet. Rouvrez-le depuis l’e-mail d’invitation ou copiez le lien entier dans la barre d’adresse. S’il ne fonctionne toujours pas, demandez une nouvelle invitation à la personne qui vous l’a envoyée.
error-INVITATION_EXPIRED-heading = Cette invitation a expiré
error-INVITATION_EXPIRED-body = Les invitations sont valables pendant une durée limitée. Demandez à la personne qui vous a invité de vous en envoyer une nouvelle.
error-INVITATION_REVOKED-heading = Cette invitation a été retirée
error-INVITATION_REVOKED-body = Elle ne peut plus être utilisée. Si vous avez toujours besoin d’un accès, contactez la personne qui vous l’a envoyée.
error-INVITATION_ALREADY_ACCEPTED-heading = Cette invitation a déjà été acceptée
error-INVITATION_ALREADY_ACCEPTED-body = Votre compte existe déjà : connectez-vous plutôt avec l’adresse e-mail et le mot de passe choisis lors de l’acceptation.
error-USER_ALREADY_MEMBER-heading = Vous êtes déjà membre
error-USER_ALREADY_MEMBER-body = Un compte avec cette adresse e-mail existe déjà dans l’espace de travail : connectez-vous plutôt.
error-INVITER_NOT_AUTHORIZED-heading = Cette invitation ne peut plus être utilisée
error-INVITER_NOT_AUTHORIZED-body = La personne qui vous a invité ne peut plus ajouter de membres à cet espace de travail. Demandez à un autre administrateur de l’espace de travail de vous inviter.
error-SEAT_LIMIT_REACHED-heading = L’espace de travail est complet
error-SEAT_LIMIT_REACHED-body = Toutes ses places sont occupées. Demandez à un administrateur de l’espace de travail de libérer une place ou d’en ajouter, puis rouvrez le lien.
error-USER_ACCESS_EXPIRED-heading = L’accès accordé par cette invitation a pris fin
error-USER_ACCESS_EXPIRED-body = Demandez une nouvelle invitation à la personne qui vous a invité.
error-INVITATION_ATTEMPTS_EXCEEDED-heading = Trop de tentatives
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-INVITATION_ATTEMPTS_EXCEEDED-body = Cette invitation a fait l’objet de trop de tentatives en peu de temps. Attendez { $wait }, puis réessayez.
error-busy-heading = WowChat est surchargé
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-busy-body = Attendez { $wait }, puis réessayez.
error-busy-body_no_wait = Attendez un instant, puis réessayez.
error-unexpected-heading = Un problème est survenu
error-unexpected-body = Impossible de vérifier ou d’accepter votre invitation pour le moment. Réessayez dans un instant ; si le problème persiste, contactez la personne qui vous a invité.
error-offline-heading = Impossible de joindre WowChat
error-offline-body = Vérifiez votre connexion Internet, puis réessayez.

# The built-in roles' names (a workspace's own roles show as it named them).
role-name-owner = propriétaire
role-name-admin = administrateur
role-name-supervisor = superviseur
role-name-agent = agent
