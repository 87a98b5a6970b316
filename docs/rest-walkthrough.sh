#!/usr/bin/env bash
# The README's REST walk-through, as CI runs it: against a running
# `wowchat-users standalone` (gRPC + REST gateway + mailer writing .eml files).
#
#   GATEWAY   the gateway's base URL      (default http://127.0.0.1:8080)
#   MAIL_DIR  where the mailer writes     (default .wowchat/mail)
#   WOWCHAT   how to run the server's CLI (default: cargo run -q -p wowchat-users-server --)
#
# Prints each step; exits non-zero at the first answer that is not as the README says.
set -euo pipefail
GATEWAY=${GATEWAY:-http://127.0.0.1:8080}
MAIL_DIR=${MAIL_DIR:-.wowchat/mail}
read -r -a WOWCHAT <<<"${WOWCHAT:-cargo run -q -p wowchat-users-server --}"
here=$(dirname "$0")

# shellcheck source=docs/walkthrough-lib.sh
. "$here/walkthrough-lib.sh"

step "1. a workspace and its owner"
eval "$("${WOWCHAT[@]}" bootstrap --workspace-name 'Acme Support' \
  --owner-email owner@acme.test --owner-name 'Olive Owner' --owner-password 'owner password 1')"

step "2. the owner signs in over REST"
TOKEN=$(call -X POST "$GATEWAY/v1/auth:signIn" -H 'content-type: application/json' \
  -d '{"workspaceId":"'"$workspace_id"'","email":"owner@acme.test","password":"owner password 1"}' |
  jq -r .accessToken)

step "3. invite Alice as an agent reporting to the owner"
INVITATION=$(call -X POST "$GATEWAY/v1/invitations" -H "authorization: Bearer $TOKEN" \
  -H 'x-request-id: walk-through-invite' \
  -d '{"email":"alice@example.com","role":"agent","reportingToUserId":"'"$user_id"'","message":"Welcome!"}')
expect .invitation.status INVITATION_STATUS_PENDING "$INVITATION"

step "4. the invitation email's accept link"
for _ in $(seq 1 100); do
  INVITE=$(python3 "$here/accept-link.py" --token "$MAIL_DIR" alice@example.com 2>/dev/null) && break
  sleep 0.2
done
test -n "${INVITE:-}" || { echo "no invitation email in $MAIL_DIR" >&2; exit 1; }

step "5. Alice previews and accepts (no bearer token: the invitation token is the credential)"
PREVIEW=$(call -X POST "$GATEWAY/v1/invitations:preview" -d '{"token":"'"$INVITE"'"}')
expect .inviterDisplayName 'Olive Owner' "$PREVIEW"
ALICE=$(call -X POST "$GATEWAY/v1/invitations:accept" \
  -d '{"token":"'"$INVITE"'","displayName":"Alice","password":"alice password 1"}' | jq -r .user.id)

step "6. she is listed, ACTIVE, with the invited role and manager"
USERS=$(call "$GATEWAY/v1/users?pageSize=10&status=USER_STATUS_ACTIVE&role=agent" -H "authorization: Bearer $TOKEN")
expect '.users[0].id' "$ALICE" "$USERS"
expect '.users[0].reportingToUserId' "$user_id" "$USERS"

step "7. manage her, and read what happened"
MANAGED=$(call -X POST "$GATEWAY/v1/users/$ALICE:manage" -H "authorization: Bearer $TOKEN" \
  -d '{"changeRole":{"role":"supervisor"}}')
expect .user.role supervisor "$MANAGED"
ACTIVITY=$(call "$GATEWAY/v1/activity?targetUserId=$ALICE&action=user.role_changed" -H "authorization: Bearer $TOKEN")
expect '.entries | length' 1 "$ACTIVITY"

step "8. an error reads as a google.rpc.Status: inviting Alice again"
ERROR=$(curl -sS -w '\n%{http_code}' -X POST "$GATEWAY/v1/invitations" -H "authorization: Bearer $TOKEN" \
  -d '{"email":"alice@example.com","role":"agent"}')
expect . 409 "$(tail -n1 <<<"$ERROR")"
expect '.details[] | select(."@type" | endswith("ErrorInfo")) | .reason' USER_ALREADY_MEMBER "$(head -n -1 <<<"$ERROR")"

step "9. Alice signs in and reads herself with her own token"
ALICE_TOKEN=$(call -X POST "$GATEWAY/v1/auth:signIn" \
  -d '{"workspaceId":"'"$workspace_id"'","email":"alice@example.com","password":"alice password 1"}' |
  jq -r .accessToken)
ME=$(call "$GATEWAY/v1/users/$ALICE" -H "authorization: Bearer $ALICE_TOKEN")
expect .user.email alice@example.com "$ME"

echo "REST walk-through: passed" >&2
# For whoever runs more calls after this (CI's schemathesis run).
echo "TOKEN=$TOKEN"
echo "WORKSPACE_ID=$workspace_id"
