//! A workspace's mail domains. A pending claim past its expiry reads as
//! EXPIRED everywhere, through the one status expression below.

use time::OffsetDateTime;
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;
use wowchat_platform::statements;

use super::{GenericClient, Table, query_one, query_one_unless_any_taken, query_opt};
use crate::domain::{
    Error,
    mail_domain::{CLAIM_VALIDITY, DomainStatus, EnrollmentMode, MailDomain},
    pagination::Window,
};

/// A workspace claims a domain once.
pub const ONE_CLAIM: &str = "workspace_domains_one_claim";
/// A verified domain belongs to one workspace.
pub const ONE_VERIFIED: &str = "workspace_domains_verified";

const STATUS: &str = "CASE WHEN status = 'PENDING' AND expires_at <= now() \
                      THEN 'EXPIRED' ELSE status END";

fn columns() -> String {
    format!(
        "id, workspace_id, domain, {STATUS} AS status, verification_code, enrollment_mode, \
         default_role, created_by, created_at, updated_at, expires_at, verified_at, checked_at"
    )
}

/// Mail domains, read by id with `DOMAINS.get` (the one way to).
pub(crate) const DOMAINS: Table<MailDomain> = Table {
    name: "workspace_domains",
    columns,
    read: from_row,
    shown: None,
};

fn from_row(row: &Row) -> Result<MailDomain, Error> {
    Ok(MailDomain {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        domain: row.try_get("domain")?,
        status: DomainStatus::from_db(row.try_get("status")?)?,
        verification_code: row.try_get("verification_code")?,
        enrollment_mode: EnrollmentMode::from_db(row.try_get("enrollment_mode")?)?,
        default_role: row.try_get("default_role")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        expires_at: row.try_get("expires_at")?,
        verified_at: row.try_get("verified_at")?,
        checked_at: row.try_get("checked_at")?,
    })
}

/// Claims `domain` for the workspace; `Err(ONE_CLAIM)` when it already
/// claimed it (the transaction is then aborted).
pub async fn insert(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    domain: &str,
    verification_code: &str,
    created_by: Uuid,
) -> Result<Result<MailDomain, &'static str>, Error> {
    let sql = format!(
        "INSERT INTO workspace_domains (workspace_id, id, domain, status, verification_code, \
         created_by, created_at, updated_at, expires_at) \
         VALUES ($1, $2, $3, 'PENDING', $4, $5, now(), now(), now() + make_interval(secs => $6)) \
         RETURNING {}",
        columns()
    );
    let params: [&(dyn ToSql + Sync); 6] = [
        &workspace_id,
        &id,
        &domain,
        &verification_code,
        &created_by,
        &CLAIM_VALIDITY.as_seconds_f64(),
    ];
    query_one_unless_any_taken(client, &sql, &params, &[(ONE_CLAIM, ONE_CLAIM)], from_row).await
}

/// One page of the workspace's domains, newest first, after `after`; and
/// how many it has in all.
pub async fn list(
    client: &impl GenericClient,
    workspace_id: Uuid,
    window: Window,
) -> Result<(Vec<MailDomain>, i64), Error> {
    DOMAINS
        .newest_first(client, "workspace_id = $1", &[&workspace_id], window)
        .await
}

/// The verified claim on `domain`, in any workspace.
pub async fn verified(
    client: &impl GenericClient,
    domain: &str,
) -> Result<Option<MailDomain>, Error> {
    let sql = format!(
        "SELECT {} FROM workspace_domains WHERE domain = $1 AND status = 'VERIFIED'",
        columns()
    );
    query_opt(client, &sql, &[&domain], from_row).await
}

/// Marks the claim verified (and checked) now; `Err(ONE_VERIFIED)` when
/// another workspace holds the domain verified (the transaction is then
/// aborted).
pub async fn mark_verified(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Result<MailDomain, &'static str>, Error> {
    let sql = format!(
        "UPDATE workspace_domains SET status = 'VERIFIED', verified_at = now(), \
         checked_at = now(), updated_at = now() WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    query_one_unless_any_taken(
        client,
        &sql,
        &[&workspace_id, &id],
        &[(ONE_VERIFIED, ONE_VERIFIED)],
        from_row,
    )
    .await
}

pub async fn update(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    enrollment_mode: EnrollmentMode,
    default_role: &str,
) -> Result<MailDomain, Error> {
    let sql = format!(
        "UPDATE workspace_domains SET enrollment_mode = $3, default_role = $4, updated_at = now() \
         WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    query_one(
        client,
        &sql,
        &[&workspace_id, &id, &enrollment_mode.as_str(), &default_role],
        from_row,
    )
    .await
}

pub async fn delete(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<(), Error> {
    statements::execute(
        client,
        "DELETE FROM workspace_domains WHERE workspace_id = $1 AND id = $2",
        &[&workspace_id, &id],
    )
    .await?;
    Ok(())
}

/// Up to `batch` verified domains last checked before `checked_before`,
/// locked (others skipped) so replicas re-check different ones.
pub async fn due_for_recheck(
    client: &impl GenericClient,
    checked_before: OffsetDateTime,
    batch: i64,
) -> Result<Vec<MailDomain>, Error> {
    let sql = format!(
        "SELECT {} FROM workspace_domains WHERE status = 'VERIFIED' AND checked_at < $1 \
         ORDER BY checked_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        columns()
    );
    statements::query(client, &sql, &[&checked_before, &batch])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Records a re-check: still there (`present`), or lapsed.
pub async fn mark_checked(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    present: bool,
) -> Result<MailDomain, Error> {
    let sql = format!(
        "UPDATE workspace_domains SET checked_at = now(), updated_at = now(), \
         status = CASE WHEN $3 THEN status ELSE 'LAPSED' END \
         WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    query_one(client, &sql, &[&workspace_id, &id, &present], from_row).await
}
