//! Inviting people (one at a time or in batches, within the workspace's
//! seat limit, allowed email domains and the invitation rate limits), and the
//! life of an invitation: update, resend, revoke, preview, accept.

use std::net::IpAddr;

use uuid::Uuid;

use super::{
    AppState, Reads, Record,
    invitation_policy::{recipient_refused, sends_refused},
    limits::Take,
    rules::{ensure_active_manager, ensure_seat_free},
    suppressions::{refuse_suppressed, unsubscribe_token},
    unit_of_work::{
        self, Begun, FirstLock, Limits, Mutation, Outcome, Recorded, Target, UnitOfWork, Work,
        retrying,
    },
};
use crate::{
    auth::Caller,
    domain::{
        Error, Reason,
        activity::{Action, FieldChange},
        invitation::{
            Invitation, InvitationStatus, InvitationToken, InvitationUpdate, NewInvitation,
            TokenHash,
        },
        permission::Permission,
        user::{AcceptInvitation, User, UserStatus},
    },
    events,
    store::{
        GenericClient, Lock,
        invitations::{self, InvitationFilter, NewInvitationRow, Screening},
        invite_links,
        pipeline::PipelinedTransaction,
        roles, suppressions, users, workspaces,
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

pub async fn invite(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    new: NewInvitation,
) -> Result<Invitation, Error> {
    invite_via(state, caller, request_id, new, None).await
}

/// Invites as `caller`; through an invite link (`link_id`), taking one of
/// its uses in the same transaction, so a refused invitation gives it back.
pub(super) async fn invite_via(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    new: NewInvitation,
    link_id: Option<Uuid>,
) -> Result<Invitation, Error> {
    let new = &new;
    // A caller without the permission takes no unit of anyone's limits.
    caller.require(Permission::UsersInvite)?;
    let email = new.email.normalized();
    let recipient = state
        .invitations
        .recipient_takes(&state.limits, email)
        .await?;
    // The address's own limit last, in the same statement: the inviter's
    // and the workspace's are asked first.
    let mut takes = state
        .invitations
        .send_takes(&state.limits, caller.workspace_id, caller.user_id)
        .await?;
    takes.extend(recipient.iter().cloned());
    let mutation = Mutation::new("InviteUser", Permission::UsersInvite, request_id)
        .idempotent(new.idempotency.as_ref())
        // Invitations run side by side; with a seat limit they take turns,
        // so concurrent ones cannot overshoot it.
        .locking(FirstLock::Seats)
        // Sent with BEGIN: no round trip of its own.
        .limited(Limits {
            takes: &takes,
            refused: sends_refused,
        });
    let workspace_id = caller.workspace_id;
    // Whether a member has that email, and whether the address is
    // suppressed, are asked in one statement beside the beginning (under
    // the workspace lock), which saves InviteUser a round trip.
    let invited = retrying(|| async move {
        let tx = PipelinedTransaction::new(state.connection().await?);
        let (begun, screening) = tokio::join!(
            unit_of_work::begin(&tx, caller, mutation),
            invitations::clear_stale_and_screen(tx.client(), workspace_id, email),
        );
        let work = match begun? {
            Begun::Fresh(opened) => opened.with(state, tx),
            Begun::Replayed(first) => return Ok(first),
        };
        let screening = screening?;
        if let Some(link_id) = link_id {
            invite_links::take_use(work.tx(), workspace_id, link_id)
                .await?
                .ok_or_else(Error::invite_link_not_found)?;
        }
        let (invitation, recorded) =
            create_invitation(state, &work, new, link_id, screening).await?;
        work.finish(Outcome::Changed(invitation, recorded)).await
    })
    .await;
    let invitation = match invited {
        Err(refused @ Error::ResourceExhausted { .. }) => {
            return Err(name_recipient_refusal(state, refused, &recipient).await);
        }
        other => other?,
    };
    tracing::info!(invitation_id = %invitation.id, "invitation created");
    Ok(invitation)
}

/// A send refused by its rate limits as the address's own refusal when the
/// address's limit is the one spent (it is asked last, so a refusal is
/// its own or an earlier one's: only a refusal pays for this read).
async fn name_recipient_refusal(state: &AppState, refused: Error, recipient: &[Take]) -> Error {
    let Error::ResourceExhausted {
        reason: Reason::InvitationRateLimited,
        retry_after,
        ..
    } = refused
    else {
        return refused;
    };
    let Some(take) = recipient.first() else {
        return refused;
    };
    match state.limits.exhausted(take).await {
        Ok(true) => recipient_refused(retry_after),
        // Unknown: the refusal stands as it was.
        Ok(false) | Err(_) => refused,
    }
}

/// Creates and sends an invitation inside `work` with every rule of
/// InviteUser: the role not above the caller's, an active manager, the
/// allowed domains, not a member yet and an address not suppressed
/// (`screening`, asked under the workspace lock), a free seat, one pending
/// invitation per email.
pub(super) async fn create_invitation(
    state: &AppState,
    work: &Work<'_>,
    new: &NewInvitation,
    link_id: Option<Uuid>,
    screening: Screening,
) -> Result<(Invitation, Recorded), Error> {
    let workspace_id = work.workspace_id();
    let role = work.grantable_role("role", &new.role).await?;
    if let Some(manager_id) = new.reporting_to {
        ensure_active_manager(work.tx(), workspace_id, manager_id, "reporting_to_user_id").await?;
    }
    let settings = work.settings().await?;
    if !settings.allows_email(&new.email) {
        return Err(Error::precondition(
            Reason::EmailDomainNotAllowed,
            "the workspace does not allow invitations to this email domain",
        ));
    }
    if screening.already_a_member {
        return Err(already_member());
    }
    refuse_suppressed(screening.suppression)?;
    ensure_seat_free(work.tx(), workspace_id, &settings).await?;
    // The language asked for, else the workspace's default.
    let locale = new.locale.unwrap_or(settings.default_locale);
    let token = InvitationToken::generate();
    let mail_message_id = Uuid::now_v7();
    let (invitation, insert) = invitations::insert(
        &NewInvitationRow {
            workspace_id,
            id: Uuid::now_v7(),
            email: new.email.as_typed(),
            email_normalized: new.email.normalized(),
            role: &role.name,
            reporting_to: new.reporting_to,
            inviter_id: work.caller.user_id,
            message: &new.message,
            token_hash: token.hash(),
            valid_for: new.valid_for,
            access_expires_at: new.access_expires_at,
            invite_link_id: link_id,
            mail_message_id,
            locale,
        },
        work.now().await?,
        already_pending,
    );
    work.write_at_commit(insert);

    let mut changes = vec![
        FieldChange::new("email", "", &invitation.email),
        FieldChange::new("role", "", &invitation.role),
    ];
    if let Some(manager) = invitation.reporting_to {
        changes.push(FieldChange::new("reporting_to", "", manager));
    }
    if let Some(link_id) = link_id {
        changes.push(FieldChange::new("invite_link_id", "", link_id));
    }
    let recorded = work.record(
        Action::InvitationCreated,
        Target::Invitation(invitation.id),
        changes,
        events::invitation_created(&invitation, work.request_id),
    )?;
    send_invitation_email(state, work, &invitation, &token, mail_message_id).await?;
    Ok((invitation, recorded))
}

/// Queues the email that carries the token, on the mailer's own route.
async fn send_invitation_email(
    state: &AppState,
    work: &Work<'_>,
    invitation: &Invitation,
    token: &InvitationToken,
    mail_message_id: Uuid,
) -> Result<(), Error> {
    let workspace_name = work.workspace_name().await?;
    work.send(events::send_invitation_email(
        mail_message_id,
        invitation,
        token,
        state.mail_tokens.as_deref(),
        &workspace_name,
        &work.caller,
        unsubscribe_token(state, work.tx(), invitation).await?,
        work.request_id,
    )?);
    Ok(())
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

/// Refuses an invitation whose inviter could not send it today: no longer
/// an active user holding `users.invite` and a role not below the invited
/// one. So a deactivated or demoted inviter's pending invitations stop
/// working at once, and start again if the inviter is restored. Returns
/// the inviter (share-locked under `lock`).
async fn ensure_inviter_still_may(
    client: &impl GenericClient,
    invitation: &Invitation,
    lock: Lock,
) -> Result<User, Error> {
    let refused = || {
        Error::precondition(
            Reason::InviterNotAuthorized,
            "the person who sent this invitation can no longer invite; ask for a new invitation",
        )
    };
    let workspace_id = invitation.workspace_id;
    let inviter = users::USERS
        .get(client, workspace_id, invitation.inviter_id, lock)
        .await?
        .filter(|inviter| inviter.status == UserStatus::Active)
        .ok_or_else(refused)?;
    let inviter_role = roles::held(client, workspace_id, &inviter.role, lock).await?;
    let invited_role = roles::held(client, workspace_id, &invitation.role, Lock::None).await?;
    if !inviter_role.permissions.contains(Permission::UsersInvite)
        || invited_role.is_above(&inviter_role)
    {
        return Err(refused());
    }
    Ok(inviter)
}

/// A token's invitation as far as a person holding it may use it.
async fn usable_invitation(
    client: &impl GenericClient,
    token: TokenHash,
    lock: Lock,
) -> Result<(Invitation, User), Error> {
    let invitation = invitations::find_by_token(client, token, lock)
        .await?
        .ok_or_else(Error::invitation_not_found)?;
    refuse_closed(&invitation)?;
    let inviter = ensure_inviter_still_may(client, &invitation, lock_inviter(lock)).await?;
    Ok((invitation, inviter))
}

/// The inviter is share-locked whenever the invitation is locked: a
/// concurrent deactivation waits for the acceptance, or is seen by it.
fn lock_inviter(lock: Lock) -> Lock {
    match lock {
        Lock::None => Lock::None,
        Lock::Share | Lock::Update => Lock::Share,
    }
}

pub async fn accept(
    state: &AppState,
    request_id: &str,
    accept: AcceptInvitation,
    client_address: Option<IpAddr>,
) -> Result<User, Error> {
    let token_hash = accept.token.hash();
    // Checked before hashing the password, so a bad token costs no hashing work.
    {
        let client = state.connection().await?;
        state
            .invitations
            .admit_attempt(&state.limits, &client, token_hash, client_address)
            .await?;
        usable_invitation(&client, token_hash, Lock::None).await?;
    }
    let password_hash = state.hasher.hash(accept.password).await?;

    let (password_hash, display_name) = (&password_hash, &accept.display_name);
    let (invitation, user) = retrying(|| async move {
        let unit = UnitOfWork::begin(state).await?;
        let tx = unit.tx();
        // Locked: of concurrent accepts of one token, the first wins and the rest see it accepted.
        let (invitation, inviter) = usable_invitation(tx, token_hash, Lock::Update).await?;
        let workspace_id = invitation.workspace_id;
        if crate::domain::user::access_ended(
            invitation.access_expires_at,
            time::OffsetDateTime::now_utc(),
        ) {
            return Err(Error::precondition(
                Reason::UserAccessExpired,
                "the access this invitation grants has already ended; ask for a new invitation",
            ));
        }
        // A manager deactivated since the invitation was sent is not kept.
        let reporting_to = match invitation.reporting_to {
            Some(manager_id) => users::USERS
                .get(tx, workspace_id, manager_id, Lock::None)
                .await?
                .filter(|m| m.status == UserStatus::Active)
                .map(|m| m.id),
            None => None,
        };
        let user = users::insert(
            tx,
            &users::NewUser {
                workspace_id,
                id: Uuid::now_v7(),
                email: &invitation.email,
                email_normalized: &crate::domain::EmailAddress::normalize(&invitation.email),
                display_name,
                role: &invitation.role,
                reporting_to,
                password_hash,
                access_expires_at: invitation.access_expires_at,
            },
        )
        .await?
        .ok_or_else(already_member)?;
        let invitation =
            invitations::mark_accepted(tx, workspace_id, invitation.id, user.id).await?;
        // The new member accepted: they are the actor.
        let recorded = unit.record(
            Record {
                workspace_id,
                actor_id: Some(user.id),
                actor_directory_token_id: None,
                action: Action::InvitationAccepted,
                target_user_id: Some(user.id),
                target_invitation_id: Some(invitation.id),
                changes: vec![FieldChange::new("status", "PENDING", "ACCEPTED")],
                request_id,
            },
            events::invitation_accepted(&invitation, &user, request_id),
        )?;
        // The inviter is told in the workspace's language.
        let (workspace_name, locale) = workspaces::name_and_locale(tx, workspace_id).await?;
        unit.send(events::send_invitation_accepted_email(
            &invitation,
            &user,
            &workspace_name,
            &inviter,
            locale,
            request_id,
        ));
        unit.finish(Outcome::Changed((invitation, user), recorded))
            .await
    })
    .await?;
    tracing::info!(invitation_id = %invitation.id, user_id = %user.id, "invitation accepted");
    Ok(user)
}

/// Sends the invitation again with a new token and a renewed expiry. It
/// counts towards the sending limits, waits out the cooldown, and one
/// invitation is sent at most the configured number of times.
pub async fn resend(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    invitation_id: Uuid,
    valid_for: time::Duration,
    expected_version: Option<i64>,
) -> Result<Invitation, Error> {
    let mutation = Mutation::new("ResendInvitation", Permission::UsersInvite, request_id)
        // An expired invitation sent again takes a seat.
        .locking(FirstLock::Seats);
    unit_of_work::run(state, caller, mutation, |work| async move {
        let workspace_id = work.workspace_id();
        let current = work.invitation(invitation_id).await?;
        Error::unless_current(expected_version, current.version, "invitation")?;
        if current.status != InvitationStatus::Expired {
            refuse_closed(&current)?;
        }
        let next_allowed = current.last_sent_at + state.invitations.resend_cooldown;
        let now = time::OffsetDateTime::now_utc();
        if now < next_allowed {
            return Err(Error::ResourceExhausted {
                reason: Reason::ResendCooldown,
                message: "the invitation was sent moments ago; try again later".into(),
                retry_after: (next_allowed - now).unsigned_abs(),
            });
        }
        state
            .invitations
            .ensure_may_send_again(1 + i64::from(current.resend_count))?;
        let email = crate::domain::EmailAddress::normalize(&current.email);
        let takes = state
            .invitations
            .send_takes(&state.limits, workspace_id, work.caller.user_id)
            .await?;
        // Sent together: one round trip.
        let (sends, admitted, suppression) = tokio::join!(
            state.limits.take(work.tx(), &takes),
            state
                .invitations
                .admit_recipient(&state.limits, work.tx(), &email),
            suppressions::cause(work.tx(), &email),
        );
        sends?.map_err(sends_refused)?;
        admitted?;
        refuse_suppressed(suppression?)?;
        if users::exists_with_email(work.tx(), workspace_id, &email).await? {
            return Err(already_member());
        }
        if current.status == InvitationStatus::Expired {
            // An expired invitation holds no seat; sent again, it takes one.
            ensure_seat_free(work.tx(), workspace_id, &work.settings().await?).await?;
        }
        let token = InvitationToken::generate();
        let mail_message_id = Uuid::now_v7();
        let invitation = invitations::mark_resent(
            work.tx(),
            workspace_id,
            invitation_id,
            token.hash(),
            valid_for,
            mail_message_id,
        )
        .await?
        .ok_or_else(already_pending)?;
        let recorded = work.record(
            Action::InvitationResent,
            Target::Invitation(invitation.id),
            vec![FieldChange::new(
                "expire_time",
                rfc3339(current.expires_at),
                rfc3339(invitation.expires_at),
            )],
            events::invitation_resent(&invitation, work.caller.user_id, request_id),
        )?;
        send_invitation_email(state, &work, &invitation, &token, mail_message_id).await?;
        work.finish(Outcome::Changed(invitation, recorded)).await
    })
    .await
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

/// Changes a pending invitation's role, manager, expiry or language, with
/// the checks of `invite`.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    update: InvitationUpdate,
) -> Result<Invitation, Error> {
    let update = &update;
    let mutation = Mutation::new("UpdateInvitation", Permission::UsersInvite, request_id);
    unit_of_work::run(state, caller, mutation, |work| async move {
        let workspace_id = work.workspace_id();
        // Nobody changes an invitation to a role above their own.
        let current = work.invitation(update.id).await?;
        Error::unless_current(update.expected_version, current.version, "invitation")?;
        refuse_closed(&current)?;
        let role = match &update.role {
            Some(name) => work.grantable_role("role", name).await?.name,
            None => current.role.clone(),
        };
        let reporting_to = match update.reporting_to {
            Some(Some(manager_id)) => {
                ensure_active_manager(work.tx(), workspace_id, manager_id, "reporting_to_user_id")
                    .await?;
                Some(manager_id)
            }
            Some(None) => None,
            None => current.reporting_to,
        };
        let invitation = invitations::update(
            work.tx(),
            workspace_id,
            current.id,
            &role,
            reporting_to,
            update.valid_for,
            update.locale.unwrap_or(current.locale),
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
        if invitation.locale != current.locale {
            changes.push(FieldChange::new(
                "locale",
                current.locale.tag(),
                invitation.locale.tag(),
            ));
        }
        let event =
            events::invitation_updated(&invitation, work.caller.user_id, &changes, request_id);
        let recorded = work.record(
            Action::InvitationUpdated,
            Target::Invitation(invitation.id),
            changes,
            event,
        )?;
        work.finish(Outcome::Changed(invitation, recorded)).await
    })
    .await
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
    client_address: Option<IpAddr>,
) -> Result<InvitationPreview, Error> {
    let token = token.ok_or_else(Error::invitation_not_found)?;
    let client = state.connection().await?;
    state
        .invitations
        .admit_attempt(&state.limits, &client, token.hash(), client_address)
        .await?;
    let (invitation, inviter) = usable_invitation(&client, token.hash(), Lock::None).await?;
    let workspace_name = workspaces::name(&client, invitation.workspace_id).await?;
    Ok(InvitationPreview {
        invitation,
        workspace_name,
        inviter_display_name: inviter.display_name,
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
    expected_version: Option<i64>,
) -> Result<Invitation, Error> {
    let mutation = Mutation::new("RevokeInvitation", Permission::UsersInvite, request_id);
    unit_of_work::run(state, caller, mutation, |work| async move {
        let current = work.invitation(invitation_id).await?;
        Error::unless_current(expected_version, current.version, "invitation")?;
        match current.status {
            InvitationStatus::Revoked => return work.finish(Outcome::Unchanged(current)).await,
            InvitationStatus::Accepted => refuse_closed(&current)?,
            InvitationStatus::Pending | InvitationStatus::Expired => {}
        }
        let invitation =
            invitations::mark_revoked(work.tx(), work.workspace_id(), invitation_id).await?;
        let recorded = work.record(
            Action::InvitationRevoked,
            Target::Invitation(invitation.id),
            vec![FieldChange::new(
                "status",
                current.status.as_str(),
                "REVOKED",
            )],
            events::invitation_revoked(&invitation, work.caller.user_id, request_id),
        )?;
        work.finish(Outcome::Changed(invitation, recorded)).await
    })
    .await
}

/// How GetInvitation and ListInvitations read invitations.
pub(crate) const READS: Reads<Invitation, InvitationFilter> = Reads {
    permission: Permission::UsersInvite,
    table: &invitations::INVITATIONS,
    not_found: Error::invitation_not_found,
    list: |c, w, filter, window| Box::pin(invitations::list(c, w, filter, window)),
};
