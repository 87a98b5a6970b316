//! Storage: small query functions over a Postgres client or transaction, one
//! module per table group. SQL lives here and nowhere else. Storage errors
//! become domain errors here: a lost database is UNAVAILABLE, anything else
//! is opaque.

pub mod activity;
pub mod directory;
pub mod directory_groups;
pub mod idempotency;
pub mod invitations;
pub mod invite_links;
pub mod join_requests;
pub mod mail_domains;
pub mod notifications;
pub mod outbox;
pub mod pipeline;
pub mod rate_limits;
pub mod retention;
pub mod roles;
pub mod suppressions;
pub mod user_listing;
pub mod users;
pub mod workspaces;

pub use deadpool_postgres::{Client, Pool, Transaction};
use wowchat_platform::statements;
/// A pooled connection or a transaction on one. Statements go through
/// `wowchat_platform::statements`, which prepares and caches them or, behind
/// a transaction-pooling PgBouncer, sends them unnamed.
pub use wowchat_platform::statements::Connection as GenericClient;

use tokio_postgres::{
    Row,
    types::{FromSqlOwned, ToSql},
};

use crate::domain::{Error, pagination::Window};

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Runs `sql` (prepared once per connection) and reads the row it returns,
/// if any, with `read`: the one way a store module reads a single record.
async fn query_opt<T>(
    client: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
    read: impl Fn(&Row) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    statements::query_opt(client, sql, params)
        .await?
        .as_ref()
        .map(read)
        .transpose()
}

/// Like [`query_opt`] for a statement that always returns one row.
async fn query_one<T>(
    client: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
    read: impl Fn(&Row) -> Result<T, Error>,
) -> Result<T, Error> {
    read(&statements::query_one(client, sql, params).await?)
}

/// Like [`query_one`], but `None` when the statement would break the
/// unique `constraint` (the transaction is then aborted).
async fn query_one_unless_taken<T>(
    client: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
    constraint: &'static str,
    read: impl Fn(&Row) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    Ok(
        query_one_unless_any_taken(client, sql, params, &[(constraint, constraint)], read)
            .await?
            .ok(),
    )
}

