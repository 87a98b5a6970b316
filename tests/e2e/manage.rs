//! Managing users (ManageUser) and reading them (GetUser, ListUsers,
//! ListActivity): every action, the rules between users (reporting cycles,
//! the last owner), privileges, deactivated callers, tenancy, etags,
//! idempotent retries and the activity log with its outbox events.

use std::{collections::HashSet, time::Duration};

use futures::future::join_all;
use prost::Message;
use tokio_postgres::types::ToSql;
use tonic::{Code, Request, Status, metadata::MetadataValue};
use uuid::Uuid;
use wowchat_users_api::v1::{
    self as proto,
    manage_user_request::{self as manage, Action},
};
use wowchat_users_testkit::{
    PASSWORD, TestApp, authed, expect_error, manage_request as on, reason, violated_fields,
    wowchat_users_server::{
        domain::{EmailAddress, user::Password},
        operations::bootstrap::bootstrap,
    },
};

// ---- helpers ----

fn rename(name: &str) -> Action {
    Action::UpdateProfile(manage::UpdateProfile {
        display_name: Some(name.into()),
    })
}

fn change_role(role: &str) -> Action {
    Action::ChangeRole(manage::ChangeRole { role: role.into() })
}

fn report_to(manager_id: &str) -> Action {
    Action::SetReportingTo(manage::SetReportingTo {
        reporting_to_user_id: manager_id.into(),
    })
}

fn clear_manager() -> Action {
    Action::ClearReportingTo(manage::ClearReportingTo {})
}

fn deactivate(reason: &str) -> Action {
    Action::Deactivate(manage::Deactivate {
        reason: reason.into(),
    })
}

fn reactivate() -> Action {
    Action::Reactivate(manage::Reactivate {})
}

/// `request` with `x-request-id: <id>`.
fn with_request_id<T>(mut request: Request<T>, id: &str) -> Request<T> {
    request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::try_from(id).unwrap());
    request
}

async fn get_as(app: &TestApp, token: &str, user_id: &str) -> Result<proto::User, Status> {
    app.client()
        .await
        .get_user(authed(
            token,
            proto::GetUserRequest {
                user_id: user_id.into(),
            },
        ))
        .await
        .map(|r| r.into_inner().user.expect("a user in the response"))
}

async fn list_users_as(
    app: &TestApp,
    token: &str,
    request: proto::ListUsersRequest,
) -> Result<proto::ListUsersResponse, Status> {
    app.client()
        .await
        .list_users(authed(token, request))
        .await
        .map(|r| r.into_inner())
}

async fn list_activity_as(
    app: &TestApp,
    token: &str,
    request: proto::ListActivityRequest,
) -> Result<proto::ListActivityResponse, Status> {
    app.client()
        .await
        .list_activity(authed(token, request))
        .await
        .map(|r| r.into_inner())
}

/// The activity entries matching `filter`, read by the owner in one page.
async fn activity(app: &TestApp, filter: proto::ListActivityRequest) -> Vec<proto::ActivityEntry> {
    let page = list_activity_as(
        app,
        &app.owner_token,
        proto::ListActivityRequest {
            page_size: 200,
            ..filter
        },
    )
    .await
    .expect("ListActivity succeeds");
    assert!(page.next_page_token.is_empty(), "expected one page");
    page.entries
}

/// Every user matching `filter`, walked page by page as the owner.
async fn walk_users(
    app: &TestApp,
    filter: proto::ListUsersRequest,
    page_size: i32,
) -> (Vec<proto::User>, Vec<i32>) {
    let mut users = Vec::new();
    let mut totals = Vec::new();
    let mut token = String::new();
    loop {
        let page = list_users_as(
            app,
            &app.owner_token,
            proto::ListUsersRequest {
                page_size,
                page_token: token.clone(),
                ..filter.clone()
            },
        )
        .await
        .expect("ListUsers succeeds");
        assert!(
            page.users.len() <= usize::try_from(page_size).unwrap(),
            "a page holds at most page_size users"
        );
        users.extend(page.users);
        totals.push(page.total_size);
        if page.next_page_token.is_empty() {
            return (users, totals);
        }
        assert!(totals.len() < 100, "pagination does not end");
        token = page.next_page_token;
    }
}

fn ids<'a>(users: impl IntoIterator<Item = &'a proto::User>) -> HashSet<String> {
    users.into_iter().map(|u| u.id.clone()).collect()
}

fn id_set(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

async fn count(app: &TestApp, sql: &str, params: &[&(dyn ToSql + Sync)]) -> i64 {
    app.db()
        .await
        .query_one(sql, params)
        .await
        .expect("count query")
        .get(0)
}

async fn active_owners(app: &TestApp) -> i64 {
    count(
        app,
        "SELECT count(*) FROM users WHERE workspace_id = $1 AND role = 'owner' AND status = 'ACTIVE'",
        &[&app.workspace_id],
    )
    .await
}

fn change(field: &str, old: &str, new: &str) -> proto::FieldChange {
    proto::FieldChange {
        field: field.into(),
        old_value: old.into(),
        new_value: new.into(),
    }
}

fn uuid_of(id: &str) -> Uuid {
    id.parse().expect("a UUID")
}

// ---- 1. each action is applied, returned, and moves the etag ----

#[tokio::test]
async fn updating_the_display_name_returns_the_renamed_user_with_a_new_etag() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let renamed = app
        .manage_as(&app.owner_token, on(&agent.id, rename("Ann Lee")))
        .await
        .unwrap();
    assert_eq!(renamed.id, agent.id);
    assert_eq!(renamed.display_name, "Ann Lee");
    assert_eq!(renamed.role, "agent");
    assert_eq!(renamed.status(), proto::UserStatus::Active);
    assert_ne!(renamed.etag, agent.etag);

    let read = get_as(&app, &app.owner_token, &agent.id).await.unwrap();
    assert_eq!(read.display_name, "Ann Lee");
    assert_eq!(read.etag, renamed.etag);
}

#[tokio::test]
async fn changing_the_role_returns_the_user_with_the_new_role_and_a_new_etag() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let promoted = app
        .manage_as(&app.owner_token, on(&agent.id, change_role("admin")))
        .await
        .unwrap();
    assert_eq!(promoted.role, "admin");
    assert_ne!(promoted.etag, agent.etag);

    let read = get_as(&app, &app.owner_token, &agent.id).await.unwrap();
    assert_eq!(read.role, "admin");
    assert_eq!(read.etag, promoted.etag);
}

#[tokio::test]
async fn setting_and_clearing_the_manager_are_returned_with_a_new_etag_each_time() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let (supervisor, _) = app.member("sue@example.com", "supervisor").await;
    assert_eq!(agent.reporting_to_user_id, None);

    let managed = app
        .manage_as(&app.owner_token, on(&agent.id, report_to(&supervisor.id)))
        .await
        .unwrap();
    assert_eq!(managed.reporting_to_user_id, Some(supervisor.id.clone()));
    assert_ne!(managed.etag, agent.etag);

    let cleared = app
        .manage_as(&app.owner_token, on(&agent.id, clear_manager()))
        .await
        .unwrap();
    assert_eq!(cleared.reporting_to_user_id, None);
    assert_ne!(cleared.etag, managed.etag);
    assert_ne!(cleared.etag, agent.etag);

    let read = get_as(&app, &app.owner_token, &agent.id).await.unwrap();
    assert_eq!(read.reporting_to_user_id, None);
    assert_eq!(read.etag, cleared.etag);
}

