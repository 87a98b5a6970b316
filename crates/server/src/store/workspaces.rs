//! Workspaces: the tenants.

use uuid::Uuid;

use super::GenericClient;
use crate::domain::Error;

pub async fn insert(client: &impl GenericClient, id: Uuid, name: &str) -> Result<(), Error> {
    let stmt = client
        .prepare_cached("INSERT INTO workspaces (id, name) VALUES ($1, $2)")
        .await?;
    client.execute(&stmt, &[&id, &name]).await?;
    Ok(())
}

pub async fn name(client: &impl GenericClient, id: Uuid) -> Result<String, Error> {
    let stmt = client
        .prepare_cached("SELECT name FROM workspaces WHERE id = $1")
        .await?;
    let row = client.query_one(&stmt, &[&id]).await?;
    Ok(row.get(0))
}

/// Serializes the workspace's membership changes (roles, status, managers),
/// so rules that span users (the last owner, no reporting cycles) hold under
/// concurrency.
pub async fn lock(client: &impl GenericClient, id: Uuid) -> Result<(), Error> {
    let stmt = client
        .prepare_cached("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE")
        .await?;
    client.execute(&stmt, &[&id]).await?;
    Ok(())
}
