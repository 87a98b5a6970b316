//! Invitations. A pending invitation past its expiry reads as EXPIRED
//! everywhere, through the one status expression below.

use time::{Duration, OffsetDateTime};
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;
use wowchat_platform::statements;

use super::{
    GenericClient, Lock, Table, pipeline::Write, query_one, query_one_unless_taken, query_opt,
};
use crate::domain::{
    Error,
    invitation::{DeliveryStatus, Invitation, InvitationStatus, TokenHash},
    locale::Locale,
    pagination::Window,
    suppression::SuppressionCause,
};

/// The unique index that keeps one pending invitation per email.
const ONE_PENDING: &str = "invitations_one_pending";

const STATUS: &str = "CASE WHEN status = 'PENDING' AND expires_at <= now() \
                      THEN 'EXPIRED' ELSE status END";

fn columns() -> String {
    format!(
        "id, workspace_id, email, role, reporting_to, inviter_id, message, {STATUS} AS status, \
         expires_at, created_at, updated_at, last_sent_at, resend_count, accepted_user_id, \
         delivery_status, delivery_failure_reason, access_expires_at, version, locale"
    )
}

/// Invitations, read by id with `INVITATIONS.get` (the one way to).
pub(crate) const INVITATIONS: Table<Invitation> = Table {
    name: "invitations",
    columns,
    read: from_row,
    shown: None,
};

fn from_row(row: &Row) -> Result<Invitation, Error> {
    Ok(Invitation {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        email: row.try_get("email")?,
        role: row.try_get("role")?,
        reporting_to: row.try_get("reporting_to")?,
        inviter_id: row.try_get("inviter_id")?,
        message: row.try_get("message")?,
        status: InvitationStatus::from_db(row.try_get("status")?)?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_sent_at: row.try_get("last_sent_at")?,
        resend_count: row.try_get("resend_count")?,
        accepted_user_id: row.try_get("accepted_user_id")?,
        delivery_status: DeliveryStatus::from_db(row.try_get("delivery_status")?)?,
        delivery_failure_reason: row.try_get("delivery_failure_reason")?,
        access_expires_at: row.try_get("access_expires_at")?,
        version: row.try_get("version")?,
        locale: Locale::from_tag_or_english(row.try_get("locale")?),
    })
}

/// An invitation about to be created.
pub struct NewInvitationRow<'a> {
    pub workspace_id: Uuid,
    pub id: Uuid,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub role: &'a str,
    pub reporting_to: Option<Uuid>,
    pub inviter_id: Uuid,
    pub message: &'a str,
    pub token_hash: TokenHash,
    pub valid_for: Duration,
    /// When the access of the user it makes ends; `None`: never.
    pub access_expires_at: Option<OffsetDateTime>,
    /// The invite link it came through.
    pub invite_link_id: Option<Uuid>,
    /// The outbox id of the mail command that sends it.
    pub mail_message_id: Uuid,
    /// The language of its email and page.
    pub locale: Locale,
}

/// What inviting an address must know first.
#[derive(Debug, Clone, Copy)]
pub struct Screening {
    /// A member of the workspace already has the email.
    pub already_a_member: bool,
    /// Why no invitation email may go to the address, if it is suppressed
    /// (the installation's list, `email_suppressions`).
    pub suppression: Option<SuppressionCause>,
}

/// Before inviting `email_normalized`: marks a pending-but-expired
/// invitation to it EXPIRED (it no longer holds the one-pending slot) and
/// answers whether a member already has that email and whether the address
/// is suppressed, in one statement.
pub async fn clear_stale_and_screen(
    client: &impl GenericClient,
    workspace_id: Uuid,
    email_normalized: &str,
) -> Result<Screening, Error> {
    let sql = "WITH expired AS (UPDATE invitations SET status = 'EXPIRED', updated_at = now() \
               WHERE workspace_id = $1 AND email_normalized = $2 AND status = 'PENDING' \
               AND expires_at <= now() RETURNING 1) \
               SELECT EXISTS (SELECT 1 FROM users WHERE workspace_id = $1 AND email_normalized = $2) \
                   AS member, \
               (SELECT cause FROM email_suppressions WHERE email_normalized = $2) AS suppression, \
               (SELECT count(*) FROM expired)";
    query_one(client, sql, &[&workspace_id, &email_normalized], |row| {
        let suppression: Option<&str> = row.try_get("suppression")?;
        Ok(Screening {
            already_a_member: row.try_get("member")?,
            suppression: suppression.map(SuppressionCause::from_db).transpose()?,
        })
    })
    .await
}

/// Creates the invitation at `now` (the transaction's time): the row as it
/// will read, and its insert, kept for the commit, which fails with
/// `pending()` when another invitation to that email is pending.
pub fn insert(
    new: &NewInvitationRow<'_>,
    now: OffsetDateTime,
    pending: fn() -> Error,
) -> (Invitation, Write) {
    let invitation = Invitation {
        reporting_to: new.reporting_to,
        message: new.message.to_owned(),
        access_expires_at: new.access_expires_at,
        locale: new.locale,
        ..Invitation::pending(
            new.id,
            new.workspace_id,
            new.inviter_id,
            new.email.to_owned(),
            new.role.to_owned(),
            now,
            new.valid_for,
        )
    };
    let write = Write::new(
        "INSERT INTO invitations (workspace_id, id, email, email_normalized, role, reporting_to, \
         inviter_id, message, status, token_hash, expires_at, last_sent_at, created_at, updated_at, \
         mail_message_id, access_expires_at, invite_link_id, locale) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'PENDING', $9, $10, $11, $11, $11, $12, $13, $14, \
         $15)",
        vec![
            Box::new(new.workspace_id),
            Box::new(new.id),
            Box::new(invitation.email.clone()),
            Box::new(new.email_normalized.to_owned()),
            Box::new(invitation.role.clone()),
            Box::new(new.reporting_to),
            Box::new(new.inviter_id),
            Box::new(invitation.message.clone()),
            Box::new(new.token_hash.0.to_vec()),
            Box::new(invitation.expires_at),
            Box::new(now),
            Box::new(new.mail_message_id),
            Box::new(new.access_expires_at),
            Box::new(new.invite_link_id),
            Box::new(new.locale.tag()),
        ],
    )
    .unless_taken(ONE_PENDING, pending);
    (invitation, write)
}

