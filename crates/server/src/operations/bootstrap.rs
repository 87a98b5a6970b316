//! Creating a workspace and its first owner (the `bootstrap` command).

use uuid::Uuid;

use super::{
    AppState,
    unit_of_work::{UnitOfWork, retrying},
};
use crate::{
    domain::{EmailAddress, Error, Reason, permission::OWNER, user::Password},
    store::{users, workspaces},
};

/// Ids of a new workspace and its owner.
#[derive(Debug, Clone, Copy)]
pub struct Bootstrapped {
    pub workspace_id: Uuid,
    pub owner_id: Uuid,
}

pub async fn bootstrap(
    state: &AppState,
    workspace_name: &str,
    owner_email: &EmailAddress,
    owner_name: &str,
    owner_password: Password,
) -> Result<Bootstrapped, Error> {
    let password_hash = state.hasher.hash(owner_password).await?;
    let password_hash = &password_hash;
    let owner = retrying(|| async move {
        // The first change of a workspace: nobody to act or to check yet.
        let unit = UnitOfWork::begin(state).await?;
        let workspace_id = Uuid::now_v7();
        workspaces::insert(unit.tx(), workspace_id, workspace_name).await?;
        let owner = users::insert(
            unit.tx(),
            &users::NewUser {
                workspace_id,
                id: Uuid::now_v7(),
                email: owner_email.as_typed(),
                email_normalized: owner_email.normalized(),
                display_name: owner_name,
                role: OWNER,
                reporting_to: None,
                password_hash,
                access_expires_at: None,
            },
        )
        .await?
        .ok_or_else(|| Error::precondition(Reason::UserAlreadyMember, "owner already exists"))?;
        unit.commit().await?;
        Ok(owner)
    })
    .await?;
    Ok(Bootstrapped {
        workspace_id: owner.workspace_id,
        owner_id: owner.id,
    })
}
