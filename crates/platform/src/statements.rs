//! How statements reach Postgres, for the whole process: the one place that
//! decides it, so every query of the service, the relay and the mailer goes
//! through [`query`], [`query_one`], [`query_opt`] or [`execute`].
//!
//! - Cached (the default): each statement is prepared once per connection
//!   (named, deadpool's cache) and then only bound and executed.
//! - Unnamed ([`use_unnamed_statements`]): each is parsed, bound and run in
//!   one message as the unnamed statement, nothing outliving it. For a
//!   transaction-pooling PgBouncer older than 1.21 (Debian 12 has 1.18),
//!   which may run a connection's next transaction on another server
//!   connection, where a named statement would not exist (or would collide
//!   with another client's of the same name). It costs a parse per call.
//!
//! Unnamed statements need each parameter's type: it is the first of a
//! fixed list of Postgres types that the Rust value encodes as, the type
//! the prepared statement would have asked for or one Postgres converts
//! from (text for a varchar column).

use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::{
    Error, Row,
    types::{ToSql, Type},
};

static UNNAMED: AtomicBool = AtomicBool::new(false);

/// Sends every statement of this process unnamed from now on (see the
/// module's documentation); there is no way back, so a process running
/// several servers in tests uses the safe mode for all of them.
pub fn use_unnamed_statements() {
    UNNAMED.store(true, Ordering::Relaxed);
}

/// True once [`use_unnamed_statements`] was called.
pub fn unnamed_statements() -> bool {
    UNNAMED.load(Ordering::Relaxed)
}

/// A pooled connection or a transaction on one: what statements run on.
pub trait Connection: GenericClient {
    /// The connection itself, for the unnamed-statement calls.
    fn connection(&self) -> &tokio_postgres::Client;
}

impl Connection for deadpool_postgres::Client {
    fn connection(&self) -> &tokio_postgres::Client {
        self
    }
}

impl Connection for Transaction<'_> {
    fn connection(&self) -> &tokio_postgres::Client {
        self.client()
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The types an unnamed statement declares its parameters as, tried in
/// order; a value none fits is declared unknown and fails with the
/// driver's own error naming it.
const CANDIDATES: &[Type] = &[
    Type::BOOL,
    Type::INT2,
    Type::INT4,
    Type::INT8,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMP,
    Type::DATE,
    Type::BYTEA,
    Type::JSONB,
    Type::TEXT,
    Type::TEXT_ARRAY,
    Type::UUID_ARRAY,
    Type::INT8_ARRAY,
    Type::INT4_ARRAY,
    Type::FLOAT8_ARRAY,
    Type::BYTEA_ARRAY,
    Type::BOOL_ARRAY,
    Type::TIMESTAMPTZ_ARRAY,
    Type::JSONB_ARRAY,
];

/// The type a parameter is sent as: the first candidate its value encodes as.
fn parameter_type(value: &(dyn ToSql + Sync)) -> Type {
    let mut scratch = bytes::BytesMut::new();
    CANDIDATES
        .iter()
        .find(|ty| {
            scratch.clear();
            value.to_sql_checked(ty, &mut scratch).is_ok()
        })
        .cloned()
        .unwrap_or(Type::UNKNOWN)
}

fn typed<'a>(params: Params<'a>) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|&value| (value, parameter_type(value)))
        .collect()
}

/// Runs `sql` with `params`; its rows.
pub async fn query(db: &impl Connection, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
    if unnamed_statements() {
        db.connection().query_typed(sql, &typed(params)).await
    } else {
        let statement = db.prepare_cached(sql).await?;
        db.query(&statement, params).await
    }
}

/// Runs `sql`, which returns exactly one row.
pub async fn query_one(db: &impl Connection, sql: &str, params: Params<'_>) -> Result<Row, Error> {
    if unnamed_statements() {
        db.connection().query_typed_one(sql, &typed(params)).await
    } else {
        let statement = db.prepare_cached(sql).await?;
        db.query_one(&statement, params).await
    }
}

/// Runs `sql`, which returns at most one row.
pub async fn query_opt(
    db: &impl Connection,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, Error> {
    if unnamed_statements() {
        db.connection().query_typed_opt(sql, &typed(params)).await
    } else {
        let statement = db.prepare_cached(sql).await?;
        db.query_opt(&statement, params).await
    }
}

/// Runs `sql`; how many rows it touched.
pub async fn execute(db: &impl Connection, sql: &str, params: Params<'_>) -> Result<u64, Error> {
    if unnamed_statements() {
        db.connection().execute_typed(sql, &typed(params)).await
    } else {
        let statement = db.prepare_cached(sql).await?;
        db.execute(&statement, params).await
    }
}

/// Prepares `sql` ahead on this connection when statements are cached, so
/// a later [`execute`] of it goes out at once (pipelines rely on the order
/// statements are sent in); nothing to do when they are unnamed.
pub async fn prepare_ahead(db: &impl Connection, sql: &str) -> Result<(), Error> {
    if !unnamed_statements() {
        db.prepare_cached(sql).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_parameter_is_declared_as_the_type_its_value_encodes_as() {
        let id = uuid::Uuid::nil();
        let text = "a";
        let none: Option<i64> = None;
        let bytes: &[u8] = b"x";
        let names = vec!["a", "b"];
        let json = serde_json::json!({"a": 1});
        let types: Vec<Type> = typed(&[&id, &text, &none, &bytes, &names, &json, &1.5f64, &true])
            .into_iter()
            .map(|(_, ty)| ty)
            .collect();
        assert_eq!(
            types,
            [
                Type::UUID,
                Type::TEXT,
                Type::INT8,
                Type::BYTEA,
                Type::TEXT_ARRAY,
                Type::JSONB,
                Type::FLOAT8,
                Type::BOOL
            ]
        );
    }
}