/// Like [`query_one`], but `Err(key)` when the statement would break one of
/// the unique indexes of `keys`, `(index, what it keeps unique)` (the
/// transaction is then aborted).
async fn query_one_unless_any_taken<T>(
    client: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
    keys: &[(&str, &'static str)],
    read: impl Fn(&Row) -> Result<T, Error>,
) -> Result<Result<T, &'static str>, Error> {
    match statements::query_one(client, sql, params).await {
        Ok(row) => read(&row).map(Ok),
        Err(err) => match keys
            .iter()
            .find(|(index, _)| is_unique_violation(&err, index))
        {
            Some((_, key)) => Ok(Err(key)),
            None => Err(err.into()),
        },
    }
}

/// A table a store module reads whole records from: its name, the columns
/// a record is read from, and how a row holding them reads. A module's
/// table is the one way to read one of its records by id
/// (`users::USERS.get(…)`).
pub(crate) struct Table<T> {
    pub(crate) name: &'static str,
    columns: fn() -> String,
    read: fn(&Row) -> Result<T, Error>,
    /// The rows a workspace's readers see, a condition both `get` and
    /// `newest_first` add; `None`: every row.
    shown: Option<&'static str>,
}

impl<T> Table<T> {
    /// ` AND` the rows readers see, or nothing.
    fn shown_clause(&self) -> String {
        self.shown
            .map(|shown| format!(" AND {shown}"))
            .unwrap_or_default()
    }

    /// The row with that `id` in the workspace, locked as `lock` says until
    /// the transaction ends.
    pub(crate) async fn get(
        &self,
        client: &impl GenericClient,
        workspace_id: uuid::Uuid,
        id: uuid::Uuid,
        lock: Lock,
    ) -> Result<Option<T>, Error> {
        let sql = format!(
            "SELECT {} FROM {} WHERE workspace_id = $1 AND id = $2{}{}",
            (self.columns)(),
            self.name,
            self.shown_clause(),
            lock.clause()
        );
        query_opt(client, &sql, &[&workspace_id, &id], self.read).await
    }

    /// Sets `set` on the row with that `id` in the workspace if `condition`
    /// still holds of it, and returns the row as it then is; `None` when
    /// there is no such row or the condition no longer holds. The one way
    /// a store module makes a conditional change to one record.
    pub(crate) async fn update_if(
        &self,
        client: &impl GenericClient,
        workspace_id: uuid::Uuid,
        id: uuid::Uuid,
        set: &str,
        condition: &str,
    ) -> Result<Option<T>, Error> {
        let sql = format!(
            "UPDATE {} SET {set} WHERE workspace_id = $1 AND id = $2 AND {condition} RETURNING {}",
            self.name,
            (self.columns)()
        );
        query_opt(client, &sql, &[&workspace_id, &id], self.read).await
    }

    /// One page of the rows where `filter` holds (its parameters, `$1` on,
    /// are `params`), newest first (`created_at DESC, id DESC`, keyset)
    /// in `window`; and how many rows match in all. The
    /// one listing of the resources a workspace makes over time.
    async fn newest_first(
        &self,
        client: &impl GenericClient,
        filter: &str,
        params: Params<'_>,
        window: Window,
    ) -> Result<(Vec<T>, i64), Error> {
        let (table, columns, shown) = (self.name, (self.columns)(), self.shown_clause());
        let (time, id, count) = (params.len() + 1, params.len() + 2, params.len() + 3);
        let page_sql = format!(
            "SELECT {columns} FROM {table} WHERE {filter}{shown} \
             AND (${time}::timestamptz IS NULL OR (created_at, id) < (${time}, ${id}::uuid)) \
             ORDER BY created_at DESC, id DESC LIMIT ${count}"
        );
        let (after_time, after_id) = window.after_time_and_id();
        let mut page_params = params.to_vec();
        page_params.extend([&after_time as &(dyn ToSql + Sync), &after_id, &window.limit]);
        let items = query_all(client, &page_sql, &page_params, self.read).await?;
        let count_sql = format!("SELECT count(*) FROM {table} WHERE {filter}{shown}");
        let total = query_value(client, &count_sql, params).await?;
        Ok((items, total))
    }
}

/// Every row `sql` returns, each read with `read`.
async fn query_all<T>(
    client: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
    read: impl Fn(&Row) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    statements::query(client, sql, params)
        .await?
        .iter()
        .map(read)
        .collect()
}

/// The first column of every row `sql` returns (a list of ids).
async fn query_column<T: FromSqlOwned>(
    client: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<T>, Error> {
    query_all(client, sql, params, |row| Ok(row.try_get(0)?)).await
}

/// Runs `sql` (prepared once per connection); how many rows it touched.
async fn execute(client: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64, Error> {
    Ok(statements::execute(client, sql, params).await?)
}

/// The first column of the one row `sql` returns (a count, a flag).
async fn query_value<T: FromSqlOwned>(
    client: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<T, Error> {
    query_one(client, sql, params, |row| Ok(row.try_get(0)?)).await
}

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        // A closed connection or an I/O failure means the database is out of reach.
        let io_failure = std::error::Error::source(&err).is_some_and(|s| s.is::<std::io::Error>());
        // So does Postgres ending the connection itself (class 57P: a
        // shutdown, a restart, an administrator's termination, as a failover
        // makes) or failing it (class 08): the call may be retried.
        let ended_by_postgres = err
            .code()
            .is_some_and(|code| code.code().starts_with("57P") || code.code().starts_with("08"));
        let conflict = err.code().is_some_and(|code| {
            code == &tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                || code == &tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
        });
        if conflict {
            Error::concurrency_conflict()
        } else if err.is_closed() || io_failure || ended_by_postgres {
            Error::Unavailable(anyhow::Error::new(err).context("database connection"))
        } else {
            Error::Unexpected(anyhow::Error::new(err).context("database query"))
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        Error::Unavailable(anyhow::Error::new(err).context("database pool"))
    }
}

/// How a read locks the rows it returns until the transaction ends: the
/// one way every store read says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// A plain read.
    None,
    /// Holds the row as it is while the request uses it: a concurrent
    /// update or delete waits.
    Share,
    /// Before changing or deleting the row. `NO KEY`: rows that reference
    /// it by foreign key (activity, invitations of a workspace) can still be
    /// written meanwhile, so the lock cannot deadlock against them.
    Update,
}

impl Lock {
    /// The clause that ends the `SELECT`.
    pub fn clause(self) -> &'static str {
        match self {
            Lock::None => "",
            Lock::Share => " FOR SHARE",
            Lock::Update => " FOR NO KEY UPDATE",
        }
    }
}

/// True when `err` is a unique violation of the named constraint or index.
pub fn is_unique_violation(err: &tokio_postgres::Error, constraint: &str) -> bool {
    err.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some(constraint)
    })
}
