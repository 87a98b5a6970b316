//! RabbitMQ: parsing the URL without ever quoting it, connecting with a
//! timeout (lapin's own recovery stays off: callers run their own reconnect
//! loop, with a [`Backoff`](crate::Backoff)), declaring the two durable
//! exchanges every deployable publishes to or consumes from (names from
//! [`wowchat_users_api::topology`]), the properties of every message they
//! publish ([`Envelope`]), and the header and queue-argument values both
//! sides build.

use std::{str::FromStr, time::Duration};

use anyhow::{Context, anyhow};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
    options::ExchangeDeclareOptions,
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldTable, LongString},
    uri::AMQPUri,
};
use wowchat_users_api::topology::{
    CONTENT_TYPE, MESSAGE_TYPE_HEADER, REQUEST_ID_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER,
    Topology, WORKSPACE_HEADER,
};

use crate::secret::Secret;
use crate::telemetry::TraceContext;

// The broker settings the service and its mailers share, flattened into
// each one's settings (`#[command(flatten)] amqp: AmqpArgs`): one name, one
// default, one help text. A plain comment, not a doc comment: clap would
// make it the `about` of the command it lands in.
#[derive(Debug, Clone, clap::Args)]
pub struct AmqpArgs {
    /// RabbitMQ URL (`amqp://` or `amqps://`): where the service publishes
    /// its events and mail commands and the mailers consume them.
    #[arg(
        id = "amqp_url",
        long = "amqp-url",
        value_name = "AMQP_URL",
        env = "WOWCHAT_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub url: Secret,

    /// Prefix of every exchange and queue name, the same for the service
    /// and its mailers, so installations can share a broker.
    #[arg(
        id = "amqp_prefix",
        long = "amqp-prefix",
        value_name = "AMQP_PREFIX",
        env = "WOWCHAT_AMQP_PREFIX",
        default_value = "wowchat"
    )]
    pub prefix: String,
}

/// Longest wait for the broker to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The addresses of one RabbitMQ, a single node or every node of a
/// cluster: the URLs in one setting (`WOWCHAT_AMQP_URL`), separated by
/// commas, tried in order at every (re)connect. A node that is down
/// refuses at once, so losing the first costs a reconnect nothing.
#[derive(Debug, Clone)]
pub struct Brokers(Vec<AMQPUri>);

impl Brokers {
    /// Parses the URLs read from `variable`; the error names the variable
    /// and the URL's place in the list, never its text (it holds a password).
    pub fn parse(urls: &str, variable: &str) -> anyhow::Result<Brokers> {
        let uris = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .enumerate()
            .map(|(index, url)| {
                // The parser's own message would quote the URL, password included.
                AMQPUri::from_str(url).ok().with_context(|| {
                    format!("{variable}: URL {} is not a valid AMQP URL", index + 1)
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!uris.is_empty(), "{variable} names no RabbitMQ URL");
        Ok(Brokers(uris))
    }

    /// Opens a connection named `connection_name` (as the broker's
    /// management UI shows it) to the first address that accepts one, each
    /// given [`CONNECT_TIMEOUT`]; the last address's error when none does.
    /// lapin's own recovery stays off; the caller reconnects.
    pub async fn connect(&self, connection_name: &str) -> anyhow::Result<Connection> {
        let mut failure = None;
        for uri in &self.0 {
            match connect(uri, connection_name).await {
                Ok(connection) => return Ok(connection),
                Err(error) => {
                    if self.0.len() > 1 {
                        let authority = &uri.authority;
                        tracing::warn!(
                            broker = %format_args!("{}:{}", authority.host, authority.port),
                            error = format!("{error:#}"),
                            "RabbitMQ unreachable; trying the next address"
                        );
                    }
                    failure = Some(error);
                }
            }
        }
        Err(failure.unwrap_or_else(|| anyhow!("no RabbitMQ address")))
    }
}

async fn connect(uri: &AMQPUri, connection_name: &str) -> anyhow::Result<Connection> {
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

/// AMQP delivery mode of a message the broker writes to disk.
const PERSISTENT: u8 = 2;

/// What every message a deployable publishes says about itself, besides its
/// body: the relay's events and commands and the mailer's results alike.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// Unique per message; consumers drop a message id they have seen.
    pub message_id: &'a str,
    /// The routing key, also sent as the message's `type`.
    pub routing_key: &'a str,
    /// The publishing deployable.
    pub app_id: &'a str,
    /// When the message came to be, in Unix seconds.
    pub timestamp: i64,
    pub workspace_id: &'a str,
    /// The protobuf message's full name.
    pub message_type: &'a str,
    /// The request that caused it; left out when empty.
    pub request_id: Option<&'a str>,
    /// The W3C trace context of the span publishing it, for the consumer
    /// to continue.
    pub trace: Option<&'a TraceContext>,
}

impl Envelope<'_> {
    /// Message id, type, timestamp, content type, app id and persistence as
    /// properties; the workspace, message type, request id and trace context
    /// as headers.
    pub fn properties(&self) -> BasicProperties {
        let mut headers = FieldTable::default();
        headers.insert(WORKSPACE_HEADER.into(), text(self.workspace_id));
        headers.insert(MESSAGE_TYPE_HEADER.into(), text(self.message_type));
        let optional = [
            (REQUEST_ID_HEADER, self.request_id),
            (
                TRACEPARENT_HEADER,
                self.trace.map(|trace| trace.traceparent.as_str()),
            ),
            (
                TRACESTATE_HEADER,
                self.trace.and_then(|trace| trace.tracestate.as_deref()),
            ),
        ];
        for (name, value) in optional {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                headers.insert(name.into(), text(value));
            }
        }
        BasicProperties::default()
            .with_message_id(self.message_id.into())
            .with_type(self.routing_key.into())
            .with_content_type(CONTENT_TYPE.into())
            .with_app_id(self.app_id.into())
            .with_timestamp(u64::try_from(self.timestamp).unwrap_or(0))
            .with_delivery_mode(PERSISTENT)
            .with_headers(headers)
    }
}

/// A text header of `headers`, as sent (long or short string, UTF-8).
pub fn header<'a>(headers: Option<&'a FieldTable>, name: &str) -> Option<&'a str> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

