//! Join requests. An open request (unconfirmed or pending) past its expiry
//! reads as EXPIRED everywhere, through the one status expression below;
//! an unconfirmed one is never read for an administrator.

use time::{Duration, OffsetDateTime};
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;
use wowchat_platform::statements;

use super::{GenericClient, Lock, Table, query_one, query_one_unless_taken, query_opt};
use crate::domain::{
    Error,
    invitation::TokenHash,
    joining::{JoinRequest, JoinRequestStatus},
    pagination::Window,
};

/// The unique index that keeps one open request per email and workspace.
const ONE_OPEN: &str = "join_requests_one_open";

const STATUS: &str = "CASE WHEN status IN ('UNCONFIRMED', 'PENDING') AND expires_at <= now() \
                      THEN 'EXPIRED' ELSE status END";

fn columns() -> String {
    format!(
        "id, workspace_id, email, display_name, message, {STATUS} AS status, invite_link_id, \
         proposed_role, created_at, confirmed_at, expires_at, decided_at, decided_by, \
         denial_reason, invitation_id"
    )
}

/// Join requests; an unconfirmed one is nobody's to see (or decide) yet.
pub(crate) const JOIN_REQUESTS: Table<JoinRequest> = Table {
    name: "join_requests",
    columns,
    read: from_row,
    shown: Some("status <> 'UNCONFIRMED'"),
};

fn from_row(row: &Row) -> Result<JoinRequest, Error> {
    Ok(JoinRequest {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        message: row.try_get("message")?,
        status: JoinRequestStatus::from_db(row.try_get("status")?)?,
        invite_link_id: row.try_get("invite_link_id")?,
        proposed_role: row.try_get("proposed_role")?,
        created_at: row.try_get("created_at")?,
        confirmed_at: row.try_get("confirmed_at")?,
        expires_at: row.try_get("expires_at")?,
        decided_at: row.try_get("decided_at")?,
        decided_by: row.try_get("decided_by")?,
        denial_reason: row.try_get("denial_reason")?,
        invitation_id: row.try_get("invitation_id")?,
    })
}

/// What stands between a stranger's request and a new row, in one round
/// trip: an open request past its expiry is marked EXPIRED (it no longer
/// holds the one-open slot), then whether the address is a member or
/// invited, whether it was denied since `denied_since`, and how many
/// requests of the workspace are open.
pub struct Standing {
    pub member_or_invited: bool,
    pub denied_recently: bool,
    pub open_requests: i64,
}

pub async fn standing(
    client: &impl GenericClient,
    workspace_id: Uuid,
    email_normalized: &str,
    denied_since: OffsetDateTime,
) -> Result<Standing, Error> {
    let sql = "WITH expired AS (UPDATE join_requests SET status = 'EXPIRED' \
               WHERE workspace_id = $1 AND email_normalized = $2 \
               AND status IN ('UNCONFIRMED', 'PENDING') AND expires_at <= now() RETURNING 1) \
               SELECT EXISTS (SELECT 1 FROM users WHERE workspace_id = $1 AND email_normalized = $2) \
               OR EXISTS (SELECT 1 FROM invitations WHERE workspace_id = $1 \
                 AND email_normalized = $2 AND status = 'PENDING' AND expires_at > now()), \
               EXISTS (SELECT 1 FROM join_requests WHERE workspace_id = $1 \
                 AND email_normalized = $2 AND status = 'DENIED' AND decided_at >= $3), \
               (SELECT count(*) FROM join_requests WHERE workspace_id = $1 \
                 AND status IN ('UNCONFIRMED', 'PENDING') AND expires_at > now()), \
               (SELECT count(*) FROM expired)";
    let row = statements::query_one(
        client,
        sql,
        &[&workspace_id, &email_normalized, &denied_since],
    )
    .await?;
    Ok(Standing {
        member_or_invited: row.try_get(0)?,
        denied_recently: row.try_get(1)?,
        open_requests: row.try_get(2)?,
    })
}

/// A request about to be made.
pub struct NewRequestRow<'a> {
    pub workspace_id: Uuid,
    pub id: Uuid,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub display_name: &'a str,
    pub message: &'a str,
    pub invite_link_id: Option<Uuid>,
    pub proposed_role: Option<&'a str>,
    pub confirm_token_hash: TokenHash,
    pub valid_for: Duration,
}

/// Makes the request, unconfirmed; `None` when one is already open for that
/// email (the transaction is then aborted).
pub async fn insert(
    client: &impl GenericClient,
    new: &NewRequestRow<'_>,
) -> Result<Option<JoinRequest>, Error> {
    let sql = format!(
        "INSERT INTO join_requests (workspace_id, id, email, email_normalized, display_name, \
         message, status, invite_link_id, proposed_role, confirm_token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'UNCONFIRMED', $7, $8, $9, now(), \
         now() + make_interval(secs => $10)) RETURNING {}",
        columns()
    );
    let params: [&(dyn ToSql + Sync); 10] = [
        &new.workspace_id,
        &new.id,
        &new.email,
        &new.email_normalized,
        &new.display_name,
        &new.message,
        &new.invite_link_id,
        &new.proposed_role,
        &new.confirm_token_hash.0.as_slice(),
        &new.valid_for.as_seconds_f64(),
    ];
    query_one_unless_taken(client, &sql, &params, ONE_OPEN, from_row).await
}

/// The request a confirmation token belongs to, in any workspace.
pub async fn find_by_token(
    client: &impl GenericClient,
    token_hash: TokenHash,
    lock: Lock,
) -> Result<Option<JoinRequest>, Error> {
    let sql = format!(
        "SELECT {} FROM join_requests WHERE confirm_token_hash = $1{}",
        columns(),
        lock.clause()
    );
    query_opt(client, &sql, &[&token_hash.0.as_slice()], from_row).await
}

/// Confirms the request: administrators see it from now on, and it waits
/// `valid_for` for a decision.
pub async fn confirm(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    valid_for: Duration,
) -> Result<JoinRequest, Error> {
    let sql = format!(
        "UPDATE join_requests SET status = 'PENDING', confirmed_at = now(), \
         expires_at = now() + make_interval(secs => $3) \
         WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    query_one(
        client,
        &sql,
        &[&workspace_id, &id, &valid_for.as_seconds_f64()],
        from_row,
    )
    .await
}

/// Approves or denies a request (`status`), by `decided_by`.
pub async fn decide(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    status: JoinRequestStatus,
    decided_by: Uuid,
    denial_reason: &str,
    invitation_id: Option<Uuid>,
) -> Result<JoinRequest, Error> {
    let sql = format!(
        "UPDATE join_requests SET status = $3, decided_at = now(), decided_by = $4, \
         denial_reason = $5, invitation_id = $6, confirm_token_hash = NULL \
         WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    let params: [&(dyn ToSql + Sync); 6] = [
        &workspace_id,
        &id,
        &status.as_str(),
        &decided_by,
        &denial_reason,
        &invitation_id,
    ];
    query_one(client, &sql, &params, from_row).await
}

/// One page of confirmed requests, newest first, after `after`; and how
/// many match in all.
pub async fn list(
    client: &impl GenericClient,
    workspace_id: Uuid,
    status: Option<JoinRequestStatus>,
    window: Window,
) -> Result<(Vec<JoinRequest>, i64), Error> {
    let status = status.map(JoinRequestStatus::as_str);
    let filter = format!("workspace_id = $1 AND ($2::text IS NULL OR {STATUS} = $2)");
    let params: [&(dyn ToSql + Sync); 2] = [&workspace_id, &status];
    JOIN_REQUESTS
        .newest_first(client, &filter, &params, window)
        .await
}
