"""The README's walk-through through the Python client, against a running
`wowchat-users standalone` (clients/check starts one and runs this).

Usage: python smoke.py --target HOST:PORT --mail-dir DIR --server BINARY --accept-link docs/accept-link.py

Bootstrap (the server's CLI, with the caller's WOWCHAT_DATABASE_URL), sign
in, invite Alice, read the email's token, preview and accept, list, manage,
then two refusals read through the decoded details: inviting her again
(ErrorInfo USER_ALREADY_MEMBER) and an invalid email (BadRequest on
`email`). Exits non-zero at the first answer that is not as expected.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from typing import Callable, NoReturn

import grpc

import wowchat_users
from wowchat_users import Client, auth_pb2, bearer, errors_pb2, users_pb2
from wowchat_users.errors import DOMAIN, error_info, field_violations, reason

WORKSPACE = "Acme Support (Python client)"
TIMEOUT = 15.0


def fail(message: str) -> NoReturn:
    sys.exit(f"python client smoke test: {message}")


def expect(what: str, got: object, want: object) -> None:
    if got != want:
        fail(f"{what}: expected {want!r}, got {got!r}")


def bootstrap(server: str) -> dict[str, str]:
    result = subprocess.run(
        [server, "bootstrap", "--workspace-name", WORKSPACE,
         "--owner-email", "owner@acme.test", "--owner-name", "Olive Owner",
         "--owner-password", "owner password 1"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        fail(f"bootstrap failed: {result.stderr.strip()}")
    values = dict(re.findall(r"(\w+)=(\S+)", result.stdout))
    if "workspace_id" not in values or "user_id" not in values:
        fail(f"bootstrap printed no workspace_id/user_id: {result.stdout!r}")
    return values


def invitation_token(accept_link: str, mail_dir: str, address: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        found = subprocess.run(
            [sys.executable, accept_link, "--token", mail_dir, address],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
        )
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
        if time.monotonic() > deadline:
            fail(f"no invitation email to {address} in {mail_dir} after 20 s")
        time.sleep(0.2)


def refused(call: Callable[..., object], request: object, token: str) -> grpc.RpcError:
    try:
        call(request, metadata=bearer(token), timeout=TIMEOUT)
    except grpc.RpcError as err:
        return err
    fail(f"{type(request).__name__} was accepted, expected a refusal")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--mail-dir", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--accept-link", required=True)
    args = parser.parse_args()
    started = time.monotonic()

    # 1. A workspace and its first owner.
    owner = bootstrap(args.server)
    with grpc.insecure_channel(args.target) as channel:
        client = Client(channel)

        # 2. The owner signs in.
        signed_in = client.auth.SignIn(auth_pb2.SignInRequest(
            workspace_id=owner["workspace_id"], email="owner@acme.test",
            password="owner password 1"), timeout=TIMEOUT)
        token = signed_in.access_token
        expect("SignIn user", signed_in.user.id, owner["user_id"])

        # 3. Invite Alice as an agent reporting to the owner.
        invited = client.users.InviteUser(users_pb2.InviteUserRequest(
            email="alice@example.com", role="agent",
            reporting_to_user_id=owner["user_id"], message="Welcome!"),
            metadata=bearer(token), timeout=TIMEOUT)
        expect("invitation status", invited.invitation.status,
               users_pb2.INVITATION_STATUS_PENDING)

        # 4. The token of the email's accept link.
        invite = invitation_token(args.accept_link, args.mail_dir, "alice@example.com")

        # 5. Alice previews and accepts (no bearer token: the token is the credential).
        preview = client.users.PreviewInvitation(
            users_pb2.PreviewInvitationRequest(token=invite), timeout=TIMEOUT)
        expect("preview workspace", preview.workspace_name, WORKSPACE)
        expect("preview inviter", preview.inviter_display_name, "Olive Owner")
        alice = client.users.AcceptInvitation(users_pb2.AcceptInvitationRequest(
            token=invite, display_name="Alice", password="alice password 1"),
            timeout=TIMEOUT).user

        # 6. She is listed, ACTIVE, with the invited role and manager.
        listed = client.users.ListUsers(users_pb2.ListUsersRequest(
            page_size=10, status=users_pb2.USER_STATUS_ACTIVE, role="agent"),
            metadata=bearer(token), timeout=TIMEOUT)
        expect("listed agents", [u.id for u in listed.users], [alice.id])
        expect("her status", users_pb2.UserStatus.Name(listed.users[0].status), "USER_STATUS_ACTIVE")
        expect("her manager", listed.users[0].reporting_to_user_id, owner["user_id"])

        # 7. Manage her, and read what happened.
        managed = client.users.ManageUser(users_pb2.ManageUserRequest(
            user_id=alice.id,
            change_role=users_pb2.ManageUserRequest.ChangeRole(role="supervisor")),
            metadata=bearer(token), timeout=TIMEOUT)
        expect("her new role", managed.user.role, "supervisor")
        activity = client.users.ListActivity(users_pb2.ListActivityRequest(
            target_user_id=alice.id, action="user.role_changed"),
            metadata=bearer(token), timeout=TIMEOUT)
        expect("role changes recorded", len(activity.entries), 1)

        # 8. Inviting her again: ALREADY_EXISTS with ErrorInfo USER_ALREADY_MEMBER.
        err = refused(client.users.InviteUser, users_pb2.InviteUserRequest(
            email="alice@example.com", role="agent"), token)
        expect("code of inviting a member", err.code(), grpc.StatusCode.ALREADY_EXISTS)
        # The reason is the name of a value of the contract's ErrorReason enum.
        expect("reason of inviting a member", reason(err),
               errors_pb2.ErrorReason.Name(errors_pb2.USER_ALREADY_MEMBER))
        info = error_info(err)
        expect("ErrorInfo domain", info.domain if info else None, DOMAIN)

        # 9. An invalid email: INVALID_ARGUMENT with a BadRequest violation on `email`.
        err = refused(client.users.InviteUser, users_pb2.InviteUserRequest(
            email="not an email", role="agent"), token)
        expect("code of an invalid email", err.code(), grpc.StatusCode.INVALID_ARGUMENT)
        expect("reason of an invalid email", reason(err),
               errors_pb2.ErrorReason.Name(errors_pb2.INVALID_ARGUMENT))
        expect("violated fields", [v.field for v in field_violations(err)], ["email"])

    print(f"python client (wowchat-users-client {wowchat_users.__version__}, grpcio {grpc.__version__}): "
          "bootstrap, sign-in, invite, email token, preview, accept, list, manage, "
          f"USER_ALREADY_MEMBER, BadRequest email: passed ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
