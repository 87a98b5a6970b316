//! A directory's groups and their members (V30).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;
use wowchat_platform::statements;

use super::{GenericClient, Lock, execute, query_column, query_one_unless_any_taken, query_opt};
use crate::domain::Error;

/// A group, as stored, with its members in the order they were added.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub display_name: String,
    pub external_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: i64,
    pub members: Vec<Uuid>,
}

impl Group {
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

const COLUMNS: &str =
    "id, workspace_id, display_name, external_id, created_at, updated_at, version";

fn from_row(row: &Row) -> Result<Group, Error> {
    Ok(Group {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        display_name: row.try_get("display_name")?,
        external_id: row.try_get("external_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
        members: Vec::new(),
    })
}

/// The unique indexes a group's keys must not break, and what each is of.
const KEYS: [(&str, &str); 2] = [
    ("directory_groups_name", "displayName"),
    ("directory_groups_external_id", "externalId"),
];

/// Creates the group (without members); `Err(key)` when another group has
/// that name or externalId.
pub async fn insert(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    display_name: &str,
    external_id: Option<&str>,
) -> Result<Result<Group, &'static str>, Error> {
    let sql = format!(
        "INSERT INTO directory_groups (workspace_id, id, display_name, external_id, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, now(), now()) RETURNING {COLUMNS}"
    );
    query_one_unless_any_taken(
        client,
        &sql,
        &[&workspace_id, &id, &display_name, &external_id],
        &KEYS,
        from_row,
    )
    .await
}

/// Renames the group or changes its externalId, and bumps its version.
pub async fn update(
    client: &impl GenericClient,
    group: &Group,
) -> Result<Result<Group, &'static str>, Error> {
    let sql = format!(
        "UPDATE directory_groups SET display_name = $3, external_id = $4, updated_at = now(), \
         version = version + 1 WHERE workspace_id = $1 AND id = $2 RETURNING {COLUMNS}"
    );
    query_one_unless_any_taken(
        client,
        &sql,
        &[
            &group.workspace_id,
            &group.id,
            &group.display_name,
            &group.external_id,
        ],
        &KEYS,
        from_row,
    )
    .await
}

/// Bumps the version of a group whose members changed.
pub async fn touch(client: &impl GenericClient, workspace_id: Uuid, id: Uuid) -> Result<(), Error> {
    execute(
        client,
        "UPDATE directory_groups SET updated_at = now(), version = version + 1 \
         WHERE workspace_id = $1 AND id = $2",
        &[&workspace_id, &id],
    )
    .await?;
    Ok(())
}

pub async fn get(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    lock: Lock,
) -> Result<Option<Group>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM directory_groups WHERE workspace_id = $1 AND id = $2{}",
        lock.clause()
    );
    let Some(mut group) = query_opt(client, &sql, &[&workspace_id, &id], from_row).await? else {
        return Ok(None);
    };
    group.members = members(client, workspace_id, id).await?;
    Ok(Some(group))
}

/// The groups whose name (ignoring case) or externalId is as given, oldest
/// first from the 0-based `offset`, with their members; and how many match.
pub async fn list(
    client: &impl GenericClient,
    workspace_id: Uuid,
    display_name: Option<&str>,
    external_id: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Group>, i64), Error> {
    let filter = "workspace_id = $1 AND ($2::text IS NULL OR lower(display_name) = lower($2)) \
                  AND ($3::text IS NULL OR external_id = $3)";
    let sql = format!(
        "SELECT {COLUMNS}, count(*) OVER () AS matches FROM directory_groups WHERE {filter} \
         ORDER BY created_at, id LIMIT $4 OFFSET $5"
    );
    let rows = statements::query(
        client,
        &sql,
        &[&workspace_id, &display_name, &external_id, &limit, &offset],
    )
    .await?;
    let total: i64 = match rows.first() {
        Some(row) => row.try_get("matches")?,
        None if offset == 0 => 0,
        None => {
            let count = format!("SELECT count(*) FROM directory_groups WHERE {filter}");
            statements::query_one(
                client,
                &count,
                &[&workspace_id, &display_name, &external_id],
            )
            .await?
            .try_get(0)?
        }
    };
    let mut groups = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    for group in &mut groups {
        group.members = members(client, workspace_id, group.id).await?;
    }
    Ok((groups, total))
}

pub async fn delete(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<bool, Error> {
    Ok(execute(
        client,
        "DELETE FROM directory_groups WHERE workspace_id = $1 AND id = $2",
        &[&workspace_id, &id],
    )
    .await?
        == 1)
}

/// The group's members, in the order they were added.
pub async fn members(
    client: &impl GenericClient,
    workspace_id: Uuid,
    group_id: Uuid,
) -> Result<Vec<Uuid>, Error> {
    query_column(
        client,
        "SELECT user_id FROM directory_group_members WHERE workspace_id = $1 AND group_id = $2 \
         ORDER BY added_at, user_id",
        &[&workspace_id, &group_id],
    )
    .await
}

/// Puts the user in the group (`member`) or takes it out; either way,
/// twice changes nothing more than once.
pub async fn set_member(
    client: &impl GenericClient,
    workspace_id: Uuid,
    group_id: Uuid,
    user_id: Uuid,
    member: bool,
) -> Result<(), Error> {
    let sql = if member {
        "INSERT INTO directory_group_members (workspace_id, group_id, user_id) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM directory_group_members WHERE workspace_id = $1 AND group_id = $2 \
         AND user_id = $3"
    };
    execute(client, sql, &[&workspace_id, &group_id, &user_id]).await?;
    Ok(())
}

/// Takes the member out of every group (a directory let go of it): the
/// ids of the groups it was in.
pub async fn remove_from_all(
    client: &impl GenericClient,
    workspace_id: Uuid,
    user_id: Uuid,
) -> Result<Vec<Uuid>, Error> {
    query_column(
        client,
        "DELETE FROM directory_group_members WHERE workspace_id = $1 AND user_id = $2 \
         RETURNING group_id",
        &[&workspace_id, &user_id],
    )
    .await
}

/// The names of the groups the member is in.
pub async fn names_of_groups_of(
    client: &impl GenericClient,
    workspace_id: Uuid,
    user_id: Uuid,
) -> Result<Vec<String>, Error> {
    query_column(
        client,
        "SELECT g.display_name FROM directory_group_members m JOIN directory_groups g \
         ON g.workspace_id = m.workspace_id AND g.id = m.group_id \
         WHERE m.workspace_id = $1 AND m.user_id = $2",
        &[&workspace_id, &user_id],
    )
    .await
}
