//! The RabbitMQ side: declaring the mailer's part of the topology (names
//! from [`wowchat_users_api::topology`]), and publishing result events with
//! publisher confirms and the mandatory flag. Connecting and the shared
//! exchanges are [`wowchat_platform::amqp`].

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, anyhow};
use lapin::{
    Channel, ExchangeKind,
    options::{BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use uuid::Uuid;
use wowchat_platform::{
    amqp::{Envelope, declare_exchanges, header, quorum, text},
    telemetry::TraceContext,
};
use wowchat_users_api::topology::{self, REQUEST_ID_HEADER, Topology};

/// The `app_id` of everything the mailer publishes, and its connection name.
pub const APP_ID: &str = "wowchat-mailer";

/// Longest wait for the broker to confirm a publish.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries of one command before the broker dead-letters it instead of
/// requeueing it again. Each delivery already retries inside the mailer with
/// backoff, so 50 outlasts a long outage while a command that crashes or
/// stalls the mailer every time still stops circling.
pub const MAILER_DELIVERY_LIMIT: i64 = 50;

/// How long a dead-lettered command is kept for inspection: 3 days, after
/// which its invitation token (in the body) is gone from the broker too.
pub const DEAD_LETTER_TTL_MS: i64 = 3 * 24 * 60 * 60 * 1000;

/// Most commands kept in the dead-letter queue; the oldest go first.
pub const DEAD_LETTER_MAX_LENGTH: i64 = 10_000;

/// The arguments of the mailer queue: a quorum queue (replicated, durable)
/// whose rejected messages, and those delivered [`MAILER_DELIVERY_LIMIT`]
/// times, go to the dead-letter exchange.
pub fn mailer_queue_arguments(topology: &Topology) -> FieldTable {
    let mut arguments = quorum();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(topology.mailer_dead_letter_exchange().into()),
    );
    arguments.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(MAILER_DELIVERY_LIMIT),
    );
    arguments
}

/// The arguments of the dead-letter queue: bounded in age and length, so
/// the tokens of failed commands do not stay on the broker forever.
pub fn dead_letter_queue_arguments() -> FieldTable {
    let mut arguments = quorum();
    arguments.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(DEAD_LETTER_TTL_MS),
    );
    arguments.insert(
        "x-max-length".into(),
        AMQPValue::LongLongInt(DEAD_LETTER_MAX_LENGTH),
    );
    arguments.insert("x-overflow".into(), text("drop-head"));
    arguments
}

/// Declares, idempotently, every exchange and queue the mailer uses: the
/// commands (direct) and events (topic) exchanges, the dead-letter exchange
/// (fanout) with its queue, and the mailer queue bound to both mail commands.
/// Public so tests and tools can set the broker up before the mailer runs.
pub async fn declare_topology(channel: &Channel, topology: &Topology) -> lapin::Result<()> {
    declare_exchanges(channel, topology).await?;
    channel
        .exchange_declare(
            topology.mailer_dead_letter_exchange().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            topology.mailer_dead_letter_queue().into(),
            QueueDeclareOptions::durable(),
            dead_letter_queue_arguments(),
        )
        .await?;
    channel
        .queue_bind(
            topology.mailer_dead_letter_queue().into(),
            topology.mailer_dead_letter_exchange().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            topology.mailer_queue().into(),
            QueueDeclareOptions::durable(),
            mailer_queue_arguments(topology),
        )
        .await?;
    for routing_key in [
        topology::commands::SEND_INVITATION_EMAIL,
        topology::commands::SEND_INVITATION_ACCEPTED_EMAIL,
        topology::commands::SEND_JOIN_REQUEST_CONFIRMATION_EMAIL,
    ] {
        channel
            .queue_bind(
                topology.mailer_queue().into(),
                topology.commands_exchange().into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// One result event to publish.
pub struct Outgoing<'a> {
    pub routing_key: &'static str,
    /// The protobuf message's full name, for the `message_type` header.
    pub message_type: &'static str,
    pub payload: Vec<u8>,
    pub message_id: Uuid,
    pub workspace_id: &'a str,
    /// The incoming command's headers, whose request id is carried over.
    pub cause: Option<&'a FieldTable>,
    /// The trace the result continues: the command's span.
    pub trace: Option<&'a TraceContext>,
}

/// Publishes to the events exchange on a channel in confirm mode.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    exchange: ShortString,
    /// Set once the broker nacks a result: the channel is then done with.
    /// One opened while a RabbitMQ node was dying may keep the dead node as
    /// a quorum queue's leader and have every publish refused until that
    /// node is back (seen with 3.10); the session's next one learns the
    /// new leader.
    refused: Arc<AtomicBool>,
}

impl Publisher {
    /// Puts `channel` in confirm mode.
    pub async fn new(channel: Channel, topology: &Topology) -> anyhow::Result<Self> {
        channel
            .confirm_select(Default::default())
            .await
            .context("enabling publisher confirms")?;
        Ok(Publisher {
            channel,
            exchange: topology.events_exchange().into(),
            refused: Arc::default(),
        })
    }

    /// Whether the channel can still publish; once closed (or refused),
    /// retrying is useless and the session reconnects.
    pub fn is_open(&self) -> bool {
        self.channel.status().connected() && !self.refused.load(Ordering::Relaxed)
    }

    /// Succeeds only on a positive confirm with no return: anything else
    /// (nack, unroutable, timeout, closed channel) means not published.
    pub async fn publish(&self, outgoing: Outgoing<'_>) -> anyhow::Result<()> {
        let message_id = outgoing.message_id.to_string();
        let properties = Envelope {
            message_id: &message_id,
            routing_key: outgoing.routing_key,
            app_id: APP_ID,
            timestamp: time::OffsetDateTime::now_utc().unix_timestamp(),
            workspace_id: outgoing.workspace_id,
            message_type: outgoing.message_type,
            request_id: header(outgoing.cause, REQUEST_ID_HEADER),
            trace: outgoing.trace,
        }
        .properties();
        let confirmation = tokio::time::timeout(BROKER_TIMEOUT, async {
            self.channel
                .basic_publish(
                    self.exchange.clone(),
                    outgoing.routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &outgoing.payload,
                    properties,
                )
                .await?
                .await
        })
        .await
        .map_err(|_| anyhow!("no confirm from the broker in time"))?
        .context("publishing")?;
        if !confirmation.is_ack() {
            self.refused.store(true, Ordering::Relaxed);
            return Err(anyhow!("the broker nacked it"));
        }
        if let Some(returned) = confirmation.take_message() {
            return Err(anyhow!(
                "the broker returned it as unroutable ({} {})",
                returned.reply_code,
                returned.reply_text
            ));
        }
        Ok(())
    }
}

/// A header of `headers` as text, for the logs: short, printable.
pub fn header_text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    let text = header(headers, name)?;
    Some(text.chars().filter(|c| !c.is_control()).take(128).collect())
}
