//! The transactional outbox: events written in the same transaction as the
//! change they announce, for the relay to publish.

use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;
use wowchat_platform::{statements, telemetry::TraceContext};

use super::{GenericClient, Pool, pipeline::Write};
use crate::domain::Error;

/// The least time between two wake-ups of the relays.
const WAKE_UP_INTERVAL: Duration = Duration::from_millis(5);

/// Wakes the relays listening on the `outbox` channel once rows have been
/// committed.
///
/// Not a NOTIFY inside the writing transaction: Postgres holds a
/// database-wide lock from a notifying transaction's pre-commit until its
/// commit is flushed, so every change would commit one after another, each
/// waiting for the previous one's WAL flush. Instead one task sends a NOTIFY
/// of its own after commits, one for however many commits happened while the
/// previous NOTIFY was on its way. A wake-up lost to a crash in between is
/// caught by the relays' polling.
#[derive(Clone)]
pub struct RelayWakeup {
    due: mpsc::Sender<()>,
}

impl RelayWakeup {
    /// Starts the notifying task; it ends when the last handle is dropped.
    pub fn spawn(pool: Pool) -> Self {
        // One slot: a wake-up asked for while one is pending is the same one.
        let (due, mut asked) = mpsc::channel(1);
        tokio::spawn(async move {
            while asked.recv().await.is_some() {
                if let Err(error) = notify(&pool).await {
                    tracing::debug!(error = ?error, "waking the relays; they poll meanwhile");
                }
                // Commits meanwhile share the next wake-up: under load one
                // NOTIFY (a transaction, and a database-wide lock at its
                // commit) per interval instead of one per commit, and a
                // pooled connection free for requests between them.
                tokio::time::sleep(WAKE_UP_INTERVAL).await;
            }
        });
        RelayWakeup { due }
    }

    /// Asks for a wake-up: call after committing outbox rows.
    pub fn after_commit(&self) {
        // Full means a wake-up is already due, which covers this commit too.
        let _ = self.due.try_send(());
    }
}

async fn notify(pool: &Pool) -> Result<(), Error> {
    let client = pool.get().await?;
    // One statement (its own transaction), and nothing to make durable: its
    // commit need not wait for a WAL flush.
    client
        .batch_execute(
            "SELECT set_config('synchronous_commit', 'off', true), pg_notify('outbox', '')",
        )
        .await?;
    Ok(())
}

/// One message to publish.
pub struct OutboxMessage {
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// The event type (`invitation.created`) or command route (`mail.invitation`).
    pub routing_key: &'static str,
    /// The protobuf message name of `payload`.
    pub message_type: String,
    pub payload: Vec<u8>,
    pub request_id: String,
    /// The trace of the change, which the publish and its consequences join.
    pub trace: Option<TraceContext>,
}

/// Appends `message`, to be published once the transaction commits.
pub fn insert(message: OutboxMessage) -> Write {
    insert_all(vec![message])
}

/// Appends `messages` in one statement, to be published once the
/// transaction commits.
pub fn insert_all(messages: Vec<OutboxMessage>) -> Write {
    let mut ids = Vec::with_capacity(messages.len());
    let mut workspace_ids = Vec::with_capacity(messages.len());
    let mut routing_keys = Vec::with_capacity(messages.len());
    let mut message_types = Vec::with_capacity(messages.len());
    let mut payloads = Vec::with_capacity(messages.len());
    let mut request_ids = Vec::with_capacity(messages.len());
    // Untraced, the trace arrays stay empty (no allocation): `unnest` pads
    // the shorter arrays with NULLs.
    let traced = messages.iter().any(|message| message.trace.is_some());
    let trace_capacity = if traced { messages.len() } else { 0 };
    let mut traceparents = Vec::with_capacity(trace_capacity);
    let mut tracestates = Vec::with_capacity(trace_capacity);
    for message in messages {
        ids.push(message.id);
        workspace_ids.push(message.workspace_id);
        routing_keys.push(message.routing_key);
        message_types.push(message.message_type);
        payloads.push(message.payload);
        request_ids.push(message.request_id);
        if traced {
            let (traceparent, tracestate) = match message.trace {
                Some(trace) => (Some(trace.traceparent), trace.tracestate),
                None => (None, None),
            };
            traceparents.push(traceparent);
            tracestates.push(tracestate);
        }
    }
    Write::new(
        "INSERT INTO outbox (id, workspace_id, routing_key, message_type, payload, request_id, \
         traceparent, tracestate, created_at) \
         SELECT id, workspace_id, routing_key, message_type, payload, request_id, \
         traceparent, tracestate, now() \
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bytea[], $6::text[], \
         $7::text[], $8::text[]) \
         AS m(id, workspace_id, routing_key, message_type, payload, request_id, \
         traceparent, tracestate)",
        vec![
            Box::new(ids),
            Box::new(workspace_ids),
            Box::new(routing_keys),
            Box::new(message_types),
            Box::new(payloads),
            Box::new(request_ids),
            Box::new(traceparents),
            Box::new(tracestates),
        ],
    )
}

