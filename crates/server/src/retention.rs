//! Retention: deletes what the service no longer needs (stored results of
//! idempotent calls, outbox rows already published, rate limit buckets
//! that are full again, months of the activity log past their keeping) so
//! those tables stay bounded, and makes the activity log's coming months'
//! partitions. Every replica runs the loop; a Postgres advisory lock lets one
//! of them prune at a time, the others skip that round.

use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::Error,
    store::{
        Pool,
        retention::{self, Prunable},
    },
};

#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// Time between two rounds; the first runs at start.
    pub interval: Duration,
    /// Age past which a stored idempotent result goes; `None` keeps them.
    pub idempotency_keys: Option<Duration>,
    /// Age since publishing past which an outbox row goes; `None` keeps them.
    pub published_outbox: Option<Duration>,
    /// Rows per DELETE, so no statement holds many row locks or runs long.
    pub batch_size: i64,
    /// Whole months of the activity log kept before the current one; older
    /// months' partitions are dropped. `None` keeps them all.
    pub activity_months: Option<u32>,
}

/// Months of activity partitions made before they are needed, so a round
/// that does not run for a while costs nothing (the default partition
/// would catch rows meanwhile).
const ACTIVITY_MONTHS_AHEAD: i32 = 3;

/// What one round deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub idempotency_keys: u64,
    pub published_outbox: u64,
    pub rate_limits: u64,
}

pub struct Retention {
    pool: Pool,
    settings: RetentionSettings,
}

impl Retention {
    pub fn new(pool: Pool, settings: RetentionSettings) -> Self {
        Retention { pool, settings }
    }

    /// Prunes every `interval` until `shutdown`; a failed round is logged and
    /// retried at the next one.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.prune_once(&shutdown).await {
                Ok(Some(pruned)) if pruned != Pruned::default() => {
                    tracing::info!(
                        idempotency_keys = pruned.idempotency_keys,
                        published_outbox = pruned.published_outbox,
                        rate_limits = pruned.rate_limits,
                        "retention pruned old rows"
                    );
                }
                Ok(Some(_)) => {}
                Ok(None) => tracing::debug!("another replica holds the retention lock"),
                Err(err) => tracing::warn!(error = %err, "retention round failed"),
            }
            match self
                .keep_activity_partitions(OffsetDateTime::now_utc())
                .await
            {
                Ok(Some((made, dropped))) if made > 0 || dropped > 0 => {
                    tracing::info!(made, dropped, "activity log partitions made and dropped");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "activity partition upkeep failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.settings.interval) => {}
            }
        }
    }

    /// One round, if this replica gets the lock (`None` when another holds
    /// it). Stops early between batches on `shutdown`, or when another
    /// replica takes the lock between two of them.
    pub async fn prune_once(&self, shutdown: &CancellationToken) -> Result<Option<Pruned>, Error> {
        let mut client = self.pool.get().await?;
        let batch = self.settings.batch_size.max(1);
        let mut round = Round {
            client: &mut client,
            batch,
            shutdown,
            started: false,
        };
        let mut pruned = Pruned::default();
        if let Some(age) = self.settings.idempotency_keys {
            match round.prune(Prunable::IdempotencyKeys, age).await? {
                Some(deleted) => pruned.idempotency_keys = deleted,
                None => return Ok(round.started.then_some(pruned)),
            }
        }
        if let Some(age) = self.settings.published_outbox {
            match round.prune(Prunable::PublishedOutbox, age).await? {
                Some(deleted) => pruned.published_outbox = deleted,
                None => return Ok(round.started.then_some(pruned)),
            }
        }
        // Always: a full bucket holds nothing a missing row does not.
        match round
            .prune(Prunable::FullRateLimits, Duration::ZERO)
            .await?
        {
            Some(deleted) => pruned.rate_limits = deleted,
            None => return Ok(round.started.then_some(pruned)),
        }
        Ok(Some(pruned))
    }
}

impl Retention {
    /// Makes the activity log's partitions for the months ahead of `at`'s
    /// and drops the months past keeping: (made, dropped), or `None` when
    /// another replica holds the lock.
    pub async fn keep_activity_partitions(
        &self,
        at: OffsetDateTime,
    ) -> Result<Option<(i32, i32)>, Error> {
        let mut client = self.pool.get().await?;
        let keep = self
            .settings
            .activity_months
            .map_or(0, |months| i32::try_from(months).unwrap_or(i32::MAX));
        retention::maintain_activity_partitions(&mut client, keep, ACTIVITY_MONTHS_AHEAD, at).await
    }
}

/// One round's batches, on one connection.
struct Round<'a> {
    client: &'a mut deadpool_postgres::Client,
    batch: i64,
    shutdown: &'a CancellationToken,
    /// A batch got the lock: this replica is the one pruning.
    started: bool,
}

impl Round<'_> {
    /// Deletes `what` older than `age` until a batch comes back short or
    /// `shutdown`; the total, or `None` when another replica holds the lock.
    async fn prune(&mut self, what: Prunable, age: Duration) -> Result<Option<u64>, Error> {
        let mut total = 0;
        loop {
            let Some(deleted) =
                retention::delete_batch(self.client, what, age.as_secs_f64(), self.batch).await?
            else {
                return Ok(None);
            };
            self.started = true;
            total += deleted;
            if deleted < self.batch as u64 || self.shutdown.is_cancelled() {
                return Ok(Some(total));
            }
        }
    }
}
