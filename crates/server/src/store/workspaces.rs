//! Workspaces: the tenants.

use anyhow::Context;
use uuid::Uuid;

use super::{GenericClient, Lock};
use crate::domain::{Error, workspace::WorkspaceSettings};

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
    Ok(row.try_get(0)?)
}

/// A workspace row read under a lock: what a mutation needs of it.
#[derive(Debug, Clone)]
pub struct LockedWorkspace {
    pub name: String,
    pub settings: WorkspaceSettings,
}

/// Reads the workspace and locks its row until the transaction ends:
/// `Update` serializes membership changes (roles, status, managers, the
/// settings), so rules that span users (the last owner, no reporting
/// cycles, the seats) hold under concurrency; `Share` lets invitations run
/// side by side while no such change can start.
pub async fn lock(
    client: &impl GenericClient,
    id: Uuid,
    lock: Lock,
) -> Result<LockedWorkspace, Error> {
    let sql = format!(
        "SELECT name, seat_limit, allowed_email_domains FROM workspaces WHERE id = $1{}",
        lock.clause()
    );
    let stmt = client.prepare_cached(&sql).await?;
    let row = client.query_one(&stmt, &[&id]).await?;
    let seat_limit: i32 = row.try_get(1)?;
    Ok(LockedWorkspace {
        name: row.try_get(0)?,
        settings: WorkspaceSettings {
            seat_limit: u32::try_from(seat_limit).context("a negative seat limit")?,
            allowed_email_domains: row.try_get(2)?,
        },
    })
}

/// Serializes the workspace's seat-taking changes until the transaction
/// ends (a transaction-scoped advisory lock), so concurrent invitations
/// cannot overshoot a seat limit while holding only a share lock.
pub async fn serialize_seat_changes(client: &impl GenericClient, id: Uuid) -> Result<(), Error> {
    let stmt = client
        .prepare_cached("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .await?;
    client.execute(&stmt, &[&id.to_string()]).await?;
    Ok(())
}

/// The workspace's invitation settings.
pub async fn settings(client: &impl GenericClient, id: Uuid) -> Result<WorkspaceSettings, Error> {
    let stmt = client
        .prepare_cached("SELECT seat_limit, allowed_email_domains FROM workspaces WHERE id = $1")
        .await?;
    let row = client.query_one(&stmt, &[&id]).await?;
    let seat_limit: i32 = row.try_get(0)?;
    Ok(WorkspaceSettings {
        seat_limit: u32::try_from(seat_limit).context("a negative seat limit")?,
        allowed_email_domains: row.try_get(1)?,
    })
}

pub async fn set_settings(
    client: &impl GenericClient,
    id: Uuid,
    settings: &WorkspaceSettings,
) -> Result<(), Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE workspaces SET seat_limit = $2, allowed_email_domains = $3 WHERE id = $1",
        )
        .await?;
    let seat_limit = i32::try_from(settings.seat_limit).context("seat limit out of range")?;
    client
        .execute(&stmt, &[&id, &seat_limit, &settings.allowed_email_domains])
        .await?;
    Ok(())
}

/// The seats taken: active users plus pending invitations not yet expired.
pub async fn seats_used(client: &impl GenericClient, id: Uuid) -> Result<i64, Error> {
    let stmt = client
        .prepare_cached(
            "SELECT (SELECT count(*) FROM users WHERE workspace_id = $1 AND status = 'ACTIVE') \
             + (SELECT count(*) FROM invitations WHERE workspace_id = $1 \
                AND status = 'PENDING' AND expires_at > now())",
        )
        .await?;
    Ok(client.query_one(&stmt, &[&id]).await?.try_get(0)?)
}
