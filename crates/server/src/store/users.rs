//! Users of a workspace. Every query is scoped by workspace id.

use time::OffsetDateTime;
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;
use wowchat_platform::statements;

use super::{GenericClient, Table, query_one, query_one_unless_taken, query_opt, query_value};
use crate::domain::{
    Error,
    user::{User, UserStatus},
};

pub(super) const COLUMNS: &str = "id, workspace_id, email, display_name, role, reporting_to, status, \
                       deactivation_reason, created_at, updated_at, version, last_active_at, \
                       access_expires_at";

/// Users, read by id with `USERS.get` (the one way to).
pub(crate) const USERS: Table<User> = Table {
    name: "users",
    columns: || COLUMNS.to_owned(),
    read: from_row,
    shown: None,
};

/// The user of a row holding (at least) [`COLUMNS`].
pub(super) fn from_row(row: &Row) -> Result<User, Error> {
    Ok(User {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        role: row.try_get("role")?,
        reporting_to: row.try_get("reporting_to")?,
        status: UserStatus::from_db(row.try_get("status")?)?,
        deactivation_reason: row.try_get("deactivation_reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
        last_active_at: row.try_get("last_active_at")?,
        access_expires_at: row.try_get("access_expires_at")?,
    })
}

/// A user about to be created.
pub struct NewUser<'a> {
    pub workspace_id: Uuid,
    pub id: Uuid,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub display_name: &'a str,
    pub role: &'a str,
    pub reporting_to: Option<Uuid>,
    pub password_hash: &'a str,
    pub access_expires_at: Option<OffsetDateTime>,
}

impl NewUser<'_> {
    /// The columns every new user's row is inserted with, `$1` to `$9`
    /// in [`NewUser::params`]' order (a directory's member adds its own).
    pub(super) const COLUMNS: &'static str = "workspace_id, id, email, email_normalized, \
         display_name, role, reporting_to, password_hash, access_expires_at";

    /// The values of [`NewUser::COLUMNS`].
    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.workspace_id,
            &self.id,
            &self.email,
            &self.email_normalized,
            &self.display_name,
            &self.role,
            &self.reporting_to,
            &self.password_hash,
            &self.access_expires_at,
        ]
    }
}

/// Creates the user, active; `None` when a member of the workspace has the email.
pub async fn insert(
    client: &impl GenericClient,
    user: &NewUser<'_>,
) -> Result<Option<User>, Error> {
    let sql = format!(
        "INSERT INTO users ({}, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'ACTIVE', now(), now()) RETURNING {COLUMNS}",
        NewUser::COLUMNS
    );
    let params = user.params();
    query_one_unless_taken(client, &sql, &params, "users_email_per_workspace", from_row).await
}

pub async fn exists_with_email(
    client: &impl GenericClient,
    workspace_id: Uuid,
    email_normalized: &str,
) -> Result<bool, Error> {
    let sql =
        "SELECT EXISTS (SELECT 1 FROM users WHERE workspace_id = $1 AND email_normalized = $2)";
    query_value(client, sql, &[&workspace_id, &email_normalized]).await
}

/// The fields of a user every write of them sets, as `$3` to `$7` after
/// its key (`$1`, `$2`): `update` and `directory::write_member` set them
/// from one list, so the two cannot drift apart.
pub(super) struct Written<'a> {
    user: &'a User,
    status: &'static str,
}

impl<'a> Written<'a> {
    /// `SET` of the fields, `$3` to `$7`.
    pub(super) const SET: &'static str = "display_name = $3, role = $4, reporting_to = $5, \
         status = $6, deactivation_reason = $7";

    pub(super) fn of(user: &'a User) -> Self {
        Written {
            user,
            status: user.status.as_str(),
        }
    }

    /// `$1` to `$7`.
    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let user = self.user;
        vec![
            &user.workspace_id,
            &user.id,
            &user.display_name,
            &user.role,
            &user.reporting_to,
            &self.status,
            &user.deactivation_reason,
        ]
    }
}

/// Writes the mutable fields of `user` and bumps its version.
pub async fn update(client: &impl GenericClient, user: &User) -> Result<User, Error> {
    let sql = format!(
        "UPDATE users SET {}, access_expires_at = $8, updated_at = now(), \
         version = version + 1 WHERE workspace_id = $1 AND id = $2 RETURNING {COLUMNS}",
        Written::SET
    );
    let written = Written::of(user);
    let mut params = written.params();
    params.push(&user.access_expires_at);
    query_one(client, &sql, &params, from_row).await
}

