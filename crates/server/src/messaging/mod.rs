//! RabbitMQ: the outbox relay that publishes what the service committed, and
//! the consumer of the mailer's delivery results. Each keeps its own
//! connection and its own reconnect loop (lapin's automatic recovery is not
//! relied upon).

pub mod relay;
pub mod results;

use std::time::Duration;

use lapin::{
    Channel, Connection,
    options::{QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use wowchat_platform::{
    Backoff, Secret,
    amqp::{self, text},
};
use wowchat_users_api::topology::Topology;

/// Most messages kept in the events archive queue; the oldest go first.
const ARCHIVE_MAX_LENGTH: i64 = 100_000;

/// The service's name on RabbitMQ: its connections, its consumer tag, and
/// the `app_id` of what it publishes.
pub(crate) const APP_ID: &str = "wowchat-users";

/// Delays between reconnect attempts: 250 ms doubling to 10 s.
pub(crate) const RECONNECT: Backoff = Backoff {
    base: Duration::from_millis(250),
    max: Duration::from_secs(10),
};

/// Connects to the broker at `url` (`WOWCHAT_AMQP_URL`), never quoting it.
pub(crate) async fn connect(url: &Secret) -> anyhow::Result<Connection> {
    let uri = amqp::parse_uri(url.expose(), "WOWCHAT_AMQP_URL")?;
    amqp::connect(&uri, APP_ID).await
}

/// The service's side of the topology: both exchanges, and the archive
/// queue that makes every event routable. Public for tools (the benchmark)
/// that set the broker up as the relay would.
pub async fn declare_topology(channel: &Channel, topology: &Topology) -> lapin::Result<()> {
    amqp::declare_exchanges(channel, topology).await?;
    let mut archive = FieldTable::default();
    archive.insert(
        "x-max-length".into(),
        AMQPValue::LongLongInt(ARCHIVE_MAX_LENGTH),
    );
    archive.insert("x-overflow".into(), text("drop-head"));
    channel
        .queue_declare(
            topology.events_archive_queue().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            archive,
        )
        .await?;
    channel
        .queue_bind(
            topology.events_archive_queue().into(),
            topology.events_exchange().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}
