//! The workspace's invitation settings: the seat limit and the allowed email
//! domains. Only callers with `workspace.manage` read or change them.

use super::{
    AppState,
    unit_of_work::{self, FirstLock, Mutation, Outcome, Target},
};
use crate::{
    auth::Caller,
    domain::{
        Error,
        activity::{Action, FieldChange},
        permission::Permission,
        workspace::{SettingsUpdate, WorkspaceSettings},
    },
    events,
    store::workspaces,
};

/// The settings and their version (their etag's).
pub async fn get(state: &AppState, caller: &Caller) -> Result<(WorkspaceSettings, i64), Error> {
    caller.require(Permission::WorkspaceManage)?;
    let client = state.connection().await?;
    workspaces::versioned_settings(&client, caller.workspace_id).await
}

/// Replaces the settings; setting what is already set changes and records
/// nothing.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    update: SettingsUpdate,
) -> Result<(WorkspaceSettings, i64), Error> {
    let (new, expected_version) = (&update.settings, update.expected_version);
    let mutation = Mutation::new(
        "UpdateWorkspaceSettings",
        Permission::WorkspaceManage,
        request_id,
    )
    // The lock invitations take, so none is checked against old
    // settings once the new ones commit.
    .locking(FirstLock::Workspace);
    unit_of_work::run(state, caller, mutation, |work| async move {
        let workspace_id = work.workspace_id();
        let (current, version) = workspaces::versioned_settings(work.tx(), workspace_id).await?;
        Error::unless_current(expected_version, version, "settings")?;
        if current == *new {
            return work.finish(Outcome::Unchanged((current, version))).await;
        }
        let version = workspaces::set_settings(work.tx(), workspace_id, new).await?;
        let mut changes = Vec::new();
        if current.seat_limit != new.seat_limit {
            changes.push(FieldChange::new(
                "seat_limit",
                current.seat_limit,
                new.seat_limit,
            ));
        }
        if current.directory_default_role != new.directory_default_role {
            // A role that exists and the caller could grant.
            work.grantable_role(
                "settings.directory_default_role",
                &new.directory_default_role,
            )
            .await?;
            changes.push(FieldChange::new(
                "directory_default_role",
                &current.directory_default_role,
                &new.directory_default_role,
            ));
        }
        if current.accept_join_requests != new.accept_join_requests {
            changes.push(FieldChange::new(
                "accept_join_requests",
                current.accept_join_requests,
                new.accept_join_requests,
            ));
        }
        if current.default_locale != new.default_locale {
            changes.push(FieldChange::new(
                "default_locale",
                current.default_locale.tag(),
                new.default_locale.tag(),
            ));
        }
        if current.allowed_email_domains != new.allowed_email_domains {
            changes.push(FieldChange::new(
                "allowed_email_domains",
                current.allowed_email_domains.join(","),
                new.allowed_email_domains.join(","),
            ));
        }
        let event = events::workspace_settings_updated(
            workspace_id,
            new,
            version,
            work.caller.user_id,
            &changes,
            request_id,
        );
        let recorded = work.record(
            Action::WorkspaceSettingsUpdated,
            Target::Workspace,
            changes,
            event,
        )?;
        tracing::info!(%workspace_id, "updating the workspace settings");
        work.finish(Outcome::Changed((new.clone(), version), recorded))
            .await
    })
    .await
}
