#!/usr/bin/env bash
# The ways in, over REST, as docs/ways-in.md walks them and CI runs them:
# an invite link, a join request, and access that expires. Against a running
# `wowchat-users standalone`, after docs/rest-walkthrough.sh (whose owner
# token and workspace it takes).
#
#   GATEWAY       the gateway's base URL   (default http://127.0.0.1:8080)
#   MAIL_DIR      where the mailer writes  (default .wowchat/mail)
#   TOKEN         the owner's access token (required)
#   WORKSPACE_ID  the workspace            (required)
#   PUBLISH_TXT   a command that publishes a TXT record: `$PUBLISH_TXT NAME
#                 VALUE` (CI: .ci/dnsmasq-txt, the resolver the service
#                 asks); unset, the verified-domain steps are skipped
#
# Prints each step; exits non-zero at the first answer that is not as the
# guide says.
set -euo pipefail
GATEWAY=${GATEWAY:-http://127.0.0.1:8080}
MAIL_DIR=${MAIL_DIR:-.wowchat/mail}
: "${TOKEN:?an owner access token}" "${WORKSPACE_ID:?the workspace id}"
here=$(dirname "$0")

# shellcheck source=docs/walkthrough-lib.sh
. "$here/walkthrough-lib.sh"

# The token of the newest email's link to an address, once it arrives.
link_token() {
  local token=""
  for _ in $(seq 1 100); do
    token=$(python3 "$here/accept-link.py" --token "$MAIL_DIR" "$1" 2>/dev/null) && break
    sleep 0.2
  done
  test -n "$token" || { echo "no email to $1 in $MAIL_DIR" >&2; return 1; }
  echo "$token"
}
AUTH=(-H "authorization: Bearer $TOKEN")

step "1. an invite link for agents: at most 5 joins, for 7 days (the default)"
LINK=$(call -X POST "$GATEWAY/v1/inviteLinks" "${AUTH[@]}" -d '{"role":"agent","maxUses":5}')
SECRET=$(jq -r .secret <<<"$LINK")
LINK_ID=$(jq -r .link.id <<<"$LINK")
expect .link.state INVITE_LINK_STATE_ACTIVE "$LINK"

step "2. whoever holds it sees the workspace, the role and who shared it (no bearer token)"
PREVIEW=$(call -X POST "$GATEWAY/v1/inviteLinks:preview" -d '{"secret":"'"$SECRET"'"}')
expect .creatorDisplayName 'Olive Owner' "$PREVIEW"

step "3. Dana redeems it with her address: an ordinary invitation email, accepted as any other"
call -X POST "$GATEWAY/v1/inviteLinks:redeem" -d '{"secret":"'"$SECRET"'","email":"dana@example.com"}' >/dev/null
DANA_INVITE=$(link_token dana@example.com)
DANA=$(call -X POST "$GATEWAY/v1/invitations:accept" \
  -d '{"token":"'"$DANA_INVITE"'","displayName":"Dana","password":"dana password 1"}' | jq -r .user.id)
expect .link.useCount 1 "$(call "$GATEWAY/v1/inviteLinks/$LINK_ID" "${AUTH[@]}")"

step "4. the workspace takes join requests; Eve asks, and confirms through her email"
call -X PUT "$GATEWAY/v1/workspace/settings" "${AUTH[@]}" -d '{"acceptJoinRequests":true}' >/dev/null
call -X POST "$GATEWAY/v1/joinRequests" \
  -d '{"workspaceId":"'"$WORKSPACE_ID"'","email":"eve@example.com","displayName":"Eve","message":"Night shift, Berlin"}' >/dev/null
CONFIRM=$(link_token eve@example.com)
expect .workspaceName 'Acme Support' "$(call -X POST "$GATEWAY/v1/joinRequests:confirm" -d '{"token":"'"$CONFIRM"'"}')"

step "5. an administrator sees it and approves it with a role: Eve gets an invitation email"
REQUESTS=$(call "$GATEWAY/v1/joinRequests?state=JOIN_REQUEST_STATE_PENDING" "${AUTH[@]}")
expect '.joinRequests[0].email' eve@example.com "$REQUESTS"
REQUEST_ID=$(jq -r '.joinRequests[0].id' <<<"$REQUESTS")
APPROVED=$(call -X POST "$GATEWAY/v1/joinRequests/$REQUEST_ID:approve" "${AUTH[@]}" -d '{"role":"agent"}')
expect .joinRequest.state JOIN_REQUEST_STATE_APPROVED "$APPROVED"
expect .invitation.email eve@example.com "$APPROVED"

step "6. Dana's access ends by itself in an hour; the list shows who leaves soon"
EXPIRES=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
MANAGED=$(call -X POST "$GATEWAY/v1/users/$DANA:manage" "${AUTH[@]}" \
  -d '{"setAccessExpiry":{"expireTime":"'"$EXPIRES"'"}}')
expect .user.accessExpireTime "$EXPIRES" "$MANAGED"
SOON=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
LEAVING=$(call "$GATEWAY/v1/users?accessExpiresBefore=$SOON" "${AUTH[@]}")
expect '.users | map(.id) | join(",")' "$DANA" "$LEAVING"

if [ -z "${PUBLISH_TXT:-}" ]; then
  echo "PUBLISH_TXT is unset: the verified-domain steps are skipped" >&2
  echo "ways-in walk-through: passed" >&2
  exit 0
fi

step "7. the workspace claims acme.test; the claim names the TXT record to publish"
CLAIM=$(call -X POST "$GATEWAY/v1/domains" "${AUTH[@]}" -d '{"domain":"acme.test"}')
DOMAIN_ID=$(jq -r .domain.id <<<"$CLAIM")
expect .domain.recordName _wowchat-verification.acme.test "$CLAIM"
$PUBLISH_TXT "$(jq -r .domain.recordName <<<"$CLAIM")" "$(jq -r .domain.recordValue <<<"$CLAIM")"

step "8. verified through DNS; anyone at acme.test who asks now gets an invitation as an agent"
expect .domain.state DOMAIN_STATE_VERIFIED "$(call -X POST "$GATEWAY/v1/domains/$DOMAIN_ID:verify" "${AUTH[@]}" -d '{}')"
call -X PATCH "$GATEWAY/v1/domains/$DOMAIN_ID" "${AUTH[@]}" \
  -d '{"enrollmentMode":"ENROLLMENT_MODE_INVITE","defaultRole":"agent"}' >/dev/null
call -X POST "$GATEWAY/v1/domains:join" -d '{"email":"finn@acme.test"}' >/dev/null
link_token finn@acme.test >/dev/null

echo "ways-in walk-through: passed" >&2
