//! Pruning: the session advisory lock that lets one replica at a time
//! prune, and the batch deletes of what has grown old.

use super::{GenericClient, execute};
use crate::domain::Error;

/// The lock's key: any constant no other code of this database uses.
const RETENTION_LOCK: i64 = 0x776f_7763_6861_7401; // "wowchat" + 1

/// Takes the retention lock on this connection if no other session holds it.
pub async fn try_lock(client: &impl GenericClient) -> Result<bool, Error> {
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&RETENTION_LOCK])
        .await?;
    Ok(row.try_get(0)?)
}

/// Releases the lock taken by [`try_lock`] on this same connection.
pub async fn unlock(client: &impl GenericClient) -> Result<(), Error> {
    client
        .query_one("SELECT pg_advisory_unlock($1)", &[&RETENTION_LOCK])
        .await?;
    Ok(())
}

/// Rows that retention deletes once they are old enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prunable {
    /// Stored results of mutating calls, by creation time; a retry arriving
    /// later runs as a new request.
    IdempotencyKeys,
    /// Outbox rows, by publication time; unpublished rows are never touched.
    PublishedOutbox,
}

impl Prunable {
    fn delete_batch_sql(self) -> &'static str {
        match self {
            Prunable::IdempotencyKeys => {
                "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY( \
                   SELECT ctid FROM idempotency_keys \
                   WHERE created_at < now() - make_interval(secs => $1) LIMIT $2))"
            }
            Prunable::PublishedOutbox => {
                "DELETE FROM outbox WHERE id IN ( \
                   SELECT id FROM outbox \
                   WHERE published_at < now() - make_interval(secs => $1) LIMIT $2)"
            }
        }
    }
}

/// Deletes up to `limit` rows of `what` older than `max_age_secs`; how many went.
pub async fn delete_batch(
    client: &impl GenericClient,
    what: Prunable,
    max_age_secs: f64,
    limit: i64,
) -> Result<u64, Error> {
    execute(client, what.delete_batch_sql(), &[&max_age_secs, &limit]).await
}
