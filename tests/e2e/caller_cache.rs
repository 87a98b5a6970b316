//! The caller cache of a replica: callers (and the users CheckPermission
//! asks about) are served from memory while the replica listens to Postgres,
//! yet a deactivated user, a changed role or a changed custom role is never
//! served from before the change; while the listener is down every call
//! reads Postgres.

use futures::StreamExt;
use tonic::{Code, Response, Status};
use uuid::Uuid;
use wowchat_users_api::v1::{self as proto, manage_user_request::Action};
use wowchat_users_testkit::{
    TestApp, change_role, deactivate, expect_error, get_user_request, permission_check, rename,
    role_update, wowchat_users_server::auth::invalidation,
};

use crate::support::eventually;

/// GetUser of `user_id` as the holder of `token`.
async fn get_user(
    app: &TestApp,
    token: &str,
    user_id: &str,
) -> Result<Response<proto::GetUserResponse>, Status> {
    let request = get_user_request(user_id);
    app.as_(token).users.get_user(request).await
}

/// CheckPermission of `user_id` for `permission`, asked by the owner.
async fn check_by_owner(
    app: &TestApp,
    user_id: &str,
    permission: &str,
) -> proto::CheckPermissionResponse {
    let request = permission_check(user_id, permission);
    let answer = app.as_owner().roles.check_permission(request).await;
    answer.expect("CheckPermission answers").into_inner()
}

/// `action` applied to `user_id` by the owner: the very next call of the
/// holder of `token` is refused for `reason`.
async fn refused_at_once(app: &TestApp, token: &str, user_id: &str, action: Action, reason: &str) {
    app.manage(user_id, action).await.unwrap();
    expect_error(
        get_user(app, token, user_id).await,
        Code::PermissionDenied,
        reason,
    );
}

async fn cache_serves(app: &TestApp) {
    eventually("the caller cache serves", || async {
        app.state.callers.is_serving()
    })
    .await;
}

/// GetUser of themselves as `token`, twice: the second call's caller comes
/// from memory.
async fn cached(app: &TestApp, token: &str, user_id: &str) {
    get_user(app, token, user_id).await.unwrap();
    let hits = app.state.callers.hits();
    get_user(app, token, user_id).await.unwrap();
    assert!(
        app.state.callers.hits() > hits,
        "the caller was served from memory"
    );
}

fn uuid(id: &str) -> Uuid {
    id.parse().unwrap()
}

#[tokio::test]
async fn a_deactivated_user_is_refused_on_the_very_next_call_though_they_were_cached() {
    let app = TestApp::spawn().await;
    let (user, token) = app.member("sue@example.com", "supervisor").await;
    cache_serves(&app).await;
    cached(&app, &token, &user.id).await;
    for _ in 0..2 {
        assert!(check_by_owner(&app, &user.id, "users.read").await.allowed);
    }

    let left = deactivate("left");
    refused_at_once(&app, &token, &user.id, left, "USER_DEACTIVATED").await;
    assert!(!check_by_owner(&app, &user.id, "users.read").await.allowed);
}

#[tokio::test]
async fn a_changed_role_applies_to_a_cached_caller_on_the_very_next_call() {
    let app = TestApp::spawn().await;
    let (user, token) = app.member("sue@example.com", "supervisor").await;
    cache_serves(&app).await;
    cached(&app, &token, &user.id).await;
    check_by_owner(&app, &user.id, "users.read").await;

    let to_agent = change_role("agent");
    refused_at_once(&app, &token, &user.id, to_agent, "PERMISSION_MISSING").await;
    let check = check_by_owner(&app, &user.id, "users.read").await;
    assert!(!check.allowed);
    assert_eq!(check.role, "agent");
}

#[tokio::test]
async fn a_custom_role_s_new_permissions_apply_to_its_cached_holders_at_once() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner();
    app.create_role("reader", &["users.read"]).await;
    let (user, token) = app.member("rea@example.com", "reader").await;
    cache_serves(&app).await;
    cached(&app, &token, &user.id).await;
    assert!(!check_by_owner(&app, &user.id, "reports.read").await.allowed);

    owner
        .roles
        .update_role(role_update("reader", &["reports.read"]))
        .await
        .unwrap();

    expect_error(
        get_user(&app, &token, &user.id).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    assert!(check_by_owner(&app, &user.id, "reports.read").await.allowed);
}

/// Changes made outside this replica reach it only through Postgres's
/// notifications: here, by hand in SQL, followed by the sync every
/// mutation of the service makes (`CallerCache::sync`), so the very next
/// call is known to come after the notification was applied.
#[tokio::test]
async fn changes_made_in_postgres_by_anyone_reach_the_cache_through_notifications() {
    let app = TestApp::spawn().await;
    app.create_role("reader", &["users.read"]).await;
    let (reader, reader_token) = app.member("rea@example.com", "reader").await;
    let (sue, sue_token) = app.member("sue@example.com", "supervisor").await;
    cache_serves(&app).await;
    cached(&app, &reader_token, &reader.id).await;
    cached(&app, &sue_token, &sue.id).await;
    let db = app.db().await;

    // A custom role deleted under its holder grants nothing any more.
    db.execute(
        "DELETE FROM roles WHERE workspace_id = $1 AND name = 'reader'",
        &[&app.workspace_id],
    )
    .await
    .unwrap();
    app.state.callers.sync(&app.state.pool).await;
    expect_error(
        get_user(&app, &reader_token, &reader.id).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );

    db.execute(
        "UPDATE users SET status = 'DEACTIVATED' WHERE workspace_id = $1 AND id = $2",
        &[&app.workspace_id, &uuid(&sue.id)],
    )
    .await
    .unwrap();
    app.state.callers.sync(&app.state.pool).await;
    expect_error(
        get_user(&app, &sue_token, &sue.id).await,
        Code::PermissionDenied,
        "USER_DEACTIVATED",
    );
}

