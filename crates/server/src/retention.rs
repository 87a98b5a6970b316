//! Retention: deletes what the service no longer needs (stored results of
//! idempotent calls, outbox rows already published) so those tables stay
//! bounded. Every replica runs the loop; a Postgres advisory lock lets one
//! of them prune at a time, the others skip that round.

use std::time::Duration;

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
}

/// What one round deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub idempotency_keys: u64,
    pub published_outbox: u64,
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
                        "retention pruned old rows"
                    );
                }
                Ok(Some(_)) => {}
                Ok(None) => tracing::debug!("another replica holds the retention lock"),
                Err(err) => tracing::warn!(error = %err, "retention round failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.settings.interval) => {}
            }
        }
    }

    /// One round, if this replica gets the lock (`None` when another holds
    /// it). Stops early between batches on `shutdown`.
    pub async fn prune_once(&self, shutdown: &CancellationToken) -> Result<Option<Pruned>, Error> {
        let client = self.pool.get().await?;
        if !retention::try_lock(&client).await? {
            return Ok(None);
        }
        let pruned = self.prune_locked(&client, shutdown).await;
        // A session lock outlives the round: a connection that cannot release
        // it must not go back to the pool holding it.
        if retention::unlock(&client).await.is_err() {
            drop(deadpool_postgres::Object::take(client));
        }
        pruned.map(Some)
    }

    async fn prune_locked(
        &self,
        client: &deadpool_postgres::Client,
        shutdown: &CancellationToken,
    ) -> Result<Pruned, Error> {
        let batch = self.settings.batch_size.max(1);
        let mut pruned = Pruned::default();
        if let Some(age) = self.settings.idempotency_keys {
            pruned.idempotency_keys = in_batches(batch, shutdown, || {
                retention::delete_batch(client, Prunable::IdempotencyKeys, age.as_secs_f64(), batch)
            })
            .await?;
        }
        if let Some(age) = self.settings.published_outbox {
            pruned.published_outbox = in_batches(batch, shutdown, || {
                retention::delete_batch(client, Prunable::PublishedOutbox, age.as_secs_f64(), batch)
            })
            .await?;
        }
        Ok(pruned)
    }
}

/// Runs `delete` until a batch comes back short or `shutdown`; the total.
async fn in_batches<F: Future<Output = Result<u64, Error>>>(
    batch: i64,
    shutdown: &CancellationToken,
    mut delete: impl FnMut() -> F,
) -> Result<u64, Error> {
    let mut total = 0;
    loop {
        let deleted = delete().await?;
        total += deleted;
        if deleted < batch as u64 || shutdown.is_cancelled() {
            return Ok(total);
        }
    }
}
