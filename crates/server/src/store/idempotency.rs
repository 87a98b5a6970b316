//! Stored results of mutating calls made with a request id.

use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;

use super::{GenericClient, execute, pipeline::Write, query_one};
use crate::domain::{Error, Reason, idempotency::IdempotencyKey};

/// Whether this transaction runs the request for the first time.
pub enum Claim {
    /// First time: run it, then `complete` with the result.
    New,
    /// Done before: the first result.
    Replay(serde_json::Value),
}

/// The row of one request: its caller, operation and request id.
const KEY: &str = "workspace_id = $1 AND actor_id = $2 AND operation = $3 AND request_id = $4";

/// Claims `key` for this transaction. A concurrent claim of the same key
/// waits here until the first transaction ends, then replays its result.
pub async fn claim(
    client: &impl GenericClient,
    workspace_id: Uuid,
    actor_id: Uuid,
    operation: &str,
    key: &IdempotencyKey,
) -> Result<Claim, Error> {
    let insert = "INSERT INTO idempotency_keys \
                  (workspace_id, actor_id, operation, request_id, fingerprint) \
                  VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    let fingerprint = key.fingerprint.as_slice();
    let params: [&(dyn ToSql + Sync); 5] = [
        &workspace_id,
        &actor_id,
        &operation,
        &key.request_id,
        &fingerprint,
    ];
    if execute(client, insert, &params).await? == 1 {
        return Ok(Claim::New);
    }
    let select = format!("SELECT fingerprint, response FROM idempotency_keys WHERE {KEY}");
    let read = |row: &Row| -> Result<(Vec<u8>, Option<serde_json::Value>), Error> {
        Ok((row.try_get(0)?, row.try_get(1)?))
    };
    let (stored_fingerprint, response) = query_one(client, &select, &params[..4], read).await?;
    match response {
        Some(response) if stored_fingerprint == key.fingerprint => Ok(Claim::Replay(response)),
        _ => Err(Error::invalid_with(
            Reason::RequestIdReused,
            "request_id",
            "was already used for a different request",
        )),
    }
}

pub fn complete(
    workspace_id: Uuid,
    actor_id: Uuid,
    operation: &str,
    key: &IdempotencyKey,
    response: serde_json::Value,
) -> Write {
    Write::new(
        format!("UPDATE idempotency_keys SET response = $5 WHERE {KEY}"),
        vec![
            Box::new(workspace_id),
            Box::new(actor_id),
            Box::new(operation.to_owned()),
            Box::new(key.request_id.clone()),
            Box::new(response),
        ],
    )
}
