//! The outbox relay: claims committed outbox rows (`FOR UPDATE SKIP LOCKED`),
//! publishes them with publisher confirms and the mandatory flag, and marks a
//! row published only after a positive confirm with no return. A nack, a
//! return or a missing confirm leaves the row for a retry with backoff.
//! Woken by LISTEN/NOTIFY, with polling as the fallback. Several relays may
//! run at once.
//!
//! A batch keeps its rows locked in its claim transaction until its confirms
//! are in and the rows are marked, so no other relay takes them meanwhile.
//! While one batch waits for its confirms, the next is claimed and published
//! (at most two batches at once), so Postgres and the broker work
//! side by side instead of in turns. The drain loop looks at the shutdown
//! signal between batches; on shutdown the batches already published get a
//! second to settle and are abandoned after it: their transactions roll back
//! and their rows go out again later (at-least-once).

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures::{StreamExt, future::join_all, stream::FuturesUnordered};
use lapin::{
    BasicProperties, Channel, Confirmation, PublisherConfirm,
    options::{BasicPublishOptions, ConfirmSelectOptions},
};
use tokio::sync::{Notify, oneshot};
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;
use tonic_health::{ServingStatus, server::HealthReporter};
use tracing::{Span, field};
use uuid::Uuid;
use wowchat_platform::{
    amqp::Envelope,
    postgres::ConnectConfig,
    telemetry::{self, SpanKind, TraceContext},
};
use wowchat_users_api::topology::Topology;

use super::{APP_ID, RECONNECT, connect, declare_topology};
use crate::{
    config::Secret,
    store::{
        Pool, notifications,
        outbox::{self, PendingMessage},
    },
};

/// The gRPC health service name the relay reports under.
pub const HEALTH_SERVICE: &str = "wowchat.users.v1.OutboxRelay";

/// Postgres connections of a relay running on its own (`wowchat-users relay`):
/// one per batch in flight, one for the backlog gauge, one for the
/// delivery-result consumer.
pub const POOL_SIZE: usize = IN_FLIGHT + 2;

/// Batches published and not yet settled, at most. Each holds a pooled
/// connection (its claim transaction) until its confirms are in.
const IN_FLIGHT: usize = 2;

/// How long batches already published may still settle after shutdown.
const SETTLE_GRACE: Duration = Duration::from_secs(1);

/// Longest wait for the broker to acknowledge closing the connection.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub amqp_url: Secret,
    /// Where the relay LISTENs for new outbox rows: a direct connection,
    /// which a transaction-pooling PgBouncer cannot give.
    pub listen_url: Secret,
    pub topology: Topology,
    pub batch_size: i64,
    pub poll_interval: Duration,
    pub confirm_timeout: Duration,
    pub retry_max: Duration,
    /// NOT_SERVING when the oldest unpublished row is older than this.
    pub stall_after: Duration,
}

pub struct Relay {
    pool: Pool,
    settings: RelaySettings,
    health: Option<HealthReporter>,
}

/// Why a batch stopped.
enum BatchError {
    /// The broker connection or channel is gone: reconnect.
    Broker(lapin::Error),
    /// The broker refused messages: reconnect too. A channel opened while
    /// a RabbitMQ node was dying may keep the dead node as a quorum queue's
    /// leader and have every publish refused until that node is back (seen
    /// with 3.10); a fresh channel learns the new leader.
    Refused,
    /// Postgres failed: try again later on the same channel.
    Database(crate::domain::Error),
}

impl From<crate::domain::Error> for BatchError {
    fn from(err: crate::domain::Error) -> Self {
        BatchError::Database(err)
    }
}

impl From<tokio_postgres::Error> for BatchError {
    fn from(err: tokio_postgres::Error) -> Self {
        BatchError::Database(err.into())
    }
}

impl From<deadpool_postgres::PoolError> for BatchError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        BatchError::Database(err.into())
    }
}

/// The batches in flight on one channel, and the first broker failure seen.
struct InFlight<F> {
    batches: FuturesUnordered<F>,
    broken: Option<anyhow::Error>,
}

