//! RabbitMQ: the outbox relay that publishes what the service committed, and
//! the consumer of the mailer's delivery results. Each keeps its own
//! connection and its own reconnect loop (lapin's automatic recovery is not
//! relied upon).

pub mod relay;
pub mod results;

use std::time::Duration;

use lapin::{
    Connection,
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

/// Connects to the first broker of `url` (`WOWCHAT_AMQP_URL`) that
/// accepts, never quoting it.
pub(crate) async fn connect(url: &Secret) -> anyhow::Result<Connection> {
    let brokers = amqp::Brokers::parse(url.expose(), "WOWCHAT_AMQP_URL")?;
    brokers.connect(APP_ID).await
}

/// The service's side of the topology: both exchanges, and the archive
/// queue that makes every event routable, a quorum queue like every queue
/// of the project (a node's loss loses none of it). Declared on a channel
/// of its own, closed afterwards. Public for tools (the benchmark) that set
/// the broker up as the relay would.
pub async fn declare_topology(connection: &Connection, topology: &Topology) -> lapin::Result<()> {
    let channel = connection.create_channel().await?;
    amqp::declare_exchanges(&channel, topology).await?;
    let mut archive = amqp::quorum();
    archive.insert(
        "x-max-length".into(),
        AMQPValue::LongLongInt(ARCHIVE_MAX_LENGTH),
    );
    archive.insert("x-overflow".into(), text("drop-head"));
    let queue = topology.events_archive_queue();
    let declared = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            archive,
        )
        .await;
    if let Err(error) = declared {
        if !amqp::is_precondition_failed(&error) {
            return Err(error);
        }
        // Declared before by a version that made it a classic queue: the
        // broker keeps a queue's type for life. That queue is bound already
        // and works; the channel the refusal closed is dropped.
        tracing::warn!(
            queue,
            "the events archive is a queue of an earlier version (classic); delete it \
             (it holds copies of events only) and it is declared again as a quorum queue"
        );
        return Ok(());
    }
    channel
        .queue_bind(
            queue.as_str().into(),
            topology.events_exchange().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel.close(200, "declared".into()).await
}