#[tokio::test]
async fn deactivating_with_a_reason_and_reactivating_are_returned_with_a_new_etag_each_time() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    assert_eq!(agent.deactivation_reason, "");

    let deactivated = app
        .manage_as(
            &app.owner_token,
            on(&agent.id, deactivate("Left the company")),
        )
        .await
        .unwrap();
    assert_eq!(deactivated.status(), proto::UserStatus::Deactivated);
    assert_eq!(deactivated.deactivation_reason, "Left the company");
    assert_ne!(deactivated.etag, agent.etag);
    let read = get_as(&app, &app.owner_token, &agent.id).await.unwrap();
    assert_eq!(read.status(), proto::UserStatus::Deactivated);
    assert_eq!(read.deactivation_reason, "Left the company");

    let reactivated = app
        .manage_as(&app.owner_token, on(&agent.id, reactivate()))
        .await
        .unwrap();
    assert_eq!(reactivated.status(), proto::UserStatus::Active);
    assert_eq!(reactivated.deactivation_reason, "", "empty while active");
    assert_ne!(reactivated.etag, deactivated.etag);
    assert_ne!(reactivated.etag, agent.etag);
}

#[tokio::test]
async fn an_action_that_changes_nothing_succeeds_keeps_the_etag_and_logs_nothing() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let deactivated = app
        .manage_as(&app.owner_token, on(&agent.id, deactivate("Gone")))
        .await
        .unwrap();
    let logged_before = count(&app, "SELECT count(*) FROM activity", &[]).await;
    let published_before = count(&app, "SELECT count(*) FROM outbox", &[]).await;

    for action in [
        deactivate("Gone again"),
        change_role("agent"),
        clear_manager(),
        rename(&agent.display_name),
        Action::UpdateProfile(manage::UpdateProfile { display_name: None }),
    ] {
        let same = app
            .manage_as(&app.owner_token, on(&agent.id, action.clone()))
            .await
            .unwrap_or_else(|e| panic!("{action:?} should succeed: {e:?}"));
        assert_eq!(same.etag, deactivated.etag, "{action:?} changed the etag");
        assert_eq!(same.status(), proto::UserStatus::Deactivated);
        assert_eq!(same.deactivation_reason, "Gone", "{action:?}");
    }

    let reactivated = app
        .manage_as(&app.owner_token, on(&agent.id, reactivate()))
        .await
        .unwrap();
    let again = app
        .manage_as(&app.owner_token, on(&agent.id, reactivate()))
        .await
        .unwrap();
    assert_eq!(again.etag, reactivated.etag);
    assert_eq!(again.status(), proto::UserStatus::Active);

    // Only the one real change (the reactivation) was logged and published.
    assert_eq!(
        count(&app, "SELECT count(*) FROM activity", &[]).await,
        logged_before + 1
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM outbox", &[]).await,
        published_before + 1
    );
}

// ---- 2. malformed requests ----

#[tokio::test]
async fn a_manage_request_without_an_action_is_invalid_on_action() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let status = expect_error(
        app.manage_as(
            &app.owner_token,
            proto::ManageUserRequest {
                user_id: agent.id.clone(),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["action"]);
    let read = get_as(&app, &app.owner_token, &agent.id).await.unwrap();
    assert_eq!(read.etag, agent.etag);
}

#[tokio::test]
async fn a_manage_request_with_a_malformed_user_id_is_invalid_on_user_id() {
    let app = TestApp::spawn().await;

    for bad in ["", "not-a-uuid", "12345"] {
        let status = expect_error(
            app.manage_as(&app.owner_token, on(bad, rename("Nobody")))
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["user_id"], "user_id {bad:?}");
    }
}

#[tokio::test]
async fn managing_an_unknown_user_is_not_found() {
    let app = TestApp::spawn().await;

    expect_error(
        app.manage_as(
            &app.owner_token,
            on(&Uuid::now_v7().to_string(), rename("Nobody")),
        )
        .await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
}

#[tokio::test]
async fn changing_to_an_unknown_role_is_invalid_on_the_role() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let status = expect_error(
        app.manage_as(&app.owner_token, on(&agent.id, change_role("root")))
            .await,
        Code::InvalidArgument,
        "ROLE_NOT_FOUND",
    );
    assert_eq!(violated_fields(&status), ["change_role.role"]);
}

#[tokio::test]
async fn a_deactivation_reason_over_500_characters_is_invalid() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let status = expect_error(
        app.manage_as(
            &app.owner_token,
            on(&agent.id, deactivate(&"x".repeat(501))),
        )
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["deactivate.reason"]);
    let read = get_as(&app, &app.owner_token, &agent.id).await.unwrap();
    assert_eq!(read.status(), proto::UserStatus::Active);
}

// ---- 3. reporting lines ----

#[tokio::test]
async fn making_a_manager_report_to_their_own_report_is_a_reporting_cycle() {
    let app = TestApp::spawn().await;
    let (a, _) = app.member("a@example.com", "agent").await;
    let (b, _) = app.member("b@example.com", "supervisor").await;
    app.manage_as(&app.owner_token, on(&a.id, report_to(&b.id)))
        .await
        .unwrap();
    let b_before = get_as(&app, &app.owner_token, &b.id).await.unwrap();

    expect_error(
        app.manage_as(&app.owner_token, on(&b.id, report_to(&a.id)))
            .await,
        Code::FailedPrecondition,
        "REPORTING_CYCLE",
    );
    let b_after = get_as(&app, &app.owner_token, &b.id).await.unwrap();
    assert_eq!(b_after.reporting_to_user_id, None);
    assert_eq!(b_after.etag, b_before.etag);
}

#[tokio::test]
async fn closing_a_longer_reporting_chain_into_a_loop_is_a_reporting_cycle() {
    let app = TestApp::spawn().await;
    let (a, _) = app.member("a@example.com", "agent").await;
    let (b, _) = app.member("b@example.com", "agent").await;
    let (c, _) = app.member("c@example.com", "supervisor").await;
    let (d, _) = app.member("d@example.com", "admin").await;
    // a -> b -> c -> d
    for (user, manager) in [(&a, &b), (&b, &c), (&c, &d)] {
        app.manage_as(&app.owner_token, on(&user.id, report_to(&manager.id)))
            .await
            .unwrap();
    }

    for top_to in [&a, &b] {
        expect_error(
            app.manage_as(&app.owner_token, on(&d.id, report_to(&top_to.id)))
                .await,
            Code::FailedPrecondition,
            "REPORTING_CYCLE",
        );
    }
    expect_error(
        app.manage_as(&app.owner_token, on(&c.id, report_to(&a.id)))
            .await,
        Code::FailedPrecondition,
        "REPORTING_CYCLE",
    );
    let d_after = get_as(&app, &app.owner_token, &d.id).await.unwrap();
    assert_eq!(d_after.reporting_to_user_id, None);

    // Not a cycle: the top of the chain may report to someone outside it,
    // and a member may skip a level.
    app.manage_as(
        &app.owner_token,
        on(&d.id, report_to(&app.owner_id.to_string())),
    )
    .await
    .unwrap();
    app.manage_as(&app.owner_token, on(&a.id, report_to(&c.id)))
        .await
        .unwrap();
}

#[tokio::test]
async fn reporting_to_oneself_is_a_reporting_cycle() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    expect_error(
        app.manage_as(&app.owner_token, on(&agent.id, report_to(&agent.id)))
            .await,
        Code::FailedPrecondition,
        "REPORTING_CYCLE",
    );
    let owner = app.owner_id.to_string();
    expect_error(
        app.manage_as(&app.owner_token, on(&owner, report_to(&owner)))
            .await,
        Code::FailedPrecondition,
        "REPORTING_CYCLE",
    );
}

#[tokio::test]
async fn reporting_to_a_deactivated_user_is_refused() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let (supervisor, _) = app.member("sue@example.com", "supervisor").await;
    app.manage_as(&app.owner_token, on(&supervisor.id, deactivate("Left")))
        .await
        .unwrap();

    expect_error(
        app.manage_as(&app.owner_token, on(&agent.id, report_to(&supervisor.id)))
            .await,
        Code::FailedPrecondition,
        "REPORTING_TO_INACTIVE",
    );
    let read = get_as(&app, &app.owner_token, &agent.id).await.unwrap();
    assert_eq!(read.reporting_to_user_id, None);
}

