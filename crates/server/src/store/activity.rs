//! The append-only activity log.

use tokio_postgres::Row;
use uuid::Uuid;
use wowchat_platform::statements;

use super::{GenericClient, pipeline::Write};
use crate::domain::{
    Error,
    activity::{ActivityEntry, ActivityFilter, FieldChange},
    pagination::Window,
};

const COLUMNS: &str = "id, workspace_id, actor_id, action, target_user_id, target_invitation_id, \
                       changes, request_id, occurred_at, actor_directory_token_id";

fn from_row(row: &Row) -> Result<ActivityEntry, Error> {
    let changes: serde_json::Value = row.try_get("changes")?;
    Ok(ActivityEntry {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        actor_id: row.try_get("actor_id")?,
        actor_directory_token_id: row.try_get("actor_directory_token_id")?,
        action: row.try_get("action")?,
        target_user_id: row.try_get("target_user_id")?,
        target_invitation_id: row.try_get("target_invitation_id")?,
        changes: serde_json::from_value::<Vec<FieldChange>>(changes)
            .map_err(|e| anyhow::Error::new(e).context("decoding activity changes"))?,
        request_id: row.try_get("request_id")?,
        occurred_at: row.try_get("occurred_at")?,
    })
}

/// Appends `entry`; its time is the transaction's.
pub fn insert(entry: ActivityEntry) -> Result<Write, Error> {
    let changes = serde_json::to_value(&entry.changes)
        .map_err(|e| anyhow::Error::new(e).context("encoding activity changes"))?;
    Ok(Write::new(
        format!(
            "INSERT INTO activity ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), $9)"
        ),
        vec![
            Box::new(entry.id),
            Box::new(entry.workspace_id),
            Box::new(entry.actor_id),
            Box::new(entry.action),
            Box::new(entry.target_user_id),
            Box::new(entry.target_invitation_id),
            Box::new(changes),
            Box::new(entry.request_id),
            Box::new(entry.actor_directory_token_id),
        ],
    ))
}

/// One page of entries, newest first, after `after`.
pub async fn list(
    client: &impl GenericClient,
    workspace_id: Uuid,
    filter: &ActivityFilter,
    window: Window,
) -> Result<Vec<ActivityEntry>, Error> {
    let action = filter.action.map(|a| a.as_str());
    let (after_time, after_id) = window.after_time_and_id();
    let sql = format!(
        "SELECT {COLUMNS} FROM activity WHERE workspace_id = $1 \
         AND ($2::uuid IS NULL OR actor_id = $2) \
         AND ($3::uuid IS NULL OR target_user_id = $3) \
         AND ($4::text IS NULL OR action = $4) \
         AND ($5::timestamptz IS NULL OR occurred_at >= $5) \
         AND ($6::timestamptz IS NULL OR occurred_at < $6) \
         AND ($7::timestamptz IS NULL OR (occurred_at, id) < ($7, $8::uuid)) \
         ORDER BY occurred_at DESC, id DESC LIMIT $9"
    );
    let rows = statements::query(
        client,
        &sql,
        &[
            &workspace_id,
            &filter.actor_id,
            &filter.target_user_id,
            &action,
            &filter.from,
            &filter.until,
            &after_time,
            &after_id,
            &window.limit,
        ],
    )
    .await?;
    rows.iter().map(from_row).collect()
}
