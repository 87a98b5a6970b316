//! Postgres's LISTEN/NOTIFY channels the service speaks on: the outbox's
//! wake-ups and the caller cache's changes, syncs and heartbeats. The
//! channel names and payloads are their owners'; the SQL is here.

use tokio_postgres::Client as Connection;
use wowchat_platform::statements;

use super::GenericClient;
use crate::domain::Error;

/// Starts listening on `channels` on a connection of its own (a pooled one
/// would hand the subscription to the next request).
pub async fn listen(connection: &Connection, channels: &[&str]) -> Result<(), Error> {
    let sql: String = channels
        .iter()
        .map(|channel| format!("LISTEN {channel};"))
        .collect();
    Ok(connection.batch_execute(&sql).await?)
}

const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// Sends `payload` on `channel`, delivered to its listeners when the
/// statement's transaction commits.
pub async fn notify(
    client: &impl GenericClient,
    channel: &str,
    payload: &str,
) -> Result<(), Error> {
    statements::execute(client, NOTIFY, &[&channel, &payload]).await?;
    Ok(())
}

/// [`notify`] on a listener's own connection.
pub async fn notify_from(
    connection: &Connection,
    channel: &str,
    payload: &str,
) -> Result<(), Error> {
    connection.execute(NOTIFY, &[&channel, &payload]).await?;
    Ok(())
}

/// Sends `payload` on `channel` and counts, in the same statement, the
/// connections of `application_name` to this database: the listeners
/// that must answer it.
pub async fn notify_and_count_listeners(
    client: &impl GenericClient,
    channel: &str,
    payload: &str,
    application_name: &str,
) -> Result<i64, Error> {
    let row = statements::query_one(
        client,
        "SELECT (SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = $1), \
                pg_notify($2, $3)",
        &[&application_name, &channel, &payload],
    )
    .await?;
    Ok(row.try_get(0)?)
}
