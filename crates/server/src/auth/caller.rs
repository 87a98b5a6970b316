//! The authenticated caller of an RPC, with their role as it is now.

use tonic::metadata::MetadataMap;
use uuid::Uuid;

use super::{CallerCache, JwtKeys};
use crate::{
    domain::{
        Error, Reason,
        directory::DirectorySecret,
        permission::{Permission, Role},
        user::UserStatus,
    },
    store::{
        GenericClient, Lock, Pool, directory,
        roles::{self, Standing},
        users,
    },
};

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// Set when a directory calls with its token: it acts with the
    /// authority of `user_id`, the owner who minted it, and the activity
    /// log names the token.
    pub directory_token_id: Option<Uuid>,
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

/// Verifies the bearer token (once per token: a verified one is remembered
/// until it expires) and finds the caller's current status and role, from
/// the replica's cache while its invalidation listener is connected, else
/// from Postgres.
pub async fn authenticate(
    pool: &Pool,
    keys: &JwtKeys,
    cache: &CallerCache,
    metadata: &MetadataMap,
) -> Result<Caller, Error> {
    let token = bearer_token(metadata)?;
    if DirectorySecret::claims(token) {
        return Err(Error::unauthenticated(
            Reason::TokenInvalid,
            "a directory token works only for provisioning (SCIM)",
        ));
    }
    let (user_id, workspace_id, issued_at) = match cache.verified_token(token) {
        Some(verified) => verified,
        None => {
            let verified = keys.verify(token)?;
            let ids = (verified.user_id, verified.workspace_id, verified.issued_at);
            cache.remember_token(token, ids, verified.accepted_until);
            ids
        }
    };
    let standing = cache
        .standing(pool, workspace_id, user_id)
        .await?
        .ok_or_else(unknown_caller)?;
    if let Some(after) = standing.sessions_valid_after
        && i64::try_from(issued_at).unwrap_or(i64::MAX) < after.unix_timestamp()
    {
        return Err(Error::unauthenticated(
            Reason::SessionEnded,
            "the session was ended; sign in again",
        ));
    }
    caller_of(&standing)
}

/// Finds the directory whose token is the bearer token: it acts as the
/// owner who minted the token, as that owner stands now. The token is read
/// from Postgres on every call, so a revocation holds from the next call on
/// every replica.
pub async fn authenticate_directory(
    pool: &Pool,
    cache: &CallerCache,
    metadata: &MetadataMap,
) -> Result<Caller, Error> {
    let refused = || {
        Error::unauthenticated(
            Reason::TokenInvalid,
            "the directory token is unknown or revoked",
        )
    };
    let secret = DirectorySecret::parse(bearer_token(metadata)?).ok_or_else(refused)?;
    let client = pool.get().await?;
    let token = directory::use_token(&client, &secret.hash())
        .await?
        .ok_or_else(refused)?;
    drop(client);
    let standing = cache
        .standing(pool, token.workspace_id, token.created_by)
        .await?
        .ok_or_else(unknown_caller)?;
    let mut caller = caller_of(&standing).map_err(|_| {
        Error::denied(
            Reason::UserDeactivated,
            "the owner who minted this directory token is deactivated; mint another",
        )
    })?;
    caller.directory_token_id = Some(token.id);
    Ok(caller)
}

/// The caller a grant made earlier acts as (an invite link acts as its
/// creator): `user_id` as they stand now, refused like an authenticated
/// caller when deactivated or their access has ended.
pub async fn acting_as(
    pool: &Pool,
    cache: &CallerCache,
    workspace_id: Uuid,
    user_id: Uuid,
) -> Result<Caller, Error> {
    let standing = cache
        .standing(pool, workspace_id, user_id)
        .await?
        .ok_or_else(unknown_caller)?;
    caller_of(&standing)
}

/// The caller as of now inside `tx`: a change that a concurrent demotion or
/// deactivation of the caller would forbid is refused, however long the
/// request waited for its locks. Their row is read with `user_lock`: `Share`
/// unless the transaction holds the workspace's membership lock, which
/// already keeps every change of a role or status out (see
/// `store::workspaces::lock`). A custom role is share-locked: its
/// permissions cannot change under the request. Never from the cache.
pub async fn confirm(
    tx: &impl GenericClient,
    caller: &Caller,
    user_lock: Lock,
) -> Result<Caller, Error> {
    let user = users::USERS
        .get(tx, caller.workspace_id, caller.user_id, user_lock)
        .await?
        .ok_or_else(unknown_caller)?;
    // A custom role's change applies to its holders from their very next call.
    let role = roles::held(tx, user.workspace_id, &user.role, Lock::Share).await?;
    caller_of(&Standing {
        user_id: user.id,
        workspace_id: user.workspace_id,
        email: user.email,
        display_name: user.display_name,
        status: user.status,
        role,
        // The caller's token was checked against it when the call was
        // authenticated; this confirms role, status and access only.
        sessions_valid_after: None,
        access_expires_at: user.access_expires_at,
    })
    .map(|confirmed| Caller {
        directory_token_id: caller.directory_token_id,
        ..confirmed
    })
}

fn unknown_caller() -> Error {
    Error::unauthenticated(Reason::UnknownCaller, "the bearer token names no user")
}

/// The caller a user's standing makes: none when they are deactivated or
/// their access has ended (compared with the clock at every call, so it
/// holds on every replica from the very moment, before any sweep).
fn caller_of(standing: &Standing) -> Result<Caller, Error> {
    if standing.status != UserStatus::Active {
        return Err(Error::denied(
            Reason::UserDeactivated,
            "the caller is deactivated",
        ));
    }
    if !standing.is_active_at(time::OffsetDateTime::now_utc()) {
        return Err(Error::denied(
            Reason::UserAccessExpired,
            "the caller's access has ended; an administrator may extend it",
        ));
    }
    Ok(Caller {
        user_id: standing.user_id,
        workspace_id: standing.workspace_id,
        email: standing.email.clone(),
        display_name: standing.display_name.clone(),
        role: standing.role.clone(),
        directory_token_id: None,
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
