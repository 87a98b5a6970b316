//! Invite links: a secret a team shares (a chat message, a wiki page) that
//! lets anyone holding it ask to join with the link's role, within its
//! expiry and uses. Redeeming mints an ordinary invitation to the address
//! given, sent in the creator's name (so the invitee proves the address and
//! AcceptInvitation stays the one way in), or, for a link that requires
//! approval, a join request.
//!
//! A link works only while its creator could send its invitations: active,
//! holding `users.invite` and a role not below the link's. Everything a
//! stranger can learn is one answer: unknown, expired, revoked, exhausted,
//! rotated and orphaned links are all INVITE_LINK_NOT_FOUND.

use std::net::IpAddr;

use uuid::Uuid;

use super::{
    AppState, Reads,
    invitations::invite_via,
    join_requests::{self, Source},
    rules::ensure_active_manager,
    unit_of_work::{self, FirstLock, Mutation, Outcome, Target, Work},
};
use crate::{
    auth::{Caller, caller::acting_as},
    domain::{
        Error, Reason,
        activity::{Action, FieldChange},
        invitation::{NewInvitation, Validity},
        joining::{
            CreatedLink, InviteLink, InviteLinkState, LinkSecret, NewJoinRequest, Redemption,
        },
        permission::Permission,
        user::UserStatus,
    },
    events,
    store::{Lock, invite_links, roles, users, workspaces},
};

pub async fn create(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    new: crate::domain::joining::NewInviteLink,
) -> Result<CreatedLink, Error> {
    let new = &new;
    let mutation = Mutation::new("CreateInviteLink", Permission::UsersInvite, request_id)
        // Links are counted against the cap one creation at a time.
        .locking(FirstLock::Workspace);
    let created = unit_of_work::run(state, caller, mutation, |work| async move {
        let workspace_id = work.workspace_id();
        let role = work.grantable_role("role", &new.role).await?;
        if let Some(manager_id) = new.reporting_to {
            ensure_active_manager(work.tx(), workspace_id, manager_id, "reporting_to_user_id")
                .await?;
        }
        let usable = invite_links::count_usable(work.tx(), workspace_id).await?;
        if usable >= state.joining.max_usable_links {
            return Err(Error::precondition(
                Reason::InviteLinkLimitReached,
                format!(
                    "the workspace has {usable} working invite links, the most it may have; \
                     revoke one first"
                ),
            ));
        }
        let secret = LinkSecret::generate();
        let link = invite_links::insert(
            work.tx(),
            &invite_links::NewLinkRow {
                workspace_id,
                id: Uuid::now_v7(),
                secret_hash: secret.hash(),
                role: &role.name,
                reporting_to: new.reporting_to,
                creator_id: work.caller.user_id,
                requires_approval: new.requires_approval,
                max_uses: new.max_uses,
                valid_for: new.valid_for,
            },
        )
        .await?;
        let changes = vec![
            FieldChange::new("invite_link_id", "", link.id),
            FieldChange::new("role", "", &link.role),
            FieldChange::new("max_uses", "", link.max_uses),
            FieldChange::new("requires_approval", "", link.requires_approval),
        ];
        let recorded = record(&work, Action::InviteLinkCreated, &link, changes)?;
        let created = shown_once(link, &secret);
        work.finish(Outcome::Changed(created, recorded)).await
    })
    .await?;
    tracing::info!(invite_link_id = %created.link.id, "invite link created");
    Ok(created)
}

fn record(
    work: &Work<'_>,
    action: Action,
    link: &InviteLink,
    changes: Vec<FieldChange>,
) -> Result<super::unit_of_work::Recorded, Error> {
    let event = events::invite_link_changed(action, link, work.caller.user_id, work.request_id);
    work.record(action, Target::Workspace, changes, event)
}

/// The link to change, locked until commit; one granting a role above the
/// caller's is refused, as an invitation's would be.
async fn locked_link(work: &Work<'_>, link_id: Uuid) -> Result<InviteLink, Error> {
    let link = invite_links::INVITE_LINKS
        .get(work.tx(), work.workspace_id(), link_id, Lock::Update)
        .await?
        .ok_or_else(Error::invite_link_not_found)?;
    work.require_not_below(
        &roles::held(work.tx(), work.workspace_id(), &link.role, Lock::None).await?,
    )?;
    Ok(link)
}

pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    link_id: Uuid,
) -> Result<InviteLink, Error> {
    let mutation = Mutation::new("RevokeInviteLink", Permission::UsersInvite, request_id);
    unit_of_work::run(state, caller, mutation, |work| async move {
        let current = locked_link(&work, link_id).await?;
        if current.state == InviteLinkState::Revoked {
            return work.finish(Outcome::Unchanged(current)).await;
        }
        let link = invite_links::revoke(work.tx(), work.workspace_id(), link_id).await?;
        let changes = vec![
            FieldChange::new("invite_link_id", "", link.id),
            FieldChange::new("state", current.state.as_str(), "REVOKED"),
        ];
        let recorded = record(&work, Action::InviteLinkRevoked, &link, changes)?;
        work.finish(Outcome::Changed(link, recorded)).await
    })
    .await
}

