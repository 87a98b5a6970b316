# The invitation page (GET /invite on the gateway). Placeholders ($name)
# are filled in by the page: keep them, never translate them. `WowChat`
# is the product's name.

page-title = Accept your invitation · WowChat
brand = WowChat
noscript = This page needs JavaScript to accept your invitation. Turn JavaScript on for this site and open the link from the email again.
loading = Checking your invitation…
invite-heading = Join { $workspace } on WowChat
invite-from = { $inviter } invited you to join { $workspace }.
invite-from_unknown = You are invited to join { $workspace }.
invite-email = Your email
invite-role = Your role
invite-expires = Invitation valid until
form-heading = Create your account
form-display_name-label = Your name
form-display_name-hint = How your colleagues will see you: 1 to 100 characters.
form-password-label = Choose a password
form-password-hint = 8 to 128 characters. A few unrelated words make a password that is long, easy to remember and hard to guess.
form-submit = Accept and create my account
form-submitting = Creating your account…
field-display_name = Enter your name: 1 to 100 characters.
field-password = Choose a password of 8 to 128 characters.
field-summary = Please correct the field marked below.
success-heading = Welcome to { $workspace }!
success-body = Your account is ready. Open WowChat and sign in as { $email } with the password you just chose.
success-status = Your account is ready.
action-open_app = Open WowChat
action-sign_in = Sign in to WowChat
action-try_again = Try again
error-INVITATION_NOT_FOUND-heading = This invitation link does not work
error-INVITATION_NOT_FOUND-body = The link may be incomplete. Open it again from the invitation email, or copy the whole link into the address bar. If it still does not work, ask the person who invited you for a new invitation.
error-INVITATION_EXPIRED-heading = This invitation has expired
error-INVITATION_EXPIRED-body = Invitations are valid for a limited time. Ask the person who invited you to send you a new one.
error-INVITATION_REVOKED-heading = This invitation was withdrawn
error-INVITATION_REVOKED-body = It can no longer be used. If you still need access, ask the person who invited you.
error-INVITATION_ALREADY_ACCEPTED-heading = This invitation was already accepted
error-INVITATION_ALREADY_ACCEPTED-body = Your account already exists: sign in instead, with the email and password you chose when you accepted.
error-USER_ALREADY_MEMBER-heading = You are already a member
error-USER_ALREADY_MEMBER-body = An account with this email already exists in the workspace: sign in instead.
error-INVITER_NOT_AUTHORIZED-heading = This invitation can no longer be used
error-INVITER_NOT_AUTHORIZED-body = The person who invited you can no longer add members to this workspace. Ask another administrator of the workspace to invite you.
error-SEAT_LIMIT_REACHED-heading = The workspace is full
error-SEAT_LIMIT_REACHED-body = All of its seats are taken. Ask an administrator of the workspace to free a seat or add seats, then open the link again.
error-USER_ACCESS_EXPIRED-heading = The access this invitation grants has ended
error-USER_ACCESS_EXPIRED-body = Ask the person who invited you for a new invitation.
error-INVITATION_ATTEMPTS_EXCEEDED-heading = Too many attempts
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-INVITATION_ATTEMPTS_EXCEEDED-body = This invitation was tried too many times in a short while. Wait { $wait }, then try again.
error-busy-heading = WowChat is busy
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-busy-body = Wait { $wait }, then try again.
error-busy-body_no_wait = Wait a moment, then try again.
error-unexpected-heading = Something went wrong
error-unexpected-body = Your invitation could not be checked or accepted just now. Try again in a moment; if it keeps failing, ask the person who invited you.
error-offline-heading = WowChat cannot be reached
error-offline-body = Check your internet connection, then try again.

# The built-in roles' names (a workspace's own roles show as it named them).
role-name-owner = owner
role-name-admin = admin
role-name-supervisor = supervisor
role-name-agent = agent