#[tokio::test]
async fn reporting_to_an_unknown_user_is_invalid() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let status = expect_error(
        app.manage_as(
            &app.owner_token,
            on(&agent.id, report_to(&Uuid::now_v7().to_string())),
        )
        .await,
        Code::InvalidArgument,
        "REPORTING_TO_NOT_FOUND",
    );
    assert_eq!(
        violated_fields(&status),
        ["set_reporting_to.reporting_to_user_id"]
    );
}

// ---- 4. the last owner ----

#[tokio::test]
async fn the_only_owner_cannot_be_demoted_or_deactivated_even_by_themselves() {
    let app = TestApp::spawn().await;
    let owner = app.owner_id.to_string();
    let before = get_as(&app, &app.owner_token, &owner).await.unwrap();

    for role in ["admin", "agent"] {
        expect_error(
            app.manage_as(&app.owner_token, on(&owner, change_role(role)))
                .await,
            Code::FailedPrecondition,
            "LAST_OWNER",
        );
    }
    expect_error(
        app.manage_as(&app.owner_token, on(&owner, deactivate("Bye")))
            .await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );

    let after = get_as(&app, &app.owner_token, &owner).await.unwrap();
    assert_eq!(after.role, "owner");
    assert_eq!(after.status(), proto::UserStatus::Active);
    assert_eq!(after.etag, before.etag);
    assert_eq!(active_owners(&app).await, 1);
}

#[tokio::test]
async fn with_a_second_active_owner_the_first_can_be_demoted() {
    let app = TestApp::spawn().await;
    let (second, second_token) = app.member("second@example.com", "owner").await;
    assert_eq!(second.role, "owner");

    let demoted = app
        .manage_as(
            &second_token,
            on(&app.owner_id.to_string(), change_role("admin")),
        )
        .await
        .unwrap();
    assert_eq!(demoted.role, "admin");
    assert_eq!(active_owners(&app).await, 1);

    // Now the second owner is the last one.
    expect_error(
        app.manage_as(&second_token, on(&second.id, change_role("admin")))
            .await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );
    expect_error(
        app.manage_as(&second_token, on(&second.id, deactivate("Bye")))
            .await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );
}

#[tokio::test]
async fn an_owner_may_deactivate_themselves_while_another_owner_is_active() {
    let app = TestApp::spawn().await;
    let (second, second_token) = app.member("second@example.com", "owner").await;

    let gone = app
        .manage_as(&second_token, on(&second.id, deactivate("Sabbatical")))
        .await
        .unwrap();
    assert_eq!(gone.status(), proto::UserStatus::Deactivated);
    assert_eq!(active_owners(&app).await, 1);
}

#[tokio::test]
async fn a_deactivated_owner_does_not_count_as_another_owner() {
    let app = TestApp::spawn().await;
    let (second, _) = app.member("second@example.com", "owner").await;
    app.manage_as(&app.owner_token, on(&second.id, deactivate("Left")))
        .await
        .unwrap();

    let owner = app.owner_id.to_string();
    expect_error(
        app.manage_as(&app.owner_token, on(&owner, change_role("admin")))
            .await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );
    expect_error(
        app.manage_as(&app.owner_token, on(&owner, deactivate("Bye")))
            .await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );
    // A deactivated owner may still be demoted: it leaves the active owner.
    let demoted = app
        .manage_as(&app.owner_token, on(&second.id, change_role("admin")))
        .await
        .unwrap();
    assert_eq!(demoted.role, "admin");
    assert_eq!(active_owners(&app).await, 1);
}

