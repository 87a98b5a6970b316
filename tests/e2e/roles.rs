//! Roles and permissions (RoleService): the catalog, custom roles and their
//! rules (built-ins immutable, names unique, no escalation, no deleting a
//! role in use), custom roles wherever a role name is used, changes taking
//! effect on the holders' next call, and CheckPermission for other services.

use prost::Message;
use tonic::Code;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    InvitationAnswer, TestApp, authed, change_role, deactivate, delete_role_request,
    expect_above_caller, expect_denied, expect_error, expect_exists, expect_invalid_argument,
    expect_not_found, expect_permission_missing, expect_refused, expect_unauthenticated,
    get_user_request, invitation_request, new_role, permission_check, role_update, strings,
    violated_fields,
};

// ---- helpers ----

/// CheckPermission of `user_id` for `permission`, asked by the holder of `bearer`.
async fn check(
    app: &TestApp,
    bearer: &str,
    user_id: &str,
    permission: &str,
) -> proto::CheckPermissionResponse {
    let request = permission_check(user_id, permission);
    let answer = app.as_(bearer).roles.check_permission(request).await;
    answer.expect("CheckPermission answers").into_inner()
}

/// Whether CheckPermission, asked by the holder of `bearer`, allows
/// `permission` to `user_id`.
async fn is_allowed(app: &TestApp, bearer: &str, user_id: &str, permission: &str) -> bool {
    check(app, bearer, user_id, permission).await.allowed
}

/// The holder of `bearer` is denied (PERMISSION_DENIED for `reason`) the
/// creation of `new`, and emptying or deleting `existing`.
async fn every_role_change_denied(
    app: &TestApp,
    bearer: &str,
    new: proto::CreateRoleRequest,
    existing: &str,
    reason: &str,
) {
    let mut roles = app.as_(bearer).roles;
    expect_denied(roles.create_role(new).await, reason);
    let emptied = role_update(existing, &[]);
    expect_denied(roles.update_role(emptied).await, reason);
    let deleted = delete_role_request(existing);
    expect_denied(roles.delete_role(deleted).await, reason);
}

/// The `RoleChanged` events in the outbox, with their routing keys, oldest first.
async fn role_events(app: &TestApp) -> Vec<(String, wowchat_users_api::events::v1::RoleChanged)> {
    let rows = app.outbox().await.into_iter();
    rows.filter(|row| row.routing_key.starts_with("role."))
        .map(|row| {
            assert_eq!(row.message_type, "wowchat.users.events.v1.RoleChanged");
            let event =
                wowchat_users_api::events::v1::RoleChanged::decode(row.payload.as_slice()).unwrap();
            (row.routing_key, event)
        })
        .collect()
}

/// The activity log's role entries, newest first.
async fn role_activity(app: &TestApp) -> Vec<proto::ActivityEntry> {
    let entries = app.activity(proto::ListActivityRequest::default()).await;
    let roles = entries.into_iter();
    roles.filter(|e| e.action.starts_with("role.")).collect()
}

// ---- the catalog ----

/// Inviting `email` as `role` is refused: no role of that name here.
async fn expect_no_role(app: &TestApp, email: &str, role: &str) {
    let refused = app.try_invite(invitation_request(email, role)).await;
    expect_invalid_argument(refused, "ROLE_NOT_FOUND");
}

#[tokio::test]
async fn list_permissions_returns_the_whole_catalog_with_descriptions() {
    let app = TestApp::spawn().await;
    let (_, agent) = app.member("ann@example.com", "agent").await;
    // Any authenticated caller may read the catalog.
    let catalog = app
        .roles()
        .await
        .list_permissions(authed(&agent, proto::ListPermissionsRequest::default()))
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
    expect_unauthenticated(
        app.roles()
            .await
            .list_permissions(proto::ListPermissionsRequest::default())
            .await,
        "TOKEN_MISSING",
    );
}

// ---- custom roles ----

