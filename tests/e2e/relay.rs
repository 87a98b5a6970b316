//! The outbox relay on the real RabbitMQ: every committed row is published
//! once, with its properties, only after a positive confirm with no return.

use std::{collections::HashMap, time::Duration};

use futures::StreamExt;
use lapin::{
    Channel, Connection, ConnectionProperties, ExchangeKind,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use tokio_util::sync::CancellationToken;
use wowchat_users_api::topology::{self, commands};
use wowchat_users_server::messaging::relay::{Relay, RelaySettings};
use wowchat_users_testkit::{
    InvitationAnswer, TestApp, ready_messages, test_amqp_url, traces::CallerTrace,
};

use crate::support::eventually;

/// A queue of the test's own, bound to `exchange` with `keys`.
pub async fn tap(
    exchange: &str,
    kind: ExchangeKind,
    keys: &[&str],
) -> (Connection, Channel, String) {
    let connection = Connection::connect(&test_amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_declare(
            exchange.into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let name = queue.name().as_str().to_owned();
    for key in keys {
        channel
            .queue_bind(
                name.as_str().into(),
                exchange.into(),
                (*key).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    (connection, channel, name)
}

/// A queue of the test's own that receives the mail commands.
async fn tap_mail_commands(app: &TestApp) -> (Connection, Channel, String) {
    let exchange = app.topology.commands_exchange();
    let routes = [commands::SEND_INVITATION_EMAIL];
    tap(&exchange, ExchangeKind::Direct, &routes).await
}

/// Reads messages from `queue` until `count` arrived or `timeout` passed.
pub async fn drain(
    channel: &Channel,
    queue: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Delivery> {
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while received.len() < count {
        match tokio::time::timeout_at(deadline, consumer.next()).await {
            Ok(Some(Ok(delivery))) => {
                delivery.ack(BasicAckOptions::default()).await.unwrap();
                received.push(delivery);
            }
            _ => break,
        }
    }
    received
}

fn header(delivery: &Delivery, name: &str) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(value) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        _ => None,
    }
}

/// Settings of a relay of the test's own on `app`'s outbox and names.
fn relay_settings(app: &TestApp, batch_size: i64) -> RelaySettings {
    let mut settings = wowchat_users_server::config::Settings::defaults();
    settings.database.url = app.database_url.clone().into();
    settings.amqp.url = test_amqp_url().into();
    settings.amqp.prefix = app.topology.prefix().to_owned();
    settings.relay_poll_ms = 20;
    settings.relay_batch_size = batch_size;
    settings.relay_retry_max_secs = 1;
    settings.relay_settings()
}

/// Writes `count` `invitation.created` rows into the outbox, oldest first,
/// as `store::outbox::insert` writes them (due when created), in one INSERT.
async fn fill_outbox(app: &TestApp, count: i64) {
    app.db()
        .await
        .execute(
            "INSERT INTO outbox (id, workspace_id, routing_key, message_type, payload, request_id, created_at, next_attempt_at) \
             SELECT gen_random_uuid(), $1, 'invitation.created', 'wowchat.users.events.v1.InvitationCreated', \
                    decode(repeat('ab', 300), 'hex'), '', t, t \
             FROM generate_series(1, $2::int8) AS i, LATERAL (SELECT now() - interval '1 hour' + i * interval '1 microsecond') AS at(t)",
            &[&app.workspace_id, &count],
        )
        .await
        .unwrap();
}

/// How many outbox rows are marked published.
async fn published_rows(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Runs a relay with batches of `batch_size` until `rows` outbox rows are
/// marked published, then stops it.
async fn relay_until_published(
    app: &TestApp,
    db: &tokio_postgres::Client,
    rows: i64,
    batch_size: i64,
) {
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(
            app.state.pool.clone(),
            relay_settings(app, batch_size),
            None,
        )
        .run(shutdown.clone()),
    );
    eventually("every row is published", || async {
        published_rows(db).await == rows
    })
    .await;
    shutdown.cancel();
    relay.await.unwrap();
}

async fn with_relay() -> TestApp {
    TestApp::spawn_with(|settings| settings.relay = true).await
}

#[tokio::test]
async fn committed_events_are_published_with_their_properties_and_marked_published() {
    let app = with_relay().await;
    let (_connection, channel, queue) = tap(
        &app.topology.events_exchange(),
        ExchangeKind::Topic,
        &["invitation.*"],
    )
    .await;
    let mut request = wowchat_users_testkit::authed(
        &app.owner_token,
        wowchat_users_api::v1::InviteUserRequest {
            email: "pat@example.com".into(),
            role: "agent".into(),
            ..Default::default()
        },
    );
    request.metadata_mut().insert(
        "x-request-id",
        "0e4f2a57-1d3c-4c58-9b43-5f1f2f0a8c11".parse().unwrap(),
    );
    let caller = CallerTrace::new();
    request
        .metadata_mut()
        .insert("traceparent", caller.traceparent.parse().unwrap());
    let invitation = app.client().await.invite_user(request).await.invitation();

    let delivered = drain(&channel, &queue, 1, Duration::from_secs(15)).await;
    assert_eq!(delivered.len(), 1, "the invitation.created event arrives");
    let event = &delivered[0];
    assert_eq!(event.routing_key.as_str(), "invitation.created");
    let properties = &event.properties;
    let message_id = properties
        .message_id()
        .as_ref()
        .unwrap()
        .as_str()
        .to_owned();
    assert_eq!(
        properties.kind().as_ref().unwrap().as_str(),
        "invitation.created"
    );
    assert_eq!(
        properties.content_type().as_ref().unwrap().as_str(),
        topology::CONTENT_TYPE
    );
    assert_eq!(
        properties.app_id().as_ref().unwrap().as_str(),
        "wowchat-users"
    );
    assert_eq!(*properties.delivery_mode(), Some(2));
    assert!(properties.timestamp().is_some());
    assert_eq!(
        header(event, topology::WORKSPACE_HEADER),
        Some(app.workspace_id.to_string())
    );
    assert_eq!(
        header(event, topology::REQUEST_ID_HEADER).as_deref(),
        Some("0e4f2a57-1d3c-4c58-9b43-5f1f2f0a8c11")
    );
    // The caller's trace, continued by the relay's publish span.
    let traceparent = header(event, topology::TRACEPARENT_HEADER).unwrap();
    assert!(
        traceparent.starts_with(&format!("00-{}-", caller.trace_id)),
        "{traceparent}"
    );
    assert!(!traceparent.contains(&caller.span_id), "{traceparent}");
    let decoded = <wowchat_users_api::events::v1::InvitationCreated as prost::Message>::decode(
        event.data.as_slice(),
    )
    .unwrap();
    assert_eq!(decoded.invitation.unwrap().id, invitation.id);

    // Marked once its confirm is in, which may be just after delivery.
    let db = app.db().await;
    eventually("the row is marked published", || async {
        db.query_one(
            "SELECT published_at IS NOT NULL FROM outbox WHERE id = $1::text::uuid",
            &[&message_id],
        )
        .await
        .unwrap()
        .get::<_, bool>(0)
    })
    .await;
}

#[tokio::test]
async fn a_publish_that_cannot_be_routed_is_not_marked_published() {
    let app = with_relay().await;
    let invitation = app.invite("nobody-listens@example.com", "agent").await;
    let db = app.db().await;
    let mail_row = || async {
        let row = db
            .query_one(
                "SELECT published_at IS NOT NULL, attempts, length(payload) FROM outbox WHERE routing_key = $1",
                &[&commands::SEND_INVITATION_EMAIL],
            )
            .await
            .unwrap();
        (
            row.get::<_, bool>(0),
            row.get::<_, i32>(1),
            row.get::<_, i32>(2),
        )
    };
    // No mailer queue is bound: the broker returns the command, the row stays.
    eventually("the command was tried and returned", || async {
        mail_row().await.1 >= 2
    })
    .await;
    let (published, _, payload_len) = mail_row().await;
    assert!(
        !published,
        "a returned message must not be marked published"
    );
    assert!(payload_len > 0);
    // The event, routable through the archive queue, did go out.
    eventually("the event is published", || async {
        db.query_one(
            "SELECT published_at IS NOT NULL FROM outbox WHERE routing_key = 'invitation.created'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, bool>(0)
    })
    .await;

    // Once a queue is bound to the route, the retry goes through and the
    // token leaves the outbox.
    let (_connection, channel, queue) = tap_mail_commands(&app).await;
    let delivered = drain(&channel, &queue, 1, Duration::from_secs(15)).await;
    assert_eq!(delivered.len(), 1);
    let command = <wowchat_users_api::events::v1::SendInvitationEmail as prost::Message>::decode(
        delivered[0].data.as_slice(),
    )
    .unwrap();
    assert_eq!(command.invitation.as_ref().unwrap().id, invitation.id);
    // The broker returned the command (token inside) several times; no log
    // line printed it, as text or as bytes.
    let logs = wowchat_users_testkit::logs::captured();
    let token = wowchat_users_testkit::open_token(&command);
    assert_eq!(token.len(), 43);
    assert!(!logs.contains(&token), "a log line contains the token");
    let as_bytes = format!("{:?}", token.as_bytes());
    assert!(
        !logs.contains(as_bytes.trim_matches(['[', ']'])),
        "a log line contains the token's bytes"
    );
    eventually("the command is marked published", || async {
        mail_row().await.0
    })
    .await;
    assert_eq!(
        mail_row().await.2,
        0,
        "no copy of the token stays in the outbox"
    );
}

#[tokio::test]
async fn several_relays_at_once_publish_each_row_once() {
    let app = with_relay().await;
    let (_connection, channel, queue) =
        tap(&app.topology.events_exchange(), ExchangeKind::Topic, &["#"]).await;
    // Two more relays on the same outbox, beside the one inside the server.
    let shutdown = CancellationToken::new();
    let settings = relay_settings(&app, 7);
    for _ in 0..2 {
        tokio::spawn(
            Relay::new(app.state.pool.clone(), settings.clone(), None).run(shutdown.clone()),
        );
    }

    let invitations = futures::future::join_all((0..60).map(|i| {
        let app = &app;
        async move { app.invite(&format!("person{i}@example.com"), "agent").await }
    }))
    .await;
    assert_eq!(invitations.len(), 60);

    let delivered = drain(&channel, &queue, 60, Duration::from_secs(30)).await;
    // Nothing more arrives afterwards.
    let extra = drain(&channel, &queue, 1, Duration::from_millis(500)).await;
    shutdown.cancel();
    let mut per_message: HashMap<String, usize> = HashMap::new();
    for delivery in delivered.iter().chain(extra.iter()) {
        let id = delivery
            .properties
            .message_id()
            .as_ref()
            .unwrap()
            .as_str()
            .to_owned();
        *per_message.entry(id).or_default() += 1;
    }
    assert_eq!(per_message.len(), 60, "every event arrived");
    let twice: Vec<&String> = per_message
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(twice.is_empty(), "no event arrived twice: {twice:?}");
}

#[tokio::test]
async fn relay_health_turns_not_serving_while_its_backlog_is_stuck_and_recovers() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let app = TestApp::spawn_with(|settings| {
        settings.relay = true;
        settings.relay_stall_secs = 1;
    })
    .await;
    let status = || async {
        HealthClient::new(app.channel().await)
            .check(HealthCheckRequest {
                service: wowchat_users_server::messaging::relay::HEALTH_SERVICE.into(),
            })
            .await
            .map(|r| r.into_inner().status())
            .unwrap_or(ServingStatus::Unknown)
    };
    eventually("the relay is SERVING", || async {
        status().await == ServingStatus::Serving
    })
    .await;

    // Nobody receives mail commands yet: the command stays in the outbox.
    app.invite("stuck@example.com", "agent").await;
    eventually("the stuck backlog shows as NOT_SERVING", || async {
        status().await == ServingStatus::NotServing
    })
    .await;

    let (_connection, channel, queue) = tap_mail_commands(&app).await;
    assert_eq!(
        drain(&channel, &queue, 1, Duration::from_secs(15))
            .await
            .len(),
        1
    );
    eventually("the relay is SERVING again", || async {
        status().await == ServingStatus::Serving
    })
    .await;
}

#[tokio::test]
async fn a_relay_with_a_backlog_stops_promptly_and_its_rows_go_out_later() {
    const ROWS: i64 = 20_000;
    let app = TestApp::spawn().await;
    fill_outbox(&app, ROWS).await;
    let db = app.db().await;
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(app.state.pool.clone(), relay_settings(&app, 100), None).run(shutdown.clone()),
    );
    eventually("the relay is draining the backlog", || async {
        published_rows(&db).await > 0
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), relay)
        .await
        .expect("the relay stops within 2 s of the shutdown signal, backlog or not")
        .unwrap();
    let marked = published_rows(&db).await;
    assert!(
        marked < ROWS,
        "the relay stopped before the backlog was drained"
    );
    // Rows marked published are in the broker's hands; batches abandoned at
    // the stop may be there too, unmarked, and will go out again.
    let connection = Connection::connect(&test_amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let archive = app.topology.events_archive_queue();
    assert!(i64::from(ready_messages(&channel, &archive).await.unwrap()) >= marked);

    // The next relay takes over where it stopped: every row goes out.
    relay_until_published(&app, &db, ROWS, 500).await;
    assert!(i64::from(ready_messages(&channel, &archive).await.unwrap()) >= ROWS);
}

#[tokio::test]
async fn one_relay_publishes_the_outbox_in_order_while_batches_overlap() {
    let app = TestApp::spawn().await;
    fill_outbox(&app, 1_000).await;
    let (_connection, channel, queue) =
        tap(&app.topology.events_exchange(), ExchangeKind::Topic, &["#"]).await;
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(app.state.pool.clone(), relay_settings(&app, 30), None).run(shutdown.clone()),
    );
    let delivered = drain(&channel, &queue, 1_000, Duration::from_secs(30)).await;
    shutdown.cancel();
    relay.await.unwrap();
    assert_eq!(delivered.len(), 1_000);
    let ids: Vec<String> = app
        .db()
        .await
        .query("SELECT id::text FROM outbox ORDER BY created_at", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let received: Vec<String> = delivered
        .iter()
        .map(|d| d.properties.message_id().as_ref().unwrap().to_string())
        .collect();
    assert!(received == ids, "messages arrived out of outbox order");
}

#[tokio::test]
async fn a_committed_change_wakes_the_relay_without_waiting_for_its_poll() {
    // A poll an hour away: only the wake-up after the commit can publish it.
    let app = TestApp::spawn_with(|settings| {
        settings.relay = true;
        settings.relay_poll_ms = 3_600_000;
    })
    .await;
    let (_connection, channel, queue) = tap(
        &app.topology.events_exchange(),
        ExchangeKind::Topic,
        &["invitation.*"],
    )
    .await;
    // The relay's first drain at start-up is past once its listener is up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.invite("pat@example.com", "agent").await;

    let delivered = drain(&channel, &queue, 1, Duration::from_secs(10)).await;
    assert_eq!(delivered.len(), 1, "the invitation.created event arrives");
    assert_eq!(delivered[0].routing_key.as_str(), "invitation.created");
}

/// An installation upgraded from a version whose event archive was a
/// classic queue: RabbitMQ refuses to declare it again as a quorum queue
/// (PRECONDITION_FAILED). The relay keeps the old queue and publishes on.
#[tokio::test]
async fn an_archive_an_earlier_version_declared_classic_is_kept_and_the_relay_publishes_on() {
    const ROWS: i64 = 10;
    let app = TestApp::spawn().await;
    let connection = Connection::connect(&test_amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    // The archive as the earlier version declared it: classic, bound to
    // every event.
    wowchat_platform::amqp::declare_exchanges(&channel, &app.topology)
        .await
        .unwrap();
    let archive = app.topology.events_archive_queue();
    let mut classic = FieldTable::default();
    classic.insert("x-max-length".into(), AMQPValue::LongLongInt(100_000));
    classic.insert(
        "x-overflow".into(),
        AMQPValue::LongString("drop-head".into()),
    );
    channel
        .queue_declare(
            archive.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            classic,
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            archive.as_str().into(),
            app.topology.events_exchange().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    fill_outbox(&app, ROWS).await;
    let db = app.db().await;
    relay_until_published(&app, &db, ROWS, 100).await;
    assert!(i64::from(ready_messages(&channel, &archive).await.unwrap()) >= ROWS);
}