#[tokio::test]
async fn a_change_notifies_but_last_activity_and_a_no_op_update_do_not() {
    let app = TestApp::spawn().await;
    let (sue, _) = app.member("sue@example.com", "supervisor").await;
    let (listener, mut connection) =
        tokio_postgres::connect(&app.database_url, tokio_postgres::NoTls)
            .await
            .unwrap();
    let (notifications, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = notifications.send(n.payload().to_owned());
            }
        }
    });
    listener
        .batch_execute("LISTEN caller_changed")
        .await
        .unwrap();
    let db = app.db().await;

    // Neither the last-active time of the owner nor an unchanged role notifies ...
    db.execute(
        "UPDATE users SET last_active_at = now() WHERE id = $1",
        &[&app.owner_id],
    )
    .await
    .unwrap();
    db.execute(
        "UPDATE users SET role = role WHERE id = $1",
        &[&app.owner_id],
    )
    .await
    .unwrap();
    // ... so the first notification is about Sue's new name.
    db.execute(
        "UPDATE users SET display_name = 'Susan' WHERE id = $1",
        &[&uuid(&sue.id)],
    )
    .await
    .unwrap();
    let payload = received.recv().await.expect("a notification");
    assert_eq!(payload, format!("{} {}", app.workspace_id, sue.id));
    // A custom role's change concerns the whole workspace.
    db.execute(
        "INSERT INTO roles (workspace_id, name, permissions, created_at, updated_at) \
         VALUES ($1, 'reader', '{users.read}', now(), now())",
        &[&app.workspace_id],
    )
    .await
    .unwrap();
    let payload = received.recv().await.expect("a notification");
    assert_eq!(payload, app.workspace_id.to_string());
}

#[tokio::test]
async fn while_the_listener_is_down_every_call_reads_postgres_and_once_back_the_cache_serves() {
    let app = TestApp::spawn().await;
    let (sue, token) = app.member("sue@example.com", "supervisor").await;
    cache_serves(&app).await;
    cached(&app, &token, &sue.id).await;
    let connections = app.state.callers.connections();
    let db = app.db().await;
    // A database cannot refuse connections by a command sent over one of its own.
    let (server, _) = app.database_url.rsplit_once('/').unwrap();
    let (admin, connection) =
        tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let allow_connections = |allowed: bool| {
        format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS {allowed}",
            app.database_name
        )
    };

    // The listener's connection is cut, and it cannot come back for now
    // (the server's pool keeps the connections it has).
    admin
        .batch_execute(&allow_connections(false))
        .await
        .unwrap();
    let terminated: i64 = db
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1",
            &[&invalidation::APPLICATION_NAME],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(terminated, 1);
    eventually("the cache stops serving", || async {
        !app.state.callers.is_serving()
    })
    .await;

    // Changed where no notification can reach the replica: still seen.
    db.execute(
        "UPDATE users SET role = 'agent' WHERE workspace_id = $1 AND id = $2",
        &[&app.workspace_id, &uuid(&sue.id)],
    )
    .await
    .unwrap();
    let hits = app.state.callers.hits();
    expect_error(
        get_user(&app, &token, &sue.id).await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    let check = check_by_owner(&app, &sue.id, "users.read").await;
    assert_eq!(check.role, "agent");
    assert_eq!(app.state.callers.hits(), hits, "nothing came from memory");

    // Back: the cache was emptied, and serves again.
    admin.batch_execute(&allow_connections(true)).await.unwrap();
    cache_serves(&app).await;
    assert!(app.state.callers.connections() > connections);
    cached(&app, &app.owner_token, &app.owner_id.to_string()).await;
    let check = check_by_owner(&app, &sue.id, "users.read").await;
    assert_eq!(check.role, "agent");
}

#[tokio::test]
async fn get_user_answers_from_memory_yet_reads_every_change_to_the_user() {
    let app = TestApp::spawn().await;
    let (user, _) = app.member("sue@example.com", "supervisor").await;
    cache_serves(&app).await;
    get_user(&app, &app.owner_token, &user.id).await.unwrap();
    let hits = app.state.callers.hits();
    get_user(&app, &app.owner_token, &user.id).await.unwrap();
    assert_eq!(
        app.state.callers.hits(),
        hits + 2,
        "both the caller and the user came from memory"
    );

    // Through the API: the answer comes after every replica dropped it.
    app.manage(&user.id, rename("Sue Renamed")).await.unwrap();
    let renamed = get_user(&app, &app.owner_token, &user.id)
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(renamed.display_name, "Sue Renamed");
    get_user(&app, &app.owner_token, &user.id).await.unwrap();

    // Behind the service's back, in a column no caller is made of: the
    // notification drops it all the same.
    app.db()
        .await
        .execute(
            "UPDATE users SET reporting_to = $2 WHERE id = $1",
            &[&uuid(&user.id), &app.owner_id],
        )
        .await
        .unwrap();
    let owner_id = app.owner_id.to_string();
    eventually("GetUser shows the new manager", || async {
        get_user(&app, &app.owner_token, &user.id)
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap()
            .reporting_to_user_id
            .is_some_and(|manager| manager == owner_id)
    })
    .await;
}
