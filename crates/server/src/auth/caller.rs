//! The authenticated caller of an RPC, with their role as it is now.

use tonic::metadata::MetadataMap;
use uuid::Uuid;

use super::JwtKeys;
use crate::{
    domain::{
        Error, Reason,
        permission::{Permission, Role},
        user::{User, UserStatus},
    },
    store::{GenericClient, Lock, Pool, roles, users},
};

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
}

impl Caller {
    pub fn require(&self, permission: Permission) -> Result<(), Error> {
        if self.role.permissions.contains(permission) {
            Ok(())
        } else {
            Err(Error::denied(
                Reason::PermissionMissing,
                format!("permission {} is required", permission.as_str()),
            ))
        }
    }

    /// Refuses to grant, or act on a holder of, a role above the caller's own.
    pub fn require_not_below(&self, role: &Role) -> Result<(), Error> {
        if role.is_above(&self.role) {
            Err(Error::denied(
                Reason::RoleAboveCaller,
                format!("role {} holds permissions the caller lacks", role.name),
            ))
        } else {
            Ok(())
        }
    }
}

/// Verifies the bearer token and loads the caller's current role and status.
pub async fn authenticate(
    pool: &Pool,
    keys: &JwtKeys,
    metadata: &MetadataMap,
) -> Result<Caller, Error> {
    let token = bearer_token(metadata)?;
    let (user_id, workspace_id) = keys.verify(token)?;
    let client = pool.get().await?;
    let user = users::get(&client, workspace_id, user_id, Lock::None).await?;
    caller_from(&client, user, Lock::None).await
}

/// The caller as of now inside `tx`, their row share-locked until it ends:
/// a change that a concurrent demotion or deactivation of the caller would
/// forbid is refused, however long the request waited for its locks.
/// A custom role is share-locked too: its permissions cannot change under
/// the request.
pub async fn confirm(tx: &impl GenericClient, caller: &Caller) -> Result<Caller, Error> {
    let user = users::get(tx, caller.workspace_id, caller.user_id, Lock::Share).await?;
    caller_from(tx, user, Lock::Share).await
}

/// The caller from their user row, with their role resolved as it is now
/// (built-in from code, custom from Postgres): a change to a custom role
/// applies to its holders from their very next call.
async fn caller_from(
    client: &impl GenericClient,
    user: Option<User>,
    lock: Lock,
) -> Result<Caller, Error> {
    let user = user.ok_or_else(|| {
        Error::unauthenticated(Reason::UnknownCaller, "the bearer token names no user")
    })?;
    if user.status != UserStatus::Active {
        return Err(Error::denied(
            Reason::UserDeactivated,
            "the caller is deactivated",
        ));
    }
    // A role that no longer resolves grants nothing.
    let role = roles::held(client, user.workspace_id, &user.role, lock).await?;
    Ok(Caller {
        user_id: user.id,
        workspace_id: user.workspace_id,
        role,
        email: user.email,
        display_name: user.display_name,
    })
}

fn bearer_token(metadata: &MetadataMap) -> Result<&str, Error> {
    let missing = || {
        Error::unauthenticated(
            Reason::TokenMissing,
            "authorization: Bearer <token> is required",
        )
    };
    let value = metadata
        .get("authorization")
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}