impl<F: Future<Output = Result<(), BatchError>>> InFlight<F> {
    fn record(&mut self, outcome: Result<(), BatchError>) {
        match outcome {
            Ok(()) => {}
            Err(BatchError::Broker(err)) => {
                self.broken.get_or_insert(err.into());
            }
            Err(BatchError::Refused) => {
                self.broken
                    .get_or_insert_with(|| anyhow::anyhow!("the broker refused messages"));
            }
            Err(BatchError::Database(err)) => {
                tracing::warn!(error = %err, "relay cannot read or mark the outbox");
            }
        }
    }

    /// Waits until at most `left` batches are in flight, or until `stop`.
    async fn settle_down_to(&mut self, left: usize, stop: &CancellationToken) {
        while self.batches.len() > left {
            tokio::select! {
                _ = stop.cancelled() => return,
                Some(outcome) = self.batches.next() => self.record(outcome),
            }
        }
    }
}

impl Relay {
    pub fn new(pool: Pool, settings: RelaySettings, health: Option<HealthReporter>) -> Self {
        Relay {
            pool,
            settings,
            health,
        }
    }

    /// Publishes until `shutdown` is cancelled, reconnecting whenever the
    /// broker goes away. Returns promptly once cancelled, backlog or not.
    pub async fn run(self, shutdown: CancellationToken) {
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(listen_for_outbox(
            self.settings.listen_url.clone(),
            wake.clone(),
            shutdown.clone(),
        ));
        self.report(false, f64::INFINITY).await;
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let opened = tokio::select! {
                _ = shutdown.cancelled() => break,
                opened = self.open_channel() => opened,
            };
            match opened {
                Ok((connection, channel)) => {
                    failures = 0;
                    tracing::info!("relay connected to RabbitMQ");
                    if let Err(err) = self.publish_until_broken(&channel, &wake, &shutdown).await {
                        tracing::warn!(error = %err, "relay lost RabbitMQ; reconnecting");
                    }
                    let _ = tokio::time::timeout(
                        CLOSE_TIMEOUT,
                        connection.close(200, "relay stopping".into()),
                    )
                    .await;
                }
                Err(err) => {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        attempt = failures + 1,
                        "relay cannot reach RabbitMQ"
                    )
                }
            }
            self.report(false, f64::INFINITY).await;
            failures += 1;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(RECONNECT.delay(failures)) => {}
            }
        }
        listener.abort();
        tracing::info!("relay stopped");
    }

    async fn open_channel(&self) -> anyhow::Result<(lapin::Connection, Channel)> {
        let connection = connect(&self.settings.amqp_url).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare_topology(&connection, &self.settings.topology).await?;
        Ok((connection, channel))
    }

    /// Drains the outbox on `channel`, then waits for a wake-up, a poll or
    /// the shutdown; returns `Ok` on shutdown and an error when the channel
    /// breaks.
    async fn publish_until_broken(
        &self,
        channel: &Channel,
        wake: &Notify,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut in_flight = InFlight {
            batches: FuturesUnordered::new(),
            broken: None,
        };
        let result = loop {
            if shutdown.is_cancelled() {
                break Ok(());
            }
            if let Some(err) = in_flight.broken.take() {
                break Err(err);
            }
            if !channel.status().connected() {
                break Err(anyhow::anyhow!("the channel is closed"));
            }
            // Start the next batch, and run the ones in flight until it has
            // published: batches go out on the channel one after another.
            let (published_tx, mut published) = oneshot::channel();
            in_flight
                .batches
                .push(self.publish_batch(channel, published_tx));
            let claimed = loop {
                tokio::select! {
                    claimed = &mut published => break claimed.ok(),
                    Some(outcome) = in_flight.batches.next() => in_flight.record(outcome),
                    _ = shutdown.cancelled() => break None,
                }
            };
            in_flight.settle_down_to(IN_FLIGHT - 1, shutdown).await;
            // A full batch: there may be more right away.
            if claimed.is_some_and(|n| n as i64 >= self.settings.batch_size) {
                continue;
            }
            in_flight.settle_down_to(0, shutdown).await;
            if shutdown.is_cancelled() || in_flight.broken.is_some() {
                continue;
            }
            self.report_backlog().await;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        };
        // Stopping or broken: what was published may still be confirmed.
        // Past the grace, the rest is dropped: its transactions roll back.
        let never = CancellationToken::new();
        let _ = tokio::time::timeout(SETTLE_GRACE, in_flight.settle_down_to(0, &never)).await;
        result
    }

    /// Claims a batch and publishes it, tells `published` how many rows it
    /// claimed, then awaits the confirms and marks the rows in the claim's
    /// transaction.
    async fn publish_batch(
        &self,
        channel: &Channel,
        published: oneshot::Sender<usize>,
    ) -> Result<(), BatchError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows = outbox::claim_due(&tx, self.settings.batch_size).await?;
        if rows.is_empty() {
            let _ = published.send(0);
            return Ok(());
        }

        // Each traced row's publish joins the trace of the change that wrote
        // it; the spans end once the batch is settled.
        let publishing: Vec<(Span, Option<TraceContext>)> = rows.iter().map(publish_span).collect();
        // Issued together, so the client writes the whole batch in one go
        // instead of waiting for each message to reach the socket.
        let sent = join_all(rows.iter().zip(&publishing).map(|(row, (_, trace))| {
            channel.basic_publish(
                self.settings.topology.exchange_for(&row.routing_key).into(),
                row.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &row.payload,
                properties(row, trace.as_ref()),
            )
        }))
        .await;
        let _ = published.send(rows.len());
        metrics::histogram!("wowchat_relay_batch_size").record(rows.len() as f64);
        let confirming = std::time::Instant::now();

        let answers = self.await_confirms(&rows, sent).await;
        // From the batch written to its last confirm (or the deadline).
        metrics::histogram!("wowchat_relay_confirm_seconds")
            .record(confirming.elapsed().as_secs_f64());
        let Settlement {
            published: marked,
            retry: failed,
            broker_error,
            refused,
        } = settle(answers);
        outbox::mark_published(&tx, &marked).await?;
        outbox::schedule_retry(&tx, &failed, self.settings.retry_max).await?;
        tx.commit().await?;
        metrics::counter!("wowchat_outbox_published_total").increment(marked.len() as u64);
        metrics::counter!("wowchat_outbox_publish_failures_total").increment(failed.len() as u64);
        if !marked.is_empty() {
            tracing::debug!(count = marked.len(), "published outbox rows");
        }
        match broker_error {
            Some(err) => Err(BatchError::Broker(err)),
            None if refused => Err(BatchError::Refused),
            None => Ok(()),
        }
    }
    /// What the broker answered for each row published, waiting for the
    /// confirms until the batch's deadline.
    async fn await_confirms<'r>(
        &self,
        rows: &'r [PendingMessage],
        sent: Vec<Result<PublisherConfirm, lapin::Error>>,
    ) -> Vec<Answer<'r, lapin::Error>> {
        let deadline = tokio::time::Instant::now() + self.settings.confirm_timeout;
        let mut answers = Vec::with_capacity(rows.len());
        for (row, sent) in rows.iter().zip(sent) {
            // A basic.return is matched to its row by message id, not by
            // which confirm it came with: the client may hand a return to a
            // neighbouring confirm when acks for several arrive at once.
            let returned = |bounce: Option<lapin::message::BasicReturnMessage>| {
                bounce.map(|bounce| returned_id(&bounce).unwrap_or(row.id))
            };
            let heard = match sent {
                Err(err) => Heard::Failed(err),
                Ok(confirm) => match tokio::time::timeout_at(deadline, confirm).await {
                    Ok(Ok(Confirmation::Ack(bounce))) => Heard::Ack(returned(bounce)),
                    Ok(Ok(Confirmation::Nack(bounce))) => Heard::Nack(returned(bounce)),
                    Ok(Ok(Confirmation::NotRequested)) => Heard::NotConfirmed,
                    Ok(Err(err)) => Heard::Failed(err),
                    Err(_) => Heard::TimedOut,
                },
            };
            answers.push(Answer {
                id: row.id,
                routing_key: &row.routing_key,
                heard,
            });
        }
        answers
    }

    async fn report_backlog(&self) {
        let Ok(client) = self.pool.get().await else {
            return;
        };
        if let Ok((count, oldest_age)) = outbox::backlog(&client).await {
            metrics::gauge!("wowchat_outbox_backlog").set(count as f64);
            metrics::gauge!("wowchat_outbox_oldest_age_seconds").set(oldest_age);
            self.report(true, oldest_age).await;
        }
    }

    /// SERVING while connected to the broker and keeping up with the outbox.
    async fn report(&self, connected: bool, oldest_age_secs: f64) {
        metrics::gauge!("wowchat_relay_connected").set(if connected { 1.0 } else { 0.0 });
        if let Some(health) = &self.health {
            let keeping_up = oldest_age_secs <= self.settings.stall_after.as_secs_f64();
            let status = if connected && keeping_up {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            health.set_service_status(HEALTH_SERVICE, status).await;
        }
    }
}

