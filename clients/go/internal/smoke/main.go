// Command smoke walks the README's walk-through through the Go client,
// against a running `wowchat-users standalone` (clients/check builds this
// and runs it).
//
// Usage: smoke -target HOST:PORT -mail-dir DIR -server BINARY -accept-link docs/accept-link.py
//
// Bootstrap (the server's CLI, with the caller's WOWCHAT_DATABASE_URL), sign
// in, invite Alice, read the email's token, preview and accept, list, manage,
// then two refusals read through the decoded details: inviting her again
// (ErrorInfo USER_ALREADY_MEMBER) and an invalid email (BadRequest on
// `email`). Exits non-zero at the first answer that is not as expected.
//
// It imports the generated packages by their import paths, as a user would.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	usersv1 "wowchat.dev/users/gen/go/wowchat/users/v1"
)

const (
	workspace = "Acme Support (Go client)"
	timeout   = 15 * time.Second
	// The ErrorInfo domain of every refusal (docs/api.md).
	domain = "users.wowchat.dev"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go client smoke test: "+format+"\n", args...)
	os.Exit(1)
}

func expect(what string, got, want interface{}) {
	if !reflect.DeepEqual(got, want) {
		fail("%s: expected %#v, got %#v", what, want, got)
	}
}

// call gives a context for one call, with the deadline and, when token is
// not empty, the bearer token in its metadata.
func call(token string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return ctx, cancel
}

