//! The consumer of the mailer's delivery results: records on each invitation
//! whether the email of its latest send went out or failed, and why.
//!
//! Results that have arrived together are recorded in one transaction, one
//! round trip and one commit (a WAL flush) for all of them: at hundreds of
//! emails a second a commit each made this consumer, and every other
//! writer waiting on the same flushes, the slowest part of the email path.

use futures::{FutureExt, StreamExt, future::join_all};
use lapin::{
    Channel,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
        BasicRejectOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, field};
use uuid::Uuid;
use wowchat_platform::{
    amqp,
    telemetry::{self, SpanKind},
};
use wowchat_users_api::{
    events::v1 as events,
    topology::{TRACEPARENT_HEADER, TRACESTATE_HEADER, Topology, results},
};

use super::{APP_ID, RECONNECT, connect, declare_topology};
use crate::{
    config::Secret,
    domain::{Error, invitation::DeliveryStatus},
    store::{GenericClient, Pool, invitations, pipeline::PipelinedTransaction, suppressions},
};

/// A delivery result, parsed.
struct DeliveryResult {
    workspace_id: Uuid,
    invitation_id: Uuid,
    mail_message_id: Uuid,
    status: DeliveryStatus,
    reason: Option<String>,
    /// A 5xx reply: the invitation's address goes on the suppression list.
    hard_bounce: bool,
}

/// Deliveries of one result before the broker drops it.
const RESULTS_DELIVERY_LIMIT: i64 = 20;

/// Unacknowledged results the broker may send ahead, hence the most
/// recorded in one transaction.
const PREFETCH: u16 = 64;

pub struct DeliveryResults {
    pool: Pool,
    amqp_url: Secret,
    topology: Topology,
}

impl DeliveryResults {
    pub fn new(pool: Pool, amqp_url: Secret, topology: Topology) -> Self {
        DeliveryResults {
            pool,
            amqp_url,
            topology,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown).await {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "delivery results consumer lost RabbitMQ; reconnecting"
                    )
                }
            }
            failures += 1;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(RECONNECT.delay(failures)) => {}
            }
        }
    }

    async fn consume(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let connection = connect(&self.amqp_url).await?;
        let channel = connection.create_channel().await?;
        declare_topology(&connection, &self.topology).await?;
        self.declare(&channel).await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        let mut consumer = channel
            .basic_consume(
                self.topology.delivery_results_queue().into(),
                APP_ID.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!("consuming delivery results");
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = connection.close(200, "stopping".into()).await;
                    return Ok(());
                }
                next = consumer.next() => match next {
                    Some(delivery) => delivery?,
                    None => anyhow::bail!("the consumer was cancelled"),
                },
            };
            // With it, whatever else has already arrived; never waits.
            let mut batch = vec![first];
            while batch.len() < usize::from(PREFETCH) {
                match consumer.next().now_or_never() {
                    Some(Some(delivery)) => batch.push(delivery?),
                    _ => break,
                }
            }
            self.handle_batch(batch, shutdown).await?;
        }
    }

    /// Records the readable results of `batch` together and acknowledges
    /// them; drops the unreadable ones. When Postgres refuses the batch,
    /// each result is recorded on its own, so one bad result drops alone.
    async fn handle_batch(
        &self,
        mut batch: Vec<Delivery>,
        shutdown: &CancellationToken,
    ) -> lapin::Result<()> {
        if let [_] = batch.as_slice()
            && let Some(delivery) = batch.pop()
        {
            return self.handle(delivery, shutdown).await.map(|_| ());
        }
        let mut readable = Vec::with_capacity(batch.len());
        for delivery in batch {
            match parse(delivery.routing_key.as_str(), &delivery.data) {
                Some(result) => readable.push((result_span(&delivery), delivery, result)),
                None => {
                    tracing::warn!(
                        routing_key = %delivery.routing_key,
                        "unreadable delivery result dropped"
                    );
                    delivery
                        .reject(BasicRejectOptions { requeue: false })
                        .await?;
                }
            }
        }
        let results: Vec<&DeliveryResult> = readable.iter().map(|(_, _, result)| result).collect();
        let Some(recorded) = until_answered(shutdown, || self.record_all(&results)).await else {
            for (_, delivery, _) in readable {
                delivery.nack(REQUEUE).await?;
            }
            return Ok(());
        };
        match recorded {
            Ok(current) => {
                for ((span, delivery, result), current) in readable.into_iter().zip(current) {
                    span.in_scope(|| log_recorded(&result, current));
                    delivery.ack(BasicAckOptions::default()).await?;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "a batch of delivery results was refused; one by one");
                for (_, delivery, _) in readable {
                    self.handle(delivery, shutdown).await?;
                }
            }
        }
        Ok(())
    }

    async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        let mut arguments = amqp::quorum();
        // A backstop: a result that keeps coming back (say, it stops the
        // consumer every time) is dropped by the broker after this many tries.
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(RESULTS_DELIVERY_LIMIT),
        );
        let queue = self.topology.delivery_results_queue();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                arguments,
            )
            .await?;
        for key in [
            results::INVITATION_DELIVERED,
            results::INVITATION_DELIVERY_FAILED,
        ] {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    self.topology.events_exchange().into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }

    async fn handle(
        &self,
        delivery: Delivery,
        shutdown: &CancellationToken,
    ) -> lapin::Result<bool> {
        let span = result_span(&delivery);
        self.handle_in_span(delivery, shutdown)
            .instrument(span)
            .await
    }

    async fn handle_in_span(
        &self,
        delivery: Delivery,
        shutdown: &CancellationToken,
    ) -> lapin::Result<bool> {
        let Some(result) = parse(delivery.routing_key.as_str(), &delivery.data) else {
            tracing::warn!(routing_key = %delivery.routing_key, "unreadable delivery result dropped");
            return delivery.reject(BasicRejectOptions { requeue: false }).await;
        };
        let Some(recorded) = until_answered(shutdown, || self.record(&result)).await else {
            return delivery.nack(REQUEUE).await;
        };
        match recorded {
            Ok(current) => {
                log_recorded(&result, current);
                delivery.ack(BasicAckOptions::default()).await
            }
            Err(err) => {
                // Postgres answered and refused this one: it would fail the
                // same way every time, so it is dropped rather than requeued.
                tracing::error!(
                    invitation_id = %result.invitation_id,
                    error = %err,
                    "delivery result refused by the database; dropped"
                );
                delivery.reject(BasicRejectOptions { requeue: false }).await
            }
        }
    }

    /// Records `results` in one transaction, sent in one round trip with
    /// its BEGIN and COMMIT: for each, whether it was about the latest send.
    async fn record_all(&self, results: &[&DeliveryResult]) -> Result<Vec<bool>, Error> {
        let tx = PipelinedTransaction::new(self.pool.get().await?);
        let client = tx.client();
        let updates = results.iter().map(|result| record_one(client, result));
        let (begun, updated) = tokio::join!(tx.begin(), join_all(updates));
        begun?;
        let updated = updated.into_iter().collect::<Result<Vec<bool>, Error>>()?;
        tx.commit(Vec::new()).await?;
        Ok(updated)
    }

    async fn record(&self, result: &DeliveryResult) -> Result<bool, Error> {
        let client = self.pool.get().await?;
        record_one(&client, result).await
    }
}

