# The invitation page (GET /invite on the gateway). Placeholders ($name)
# are filled in by the page: keep them, never translate them. `WowChat`
# is the product's name.

page-title = Acepte su invitación · WowChat
brand = WowChat
noscript = Esta página necesita JavaScript para aceptar su invitación. Active JavaScript para este sitio y vuelva a abrir el enlace del correo.
loading = Comprobando su invitación…
invite-heading = Únase a { $workspace } en WowChat
invite-from = { $inviter } le invita a unirse a { $workspace }.
invite-from_unknown = Tiene una invitación para unirse a { $workspace }.
invite-email = Su correo electrónico
invite-role = Su rol
invite-expires = Invitación válida hasta
form-heading = Cree su cuenta
form-display_name-label = Su nombre
form-display_name-hint = Así le verán sus compañeros: de 1 a 100 caracteres.
form-password-label = Elija una contraseña
form-password-hint = De 8 a 128 caracteres. Unas cuantas palabras sin relación entre sí forman una contraseña larga, fácil de recordar y difícil de adivinar.
form-submit = Aceptar y crear mi cuenta
form-submitting = Creando su cuenta…
field-display_name = Escriba su nombre: de 1 a 100 caracteres.
field-password = Elija una contraseña de 8 a 128 caracteres.
field-summary = Corrija el campo marcado a continuación.
success-heading = ¡Le damos la bienvenida a { $workspace }!
success-body = Su cuenta está lista. Abra WowChat e inicie sesión como { $email } con la contraseña que acaba de elegir.
success-status = Su cuenta está lista.
action-open_app = Abrir WowChat
action-sign_in = Iniciar sesión en WowChat
action-try_again = Volver a intentarlo
error-INVITATION_NOT_FOUND-heading = Este enlace de invitación no funciona
error-INVITATION_NOT_FOUND-body = Es posible que el enlace esté incompleto. Vuelva a abrirlo desde el correo de invitación o copie el enlace completo en la barra de direcciones. Si sigue sin funcionar, pida una nueva invitación a la persona que le invitó.
error-INVITATION_EXPIRED-heading = Esta invitación expiró
error-INVITATION_EXPIRED-body = Las invitaciones son válidas durante un tiempo limitado. Pida a la persona que le invitó que le envíe una nueva.
error-INVITATION_REVOKED-heading = Esta invitación fue retirada
error-INVITATION_REVOKED-body = Ya no se puede usar. Si todavía necesita acceso, consulte a la persona que le invitó.
error-INVITATION_ALREADY_ACCEPTED-heading = Esta invitación ya fue aceptada
error-INVITATION_ALREADY_ACCEPTED-body = Su cuenta ya existe: inicie sesión con el correo y la contraseña que eligió al aceptar la invitación.
error-USER_ALREADY_MEMBER-heading = Ya es miembro
error-USER_ALREADY_MEMBER-body = Ya existe una cuenta con este correo en el espacio de trabajo: inicie sesión.
error-INVITER_NOT_AUTHORIZED-heading = Esta invitación ya no se puede usar
error-INVITER_NOT_AUTHORIZED-body = La persona que le invitó ya no puede agregar miembros a este espacio de trabajo. Pida a otro administrador del espacio de trabajo que le invite.
error-SEAT_LIMIT_REACHED-heading = El espacio de trabajo está completo
error-SEAT_LIMIT_REACHED-body = Todos sus puestos están ocupados. Pida a un administrador del espacio de trabajo que libere un puesto o agregue más y, luego, vuelva a abrir el enlace.
error-USER_ACCESS_EXPIRED-heading = El acceso que otorga esta invitación terminó
error-USER_ACCESS_EXPIRED-body = Pida una nueva invitación a la persona que le invitó.
error-INVITATION_ATTEMPTS_EXCEEDED-heading = Demasiados intentos
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-INVITATION_ATTEMPTS_EXCEEDED-body = Se intentó usar esta invitación demasiadas veces en poco tiempo. Espere { $wait } y vuelva a intentarlo.
error-busy-heading = WowChat está saturado
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-busy-body = Espere { $wait } y vuelva a intentarlo.
error-busy-body_no_wait = Espere un momento y vuelva a intentarlo.
error-unexpected-heading = Algo salió mal
error-unexpected-body = No se pudo comprobar ni aceptar su invitación en este momento. Vuelva a intentarlo en unos instantes; si el problema continúa, consulte a la persona que le invitó.
error-offline-heading = No se puede conectar con WowChat
error-offline-body = Compruebe su conexión a internet y vuelva a intentarlo.

# The built-in roles' names (a workspace's own roles show as it named them).
role-name-owner = propietario
role-name-admin = administrador
role-name-supervisor = supervisor
role-name-agent = agente
