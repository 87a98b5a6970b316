//! A workspace's directory: its tokens, and the members as it sees them
//! (the `directory_*` columns of `users`, V29).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;
use wowchat_platform::statements;

use super::{
    GenericClient, Lock, Table, query_one, query_one_unless_any_taken, query_opt,
    users::{self, COLUMNS},
};
use crate::domain::{
    Error,
    directory::{Condition, DirectoryProfile, DirectoryState, FilterAttribute, FilterOperator},
    pagination::Window,
    user::{User, UserStatus},
};

/// A directory token, as stored (its secret only as a hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirectoryToken {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub display_name: String,
    pub created_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

const TOKEN_COLUMNS: &str =
    "id, workspace_id, display_name, created_by, created_at, last_used_at, revoked_at";

/// Directory tokens, read by id with `TOKENS.get` (the one way to).
pub(crate) const TOKENS: Table<DirectoryToken> = Table {
    name: "directory_tokens",
    columns: || TOKEN_COLUMNS.to_owned(),
    read: token_from_row,
    shown: None,
};

fn token_from_row(row: &Row) -> Result<DirectoryToken, Error> {
    Ok(DirectoryToken {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        display_name: row.try_get("display_name")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

pub async fn insert_token(
    client: &impl GenericClient,
    token: &DirectoryToken,
    secret_hash: &[u8],
) -> Result<DirectoryToken, Error> {
    let sql = format!(
        "INSERT INTO directory_tokens (workspace_id, id, display_name, secret_hash, created_by, \
         created_at) VALUES ($1, $2, $3, $4, $5, now()) RETURNING {TOKEN_COLUMNS}"
    );
    let params: [&(dyn ToSql + Sync); 5] = [
        &token.workspace_id,
        &token.id,
        &token.display_name,
        &secret_hash,
        &token.created_by,
    ];
    query_one(client, &sql, &params, token_from_row).await
}

/// One page of the workspace's tokens, newest first, after `after`; and how
/// many it has in all.
pub async fn list_tokens(
    client: &impl GenericClient,
    workspace_id: Uuid,
    window: Window,
) -> Result<(Vec<DirectoryToken>, i64), Error> {
    TOKENS
        .newest_first(client, "workspace_id = $1", &[&workspace_id], window)
        .await
}

/// Revokes the token now; `None` when it was revoked already.
pub async fn revoke_token(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<DirectoryToken>, Error> {
    TOKENS
        .update_if(
            client,
            workspace_id,
            id,
            "revoked_at = now()",
            "revoked_at IS NULL",
        )
        .await
}

/// The working token with this secret hash, marked used (to the minute, so
/// a busy directory costs one write a minute): one round trip per call, so
/// a revocation holds from the very next call on every replica.
pub async fn use_token(
    client: &impl GenericClient,
    secret_hash: &[u8],
) -> Result<Option<DirectoryToken>, Error> {
    let sql = format!(
        "WITH found AS (SELECT workspace_id, id FROM directory_tokens \
             WHERE secret_hash = $1 AND revoked_at IS NULL), \
         touched AS (UPDATE directory_tokens t SET last_used_at = now() FROM found \
             WHERE t.workspace_id = found.workspace_id AND t.id = found.id \
             AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')) \
         SELECT {TOKEN_COLUMNS} FROM directory_tokens \
             WHERE secret_hash = $1 AND revoked_at IS NULL"
    );
    query_opt(client, &sql, &[&secret_hash], token_from_row).await
}

/// A member as a directory sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirectoryMember {
    pub user: User,
    pub state: Option<DirectoryState>,
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    pub profile: Option<DirectoryProfile>,
}

/// The directory's columns of a member, read after the user's (`COLUMNS`).
const DIRECTORY_COLUMNS: &str =
    "directory_state, directory_user_name, directory_external_id, directory_profile";

fn member_from_row(row: &Row) -> Result<DirectoryMember, Error> {
    let state: Option<&str> = row.try_get("directory_state")?;
    let state = state
        .map(|s| {
            DirectoryState::parse(s).ok_or_else(|| anyhow::anyhow!("unknown directory state {s:?}"))
        })
        .transpose()?;
    let profile: Option<serde_json::Value> = row.try_get("directory_profile")?;
    let profile = profile
        .map(serde_json::from_value::<DirectoryProfile>)
        .transpose()
        .map_err(|e| anyhow::Error::new(e).context("decoding a directory profile"))?;
    Ok(DirectoryMember {
        user: users::from_row(row)?,
        state,
        user_name: row.try_get("directory_user_name")?,
        external_id: row.try_get("directory_external_id")?,
        profile,
    })
}

/// The member unless the directory let go of it; with `detached`, even then.
pub async fn get_member(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    detached: bool,
    lock: Lock,
) -> Result<Option<DirectoryMember>, Error> {
    let held = if detached {
        ""
    } else {
        " AND directory_state IS DISTINCT FROM 'DETACHED'"
    };
    let sql = format!(
        "SELECT {COLUMNS}, {DIRECTORY_COLUMNS} FROM users WHERE workspace_id = $1 AND id = $2{held}{}",
        lock.clause()
    );
    query_opt(client, &sql, &[&workspace_id, &id], member_from_row).await
}

/// The member with this email, detached or not.
pub async fn member_with_email(
    client: &impl GenericClient,
    workspace_id: Uuid,
    email_normalized: &str,
    lock: Lock,
) -> Result<Option<DirectoryMember>, Error> {
    let sql = format!(
        "SELECT {COLUMNS}, {DIRECTORY_COLUMNS} FROM users WHERE workspace_id = $1 AND email_normalized = $2{}",
        lock.clause()
    );
    query_opt(
        client,
        &sql,
        &[&workspace_id, &email_normalized],
        member_from_row,
    )
    .await
}

/// What the directory holds of a member from now on.
pub struct MemberWrite {
    pub state: DirectoryState,
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    pub profile: Option<DirectoryProfile>,
    pub email: String,
    pub email_normalized: String,
    /// A new password hash; `None` keeps the member's.
    pub password_hash: Option<String>,
}

/// The unique indexes a member's keys must not break, and what each is of.
const KEYS: [(&str, &str); 3] = [
    ("users_email_per_workspace", "email"),
    ("users_directory_user_name", "userName"),
    ("users_directory_external_id", "externalId"),
];

/// Writes the directory's columns, the email and the password of `user`,
/// with its other mutable fields as `users::update` does, and bumps its
/// version.
pub async fn write_member(
    client: &impl GenericClient,
    user: &User,
    write: &MemberWrite,
) -> Result<Result<DirectoryMember, &'static str>, Error> {
    let profile = encode_profile(write.profile.as_ref())?;
    let sql = format!(
        "UPDATE users SET {}, directory_state = $8, directory_user_name = $9, \
         directory_external_id = $10, directory_profile = $11, email = $12, \
         email_normalized = $13, password_hash = coalesce($14, password_hash), \
         updated_at = now(), version = version + 1 \
         WHERE workspace_id = $1 AND id = $2 RETURNING {COLUMNS}, {DIRECTORY_COLUMNS}",
        users::Written::SET
    );
    let written = users::Written::of(user);
    let state = write.state.as_str();
    let mut params = written.params();
    params.extend([
        &state as &(dyn ToSql + Sync),
        &write.user_name,
        &write.external_id,
        &profile,
        &write.email,
        &write.email_normalized,
        &write.password_hash,
    ]);
    query_one_unless_any_taken(client, &sql, &params, &KEYS, member_from_row).await
}

fn encode_profile(profile: Option<&DirectoryProfile>) -> Result<Option<serde_json::Value>, Error> {
    Ok(profile
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| anyhow::Error::new(e).context("encoding a directory profile"))?)
}

/// A member a directory creates: a new user, in the status the directory
/// sent, held by the directory.
pub struct NewMember<'a> {
    pub user: users::NewUser<'a>,
    pub status: UserStatus,
    pub deactivation_reason: Option<&'a str>,
    pub user_name: &'a str,
    pub external_id: Option<&'a str>,
    pub profile: &'a DirectoryProfile,
}

