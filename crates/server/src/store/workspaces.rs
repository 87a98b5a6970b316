//! Workspaces: the tenants.

use anyhow::Context;
use time::OffsetDateTime;
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;
use wowchat_platform::statements;

use super::{GenericClient, Lock, execute, query_one, query_opt, query_value};
use crate::domain::{Error, locale::Locale, workspace::WorkspaceSettings};

pub async fn insert(client: &impl GenericClient, id: Uuid, name: &str) -> Result<(), Error> {
    execute(
        client,
        "INSERT INTO workspaces (id, name) VALUES ($1, $2)",
        &[&id, &name],
    )
    .await?;
    Ok(())
}

pub async fn name(client: &impl GenericClient, id: Uuid) -> Result<String, Error> {
    query_value(client, "SELECT name FROM workspaces WHERE id = $1", &[&id]).await
}

/// The name and the default locale: what an email without an invitation
/// of its own (the accepted notice, a join request's confirmation) says
/// and is written in.
pub async fn name_and_locale(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<(String, Locale), Error> {
    query_one(
        client,
        "SELECT name, default_locale FROM workspaces WHERE id = $1",
        &[&id],
        |row| {
            let tag: &str = row.try_get(1)?;
            Ok((row.try_get(0)?, Locale::from_tag_or_english(tag)))
        },
    )
    .await
}

/// The settings of a row holding `seat_limit, allowed_email_domains,
/// directory_default_role, accept_join_requests, default_locale` from
/// column `first` on.
fn settings_from(row: &Row, first: usize) -> Result<WorkspaceSettings, Error> {
    let seat_limit: i32 = row.try_get(first)?;
    Ok(WorkspaceSettings {
        seat_limit: u32::try_from(seat_limit).context("a negative seat limit")?,
        allowed_email_domains: row.try_get(first + 1)?,
        directory_default_role: row.try_get(first + 2)?,
        accept_join_requests: row.try_get(first + 3)?,
        default_locale: Locale::from_tag_or_english(row.try_get(first + 4)?),
    })
}

/// A workspace row read under a lock: what a mutation needs of it.
#[derive(Debug, Clone)]
pub struct LockedWorkspace {
    pub name: String,
    pub settings: WorkspaceSettings,
    /// The transaction's time, read with it.
    pub now: OffsetDateTime,
}

/// Takes the membership lock of workspace `$1` (its id as text), exclusively,
/// until the transaction ends: see [`lock`].
pub const MEMBERSHIP_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 1))";
const MEMBERSHIP_LOCK_SHARED: &str =
    "SELECT pg_advisory_xact_lock_shared(hashtextextended($1::text, 1))";

/// Takes the workspace's membership lock until the transaction ends, then
/// reads the workspace as it is under it: `Update` (exclusive) serializes
/// membership changes (roles, status, managers, the settings), so rules that
/// span users (the last owner, no reporting cycles, the seats) hold under
/// concurrency; `Share` lets invitations run side by side while no such
/// change can start; `None` only reads.
///
/// A transaction-scoped advisory lock rather than a row lock: many
/// transactions share-locking one row make Postgres write a new multixact
/// into that row for each of them (measured: InviteUser within one workspace
/// at a sixth of the rate of pgbench's minimal transaction). The read is a
/// separate statement, pipelined behind the lock, so its snapshot is taken
/// once the lock is held and it sees every change committed before.
pub async fn lock(
    client: &impl GenericClient,
    id: Uuid,
    lock: Lock,
) -> Result<LockedWorkspace, Error> {
    let row = match membership_lock(lock) {
        None => statements::query_one(client, LOCKED_READ, &[&id]).await?,
        Some(take) => {
            // Both prepared first, so neither waits for a Parse once polled.
            prepare_lock(client, lock).await?;
            let key = id.to_string();
            let (key_param, id_param): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
                ([&key], [&id]);
            // Sent together; Postgres runs them in order.
            let (taken, row) = tokio::join!(
                statements::execute(client, take, &key_param),
                statements::query_one(client, LOCKED_READ, &id_param)
            );
            taken?;
            row?
        }
    };
    Ok(LockedWorkspace {
        name: row.try_get(0)?,
        now: row.try_get(1)?,
        settings: settings_from(&row, 2)?,
    })
}

