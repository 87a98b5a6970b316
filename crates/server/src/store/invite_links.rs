//! Invite links. A link's state is read through the one expression below,
//! so a link past its expiry or out of uses reads as such everywhere.

use time::Duration;
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;

use super::{GenericClient, Table, query_one, query_opt, query_value};
use crate::domain::{
    Error,
    invitation::TokenHash,
    joining::{InviteLink, InviteLinkState},
    pagination::Window,
};

const STATE: &str = "CASE WHEN revoked_at IS NOT NULL THEN 'REVOKED' \
                     WHEN use_count >= max_uses THEN 'EXHAUSTED' \
                     WHEN expires_at <= now() THEN 'EXPIRED' ELSE 'ACTIVE' END";

/// Whether a link's secret works, as a condition on its row.
const USABLE: &str = "revoked_at IS NULL AND use_count < max_uses AND expires_at > now()";

fn columns() -> String {
    format!(
        "id, workspace_id, role, reporting_to, creator_id, requires_approval, max_uses, \
         use_count, {STATE} AS state, expires_at, created_at, updated_at"
    )
}

/// Invite links, read by id with `INVITE_LINKS.get` (the one way to).
pub(crate) const INVITE_LINKS: Table<InviteLink> = Table {
    name: "invite_links",
    columns,
    read: from_row,
    shown: None,
};

fn from_row(row: &Row) -> Result<InviteLink, Error> {
    Ok(InviteLink {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        role: row.try_get("role")?,
        reporting_to: row.try_get("reporting_to")?,
        creator_id: row.try_get("creator_id")?,
        requires_approval: row.try_get("requires_approval")?,
        max_uses: row.try_get("max_uses")?,
        use_count: row.try_get("use_count")?,
        state: InviteLinkState::from_db(row.try_get("state")?)?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A link about to be created.
pub struct NewLinkRow<'a> {
    pub workspace_id: Uuid,
    pub id: Uuid,
    pub secret_hash: TokenHash,
    pub role: &'a str,
    pub reporting_to: Option<Uuid>,
    pub creator_id: Uuid,
    pub requires_approval: bool,
    pub max_uses: i32,
    pub valid_for: Duration,
}

pub async fn insert(
    client: &impl GenericClient,
    new: &NewLinkRow<'_>,
) -> Result<InviteLink, Error> {
    let sql = format!(
        "INSERT INTO invite_links (workspace_id, id, secret_hash, role, reporting_to, creator_id, \
         requires_approval, max_uses, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9), now(), now()) \
         RETURNING {}",
        columns()
    );
    let params: [&(dyn ToSql + Sync); 9] = [
        &new.workspace_id,
        &new.id,
        &new.secret_hash.0.as_slice(),
        &new.role,
        &new.reporting_to,
        &new.creator_id,
        &new.requires_approval,
        &new.max_uses,
        &new.valid_for.as_seconds_f64(),
    ];
    query_one(client, &sql, &params, from_row).await
}

/// How many of the workspace's links work now.
pub async fn count_usable(client: &impl GenericClient, workspace_id: Uuid) -> Result<i64, Error> {
    let sql = format!("SELECT count(*) FROM invite_links WHERE workspace_id = $1 AND {USABLE}");
    query_value(client, &sql, &[&workspace_id]).await
}

/// The link a secret opens, in any workspace, if it works now.
pub async fn find_usable(
    client: &impl GenericClient,
    secret_hash: TokenHash,
) -> Result<Option<InviteLink>, Error> {
    let sql = format!(
        "SELECT {} FROM invite_links WHERE secret_hash = $1 AND {USABLE}",
        columns()
    );
    query_opt(client, &sql, &[&secret_hash.0.as_slice()], from_row).await
}

/// Takes one use of the link if it still works: the row lock makes
/// concurrent takers queue, and each re-checks the uses left after the one
/// before it commits, so no more than `max_uses` are ever taken. `None`
/// when it no longer works.
pub async fn take_use(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<InviteLink>, Error> {
    let set = "use_count = use_count + 1, updated_at = now()";
    INVITE_LINKS
        .update_if(client, workspace_id, id, set, USABLE)
        .await
}

pub async fn revoke(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<InviteLink, Error> {
    let sql = format!(
        "UPDATE invite_links SET revoked_at = now(), updated_at = now() \
         WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    query_one(client, &sql, &[&workspace_id, &id], from_row).await
}

/// Replaces the secret: the old one stops working with the commit.
pub async fn rotate(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    secret_hash: TokenHash,
) -> Result<InviteLink, Error> {
    let sql = format!(
        "UPDATE invite_links SET secret_hash = $3, updated_at = now() \
         WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    query_one(
        client,
        &sql,
        &[&workspace_id, &id, &secret_hash.0.as_slice()],
        from_row,
    )
    .await
}

/// One page of links, newest first, after `after`; and how many match in all.
pub async fn list(
    client: &impl GenericClient,
    workspace_id: Uuid,
    state: Option<InviteLinkState>,
    window: Window,
) -> Result<(Vec<InviteLink>, i64), Error> {
    let state = state.map(InviteLinkState::as_str);
    let filter = format!("workspace_id = $1 AND ($2::text IS NULL OR {STATE} = $2)");
    let params: [&(dyn ToSql + Sync); 2] = [&workspace_id, &state];
    INVITE_LINKS
        .newest_first(client, &filter, &params, window)
        .await
}
