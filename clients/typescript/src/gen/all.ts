// Every file of wowchat.users.v1 (clients/generate): do not edit.
export * from "./wowchat/users/v1/auth_pb.js";
export * from "./wowchat/users/v1/directory_pb.js";
export * from "./wowchat/users/v1/errors_pb.js";
export * from "./wowchat/users/v1/joining_pb.js";
export * from "./wowchat/users/v1/roles_pb.js";
export * from "./wowchat/users/v1/users_pb.js";
