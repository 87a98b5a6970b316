//! Retention keeps every table and queue bounded: old idempotency keys and
//! published outbox rows are pruned under one advisory lock, the dead-letter
//! queue is bounded in age and length, and a delivery result the database
//! refuses is dropped instead of requeued forever.

use std::time::Duration;

use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use prost::Message;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wowchat_mailer::amqp::{
    DEAD_LETTER_MAX_LENGTH, dead_letter_queue_arguments, declare_topology, mailer_queue_arguments,
};
use wowchat_platform::amqp::quorum;
use wowchat_users_api::topology::{Topology, results};
use wowchat_users_server::retention::{Pruned, Retention, RetentionSettings};
use wowchat_users_testkit::{TestApp, logs, ready_messages, test_amqp_url, until_consumed};

use crate::support::eventually;

/// Inserts one idempotency key created `age_secs` ago.
async fn key(db: &tokio_postgres::Client, app: &TestApp, age_secs: f64) -> String {
    let request_id = Uuid::new_v4().to_string();
    db.execute(
        "INSERT INTO idempotency_keys (workspace_id, actor_id, operation, request_id, fingerprint, created_at) \
         VALUES ($1, $2, 'test', $3, '\\x00', now() - make_interval(secs => $4))",
        &[&app.workspace_id, &app.owner_id, &request_id, &age_secs],
    )
    .await
    .unwrap();
    request_id
}

/// Inserts one outbox row created 2 h ago, published `published_secs_ago`
/// (None: not yet).
async fn outbox_row(
    db: &tokio_postgres::Client,
    app: &TestApp,
    published_secs_ago: Option<f64>,
) -> Uuid {
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO outbox (id, workspace_id, routing_key, message_type, payload, request_id, created_at, published_at, next_attempt_at) \
         VALUES ($1, $2, 'test.event', 'Test', '\\x00', 'r', now() - interval '2 hours', \
                 now() - make_interval(secs => $3), now() + interval '1 day')",
        &[&id, &app.workspace_id, &published_secs_ago],
    )
    .await
    .unwrap();
    id
}

async fn keys_left(db: &tokio_postgres::Client, ids: &[String]) -> i64 {
    db.query_one(
        "SELECT count(*) FROM idempotency_keys WHERE request_id = ANY($1)",
        &[&ids],
    )
    .await
    .unwrap()
    .get(0)
}

