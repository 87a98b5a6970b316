//! Inviting people (one at a time or in batches, within the workspace's
//! seat limit, allowed email domains and the invitation rate limits), and the
//! life of an invitation: update, resend, revoke, preview, accept.

use uuid::Uuid;

use super::{
    AppState, Page, PageRequest, Record, held_role, record, remember, replayed, requested_role,
};
use crate::{
    auth::{Caller, caller::confirm},
    domain::{
        Error, Reason,
        activity::{Action, FieldChange},
        invitation::{
            Invitation, InvitationStatus, InvitationToken, InvitationUpdate, NewInvitation,
        },
        pagination::{Cursor, filter_digest},
        permission::Permission,
        user::{AcceptInvitation, User, UserStatus},
        workspace::WorkspaceSettings,
    },
    events,
    store::{
        GenericClient,
        invitations::{self, InvitationFilter, NewInvitationRow},
        outbox, users, workspaces,
    },
};

fn already_member() -> Error {
    Error::AlreadyExists {
        reason: Reason::UserAlreadyMember,
        message: "a member of the workspace already has this email".into(),
    }
}

fn already_pending() -> Error {
    Error::AlreadyExists {
        reason: Reason::InvitationPending,
        message: "an invitation to this email is already pending".into(),
    }
}

/// Refuses one more pending invitation when the seats are taken; called
/// under the workspace lock.
async fn ensure_seat_free(
    client: &impl GenericClient,
    workspace_id: Uuid,
    settings: &WorkspaceSettings,
) -> Result<(), Error> {
    if settings.seat_limit == 0
        || settings.has_seat_for_one_more(workspaces::seats_used(client, workspace_id).await?)
    {
        Ok(())
    } else {
        Err(Error::precondition(
            Reason::SeatLimitReached,
            format!(
                "the workspace's {} seats are taken by active users and pending invitations",
                settings.seat_limit
            ),
        ))
    }
}

/// Refuses a manager who is not an active user of the workspace.
pub(super) async fn ensure_active_manager(
    client: &impl GenericClient,
    workspace_id: Uuid,
    manager_id: Uuid,
    field: &str,
) -> Result<(), Error> {
    match users::get(client, workspace_id, manager_id).await? {
        None => Err(Error::invalid_with(
            Reason::ReportingToNotFound,
            field,
            "no such user in this workspace",
        )),
        Some(manager) if manager.status != UserStatus::Active => Err(Error::precondition(
            Reason::ReportingToInactive,
            "the manager is deactivated",
        )),
        Some(_) => Ok(()),
    }
}

pub async fn invite(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    new: NewInvitation,
) -> Result<Invitation, Error> {
    caller.require(Permission::UsersInvite)?;
    let workspace_id = caller.workspace_id;

    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let key = new.idempotency.as_ref();
    if let Some(first) = replayed(&tx, caller, "InviteUser", key).await? {
        return Ok(first);
    }
    state.invite_limits.admit(workspace_id, caller.user_id)?;
    // Serializes the workspace's invitations, so concurrent ones cannot
    // overshoot the seat limit.
    workspaces::lock(&tx, workspace_id).await?;
    // The caller's role as of now, not as of authentication.
    let caller = &confirm(&tx, caller).await?;
    caller.require(Permission::UsersInvite)?;
    let role = requested_role(&tx, workspace_id, "role", &new.role).await?;
    caller.require_not_below(&role)?;
    if let Some(manager_id) = new.reporting_to {
        ensure_active_manager(&tx, workspace_id, manager_id, "reporting_to_user_id").await?;
    }
    let settings = workspaces::settings(&tx, workspace_id).await?;
    if !settings.allows_email(&new.email) {
        return Err(Error::precondition(
            Reason::EmailDomainNotAllowed,
            "the workspace does not allow invitations to this email domain",
        ));
    }
    if users::exists_with_email(&tx, workspace_id, new.email.normalized()).await? {
        return Err(already_member());
    }
    invitations::expire_stale(&tx, workspace_id, new.email.normalized()).await?;
    ensure_seat_free(&tx, workspace_id, &settings).await?;
    let token = InvitationToken::generate();
    let mail_message_id = Uuid::now_v7();
    let invitation = invitations::insert(
        &tx,
        &NewInvitationRow {
            workspace_id,
            id: Uuid::now_v7(),
            email: new.email.as_typed(),
            email_normalized: new.email.normalized(),
            role: &role.name,
            reporting_to: new.reporting_to,
            inviter_id: caller.user_id,
            message: &new.message,
            token_hash: token.hash(),
            valid_for: new.valid_for,
            mail_message_id,
        },
    )
    .await?
    .ok_or_else(already_pending)?;

    let mut changes = vec![
        FieldChange::new("email", "", &invitation.email),
        FieldChange::new("role", "", &invitation.role),
    ];
    if let Some(manager) = invitation.reporting_to {
        changes.push(FieldChange::new("reporting_to", "", manager));
    }
    record(
        &tx,
        Record {
            workspace_id,
            actor_id: Some(caller.user_id),
            action: Action::InvitationCreated,
            target_user_id: None,
            target_invitation_id: Some(invitation.id),
            changes,
            request_id,
        },
        events::invitation_created(&invitation, request_id),
    )
    .await?;
    let workspace_name = workspaces::name(&tx, workspace_id).await?;
    outbox::insert(
        &tx,
        &events::send_invitation_email(
            mail_message_id,
            &invitation,
            &token,
            &workspace_name,
            caller,
            request_id,
        ),
    )
    .await?;
    remember(&tx, caller, "InviteUser", key, &invitation).await?;
    tx.commit().await?;
    tracing::info!(invitation_id = %invitation.id, "invitation created");
    Ok(invitation)
}