/// Records `result` on its invitation (whether it was about the latest
/// send); a hard bounce also suppresses the invitation's address, whichever
/// send bounced.
async fn record_one(client: &impl GenericClient, result: &DeliveryResult) -> Result<bool, Error> {
    let current = invitations::record_delivery(
        client,
        result.workspace_id,
        result.invitation_id,
        result.mail_message_id,
        result.status,
        result.reason.as_deref(),
    )
    .await?;
    if result.hard_bounce {
        let added = suppressions::record_bounce(
            client,
            result.workspace_id,
            result.invitation_id,
            result.reason.as_deref().unwrap_or_default(),
        )
        .await?;
        if added {
            tracing::info!(
                invitation_id = %result.invitation_id,
                "hard bounce: the address is suppressed"
            );
        }
    }
    Ok(current)
}

/// Back to the queue, for the next consumer (or this one, restarted).
const REQUEUE: BasicNackOptions = BasicNackOptions {
    multiple: false,
    requeue: true,
};

/// Runs `record` until Postgres answers it, backing off while it is
/// unavailable; `None` when shutdown comes first. While Postgres is away
/// the results wait here, unacknowledged: requeueing them would spend their
/// delivery limit on the outage.
async fn until_answered<T, Fut>(
    shutdown: &CancellationToken,
    record: impl Fn() -> Fut,
) -> Option<Result<T, Error>>
where
    Fut: Future<Output = Result<T, Error>>,
{
    let mut failures = 0u32;
    loop {
        match record().await {
            Err(Error::Unavailable(err)) => {
                failures += 1;
                tracing::warn!(
                    error = format!("{err:#}"),
                    "cannot record delivery results; will retry"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(RECONNECT.delay(failures)) => {}
                }
            }
            answered => return Some(answered),
        }
    }
}

/// The span of one result, a child of the mailer's span that sent the
/// email; none while traces are off.
fn result_span(delivery: &Delivery) -> Span {
    if !telemetry::enabled() {
        return Span::none();
    }
    let headers = delivery.properties.headers().as_ref();
    let span = tracing::info_span!(
        "delivery result",
        routing_key = %delivery.routing_key,
        "otel.name" = field::Empty,
        "otel.kind" = field::Empty,
    );
    telemetry::continue_trace(
        &span,
        amqp::header(headers, TRACEPARENT_HEADER),
        amqp::header(headers, TRACESTATE_HEADER),
    );
    telemetry::describe_span(
        &span,
        SpanKind::Consumer,
        &format!("process {}", delivery.routing_key),
    );
    span
}

fn log_recorded(result: &DeliveryResult, current: bool) {
    tracing::info!(
        invitation_id = %result.invitation_id,
        status = result.status.as_str(),
        current,
        "delivery result recorded"
    );
}

fn parse(routing_key: &str, body: &[u8]) -> Option<DeliveryResult> {
    let uuid = |s: &str| Uuid::parse_str(s).ok();
    match routing_key {
        results::INVITATION_DELIVERED => {
            let event = events::InvitationDelivered::decode(body).ok()?;
            Some(DeliveryResult {
                workspace_id: uuid(&event.workspace_id)?,
                invitation_id: uuid(&event.invitation_id)?,
                mail_message_id: uuid(&event.mail_message_id)?,
                status: DeliveryStatus::Sent,
                reason: None,
                hard_bounce: false,
            })
        }
        results::INVITATION_DELIVERY_FAILED => {
            let event = events::InvitationDeliveryFailed::decode(body).ok()?;
            Some(DeliveryResult {
                workspace_id: uuid(&event.workspace_id)?,
                invitation_id: uuid(&event.invitation_id)?,
                mail_message_id: uuid(&event.mail_message_id)?,
                status: DeliveryStatus::Failed,
                reason: Some(event.reason.chars().take(1000).collect()),
                hard_bounce: event.hard_bounce,
            })
        }
        _ => None,
    }
}
