//! Custom roles of a workspace, and the one-query standing of a user that
//! authentication and `CheckPermission` read. Every query is scoped by workspace id.

use tokio_postgres::Row;
use uuid::Uuid;

use super::{GenericClient, Lock, execute, query_all, query_one, query_opt};
use crate::domain::{
    Error,
    permission::{CustomRole, PermissionSet, Role},
    user::{UserStatus, access_ended},
};

const COLUMNS: &str = "workspace_id, name, permissions, created_at, updated_at, version";

fn from_row(row: &Row) -> Result<CustomRole, Error> {
    let permissions: Vec<String> = row.try_get("permissions")?;
    Ok(CustomRole {
        workspace_id: row.try_get("workspace_id")?,
        role: Role {
            name: row.try_get("name")?,
            permissions: PermissionSet::from_names(&permissions),
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}

pub async fn get(
    client: &impl GenericClient,
    workspace_id: Uuid,
    name: &str,
    lock: Lock,
) -> Result<Option<CustomRole>, Error> {
    let suffix = lock.clause();
    let sql = format!("SELECT {COLUMNS} FROM roles WHERE workspace_id = $1 AND name = $2{suffix}");
    query_opt(client, &sql, &[&workspace_id, &name], from_row).await
}

/// The role of that name in the workspace: a built-in role from code, else
/// the workspace's custom role, read as it is now (`lock` holds it until the
/// transaction ends). The one place a role name is resolved: the caller's
/// permissions, grants and checks all go through it.
pub async fn resolve(
    client: &impl GenericClient,
    workspace_id: Uuid,
    name: &str,
    lock: Lock,
) -> Result<Option<Role>, Error> {
    if let Some(role) = Role::builtin(name) {
        return Ok(Some(role));
    }
    Ok(get(client, workspace_id, name, lock)
        .await?
        .map(|custom| custom.role))
}

/// The role a stored user or invitation holds; one that no longer resolves
/// grants nothing.
pub async fn held(
    client: &impl GenericClient,
    workspace_id: Uuid,
    name: &str,
    lock: Lock,
) -> Result<Role, Error> {
    Ok(resolve(client, workspace_id, name, lock)
        .await?
        .unwrap_or(Role {
            name: name.to_owned(),
            permissions: Default::default(),
        }))
}

/// The workspace's custom roles by name.
pub async fn list(
    client: &impl GenericClient,
    workspace_id: Uuid,
) -> Result<Vec<CustomRole>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM roles WHERE workspace_id = $1 ORDER BY name");
    query_all(client, &sql, &[&workspace_id], from_row).await
}

/// Creates the role; `None` when the workspace already has one of that name.
pub async fn insert(
    client: &impl GenericClient,
    workspace_id: Uuid,
    role: &Role,
) -> Result<Option<CustomRole>, Error> {
    let sql = format!(
        "INSERT INTO roles (workspace_id, name, permissions, created_at, updated_at) \
         VALUES ($1, $2, $3, now(), now()) ON CONFLICT (workspace_id, name) DO NOTHING \
         RETURNING {COLUMNS}"
    );
    query_opt(
        client,
        &sql,
        &[&workspace_id, &role.name, &role.permissions.names()],
        from_row,
    )
    .await
}

/// Replaces the role's permissions and bumps its version.
pub async fn update(
    client: &impl GenericClient,
    workspace_id: Uuid,
    role: &Role,
) -> Result<CustomRole, Error> {
    let sql = format!(
        "UPDATE roles SET permissions = $3, updated_at = now(), version = version + 1 \
         WHERE workspace_id = $1 AND name = $2 RETURNING {COLUMNS}"
    );
    query_one(
        client,
        &sql,
        &[&workspace_id, &role.name, &role.permissions.names()],
        from_row,
    )
    .await
}

pub async fn delete(
    client: &impl GenericClient,
    workspace_id: Uuid,
    name: &str,
) -> Result<(), Error> {
    execute(
        client,
        "DELETE FROM roles WHERE workspace_id = $1 AND name = $2",
        &[&workspace_id, &name],
    )
    .await?;
    Ok(())
}

/// Who still holds the role: (some user does, some pending invitation does).
/// Both answered from indexes (`users_by_role`, `invitations_pending_by_role`).
pub async fn holders(
    client: &impl GenericClient,
    workspace_id: Uuid,
    name: &str,
) -> Result<(bool, bool), Error> {
    query_one(
        client,
        "SELECT EXISTS (SELECT 1 FROM users WHERE workspace_id = $1 AND role = $2), \
             EXISTS (SELECT 1 FROM invitations WHERE workspace_id = $1 AND role = $2 \
                     AND status = 'PENDING')",
        &[&workspace_id, &name],
        |row| Ok((row.try_get(0)?, row.try_get(1)?)),
    )
    .await
}

/// A user as authentication and permission checks see them: who they are,
/// whether they are active, and the role they hold, resolved as [`held`]
/// resolves it.
#[derive(Debug, Clone)]
pub struct Standing {
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub status: UserStatus,
    pub role: Role,
    /// Tokens issued before this (whole seconds) are refused: their
    /// sessions were ended. `None`: never.
    pub sessions_valid_after: Option<time::OffsetDateTime>,
    /// When the user's access ends by itself; `None`: never.
    pub access_expires_at: Option<time::OffsetDateTime>,
}

impl Standing {
    /// Whether the user may act at `now`: active, and their access not ended.
    pub fn is_active_at(&self, now: time::OffsetDateTime) -> bool {
        self.status == UserStatus::Active && !access_ended(self.access_expires_at, now)
    }
}

/// The user's standing in ONE round trip: two primary-key lookups
/// (`users (workspace_id, id)` and `roles (workspace_id, name)`) joined in
/// one statement, prepared once per connection and cached
/// (`prepare_cached`). What every authenticated call and `CheckPermission`
/// read when the caller cache cannot answer.
pub async fn standing(
    client: &impl GenericClient,
    workspace_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Standing>, Error> {
    query_opt(
        client,
        "SELECT u.email, u.display_name, u.status, u.role, r.permissions, \
             u.sessions_valid_after, u.access_expires_at FROM users u \
             LEFT JOIN roles r ON r.workspace_id = u.workspace_id AND r.name = u.role \
             WHERE u.workspace_id = $1 AND u.id = $2",
        &[&workspace_id, &user_id],
        |row| {
            let name: String = row.try_get(3)?;
            let custom: Option<Vec<String>> = row.try_get(4)?;
            // Built-in first, as `resolve` does; a role that no longer
            // resolves grants nothing.
            let role = Role::builtin(&name).unwrap_or_else(|| Role {
                permissions: custom
                    .map(|names| PermissionSet::from_names(&names))
                    .unwrap_or_default(),
                name,
            });
            Ok(Standing {
                user_id,
                workspace_id,
                email: row.try_get(0)?,
                display_name: row.try_get(1)?,
                status: UserStatus::from_db(row.try_get(2)?)?,
                role,
                sessions_valid_after: row.try_get(5)?,
                access_expires_at: row.try_get(6)?,
            })
        },
    )
    .await
}
