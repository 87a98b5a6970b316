//! RabbitMQ: the outbox relay that publishes what the service committed, and
//! the consumer of the mailer's delivery results. Each keeps its own
//! connection and its own reconnect loop (lapin's automatic recovery is not
//! relied upon).

pub mod relay;
pub mod results;

use std::time::Duration;

use lapin::{
    Channel, Connection, ConnectionProperties, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString},
};
use wowchat_users_api::topology::Topology;

/// Most messages kept in the events archive queue; the oldest go first.
const ARCHIVE_MAX_LENGTH: i64 = 100_000;

pub(crate) async fn connect(url: &str) -> lapin::Result<Connection> {
    Connection::connect(url, ConnectionProperties::default()).await
}

/// Delay before reconnect attempt `attempt` (1-based): 250 ms doubling to 10 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << attempt.saturating_sub(1).min(6)))
        .min(Duration::from_secs(10))
}

pub(crate) fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

/// The service's side of the topology: both exchanges, and the archive
/// queue that makes every event routable.
pub(crate) async fn declare_topology(channel: &Channel, topology: &Topology) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            topology.events_exchange().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            topology.commands_exchange().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_backoff_doubles_up_to_ten_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(7), Duration::from_secs(10));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(10));
    }
}
