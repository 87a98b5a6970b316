# The emails WowChat sends. Placeholders ($name) are names and links as
# people typed them or the service made them: keep them, never translate
# them. `WowChat` is the product's name: keep it as it is.

## Words for what a command left empty

fallback-inviter = Um membro da equipe
fallback-workspace = um espaço de trabalho
fallback-your-workspace = seu espaço de trabalho
fallback-greeting-name = tudo bem
fallback-someone = Alguém

## Roles, as they end a sentence ("… invited you to join Acme on WowChat as an admin.")
# $role: the role's name (role-name-… below, or a name the workspace gave a
# role of its own), shown in bold in the HTML email.

role-owner = como { $role }
role-admin = como { $role }
role-supervisor = como { $role }
role-agent = como { $role }
role-custom = com a função “{ $role }”
role-name-owner = proprietário
role-name-admin = administrador
role-name-supervisor = supervisor
role-name-agent = agente

## The invitation email

invitation-subject = { $inviter } convidou você para { $workspace } no WowChat
invitation-heading = Participe de { $workspace } no WowChat
# $inviter: a name, with the email address in brackets when it differs.
invitation-invited = { $inviter } convidou você para participar de { $workspace } no WowChat.
# $role: one of the role phrases above.
invitation-invited-as = { $inviter } convidou você para participar de { $workspace } no WowChat { $role }.
invitation-accept-button = Aceitar o convite
invitation-accept-text = Aceite o convite:
invitation-message-intro = { $inviter } adicionou uma mensagem:
invitation-message-note = Esta mensagem foi escrita por { $inviter }, não pelo WowChat.
link-fallback = Se o botão não funcionar, abra este link:
# $expires: a date and time, written for this language; the time is UTC.
invitation-expires = O convite expira em { $expires } (UTC).
invitation-footer = Você recebeu este e-mail porque { $inviter } convidou { $invitee } para participar de { $workspace } no WowChat. Se você não esperava este e-mail, pode ignorá-lo: nada acontece a menos que você aceite.
invitation-footer-reply = Dúvidas? Responda a este e-mail para falar com { $inviter }.
unsubscribe-link = Não quero receber convites do WowChat
unsubscribe-scope = (de nenhum espaço de trabalho)
unsubscribe-text = Não quero receber convites do WowChat (de nenhum espaço de trabalho):

## The accepted notice (to the one who invited)

accepted-subject = { $user } aceitou seu convite para { $workspace }
accepted-heading = Seu convite foi aceito
accepted-greeting = Olá, { $inviter }!
# $user: a name, with the email address in brackets when it differs.
accepted-joined = { $user } aceitou seu convite e entrou em { $workspace } no WowChat.
accepted-joined-as = { $user } aceitou seu convite e entrou em { $workspace } no WowChat { $role }.
accepted-member-button = Ver o novo membro
accepted-member-text = Veja o novo membro:
accepted-everyone = Todos os membros de { $workspace }:
accepted-footer = Você recebeu este e-mail porque convidou { $user } para participar de { $workspace } no WowChat.

## The join request confirmation

confirmation-subject = Confirme sua solicitação para participar de { $workspace } no WowChat
confirmation-heading = Confirme sua solicitação para participar de { $workspace }
# $requester: a name, with the email address in brackets when it differs.
confirmation-asked = Alguém, provavelmente você, pediu para participar de { $workspace } no WowChat como { $requester }.
confirmation-why = Confirme a solicitação para que os administradores de { $workspace } possam vê-la.
confirmation-why-text = Confirme a solicitação para que os administradores de { $workspace } possam vê-la:
confirmation-button = Confirmar a solicitação
confirmation-next = Os administradores decidem se vão convidar você. Se convidarem, você receberá um e-mail de convite.
confirmation-expires = O link é válido até { $expires } (UTC).
confirmation-footer = Você recebeu este e-mail porque alguém usou { $requester } em uma solicitação para participar de { $workspace } no WowChat. Se não foi você, ignore este e-mail: nada acontece a menos que a solicitação seja confirmada.
