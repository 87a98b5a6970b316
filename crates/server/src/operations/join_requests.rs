//! Requests to join: a stranger asks (directly, in a workspace that takes
//! requests, or through an invite link that requires approval), confirms
//! through the email sent to the address, and only then does an
//! administrator see the request, approve it (which sends an ordinary
//! invitation) or deny it.
//!
//! A stranger's answer is the same whatever happens: an unknown workspace,
//! one that takes no requests, an address already a member, invited,
//! recently denied, or over its email limit, and a workspace at its cap of
//! open requests all answer OK and send nothing.

use std::net::IpAddr;

use uuid::Uuid;

use super::{
    AppState, Reads, Record,
    invitation_policy::sends_refused,
    invitations::create_invitation,
    unit_of_work::{
        self, FirstLock, Limits, Mutation, Outcome, Target, UnitOfWork, Work, retrying,
    },
};
use crate::{
    auth::Caller,
    domain::{
        EmailAddress, Error, Reason,
        activity::{Action, FieldChange},
        idempotency::IdempotencyKey,
        invitation::{Invitation, InvitationToken, NewInvitation, Validity},
        joining::{
            CONFIRMATION_VALIDITY, DECISION_VALIDITY, InviteLink, JoinRequest, JoinRequestStatus,
            NewJoinRequest,
        },
        mail_domain::MailDomain,
        permission::Permission,
    },
    events,
    store::{
        Lock, invitations, invite_links,
        join_requests::{self, NewRequestRow},
        workspaces,
    },
};

/// A direct request (CreateJoinRequest): counted against the address's
/// limit, then made if the workspace takes requests.
pub async fn create(
    state: &AppState,
    request_id: &str,
    new: NewJoinRequest,
    client_address: Option<IpAddr>,
) -> Result<(), Error> {
    {
        let client = state.connection().await?;
        state
            .joining
            .admit(&state.limits, &client, client_address, None)
            .await?;
    }
    ask(state, request_id, new, Source::Direct).await
}

