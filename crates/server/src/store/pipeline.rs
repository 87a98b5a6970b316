//! A transaction whose BEGIN and COMMIT travel with the statements beside
//! them, and writes that wait for the COMMIT to go out together.
//!
//! tokio-postgres pipelines the statements of futures polled together on one
//! connection, and Postgres runs them in the order sent. Its own
//! `Transaction` cannot join in: it waits for BEGIN's answer before anything
//! else is sent, and sends COMMIT alone, so every mutation paid two round
//! trips for them. Round trips, not statements, are what a short transaction
//! costs here: pgbench of an invitation's statements one by one against all
//! of them in one pipeline shows it (docs/performance.md).

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

    /// Sends `writes`, as one statement, and COMMIT in one round trip. When
    /// the write fails, the COMMIT finds the transaction aborted and rolls it
    /// back, and the write's failure is returned.
    pub async fn commit(mut self, writes: Vec<Write>) -> Result<(), Error> {
        let Some(write) = Write::together(writes) else {
            let committed = self.client().batch_execute("COMMIT").await;
            self.open = false;
            return Ok(committed?);
        };
        let client = self.client();
        // Prepared first: a statement still to prepare would reach Postgres
        // only after the COMMIT sent beside it.
        statements::prepare_ahead(client, &write.sql).await?;
        let params = write.params();
        // Polled first, so the write goes out before the COMMIT.
        let (written, committed) = tokio::join!(
            statements::execute(client, &write.sql, &params),
            client.batch_execute("COMMIT")
        );
        self.open = false;
        written.map_err(|err| write.failure(err))?;
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
    /// Unique indexes it may break, and what that means to the caller.
    taken: Vec<Taken>,
}

impl Write {
    pub fn new(sql: impl Into<String>, params: Vec<Box<dyn ToSql + Sync + Send>>) -> Self {
        Write {
            sql: sql.into(),
            params,
            taken: Vec::new(),
        }
    }

    /// `writes` as one statement, each a data-modifying `WITH` clause, in
    /// order; `None` for none. One statement, not one each: every statement
    /// costs Postgres a Bind, an Execute and a flushed reply, and costs the
    /// server a reply to read (InviteUser's three inserts were a third of
    /// its statements). Postgres runs the clauses on one snapshot, which is
    /// all writes that read nothing back need, and checks foreign keys at
    /// the statement's end, so an entry may name a row inserted beside it.
    /// No two writes may change the same row.
    pub fn together(writes: Vec<Write>) -> Option<Write> {
        if writes.len() <= 1 {
            return writes.into_iter().next();
        }
        let mut sql = String::from("WITH ");
        let mut params = Vec::new();
        let mut taken = Vec::new();
        for (n, write) in writes.into_iter().enumerate() {
            if n > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("w{n} AS ("));
            shift_parameters(&write.sql, params.len(), &mut sql);
            sql.push(')');
            params.extend(write.params);
            taken.extend(write.taken);
        }
        sql.push_str(" SELECT");
        Some(Write { sql, params, taken })
    }

    /// When the write breaks the unique `index`, the commit fails with `error()`.
    pub fn unless_taken(mut self, index: &'static str, error: fn() -> Error) -> Self {
        self.taken.push((index, error));
        self
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|param| &**param as &(dyn ToSql + Sync))
            .collect()
    }

    fn failure(&self, err: tokio_postgres::Error) -> Error {
        match self
            .taken
            .iter()
            .find(|(index, _)| is_unique_violation(&err, index))
        {
            Some((_, error)) => error(),
            None => err.into(),
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

/// Appends `sql` to `out` with each parameter `$n` renumbered `$(n + by)`;
/// quoted literals and identifiers are copied as they are.
fn shift_parameters(sql: &str, by: usize, out: &mut String) {
    let mut chars = sql.chars().peekable();
    let mut quote = None;
    while let Some(c) = chars.next() {
        out.push(c);
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut number = 0;
                while let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
                    number = number * 10 + digit as usize;
                    chars.next();
                }
                out.push_str(&(number + by).to_string());
            }
            (None, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_together_are_one_statement_with_their_parameters_renumbered_in_order() {
        let first = Write::new(
            "INSERT INTO a VALUES ($1, $2, 'it''s $1')",
            vec![Box::new(1_i32), Box::new(2_i32)],
        )
        .unless_taken("a_key", || Error::invalid("a", "taken"));
        let second = Write::new(
            "UPDATE \"b$1\" SET x = $2 WHERE id = $1",
            vec![Box::new(3_i32), Box::new(4_i32)],
        );
        let third = Write::new("DELETE FROM c WHERE id = $10", Vec::new());
        let together = Write::together(vec![first, second, third]).expect("three writes");
        assert_eq!(
            together.sql,
            "WITH w0 AS (INSERT INTO a VALUES ($1, $2, 'it''s $1')), \
             w1 AS (UPDATE \"b$1\" SET x = $4 WHERE id = $3), \
             w2 AS (DELETE FROM c WHERE id = $14) SELECT"
        );
        assert_eq!(together.params.len(), 4);
        assert_eq!(together.taken.len(), 1);
    }

    #[test]
    fn one_write_is_left_as_it_is_and_none_is_nothing() {
        let one = Write::new("INSERT INTO a VALUES ($1)", vec![Box::new(1_i32)]);
        let together = Write::together(vec![one]).expect("one write");
        assert_eq!(together.sql, "INSERT INTO a VALUES ($1)");
        assert!(Write::together(Vec::new()).is_none());
    }
}
