//! Users of a workspace. Every query is scoped by workspace id.

use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{GenericClient, Lock, is_unique_violation, like_contains};
use crate::domain::{
    Error,
    pagination::OptionalTimeCursor,
    user::{User, UserStatus},
};

const COLUMNS: &str = "id, workspace_id, email, display_name, role, reporting_to, status, \
                       deactivation_reason, created_at, updated_at, version, last_active_at";

fn from_row(row: &Row) -> Result<User, Error> {
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
}

/// Creates the user; `None` when the workspace already has a member with
/// that email (the transaction is then aborted).
pub async fn insert(
    client: &impl GenericClient,
    user: &NewUser<'_>,
) -> Result<Option<User>, Error> {
    let sql = format!(
        "INSERT INTO users (workspace_id, id, email, email_normalized, display_name, role, \
         reporting_to, status, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'ACTIVE', $8, now(), now()) RETURNING {COLUMNS}"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let inserted = client
        .query_one(
            &stmt,
            &[
                &user.workspace_id,
                &user.id,
                &user.email,
                &user.email_normalized,
                &user.display_name,
                &user.role,
                &user.reporting_to,
                &user.password_hash,
            ],
        )
        .await;
    match inserted {
        Ok(row) => from_row(&row).map(Some),
        Err(err) if is_unique_violation(&err, "users_email_per_workspace") => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Reads the row, locked as `lock` says until the transaction ends.
pub async fn get(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    lock: Lock,
) -> Result<Option<User>, Error> {
    select_one(client, workspace_id, id, lock.clause()).await
}

async fn select_one(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    lock: &str,
) -> Result<Option<User>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE workspace_id = $1 AND id = $2{lock}");
    let stmt = client.prepare_cached(&sql).await?;
    client
        .query_opt(&stmt, &[&workspace_id, &id])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn exists_with_email(
    client: &impl GenericClient,
    workspace_id: Uuid,
    email_normalized: &str,
) -> Result<bool, Error> {
    let stmt = client
        .prepare_cached("SELECT 1 FROM users WHERE workspace_id = $1 AND email_normalized = $2")
        .await?;
    Ok(client
        .query_opt(&stmt, &[&workspace_id, &email_normalized])
        .await?
        .is_some())
}

/// Writes the mutable fields of `user` and bumps its version.
pub async fn update(client: &impl GenericClient, user: &User) -> Result<User, Error> {
    let sql = format!(
        "UPDATE users SET display_name = $3, role = $4, reporting_to = $5, status = $6, \
         deactivation_reason = $7, updated_at = now(), version = version + 1 \
         WHERE workspace_id = $1 AND id = $2 RETURNING {COLUMNS}"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let row = client
        .query_one(
            &stmt,
            &[
                &user.workspace_id,
                &user.id,
                &user.display_name,
                &user.role,
                &user.reporting_to,
                &user.status.as_str(),
                &user.deactivation_reason,
            ],
        )
        .await?;
    from_row(&row)
}

/// Active owners of the workspace other than `excluding`.
pub async fn count_other_active_owners(
    client: &impl GenericClient,
    workspace_id: Uuid,
    excluding: Uuid,
) -> Result<i64, Error> {
    let stmt = client
        .prepare_cached(
            "SELECT count(*) FROM users WHERE workspace_id = $1 AND role = 'owner' \
             AND status = 'ACTIVE' AND id <> $2",
        )
        .await?;
    Ok(client
        .query_one(&stmt, &[&workspace_id, &excluding])
        .await?
        .get(0))
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
    let stmt = client
        .prepare_cached(
            "WITH RECURSIVE chain(id) AS ( \
                 SELECT $2::uuid \
                 UNION \
                 SELECT u.reporting_to FROM users u JOIN chain c ON u.id = c.id \
                 WHERE u.workspace_id = $1 AND u.reporting_to IS NOT NULL) \
             SELECT EXISTS (SELECT 1 FROM chain WHERE id = $3)",
        )
        .await?;
    Ok(client
        .query_one(&stmt, &[&workspace_id, &manager, &user])
        .await?
        .get(0))
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
    let stmt = client.prepare_cached(&sql).await?;
    client
        .query_opt(&stmt, &[&workspace_id, &email_normalized])
        .await?
        .map(|row| Ok((from_row(&row)?, row.try_get("password_hash")?)))
        .transpose()
}

/// Records a sign-in of an active user: their last-active time becomes now
/// (their version stays: it is not a change of the user). `None` when the
/// user is no longer active.
pub async fn mark_signed_in(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<User>, Error> {
    let sql = format!(
        "UPDATE users SET last_active_at = now() \
         WHERE workspace_id = $1 AND id = $2 AND status = 'ACTIVE' RETURNING {COLUMNS}"
    );
    let stmt = client.prepare_cached(&sql).await?;
    client
        .query_opt(&stmt, &[&workspace_id, &id])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Sets the user's last-active time to now unless it already is within the
/// last minute, so a busy user costs at most one write a minute.
pub async fn touch_last_active(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<bool, Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE users SET last_active_at = now() WHERE workspace_id = $1 AND id = $2 \
             AND (last_active_at IS NULL OR last_active_at < now() - interval '1 minute')",
        )
        .await?;
    Ok(client.execute(&stmt, &[&workspace_id, &id]).await? == 1)
}

/// Filters of `ListUsers`; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub status: Option<UserStatus>,
    pub role: Option<String>,
    pub reporting_to: Option<Uuid>,
    pub query: Option<String>,
    /// Only users active at or after this time.
    pub active_since: Option<OffsetDateTime>,
}

/// The order of `ListUsers`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserOrder {
    /// Oldest first: `created_at, id`.
    #[default]
    CreateTime,
    /// Most recently active first, never-active users last:
    /// `last_active_at DESC NULLS LAST, id DESC`.
    LastActiveTimeDesc,
}

impl UserOrder {
    /// The sort key of `user` in this order, for its page token.
    pub fn cursor(self, user: &User) -> OptionalTimeCursor {
        let time = match self {
            UserOrder::CreateTime => Some(user.created_at),
            UserOrder::LastActiveTimeDesc => user.last_active_at,
        };
        OptionalTimeCursor { time, id: user.id }
    }
}

const FILTER: &str = "workspace_id = $1 \
    AND ($2::text IS NULL OR status = $2) \
    AND ($3::text IS NULL OR role = $3) \
    AND ($4::uuid IS NULL OR reporting_to = $4) \
    AND ($5::text IS NULL OR email_normalized LIKE $5 OR lower(display_name) LIKE $5) \
    AND ($6::timestamptz IS NULL OR last_active_at >= $6)";

/// Rows after the cursor ($7: is there one, $8: its time, $9: its id) in
/// creation order.
const AFTER_BY_CREATION: &str = "(NOT $7::bool OR (created_at, id) > ($8::timestamptz, $9::uuid)) \
    ORDER BY created_at, id";

/// Rows after the cursor in `last_active_at DESC NULLS LAST, id DESC` order:
/// after a time come earlier times, the same time with a smaller id, and
/// every NULL; after a NULL only NULLs with a smaller id.
const AFTER_BY_LAST_ACTIVITY: &str = "(NOT $7::bool \
    OR ($8::timestamptz IS NOT NULL AND (last_active_at < $8 \
        OR (last_active_at = $8 AND id < $9::uuid) OR last_active_at IS NULL)) \
    OR ($8::timestamptz IS NULL AND last_active_at IS NULL AND id < $9::uuid)) \
    ORDER BY last_active_at DESC NULLS LAST, id DESC";

/// One page of users in `order`, after `after`; and how many match in all.
pub async fn list(
    client: &impl GenericClient,
    workspace_id: Uuid,
    filter: &UserFilter,
    order: UserOrder,
    after: Option<OptionalTimeCursor>,
    limit: i64,
) -> Result<(Vec<User>, i64), Error> {
    let status = filter.status.map(UserStatus::as_str);
    let pattern = filter
        .query
        .as_deref()
        .map(|q| like_contains(&q.to_lowercase()));
    let has_cursor = after.is_some();
    let (after_time, after_id): (Option<OffsetDateTime>, Option<Uuid>) =
        (after.and_then(|c| c.time), after.map(|c| c.id));

    let after_sql = match order {
        UserOrder::CreateTime => AFTER_BY_CREATION,
        UserOrder::LastActiveTimeDesc => AFTER_BY_LAST_ACTIVITY,
    };
    let page_sql = format!("SELECT {COLUMNS} FROM users WHERE {FILTER} AND {after_sql} LIMIT $10");
    let stmt = client.prepare_cached(&page_sql).await?;
    let rows = client
        .query(
            &stmt,
            &[
                &workspace_id,
                &status,
                &filter.role,
                &filter.reporting_to,
                &pattern,
                &filter.active_since,
                &has_cursor,
                &after_time,
                &after_id,
                &limit,
            ],
        )
        .await?;
    let users = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;

    let count_sql = format!("SELECT count(*) FROM users WHERE {FILTER}");
    let stmt = client.prepare_cached(&count_sql).await?;
    let total: i64 = client
        .query_one(
            &stmt,
            &[
                &workspace_id,
                &status,
                &filter.role,
                &filter.reporting_to,
                &pattern,
                &filter.active_since,
            ],
        )
        .await?
        .get(0);
    Ok((users, total))
}