/// Where a request comes from.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// CreateJoinRequest: only to a workspace that takes requests.
    Direct,
    /// An invite link that requires approval: takes one of its uses, and
    /// proposes its role.
    Link(&'a InviteLink),
    /// An address at a verified domain in `SUGGEST` mode: proposes the
    /// domain's default role.
    Domain(&'a MailDomain),
}

/// Makes an unconfirmed request and sends its confirmation email, unless
/// anything stands in the way (then nothing happens, and the answer is the
/// same).
pub(super) async fn ask(
    state: &AppState,
    request_id: &str,
    new: NewJoinRequest,
    source: Source<'_>,
) -> Result<(), Error> {
    let workspace_id = new.workspace_id;
    let email = new.email.normalized();
    let (link, proposed_role) = match source {
        Source::Direct => (None, None),
        Source::Link(link) => (Some(link), Some(link.role.as_str())),
        Source::Domain(domain) => (None, Some(domain.default_role.as_str())),
    };
    let new = &new;
    let made = retrying(|| async move {
        let unit = UnitOfWork::begin(state).await?;
        let tx = unit.tx();
        let workspace = match source {
            Source::Direct => workspaces::taking_join_requests(tx, workspace_id).await?,
            Source::Link(_) | Source::Domain(_) => {
                Some(workspaces::name_and_locale(tx, workspace_id).await?)
            }
        };
        // The confirmation is written in the workspace's default locale.
        let Some((workspace_name, locale)) = workspace else {
            return Ok(None);
        };
        let denied_since = time::OffsetDateTime::now_utc() - state.joining.request_cooldown;
        let standing = join_requests::standing(tx, workspace_id, email, denied_since).await?;
        let dropped = if standing.member_or_invited {
            Some("a member or invited")
        } else if standing.denied_recently {
            Some("denied within the cool-down")
        } else if standing.open_requests >= state.joining.max_open_requests {
            tracing::warn!(%workspace_id, "the workspace holds the most open join requests it may");
            Some("the workspace's cap of open requests")
        } else if !state.joining.may_email(&state.limits, tx, email).await? {
            // Asked last: only a request that would be made takes a unit.
            Some("the address's hourly limit")
        } else {
            None
        };
        if let Some(why) = dropped {
            tracing::info!(%workspace_id, why, "join request dropped");
            // What the checks wrote holds (an expired request marked, a unit of
            // the address's limit taken); nothing went to the outbox.
            unit.commit().await?;
            return Ok(None);
        }
        if let Some(link) = link
            && invite_links::take_use(tx, workspace_id, link.id)
                .await?
                .is_none()
        {
            return Err(Error::invite_link_not_found());
        }
        let token = InvitationToken::generate();
        let inserted = join_requests::insert(
            tx,
            &NewRequestRow {
                workspace_id,
                id: Uuid::now_v7(),
                email: new.email.as_typed(),
                email_normalized: email,
                display_name: &new.display_name,
                message: &new.message,
                invite_link_id: link.map(|link| link.id),
                proposed_role,
                confirm_token_hash: token.hash(),
                valid_for: CONFIRMATION_VALIDITY,
            },
        )
        .await?;
        let Some(request) = inserted else {
            // One is open already (its email is on its way): nothing more, and
            // the use taken above goes back with the rollback.
            tracing::info!(%workspace_id, why = "a request is open", "join request dropped");
            return Ok(None);
        };
        unit.send(events::send_join_request_confirmation_email(
            &request,
            &token,
            state.mail_tokens.as_deref(),
            &workspace_name,
            locale,
            request_id,
        )?);
        unit.commit().await?;
        Ok(Some(request))
    })
    .await?;
    let Some(request) = made else { return Ok(()) };
    tracing::info!(join_request_id = %request.id, "join request made; confirmation sent");
    Ok(())
}

/// Confirms the request of a token: administrators see it from now on.
/// Confirming again answers the same; an unknown, expired or decided
/// request's token is JOIN_REQUEST_NOT_FOUND. Answers the workspace's name.
pub async fn confirm(
    state: &AppState,
    request_id: &str,
    token: Option<InvitationToken>,
    client_address: Option<IpAddr>,
) -> Result<String, Error> {
    {
        let client = state.connection().await?;
        state
            .joining
            .admit(&state.limits, &client, client_address, None)
            .await?;
    }
    let token = token.ok_or_else(Error::join_request_not_found)?;
    let token = &token;
    let (request, workspace_name) = retrying(|| async move {
        let unit = UnitOfWork::begin(state).await?;
        let tx = unit.tx();
        let request = join_requests::find_by_token(tx, token.hash(), Lock::Update)
            .await?
            .ok_or_else(Error::join_request_not_found)?;
        let workspace_name = workspaces::name(tx, request.workspace_id).await?;
        match request.status {
            JoinRequestStatus::Pending => return Ok((None, workspace_name)),
            JoinRequestStatus::Unconfirmed => {}
            _ => return Err(Error::join_request_not_found()),
        }
        let request =
            join_requests::confirm(tx, request.workspace_id, request.id, DECISION_VALIDITY).await?;
        let changes = vec![
            FieldChange::new("join_request_id", "", request.id),
            FieldChange::new("email", "", &request.email),
        ];
        let recorded = unit.record(
            Record {
                workspace_id: request.workspace_id,
                // The requester is nobody in the workspace yet.
                actor_id: None,
                actor_directory_token_id: None,
                action: Action::JoinRequestReceived,
                target_user_id: None,
                target_invitation_id: None,
                changes,
                request_id,
            },
            events::join_request_changed(Action::JoinRequestReceived, &request, None, request_id),
        )?;
        unit.finish(Outcome::Changed((Some(request), workspace_name), recorded))
            .await
    })
    .await?;
    let Some(request) = request else {
        return Ok(workspace_name);
    };
    tracing::info!(join_request_id = %request.id, "join request confirmed");
    Ok(workspace_name)
}

/// How GetJoinRequest and ListJoinRequests read requests (only confirmed ones).
pub(crate) const READS: Reads<JoinRequest, Option<JoinRequestStatus>> = Reads {
    permission: Permission::UsersInvite,
    table: &join_requests::JOIN_REQUESTS,
    not_found: Error::join_request_not_found,
    list: |c, w, filter, window| Box::pin(join_requests::list(c, w, *filter, window)),
};

/// The request to decide, locked until commit; refused unless pending.
async fn pending_request(work: &Work<'_>, join_request_id: Uuid) -> Result<JoinRequest, Error> {
    let request = join_requests::JOIN_REQUESTS
        .get(
            work.tx(),
            work.workspace_id(),
            join_request_id,
            Lock::Update,
        )
        .await?
        .ok_or_else(Error::join_request_not_found)?;
    if request.status != JoinRequestStatus::Pending {
        return Err(Error::precondition(
            Reason::JoinRequestClosed,
            format!(
                "the join request is {}; only a pending one can be decided",
                request.status.as_str().to_lowercase()
            ),
        ));
    }
    Ok(request)
}

/// How an approval is asked: the role (empty: the one the link proposed)
/// and the manager.
pub struct Approval {
    pub join_request_id: Uuid,
    pub role: String,
    pub reporting_to: Option<Uuid>,
    pub idempotency: Option<IdempotencyKey>,
}

/// How a denial is asked: the reason, for the administrators.
pub struct Denial {
    pub join_request_id: Uuid,
    pub reason: String,
    pub idempotency: Option<IdempotencyKey>,
}

/// Approves a pending request: the pending invitation to its email is kept,
/// or an invitation is created and sent with every rule of InviteUser, in
/// the approver's name.
pub async fn approve(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    approval: Approval,
) -> Result<(JoinRequest, Invitation), Error> {
    let approval = &approval;
    caller.require(Permission::UsersInvite)?;
    let takes = state
        .invitations
        .send_takes(&state.limits, caller.workspace_id, caller.user_id)
        .await?;
    let mutation = Mutation::new("ApproveJoinRequest", Permission::UsersInvite, request_id)
        .idempotent(approval.idempotency.as_ref())
        // An invitation takes a seat: as InviteUser does.
        .locking(FirstLock::Seats)
        .limited(Limits {
            takes: &takes,
            refused: sends_refused,
        });
    unit_of_work::run(state, caller, mutation, |work| async move {
        let workspace_id = work.workspace_id();
        let request = pending_request(&work, approval.join_request_id).await?;
        let role = match (approval.role.as_str(), &request.proposed_role) {
            ("", Some(proposed)) => proposed.clone(),
            ("", None) => {
                return Err(Error::invalid(
                    "role",
                    "is required: the request proposes no role",
                ));
            }
            (role, _) => role.to_owned(),
        };
        let email = EmailAddress::parse(&request.email)
            .map_err(|why| Error::Unexpected(anyhow::anyhow!("a stored request's email: {why}")))?;
        let screening =
            invitations::clear_stale_and_screen(work.tx(), workspace_id, email.normalized())
                .await?;
        if screening.already_a_member {
            return Err(Error::AlreadyExists {
                reason: Reason::UserAlreadyMember,
                message: "the requester is already a member".into(),
            });
        }
        let pending = invitations::pending_for_email(
            work.tx(),
            workspace_id,
            email.normalized(),
            Lock::Share,
        )
        .await?;
        let invitation = match pending {
            Some(invitation) => invitation,
            None => {
                let new = NewInvitation {
                    email,
                    role,
                    reporting_to: approval.reporting_to,
                    message: String::new(),
                    valid_for: Validity::DEFAULT,
                    access_expires_at: None,
                    idempotency: None,
                    locale: None,
                };
                state
                    .invitations
                    .admit_recipient(&state.limits, work.tx(), new.email.normalized())
                    .await?;
                create_invitation(state, &work, &new, request.invite_link_id, screening)
                    .await?
                    .0
            }
        };
        let decided = join_requests::decide(
            work.tx(),
            workspace_id,
            request.id,
            JoinRequestStatus::Approved,
            work.caller.user_id,
            "",
            Some(invitation.id),
        )
        .await?;
        let changes = vec![
            FieldChange::new("join_request_id", "", decided.id),
            FieldChange::new("state", "PENDING", "APPROVED"),
        ];
        let event = events::join_request_changed(
            Action::JoinRequestApproved,
            &decided,
            Some(work.caller.user_id),
            request_id,
        );
        let recorded = work.record(
            Action::JoinRequestApproved,
            Target::Invitation(invitation.id),
            changes,
            event,
        )?;
        work.finish(Outcome::Changed((decided, invitation), recorded))
            .await
    })
    .await
}

/// Denies a pending request. The requester is not told; the reason is for
/// the administrators (the request and the activity log).
pub async fn deny(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    denial: Denial,
) -> Result<JoinRequest, Error> {
    let (join_request_id, reason) = (denial.join_request_id, &denial.reason);
    let mutation = Mutation::new("DenyJoinRequest", Permission::UsersInvite, request_id)
        .idempotent(denial.idempotency.as_ref());
    unit_of_work::run(state, caller, mutation, |work| async move {
        let request = pending_request(&work, join_request_id).await?;
        let decided = join_requests::decide(
            work.tx(),
            work.workspace_id(),
            request.id,
            JoinRequestStatus::Denied,
            work.caller.user_id,
            reason,
            None,
        )
        .await?;
        let changes = vec![
            FieldChange::new("join_request_id", "", decided.id),
            FieldChange::new("state", "PENDING", "DENIED"),
            FieldChange::new("denial_reason", "", reason),
        ];
        let event = events::join_request_changed(
            Action::JoinRequestDenied,
            &decided,
            Some(work.caller.user_id),
            request_id,
        );
        let recorded = work.record(Action::JoinRequestDenied, Target::Workspace, changes, event)?;
        work.finish(Outcome::Changed(decided, recorded)).await
    })
    .await
}
