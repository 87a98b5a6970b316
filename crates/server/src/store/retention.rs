//! Pruning: the batch deletes of what has grown old, each in a transaction
//! holding the advisory lock that lets one replica at a time prune. A
//! transaction's lock, not a session's: through a transaction-pooling
//! PgBouncer a session lock could be taken on one server connection and
//! released on another.

use time::OffsetDateTime;

use super::{Client, execute, query_one, query_value};
use crate::domain::Error;

/// The lock's key: any constant no other code of this database uses.
const RETENTION_LOCK: i64 = 0x776f_7763_6861_7401; // "wowchat" + 1

/// Rows that retention deletes once they are old enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prunable {
    /// Stored results of mutating calls, by creation time; a retry arriving
    /// later runs as a new request.
    IdempotencyKeys,
    /// Outbox rows, by publication time; unpublished rows are never touched.
    PublishedOutbox,
    /// Rate limit buckets full again (their theoretical arrival time has
    /// passed): a missing row means the same. A check racing the delete
    /// re-reads the row it locked, so a refilled bucket is never lost.
    FullRateLimits,
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
            Prunable::FullRateLimits => {
                "DELETE FROM rate_limits WHERE ctid = ANY(ARRAY( \
                   SELECT ctid FROM rate_limits \
                   WHERE tat < now() - make_interval(secs => $1) LIMIT $2))"
            }
        }
    }
}

/// Deletes up to `limit` rows of `what` older than `max_age_secs`, under
/// the retention lock; how many went, or `None` when another replica holds
/// the lock.
pub async fn delete_batch(
    client: &mut Client,
    what: Prunable,
    max_age_secs: f64,
    limit: i64,
) -> Result<Option<u64>, Error> {
    let tx = client.transaction().await?;
    let locked: bool = query_value(
        &tx,
        "SELECT pg_try_advisory_xact_lock($1)",
        &[&RETENTION_LOCK],
    )
    .await?;
    if !locked {
        return Ok(None);
    }
    let deleted = execute(&tx, what.delete_batch_sql(), &[&max_age_secs, &limit]).await?;
    tx.commit().await?;
    Ok(Some(deleted))
}

/// Makes the activity log's month partitions up to `ahead_months` past the
/// month of `at` and drops those whose rows are all older than
/// `keep_months` before it (0 drops none), under the retention lock, in
/// one transaction: (made, dropped), or `None` when another replica holds
/// the lock. The work is the migration's `activity_maintain` (V37).
pub async fn maintain_activity_partitions(
    client: &mut Client,
    keep_months: i32,
    ahead_months: i32,
    at: OffsetDateTime,
) -> Result<Option<(i32, i32)>, Error> {
    let tx = client.transaction().await?;
    let locked: bool = query_value(
        &tx,
        "SELECT pg_try_advisory_xact_lock($1)",
        &[&RETENTION_LOCK],
    )
    .await?;
    if !locked {
        return Ok(None);
    }
    let kept = query_one(
        &tx,
        "SELECT created, dropped FROM activity_maintain($1, $2, $3)",
        &[&keep_months, &ahead_months, &at],
        |row| Ok((row.try_get(0)?, row.try_get(1)?)),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(kept))
}