/// Two owners each apply `action` to the other at the same moment, several
/// times: exactly one wins each round and an active owner always remains.
async fn race_two_owners(action: fn() -> Action, restore: fn() -> Action) {
    let app = TestApp::spawn().await;
    let (second, second_token) = app.member("second@example.com", "owner").await;
    let owners = [
        (app.owner_id.to_string(), app.owner_token.clone()),
        (second.id.clone(), second_token),
    ];
    let client = app.client().await;

    for round in 0..5 {
        let calls = [(0, 1), (1, 0)].map(|(actor, target)| {
            let mut client = client.clone();
            let request = authed(&owners[actor].1, on(&owners[target].0, action()));
            async move { client.manage_user(request).await }
        });
        let [first, second] = calls;
        let (first, second) = tokio::join!(tokio::spawn(first), tokio::spawn(second));
        let outcomes = [first.unwrap(), second.unwrap()];

        let wins: Vec<usize> = (0..2).filter(|&i| outcomes[i].is_ok()).collect();
        assert_eq!(wins.len(), 1, "round {round}: {outcomes:?}");
        for failure in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            let refusal = (failure.code(), reason(failure));
            assert!(
                matches!(
                    (refusal.0, refusal.1.as_str()),
                    (Code::FailedPrecondition, "LAST_OWNER")
                        | (Code::PermissionDenied, "ROLE_ABOVE_CALLER")
                        | (Code::PermissionDenied, "USER_DEACTIVATED")
                ),
                "round {round}: unexpected refusal {failure:?}"
            );
        }
        assert_eq!(active_owners(&app).await, 1, "round {round}");

        // The survivor (the winner) puts the loser back for the next round.
        let winner = wins[0];
        let loser = 1 - winner;
        app.manage_as(&owners[winner].1, on(&owners[loser].0, restore()))
            .await
            .unwrap();
        app.manage_as(
            &owners[winner].1,
            on(&owners[loser].0, change_role("owner")),
        )
        .await
        .unwrap();
        assert_eq!(active_owners(&app).await, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_demoting_each_other_at_once_leave_exactly_one_active_owner() {
    race_two_owners(|| change_role("admin"), reactivate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_deactivating_each_other_at_once_leave_exactly_one_active_owner() {
    race_two_owners(|| deactivate("Coup"), reactivate).await;
}

// ---- 5. privileges ----

#[tokio::test]
async fn an_admin_cannot_make_anyone_an_owner() {
    let app = TestApp::spawn().await;
    let (_, admin_token) = app.member("adam@example.com", "admin").await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    expect_error(
        app.manage_as(&admin_token, on(&agent.id, change_role("owner")))
            .await,
        Code::PermissionDenied,
        "ROLE_ABOVE_CALLER",
    );
    assert_eq!(
        get_as(&app, &app.owner_token, &agent.id)
            .await
            .unwrap()
            .role,
        "agent"
    );
}

#[tokio::test]
async fn an_admin_cannot_manage_the_owner() {
    let app = TestApp::spawn().await;
    let (_, admin_token) = app.member("adam@example.com", "admin").await;
    let owner = app.owner_id.to_string();
    let before = get_as(&app, &app.owner_token, &owner).await.unwrap();

    for action in [
        deactivate("Hostile takeover"),
        change_role("agent"),
        rename("Not the owner"),
        report_to(&owner),
        clear_manager(),
    ] {
        expect_error(
            app.manage_as(&admin_token, on(&owner, action)).await,
            Code::PermissionDenied,
            "ROLE_ABOVE_CALLER",
        );
    }
    let after = get_as(&app, &app.owner_token, &owner).await.unwrap();
    assert_eq!(after.etag, before.etag);
    assert_eq!(after.status(), proto::UserStatus::Active);
}

#[tokio::test]
async fn agents_and_supervisors_cannot_manage_users() {
    let app = TestApp::spawn().await;
    let (agent, agent_token) = app.member("ann@example.com", "agent").await;
    let (supervisor, supervisor_token) = app.member("sue@example.com", "supervisor").await;

    for (token, target) in [
        (&agent_token, &supervisor.id),
        (&agent_token, &agent.id),
        (&supervisor_token, &agent.id),
        (&supervisor_token, &supervisor.id),
    ] {
        expect_error(
            app.manage_as(token, on(target, rename("Hacked"))).await,
            Code::PermissionDenied,
            "PERMISSION_MISSING",
        );
        expect_error(
            app.manage_as(token, on(target, deactivate("Hacked"))).await,
            Code::PermissionDenied,
            "PERMISSION_MISSING",
        );
    }
    assert_eq!(
        get_as(&app, &app.owner_token, &agent.id)
            .await
            .unwrap()
            .etag,
        agent.etag
    );
}

#[tokio::test]
async fn an_agent_cannot_read_the_activity_log_or_the_users() {
    let app = TestApp::spawn().await;
    let (agent, agent_token) = app.member("ann@example.com", "agent").await;

    expect_error(
        list_activity_as(&app, &agent_token, proto::ListActivityRequest::default()).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    expect_error(
        list_users_as(&app, &agent_token, proto::ListUsersRequest::default()).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    expect_error(
        get_as(&app, &agent_token, &agent.id).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
}

#[tokio::test]
async fn a_supervisor_can_read_the_users_and_the_activity_log() {
    let app = TestApp::spawn().await;
    let (_, supervisor_token) = app.member("sue@example.com", "supervisor").await;

    let users = list_users_as(&app, &supervisor_token, proto::ListUsersRequest::default())
        .await
        .unwrap();
    assert_eq!(users.total_size, 2);
    let log = list_activity_as(
        &app,
        &supervisor_token,
        proto::ListActivityRequest::default(),
    )
    .await
    .unwrap();
    assert!(!log.entries.is_empty());
}

#[tokio::test]
async fn an_admin_can_make_an_agent_a_supervisor() {
    let app = TestApp::spawn().await;
    let (admin, admin_token) = app.member("adam@example.com", "admin").await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let promoted = app
        .manage_as(&admin_token, on(&agent.id, change_role("supervisor")))
        .await
        .unwrap();
    assert_eq!(promoted.role, "supervisor");
    let entries = activity(
        &app,
        proto::ListActivityRequest {
            target_user_id: agent.id.clone(),
            action: "user.role_changed".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor_user_id, admin.id);
}

// ---- 6. deactivated callers ----

#[tokio::test]
async fn a_deactivated_users_token_is_refused_at_once_and_works_again_after_reactivation() {
    let app = TestApp::spawn().await;
    let (admin, admin_token) = app.member("adam@example.com", "admin").await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    list_users_as(&app, &admin_token, proto::ListUsersRequest::default())
        .await
        .expect("the admin's token works");

    app.manage_as(&app.owner_token, on(&admin.id, deactivate("Suspended")))
        .await
        .unwrap();

    expect_error(
        list_users_as(&app, &admin_token, proto::ListUsersRequest::default()).await,
        Code::PermissionDenied,
        "USER_DEACTIVATED",
    );
    expect_error(
        app.manage_as(&admin_token, on(&agent.id, deactivate("Revenge")))
            .await,
        Code::PermissionDenied,
        "USER_DEACTIVATED",
    );
    expect_error(
        app.manage_as(&admin_token, on(&admin.id, reactivate()))
            .await,
        Code::PermissionDenied,
        "USER_DEACTIVATED",
    );
    assert_eq!(
        get_as(&app, &app.owner_token, &agent.id)
            .await
            .unwrap()
            .status(),
        proto::UserStatus::Active
    );

    app.manage_as(&app.owner_token, on(&admin.id, reactivate()))
        .await
        .unwrap();
    let listed = list_users_as(&app, &admin_token, proto::ListUsersRequest::default())
        .await
        .expect("the same token works again");
    assert_eq!(listed.total_size, 3);
}

/// The caller's role is checked against the state the change is applied to:
/// a caller demoted while their request waits for the workspace lock must
/// not act with the role they had when the request arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_demoted_while_their_request_waits_cannot_use_the_old_role() {
    let app = TestApp::spawn().await;
    let (second, second_token) = app.member("second@example.com", "owner").await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    // The first owner's demotion of the second owner is under way: it holds
    // the workspace's membership lock and has changed the role, uncommitted.
    let mut demotion_db = app.db().await;
    let demotion = demotion_db.transaction().await.unwrap();
    demotion
        .execute(
            "SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE",
            &[&app.workspace_id],
        )
        .await
        .unwrap();
    demotion
        .execute(
            "UPDATE users SET role = 'admin', version = version + 1 WHERE workspace_id = $1 AND id = $2",
            &[&app.workspace_id, &uuid_of(&second.id)],
        )
        .await
        .unwrap();

    // Meanwhile the second owner tries to make the agent an owner.
    let mut client = app.client().await;
    let request = authed(&second_token, on(&agent.id, change_role("owner")));
    let promotion = tokio::spawn(async move { client.manage_user(request).await });

    // Wait until that request is queued behind the lock, then commit the demotion.
    let watcher = app.db().await;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the promotion waits for the workspace lock");
    demotion.commit().await.unwrap();

    let outcome = promotion.await.unwrap();
    let agent_after = get_as(&app, &app.owner_token, &agent.id).await.unwrap();
    assert_eq!(
        agent_after.role, "agent",
        "a demoted caller made someone owner: {outcome:?}"
    );
    expect_error(outcome, Code::PermissionDenied, "ROLE_ABOVE_CALLER");
}

// ---- 7. tenancy ----

#[tokio::test]
async fn users_of_another_workspace_are_invisible_and_untouchable() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
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
    let other_owner = other.owner_id.to_string();
    let owner = app.owner_id.to_string();

    // This workspace's owner cannot see or touch the other workspace's owner.
    expect_error(
        get_as(&app, &app.owner_token, &other_owner).await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    expect_error(
        app.manage_as(&app.owner_token, on(&other_owner, deactivate("Mine now")))
            .await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    expect_error(
        app.manage_as(&app.owner_token, on(&agent.id, report_to(&other_owner)))
            .await,
        Code::InvalidArgument,
        "REPORTING_TO_NOT_FOUND",
    );

    // And the other way round.
    for target in [&owner, &agent.id] {
        expect_error(
            get_as(&app, &other_token, target).await,
            Code::NotFound,
            "USER_NOT_FOUND",
        );
        expect_error(
            app.manage_as(&other_token, on(target, deactivate("Mine now")))
                .await,
            Code::NotFound,
            "USER_NOT_FOUND",
        );
        expect_error(
            app.manage_as(&other_token, on(target, rename("Mine now")))
                .await,
            Code::NotFound,
            "USER_NOT_FOUND",
        );
    }
    let theirs = list_users_as(&app, &other_token, proto::ListUsersRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(&theirs.users), id_set(&[&other_owner]));
    assert_eq!(theirs.total_size, 1);
    let searched = list_users_as(
        &app,
        &other_token,
        proto::ListUsersRequest {
            query: "example.com".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(ids(&searched.users), id_set(&[&other_owner]));
    let their_log = list_activity_as(&app, &other_token, proto::ListActivityRequest::default())
        .await
        .unwrap();
    assert!(
        their_log
            .entries
            .iter()
            .all(|e| e.workspace_id == other.workspace_id.to_string()),
        "{their_log:?}"
    );

    // Nothing changed in either workspace.
    let ours = list_users_as(&app, &app.owner_token, proto::ListUsersRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(&ours.users), id_set(&[&owner, &agent.id]));
    assert!(
        ours.users
            .iter()
            .all(|u| u.status() == proto::UserStatus::Active)
    );
    let other_after = get_as(&app, &other_token, &other_owner).await.unwrap();
    assert_eq!(other_after.status(), proto::UserStatus::Active);
    assert_eq!(other_after.display_name, "Other Owner");
}

// ---- 8. etags ----

#[tokio::test]
async fn a_manage_request_with_the_current_etag_succeeds() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    let renamed = app
        .manage_as(
            &app.owner_token,
            proto::ManageUserRequest {
                etag: agent.etag.clone(),
                ..on(&agent.id, rename("Ann Lee"))
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "Ann Lee");
    let promoted = app
        .manage_as(
            &app.owner_token,
            proto::ManageUserRequest {
                etag: renamed.etag.clone(),
                ..on(&agent.id, change_role("supervisor"))
            },
        )
        .await
        .unwrap();
    assert_eq!(promoted.role, "supervisor");
}

#[tokio::test]
async fn a_stale_etag_is_aborted_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let renamed = app
        .manage_as(&app.owner_token, on(&agent.id, rename("Ann Lee")))
        .await
        .unwrap();

    for action in [change_role("admin"), deactivate("Stale"), rename("Stale")] {
        expect_error(
            app.manage_as(
                &app.owner_token,
                proto::ManageUserRequest {
                    etag: agent.etag.clone(),
                    ..on(&agent.id, action)
                },
            )
            .await,
            Code::Aborted,
            "ETAG_MISMATCH",
        );
    }
    let read = get_as(&app, &app.owner_token, &agent.id).await.unwrap();
    assert_eq!(read, renamed);
}

#[tokio::test]
async fn a_malformed_etag_is_invalid_on_etag() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;

    for bad in ["garbage", "W/\"x\"", "\"1\""] {
        let status = expect_error(
            app.manage_as(
                &app.owner_token,
                proto::ManageUserRequest {
                    etag: bad.into(),
                    ..on(&agent.id, rename("Ann Lee"))
                },
            )
            .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["etag"], "etag {bad:?}");
    }
    let read = get_as(&app, &app.owner_token, &agent.id).await.unwrap();
    assert_eq!(read.etag, agent.etag);
}

// ---- 9. idempotent retries ----

#[tokio::test]
async fn a_retried_manage_request_returns_the_first_result_and_records_once() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let retried = proto::ManageUserRequest {
        request_id: "promote-ann-1".into(),
        ..on(&agent.id, change_role("supervisor"))
    };

    let first = app
        .manage_as(&app.owner_token, retried.clone())
        .await
        .unwrap();
    let second = app
        .manage_as(&app.owner_token, retried.clone())
        .await
        .unwrap();
    assert_eq!(second, first);
    assert_eq!(second.role, "supervisor");

    // Even after another change, the retry still answers with the first result.
    app.manage_as(&app.owner_token, on(&agent.id, rename("Ann Lee")))
        .await
        .unwrap();
    let third = app.manage_as(&app.owner_token, retried).await.unwrap();
    assert_eq!(third.etag, first.etag);

    let target = uuid_of(&agent.id);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM activity WHERE target_user_id = $1 AND action = 'user.role_changed'",
            &[&target],
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox WHERE routing_key = 'user.role_changed'",
            &[],
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_a_manage_request_apply_it_once() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let client = app.client().await;
    let request = proto::ManageUserRequest {
        request_id: "deactivate-ann".into(),
        ..on(&agent.id, deactivate("Left"))
    };

    let calls = (0..6).map(|_| {
        let mut client = client.clone();
        let request = authed(&app.owner_token, request.clone());
        tokio::spawn(async move { client.manage_user(request).await })
    });
    let users: Vec<proto::User> = join_all(calls)
        .await
        .into_iter()
        .map(|r| {
            r.unwrap()
                .expect("every retry succeeds")
                .into_inner()
                .user
                .unwrap()
        })
        .collect();
    assert!(users.iter().all(|u| u == &users[0]), "{users:?}");
    assert_eq!(users[0].status(), proto::UserStatus::Deactivated);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM activity WHERE action = 'user.deactivated'",
            &[],
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox WHERE routing_key = 'user.deactivated'",
            &[],
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_retried_invitation_returns_the_first_invitation_and_creates_one() {
    let app = TestApp::spawn().await;
    let request = proto::InviteUserRequest {
        email: "ann@example.com".into(),
        role: "agent".into(),
        request_id: "invite-ann-1".into(),
        ..Default::default()
    };
    let mut client = app.client().await;

    let first = client
        .invite_user(authed(&app.owner_token, request.clone()))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    let second = client
        .invite_user(authed(&app.owner_token, request))
        .await
        .expect("the retry succeeds, not INVITATION_PENDING")
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second, first);

    assert_eq!(
        count(&app, "SELECT count(*) FROM invitations", &[]).await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM activity WHERE action = 'invitation.created'",
            &[],
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox WHERE routing_key = 'mail.invitation'",
            &[],
        )
        .await,
        1
    );
}

#[tokio::test]
async fn reusing_a_request_id_for_another_request_is_refused() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let (other, _) = app.member("bob@example.com", "agent").await;

    app.manage_as(
        &app.owner_token,
        proto::ManageUserRequest {
            request_id: "shared-id".into(),
            ..on(&agent.id, change_role("supervisor"))
        },
    )
    .await
    .unwrap();
    for different in [
        on(&agent.id, change_role("admin")),
        on(&agent.id, rename("Someone else")),
        on(&other.id, change_role("supervisor")),
        proto::ManageUserRequest {
            etag: agent.etag.clone(),
            ..on(&agent.id, change_role("supervisor"))
        },
    ] {
        let status = expect_error(
            app.manage_as(
                &app.owner_token,
                proto::ManageUserRequest {
                    request_id: "shared-id".into(),
                    ..different
                },
            )
            .await,
            Code::InvalidArgument,
            "REQUEST_ID_REUSED",
        );
        assert_eq!(violated_fields(&status), ["request_id"]);
    }
    assert_eq!(
        get_as(&app, &app.owner_token, &agent.id)
            .await
            .unwrap()
            .role,
        "supervisor"
    );
    assert_eq!(
        get_as(&app, &app.owner_token, &other.id)
            .await
            .unwrap()
            .role,
        "agent"
    );

    let mut client = app.client().await;
    client
        .invite_user(authed(
            &app.owner_token,
            proto::InviteUserRequest {
                email: "carl@example.com".into(),
                role: "agent".into(),
                request_id: "invite-once".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let status = expect_error(
        client
            .invite_user(authed(
                &app.owner_token,
                proto::InviteUserRequest {
                    email: "dora@example.com".into(),
                    role: "agent".into(),
                    request_id: "invite-once".into(),
                    ..Default::default()
                },
            ))
            .await,
        Code::InvalidArgument,
        "REQUEST_ID_REUSED",
    );
    assert_eq!(violated_fields(&status), ["request_id"]);
    let dora = "dora@example.com";
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM invitations WHERE email_normalized = $1",
            &[&dora],
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_invitations_with_one_request_id_create_one_invitation() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let request = proto::InviteUserRequest {
        email: "ann@example.com".into(),
        role: "agent".into(),
        request_id: "invite-ann-concurrently".into(),
        ..Default::default()
    };

    let calls = (0..10).map(|_| {
        let mut client = client.clone();
        let request = authed(&app.owner_token, request.clone());
        tokio::spawn(async move { client.invite_user(request).await })
    });
    let invitations: Vec<proto::Invitation> = join_all(calls)
        .await
        .into_iter()
        .map(|r| {
            r.unwrap()
                .expect("every call succeeds")
                .into_inner()
                .invitation
                .unwrap()
        })
        .collect();
    let distinct: HashSet<&str> = invitations.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(distinct.len(), 1, "{distinct:?}");

    assert_eq!(
        count(&app, "SELECT count(*) FROM invitations", &[]).await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox WHERE routing_key = 'mail.invitation'",
            &[],
        )
        .await,
        1
    );
}

// ---- 10. the activity log and the outbox ----

#[tokio::test]
async fn a_change_is_logged_and_published_with_actor_target_changes_and_request_id() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let mut client = app.client().await;

    let promoted = client
        .manage_user(with_request_id(
            authed(&app.owner_token, on(&agent.id, change_role("supervisor"))),
            "req-promote-ann",
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();

    let entries = activity(
        &app,
        proto::ListActivityRequest {
            target_user_id: agent.id.clone(),
            action: "user.role_changed".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.workspace_id, app.workspace_id.to_string());
    assert_eq!(entry.actor_user_id, app.owner_id.to_string());
    assert_eq!(entry.target_user_id, agent.id);
    assert_eq!(entry.target_invitation_id, "");
    assert_eq!(entry.action, "user.role_changed");
    assert_eq!(entry.changes, [change("role", "agent", "supervisor")]);
    assert_eq!(entry.request_id, "req-promote-ann");
    assert!(entry.create_time.is_some());

    let rows = app
        .db()
        .await
        .query(
            "SELECT routing_key, message_type, payload FROM outbox WHERE request_id = $1",
            &[&"req-promote-ann"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, &str>(0), "user.role_changed");
    assert_eq!(rows[0].get::<_, &str>(1), "wowchat.users.v1.UserChanged");
    let event = proto::UserChanged::decode(rows[0].get::<_, &[u8]>(2)).unwrap();
    assert_eq!(event.user.as_ref(), Some(&promoted));
    assert_eq!(event.actor_user_id, app.owner_id.to_string());
    assert_eq!(event.changes, [change("role", "agent", "supervisor")]);
}

#[tokio::test]
async fn every_action_writes_its_entry_and_an_outbox_row_routed_by_the_action() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("ann@example.com", "agent").await;
    let owner = app.owner_id.to_string();
    let mut client = app.client().await;
    let steps = [
        ("act-1", rename("Ann Lee"), "user.updated"),
        ("act-2", change_role("supervisor"), "user.role_changed"),
        ("act-3", report_to(&owner), "user.reporting_to_changed"),
        ("act-4", clear_manager(), "user.reporting_to_changed"),
        ("act-5", deactivate("On leave"), "user.deactivated"),
        ("act-6", reactivate(), "user.reactivated"),
    ];
    for (request_id, action, _) in &steps {
        client
            .manage_user(with_request_id(
                authed(&app.owner_token, on(&agent.id, action.clone())),
                request_id,
            ))
            .await
            .unwrap();
    }

    let rows = app
        .db()
        .await
        .query(
            "SELECT request_id, routing_key FROM outbox WHERE request_id LIKE 'act-%' \
             ORDER BY request_id",
            &[],
        )
        .await
        .unwrap();
    let published: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected: Vec<(String, String)> = steps
        .iter()
        .map(|(id, _, action)| ((*id).to_owned(), (*action).to_owned()))
        .collect();
    assert_eq!(published, expected);

    let entries = activity(
        &app,
        proto::ListActivityRequest {
            target_user_id: agent.id.clone(),
            actor_user_id: owner.clone(),
            ..Default::default()
        },
    )
    .await;
    let logged: Vec<(&str, &str, &[proto::FieldChange])> = entries
        .iter()
        .map(|e| {
            (
                e.request_id.as_str(),
                e.action.as_str(),
                e.changes.as_slice(),
            )
        })
        .collect();
    let name_change = [change("display_name", &agent.display_name, "Ann Lee")];
    let role_change = [change("role", "agent", "supervisor")];
    let manager_set = [change("reporting_to", "", &owner)];
    let manager_cleared = [change("reporting_to", &owner, "")];
    let deactivation = [
        change("status", "ACTIVE", "DEACTIVATED"),
        change("deactivation_reason", "", "On leave"),
    ];
    let reactivation = [change("status", "DEACTIVATED", "ACTIVE")];
    assert_eq!(
        logged,
        vec![
            ("act-6", "user.reactivated", &reactivation[..]),
            ("act-5", "user.deactivated", &deactivation[..]),
            ("act-4", "user.reporting_to_changed", &manager_cleared[..]),
            ("act-3", "user.reporting_to_changed", &manager_set[..]),
            ("act-2", "user.role_changed", &role_change[..]),
            ("act-1", "user.updated", &name_change[..]),
        ],
        "newest first"
    );
}

#[tokio::test]
async fn the_activity_log_filters_by_actor_target_action_and_time() {
    let app = TestApp::spawn().await;
    let (admin, admin_token) = app.member("adam@example.com", "admin").await;
    let (ann, _) = app.member("ann@example.com", "agent").await;
    let (bob, _) = app.member("bob@example.com", "agent").await;
    let owner = app.owner_id.to_string();

    app.manage_as(&admin_token, on(&ann.id, rename("Ann by Admin")))
        .await
        .unwrap();
    app.manage_as(&app.owner_token, on(&bob.id, deactivate("Left")))
        .await
        .unwrap();
    app.manage_as(&app.owner_token, on(&ann.id, change_role("supervisor")))
        .await
        .unwrap();
    app.manage_as(&app.owner_token, on(&ann.id, rename("Ann by Owner")))
        .await
        .unwrap();

    // By actor.
    let by_admin = activity(
        &app,
        proto::ListActivityRequest {
            actor_user_id: admin.id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert!(by_admin.iter().all(|e| e.actor_user_id == admin.id));
    assert!(
        by_admin
            .iter()
            .any(|e| e.action == "user.updated" && e.target_user_id == ann.id)
    );
    let by_owner = activity(
        &app,
        proto::ListActivityRequest {
            actor_user_id: owner.clone(),
            action: "user.updated".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_owner.len(), 1);
    assert_eq!(by_owner[0].changes[0].new_value, "Ann by Owner");

    // By target.
    let about_bob = activity(
        &app,
        proto::ListActivityRequest {
            target_user_id: bob.id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert!(!about_bob.is_empty());
    assert!(about_bob.iter().all(|e| e.target_user_id == bob.id));
    assert!(about_bob.iter().any(|e| e.action == "user.deactivated"));

    // By action.
    let deactivations = activity(
        &app,
        proto::ListActivityRequest {
            action: "user.deactivated".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(deactivations.len(), 1);
    assert_eq!(deactivations[0].target_user_id, bob.id);
    assert_eq!(deactivations[0].actor_user_id, owner);

    // By time: start_time is inclusive, end_time exclusive.
    let about_ann = activity(
        &app,
        proto::ListActivityRequest {
            target_user_id: ann.id.clone(),
            actor_user_id: owner.clone(),
            ..Default::default()
        },
    )
    .await;
    let ann_actions: Vec<&str> = about_ann.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(ann_actions, ["user.updated", "user.role_changed"]);
    let role_changed_at = about_ann[1].create_time;
    let from_role_change = activity(
        &app,
        proto::ListActivityRequest {
            target_user_id: ann.id.clone(),
            start_time: role_changed_at,
            ..Default::default()
        },
    )
    .await;
    let ids_from: Vec<&str> = from_role_change.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids_from,
        [about_ann[0].id.as_str(), about_ann[1].id.as_str()]
    );
    let before_role_change = activity(
        &app,
        proto::ListActivityRequest {
            target_user_id: ann.id.clone(),
            end_time: role_changed_at,
            ..Default::default()
        },
    )
    .await;
    let actions_before: Vec<&str> = before_role_change
        .iter()
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(actions_before, ["user.updated", "invitation.accepted"]);
    assert_eq!(before_role_change[0].actor_user_id, admin.id);
    let exactly_the_role_change = activity(
        &app,
        proto::ListActivityRequest {
            target_user_id: ann.id.clone(),
            start_time: role_changed_at,
            end_time: about_ann[0].create_time,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(exactly_the_role_change.len(), 1);
    assert_eq!(exactly_the_role_change[0].id, about_ann[1].id);
}

#[tokio::test]
async fn the_invitee_accepting_is_logged_as_their_own_act() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.member("ann@example.com", "agent").await;

    let accepted = activity(
        &app,
        proto::ListActivityRequest {
            action: "invitation.accepted".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].target_user_id, ann.id);
    assert_eq!(
        accepted[0].actor_user_id, ann.id,
        "the contract: for AcceptInvitation the actor is the new user"
    );
}

#[tokio::test]
async fn activity_pages_walk_every_entry_once_newest_first() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.member("ann@example.com", "agent").await;
    let (bob, _) = app.member("bob@example.com", "agent").await;
    for name in ["Ann 1", "Ann 2", "Ann 3"] {
        app.manage_as(&app.owner_token, on(&ann.id, rename(name)))
            .await
            .unwrap();
    }
    app.manage_as(&app.owner_token, on(&bob.id, deactivate("Left")))
        .await
        .unwrap();

    let mut walked: Vec<proto::ActivityEntry> = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list_activity_as(
            &app,
            &app.owner_token,
            proto::ListActivityRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(page.entries.len() <= 3);
        walked.extend(page.entries);
        pages += 1;
        assert!(pages < 50, "pagination does not end");
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }

    let rows = app
        .db()
        .await
        .query(
            "SELECT id FROM activity WHERE workspace_id = $1 ORDER BY occurred_at DESC, id DESC",
            &[&app.workspace_id],
        )
        .await
        .unwrap();
    let stored: Vec<String> = rows
        .iter()
        .map(|r| r.get::<_, Uuid>(0).to_string())
        .collect();
    // 2 invitations created, 2 accepted, 4 changes.
    assert_eq!(stored.len(), 8);
    let walked_ids: Vec<String> = walked.iter().map(|e| e.id.clone()).collect();
    assert_eq!(walked_ids, stored, "every entry once, newest first");
    assert_eq!(pages, 3);
    for pair in walked.windows(2) {
        let (newer, older) = (pair[0].create_time.unwrap(), pair[1].create_time.unwrap());
        assert!(
            (newer.seconds, newer.nanos) >= (older.seconds, older.nanos),
            "newest first"
        );
    }
}

// ---- 11. GetUser and ListUsers ----

#[tokio::test]
async fn get_user_returns_the_user_as_listed() {
    let app = TestApp::spawn().await;
    let (ann, _) = app.member("Ann.Lee@Example.com", "agent").await;

    let read = get_as(&app, &app.owner_token, &ann.id).await.unwrap();
    assert_eq!(read, ann);
    assert_eq!(read.email, "Ann.Lee@Example.com");
    assert_eq!(read.workspace_id, app.workspace_id.to_string());
    assert!(read.create_time.is_some() && read.update_time.is_some());
    let listed = list_users_as(&app, &app.owner_token, proto::ListUsersRequest::default())
        .await
        .unwrap();
    assert!(listed.users.contains(&read));

    expect_error(
        get_as(&app, &app.owner_token, &Uuid::now_v7().to_string()).await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    let status = expect_error(
        get_as(&app, &app.owner_token, "nope").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["user_id"]);
}

#[tokio::test]
async fn list_users_filters_by_status_role_and_manager() {
    let app = TestApp::spawn().await;
    let owner = app.owner_id.to_string();
    let (ann, _) = app.member("ann@example.com", "agent").await;
    let (bob, _) = app.member("bob@example.com", "agent").await;
    let (sue, _) = app.member("sue@example.com", "supervisor").await;
    let (adam, _) = app.member("adam@example.com", "admin").await;
    app.manage_as(&app.owner_token, on(&ann.id, report_to(&sue.id)))
        .await
        .unwrap();
    app.manage_as(&app.owner_token, on(&bob.id, report_to(&sue.id)))
        .await
        .unwrap();
    app.manage_as(&app.owner_token, on(&sue.id, report_to(&owner)))
        .await
        .unwrap();
    app.manage_as(&app.owner_token, on(&bob.id, deactivate("Left")))
        .await
        .unwrap();

    let cases: Vec<(proto::ListUsersRequest, Vec<&str>)> = vec![
        (
            proto::ListUsersRequest::default(),
            vec![&owner, &ann.id, &bob.id, &sue.id, &adam.id],
        ),
        (
            proto::ListUsersRequest {
                status: proto::UserStatus::Deactivated as i32,
                ..Default::default()
            },
            vec![&bob.id],
        ),
        (
            proto::ListUsersRequest {
                status: proto::UserStatus::Active as i32,
                ..Default::default()
            },
            vec![&owner, &ann.id, &sue.id, &adam.id],
        ),
        (
            proto::ListUsersRequest {
                role: "agent".into(),
                ..Default::default()
            },
            vec![&ann.id, &bob.id],
        ),
        (
            proto::ListUsersRequest {
                role: "agent".into(),
                status: proto::UserStatus::Active as i32,
                ..Default::default()
            },
            vec![&ann.id],
        ),
        (
            proto::ListUsersRequest {
                role: "owner".into(),
                ..Default::default()
            },
            vec![&owner],
        ),
        (
            proto::ListUsersRequest {
                reporting_to_user_id: sue.id.clone(),
                ..Default::default()
            },
            vec![&ann.id, &bob.id],
        ),
        (
            proto::ListUsersRequest {
                reporting_to_user_id: owner.clone(),
                ..Default::default()
            },
            vec![&sue.id],
        ),
        (
            proto::ListUsersRequest {
                reporting_to_user_id: sue.id.clone(),
                status: proto::UserStatus::Deactivated as i32,
                role: "agent".into(),
                ..Default::default()
            },
            vec![&bob.id],
        ),
        (
            proto::ListUsersRequest {
                role: "supervisor".into(),
                reporting_to_user_id: sue.id.clone(),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        let page = list_users_as(&app, &app.owner_token, filter.clone())
            .await
            .unwrap();
        assert_eq!(ids(&page.users), id_set(&expected), "filter {filter:?}");
        assert_eq!(
            page.total_size,
            i32::try_from(expected.len()).unwrap(),
            "total_size of {filter:?}"
        );
        // Oldest first.
        let order: Vec<&str> = page.users.iter().map(|u| u.id.as_str()).collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|id| {
            [&owner, &ann.id, &bob.id, &sue.id, &adam.id]
                .iter()
                .position(|x| x.as_str() == *id)
        });
        assert_eq!(order, sorted, "oldest first for {filter:?}");
    }
}

#[tokio::test]
async fn list_users_query_matches_email_or_name_ignoring_case_and_wildcards_literally() {
    let app = TestApp::spawn().await;
    let owner = app.owner_id.to_string();
    let (ann, _) = app.member("ann_lee@example.com", "agent").await;
    let (annx, _) = app.member("annxlee@example.com", "agent").await;
    let (bob, _) = app.member("bob@example.com", "agent").await;
    let (carl, _) = app.member("carl@example.com", "agent").await;
    let (dora, _) = app.member("dora@example.com", "agent").await;
    for (user, name) in [
        (&ann, "Ann Lee"),
        (&annx, "Annx Lee"),
        (&bob, "100% Bob"),
        (&carl, "1000 Carl"),
        (&dora, "Zoë Ärger \\ Dora"),
    ] {
        app.manage_as(&app.owner_token, on(&user.id, rename(name)))
            .await
            .unwrap();
    }

    let cases: Vec<(&str, Vec<&str>)> = vec![
        // Email, ignoring case.
        ("ANN_LEE@", vec![&ann.id]),
        (
            "Example.COM",
            vec![&owner, &ann.id, &annx.id, &bob.id, &carl.id, &dora.id],
        ),
        // Display name, ignoring case.
        ("olive", vec![&owner]),
        ("ANN", vec![&ann.id, &annx.id]),
        ("ärger", vec![&dora.id]),
        ("ÄRGER", vec![&dora.id]),
        ("zoË", vec![&dora.id]),
        // `_`, `%` and `\` are plain characters.
        ("_", vec![&ann.id]),
        ("n_l", vec![&ann.id]),
        ("%", vec![&bob.id]),
        ("100%", vec![&bob.id]),
        ("0% b", vec![&bob.id]),
        ("\\", vec![&dora.id]),
        ("nobody", vec![]),
    ];
    for (query, expected) in cases {
        let page = list_users_as(
            &app,
            &app.owner_token,
            proto::ListUsersRequest {
                query: query.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(ids(&page.users), id_set(&expected), "query {query:?}");
        assert_eq!(
            page.total_size,
            i32::try_from(expected.len()).unwrap(),
            "total_size of query {query:?}"
        );
    }

    // The query combines with the other filters.
    app.manage_as(&app.owner_token, on(&annx.id, deactivate("Left")))
        .await
        .unwrap();
    let page = list_users_as(
        &app,
        &app.owner_token,
        proto::ListUsersRequest {
            query: "lee".into(),
            status: proto::UserStatus::Active as i32,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(ids(&page.users), id_set(&[&ann.id]));
    assert_eq!(page.total_size, 1);
}

#[tokio::test]
async fn list_users_pages_walk_every_user_once_and_count_all_matches() {
    let app = TestApp::spawn().await;
    let mut everyone = vec![app.owner_id.to_string()];
    for (email, role) in [
        ("a@example.com", "agent"),
        ("b@example.com", "agent"),
        ("c@example.com", "supervisor"),
        ("d@example.com", "agent"),
        ("e@example.com", "admin"),
        ("f@example.com", "agent"),
    ] {
        everyone.push(app.member(email, role).await.0.id);
    }

    for page_size in [1, 2, 4, 7, 200] {
        let (walked, totals) =
            walk_users(&app, proto::ListUsersRequest::default(), page_size).await;
        let walked_ids: Vec<String> = walked.iter().map(|u| u.id.clone()).collect();
        assert_eq!(
            walked_ids, everyone,
            "page size {page_size}: oldest first, once each"
        );
        assert!(
            totals.iter().all(|&t| t == 7),
            "page size {page_size}: {totals:?}"
        );
        let expected_pages = 7_usize.div_ceil(usize::try_from(page_size).unwrap());
        assert_eq!(totals.len(), expected_pages, "page size {page_size}");
    }

    // With a filter, pages walk the matches only.
    let agents = proto::ListUsersRequest {
        role: "agent".into(),
        ..Default::default()
    };
    let (walked, totals) = walk_users(&app, agents, 1).await;
    let walked_ids: Vec<&str> = walked.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(
        walked_ids,
        [&everyone[1], &everyone[2], &everyone[4], &everyone[6]]
    );
    assert!(totals.iter().all(|&t| t == 4), "{totals:?}");
}

/// Every page of a walk: (total_size, total_size_is_estimate).
async fn totals_of_walk(app: &TestApp, filter: proto::ListUsersRequest) -> Vec<(i32, bool)> {
    let mut totals = Vec::new();
    let mut token = String::new();
    loop {
        let page = list_users_as(
            app,
            &app.owner_token,
            proto::ListUsersRequest {
                page_token: token,
                ..filter.clone()
            },
        )
        .await
        .unwrap();
        totals.push((page.total_size, page.total_size_is_estimate));
        if page.next_page_token.is_empty() {
            return totals;
        }
        assert!(totals.len() < 100, "pagination does not end");
        token = page.next_page_token;
    }
}

#[tokio::test]
async fn list_users_counts_exactly_up_to_the_limit_and_estimates_above_it() {
    let app = TestApp::spawn_with(|s| s.list_exact_count_limit = 3).await;
    app.member("a1@example.com", "agent").await;
    let db = app.db().await;
    // Statistics from when two users existed.
    db.batch_execute("ANALYZE users").await.unwrap();
    app.member("a2@example.com", "agent").await;
    app.member("a3@example.com", "agent").await;
    app.member("s1@example.com", "supervisor").await;
    app.member("s2@example.com", "supervisor").await;
    let everyone = proto::ListUsersRequest {
        page_size: 2,
        ..Default::default()
    };

    // The stale statistics expect fewer than the limit; the count stops at
    // the limit and says "more than 3", flagged as an estimate.
    let page = list_users_as(&app, &app.owner_token, everyone.clone())
        .await
        .unwrap();
    assert_eq!(
        (page.total_size, page.total_size_is_estimate),
        (4, true),
        "a count beyond the limit is cut short"
    );

    // With fresh statistics: the planner's estimate, on every page.
    db.batch_execute("ANALYZE users").await.unwrap();
    assert_eq!(totals_of_walk(&app, everyone.clone()).await, [(6, true); 3]);

    // Matches up to the limit are counted exactly, on every page.
    let agents = proto::ListUsersRequest {
        page_size: 1,
        role: "agent".into(),
        ..Default::default()
    };
    assert_eq!(totals_of_walk(&app, agents).await, [(3, false); 3]);
    let supervisors = proto::ListUsersRequest {
        page_size: 1,
        role: "supervisor".into(),
        ..Default::default()
    };
    assert_eq!(totals_of_walk(&app, supervisors).await, [(2, false); 2]);

    // A listing that fits in one page is exact whatever the limit.
    let whole = list_users_as(
        &app,
        &app.owner_token,
        proto::ListUsersRequest {
            page_size: 50,
            ..everyone
        },
    )
    .await
    .unwrap();
    assert_eq!(whole.users.len(), 6);
    assert_eq!((whole.total_size, whole.total_size_is_estimate), (6, false));
}

#[tokio::test]
async fn a_page_token_used_with_different_filters_is_refused() {
    let app = TestApp::spawn().await;
    app.member("a@example.com", "agent").await;
    app.member("b@example.com", "agent").await;
    app.member("c@example.com", "supervisor").await;

    let first = list_users_as(
        &app,
        &app.owner_token,
        proto::ListUsersRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!first.next_page_token.is_empty());

    for different in [
        proto::ListUsersRequest {
            role: "agent".into(),
            ..Default::default()
        },
        proto::ListUsersRequest {
            status: proto::UserStatus::Active as i32,
            ..Default::default()
        },
        proto::ListUsersRequest {
            query: "example".into(),
            ..Default::default()
        },
        proto::ListUsersRequest {
            reporting_to_user_id: app.owner_id.to_string(),
            ..Default::default()
        },
    ] {
        let status = expect_error(
            list_users_as(
                &app,
                &app.owner_token,
                proto::ListUsersRequest {
                    page_size: 1,
                    page_token: first.next_page_token.clone(),
                    ..different.clone()
                },
            )
            .await,
            Code::InvalidArgument,
            "INVALID_PAGE_TOKEN",
        );
        assert_eq!(violated_fields(&status), ["page_token"], "{different:?}");
    }

    // A token of another listing, or a made-up one, is refused too.
    let log = list_activity_as(
        &app,
        &app.owner_token,
        proto::ListActivityRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for token in [log.next_page_token, "not-a-token".to_owned()] {
        expect_error(
            list_users_as(
                &app,
                &app.owner_token,
                proto::ListUsersRequest {
                    page_size: 1,
                    page_token: token,
                    ..Default::default()
                },
            )
            .await,
            Code::InvalidArgument,
            "INVALID_PAGE_TOKEN",
        );
    }

    // The same filters with another page size continue the listing.
    let next = list_users_as(
        &app,
        &app.owner_token,
        proto::ListUsersRequest {
            page_size: 10,
            page_token: first.next_page_token,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(next.users.len(), 3);
    assert!(next.next_page_token.is_empty());
}
