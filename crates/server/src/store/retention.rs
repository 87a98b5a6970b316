//! The session advisory lock that lets one replica at a time prune.

use super::GenericClient;
use crate::domain::Error;

/// The lock's key: any constant no other code of this database uses.
const RETENTION_LOCK: i64 = 0x776f_7763_6861_7401; // "wowchat" + 1

/// Takes the retention lock on this connection if no other session holds it.
pub async fn try_lock(client: &impl GenericClient) -> Result<bool, Error> {
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&RETENTION_LOCK])
        .await?;
    Ok(row.try_get(0)?)
}

/// Releases the lock taken by [`try_lock`] on this same connection.
pub async fn unlock(client: &impl GenericClient) -> Result<(), Error> {
    client
        .query_one("SELECT pg_advisory_unlock($1)", &[&RETENTION_LOCK])
        .await?;
    Ok(())
}
