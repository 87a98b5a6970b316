# The invitation page (GET /invite on the gateway). Placeholders ($name)
# are filled in by the page: keep them, never translate them. `WowChat`
# is the product's name.

page-title = Aceite seu convite · WowChat
brand = WowChat
noscript = Esta página precisa de JavaScript para aceitar seu convite. Ative o JavaScript para este site e abra o link do e-mail novamente.
loading = Verificando seu convite…
invite-heading = Participe de { $workspace } no WowChat
invite-from = { $inviter } convidou você para participar de { $workspace }.
invite-from_unknown = Você recebeu um convite para participar de { $workspace }.
invite-email = Seu e-mail
invite-role = Sua função
invite-expires = Convite válido até
form-heading = Crie sua conta
form-display_name-label = Seu nome
form-display_name-hint = É assim que seus colegas verão você: de 1 a 100 caracteres.
form-password-label = Escolha uma senha
form-password-hint = De 8 a 128 caracteres. Algumas palavras sem relação entre si formam uma senha longa, fácil de lembrar e difícil de adivinhar.
form-submit = Aceitar e criar minha conta
form-submitting = Criando sua conta…
field-display_name = Digite seu nome: de 1 a 100 caracteres.
field-password = Escolha uma senha de 8 a 128 caracteres.
field-summary = Corrija o campo indicado abaixo.
success-heading = Boas-vindas a { $workspace }!
success-body = Sua conta está pronta. Abra o WowChat e entre como { $email } com a senha que você acabou de escolher.
success-status = Sua conta está pronta.
action-open_app = Abrir o WowChat
action-sign_in = Entrar no WowChat
action-try_again = Tentar novamente
error-INVITATION_NOT_FOUND-heading = Este link de convite não funciona
error-INVITATION_NOT_FOUND-body = O link pode estar incompleto. Abra-o novamente pelo e-mail de convite ou copie o link completo na barra de endereços. Se ainda assim não funcionar, peça um novo convite à pessoa que convidou você.
error-INVITATION_EXPIRED-heading = Este convite expirou
error-INVITATION_EXPIRED-body = Os convites são válidos por tempo limitado. Peça à pessoa que convidou você para enviar um novo.
error-INVITATION_REVOKED-heading = Este convite foi cancelado
error-INVITATION_REVOKED-body = Ele não pode mais ser usado. Se você ainda precisa de acesso, fale com a pessoa que convidou você.
error-INVITATION_ALREADY_ACCEPTED-heading = Este convite já foi aceito
error-INVITATION_ALREADY_ACCEPTED-body = Sua conta já existe: entre com o e-mail e a senha que você escolheu ao aceitar o convite.
error-USER_ALREADY_MEMBER-heading = Você já é membro
error-USER_ALREADY_MEMBER-body = Já existe uma conta com este e-mail no espaço de trabalho: basta entrar.
error-INVITER_NOT_AUTHORIZED-heading = Este convite não pode mais ser usado
error-INVITER_NOT_AUTHORIZED-body = A pessoa que convidou você não pode mais adicionar membros a este espaço de trabalho. Peça a outro administrador do espaço de trabalho para convidar você.
error-SEAT_LIMIT_REACHED-heading = O espaço de trabalho está lotado
error-SEAT_LIMIT_REACHED-body = Todas as vagas estão ocupadas. Peça a um administrador do espaço de trabalho para liberar uma vaga ou adicionar mais vagas e depois abra o link novamente.
error-USER_ACCESS_EXPIRED-heading = O acesso concedido por este convite terminou
error-USER_ACCESS_EXPIRED-body = Peça um novo convite à pessoa que convidou você.
error-INVITATION_ATTEMPTS_EXCEEDED-heading = Muitas tentativas
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-INVITATION_ATTEMPTS_EXCEEDED-body = Houve tentativas demais com este convite em pouco tempo. Aguarde { $wait } e tente novamente.
error-busy-heading = O WowChat está sobrecarregado
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-busy-body = Aguarde { $wait } e tente novamente.
error-busy-body_no_wait = Aguarde um momento e tente novamente.
error-unexpected-heading = Algo deu errado
error-unexpected-body = Não foi possível verificar nem aceitar seu convite agora. Tente novamente em instantes; se o problema continuar, fale com a pessoa que convidou você.
error-offline-heading = Não foi possível acessar o WowChat
error-offline-body = Verifique sua conexão com a internet e tente novamente.

# The built-in roles' names (a workspace's own roles show as it named them).
role-name-owner = proprietário
role-name-admin = administrador
role-name-supervisor = supervisor
role-name-agent = agente
