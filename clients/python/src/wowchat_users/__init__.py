"""WowChat Users gRPC client.

The messages and stubs are generated from proto/ (clients/generate) into
`wowchat_users._gen`; this module re-exports every generated module by its
proto file's name (`users_pb2`, `users_pb2_grpc`, `auth_pb2`, …, `events_pb2`)
and every stub by its name (`UserServiceStub`, …), and adds
`Client` (every stub on one channel), `bearer` (the metadata of a signed-in
call) and the decoded error details (`wowchat_users.errors`)::

    import grpc
    from wowchat_users import Client, auth_pb2, bearer, reason, users_pb2

    with grpc.insecure_channel("127.0.0.1:50051") as channel:
        client = Client(channel)
        token = client.auth.SignIn(auth_pb2.SignInRequest(
            workspace_id=workspace_id, email=email, password=password)).access_token
        try:
            client.users.InviteUser(users_pb2.InviteUserRequest(
                email="alice@example.com", role="agent"), metadata=bearer(token))
        except grpc.RpcError as err:
            print(err.code(), reason(err))  # e.g. StatusCode.ALREADY_EXISTS USER_ALREADY_MEMBER
"""

from __future__ import annotations

import grpc

# Every generated module (users_pb2, users_pb2_grpc, auth_pb2, …, events_pb2)
# and stub class (UserServiceStub, …): _gen/all.py, written by clients/generate.
from wowchat_users._gen import all as _all
from wowchat_users._gen.all import *  # noqa: F403
from wowchat_users._gen.all import (
    AuthServiceStub,
    DirectoryServiceStub,
    JoinServiceStub,
    RoleServiceStub,
    UserServiceStub,
)
# Everything wowchat_users.errors exports (the decoding functions, the detail
# types, DOMAIN): its own __all__ is the one list of it.
from wowchat_users import errors as _errors
from wowchat_users.errors import *  # noqa: F403

__version__ = "0.1.0"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The metadata of a call made as the holder of `token` (SignIn's access token)."""
    return (("authorization", f"Bearer {token}"),)


class Client:
    """Every service's stub on one channel."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.users = UserServiceStub(channel)
        self.auth = AuthServiceStub(channel)
        self.roles = RoleServiceStub(channel)
        self.join = JoinServiceStub(channel)
        self.directory = DirectoryServiceStub(channel)


__all__ = ["Client", "bearer"]
__all__ += _errors.__all__
__all__ += _all.__all__
