//! The dedupe table `mailer_sent_messages`: which mail commands (by AMQP
//! message id) already produced an email, and whether their result event went
//! out. It is what makes redelivery safe: a command found here is not sent
//! again.
//!
//! A send runs inside the transaction that inserts the command's row, so the
//! row lock is held while the email goes out: a second copy of the same
//! command (another replica, a redelivery after a lost connection) waits on
//! the lock and then finds the row, rather than sending in parallel. If the
//! process dies mid-send the transaction rolls back and the command is sent
//! again on redelivery: at-least-once, with the window as small as it gets.

use std::{future::Future, time::Duration};

use anyhow::Context;
use deadpool_postgres::Pool;
use uuid::Uuid;
use wowchat_platform::statements;

/// Claims a command's id; nothing when its row exists (waiting first while
/// another transaction holds it uncommitted).
const CLAIM: &str = "INSERT INTO mailer_sent_messages \
                         (message_id, routing_key, result_published, result_message_id) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (message_id) DO NOTHING";

#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

/// What [`Store::send_once`] did, when the send did not fail.
pub enum SendOnce<T> {
    /// The command was sent before: nothing was sent now.
    AlreadySent {
        result_published: bool,
        result_message_id: Option<Uuid>,
    },
    /// Sent now. `recorded` is false when the commit failed after the send;
    /// the caller must record it with [`Store::record_sent`].
    Sent { sent: T, recorded: bool },
}

impl Store {
    pub fn new(pool: Pool) -> Self {
        Store { pool }
    }

    /// Runs `send` unless `message_id` was sent before, and records it when
    /// `send` succeeds; a failed send records nothing and is the inner error. `has_result` says whether a result event is still to
    /// be published for it, under `result_message_id`.
    pub async fn send_once<T, E, Fut>(
        &self,
        message_id: &str,
        routing_key: &str,
        has_result: bool,
        result_message_id: Uuid,
        send: impl FnOnce() -> Fut,
    ) -> anyhow::Result<Result<SendOnce<T>, E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let mut client = self.pool.get().await.context("getting a connection")?;
        let transaction = client
            .transaction()
            .await
            .context("beginning the send transaction")?;
        // Waits while another transaction holds an uncommitted row for this
        // id. The row says sent as of the transaction's start: it commits
        // only once the email went out.
        let inserted = statements::execute(
            &transaction,
            CLAIM,
            &[&message_id, &routing_key, &!has_result, &result_message_id],
        )
        .await
        .context("claiming the message id")?;
        if inserted == 0 {
            let row = statements::query_one(
                &transaction,
                "SELECT result_published, result_message_id \
                 FROM mailer_sent_messages WHERE message_id = $1",
                &[&message_id],
            )
            .await
            .context("reading the sent message")?;
            return Ok(Ok(SendOnce::AlreadySent {
                result_published: row.try_get(0).context("result_published")?,
                result_message_id: row.try_get(1).context("result_message_id")?,
            }));
        }
        match send().await {
            Ok(sent) => {
                let recorded = transaction.commit().await;
                if let Err(e) = &recorded {
                    tracing::error!(error = %e, "the email went out but recording it failed");
                }
                Ok(Ok(SendOnce::Sent {
                    sent,
                    recorded: recorded.is_ok(),
                }))
            }
            // Dropping the transaction rolls it back and frees the id.
            Err(e) => Ok(Err(e)),
        }
    }

    /// Records a sent command outside [`Store::send_once`] (when its commit failed).
    pub async fn record_sent(
        &self,
        message_id: &str,
        routing_key: &str,
        has_result: bool,
        result_message_id: Uuid,
    ) -> anyhow::Result<()> {
        let client = self.pool.get().await.context("getting a connection")?;
        statements::execute(
            &client,
            CLAIM,
            &[&message_id, &routing_key, &!has_result, &result_message_id],
        )
        .await
        .context("recording the sent message")?;
        Ok(())
    }

    /// Notes that the result event of `message_id` was published. Not
    /// flushed to disk before it returns (`synchronous_commit` off for this
    /// one statement): lost in a crash, the mark only makes a redelivered
    /// command publish its result again, under the same message id, which
    /// the service records once. One WAL flush per email fewer.
    pub async fn mark_result_published(&self, message_id: &str) -> anyhow::Result<()> {
        let client = self.pool.get().await.context("getting a connection")?;
        statements::execute(
            &client,
            "UPDATE mailer_sent_messages SET result_published = true \
             FROM (SELECT set_config('synchronous_commit', 'off', true)) AS not_flushed \
             WHERE message_id = $1",
            &[&message_id],
        )
        .await
        .context("marking the result published")?;
        Ok(())
    }

    /// Deletes dedupe rows sent more than `max_age` ago, `batch` rows per
    /// statement, if no other replica is doing it (None then). Each batch is
    /// a transaction holding the lock (a transaction's, not a session's,
    /// which a transaction-pooling PgBouncer could not release).
    pub async fn prune_sent(&self, max_age: Duration, batch: i64) -> anyhow::Result<Option<u64>> {
        let mut client = self.pool.get().await.context("getting a connection")?;
        let mut total = None;
        loop {
            let transaction = client
                .transaction()
                .await
                .context("beginning a pruning batch")?;
            let locked: bool = statements::query_one(
                &transaction,
                "SELECT pg_try_advisory_xact_lock($1)",
                &[&PRUNE_LOCK],
            )
            .await
            .context("taking the pruning lock")?
            .try_get(0)?;
            if !locked {
                return Ok(total);
            }
            let deleted = statements::execute(
                &transaction,
                "DELETE FROM mailer_sent_messages WHERE message_id IN ( \
                   SELECT message_id FROM mailer_sent_messages \
                   WHERE sent_at < now() - make_interval(secs => $1) LIMIT $2)",
                &[&max_age.as_secs_f64(), &batch],
            )
            .await
            .context("pruning sent messages")?;
            transaction
                .commit()
                .await
                .context("committing a pruning batch")?;
            let sum = total.unwrap_or(0) + deleted;
            total = Some(sum);
            if deleted < batch as u64 {
                return Ok(total);
            }
        }
    }
}

/// The advisory lock key of pruning: distinct from the service's, which may
/// share the database.
const PRUNE_LOCK: i64 = 0x776f_7763_6861_7402;