/// A text value for a header or an argument (an AMQP long string).
pub fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

/// Whether the broker refused a declaration because the name exists with
/// other arguments (`PRECONDITION_FAILED`, 406); the channel is closed then.
pub fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        lapin::ErrorKind::ProtocolError(amqp_error)
            if *amqp_error.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
    )
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
    fn an_invalid_url_is_reported_by_its_variable_and_place_without_its_text() {
        let urls = "amqp://u:p@a:5672/%2f, nonsense://user:hunter2@";
        let error = Brokers::parse(urls, "WOWCHAT_AMQP_URL").expect_err("rejected");
        let error = format!("{error:#}");
        assert!(error.contains("WOWCHAT_AMQP_URL: URL 2"), "{error}");
        assert!(!error.contains("hunter2"));
        assert!(Brokers::parse(" , ", "WOWCHAT_AMQP_URL").is_err());
    }

    #[test]
    fn every_node_of_a_cluster_is_one_address_in_the_list_in_order() {
        let urls = "amqp://u:p@node-a:5672/%2f,amqp://u:p@node-b:5673/%2f, amqps://u:p@node-c/%2f";
        let brokers = Brokers::parse(urls, "V").expect("parses");
        let nodes: Vec<(&str, u16)> = brokers
            .0
            .iter()
            .map(|uri| (uri.authority.host.as_str(), uri.authority.port))
            .collect();
        assert_eq!(
            nodes,
            vec![("node-a", 5672), ("node-b", 5673), ("node-c", 5671)]
        );
    }

    #[test]
    fn an_envelope_carries_ids_and_context_as_properties_and_headers() {
        let properties = Envelope {
            message_id: "m-1",
            routing_key: "invitation.delivered",
            app_id: "wowchat-mailer",
            timestamp: 1_700_000_000,
            workspace_id: "w-1",
            message_type: "wowchat.users.events.v1.InvitationDelivered",
            request_id: Some("r-1"),
            trace: Some(&TraceContext {
                traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
                tracestate: None,
            }),
        }
        .properties();
        assert_eq!(
            properties.message_id().as_ref().map(|s| s.as_str()),
            Some("m-1")
        );
        assert_eq!(
            properties.kind().as_ref().map(|s| s.as_str()),
            Some("invitation.delivered")
        );
        assert_eq!(*properties.timestamp(), Some(1_700_000_000));
        assert_eq!(*properties.delivery_mode(), Some(PERSISTENT));
        let headers = properties.headers().as_ref();
        assert_eq!(header(headers, WORKSPACE_HEADER), Some("w-1"));
        assert_eq!(header(headers, REQUEST_ID_HEADER), Some("r-1"));
        assert_eq!(
            header(headers, TRACEPARENT_HEADER),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        assert_eq!(header(headers, TRACESTATE_HEADER), None);
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