#[tokio::test]
async fn list_roles_shows_the_built_in_roles_then_the_workspace_s_custom_roles() {
    let app = TestApp::spawn().await;
    app.create_role("reviewer", &["reports.read"]).await;
    app.create_role("auditor", &["activity.read", "users.read"])
        .await;

    let listed = app.listed_roles().await;
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
    expect_permission_missing(
        app.as_(&supervisor)
            .roles
            .list_roles(proto::ListRolesRequest::default())
            .await,
    );
}

#[tokio::test]
async fn creating_a_role_records_activity_and_a_role_created_event() {
    let app = TestApp::spawn().await;
    let role = app
        .create_role("reviewer", &["reports.read", "users.read"])
        .await;
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
    let mut owner = app.as_owner();
    expect_exists(
        owner
            .roles
            .create_role(new_role("admin", &["users.read"]))
            .await,
        "ROLE_EXISTS",
    );
    app.create_role("reviewer", &["reports.read"]).await;
    expect_exists(
        owner
            .roles
            .create_role(new_role("reviewer", &["users.read"]))
            .await,
        "ROLE_EXISTS",
    );
    // The first one is untouched.
    let listed = app.listed_roles().await;
    let reviewer = listed.iter().find(|r| r.name == "reviewer").unwrap();
    assert_eq!(reviewer.permissions, ["reports.read"]);
}

#[tokio::test]
async fn unknown_permissions_and_bad_names_are_invalid_with_field_violations() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner();
    let status = expect_invalid_argument(
        owner
            .roles
            .create_role(new_role(
                "Bad Name",
                &["users.read", "users.fly", "users.read"],
            ))
            .await,
        "INVALID_ARGUMENT",
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["name", "permissions[1]", "permissions[2]"]);

    app.create_role("reviewer", &["reports.read"]).await;
    let status = expect_invalid_argument(
        owner
            .roles
            .update_role(role_update("reviewer", &["reports.write"]))
            .await,
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
    let mut owner = app.as_owner();
    for name in ["owner", "admin", "supervisor", "agent"] {
        expect_refused(
            owner
                .roles
                .update_role(role_update(name, &["users.read"]))
                .await,
            "ROLE_BUILT_IN",
        );
        expect_refused(
            owner.roles.delete_role(delete_role_request(name)).await,
            "ROLE_BUILT_IN",
        );
    }
    assert!(role_events(&app).await.is_empty());
}

#[tokio::test]
async fn managing_roles_needs_roles_manage() {
    let app = TestApp::spawn().await;
    app.create_role("reviewer", &["reports.read"]).await;
    let (_, supervisor) = app.member("sue@example.com", "supervisor").await;
    let helper = new_role("helper", &["reports.read"]);
    let missing = "PERMISSION_MISSING";
    every_role_change_denied(&app, &supervisor, helper, "reviewer", missing).await;
    // An admin holds roles.manage.
    let (_, admin) = app.member("ada@example.com", "admin").await;
    let helper = new_role("helper", &["reports.read"]);
    app.as_(&admin).roles.create_role(helper).await.unwrap();
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
    app.create_role("role-admin", &admin_like).await;
    app.create_role("reviewer", &["reports.read"]).await;
    let (_, role_admin) = app.member("ra@example.com", "role-admin").await;
    let mut role_admin = app.as_(&role_admin);

    // Not in a new role...
    let manager = new_role("manager", &["users.read", "users.manage"]);
    expect_above_caller(role_admin.roles.create_role(manager).await);
    // ...nor by adding it to an existing one, nor by giving their own role more.
    for (role, permissions) in [
        ("reviewer", ["reports.read", "users.manage"]),
        ("role-admin", ["roles.manage", "users.manage"]),
    ] {
        let more = role_update(role, &permissions);
        expect_above_caller(role_admin.roles.update_role(more).await);
    }
    // Nor by inviting someone as admin.
    let admin = invitation_request("x@example.com", "admin");
    expect_above_caller(role_admin.users.invite_user(admin).await);
    // Within their own permissions they may.
    let reader = new_role("reader", &["users.read", "reports.read"]);
    role_admin.roles.create_role(reader).await.unwrap();
    assert_eq!(role_events(&app).await.len(), 3);
}

