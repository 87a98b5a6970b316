//! The suppression list (`email_suppressions`): one row per normalized
//! address that no invitation email goes to, from any workspace.

use tokio_postgres::Row;
use uuid::Uuid;

use super::{GenericClient, Lock, execute, query_one, query_opt};
use crate::domain::{
    Error,
    suppression::{EmailSuppression, SuppressionCause},
};

const COLUMNS: &str = "email_normalized, cause, detail, created_at";

fn from_row(row: &Row) -> Result<EmailSuppression, Error> {
    Ok(EmailSuppression {
        email: row.try_get("email_normalized")?,
        cause: SuppressionCause::from_db(row.try_get("cause")?)?,
        detail: row.try_get("detail")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The suppression of `email_normalized`, if any, locked as `lock` says.
pub async fn get(
    client: &impl GenericClient,
    email_normalized: &str,
    lock: Lock,
) -> Result<Option<EmailSuppression>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM email_suppressions WHERE email_normalized = $1{}",
        lock.clause()
    );
    query_opt(client, &sql, &[&email_normalized], from_row).await
}

/// Why `email_normalized` is suppressed, if it is (no lock: a suppression
/// added meanwhile stops the next invitation, not this one).
pub async fn cause(
    client: &impl GenericClient,
    email_normalized: &str,
) -> Result<Option<SuppressionCause>, Error> {
    Ok(get(client, email_normalized, Lock::None)
        .await?
        .map(|suppression| suppression.cause))
}

/// Suppresses the address of the invitation `invitation_id` for a hard
/// bounce (`detail`: the mail server's reply), unless it is suppressed
/// already (an unsubscribe stays one). Whether a row was added.
pub async fn record_bounce(
    client: &impl GenericClient,
    workspace_id: Uuid,
    invitation_id: Uuid,
    detail: &str,
) -> Result<bool, Error> {
    let added = execute(
        client,
        "INSERT INTO email_suppressions \
             (email_normalized, cause, detail, workspace_id, invitation_id) \
         SELECT email_normalized, 'bounced', $3, workspace_id, id FROM invitations \
         WHERE workspace_id = $1 AND id = $2 \
         ON CONFLICT (email_normalized) DO NOTHING",
        &[&workspace_id, &invitation_id, &detail],
    )
    .await?;
    Ok(added == 1)
}

/// Suppresses `email_normalized` as unsubscribed, replacing a bounce; the
/// suppression as it now stands.
pub async fn unsubscribe(
    client: &impl GenericClient,
    email_normalized: &str,
    workspace_id: Uuid,
    invitation_id: Uuid,
) -> Result<EmailSuppression, Error> {
    let sql = format!(
        "INSERT INTO email_suppressions \
             (email_normalized, cause, detail, workspace_id, invitation_id) \
         VALUES ($1, 'unsubscribed', '', $2, $3) \
         ON CONFLICT (email_normalized) DO UPDATE SET cause = 'unsubscribed', detail = '', \
             workspace_id = $2, invitation_id = $3, created_at = now() \
         RETURNING {COLUMNS}"
    );
    query_one(
        client,
        &sql,
        &[&email_normalized, &workspace_id, &invitation_id],
        from_row,
    )
    .await
}

/// Removes the bounce suppression of `email_normalized`; an unsubscribe
/// stays. Whether one was removed.
pub async fn clear_bounce(
    client: &impl GenericClient,
    email_normalized: &str,
) -> Result<bool, Error> {
    let removed = execute(
        client,
        "DELETE FROM email_suppressions WHERE email_normalized = $1 AND cause = 'bounced'",
        &[&email_normalized],
    )
    .await?;
    Ok(removed == 1)
}
