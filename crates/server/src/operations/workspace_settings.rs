//! The workspace's invitation settings: the seat limit and the allowed email
//! domains. Only callers with `workspace.manage` read or change them.

use super::{AppState, Record, record};
use crate::{
    auth::{Caller, caller::confirm},
    domain::{
        Error,
        activity::{Action, FieldChange},
        permission::Permission,
        workspace::WorkspaceSettings,
    },
    events,
    store::workspaces,
};

pub async fn get(state: &AppState, caller: &Caller) -> Result<WorkspaceSettings, Error> {
    caller.require(Permission::WorkspaceManage)?;
    let client = state.pool.get().await?;
    workspaces::settings(&client, caller.workspace_id).await
}

/// Replaces the settings; setting what is already set changes and records
/// nothing.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    new: WorkspaceSettings,
) -> Result<WorkspaceSettings, Error> {
    caller.require(Permission::WorkspaceManage)?;
    let workspace_id = caller.workspace_id;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    // The lock invitations take, so none is checked against old settings
    // once the new ones commit.
    workspaces::lock(&tx, workspace_id).await?;
    let caller = &confirm(&tx, caller).await?;
    caller.require(Permission::WorkspaceManage)?;
    let current = workspaces::settings(&tx, workspace_id).await?;
    if current == new {
        return Ok(current);
    }
    workspaces::set_settings(&tx, workspace_id, &new).await?;
    let mut changes = Vec::new();
    if current.seat_limit != new.seat_limit {
        changes.push(FieldChange::new(
            "seat_limit",
            current.seat_limit,
            new.seat_limit,
        ));
    }
    if current.allowed_email_domains != new.allowed_email_domains {
        changes.push(FieldChange::new(
            "allowed_email_domains",
            current.allowed_email_domains.join(","),
            new.allowed_email_domains.join(","),
        ));
    }
    record(
        &tx,
        Record {
            workspace_id,
            actor_id: Some(caller.user_id),
            action: Action::WorkspaceSettingsUpdated,
            target_user_id: None,
            target_invitation_id: None,
            changes: changes.clone(),
            request_id,
        },
        events::workspace_settings_updated(
            workspace_id,
            &new,
            caller.user_id,
            &changes,
            request_id,
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%workspace_id, "workspace settings updated");
    Ok(new)
}