#[tokio::test]
async fn a_role_manager_lacking_activity_read_cannot_create_or_touch_a_role_holding_it() {
    let app = TestApp::spawn().await;
    app.create_role("role-keeper", &["roles.manage", "users.read"])
        .await;
    app.create_role("auditor", &["activity.read"]).await;
    let (_, keeper) = app.member("kim@example.com", "role-keeper").await;

    // A role above the caller is not theirs to create, nor to shrink or
    // delete either.
    let snoop = new_role("snoop", &["activity.read"]);
    let above = "ROLE_ABOVE_CALLER";
    every_role_change_denied(&app, &keeper, snoop, "auditor", above).await;
    let reader = new_role("reader", &["users.read"]);
    app.as_(&keeper).roles.create_role(reader).await.unwrap();
}

#[tokio::test]
async fn a_role_held_by_a_user_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let mut roles = app.as_owner().roles;
    let mut delete = async || roles.delete_role(delete_role_request("reviewer")).await;
    app.create_role("reviewer", &["reports.read"]).await;
    let (user, _) = app.member("rita@example.com", "reviewer").await;
    expect_refused(delete().await, "ROLE_IN_USE");
    // Deactivated holders still hold it: they may be reactivated.
    app.manage(&user.id, deactivate("left")).await.unwrap();
    expect_refused(delete().await, "ROLE_IN_USE");
    // Once nobody holds it, it goes.
    app.manage(&user.id, change_role("agent")).await.unwrap();
    let deleted = delete().await.unwrap().into_inner().role.unwrap();
    assert_eq!(deleted.name, "reviewer");
    let names: Vec<String> = app
        .listed_roles()
        .await
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
    let mut owner = app.as_owner();
    app.create_role("reviewer", &["reports.read"]).await;
    let invitation = app.invite("pat@example.com", "reviewer").await;
    expect_refused(
        owner
            .roles
            .delete_role(delete_role_request("reviewer"))
            .await,
        "ROLE_IN_USE",
    );
    app.client()
        .await
        .revoke_invitation(authed(
            &app.owner_token,
            proto::RevokeInvitationRequest {
                invitation_id: invitation.id,
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    owner
        .roles
        .delete_role(delete_role_request("reviewer"))
        .await
        .unwrap();
    // Gone: it can no longer be granted, changed or deleted.
    expect_no_role(&app, "pat@example.com", "reviewer").await;
    expect_not_found(
        owner.roles.update_role(role_update("reviewer", &[])).await,
        "ROLE_NOT_FOUND",
    );
    expect_not_found(
        owner
            .roles
            .delete_role(delete_role_request("reviewer"))
            .await,
        "ROLE_NOT_FOUND",
    );
}

#[tokio::test]
async fn custom_roles_work_in_invite_user_and_manage_user() {
    let app = TestApp::spawn().await;
    app.create_role("reviewer", &["reports.read", "users.read"])
        .await;
    app.create_role("recruiter", &["users.read", "users.invite", "reports.read"])
        .await;

    // Invited with a custom role, accepted, and holding it.
    let (reviewer, _) = app.member("rita@example.com", "reviewer").await;
    assert_eq!(reviewer.role, "reviewer");
    // Changed to another custom role and back to a built-in one.
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let changed = app
        .manage(&agent.id, change_role("recruiter"))
        .await
        .unwrap();
    assert_eq!(changed.role, "recruiter");

    // A custom-role holder invites within their role's permissions.
    let recruiter = app.token_for(agent.id.parse().unwrap());
    let invited = app
        .as_(&recruiter)
        .users
        .invite_user(invitation_request("new@example.com", "reviewer"))
        .await
        .invitation();
    assert_eq!(invited.role, "reviewer");
    expect_above_caller(
        app.as_(&recruiter)
            .users
            .invite_user(invitation_request("new2@example.com", "agent"))
            .await,
    );
    // An unknown role is still refused.
    expect_invalid_argument(
        app.manage(&agent.id, change_role("ghost")).await,
        "ROLE_NOT_FOUND",
    );
    app.manage(&agent.id, change_role("agent")).await.unwrap();
}

#[tokio::test]
async fn a_custom_role_of_another_workspace_does_not_exist_here() {
    let app = TestApp::spawn().await;
    let other = app.other_workspace().await;
    let other_token = other.owner_token.clone();
    app.as_(&other_token)
        .roles
        .create_role(new_role("reviewer", &["reports.read"]))
        .await
        .unwrap();

    expect_no_role(&app, "x@example.com", "reviewer").await;
    assert!(
        !app.listed_roles()
            .await
            .iter()
            .any(|r| r.name == "reviewer")
    );
    // The same name is free here.
    app.create_role("reviewer", &["users.read"]).await;
}

#[tokio::test]
async fn a_changed_role_takes_effect_on_its_holders_very_next_call() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner();
    app.create_role("reviewer", &["reports.read"]).await;
    let (user, token) = app.member("rita@example.com", "reviewer").await;
    expect_permission_missing(
        app.as_(&token)
            .users
            .get_user(get_user_request(&user.id))
            .await,
    );

    let updated = owner
        .roles
        .update_role(role_update("reviewer", &["reports.read", "users.read"]))
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!(updated.permissions, ["users.read", "reports.read"]);
    app.as_(&token)
        .users
        .get_user(get_user_request(&user.id))
        .await
        .unwrap();

    owner
        .roles
        .update_role(role_update("reviewer", &["reports.read"]))
        .await
        .unwrap();
    expect_permission_missing(
        app.as_(&token)
            .users
            .get_user(get_user_request(&user.id))
            .await,
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
    let mut owner = app.as_owner();
    let created = app.create_role("reviewer", &["reports.read"]).await;
    let request = |etag: &str| proto::UpdateRoleRequest {
        name: "reviewer".into(),
        permissions: strings(&["users.read"]),
        etag: etag.into(),
        request_id: String::new(),
    };
    let updated = app
        .roles()
        .await
        .update_role(authed(&app.owner_token, request(&created.etag)))
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_ne!(updated.etag, created.etag);
    expect_error(
        app.roles()
            .await
            .update_role(authed(&app.owner_token, request(&created.etag)))
            .await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );
    // The same permissions again change nothing and record nothing.
    let same = owner
        .roles
        .update_role(role_update("reviewer", &["users.read"]))
        .await
        .unwrap()
        .into_inner()
        .role
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
    let create = async || {
        let mut roles = app.roles().await;
        let answer = roles.create_role(authed(&app.owner_token, request())).await;
        answer.unwrap().into_inner()
    };
    let first = create().await;
    let retried = create().await;
    assert_eq!(first, retried);
    assert_eq!(role_events(&app).await.len(), 1);
}

// ---- CheckPermission ----

#[tokio::test]
async fn check_permission_answers_from_the_user_s_role_built_in_or_custom() {
    let app = TestApp::spawn().await;
    app.create_role("permission-checker", &["users.read"]).await;
    app.create_role("reviewer", &["reports.read"]).await;
    // Other services call it with a service user's token holding users.read.
    let (_, service) = app.member("svc@example.com", "permission-checker").await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let (reviewer, _) = app.member("rita@example.com", "reviewer").await;

    let allowed = check(&app, &service, &agent.id, "conversations.reply").await;
    assert!(allowed.allowed);
    assert_eq!(allowed.role, "agent");
    assert!(!is_allowed(&app, &service, &agent.id, "users.manage").await);
    let custom = check(&app, &service, &reviewer.id, "reports.read").await;
    assert!(custom.allowed);
    assert_eq!(custom.role, "reviewer");
    assert!(!is_allowed(&app, &service, &reviewer.id, "conversations.read").await);

    // A change to the custom role answers at once.
    app.as_owner()
        .roles
        .update_role(role_update("reviewer", &["conversations.read"]))
        .await
        .unwrap();
    assert!(is_allowed(&app, &service, &reviewer.id, "conversations.read").await);
    assert!(!is_allowed(&app, &service, &reviewer.id, "reports.read").await);

    let owner = app.owner_id.to_string();
    assert!(is_allowed(&app, &service, &owner, "roles.manage").await);
}

#[tokio::test]
async fn check_permission_says_no_for_a_deactivated_user() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.member("ada@example.com", "admin").await;
    assert!(is_allowed(&app, &app.owner_token, &admin.id, "users.read").await);
    app.manage(&admin.id, deactivate("left")).await.unwrap();
    let answer = check(&app, &app.owner_token, &admin.id, "users.read").await;
    assert!(!answer.allowed);
    assert_eq!(answer.role, "admin");
}

#[tokio::test]
async fn check_permission_needs_users_read_and_valid_input() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner();
    let (agent, agent_token) = app.member("ann@example.com", "agent").await;
    expect_permission_missing(
        app.as_(&agent_token)
            .roles
            .check_permission(permission_check(&agent.id, "conversations.read"))
            .await,
    );
    let status = expect_invalid_argument(
        owner
            .roles
            .check_permission(permission_check(&agent.id, "conversations.fly"))
            .await,
        "PERMISSION_NOT_FOUND",
    );
    assert_eq!(violated_fields(&status), ["permission"]);
    let status = expect_invalid_argument(
        owner
            .roles
            .check_permission(permission_check("not-a-uuid", "conversations.read"))
            .await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["user_id"]);
    expect_not_found(
        owner
            .roles
            .check_permission(permission_check(
                &uuid::Uuid::new_v4().to_string(),
                "users.read",
            ))
            .await,
        "USER_NOT_FOUND",
    );
}

