// WowChat Users client for Node.js.
//
// The messages and service descriptors are generated from proto/ by
// protoc-gen-es (clients/generate) into src/gen/ and re-exported here; calls
// go over Connect's gRPC transport (HTTP/2). This module adds the clients of
// every service on one transport, a bearer-token interceptor, and the
// google.rpc details of a refusal decoded (errorInfo, reason, badRequest,
// fieldViolations, retryInfo).
//
//   const transport = createTransport("http://127.0.0.1:50051", { token: () => token });
//   const { users } = createClients(transport);
//   try {
//     await users.inviteUser({ email: "alice@example.com", role: "agent" });
//   } catch (err) {
//     if (reason(err) === "USER_ALREADY_MEMBER") { /* … */ }
//   }

import { ConnectError, createClient } from "@connectrpc/connect";
import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { GrpcTransportOptions } from "@connectrpc/connect-node";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
import type {
  BadRequest,
  BadRequest_FieldViolation,
  ErrorInfo,
  RetryInfo,
} from "./gen/google/rpc/error_details_pb.js";
import { AuthService } from "./gen/wowchat/users/v1/auth_pb.js";
import { DirectoryService } from "./gen/wowchat/users/v1/directory_pb.js";
import { JoinService } from "./gen/wowchat/users/v1/joining_pb.js";
import { RoleService } from "./gen/wowchat/users/v1/roles_pb.js";
import { UserService } from "./gen/wowchat/users/v1/users_pb.js";

// Every file of wowchat.users.v1 (src/gen/all.ts, written by clients/generate).
export * from "./gen/all.js";
/** The events the service publishes (package wowchat.users.events.v1). */
export * as events from "./gen/wowchat/users/events/v1/events_pb.js";
export {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
  type BadRequest,
  type BadRequest_FieldViolation,
  type ErrorInfo,
  type RetryInfo,
};
/** google.rpc.Code (InviteRefusal.code); Connect's own `Code` names a call's status. */
export { Code as RpcCode } from "./gen/google/rpc/code_pb.js";
export { ConnectError, Code } from "@connectrpc/connect";

/** The ErrorInfo domain of every refusal of the service. */
export const DOMAIN = "users.wowchat.dev";

/** A token, or a function that returns the current one (undefined: none). */
export type TokenSource = string | (() => string | undefined);

/** An interceptor that sends `authorization: Bearer <token>` on every call. */
export function bearer(token: TokenSource): Interceptor {
  return (next) => async (req) => {
    const value = typeof token === "function" ? token() : token;
    if (value) {
      req.header.set("authorization", `Bearer ${value}`);
    }
    return next(req);
  };
}

/**
 * A gRPC transport (HTTP/2; `http://` is cleartext) to the service at
 * `baseUrl`, e.g. "http://127.0.0.1:50051", sending `token` when given.
 */
export function createTransport(
  baseUrl: string,
  options: { token?: TokenSource } & Partial<GrpcTransportOptions> = {},
): Transport {
  const { token, interceptors = [], ...rest } = options;
  return createGrpcTransport({
    ...rest,
    baseUrl,
    interceptors: token === undefined ? interceptors : [bearer(token), ...interceptors],
  });
}

/** A client of every service of WowChat Users. */
export interface UsersClients {
  users: Client<typeof UserService>;
  auth: Client<typeof AuthService>;
  roles: Client<typeof RoleService>;
  join: Client<typeof JoinService>;
  directory: Client<typeof DirectoryService>;
}

/** The clients of every service on one transport. */
export function createClients(transport: Transport): UsersClients {
  return {
    users: createClient(UserService, transport),
    auth: createClient(AuthService, transport),
    roles: createClient(RoleService, transport),
    join: createClient(JoinService, transport),
    directory: createClient(DirectoryService, transport),
  };
}

/**
 * The google.rpc.ErrorInfo of a refused call (`reason`, `domain`,
 * `metadata`), decoded from the `grpc-status-details-bin` trailer; undefined
 * when the error carries none (or is no ConnectError).
 */
export function errorInfo(err: unknown): ErrorInfo | undefined {
  return ConnectError.from(err).findDetails(ErrorInfoSchema)[0];
}

/** The ErrorInfo's reason, e.g. "USER_ALREADY_MEMBER" (docs/api.md lists them). */
export function reason(err: unknown): string | undefined {
  return errorInfo(err)?.reason;
}

/** The google.rpc.BadRequest of an INVALID_ARGUMENT refusal. */
export function badRequest(err: unknown): BadRequest | undefined {
  return ConnectError.from(err).findDetails(BadRequestSchema)[0];
}

/** The BadRequest's field violations (`field`, `description`), or []. */
export function fieldViolations(err: unknown): BadRequest_FieldViolation[] {
  return badRequest(err)?.fieldViolations ?? [];
}

/** The google.rpc.RetryInfo of a rate-limited call (`retryDelay`). */
export function retryInfo(err: unknown): RetryInfo | undefined {
  return ConnectError.from(err).findDetails(RetryInfoSchema)[0];
}
