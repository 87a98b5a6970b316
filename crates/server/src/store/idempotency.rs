//! Stored results of mutating calls made with a request id.

use uuid::Uuid;

use super::GenericClient;
use crate::domain::{Error, Reason, idempotency::IdempotencyKey};

/// Whether this transaction runs the request for the first time.
pub enum Claim {
    /// First time: run it, then `complete` with the result.
    New,
    /// Done before: the first result.
    Replay(serde_json::Value),
}

/// Claims `key` for this transaction. A concurrent claim of the same key
/// waits here until the first transaction ends, then replays its result.
pub async fn claim(
    client: &impl GenericClient,
    workspace_id: Uuid,
    actor_id: Uuid,
    operation: &str,
    key: &IdempotencyKey,
) -> Result<Claim, Error> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO idempotency_keys (workspace_id, actor_id, operation, request_id, fingerprint) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .await?;
    let inserted = client
        .execute(
            &stmt,
            &[
                &workspace_id,
                &actor_id,
                &operation,
                &key.request_id,
                &key.fingerprint.as_slice(),
            ],
        )
        .await?;
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let stmt = client
        .prepare_cached(
            "SELECT fingerprint, response FROM idempotency_keys \
             WHERE workspace_id = $1 AND actor_id = $2 AND operation = $3 AND request_id = $4",
        )
        .await?;
    let row = client
        .query_one(
            &stmt,
            &[&workspace_id, &actor_id, &operation, &key.request_id],
        )
        .await?;
    let fingerprint: Vec<u8> = row.try_get(0)?;
    let response: Option<serde_json::Value> = row.try_get(1)?;
    match response {
        Some(response) if fingerprint == key.fingerprint => Ok(Claim::Replay(response)),
        _ => Err(Error::invalid_with(
            Reason::RequestIdReused,
            "request_id",
            "was already used for a different request",
        )),
    }
}

pub async fn complete(
    client: &impl GenericClient,
    workspace_id: Uuid,
    actor_id: Uuid,
    operation: &str,
    key: &IdempotencyKey,
    response: &serde_json::Value,
) -> Result<(), Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE idempotency_keys SET response = $5 \
             WHERE workspace_id = $1 AND actor_id = $2 AND operation = $3 AND request_id = $4",
        )
        .await?;
    client
        .execute(
            &stmt,
            &[
                &workspace_id,
                &actor_id,
                &operation,
                &key.request_id,
                response,
            ],
        )
        .await?;
    Ok(())
}

/// Deletes up to `limit` stored results older than `max_age_secs`; a retry
/// arriving later runs as a new request. Returns how many went.
pub async fn delete_older_than(
    client: &impl GenericClient,
    max_age_secs: f64,
    limit: i64,
) -> Result<u64, Error> {
    let stmt = client
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY( \
               SELECT ctid FROM idempotency_keys \
               WHERE created_at < now() - make_interval(secs => $1) LIMIT $2))",
        )
        .await?;
    Ok(client.execute(&stmt, &[&max_age_secs, &limit]).await?)
}