/// Active owners of the workspace other than `excluding`.
pub async fn count_other_active_owners(
    client: &impl GenericClient,
    workspace_id: Uuid,
    excluding: Uuid,
) -> Result<i64, Error> {
    let sql = "SELECT count(*) FROM users WHERE workspace_id = $1 AND role = 'owner' \
               AND status = 'ACTIVE' AND id <> $2";
    query_value(client, sql, &[&workspace_id, &excluding]).await
}

/// True when `user` is `manager` or one of `manager`'s managers, i.e. when
/// making `user` report to `manager` would close a cycle.
pub async fn is_in_management_chain(
    client: &impl GenericClient,
    workspace_id: Uuid,
    manager: Uuid,
    user: Uuid,
) -> Result<bool, Error> {
    // UNION (not UNION ALL) stops on an existing cycle instead of looping.
    let sql = "WITH RECURSIVE chain(id) AS ( \
                   SELECT $2::uuid \
                   UNION \
                   SELECT u.reporting_to FROM users u JOIN chain c ON u.id = c.id \
                   WHERE u.workspace_id = $1 AND u.reporting_to IS NOT NULL) \
               SELECT EXISTS (SELECT 1 FROM chain WHERE id = $3)";
    query_value(client, sql, &[&workspace_id, &manager, &user]).await
}

/// The member of the workspace with this email, and their password hash.
pub async fn credentials(
    client: &impl GenericClient,
    workspace_id: Uuid,
    email_normalized: &str,
) -> Result<Option<(User, String)>, Error> {
    let sql = format!(
        "SELECT {COLUMNS}, password_hash FROM users \
         WHERE workspace_id = $1 AND email_normalized = $2"
    );
    let read = |row: &Row| -> Result<(User, String), Error> {
        Ok((from_row(row)?, row.try_get("password_hash")?))
    };
    query_opt(client, &sql, &[&workspace_id, &email_normalized], read).await
}

/// Records a sign-in of an active user: their last-active time becomes now
/// (their version stays: it is not a change of the user). `None` when the
/// user is no longer active.
pub async fn mark_signed_in(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<User>, Error> {
    USERS
        .update_if(
            client,
            workspace_id,
            id,
            "last_active_at = now()",
            "status = 'ACTIVE'",
        )
        .await
}

/// Sets the user's last-active time to now unless it already is within the
/// last minute, so a busy user costs at most one write a minute.
pub async fn touch_last_active(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<bool, Error> {
    Ok(statements::execute(
        client,
        "UPDATE users SET last_active_at = now() WHERE workspace_id = $1 AND id = $2 \
             AND (last_active_at IS NULL OR last_active_at < now() - interval '1 minute')",
        &[&workspace_id, &id],
    )
    .await?
        == 1)
}

/// Ends every session of the user: tokens issued before this second are
/// refused from now on (V28). When that is, or `None` for no such user.
pub async fn end_sessions(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<OffsetDateTime>, Error> {
    let row = statements::query_opt(
        client,
        "UPDATE users SET sessions_valid_after = date_trunc('second', now()) \
         WHERE workspace_id = $1 AND id = $2 RETURNING sessions_valid_after",
        &[&workspace_id, &id],
    )
    .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// Deactivates up to `batch` active users whose access has ended, in any
/// workspace, and returns them as they now are. Rows another transaction
/// holds are skipped (the next round takes them), so sweeps on several
/// replicas never wait on each other or on a ManageUser.
pub async fn deactivate_expired_access(
    client: &impl GenericClient,
    reason: &str,
    batch: i64,
) -> Result<Vec<User>, Error> {
    let sql = format!(
        "UPDATE users SET status = 'DEACTIVATED', deactivation_reason = $1, \
         updated_at = now(), version = version + 1 \
         WHERE (workspace_id, id) IN (SELECT workspace_id, id FROM users \
           WHERE status = 'ACTIVE' AND access_expires_at <= now() \
           ORDER BY access_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING {COLUMNS}"
    );
    let rows = statements::query(client, &sql, &[&reason, &batch]).await?;
    rows.iter().map(from_row).collect()
}