pub async fn rotate(
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    link_id: Uuid,
) -> Result<CreatedLink, Error> {
    let mutation = Mutation::new("RotateInviteLink", Permission::UsersInvite, request_id);
    unit_of_work::run(state, caller, mutation, |work| async move {
        let current = locked_link(&work, link_id).await?;
        if current.state == InviteLinkState::Revoked {
            return Err(Error::precondition(
                Reason::InviteLinkRevoked,
                "the invite link was revoked; create another",
            ));
        }
        let secret = LinkSecret::generate();
        let link =
            invite_links::rotate(work.tx(), work.workspace_id(), link_id, secret.hash()).await?;
        let changes = vec![FieldChange::new("invite_link_id", "", link.id)];
        let recorded = record(&work, Action::InviteLinkRotated, &link, changes)?;
        let created = shown_once(link, &secret);
        work.finish(Outcome::Changed(created, recorded)).await
    })
    .await
}

/// How GetInviteLink and ListInviteLinks read links.
pub(crate) const READS: Reads<InviteLink, Option<InviteLinkState>> = Reads {
    permission: Permission::UsersInvite,
    table: &invite_links::INVITE_LINKS,
    not_found: Error::invite_link_not_found,
    list: |c, w, filter, window| Box::pin(invite_links::list(c, w, *filter, window)),
};

/// What a join page shows about a link.
pub struct LinkPreview {
    pub link: InviteLink,
    pub workspace_name: String,
    pub creator_display_name: String,
}

/// The link a secret opens, with its creator acting as the inviter they
/// are now; every way it does not work is the same NOT_FOUND.
async fn working_link(
    state: &AppState,
    secret: &LinkSecret,
    client_address: Option<IpAddr>,
) -> Result<(InviteLink, Caller), Error> {
    let client = state.connection().await?;
    state
        .joining
        .admit(&state.limits, &client, client_address, Some(secret.hash()))
        .await?;
    let link = invite_links::find_usable(&client, secret.hash())
        .await?
        .ok_or_else(Error::invite_link_not_found)?;
    drop(client);
    let creator = acting_as(
        &state.pool,
        &state.callers,
        link.workspace_id,
        link.creator_id,
    )
    .await
    .map_err(|_| Error::invite_link_not_found())?;
    let client = state.connection().await?;
    let link_role = roles::held(&client, link.workspace_id, &link.role, Lock::None).await?;
    if creator.require(Permission::UsersInvite).is_err()
        || creator.require_not_below(&link_role).is_err()
    {
        return Err(Error::invite_link_not_found());
    }
    Ok((link, creator))
}

pub async fn preview(
    state: &AppState,
    secret: Option<LinkSecret>,
    client_address: Option<IpAddr>,
) -> Result<LinkPreview, Error> {
    let secret = secret.ok_or_else(Error::invite_link_not_found)?;
    let (link, creator) = working_link(state, &secret, client_address).await?;
    let client = state.connection().await?;
    let workspace_name = workspaces::name(&client, link.workspace_id).await?;
    Ok(LinkPreview {
        link,
        workspace_name,
        creator_display_name: creator.display_name,
    })
}

/// Redeems a link for an email address: an invitation to it, or a join
/// request for a link that requires approval. An address already a member
/// or already invited gets nothing more, and the answer is the same.
/// Answers whether the link requires approval.
pub async fn redeem(
    state: &AppState,
    request_id: &str,
    redemption: Redemption,
    client_address: Option<IpAddr>,
) -> Result<bool, Error> {
    let (link, creator) = working_link(state, &redemption.secret, client_address).await?;
    if link.requires_approval {
        join_requests::ask(
            state,
            request_id,
            NewJoinRequest {
                workspace_id: link.workspace_id,
                email: redemption.email,
                display_name: redemption.display_name,
                message: redemption.message,
            },
            Source::Link(&link),
        )
        .await?;
        return Ok(true);
    }
    // A manager deactivated since the link was made is not kept.
    let reporting_to = match link.reporting_to {
        Some(manager_id) => {
            let client = state.connection().await?;
            users::USERS
                .get(&client, link.workspace_id, manager_id, Lock::None)
                .await?
                .filter(|manager| manager.status == UserStatus::Active)
                .map(|manager| manager.id)
        }
        None => None,
    };
    let new = NewInvitation {
        email: redemption.email,
        role: link.role.clone(),
        reporting_to,
        message: String::new(),
        valid_for: Validity::DEFAULT,
        access_expires_at: None,
        idempotency: None,
        locale: None,
    };
    match invite_via(state, &creator, request_id, new, Some(link.id)).await {
        Ok(invitation) => {
            tracing::info!(invite_link_id = %link.id, invitation_id = %invitation.id, "invite link redeemed");
            Ok(false)
        }
        // Said the same as a new invitation: a stranger learns nothing of
        // who is a member or invited, or whose address takes no invitation
        // email (and none is sent).
        Err(Error::AlreadyExists { .. } | Error::RecipientSuppressed(_)) => Ok(false),
        // The creator lost the right meanwhile: the link is dead.
        Err(Error::PermissionDenied { .. }) => Err(Error::invite_link_not_found()),
        Err(other) => Err(other),
    }
}

/// The answer of a creation or rotation: the link and its secret, in the
/// clear this once.
fn shown_once(link: InviteLink, secret: &LinkSecret) -> CreatedLink {
    CreatedLink {
        link,
        secret: secret.expose().to_owned(),
    }
}
