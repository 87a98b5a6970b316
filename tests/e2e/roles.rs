//! Roles and permissions (RoleService): the catalog, custom roles and their
//! rules (built-ins immutable, names unique, no escalation, no deleting a
//! role in use), custom roles wherever a role name is used, changes taking
//! effect on the holders' next call, and CheckPermission for other services.

use std::time::Duration;

use prost::Message;
use tonic::{Code, Status, transport::Channel};
use wowchat_users_api::v1::{
    self as proto,
    manage_user_request::{self as manage, Action},
    role_service_client::RoleServiceClient,
};
use wowchat_users_testkit::{
    PASSWORD, TestApp, authed, expect_error, invitation_request, manage_request, violated_fields,
    wowchat_users_server::{
        domain::{EmailAddress, user::Password},
        operations::bootstrap::bootstrap,
    },
};

// ---- helpers ----

async fn roles(app: &TestApp) -> RoleServiceClient<Channel> {
    RoleServiceClient::new(app.channel().await)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn create_as(
    app: &TestApp,
    token: &str,
    name: &str,
    permissions: &[&str],
) -> Result<proto::Role, Status> {
    roles(app)
        .await
        .create_role(authed(
            token,
            proto::CreateRoleRequest {
                name: name.into(),
                permissions: strings(permissions),
                request_id: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner().role.expect("a role in the response"))
}

async fn update_as(
    app: &TestApp,
    token: &str,
    name: &str,
    permissions: &[&str],
) -> Result<proto::Role, Status> {
    roles(app)
        .await
        .update_role(authed(
            token,
            proto::UpdateRoleRequest {
                name: name.into(),
                permissions: strings(permissions),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner().role.expect("a role in the response"))
}

async fn delete_as(app: &TestApp, token: &str, name: &str) -> Result<proto::Role, Status> {
    roles(app)
        .await
        .delete_role(authed(
            token,
            proto::DeleteRoleRequest {
                name: name.into(),
                request_id: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner().role.expect("a role in the response"))
}

async fn list_roles_as(app: &TestApp, token: &str) -> Result<Vec<proto::Role>, Status> {
    roles(app)
        .await
        .list_roles(authed(token, proto::ListRolesRequest {}))
        .await
        .map(|r| r.into_inner().roles)
}

async fn check_as(
    app: &TestApp,
    token: &str,
    user_id: &str,
    permission: &str,
) -> Result<proto::CheckPermissionResponse, Status> {
    roles(app)
        .await
        .check_permission(authed(
            token,
            proto::CheckPermissionRequest {
                user_id: user_id.into(),
                permission: permission.into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn get_user_as(app: &TestApp, token: &str, user_id: &str) -> Result<proto::User, Status> {
    app.client()
        .await
        .get_user(authed(
            token,
            proto::GetUserRequest {
                user_id: user_id.into(),
            },
        ))
        .await
        .map(|r| r.into_inner().user.expect("a user"))
}

fn change_role(role: &str) -> Action {
    Action::ChangeRole(manage::ChangeRole { role: role.into() })
}

/// The `RoleChanged` events in the outbox, with their routing keys, oldest first.
async fn role_events(app: &TestApp) -> Vec<(String, proto::RoleChanged)> {
    app.db()
        .await
        .query(
            "SELECT routing_key, message_type, payload FROM outbox \
             WHERE routing_key LIKE 'role.%' ORDER BY created_at, id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| {
            assert_eq!(row.get::<_, &str>(1), "wowchat.users.v1.RoleChanged");
            (
                row.get::<_, String>(0),
                proto::RoleChanged::decode(row.get::<_, &[u8]>(2)).unwrap(),
            )
        })
        .collect()
}

/// The activity log's role entries, newest first.
async fn role_activity(app: &TestApp) -> Vec<proto::ActivityEntry> {
    app.client()
        .await
        .list_activity(authed(
            &app.owner_token,
            proto::ListActivityRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .filter(|e| e.action.starts_with("role."))
        .collect()
}

// ---- the catalog ----

#[tokio::test]
async fn list_permissions_returns_the_whole_catalog_with_descriptions() {
    let app = TestApp::spawn().await;
    let (_, agent) = app.member("ann@example.com", "agent").await;
    // Any authenticated caller may read the catalog.
    let catalog = roles(&app)
        .await
        .list_permissions(authed(&agent, proto::ListPermissionsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(catalog.catalog_version >= 1);
    let names: Vec<&str> = catalog
        .permissions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    for expected in [
        "users.read",
        "users.invite",
        "users.manage",
        "roles.manage",
        "activity.read",
        "conversations.read",
        "conversations.reply",
        "contacts.read",
        "contacts.manage",
        "reports.read",
        "knowledge_base.read",
        "knowledge_base.manage",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        catalog
            .permissions
            .iter()
            .all(|p| !p.description.is_empty())
    );
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "names are unique");

    // And nobody reads it without a token.
    expect_error(
        roles(&app)
            .await
            .list_permissions(proto::ListPermissionsRequest {})
            .await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
    );
}

// ---- custom roles ----

#[tokio::test]
async fn list_roles_shows_the_built_in_roles_then_the_workspace_s_custom_roles() {
    let app = TestApp::spawn().await;
    create_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    create_as(
        &app,
        &app.owner_token,
        "auditor",
        &["activity.read", "users.read"],
    )
    .await
    .unwrap();

    let listed = list_roles_as(&app, &app.owner_token).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "owner",
            "admin",
            "supervisor",
            "agent",
            "auditor",
            "reviewer"
        ]
    );
    let admin = &listed[1];
    assert!(admin.built_in && admin.etag.is_empty() && admin.create_time.is_none());
    assert!(admin.permissions.contains(&"users.manage".to_owned()));
    let auditor = &listed[4];
    assert!(!auditor.built_in);
    assert_eq!(
        auditor.permissions,
        ["users.read", "activity.read"],
        "catalog order"
    );
    assert!(!auditor.etag.is_empty() && auditor.create_time.is_some());

    // An inviter sees them too (to choose one); an agent does not.
    let (_, supervisor) = app.member("sue@example.com", "supervisor").await;
    expect_error(
        list_roles_as(&app, &supervisor).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
}

#[tokio::test]
async fn creating_a_role_records_activity_and_a_role_created_event() {
    let app = TestApp::spawn().await;
    let role = create_as(
        &app,
        &app.owner_token,
        "reviewer",
        &["reports.read", "users.read"],
    )
    .await
    .unwrap();
    assert_eq!(role.name, "reviewer");
    assert_eq!(role.permissions, ["users.read", "reports.read"]);
    assert!(!role.built_in);

    let entries = role_activity(&app).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "role.created");
    assert_eq!(entries[0].actor_user_id, app.owner_id.to_string());
    let changes: Vec<(&str, &str)> = entries[0]
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.new_value.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("name", "reviewer"),
            ("permissions", "users.read,reports.read")
        ]
    );

    let events = role_events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "role.created");
    assert_eq!(events[0].1.role.as_ref().unwrap(), &role);
    assert_eq!(events[0].1.actor_user_id, app.owner_id.to_string());
}

#[tokio::test]
async fn a_role_named_like_a_built_in_or_an_existing_role_is_refused() {
    let app = TestApp::spawn().await;
    expect_error(
        create_as(&app, &app.owner_token, "admin", &["users.read"]).await,
        Code::AlreadyExists,
        "ROLE_EXISTS",
    );
    create_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    expect_error(
        create_as(&app, &app.owner_token, "reviewer", &["users.read"]).await,
        Code::AlreadyExists,
        "ROLE_EXISTS",
    );
    // The first one is untouched.
    let listed = list_roles_as(&app, &app.owner_token).await.unwrap();
    let reviewer = listed.iter().find(|r| r.name == "reviewer").unwrap();
    assert_eq!(reviewer.permissions, ["reports.read"]);
}

#[tokio::test]
async fn unknown_permissions_and_bad_names_are_invalid_with_field_violations() {
    let app = TestApp::spawn().await;
    let status = expect_error(
        create_as(
            &app,
            &app.owner_token,
            "Bad Name",
            &["users.read", "users.fly", "users.read"],
        )
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["name", "permissions[1]", "permissions[2]"]);

    create_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    let status = expect_error(
        update_as(&app, &app.owner_token, "reviewer", &["reports.write"]).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["permissions[0]"]);
    assert!(
        role_events(&app).await.len() == 1,
        "nothing but the creation happened"
    );
}

#[tokio::test]
async fn built_in_roles_cannot_be_changed_or_deleted() {
    let app = TestApp::spawn().await;
    for name in ["owner", "admin", "supervisor", "agent"] {
        expect_error(
            update_as(&app, &app.owner_token, name, &["users.read"]).await,
            Code::FailedPrecondition,
            "ROLE_BUILT_IN",
        );
        expect_error(
            delete_as(&app, &app.owner_token, name).await,
            Code::FailedPrecondition,
            "ROLE_BUILT_IN",
        );
    }
    assert!(role_events(&app).await.is_empty());
}

#[tokio::test]
async fn managing_roles_needs_roles_manage() {
    let app = TestApp::spawn().await;
    create_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    let (_, supervisor) = app.member("sue@example.com", "supervisor").await;
    expect_error(
        create_as(&app, &supervisor, "helper", &["reports.read"]).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    expect_error(
        update_as(&app, &supervisor, "reviewer", &[]).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    expect_error(
        delete_as(&app, &supervisor, "reviewer").await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    // An admin holds roles.manage.
    let (_, admin) = app.member("ada@example.com", "admin").await;
    create_as(&app, &admin, "helper", &["reports.read"])
        .await
        .unwrap();
}

#[tokio::test]
async fn an_admin_like_custom_role_without_users_manage_cannot_grant_it() {
    let app = TestApp::spawn().await;
    let admin_like = [
        "users.read",
        "users.invite",
        "roles.manage",
        "activity.read",
        "reports.read",
    ];
    create_as(&app, &app.owner_token, "role-admin", &admin_like)
        .await
        .unwrap();
    create_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    let (_, role_admin) = app.member("ra@example.com", "role-admin").await;

    // Not in a new role...
    expect_error(
        create_as(
            &app,
            &role_admin,
            "manager",
            &["users.read", "users.manage"],
        )
        .await,
        Code::PermissionDenied,
        "ROLE_ABOVE_CALLER",
    );
    // ...nor by adding it to an existing one...
    expect_error(
        update_as(
            &app,
            &role_admin,
            "reviewer",
            &["reports.read", "users.manage"],
        )
        .await,
        Code::PermissionDenied,
        "ROLE_ABOVE_CALLER",
    );
    // ...nor by giving their own role more.
    expect_error(
        update_as(
            &app,
            &role_admin,
            "role-admin",
            &["roles.manage", "users.manage"],
        )
        .await,
        Code::PermissionDenied,
        "ROLE_ABOVE_CALLER",
    );
    // Nor by inviting someone as admin.
    expect_error(
        app.invite_as(&role_admin, invitation_request("x@example.com", "admin"))
            .await,
        Code::PermissionDenied,
        "ROLE_ABOVE_CALLER",
    );
    // Within their own permissions they may.
    create_as(&app, &role_admin, "reader", &["users.read", "reports.read"])
        .await
        .unwrap();
    assert_eq!(role_events(&app).await.len(), 3);
}

#[tokio::test]
async fn a_role_manager_lacking_activity_read_cannot_create_or_touch_a_role_holding_it() {
    let app = TestApp::spawn().await;
    create_as(
        &app,
        &app.owner_token,
        "role-keeper",
        &["roles.manage", "users.read"],
    )
    .await
    .unwrap();
    create_as(&app, &app.owner_token, "auditor", &["activity.read"])
        .await
        .unwrap();
    let (_, keeper) = app.member("kim@example.com", "role-keeper").await;

    expect_error(
        create_as(&app, &keeper, "snoop", &["activity.read"]).await,
        Code::PermissionDenied,
        "ROLE_ABOVE_CALLER",
    );
    // A role above the caller is not theirs to shrink or delete either.
    expect_error(
        update_as(&app, &keeper, "auditor", &[]).await,
        Code::PermissionDenied,
        "ROLE_ABOVE_CALLER",
    );
    expect_error(
        delete_as(&app, &keeper, "auditor").await,
        Code::PermissionDenied,
        "ROLE_ABOVE_CALLER",
    );
    create_as(&app, &keeper, "reader", &["users.read"])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_role_held_by_a_user_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    create_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    let (user, _) = app.member("rita@example.com", "reviewer").await;
    expect_error(
        delete_as(&app, &app.owner_token, "reviewer").await,
        Code::FailedPrecondition,
        "ROLE_IN_USE",
    );
    // Deactivated holders still hold it: they may be reactivated.
    app.manage_as(
        &app.owner_token,
        manage_request(
            &user.id,
            Action::Deactivate(manage::Deactivate {
                reason: "left".into(),
            }),
        ),
    )
    .await
    .unwrap();
    expect_error(
        delete_as(&app, &app.owner_token, "reviewer").await,
        Code::FailedPrecondition,
        "ROLE_IN_USE",
    );
    // Once nobody holds it, it goes.
    app.manage_as(
        &app.owner_token,
        manage_request(&user.id, change_role("agent")),
    )
    .await
    .unwrap();
    let deleted = delete_as(&app, &app.owner_token, "reviewer").await.unwrap();
    assert_eq!(deleted.name, "reviewer");
    let names: Vec<String> = list_roles_as(&app, &app.owner_token)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert!(!names.contains(&"reviewer".to_owned()));
    let events = role_events(&app).await;
    assert_eq!(events.last().unwrap().0, "role.deleted");
    assert_eq!(role_activity(&app).await[0].action, "role.deleted");
}

#[tokio::test]
async fn a_role_held_by_a_pending_invitation_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    create_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    let invitation = app.invite("pat@example.com", "reviewer").await;
    expect_error(
        delete_as(&app, &app.owner_token, "reviewer").await,
        Code::FailedPrecondition,
        "ROLE_IN_USE",
    );
    app.client()
        .await
        .revoke_invitation(authed(
            &app.owner_token,
            proto::RevokeInvitationRequest {
                invitation_id: invitation.id,
            },
        ))
        .await
        .unwrap();
    delete_as(&app, &app.owner_token, "reviewer").await.unwrap();
    // Gone: it can no longer be granted, changed or deleted.
    expect_error(
        app.invite_as(
            &app.owner_token,
            invitation_request("pat@example.com", "reviewer"),
        )
        .await,
        Code::InvalidArgument,
        "ROLE_NOT_FOUND",
    );
    expect_error(
        update_as(&app, &app.owner_token, "reviewer", &[]).await,
        Code::NotFound,
        "ROLE_NOT_FOUND",
    );
    expect_error(
        delete_as(&app, &app.owner_token, "reviewer").await,
        Code::NotFound,
        "ROLE_NOT_FOUND",
    );
}

#[tokio::test]
async fn custom_roles_work_in_invite_user_and_manage_user() {
    let app = TestApp::spawn().await;
    create_as(
        &app,
        &app.owner_token,
        "reviewer",
        &["reports.read", "users.read"],
    )
    .await
    .unwrap();
    create_as(
        &app,
        &app.owner_token,
        "recruiter",
        &["users.read", "users.invite", "reports.read"],
    )
    .await
    .unwrap();

    // Invited with a custom role, accepted, and holding it.
    let (reviewer, _) = app.member("rita@example.com", "reviewer").await;
    assert_eq!(reviewer.role, "reviewer");
    // Changed to another custom role and back to a built-in one.
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let changed = app
        .manage_as(
            &app.owner_token,
            manage_request(&agent.id, change_role("recruiter")),
        )
        .await
        .unwrap();
    assert_eq!(changed.role, "recruiter");

    // A custom-role holder invites within their role's permissions.
    let recruiter = app.token_for(agent.id.parse().unwrap());
    let invited = app
        .invite_as(
            &recruiter,
            invitation_request("new@example.com", "reviewer"),
        )
        .await
        .unwrap();
    assert_eq!(invited.role, "reviewer");
    expect_error(
        app.invite_as(&recruiter, invitation_request("new2@example.com", "agent"))
            .await,
        Code::PermissionDenied,
        "ROLE_ABOVE_CALLER",
    );
    // An unknown role is still refused.
    expect_error(
        app.manage_as(
            &app.owner_token,
            manage_request(&agent.id, change_role("ghost")),
        )
        .await,
        Code::InvalidArgument,
        "ROLE_NOT_FOUND",
    );
    app.manage_as(
        &app.owner_token,
        manage_request(&agent.id, change_role("agent")),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_custom_role_of_another_workspace_does_not_exist_here() {
    let app = TestApp::spawn().await;
    let other = bootstrap(
        &app.state,
        "Other",
        &EmailAddress::parse("other@example.com").unwrap(),
        "Other Owner",
        Password::parse(PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    let other_token = app
        .state
        .keys
        .mint(
            other.owner_id,
            other.workspace_id,
            Duration::from_secs(3600),
        )
        .unwrap();
    create_as(&app, &other_token, "reviewer", &["reports.read"])
        .await
        .unwrap();

    expect_error(
        app.invite_as(
            &app.owner_token,
            invitation_request("x@example.com", "reviewer"),
        )
        .await,
        Code::InvalidArgument,
        "ROLE_NOT_FOUND",
    );
    assert!(
        !list_roles_as(&app, &app.owner_token)
            .await
            .unwrap()
            .iter()
            .any(|r| r.name == "reviewer")
    );
    // The same name is free here.
    create_as(&app, &app.owner_token, "reviewer", &["users.read"])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_changed_role_takes_effect_on_its_holders_very_next_call() {
    let app = TestApp::spawn().await;
    create_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    let (user, token) = app.member("rita@example.com", "reviewer").await;
    expect_error(
        get_user_as(&app, &token, &user.id).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );

    let updated = update_as(
        &app,
        &app.owner_token,
        "reviewer",
        &["reports.read", "users.read"],
    )
    .await
    .unwrap();
    assert_eq!(updated.permissions, ["users.read", "reports.read"]);
    get_user_as(&app, &token, &user.id).await.unwrap();

    update_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    expect_error(
        get_user_as(&app, &token, &user.id).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );

    let entries = role_activity(&app).await;
    assert_eq!(entries[0].action, "role.updated");
    let change = &entries[0].changes[0];
    assert_eq!(
        (
            change.field.as_str(),
            change.old_value.as_str(),
            change.new_value.as_str()
        ),
        ("permissions", "users.read,reports.read", "reports.read")
    );
    let events = role_events(&app).await;
    let keys: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["role.created", "role.updated", "role.updated"]);
}

#[tokio::test]
async fn an_update_with_a_stale_etag_is_aborted_and_one_without_changes_nothing_twice() {
    let app = TestApp::spawn().await;
    let created = create_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    let request = |etag: &str| proto::UpdateRoleRequest {
        name: "reviewer".into(),
        permissions: strings(&["users.read"]),
        etag: etag.into(),
        request_id: String::new(),
    };
    let updated = roles(&app)
        .await
        .update_role(authed(&app.owner_token, request(&created.etag)))
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_ne!(updated.etag, created.etag);
    expect_error(
        roles(&app)
            .await
            .update_role(authed(&app.owner_token, request(&created.etag)))
            .await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );
    // The same permissions again change nothing and record nothing.
    let same = update_as(&app, &app.owner_token, "reviewer", &["users.read"])
        .await
        .unwrap();
    assert_eq!(same.etag, updated.etag);
    assert_eq!(role_events(&app).await.len(), 2);
}

#[tokio::test]
async fn a_retried_create_role_returns_the_first_result() {
    let app = TestApp::spawn().await;
    let request = || proto::CreateRoleRequest {
        name: "reviewer".into(),
        permissions: strings(&["reports.read"]),
        request_id: "create-reviewer-1".into(),
    };
    let first = roles(&app)
        .await
        .create_role(authed(&app.owner_token, request()))
        .await
        .unwrap()
        .into_inner();
    let retried = roles(&app)
        .await
        .create_role(authed(&app.owner_token, request()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, retried);
    assert_eq!(role_events(&app).await.len(), 1);
}

// ---- CheckPermission ----

#[tokio::test]
async fn check_permission_answers_from_the_user_s_role_built_in_or_custom() {
    let app = TestApp::spawn().await;
    create_as(
        &app,
        &app.owner_token,
        "permission-checker",
        &["users.read"],
    )
    .await
    .unwrap();
    create_as(&app, &app.owner_token, "reviewer", &["reports.read"])
        .await
        .unwrap();
    // Other services call it with a service user's token holding users.read.
    let (_, service) = app.member("svc@example.com", "permission-checker").await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let (reviewer, _) = app.member("rita@example.com", "reviewer").await;

    let allowed = check_as(&app, &service, &agent.id, "conversations.reply")
        .await
        .unwrap();
    assert!(allowed.allowed);
    assert_eq!(allowed.role, "agent");
    assert!(
        !check_as(&app, &service, &agent.id, "users.manage")
            .await
            .unwrap()
            .allowed
    );
    let custom = check_as(&app, &service, &reviewer.id, "reports.read")
        .await
        .unwrap();
    assert!(custom.allowed);
    assert_eq!(custom.role, "reviewer");
    assert!(
        !check_as(&app, &service, &reviewer.id, "conversations.read")
            .await
            .unwrap()
            .allowed
    );

    // A change to the custom role answers at once.
    update_as(&app, &app.owner_token, "reviewer", &["conversations.read"])
        .await
        .unwrap();
    assert!(
        check_as(&app, &service, &reviewer.id, "conversations.read")
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !check_as(&app, &service, &reviewer.id, "reports.read")
            .await
            .unwrap()
            .allowed
    );

    let owner = app.owner_id.to_string();
    assert!(
        check_as(&app, &service, &owner, "roles.manage")
            .await
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn check_permission_says_no_for_a_deactivated_user() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.member("ada@example.com", "admin").await;
    assert!(
        check_as(&app, &app.owner_token, &admin.id, "users.read")
            .await
            .unwrap()
            .allowed
    );
    app.manage_as(
        &app.owner_token,
        manage_request(
            &admin.id,
            Action::Deactivate(manage::Deactivate {
                reason: "left".into(),
            }),
        ),
    )
    .await
    .unwrap();
    let answer = check_as(&app, &app.owner_token, &admin.id, "users.read")
        .await
        .unwrap();
    assert!(!answer.allowed);
    assert_eq!(answer.role, "admin");
}

#[tokio::test]
async fn check_permission_needs_users_read_and_valid_input() {
    let app = TestApp::spawn().await;
    let (agent, agent_token) = app.member("ann@example.com", "agent").await;
    expect_error(
        check_as(&app, &agent_token, &agent.id, "conversations.read").await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    let status = expect_error(
        check_as(&app, &app.owner_token, &agent.id, "conversations.fly").await,
        Code::InvalidArgument,
        "PERMISSION_NOT_FOUND",
    );
    assert_eq!(violated_fields(&status), ["permission"]);
    let status = expect_error(
        check_as(&app, &app.owner_token, "not-a-uuid", "conversations.read").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["user_id"]);
    expect_error(
        check_as(
            &app,
            &app.owner_token,
            &uuid::Uuid::new_v4().to_string(),
            "users.read",
        )
        .await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
}

#[tokio::test]
async fn check_permission_about_a_user_of_another_workspace_is_not_found() {
    let app = TestApp::spawn().await;
    let other = bootstrap(
        &app.state,
        "Other",
        &EmailAddress::parse("other@example.com").unwrap(),
        "Other Owner",
        Password::parse(PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    expect_error(
        check_as(
            &app,
            &app.owner_token,
            &other.owner_id.to_string(),
            "users.read",
        )
        .await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
}