func bootstrap(server string) (workspaceID, userID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, server, "bootstrap", "--workspace-name", workspace,
		"--owner-email", "owner@acme.test", "--owner-name", "Olive Owner",
		"--owner-password", "owner password 1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		fail("bootstrap failed: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	values := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+)=(\S+)`).FindAllStringSubmatch(string(out), -1) {
		values[m[1]] = m[2]
	}
	if values["workspace_id"] == "" || values["user_id"] == "" {
		fail("bootstrap printed no workspace_id/user_id: %q", out)
	}
	return values["workspace_id"], values["user_id"]
}

func invitationToken(acceptLink, mailDir, address string) string {
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command("python3", acceptLink, "--token", mailDir, address).Output()
		if token := strings.TrimSpace(string(out)); err == nil && token != "" {
			return token
		}
		if time.Now().After(deadline) {
			fail("no invitation email to %s in %s after 20 s", address, mailDir)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// refused is the status of a call that must fail.
func refused(what string, err error) *status.Status {
	if err == nil {
		fail("%s was accepted, expected a refusal", what)
	}
	return status.Convert(err)
}

// errorInfo is the refusal's google.rpc.ErrorInfo, nil when it has none.
func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// reason is the ErrorInfo reason of a refusal, "" when it has none.
func reason(st *status.Status) string {
	return errorInfo(st).GetReason()
}

// fieldViolations are the fields of the refusal's google.rpc.BadRequest.
func fieldViolations(st *status.Status) []string {
	fields := []string{}
	for _, detail := range st.Details() {
		if bad, ok := detail.(*errdetails.BadRequest); ok {
			for _, violation := range bad.GetFieldViolations() {
				fields = append(fields, violation.GetField())
			}
		}
	}
	return fields
}

func main() {
	target := flag.String("target", "", "the gRPC address, HOST:PORT")
	mailDir := flag.String("mail-dir", "", "the folder of the mailer's .eml files")
	server := flag.String("server", "", "the wowchat-users binary (for bootstrap)")
	acceptLink := flag.String("accept-link", "", "docs/accept-link.py")
	flag.Parse()
	if *target == "" || *mailDir == "" || *server == "" || *acceptLink == "" {
		flag.Usage()
		os.Exit(2)
	}
	started := time.Now()

	// 1. A workspace and its first owner.
	workspaceID, ownerID := bootstrap(*server)
	conn, err := grpc.Dial(*target, grpc.WithInsecure())
	if err != nil {
		fail("dial %s: %v", *target, err)
	}
	defer conn.Close()
	auth := usersv1.NewAuthServiceClient(conn)
	users := usersv1.NewUserServiceClient(conn)

	// 2. The owner signs in.
	ctx, cancel := call("")
	signedIn, err := auth.SignIn(ctx, &usersv1.SignInRequest{
		WorkspaceId: workspaceID, Email: "owner@acme.test", Password: "owner password 1"})
	cancel()
	if err != nil {
		fail("SignIn: %v", err)
	}
	token := signedIn.GetAccessToken()
	expect("SignIn user", signedIn.GetUser().GetId(), ownerID)

	// 3. Invite Alice as an agent reporting to the owner.
	ctx, cancel = call(token)
	invited, err := users.InviteUser(ctx, &usersv1.InviteUserRequest{
		Email: "alice@example.com", Role: "agent", ReportingToUserId: proto.String(ownerID), Message: "Welcome!"})
	cancel()
	if err != nil {
		fail("InviteUser: %v", err)
	}
	expect("invitation status", invited.GetInvitation().GetStatus(), usersv1.InvitationStatus_INVITATION_STATUS_PENDING)

	// 4. The token of the email's accept link.
	invite := invitationToken(*acceptLink, *mailDir, "alice@example.com")

	// 5. Alice previews and accepts (no bearer token: the token is the credential).
	ctx, cancel = call("")
	preview, err := users.PreviewInvitation(ctx, &usersv1.PreviewInvitationRequest{Token: invite})
	cancel()
	if err != nil {
		fail("PreviewInvitation: %v", err)
	}
	expect("preview workspace", preview.GetWorkspaceName(), workspace)
	expect("preview inviter", preview.GetInviterDisplayName(), "Olive Owner")
	ctx, cancel = call("")
	accepted, err := users.AcceptInvitation(ctx, &usersv1.AcceptInvitationRequest{
		Token: invite, DisplayName: "Alice", Password: "alice password 1"})
	cancel()
	if err != nil {
		fail("AcceptInvitation: %v", err)
	}
	alice := accepted.GetUser()

	// 6. She is listed, ACTIVE, with the invited role and manager.
	ctx, cancel = call(token)
	listed, err := users.ListUsers(ctx, &usersv1.ListUsersRequest{
		PageSize: 10, Status: usersv1.UserStatus_USER_STATUS_ACTIVE, Role: "agent"})
	cancel()
	if err != nil {
		fail("ListUsers: %v", err)
	}
	ids := []string{}
	for _, user := range listed.GetUsers() {
		ids = append(ids, user.GetId())
	}
	expect("listed agents", ids, []string{alice.GetId()})
	expect("her status", listed.GetUsers()[0].GetStatus().String(), "USER_STATUS_ACTIVE")
	expect("her manager", listed.GetUsers()[0].GetReportingToUserId(), ownerID)

	// 7. Manage her, and read what happened.
	ctx, cancel = call(token)
	managed, err := users.ManageUser(ctx, &usersv1.ManageUserRequest{
		UserId: alice.GetId(),
		Action: &usersv1.ManageUserRequest_ChangeRole_{
			ChangeRole: &usersv1.ManageUserRequest_ChangeRole{Role: "supervisor"}}})
	cancel()
	if err != nil {
		fail("ManageUser: %v", err)
	}
	expect("her new role", managed.GetUser().GetRole(), "supervisor")
	ctx, cancel = call(token)
	activity, err := users.ListActivity(ctx, &usersv1.ListActivityRequest{
		TargetUserId: alice.GetId(), Action: "user.role_changed"})
	cancel()
	if err != nil {
		fail("ListActivity: %v", err)
	}
	expect("role changes recorded", len(activity.GetEntries()), 1)

	// 8. Inviting her again: ALREADY_EXISTS with ErrorInfo USER_ALREADY_MEMBER.
	ctx, cancel = call(token)
	_, err = users.InviteUser(ctx, &usersv1.InviteUserRequest{Email: "alice@example.com", Role: "agent"})
	cancel()
	st := refused("InviteUserRequest", err)
	expect("code of inviting a member", st.Code(), codes.AlreadyExists)
	// The reason is the name of a value of the contract's ErrorReason enum.
	expect("reason of inviting a member", reason(st), usersv1.ErrorReason_USER_ALREADY_MEMBER.String())
	expect("ErrorInfo domain", errorInfo(st).GetDomain(), domain)

	// 9. An invalid email: INVALID_ARGUMENT with a BadRequest violation on `email`.
	ctx, cancel = call(token)
	_, err = users.InviteUser(ctx, &usersv1.InviteUserRequest{Email: "not an email", Role: "agent"})
	cancel()
	st = refused("InviteUserRequest", err)
	expect("code of an invalid email", st.Code(), codes.InvalidArgument)
	expect("reason of an invalid email", reason(st), usersv1.ErrorReason_INVALID_ARGUMENT.String())
	expect("violated fields", fieldViolations(st), []string{"email"})

	fmt.Printf("go client (wowchat.dev/users/gen/go, grpc-go %s): "+
		"bootstrap, sign-in, invite, email token, preview, accept, list, manage, "+
		"USER_ALREADY_MEMBER, BadRequest email: passed (%.1f s)\n",
		grpc.Version, time.Since(started).Seconds())
}