const LOCKED_READ: &str = "SELECT name, now(), seat_limit, allowed_email_domains, \
     directory_default_role, accept_join_requests, default_locale FROM workspaces WHERE id = $1";

fn membership_lock(lock: Lock) -> Option<&'static str> {
    match lock {
        Lock::None => None,
        Lock::Share => Some(MEMBERSHIP_LOCK_SHARED),
        Lock::Update => Some(MEMBERSHIP_LOCK),
    }
}

/// Prepares the statements of [`lock`] on this connection, so that once
/// polled they go out at once. A pipeline that puts a read behind the lock
/// needs this first: on a connection that has not run them yet, the lock
/// would wait a round trip for its Parse and the read would overtake it.
pub async fn prepare_lock(client: &impl GenericClient, lock: Lock) -> Result<(), Error> {
    statements::prepare_ahead(client, LOCKED_READ).await?;
    if let Some(take) = membership_lock(lock) {
        statements::prepare_ahead(client, take).await?;
    }
    Ok(())
}

/// Serializes the workspace's seat-taking changes until the transaction
/// ends (a transaction-scoped advisory lock), so concurrent invitations
/// cannot overshoot a seat limit while holding only a share lock.
pub async fn serialize_seat_changes(client: &impl GenericClient, id: Uuid) -> Result<(), Error> {
    execute(
        client,
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))",
        &[&id.to_string()],
    )
    .await?;
    Ok(())
}

/// The workspace's invitation settings.
pub async fn settings(client: &impl GenericClient, id: Uuid) -> Result<WorkspaceSettings, Error> {
    Ok(versioned_settings(client, id).await?.0)
}

/// The settings and their version (their etag's).
pub async fn versioned_settings(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<(WorkspaceSettings, i64), Error> {
    query_one(
        client,
        "SELECT seat_limit, allowed_email_domains, directory_default_role, accept_join_requests, \
         default_locale, settings_version FROM workspaces WHERE id = $1",
        &[&id],
        |row| Ok((settings_from(row, 0)?, row.try_get(5)?)),
    )
    .await
}

/// Replaces the settings; their new version.
pub async fn set_settings(
    client: &impl GenericClient,
    id: Uuid,
    settings: &WorkspaceSettings,
) -> Result<i64, Error> {
    let seat_limit = i32::try_from(settings.seat_limit).context("seat limit out of range")?;
    query_value(
        client,
        "UPDATE workspaces SET seat_limit = $2, allowed_email_domains = $3, \
         directory_default_role = $4, accept_join_requests = $5, default_locale = $6, \
         settings_version = settings_version + 1 WHERE id = $1 RETURNING settings_version",
        &[
            &id,
            &seat_limit,
            &settings.allowed_email_domains,
            &settings.directory_default_role,
            &settings.accept_join_requests,
            &settings.default_locale.tag(),
        ],
    )
    .await
}

/// The seats taken: active users plus pending invitations not yet expired.
pub async fn seats_used(client: &impl GenericClient, id: Uuid) -> Result<i64, Error> {
    query_value(
        client,
        "SELECT (SELECT count(*) FROM users WHERE workspace_id = $1 AND status = 'ACTIVE') \
             + (SELECT count(*) FROM invitations WHERE workspace_id = $1 \
                AND status = 'PENDING' AND expires_at > now())",
        &[&id],
    )
    .await
}

/// The name and default locale of a workspace that takes join requests
/// directly; `None` when it does not, or does not exist (the caller cannot
/// tell which).
pub async fn taking_join_requests(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<(String, Locale)>, Error> {
    query_opt(
        client,
        "SELECT name, default_locale FROM workspaces WHERE id = $1 AND accept_join_requests",
        &[&id],
        |row| {
            let tag: &str = row.try_get(1)?;
            Ok((row.try_get(0)?, Locale::from_tag_or_english(tag)))
        },
    )
    .await
}
