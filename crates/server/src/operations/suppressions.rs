//! The suppression list: an address whose invitation email bounced for good,
//! or whose owner unsubscribed, gets no invitation email from any workspace
//! (InviteUser, BatchInviteUsers, ResendInvitation, an approved join
//! request, an invite link or a verified domain). An administrator reads a
//! suppression and clears a bounce; an unsubscribe is the recipient's own
//! choice and nobody else clears it.

use time::OffsetDateTime;

use super::{
    AppState, Record,
    unit_of_work::{self, Mutation, Outcome, Target, UnitOfWork, retrying},
};
use crate::{
    auth::Caller,
    domain::{
        EmailAddress, Error, Reason,
        activity::{Action, FieldChange},
        idempotency::IdempotencyKey,
        invitation::Invitation,
        permission::Permission,
        suppression::{EmailSuppression, SuppressionCause, Unsubscription},
    },
    events,
    store::{GenericClient, Lock, suppressions},
};

/// Refuses an invitation email to an address suppressed for `cause`.
pub fn refuse_suppressed(cause: Option<SuppressionCause>) -> Result<(), Error> {
    match cause {
        Some(cause) => Err(Error::RecipientSuppressed(cause)),
        None => Ok(()),
    }
}

/// The token of the unsubscribe link of `invitation`'s email, sent now,
/// by a change holding `client`.
pub async fn unsubscribe_token(
    state: &AppState,
    client: &impl GenericClient,
    invitation: &Invitation,
) -> Result<String, Error> {
    let key = state.limits.unsubscribe_key(client).await?;
    Ok(Unsubscription::token(
        &key,
        &invitation.email,
        invitation.workspace_id,
        invitation.id,
        OffsetDateTime::now_utc(),
    ))
}

fn not_suppressed() -> Error {
    Error::not_found(
        Reason::EmailSuppressionNotFound,
        "invitation emails to this address are not suppressed",
    )
}

/// Whether and why invitation emails to `email` are suppressed.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    email: &EmailAddress,
) -> Result<EmailSuppression, Error> {
    caller.require(Permission::UsersInvite)?;
    let client = state.connection().await?;
    suppressions::get(&client, email.normalized(), Lock::None)
        .await?
        .ok_or_else(not_suppressed)
}

/// Clears the bounce suppression of `email`: answers the suppression it
/// cleared, none when the address was not suppressed. An unsubscribe is
/// refused (RECIPIENT_UNSUBSCRIBED) and stays.
pub async fn clear(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    email: &EmailAddress,
    idempotency: Option<&IdempotencyKey>,
) -> Result<Option<EmailSuppression>, Error> {
    let mutation = Mutation::new("ClearEmailSuppression", Permission::UsersInvite, request_id)
        .idempotent(idempotency);
    let cleared = unit_of_work::run(state, caller, mutation, |work| async move {
        let email = email.normalized();
        let Some(current) = suppressions::get(work.tx(), email, Lock::Update).await? else {
            return work.finish(Outcome::Unchanged(None)).await;
        };
        if current.cause == SuppressionCause::Unsubscribed {
            return Err(Error::precondition(
                Reason::RecipientUnsubscribed,
                "the owner of this address unsubscribed from WowChat invitation emails: that \
                 is their choice, and no administrator can clear it",
            ));
        }
        suppressions::clear_bounce(work.tx(), email).await?;
        let recorded = work.record(
            Action::EmailSuppressionCleared,
            Target::Workspace,
            vec![
                FieldChange::new("email", "", email),
                FieldChange::new("suppression", current.cause, ""),
            ],
            events::email_suppression_changed(
                work.workspace_id(),
                Action::EmailSuppressionCleared,
                &current,
                Some(work.caller.user_id),
                None,
                request_id,
            ),
        )?;
        work.finish(Outcome::Changed(Some(current), recorded)).await
    })
    .await?;
    if cleared.is_some() {
        tracing::info!("email suppression cleared");
    }
    Ok(cleared)
}

/// Suppresses the address of an unsubscribe `token` for every workspace,
/// with an activity entry in the workspace its email came from; answers
/// the address. A bad token is INVALID_UNSUBSCRIBE_TOKEN and changes
/// nothing; unsubscribing again changes nothing.
pub async fn unsubscribe(state: &AppState, request_id: &str, token: &str) -> Result<String, Error> {
    let key = {
        let client = state.connection().await?;
        state.limits.unsubscribe_key(&client).await?
    };
    let unsubscription = Unsubscription::verify(&key, token, OffsetDateTime::now_utc())?;
    let unsubscription = &unsubscription;
    let changed = retrying(|| async move {
        let unit = UnitOfWork::begin(state).await?;
        let tx = unit.tx();
        let email = unsubscription.email.as_str();
        let before = suppressions::get(tx, email, Lock::Update).await?;
        if before
            .as_ref()
            .is_some_and(|s| s.cause == SuppressionCause::Unsubscribed)
        {
            return unit.finish(Outcome::Unchanged(false)).await;
        }
        let (workspace_id, invitation_id) =
            (unsubscription.workspace_id, unsubscription.invitation_id);
        let suppression = suppressions::unsubscribe(tx, email, workspace_id, invitation_id).await?;
        let old = before.map(|s| s.cause.as_str()).unwrap_or_default();
        let recorded = unit.record(
            Record {
                workspace_id,
                // The recipient is nobody in the workspace.
                actor_id: None,
                actor_directory_token_id: None,
                action: Action::EmailUnsubscribed,
                target_user_id: None,
                target_invitation_id: Some(invitation_id),
                changes: vec![
                    FieldChange::new("email", "", email),
                    FieldChange::new("suppression", old, SuppressionCause::Unsubscribed),
                ],
                request_id,
            },
            events::email_suppression_changed(
                workspace_id,
                Action::EmailUnsubscribed,
                &suppression,
                None,
                Some(invitation_id),
                request_id,
            ),
        )?;
        unit.finish(Outcome::Changed(true, recorded)).await
    })
    .await?;
    if changed {
        tracing::info!(
            workspace_id = %unsubscription.workspace_id,
            invitation_id = %unsubscription.invitation_id,
            "unsubscribed from invitation emails"
        );
    }
    Ok(unsubscription.email.clone())
}
