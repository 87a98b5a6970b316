//! Rules that span users, shared by every operation that can break them
//! (inviting, managing, provisioning through the directory, links): each
//! reads under the unit of work's locks and refuses with its reason.

use uuid::Uuid;

use crate::{
    domain::{
        Error, Reason,
        user::{User, UserStatus},
        workspace::WorkspaceSettings,
    },
    store::{GenericClient, Lock, users, workspaces},
};

/// Refuses one more pending invitation when the seats are taken; called
/// under the workspace lock.
pub async fn ensure_seat_free(
    client: &impl GenericClient,
    workspace_id: Uuid,
    settings: &WorkspaceSettings,
) -> Result<(), Error> {
    if settings.seat_limit == 0
        || settings.has_seat_for_one_more(workspaces::seats_used(client, workspace_id).await?)
    {
        Ok(())
    } else {
        Err(Error::precondition(
            Reason::SeatLimitReached,
            format!(
                "the workspace's {} seats are taken by active users and pending invitations",
                settings.seat_limit
            ),
        ))
    }
}

/// Refuses a manager who is not an active user of the workspace.
pub async fn ensure_active_manager(
    client: &impl GenericClient,
    workspace_id: Uuid,
    manager_id: Uuid,
    field: &str,
) -> Result<(), Error> {
    match users::USERS
        .get(client, workspace_id, manager_id, Lock::None)
        .await?
    {
        None => Err(Error::invalid_with(
            Reason::ReportingToNotFound,
            field,
            "no such user in this workspace",
        )),
        Some(manager) if manager.status != UserStatus::Active => Err(Error::precondition(
            Reason::ReportingToInactive,
            "the manager is deactivated",
        )),
        Some(_) => Ok(()),
    }
}

/// Refuses to leave the workspace without an active owner.
pub async fn ensure_other_owner(tx: &impl GenericClient, user: &User) -> Result<(), Error> {
    if user.status == UserStatus::Active
        && users::count_other_active_owners(tx, user.workspace_id, user.id).await? == 0
    {
        return Err(Error::precondition(
            Reason::LastOwner,
            "the workspace's last active owner cannot be demoted or deactivated",
        ));
    }
    Ok(())
}