#[tokio::test]
async fn check_permission_about_a_user_of_another_workspace_is_not_found() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner();
    let other = app.other_workspace().await;
    expect_not_found(
        owner
            .roles
            .check_permission(permission_check(&other.owner_id.to_string(), "users.read"))
            .await,
        "USER_NOT_FOUND",
    );
}

#[tokio::test]
async fn roles_are_listed_a_page_at_a_time_without_repeats_or_gaps() {
    let app = TestApp::spawn().await;
    for name in ["reviewer", "billing", "night-shift"] {
        app.create_role(name, &["reports.read"]).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .roles()
            .await
            .list_roles(authed(
                &app.owner_token,
                proto::ListRolesRequest {
                    page_size: 2,
                    page_token: token.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.total_size >= 7, "{}", page.total_size);
        assert!(page.roles.len() <= 2);
        seen.extend(page.roles.into_iter().map(|r| r.name));
        pages += 1;
        // A role made between two pages appears once, in its place.
        if pages == 2 {
            app.create_role("auditor", &["reports.read"]).await;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        [
            "owner",
            "admin",
            "supervisor",
            "agent",
            "auditor",
            "billing",
            "night-shift",
            "reviewer"
        ]
    );
    // A token from another listing is refused.
    let foreign = app
        .client()
        .await
        .list_users(authed(
            &app.owner_token,
            proto::ListUsersRequest {
                page_token: token,
                ..Default::default()
            },
        ))
        .await;
    assert!(foreign.is_err());
}

#[tokio::test]
async fn the_permission_catalog_is_listed_a_page_at_a_time_in_its_order() {
    let app = TestApp::spawn().await;
    let whole = app
        .roles()
        .await
        .list_permissions(authed(
            &app.owner_token,
            proto::ListPermissionsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(whole.next_page_token.is_empty());
    assert_eq!(whole.total_size as usize, whole.permissions.len());
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .roles()
            .await
            .list_permissions(authed(
                &app.owner_token,
                proto::ListPermissionsRequest {
                    page_size: 3,
                    page_token: token,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.permissions.len() <= 3);
        paged.extend(page.permissions);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, whole.permissions);
}
