//! RabbitMQ: parsing the URL without ever quoting it, connecting with a
//! timeout (lapin's own recovery stays off: callers run their own reconnect
//! loop, with a [`Backoff`](crate::Backoff)), declaring the two durable
//! exchanges every deployable publishes to or consumes from (names from
//! [`wowchat_users_api::topology`]), and the header and queue-argument values
//! both sides build.

use std::{str::FromStr, time::Duration};

use anyhow::{Context, anyhow};
use lapin::{
    Channel, Connection, ConnectionProperties, ExchangeKind,
    options::ExchangeDeclareOptions,
    types::{AMQPValue, FieldTable, LongString},
    uri::AMQPUri,
};
use wowchat_users_api::topology::Topology;

/// Longest wait for the broker to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses the AMQP URL read from `variable` (e.g. `WOWCHAT_AMQP_URL`); the
/// error names the variable, never the URL, which holds a password.
pub fn parse_uri(url: &str, variable: &str) -> anyhow::Result<AMQPUri> {
    // The parser's own message would quote the URL, password included.
    AMQPUri::from_str(url)
        .ok()
        .with_context(|| format!("{variable} is not a valid AMQP URL"))
}

/// Opens a connection named `connection_name` (as the broker's management
/// UI shows it), giving up after [`CONNECT_TIMEOUT`]. lapin's own recovery
/// stays off; the caller reconnects.
pub async fn connect(uri: &AMQPUri, connection_name: &str) -> anyhow::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect_uri(uri.clone(), properties),
    )
    .await
    .map_err(|_| anyhow!("timed out connecting to RabbitMQ"))?
    .context("connecting to RabbitMQ")
}

/// Declares, idempotently, the durable exchanges shared by every deployable:
/// the events exchange (topic) and the commands exchange (direct).
pub async fn declare_exchanges(channel: &Channel, topology: &Topology) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
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
        .await
}

/// A text value for a header or an argument (an AMQP long string).
pub fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

/// The arguments of a quorum queue (replicated, durable); callers add their own.
pub fn quorum() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), text("quorum"));
    arguments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_url_is_reported_by_its_variable_without_its_text() {
        let error =
            parse_uri("nonsense://user:hunter2@", "WOWCHAT_AMQP_URL").expect_err("rejected");
        let error = format!("{error:#}");
        assert!(error.contains("WOWCHAT_AMQP_URL"));
        assert!(!error.contains("hunter2"));
    }

    #[test]
    fn quorum_arguments_name_the_queue_type() {
        let arguments = quorum();
        assert_eq!(
            arguments.inner().get("x-queue-type"),
            Some(&AMQPValue::LongString("quorum".into()))
        );
    }
}
