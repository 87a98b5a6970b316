# The emails WowChat sends. Placeholders ($name) are names and links as
# people typed them or the service made them: keep them, never translate
# them. `WowChat` is the product's name: keep it as it is.

## Words for what a command left empty

fallback-inviter = Un membre de l’équipe
fallback-workspace = un espace de travail
fallback-your-workspace = votre espace de travail
fallback-greeting-name = à vous
fallback-someone = Quelqu’un

## Roles, as they end a sentence ("… invited you to join Acme on WowChat as an admin.")
# $role: the role's name (role-name-… below, or a name the workspace gave a
# role of its own), shown in bold in the HTML email.

role-owner = en tant que { $role }
role-admin = en tant qu’{ $role }
role-supervisor = en tant que { $role }
role-agent = en tant qu’{ $role }
role-custom = avec le rôle « { $role } »
role-name-owner = propriétaire
role-name-admin = administrateur
role-name-supervisor = superviseur
role-name-agent = agent

## The invitation email

invitation-subject = { $inviter } vous invite à rejoindre { $workspace } sur WowChat
invitation-heading = Rejoignez { $workspace } sur WowChat
# $inviter: a name, with the email address in brackets when it differs.
invitation-invited = { $inviter } vous invite à rejoindre { $workspace } sur WowChat.
# $role: one of the role phrases above.
invitation-invited-as = { $inviter } vous invite à rejoindre { $workspace } sur WowChat { $role }.
invitation-accept-button = Accepter l’invitation
invitation-accept-text = Acceptez l’invitation :
invitation-message-intro = { $inviter } a ajouté un message :
invitation-message-note = Ce message a été écrit par { $inviter }, et non par WowChat.
link-fallback = Si le bouton ne fonctionne pas, ouvrez ce lien :
# $expires: a date and time, written for this language; the time is UTC.
invitation-expires = L’invitation expire le { $expires } (UTC).
invitation-footer = Vous recevez cet e-mail car { $inviter } a invité { $invitee } à rejoindre { $workspace } sur WowChat. Si vous ne vous y attendiez pas, vous pouvez l’ignorer : rien ne se passe tant que vous n’acceptez pas.
invitation-footer-reply = Des questions ? Répondez à cet e-mail pour contacter { $inviter }.
unsubscribe-link = Ne plus recevoir d’invitations WowChat
unsubscribe-scope = (d’aucun espace de travail)
unsubscribe-text = Ne plus recevoir d’invitations WowChat (d’aucun espace de travail) :

## The accepted notice (to the one who invited)

accepted-subject = { $user } a accepté votre invitation à rejoindre { $workspace }
accepted-heading = Votre invitation a été acceptée
accepted-greeting = Bonjour { $inviter },
# $user: a name, with the email address in brackets when it differs.
accepted-joined = { $user } a accepté votre invitation et a rejoint { $workspace } sur WowChat.
accepted-joined-as = { $user } a accepté votre invitation et a rejoint { $workspace } sur WowChat { $role }.
accepted-member-button = Voir le nouveau membre
accepted-member-text = Voir le nouveau membre :
accepted-everyone = Tous les membres de { $workspace } :
accepted-footer = Vous recevez cet e-mail car vous avez invité { $user } à rejoindre { $workspace } sur WowChat.

## The join request confirmation

confirmation-subject = Confirmez votre demande pour rejoindre { $workspace } sur WowChat
confirmation-heading = Confirmez votre demande pour rejoindre { $workspace }
# $requester: a name, with the email address in brackets when it differs.
confirmation-asked = Quelqu’un, probablement vous, a demandé à rejoindre { $workspace } sur WowChat sous le nom { $requester }.
confirmation-why = Confirmez la demande pour que les administrateurs la voient dans { $workspace }.
confirmation-why-text = Confirmez la demande pour que les administrateurs la voient dans { $workspace } :
confirmation-button = Confirmer la demande
confirmation-next = Ils décideront ensuite de vous inviter ou non ; si c’est le cas, vous recevrez un e-mail d’invitation.
confirmation-expires = Le lien est valable jusqu’au { $expires } (UTC).
confirmation-footer = Vous recevez cet e-mail car { $requester } figurait dans une demande pour rejoindre { $workspace } sur WowChat. Si ce n’était pas vous, ignorez simplement cet e-mail : rien ne se passe tant que la demande n’est pas confirmée.