/// An unpublished row, claimed by a relay.
pub struct PendingMessage {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub routing_key: String,
    pub message_type: String,
    pub payload: Vec<u8>,
    pub request_id: String,
    pub created_at: time::OffsetDateTime,
    /// The trace of the change that wrote it, when that was traced.
    pub trace: Option<TraceContext>,
}

/// Claims up to `limit` rows due for publishing, the longest due first (a
/// new row is due when created, so new rows go oldest first). The rows stay
/// locked until the transaction ends, and rows another relay holds are
/// skipped, so several relays never publish the same row at once.
///
/// The order is the `outbox_unpublished` index's, so Postgres reads the
/// first `limit` entries and stops. Ordered any other way it had to sort
/// the whole backlog under the row locks on every claim (tens of ms, spilled
/// to disk, at 50,000 rows).
pub async fn claim_due(
    client: &impl GenericClient,
    limit: i64,
) -> Result<Vec<PendingMessage>, Error> {
    let rows = statements::query(
        client,
        "SELECT id, workspace_id, routing_key, message_type, payload, request_id, created_at, \
             traceparent, tracestate FROM outbox WHERE published_at IS NULL AND next_attempt_at <= now() \
             ORDER BY next_attempt_at, created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        &[&limit],
    )
    .await?;
    rows.iter()
        .map(|row| {
            let traceparent: Option<String> = row.try_get(7)?;
            let tracestate: Option<String> = row.try_get(8)?;
            Ok(PendingMessage {
                id: row.try_get(0)?,
                workspace_id: row.try_get(1)?,
                routing_key: row.try_get(2)?,
                message_type: row.try_get(3)?,
                payload: row.try_get(4)?,
                request_id: row.try_get(5)?,
                created_at: row.try_get(6)?,
                trace: traceparent.map(|traceparent| TraceContext {
                    traceparent,
                    tracestate,
                }),
            })
        })
        .collect()
}

/// Marks rows published after a positive confirm. A command's payload (it
/// may carry an invitation token) is erased: no copy outlives its delivery
/// to the broker.
pub async fn mark_published(client: &impl GenericClient, ids: &[Uuid]) -> Result<(), Error> {
    if ids.is_empty() {
        return Ok(());
    }
    statements::execute(
        client,
        "UPDATE outbox SET published_at = now(), attempts = attempts + 1, \
             payload = CASE WHEN routing_key LIKE 'mail.%' THEN ''::bytea ELSE payload END \
             WHERE id = ANY($1)",
        &[&ids],
    )
    .await?;
    Ok(())
}

/// Leaves rows for a later try, backing off exponentially up to `max_delay`.
pub async fn schedule_retry(
    client: &impl GenericClient,
    ids: &[Uuid],
    max_delay: std::time::Duration,
) -> Result<(), Error> {
    if ids.is_empty() {
        return Ok(());
    }
    statements::execute(client, "UPDATE outbox SET attempts = attempts + 1, \
             next_attempt_at = now() + least(make_interval(secs => power(2, least(attempts, 20))::float8 / 4), \
                                              make_interval(secs => $2)) \
             WHERE id = ANY($1)", &[&ids, &max_delay.as_secs_f64()])
        .await?;
    Ok(())
}

/// How many rows wait to be published, and the age in seconds of the oldest.
pub async fn backlog(client: &impl GenericClient) -> Result<(i64, f64), Error> {
    let row = statements::query_one(
        client,
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at))::float8, 0) \
             FROM outbox WHERE published_at IS NULL",
        &[],
    )
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}
