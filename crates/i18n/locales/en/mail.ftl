# The emails WowChat sends. Placeholders ($name) are names and links as
# people typed them or the service made them: keep them, never translate
# them. `WowChat` is the product's name: keep it as it is.

## Words for what a command left empty

fallback-inviter = A colleague
fallback-workspace = a workspace
fallback-your-workspace = your workspace
fallback-greeting-name = there
fallback-someone = Someone

## Roles, as they end a sentence ("… invited you to join Acme on WowChat as an admin.")
# $role: the role's name (role-name-… below, or a name the workspace gave a
# role of its own), shown in bold in the HTML email.

role-owner = as an { $role }
role-admin = as an { $role }
role-supervisor = as a { $role }
role-agent = as an { $role }
role-custom = with the role “{ $role }”
role-name-owner = owner
role-name-admin = admin
role-name-supervisor = supervisor
role-name-agent = agent

## The invitation email

invitation-subject = { $inviter } invited you to { $workspace } on WowChat
invitation-heading = Join { $workspace } on WowChat
# $inviter: a name, with the email address in brackets when it differs.
invitation-invited = { $inviter } invited you to join { $workspace } on WowChat.
# $role: one of the role phrases above.
invitation-invited-as = { $inviter } invited you to join { $workspace } on WowChat { $role }.
invitation-accept-button = Accept the invitation
invitation-accept-text = Accept the invitation:
invitation-message-intro = { $inviter } added a message:
invitation-message-note = This message was written by { $inviter }, not by WowChat.
link-fallback = If the button does not work, open this link:
# $expires: a date and time, written for this language; the time is UTC.
invitation-expires = The invitation expires on { $expires } (UTC).
invitation-footer = You received this email because { $inviter } invited { $invitee } to { $workspace } on WowChat. If you did not expect it, you can ignore it: nothing happens unless you accept.
invitation-footer-reply = Questions? Reply to this email to reach { $inviter }.
unsubscribe-link = Don't send me WowChat invitations
unsubscribe-scope = (from any workspace)
unsubscribe-text = Don't send me WowChat invitations (from any workspace):

## The accepted notice (to the one who invited)

accepted-subject = { $user } accepted your invitation to { $workspace }
accepted-heading = Your invitation was accepted
accepted-greeting = Hello { $inviter },
# $user: a name, with the email address in brackets when it differs.
accepted-joined = { $user } accepted your invitation and joined { $workspace } on WowChat.
accepted-joined-as = { $user } accepted your invitation and joined { $workspace } on WowChat { $role }.
accepted-member-button = See the new member
accepted-member-text = See the new member:
accepted-everyone = Everyone in { $workspace }:
accepted-footer = You received this email because you invited { $user } to { $workspace } on WowChat.

## The join request confirmation

confirmation-subject = Confirm your request to join { $workspace } on WowChat
confirmation-heading = Confirm your request to join { $workspace }
# $requester: a name, with the email address in brackets when it differs.
confirmation-asked = Someone, probably you, asked to join { $workspace } on WowChat as { $requester }.
confirmation-why = Confirm the request, so the administrators of { $workspace } see it.
confirmation-why-text = Confirm the request, so the administrators of { $workspace } see it:
confirmation-button = Confirm the request
confirmation-next = They decide whether to invite you; if they do, an invitation email follows.
confirmation-expires = The link works until { $expires } (UTC).
confirmation-footer = You received this email because a request to join { $workspace } on WowChat named { $requester }. If it was not you, ignore it: nothing happens unless the request is confirmed.