/// Why an invitation in this state cannot be used (accepted, resent, ...).
fn refuse_closed(invitation: &Invitation) -> Result<(), Error> {
    match invitation.status {
        InvitationStatus::Pending => Ok(()),
        InvitationStatus::Accepted => Err(Error::precondition(
            Reason::InvitationAlreadyAccepted,
            "the invitation was already accepted",
        )),
        InvitationStatus::Revoked => Err(Error::precondition(
            Reason::InvitationRevoked,
            "the invitation was revoked",
        )),
        InvitationStatus::Expired => Err(Error::precondition(
            Reason::InvitationExpired,
            "the invitation has expired",
        )),
    }
}

pub async fn accept(
    state: &AppState,
    request_id: &str,
    accept: AcceptInvitation,
) -> Result<User, Error> {
    let token_hash = accept.token.hash();
    // Checked before hashing the password, so a bad token costs no hashing work.
    {
        let client = state.pool.get().await?;
        let found = invitations::find_by_token(&client, token_hash, false).await?;
        refuse_closed(&found.ok_or_else(Error::invitation_not_found)?)?;
    }
    let password_hash = state.hasher.hash(accept.password).await?;

    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    // Locked: of concurrent accepts of one token, the first wins and the rest see it accepted.
    let invitation = invitations::find_by_token(&tx, token_hash, true)
        .await?
        .ok_or_else(Error::invitation_not_found)?;
    refuse_closed(&invitation)?;
    let workspace_id = invitation.workspace_id;
    // A manager deactivated since the invitation was sent is not kept.
    let reporting_to = match invitation.reporting_to {
        Some(manager_id) => users::get(&tx, workspace_id, manager_id)
            .await?
            .filter(|m| m.status == UserStatus::Active)
            .map(|m| m.id),
        None => None,
    };
    let user = users::insert(
        &tx,
        &users::NewUser {
            workspace_id,
            id: Uuid::now_v7(),
            email: &invitation.email,
            email_normalized: &crate::domain::EmailAddress::normalize(&invitation.email),
            display_name: &accept.display_name,
            role: &invitation.role,
            reporting_to,
            password_hash: &password_hash,
        },
    )
    .await?
    .ok_or_else(already_member)?;
    let invitation = invitations::mark_accepted(&tx, workspace_id, invitation.id, user.id).await?;
    record(
        &tx,
        Record {
            workspace_id,
            actor_id: Some(user.id),
            action: Action::InvitationAccepted,
            target_user_id: Some(user.id),
            target_invitation_id: Some(invitation.id),
            changes: vec![FieldChange::new("status", "PENDING", "ACCEPTED")],
            request_id,
        },
        events::invitation_accepted(&invitation, &user, request_id),
    )
    .await?;
    if let Some(inviter) = users::get(&tx, workspace_id, invitation.inviter_id).await? {
        let workspace_name = workspaces::name(&tx, workspace_id).await?;
        outbox::insert(
            &tx,
            &events::send_invitation_accepted_email(
                &invitation,
                &user,
                &workspace_name,
                &inviter,
                request_id,
            ),
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(invitation_id = %invitation.id, user_id = %user.id, "invitation accepted");
    Ok(user)
}

pub async fn resend(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    invitation_id: Uuid,
    valid_for: time::Duration,
) -> Result<Invitation, Error> {
    caller.require(Permission::UsersInvite)?;
    let workspace_id = caller.workspace_id;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    // Before the invitation, in the order InviteUser takes them.
    workspaces::lock(&tx, workspace_id).await?;
    let current = invitations::get_for_update(&tx, workspace_id, invitation_id)
        .await?
        .ok_or_else(Error::invitation_not_found)?;
    if current.status != InvitationStatus::Expired {
        refuse_closed(&current)?;
    }
    let next_allowed = current.last_sent_at + state.resend_cooldown;
    let now = time::OffsetDateTime::now_utc();
    if now < next_allowed {
        return Err(Error::ResourceExhausted {
            reason: Reason::ResendCooldown,
            message: "the invitation was sent moments ago; try again later".into(),
            retry_after: (next_allowed - now).unsigned_abs(),
        });
    }
    if users::exists_with_email(
        &tx,
        workspace_id,
        &crate::domain::EmailAddress::normalize(&current.email),
    )
    .await?
    {
        return Err(already_member());
    }
    if current.status == InvitationStatus::Expired {
        // An expired invitation holds no seat; sent again, it takes one.
        let settings = workspaces::settings(&tx, workspace_id).await?;
        ensure_seat_free(&tx, workspace_id, &settings).await?;
    }
    let token = InvitationToken::generate();
    let mail_message_id = Uuid::now_v7();
    let invitation = invitations::mark_resent(
        &tx,
        workspace_id,
        invitation_id,
        token.hash(),
        valid_for,
        mail_message_id,
    )
    .await?
    .ok_or_else(already_pending)?;
    record(
        &tx,
        Record {
            workspace_id,
            actor_id: Some(caller.user_id),
            action: Action::InvitationResent,
            target_user_id: None,
            target_invitation_id: Some(invitation.id),
            changes: vec![FieldChange::new(
                "expire_time",
                rfc3339(current.expires_at),
                rfc3339(invitation.expires_at),
            )],
            request_id,
        },
        events::invitation_resent(&invitation, caller.user_id, request_id),
    )
    .await?;
    let workspace_name = workspaces::name(&tx, workspace_id).await?;
    outbox::insert(
        &tx,
        &events::send_invitation_email(
            mail_message_id,
            &invitation,
            &token,
            &workspace_name,
            caller,
            request_id,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(invitation)
}

/// Invites each row on its own (its own transaction, the rules and limits of
/// `invite`); a refused row does not stop the others. The results follow
/// the rows' order.
pub async fn batch_invite(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    rows: Vec<Result<NewInvitation, Error>>,
) -> Result<Vec<Result<Invitation, Error>>, Error> {
    caller.require(Permission::UsersInvite)?;
    let mut results = Vec::with_capacity(rows.len());
    for row in rows {
        results.push(match row {
            Ok(new) => invite(state, caller, request_id, new).await,
            Err(refused) => Err(refused),
        });
    }
    Ok(results)
}

/// Changes a pending invitation's role, manager or expiry, with the checks
/// of `invite`.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    update: InvitationUpdate,
) -> Result<Invitation, Error> {
    caller.require(Permission::UsersInvite)?;
    let workspace_id = caller.workspace_id;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let current = invitations::get_for_update(&tx, workspace_id, update.id)
        .await?
        .ok_or_else(Error::invitation_not_found)?;
    refuse_closed(&current)?;
    let caller = &confirm(&tx, caller).await?;
    caller.require(Permission::UsersInvite)?;
    // Nobody changes an invitation to a role above their own.
    caller.require_not_below(&held_role(&tx, workspace_id, &current.role).await?)?;
    let role = match &update.role {
        Some(name) => {
            let role = requested_role(&tx, workspace_id, "role", name).await?;
            caller.require_not_below(&role)?;
            role.name
        }
        None => current.role.clone(),
    };
    let reporting_to = match update.reporting_to {
        Some(Some(manager_id)) => {
            ensure_active_manager(&tx, workspace_id, manager_id, "reporting_to_user_id").await?;
            Some(manager_id)
        }
        Some(None) => None,
        None => current.reporting_to,
    };
    let invitation = invitations::update(
        &tx,
        workspace_id,
        current.id,
        &role,
        reporting_to,
        update.valid_for,
    )
    .await?;

    let id_text = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    let mut changes = Vec::new();
    if invitation.role != current.role {
        changes.push(FieldChange::new("role", &current.role, &invitation.role));
    }
    if invitation.reporting_to != current.reporting_to {
        changes.push(FieldChange::new(
            "reporting_to",
            id_text(current.reporting_to),
            id_text(invitation.reporting_to),
        ));
    }
    if invitation.expires_at != current.expires_at {
        changes.push(FieldChange::new(
            "expire_time",
            rfc3339(current.expires_at),
            rfc3339(invitation.expires_at),
        ));
    }
    record(
        &tx,
        Record {
            workspace_id,
            actor_id: Some(caller.user_id),
            action: Action::InvitationUpdated,
            target_user_id: None,
            target_invitation_id: Some(invitation.id),
            changes: changes.clone(),
            request_id,
        },
        events::invitation_updated(&invitation, caller.user_id, &changes, request_id),
    )
    .await?;
    tx.commit().await?;
    Ok(invitation)
}

/// What an accept page shows about an invitation.
pub struct InvitationPreview {
    pub invitation: Invitation,
    pub workspace_name: String,
    /// Empty when the inviter is no longer found.
    pub inviter_display_name: String,
}

/// The invitation of a token, for the accept page. A malformed or unknown
/// token is INVITATION_NOT_FOUND and nothing more; a closed invitation
/// gives the reasons `accept` gives.
pub async fn preview(
    state: &AppState,
    token: Option<InvitationToken>,
) -> Result<InvitationPreview, Error> {
    let token = token.ok_or_else(Error::invitation_not_found)?;
    let client = state.pool.get().await?;
    let invitation = invitations::find_by_token(&client, token.hash(), false)
        .await?
        .ok_or_else(Error::invitation_not_found)?;
    refuse_closed(&invitation)?;
    let workspace_name = workspaces::name(&client, invitation.workspace_id).await?;
    let inviter_display_name = users::get(&client, invitation.workspace_id, invitation.inviter_id)
        .await?
        .map(|inviter| inviter.display_name)
        .unwrap_or_default();
    Ok(InvitationPreview {
        invitation,
        workspace_name,
        inviter_display_name,
    })
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    invitation_id: Uuid,
) -> Result<Invitation, Error> {
    caller.require(Permission::UsersInvite)?;
    let workspace_id = caller.workspace_id;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let current = invitations::get_for_update(&tx, workspace_id, invitation_id)
        .await?
        .ok_or_else(Error::invitation_not_found)?;
    match current.status {
        InvitationStatus::Revoked => return Ok(current),
        InvitationStatus::Accepted => refuse_closed(&current)?,
        InvitationStatus::Pending | InvitationStatus::Expired => {}
    }
    let invitation = invitations::mark_revoked(&tx, workspace_id, invitation_id).await?;
    record(
        &tx,
        Record {
            workspace_id,
            actor_id: Some(caller.user_id),
            action: Action::InvitationRevoked,
            target_user_id: None,
            target_invitation_id: Some(invitation.id),
            changes: vec![FieldChange::new(
                "status",
                current.status.as_str(),
                "REVOKED",
            )],
            request_id,
        },
        events::invitation_revoked(&invitation, caller.user_id, request_id),
    )
    .await?;
    tx.commit().await?;
    Ok(invitation)
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    invitation_id: Uuid,
) -> Result<Invitation, Error> {
    caller.require(Permission::UsersInvite)?;
    let client = state.pool.get().await?;
    invitations::get(&client, caller.workspace_id, invitation_id)
        .await?
        .ok_or_else(Error::invitation_not_found)
}

pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: InvitationFilter,
    page: PageRequest,
) -> Result<Page<Invitation>, Error> {
    caller.require(Permission::UsersInvite)?;
    let filters = filter_digest(&format!("invitations|{filter:?}"));
    let after = page.cursor(filters)?;
    let client = state.pool.get().await?;
    let (items, total) =
        invitations::list(&client, caller.workspace_id, &filter, after, page.size + 1).await?;
    Ok(page.page(items, total, filters, |i| Cursor {
        time: i.created_at,
        id: i.id,
    }))
}
