// The README's walk-through through the TypeScript client, against a running
// `wowchat-users standalone` (clients/check starts one and runs this).
//
// Usage: node dist-test/smoke.js --target http://HOST:PORT --mail-dir DIR \
//          --server BINARY --accept-link docs/accept-link.py
//
// Bootstrap (the server's CLI, with the caller's WOWCHAT_DATABASE_URL), sign
// in, invite Alice, read the email's token, preview and accept, list, manage,
// then two refusals read through the decoded details: inviting her again
// (ErrorInfo USER_ALREADY_MEMBER) and an invalid email (BadRequest on
// `email`). Exits non-zero at the first answer that is not as expected.
//
// It imports the package by its name, as a user would (the package's
// `exports`, built into dist/ first).

import { execFileSync, spawnSync } from "node:child_process";
import { isDeepStrictEqual, parseArgs } from "node:util";
import {
  Code,
  ConnectError,
  DOMAIN,
  ErrorReason,
  InvitationStatus,
  UserStatus,
  createClients,
  createTransport,
  errorInfo,
  fieldViolations,
  reason,
} from "@wowchat/users-client";

const WORKSPACE = "Acme Support (TypeScript client)";
const TIMEOUT_MS = 15_000;

function fail(message: string): never {
  console.error(`typescript client smoke test: ${message}`);
  process.exit(1);
}

function expect(what: string, got: unknown, want: unknown): void {
  if (!isDeepStrictEqual(got, want)) {
    fail(`${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  }
}

function bootstrap(server: string): { workspaceId: string; userId: string } {
  const out = execFileSync(
    server,
    [
      "bootstrap",
      "--workspace-name", WORKSPACE,
      "--owner-email", "owner@acme.test",
      "--owner-name", "Olive Owner",
      "--owner-password", "owner password 1",
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 60_000 },
  );
  const workspaceId = /workspace_id=(\S+)/.exec(out)?.[1];
  const userId = /user_id=(\S+)/.exec(out)?.[1];
  if (!workspaceId || !userId) fail(`bootstrap printed no workspace_id/user_id: ${out}`);
  return { workspaceId, userId };
}

async function invitationToken(acceptLink: string, mailDir: string, address: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = spawnSync("python3", [acceptLink, "--token", mailDir, address], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
    if (Date.now() > deadline) fail(`no invitation email to ${address} in ${mailDir} after 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function refused(call: () => Promise<unknown>, what: string): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  fail(`${what} was accepted, expected a refusal`);
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      target: { type: "string" },
      "mail-dir": { type: "string" },
      server: { type: "string" },
      "accept-link": { type: "string" },
    },
  });
  const target = args.target ?? fail("--target is required");
  const mailDir = args["mail-dir"] ?? fail("--mail-dir is required");
  const server = args.server ?? fail("--server is required");
  const acceptLink = args["accept-link"] ?? fail("--accept-link is required");
  const started = Date.now();

  // 1. A workspace and its first owner.
  const owner = bootstrap(server);

  // Two transports: one without a token (sign-in, the invitation's own
  // calls), one sending the owner's.
  const anonymous = createClients(createTransport(target, { defaultTimeoutMs: TIMEOUT_MS }));
  let token = "";
  const { users } = createClients(
    createTransport(target, { token: () => token, defaultTimeoutMs: TIMEOUT_MS }),
  );

  // 2. The owner signs in.
  const signedIn = await anonymous.auth.signIn({
    workspaceId: owner.workspaceId,
    email: "owner@acme.test",
    password: "owner password 1",
  });
  token = signedIn.accessToken;
  expect("SignIn user", signedIn.user?.id, owner.userId);

  // 3. Invite Alice as an agent reporting to the owner.
  const invited = await users.inviteUser({
    email: "alice@example.com",
    role: "agent",
    reportingToUserId: owner.userId,
    message: "Welcome!",
  });
  expect("invitation status", invited.invitation?.status, InvitationStatus.PENDING);

  // 4. The token of the email's accept link.
  const invite = await invitationToken(acceptLink, mailDir, "alice@example.com");

  // 5. Alice previews and accepts (no bearer token: the token is the credential).
  const preview = await anonymous.users.previewInvitation({ token: invite });
  expect("preview workspace", preview.workspaceName, WORKSPACE);
  expect("preview inviter", preview.inviterDisplayName, "Olive Owner");
  const accepted = await anonymous.users.acceptInvitation({
    token: invite,
    displayName: "Alice",
    password: "alice password 1",
  });
  const alice = accepted.user ?? fail("AcceptInvitation returned no user");

  // 6. She is listed, ACTIVE, with the invited role and manager.
  const listed = await users.listUsers({ pageSize: 10, status: UserStatus.ACTIVE, role: "agent" });
  expect("listed agents", listed.users.map((u) => u.id), [alice.id]);
  expect("her status", UserStatus[listed.users[0].status], "ACTIVE");
  expect("her manager", listed.users[0].reportingToUserId, owner.userId);

  // 7. Manage her, and read what happened.
  const managed = await users.manageUser({
    userId: alice.id,
    action: { case: "changeRole", value: { role: "supervisor" } },
  });
  expect("her new role", managed.user?.role, "supervisor");
  const activity = await users.listActivity({ targetUserId: alice.id, action: "user.role_changed" });
  expect("role changes recorded", activity.entries.length, 1);

  // 8. Inviting her again: ALREADY_EXISTS with ErrorInfo USER_ALREADY_MEMBER.
  let err = await refused(() => users.inviteUser({ email: "alice@example.com", role: "agent" }), "inviting a member");
  expect("code of inviting a member", Code[err.code], "AlreadyExists");
  // The reason is the name of a value of the contract's ErrorReason enum.
  expect("reason of inviting a member", reason(err), ErrorReason[ErrorReason.USER_ALREADY_MEMBER]);
  expect("ErrorInfo domain", errorInfo(err)?.domain, DOMAIN);

  // 9. An invalid email: INVALID_ARGUMENT with a BadRequest violation on `email`.
  err = await refused(() => users.inviteUser({ email: "not an email", role: "agent" }), "an invalid email");
  expect("code of an invalid email", Code[err.code], "InvalidArgument");
  expect("reason of an invalid email", reason(err), ErrorReason[ErrorReason.INVALID_ARGUMENT]);
  expect("violated fields", fieldViolations(err).map((v) => v.field), ["email"]);

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `typescript client (@wowchat/users-client, node ${process.version}): bootstrap, sign-in, invite, ` +
      `email token, preview, accept, list, manage, USER_ALREADY_MEMBER, BadRequest email: passed (${seconds} s)`,
  );
}

main().then(
  // The HTTP/2 sessions would keep the process alive a while.
  () => process.exit(0),
  (err: unknown) => fail(err instanceof Error ? (err.stack ?? err.message) : String(err)),
);