/// Creates the member, held by the directory; `Err(key)` when another
/// member has that key.
pub async fn insert_member(
    client: &impl GenericClient,
    member: &NewMember<'_>,
) -> Result<Result<DirectoryMember, &'static str>, Error> {
    let profile = encode_profile(Some(member.profile))?;
    let sql = format!(
        "INSERT INTO users ({}, status, deactivation_reason, created_at, updated_at, \
         directory_state, directory_user_name, directory_external_id, directory_profile) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), now(), 'LINKED', $12, $13, \
         $14) RETURNING {COLUMNS}, {DIRECTORY_COLUMNS}",
        users::NewUser::COLUMNS
    );
    let status = member.status.as_str();
    let mut params = member.user.params();
    params.extend([
        &status as &(dyn ToSql + Sync),
        &member.deactivation_reason,
        &member.user_name,
        &member.external_id,
        &profile,
    ]);
    query_one_unless_any_taken(client, &sql, &params, &KEYS, member_from_row).await
}

/// Where the member stands with the directory; `None` for never touched
/// (or no such member).
pub async fn state_of(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<DirectoryState>, Error> {
    let row = statements::query_opt(
        client,
        "SELECT directory_state FROM users WHERE workspace_id = $1 AND id = $2",
        &[&workspace_id, &id],
    )
    .await?;
    let state: Option<String> = row.map(|row| row.try_get(0)).transpose()?.flatten();
    Ok(state.as_deref().and_then(DirectoryState::parse))
}

/// Most members one listing counts.
pub const MAX_LISTED: i64 = 200;

/// The members matching every condition, oldest first, from the 0-based
/// `offset`; and how many match in all.
pub async fn list_members(
    client: &impl GenericClient,
    workspace_id: Uuid,
    conditions: &[Condition],
    offset: i64,
    limit: i64,
) -> Result<(Vec<DirectoryMember>, i64), Error> {
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(workspace_id)];
    let mut sql = String::from("workspace_id = $1 AND directory_state IS DISTINCT FROM 'DETACHED'");
    for condition in conditions {
        sql.push_str(" AND ");
        sql.push_str(&condition_sql(condition, &mut params));
    }
    // The total rides along with the page (one statement); only a page
    // past the end, which holds no row to carry it, counts on its own.
    let page_sql = format!(
        "SELECT {COLUMNS}, {DIRECTORY_COLUMNS}, count(*) OVER () AS matches FROM users WHERE {sql} \
         ORDER BY created_at, id LIMIT ${} OFFSET ${}",
        params.len() + 1,
        params.len() + 2
    );
    let mut values: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|value| value.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let filter_values = values.len();
    values.push(&limit);
    values.push(&offset);
    let rows = statements::query(client, &page_sql, &values).await?;
    let total: i64 = match rows.first() {
        Some(row) => row.try_get("matches")?,
        None if offset == 0 => 0,
        None => {
            let count_sql = format!("SELECT count(*) FROM users WHERE {sql}");
            statements::query_one(client, &count_sql, &values[..filter_values])
                .await?
                .try_get(0)?
        }
    };
    let members = rows
        .iter()
        .map(member_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((members, total))
}

/// One condition as SQL over `users`, its value bound in `params`. The
/// userName of a member no directory holds is its email.
fn condition_sql(condition: &Condition, params: &mut Vec<Box<dyn ToSql + Sync + Send>>) -> String {
    let (column, ignore_case) = match condition.attribute {
        FilterAttribute::UserName => ("lower(coalesce(directory_user_name, email))", true),
        FilterAttribute::ExternalId => ("directory_external_id", false),
        FilterAttribute::Email => ("email_normalized", true),
        FilterAttribute::DisplayName => ("lower(display_name)", true),
        FilterAttribute::Active => {
            let active = condition.value.eq_ignore_ascii_case("true");
            return match condition.operator {
                FilterOperator::Present => "true".into(),
                FilterOperator::NotEqual if active => "status <> 'ACTIVE'".into(),
                FilterOperator::NotEqual => "status = 'ACTIVE'".into(),
                _ if active => "status = 'ACTIVE'".into(),
                _ => "status <> 'ACTIVE'".into(),
            };
        }
    };
    let value = if ignore_case {
        condition.value.to_lowercase()
    } else {
        condition.value.clone()
    };
    let escaped = value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let (op, bound) = match condition.operator {
        FilterOperator::Equal => ("=", value),
        FilterOperator::NotEqual => ("IS DISTINCT FROM", value),
        FilterOperator::Contains => ("LIKE", format!("%{escaped}%")),
        FilterOperator::StartsWith => ("LIKE", format!("{escaped}%")),
        FilterOperator::EndsWith => ("LIKE", format!("%{escaped}")),
        FilterOperator::Present => return format!("{column} IS NOT NULL"),
    };
    params.push(Box::new(bound));
    format!("{column} {op} ${}", params.len())
}