async fn outbox_left(db: &tokio_postgres::Client, ids: &[Uuid]) -> i64 {
    db.query_one("SELECT count(*) FROM outbox WHERE id = ANY($1)", &[&ids])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn old_keys_and_published_outbox_rows_are_pruned_while_recent_and_unpublished_ones_stay() {
    let app = TestApp::spawn_with(|s| {
        s.retention_interval_secs = 1;
        s.retention_idempotency_keys_secs = 3600;
        s.retention_published_outbox_secs = 3600;
        // Several batches per round.
        s.retention_batch_size = 2;
    })
    .await;
    let db = app.db().await;
    let mut old_keys = Vec::new();
    for _ in 0..5 {
        old_keys.push(key(&db, &app, 7200.0).await);
    }
    let recent_key = key(&db, &app, 60.0).await;
    let mut old_published = Vec::new();
    for _ in 0..5 {
        old_published.push(outbox_row(&db, &app, Some(7200.0)).await);
    }
    let recent_published = outbox_row(&db, &app, Some(60.0)).await;
    // Created long ago but never published: the relay still owes it.
    let unpublished = outbox_row(&db, &app, None).await;

    eventually("old keys and old published rows are pruned", || async {
        keys_left(&db, &old_keys).await == 0 && outbox_left(&db, &old_published).await == 0
    })
    .await;
    assert_eq!(keys_left(&db, &[recent_key]).await, 1, "a recent key stays");
    assert_eq!(
        outbox_left(&db, &[recent_published, unpublished]).await,
        2,
        "recently published and unpublished rows stay"
    );
}

#[tokio::test]
async fn one_replica_prunes_at_a_time_under_the_advisory_lock() {
    let app = TestApp::spawn_with(|s| s.retention = false).await;
    let db = app.db().await;
    for _ in 0..3 {
        key(&db, &app, 7200.0).await;
    }
    let retention = Retention::new(
        app.state.pool.clone(),
        RetentionSettings {
            interval: Duration::from_secs(60),
            idempotency_keys: Some(Duration::from_secs(3600)),
            published_outbox: Some(Duration::from_secs(3600)),
            batch_size: 2,
            activity_months: None,
        },
    );
    let stop = CancellationToken::new();

    // Another replica's session holds the lock: this one skips its round.
    let other = app.db().await;
    let held: bool = try_retention_lock(&other).await;
    assert!(held);
    assert_eq!(retention.prune_once(&stop).await.unwrap(), None);
    assert_eq!(
        db.query_one("SELECT count(*) FROM idempotency_keys", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        3
    );

    other
        .execute("SELECT pg_advisory_unlock(x'776f776368617401'::int8)", &[])
        .await
        .unwrap();
    assert_eq!(
        retention.prune_once(&stop).await.unwrap(),
        Some(Pruned {
            idempotency_keys: 3,
            published_outbox: 0,
            rate_limits: 0,
        })
    );
    // The lock went back with the round: the other session gets it again.
    let again: bool = try_retention_lock(&other).await;
    assert!(again, "the round released the lock");
}

/// Takes the retention lock in `session` if it is free, as another replica would.
async fn try_retention_lock(session: &tokio_postgres::Client) -> bool {
    let sql = "SELECT pg_try_advisory_lock(x'776f776368617401'::int8)";
    session.query_one(sql, &[]).await.unwrap().get(0)
}

async fn channel() -> (Connection, Channel) {
    let connection = Connection::connect(&test_amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// Ready messages in `queue`, or None when it does not exist.
async fn ready(connection: &Connection, queue: &str) -> Option<u32> {
    let channel = connection.create_channel().await.unwrap();
    let ready = ready_messages(&channel, queue).await.ok()?;
    let _ = channel.close(200, "done".into()).await;
    Some(ready)
}

/// Whether redeclaring `queue` with `arguments` is accepted: the broker
/// refuses (PRECONDITION_FAILED) any arguments but the queue's own.
async fn declared_with(connection: &Connection, queue: &str, arguments: FieldTable) -> bool {
    let channel = connection.create_channel().await.unwrap();
    let accepted = channel
        .queue_declare(queue.into(), QueueDeclareOptions::durable(), arguments)
        .await
        .is_ok();
    if accepted {
        let _ = channel.close(200, "done".into()).await;
    }
    accepted
}

#[tokio::test]
async fn the_dead_letter_queue_is_bounded_and_the_mailer_queue_has_a_delivery_limit() {
    let topology = Topology::new(format!("test-{}", Uuid::new_v4().simple()));
    let (connection, channel) = channel().await;
    declare_topology(&channel, &topology).await.unwrap();
    let dead = topology.mailer_dead_letter_queue();
    assert!(declared_with(&connection, &dead, dead_letter_queue_arguments()).await);
    assert!(
        !declared_with(&connection, &dead, quorum()).await,
        "the dead-letter queue has its TTL and length bound"
    );
    let mailer = topology.mailer_queue();
    assert!(declared_with(&connection, &mailer, mailer_queue_arguments(&topology)).await);
    let mut unlimited = quorum();
    unlimited.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(topology.mailer_dead_letter_exchange().into()),
    );
    assert!(
        !declared_with(&connection, &mailer, unlimited).await,
        "the mailer queue has a delivery limit"
    );

    // Past its length the queue drops its oldest messages.
    let publisher = connection.create_channel().await.unwrap();
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let over = u32::try_from(DEAD_LETTER_MAX_LENGTH).unwrap() + 20;
    let mut confirms = Vec::new();
    for i in 0..over {
        confirms.push(
            publisher
                .basic_publish(
                    topology.mailer_dead_letter_exchange().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    i.to_be_bytes().as_slice(),
                    BasicProperties::default(),
                )
                .await
                .unwrap(),
        );
    }
    for confirm in confirms {
        confirm.await.unwrap();
    }
    let max = u32::try_from(DEAD_LETTER_MAX_LENGTH).unwrap();
    eventually("the dead-letter queue holds at most its bound", || async {
        ready(&connection, &dead).await == Some(max)
    })
    .await;
    wowchat_users_testkit::delete_topology(&topology).await;
}

/// A server whose delivery-results consumer has declared its queue, a
/// RabbitMQ connection and channel of the test's own, and that queue.
async fn consuming_results() -> (TestApp, Connection, Channel, String) {
    let app = TestApp::spawn_with(|s| s.relay = true).await;
    let (connection, channel) = channel().await;
    let queue = app.topology.delivery_results_queue();
    // Consuming, so its queue is bound too: a result published between the
    // queue's declaration and its bindings would be routed nowhere.
    until_consumed(&queue).await;
    (app, connection, channel, queue)
}

/// Waits until the consumer has logged dropping the result about
/// `invitation_id`.
async fn refused_result_dropped(invitation_id: Uuid) {
    let marker = invitation_id.to_string();
    eventually("the refused result is dropped", || {
        let marker = marker.clone();
        async move { logs::any_line(|line| line.contains(&marker) && line.contains("dropped")) }
    })
    .await;
}

#[tokio::test]
async fn a_delivery_result_the_database_refuses_is_dropped_not_requeued_forever() {
    let (mut app, connection, channel, queue) = consuming_results().await;

    // Valid protobuf, but Postgres refuses a NUL byte in text: every try
    // would fail the same way.
    let invitation_id = Uuid::new_v4();
    let poison = wowchat_users_api::events::v1::InvitationDeliveryFailed {
        workspace_id: app.workspace_id.to_string(),
        invitation_id: invitation_id.to_string(),
        mail_message_id: Uuid::new_v4().to_string(),
        reason: "bad\0reason".into(),
        hard_bounce: false,
    };
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    channel
        .basic_publish(
            app.topology.events_exchange().into(),
            results::INVITATION_DELIVERY_FAILED.into(),
            BasicPublishOptions::default(),
            &poison.encode_to_vec(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    refused_result_dropped(invitation_id).await;
    // Stopped, the consumer holds nothing: a requeued result would be back
    // in the queue now.
    app.stop().await;
    assert_eq!(ready(&connection, &queue).await, Some(0));
}

#[tokio::test]
async fn results_arriving_together_are_all_recorded_and_a_refused_one_among_them_drops_alone() {
    let (mut app, connection, channel, queue) = consuming_results().await;
    const INVITATIONS: usize = 40;
    for i in 0..INVITATIONS {
        app.invite(&format!("batch{i}@example.com"), "agent").await;
    }
    let db = app.db().await;
    let sends: Vec<(Uuid, Uuid)> = db
        .query(
            "SELECT id, mail_message_id FROM invitations WHERE workspace_id = $1",
            &[&app.workspace_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(sends.len(), INVITATIONS);

    // Published back to back, so the consumer finds many waiting at once;
    // a result Postgres refuses (a NUL byte in text) sits in their midst.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let poison_id = Uuid::new_v4();
    let mut messages: Vec<(&str, Vec<u8>)> = sends
        .iter()
        .map(|(id, mail_message_id)| {
            let delivered = wowchat_users_api::events::v1::InvitationDelivered {
                workspace_id: app.workspace_id.to_string(),
                invitation_id: id.to_string(),
                mail_message_id: mail_message_id.to_string(),
            };
            (results::INVITATION_DELIVERED, delivered.encode_to_vec())
        })
        .collect();
    let poison = wowchat_users_api::events::v1::InvitationDeliveryFailed {
        workspace_id: app.workspace_id.to_string(),
        invitation_id: poison_id.to_string(),
        mail_message_id: Uuid::new_v4().to_string(),
        reason: "bad\0reason".into(),
        hard_bounce: false,
    };
    messages.insert(
        INVITATIONS / 2,
        (results::INVITATION_DELIVERY_FAILED, poison.encode_to_vec()),
    );
    let mut confirms = Vec::new();
    for (routing_key, body) in &messages {
        confirms.push(
            channel
                .basic_publish(
                    app.topology.events_exchange().into(),
                    (*routing_key).into(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default(),
                )
                .await
                .unwrap(),
        );
    }
    for confirm in confirms {
        confirm.await.unwrap();
    }

    eventually("every delivered invitation shows SENT", || async {
        let sent: i64 = db
            .query_one(
                "SELECT count(*) FROM invitations \
                 WHERE workspace_id = $1 AND delivery_status = 'SENT'",
                &[&app.workspace_id],
            )
            .await
            .unwrap()
            .get(0);
        sent == i64::try_from(INVITATIONS).unwrap()
    })
    .await;
    refused_result_dropped(poison_id).await;
    app.stop().await;
    assert_eq!(ready(&connection, &queue).await, Some(0));
}

#[tokio::test]
async fn the_mailer_prunes_old_dedupe_rows_and_keeps_recent_ones() {
    let app = TestApp::spawn().await;
    let smtp = wowchat_users_testkit::SmtpServer::start().await;
    let mut settings = app.mailer_settings(&smtp.url());
    settings.retention_sent_secs = 3600;
    settings.retention_interval_secs = 1;
    // Its table exists once the mailer has migrated.
    let _mailer = app.start_mailer(settings).await;
    let db = app.db().await;
    let (old, recent) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    for (id, age) in [(&old, 7200.0), (&recent, 60.0)] {
        db.execute(
            "INSERT INTO mailer_sent_messages (message_id, routing_key, sent_at) \
             VALUES ($1, 'mail.invitation', now() - make_interval(secs => $2))",
            &[id, &age],
        )
        .await
        .unwrap();
    }
    let left = |id: String| {
        let db = &db;
        async move {
            db.query_one(
                "SELECT count(*) FROM mailer_sent_messages WHERE message_id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
        }
    };
    eventually("the old dedupe row is pruned", || {
        let left = left(old.clone());
        async move { left.await == 0 }
    })
    .await;
    assert_eq!(left(recent.clone()).await, 1, "a recent dedupe row stays");
}

/// The activity log is partitioned by month: the entries written before
/// partitioning live in the first partition, retention makes the coming
/// months ahead and drops a whole month once it is past keeping, and the
/// log reads the same throughout.
#[tokio::test]
async fn the_activity_log_is_kept_by_the_month_and_old_months_are_dropped_whole() {
    let app = TestApp::spawn_with(|s| s.retention = false).await;
    let db = app.db().await;
    app.invite("kept@example.com", "agent").await;
    let before = activity_partitions(&db).await;
    for expected in ["activity_until_partitioning", "activity_unplanned"] {
        assert!(
            before.iter().any(|p| p == expected),
            "{expected} in {before:?}"
        );
    }
    assert_eq!(entries(&db, app.workspace_id).await, 1, "the invitation");

    let keeping = |months| {
        Retention::new(
            app.state.pool.clone(),
            RetentionSettings {
                interval: Duration::from_secs(60),
                idempotency_keys: None,
                published_outbox: None,
                batch_size: 100,
                activity_months: months,
            },
        )
    };
    let now = time::OffsetDateTime::now_utc();
    // Today: at most the third month ahead is made (the migration made
    // two), nothing goes.
    let (made, dropped) = keeping(Some(13))
        .keep_activity_partitions(now)
        .await
        .unwrap()
        .expect("the lock is free");
    assert!(made <= 1, "{made}");
    assert_eq!(dropped, 0);

    // Fifteen months on, keeping everything: every month up to three past
    // that one is made, none dropped.
    let later = now + time::Duration::days(15 * 31);
    let (made, dropped) = keeping(None)
        .keep_activity_partitions(later)
        .await
        .unwrap()
        .unwrap();
    assert!(made >= 15, "{made}");
    assert_eq!(dropped, 0);
    assert!(entries(&db, app.workspace_id).await >= 1);

    // Keeping 13 months: the first partition, with every entry of today,
    // goes whole.
    let (_, dropped) = keeping(Some(13))
        .keep_activity_partitions(later)
        .await
        .unwrap()
        .unwrap();
    assert!(dropped >= 1);
    let after = activity_partitions(&db).await;
    assert!(
        !after.iter().any(|p| p == "activity_until_partitioning"),
        "{after:?}"
    );
    let later_month = format!(
        "activity_{:04}_{:02}",
        later.year(),
        u8::from(later.month())
    );
    assert!(after.contains(&later_month), "{later_month} in {after:?}");
    assert_eq!(entries(&db, app.workspace_id).await, 0);

    // The log still takes entries and lists them.
    app.invite("after@example.com", "agent").await;
    let listed = app
        .as_owner()
        .users
        .list_activity(wowchat_users_api::v1::ListActivityRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.entries.len(), 1);
    assert_eq!(entries(&db, app.workspace_id).await, 1);
}

async fn activity_partitions(db: &tokio_postgres::Client) -> Vec<String> {
    db.query("SELECT name FROM activity_partitions() ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn entries(db: &tokio_postgres::Client, workspace: Uuid) -> i64 {
    db.query_one(
        "SELECT count(*) FROM activity WHERE workspace_id = $1",
        &[&workspace],
    )
    .await
    .unwrap()
    .get(0)
}