/// What the broker said of one published row.
#[derive(Debug)]
enum Heard<E> {
    /// Confirmed; with the id of a message returned beside the confirm
    /// (unroutable), if any.
    Ack(Option<Uuid>),
    /// Refused; likewise.
    Nack(Option<Uuid>),
    /// The channel was not in confirm mode.
    NotConfirmed,
    /// Publishing or confirming failed: the channel is broken.
    Failed(E),
    /// No confirm by the batch's deadline.
    TimedOut,
}

/// One row's answer.
struct Answer<'r, E> {
    id: Uuid,
    routing_key: &'r str,
    heard: Heard<E>,
}

/// What a batch's answers mean for its rows.
#[derive(Debug)]
struct Settlement<E> {
    /// Confirmed and not returned: done.
    published: Vec<Uuid>,
    /// Anything else: published again later.
    retry: Vec<Uuid>,
    /// The first failure of the channel, which ends its use.
    broker_error: Option<E>,
    /// Whether the broker refused (nacked) any row, which ends the
    /// channel's use too.
    refused: bool,
}

/// Decides what a batch's confirms mean: a row is published only when
/// acked and returned by no answer of the batch (a return may arrive with
/// a neighbour's confirm); every other row is retried.
fn settle<E>(answers: Vec<Answer<'_, E>>) -> Settlement<E> {
    let returned: HashSet<Uuid> = answers
        .iter()
        .filter_map(|answer| match answer.heard {
            Heard::Ack(returned) | Heard::Nack(returned) => returned,
            _ => None,
        })
        .collect();
    let mut settlement = Settlement {
        published: Vec::with_capacity(answers.len()),
        retry: Vec::new(),
        broker_error: None,
        refused: false,
    };
    for Answer {
        id,
        routing_key,
        heard,
    } in answers
    {
        match heard {
            Heard::Ack(_) if returned.contains(&id) => {
                tracing::warn!(
                    message_id = %id,
                    routing_key,
                    "broker returned the message: nothing is bound to receive it; will retry"
                );
                settlement.retry.push(id);
            }
            Heard::Ack(_) => settlement.published.push(id),
            Heard::Nack(_) => {
                tracing::warn!(message_id = %id, "broker refused the message; will retry");
                settlement.retry.push(id);
                settlement.refused = true;
            }
            Heard::NotConfirmed => {
                tracing::warn!(message_id = %id, "broker did not confirm the message; will retry");
                settlement.retry.push(id);
            }
            Heard::TimedOut => {
                tracing::warn!(message_id = %id, "no confirm in time; will retry");
                settlement.retry.push(id);
            }
            Heard::Failed(err) => {
                settlement.broker_error.get_or_insert(err);
                settlement.retry.push(id);
            }
        }
    }
    settlement
}

