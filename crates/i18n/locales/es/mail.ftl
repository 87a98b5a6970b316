# The emails WowChat sends. Placeholders ($name) are names and links as
# people typed them or the service made them: keep them, never translate
# them. `WowChat` is the product's name: keep it as it is.

## Words for what a command left empty

fallback-inviter = Un miembro del equipo
fallback-workspace = un espacio de trabajo
fallback-your-workspace = su espacio de trabajo
fallback-greeting-name = qué tal
fallback-someone = Alguien

## Roles, as they end a sentence ("… invited you to join Acme on WowChat as an admin.")
# $role: the role's name (role-name-… below, or a name the workspace gave a
# role of its own), shown in bold in the HTML email.

role-owner = como { $role }
role-admin = como { $role }
role-supervisor = como { $role }
role-agent = como { $role }
role-custom = con el rol «{ $role }»
role-name-owner = propietario
role-name-admin = administrador
role-name-supervisor = supervisor
role-name-agent = agente

## The invitation email

invitation-subject = { $inviter } le invita a { $workspace } en WowChat
invitation-heading = Únase a { $workspace } en WowChat
# $inviter: a name, with the email address in brackets when it differs.
invitation-invited = { $inviter } le invita a unirse a { $workspace } en WowChat.
# $role: one of the role phrases above.
invitation-invited-as = { $inviter } le invita a unirse a { $workspace } en WowChat { $role }.
invitation-accept-button = Aceptar la invitación
invitation-accept-text = Acepte la invitación:
invitation-message-intro = { $inviter } incluyó un mensaje:
invitation-message-note = Este mensaje lo escribió { $inviter }, no WowChat.
link-fallback = Si el botón no funciona, abra este enlace:
# $expires: a date and time, written for this language; the time is UTC.
invitation-expires = La invitación expira el { $expires } (UTC).
invitation-footer = Recibe este correo porque { $inviter } invitó a { $invitee } a unirse a { $workspace } en WowChat. Si no lo esperaba, puede ignorarlo: no pasará nada a menos que acepte.
invitation-footer-reply = ¿Tiene preguntas? Responda a este correo para comunicarse con { $inviter }.
unsubscribe-link = No quiero recibir invitaciones de WowChat
unsubscribe-scope = (de ningún espacio de trabajo)
unsubscribe-text = No quiero recibir invitaciones de WowChat (de ningún espacio de trabajo):

## The accepted notice (to the one who invited)

accepted-subject = { $user } aceptó su invitación a { $workspace }
accepted-heading = Su invitación fue aceptada
accepted-greeting = ¡Hola, { $inviter }!
# $user: a name, with the email address in brackets when it differs.
accepted-joined = { $user } aceptó su invitación y se unió a { $workspace } en WowChat.
accepted-joined-as = { $user } aceptó su invitación y se unió a { $workspace } en WowChat { $role }.
accepted-member-button = Ver al nuevo miembro
accepted-member-text = Ver al nuevo miembro:
accepted-everyone = Todos los miembros de { $workspace }:
accepted-footer = Recibe este correo porque invitó a { $user } a unirse a { $workspace } en WowChat.

## The join request confirmation

confirmation-subject = Confirme su solicitud para unirse a { $workspace } en WowChat
confirmation-heading = Confirme su solicitud para unirse a { $workspace }
# $requester: a name, with the email address in brackets when it differs.
confirmation-asked = Alguien, probablemente usted, solicitó unirse a { $workspace } en WowChat como { $requester }.
confirmation-why = Confirme la solicitud para que los administradores de { $workspace } puedan verla.
confirmation-why-text = Confirme la solicitud para que los administradores de { $workspace } puedan verla:
confirmation-button = Confirmar la solicitud
confirmation-next = Los administradores deciden si le envían una invitación; en ese caso, la recibirá por correo electrónico.
confirmation-expires = El enlace es válido hasta el { $expires } (UTC).
confirmation-footer = Recibe este correo porque alguien indicó { $requester } en una solicitud para unirse a { $workspace } en WowChat. Si no fue usted, ignore este correo: no pasará nada a menos que se confirme la solicitud.
