//! A transaction whose BEGIN and COMMIT travel with the statements beside
//! them, and writes that wait for the COMMIT to go out together.
//!
//! tokio-postgres pipelines the statements of futures polled together on one
//! connection, and Postgres runs them in the order sent. Its own
//! `Transaction` cannot join in: it waits for BEGIN's answer before anything
//! else is sent, and sends COMMIT alone, so every mutation paid two round
//! trips for them. Round trips, not statements, are what a short transaction
//! costs here: pgbench of an invitation's statements ran at 0.44x the rate of
//! one statement doing the same, and at ~1.0x with them all in one pipeline.

use futures::future::join_all;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use wowchat_platform::statements;

use super::{Client, is_unique_violation};
use crate::domain::Error;

/// An open transaction on a pooled connection. Dropped before its commit
/// (an error, a cancelled request), it rolls back on a task of its own and
/// the connection then returns to the pool.
pub struct PipelinedTransaction {
    /// `None` only once dropped.
    client: Option<Client>,
    /// BEGIN may have been sent, and neither COMMIT nor ROLLBACK.
    open: bool,
}

impl PipelinedTransaction {
    /// Takes the connection; nothing is sent until [`Self::begin`] is polled.
    pub fn new(client: Client) -> Self {
        PipelinedTransaction {
            client: Some(client),
            open: true,
        }
    }

    /// The connection, for the statements of the transaction.
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the connection is held until the transaction is dropped")
    }

    /// BEGIN. Polled first among futures polled together (`tokio::join!`
    /// polls in order the first time), it reaches Postgres before them.
    pub async fn begin(&self) -> Result<(), Error> {
        Ok(self.client().batch_execute("BEGIN").await?)
    }

    /// The transaction's time (`now()`, the same for all its statements).
    pub async fn now(&self) -> Result<OffsetDateTime, Error> {
        Ok(statements::query_one(self.client(), "SELECT now()", &[])
            .await?
            .try_get(0)?)
    }

    /// Sends `writes` and COMMIT in one round trip. When a write fails, the
    /// COMMIT finds the transaction aborted and rolls it back: the first
    /// failure is returned.
    pub async fn commit(mut self, writes: Vec<Write>) -> Result<(), Error> {
        let client = self.client();
        // Each is prepared first: one still to prepare would reach Postgres
        // only after the COMMIT sent beside it.
        for write in &writes {
            statements::prepare_ahead(client, &write.sql).await?;
        }
        let params: Vec<_> = writes.iter().map(Write::params).collect();
        let executes = writes
            .iter()
            .zip(&params)
            .map(|(write, params)| statements::execute(client, &write.sql, params));
        // join_all polls a short list in order, so the COMMIT goes out last.
        let (results, committed) = tokio::join!(join_all(executes), client.batch_execute("COMMIT"));
        self.open = false;
        for (write, result) in writes.iter().zip(results) {
            result.map_err(|err| write.failure(err))?;
        }
        Ok(committed?)
    }
}

impl Drop for PipelinedTransaction {
    fn drop(&mut self) {
        let Some(client) = self.client.take().filter(|_| self.open) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = client.batch_execute("ROLLBACK").await {
                        tracing::debug!(error = ?error, "rolling back a dropped transaction");
                    }
                });
            }
            // No runtime to roll back on: closing the connection does it.
            Err(_) => drop(deadpool_postgres::Object::take(client)),
        }
    }
}

/// A unique index, and the error its violation means.
type Taken = (&'static str, fn() -> Error);

/// A statement whose result nothing reads (an insert of an activity entry,
/// an outbox row, a remembered result), kept to be sent with the COMMIT.
pub struct Write {
    sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
    /// A unique index it may break, and what that means to the caller.
    taken: Option<Taken>,
}

impl Write {
    pub fn new(sql: impl Into<String>, params: Vec<Box<dyn ToSql + Sync + Send>>) -> Self {
        Write {
            sql: sql.into(),
            params,
            taken: None,
        }
    }

    /// When the write breaks the unique `index`, the commit fails with `error()`.
    pub fn unless_taken(mut self, index: &'static str, error: fn() -> Error) -> Self {
        self.taken = Some((index, error));
        self
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|param| &**param as &(dyn ToSql + Sync))
            .collect()
    }

    fn failure(&self, err: tokio_postgres::Error) -> Error {
        match self.taken {
            Some((index, error)) if is_unique_violation(&err, index) => error(),
            _ => err.into(),
        }
    }

    /// Runs it now, on its own, for a caller outside a pipelined unit of work.
    pub async fn run(&self, client: &impl super::GenericClient) -> Result<(), Error> {
        statements::execute(client, &self.sql, &self.params())
            .await
            .map_err(|err| self.failure(err))?;
        Ok(())
    }
}