/// The outbox id a returned message was published under.
fn returned_id(bounce: &lapin::message::BasicReturnMessage) -> Option<Uuid> {
    let id = bounce.delivery.properties.message_id().as_ref()?;
    Uuid::parse_str(id.as_str()).ok()
}

/// The row's AMQP properties ([`Envelope`]), carrying `trace` on. Public so
/// the benchmark's bare publisher sends the very same frames.
pub fn properties(row: &PendingMessage, trace: Option<&TraceContext>) -> BasicProperties {
    Envelope {
        message_id: &row.id.to_string(),
        routing_key: &row.routing_key,
        app_id: APP_ID,
        timestamp: row.created_at.unix_timestamp(),
        workspace_id: &row.workspace_id.to_string(),
        message_type: &row.message_type,
        request_id: Some(&row.request_id),
        trace,
    }
    .properties()
}

/// The span publishing a traced row, a child of the change that wrote it,
/// and the trace context its message carries: the span's own, or, while
/// this relay records no traces, the stored one, so the consumer still
/// joins the change's trace. An untraced row gets neither.
fn publish_span(row: &PendingMessage) -> (Span, Option<TraceContext>) {
    let Some(stored) = &row.trace else {
        return (Span::none(), None);
    };
    if !telemetry::enabled() {
        return (Span::none(), Some(stored.clone()));
    }
    let span = tracing::info_span!(
        "outbox publish",
        message_id = %row.id,
        routing_key = %row.routing_key,
        "messaging.system" = "rabbitmq",
        "otel.name" = field::Empty,
        "otel.kind" = field::Empty,
    );
    telemetry::continue_trace(
        &span,
        Some(&stored.traceparent),
        stored.tracestate.as_deref(),
    );
    telemetry::describe_span(
        &span,
        SpanKind::Producer,
        &format!("publish {}", row.routing_key),
    );
    let carried = telemetry::trace_context(&span).or_else(|| Some(stored.clone()));
    (span, carried)
}