/// The invitation a token belongs to, in any workspace.
pub async fn find_by_token(
    client: &impl GenericClient,
    token_hash: TokenHash,
    lock: Lock,
) -> Result<Option<Invitation>, Error> {
    let sql = format!(
        "SELECT {} FROM invitations WHERE token_hash = $1{}",
        columns(),
        lock.clause()
    );
    query_opt(client, &sql, &[&token_hash.0.as_slice()], from_row).await
}

pub async fn mark_accepted(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    user_id: Uuid,
) -> Result<Invitation, Error> {
    let sql = format!(
        "UPDATE invitations SET status = 'ACCEPTED', accepted_user_id = $3, updated_at = now(), \
         version = version + 1 \
         WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    query_one(client, &sql, &[&workspace_id, &id, &user_id], from_row).await
}

pub async fn mark_revoked(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Invitation, Error> {
    let sql = format!(
        "UPDATE invitations SET status = 'REVOKED', updated_at = now(), version = version + 1 \
         WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    query_one(client, &sql, &[&workspace_id, &id], from_row).await
}

/// Replaces the token, renews the expiry and makes the invitation pending
/// again, its email queued; `None` when another invitation to that email is
/// pending.
pub async fn mark_resent(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    token_hash: TokenHash,
    valid_for: Duration,
    mail_message_id: Uuid,
) -> Result<Option<Invitation>, Error> {
    let sql = format!(
        "UPDATE invitations SET status = 'PENDING', token_hash = $3, \
         expires_at = now() + make_interval(secs => $4), last_sent_at = now(), \
         resend_count = resend_count + 1, updated_at = now(), version = version + 1, \
         delivery_status = 'QUEUED', delivery_failure_reason = NULL, mail_message_id = $5 \
         WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    let params: [&(dyn ToSql + Sync); 5] = [
        &workspace_id,
        &id,
        &token_hash.0.as_slice(),
        &valid_for.as_seconds_f64(),
        &mail_message_id,
    ];
    query_one_unless_taken(client, &sql, &params, ONE_PENDING, from_row).await
}

/// Records the mailer's result for the send `mail_message_id`; a result of
/// an older send (the invitation was resent since) changes nothing.
pub async fn record_delivery(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    mail_message_id: Uuid,
    status: DeliveryStatus,
    failure_reason: Option<&str>,
) -> Result<bool, Error> {
    let updated = statements::execute(client, "UPDATE invitations SET delivery_status = $4, delivery_failure_reason = $5, updated_at = now() \
             WHERE workspace_id = $1 AND id = $2 AND mail_message_id = $3", &[
                &workspace_id,
                &id,
                &mail_message_id,
                &status.as_str(),
                &failure_reason,
            ],
        )
        .await?;
    Ok(updated == 1)
}

/// The pending invitation to an email, locked as `lock` says.
pub async fn pending_for_email(
    client: &impl GenericClient,
    workspace_id: Uuid,
    email_normalized: &str,
    lock: Lock,
) -> Result<Option<Invitation>, Error> {
    let sql = format!(
        "SELECT {} FROM invitations WHERE workspace_id = $1 AND email_normalized = $2 \
         AND status = 'PENDING' AND expires_at > now(){}",
        columns(),
        lock.clause()
    );
    query_opt(client, &sql, &[&workspace_id, &email_normalized], from_row).await
}

/// Filters of `ListInvitations`; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct InvitationFilter {
    pub status: Option<InvitationStatus>,
    pub email_normalized: Option<String>,
}

/// One page of invitations, newest first, after `after`; and how many match in all.
pub async fn list(
    client: &impl GenericClient,
    workspace_id: Uuid,
    filter: &InvitationFilter,
    window: Window,
) -> Result<(Vec<Invitation>, i64), Error> {
    let status = filter.status.map(InvitationStatus::as_str);
    let filter_sql = format!(
        "workspace_id = $1 AND ($2::text IS NULL OR {STATUS} = $2) \
         AND ($3::text IS NULL OR email_normalized = $3)"
    );
    let params: [&(dyn ToSql + Sync); 3] = [&workspace_id, &status, &filter.email_normalized];
    INVITATIONS
        .newest_first(client, &filter_sql, &params, window)
        .await
}

/// Sets a pending invitation's role, manager, language and (when
/// `valid_for` is set) its expiry, counted from now.
pub async fn update(
    client: &impl GenericClient,
    workspace_id: Uuid,
    id: Uuid,
    role: &str,
    reporting_to: Option<Uuid>,
    valid_for: Option<Duration>,
    locale: Locale,
) -> Result<Invitation, Error> {
    let sql = format!(
        "UPDATE invitations SET role = $3, reporting_to = $4, \
         expires_at = COALESCE(now() + make_interval(secs => $5), expires_at), \
         locale = $6, updated_at = now(), version = version + 1 \
         WHERE workspace_id = $1 AND id = $2 RETURNING {}",
        columns()
    );
    let secs = valid_for.map(|d| d.as_seconds_f64());
    let tag = locale.tag();
    let params: [&(dyn ToSql + Sync); 6] = [&workspace_id, &id, &role, &reporting_to, &secs, &tag];
    query_one(client, &sql, &params, from_row).await
}
