"""Every generated module and stub (clients/generate): do not edit."""

from wowchat_users._gen.wowchat.users.events.v1 import events_pb2 as events_pb2
from wowchat_users._gen.wowchat.users.v1 import auth_pb2 as auth_pb2
from wowchat_users._gen.wowchat.users.v1 import auth_pb2_grpc as auth_pb2_grpc
from wowchat_users._gen.wowchat.users.v1.auth_pb2_grpc import AuthServiceStub as AuthServiceStub
from wowchat_users._gen.wowchat.users.v1 import directory_pb2 as directory_pb2
from wowchat_users._gen.wowchat.users.v1 import directory_pb2_grpc as directory_pb2_grpc
from wowchat_users._gen.wowchat.users.v1.directory_pb2_grpc import DirectoryServiceStub as DirectoryServiceStub
from wowchat_users._gen.wowchat.users.v1 import errors_pb2 as errors_pb2
from wowchat_users._gen.wowchat.users.v1 import joining_pb2 as joining_pb2
from wowchat_users._gen.wowchat.users.v1 import joining_pb2_grpc as joining_pb2_grpc
from wowchat_users._gen.wowchat.users.v1.joining_pb2_grpc import JoinServiceStub as JoinServiceStub
from wowchat_users._gen.wowchat.users.v1 import roles_pb2 as roles_pb2
from wowchat_users._gen.wowchat.users.v1 import roles_pb2_grpc as roles_pb2_grpc
from wowchat_users._gen.wowchat.users.v1.roles_pb2_grpc import RoleServiceStub as RoleServiceStub
from wowchat_users._gen.wowchat.users.v1 import users_pb2 as users_pb2
from wowchat_users._gen.wowchat.users.v1 import users_pb2_grpc as users_pb2_grpc
from wowchat_users._gen.wowchat.users.v1.users_pb2_grpc import UserServiceStub as UserServiceStub

__all__ = [
    "AuthServiceStub",
    "DirectoryServiceStub",
    "JoinServiceStub",
    "RoleServiceStub",
    "UserServiceStub",
    "auth_pb2",
    "auth_pb2_grpc",
    "directory_pb2",
    "directory_pb2_grpc",
    "errors_pb2",
    "events_pb2",
    "joining_pb2",
    "joining_pb2_grpc",
    "roles_pb2",
    "roles_pb2_grpc",
    "users_pb2",
    "users_pb2_grpc",
]