/// Wakes the relay when a transaction that wrote to the outbox commits.
async fn listen_for_outbox(url: Secret, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        if let Err(err) = listen(&url, &wake).await {
            tracing::debug!(error = %err, "outbox listener disconnected; polling meanwhile");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn listen(url: &Secret, wake: &Arc<Notify>) -> anyhow::Result<()> {
    let config = ConnectConfig::parse(url.expose(), "WOWCHAT_DATABASE_DIRECT_URL")?;
    let (client, mut connection) = config.connect().await?;
    let wake = wake.clone();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => wake.notify_one(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    notifications::listen(&client, &["outbox"]).await?;
    // A relay that missed notifications while away catches up now.
    driver.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: Uuid, heard: Heard<&'static str>) -> Answer<'static, &'static str> {
        Answer {
            id,
            routing_key: "user.invited",
            heard,
        }
    }

    #[test]
    fn acked_rows_are_published_and_every_other_answer_is_retried() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let settlement = settle(vec![
            answer(ids[0], Heard::Ack(None)),
            answer(ids[1], Heard::Nack(None)),
            answer(ids[2], Heard::NotConfirmed),
            answer(ids[3], Heard::TimedOut),
            answer(ids[4], Heard::Ack(None)),
        ]);
        assert_eq!(settlement.published, vec![ids[0], ids[4]]);
        assert_eq!(settlement.retry, vec![ids[1], ids[2], ids[3]]);
        assert!(settlement.broker_error.is_none());
        assert!(settlement.refused, "a nack ends the channel's use");
    }

    #[test]
    fn a_return_retries_the_row_it_names_even_when_it_came_with_a_neighbours_ack() {
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        // The client handed the second row's return to the first's confirm.
        let settlement = settle(vec![
            answer(first, Heard::Ack(Some(second))),
            answer(second, Heard::Ack(None)),
        ]);
        assert_eq!(settlement.published, vec![first]);
        assert_eq!(settlement.retry, vec![second]);
        assert!(!settlement.refused, "a return is no refusal");
    }

    #[test]
    fn the_first_channel_failure_is_kept_and_its_rows_retried() {
        let (first, second, third) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let settlement = settle(vec![
            answer(first, Heard::Failed("channel closed")),
            answer(second, Heard::Ack(None)),
            answer(third, Heard::Failed("later")),
        ]);
        assert_eq!(settlement.published, vec![second]);
        assert_eq!(settlement.retry, vec![first, third]);
        assert_eq!(settlement.broker_error, Some("channel closed"));
    }

    #[test]
    fn an_empty_batch_settles_to_nothing() {
        let settlement = settle::<&str>(Vec::new());
        assert!(settlement.published.is_empty() && settlement.retry.is_empty());
        assert!(settlement.broker_error.is_none() && !settlement.refused);
    }
}
