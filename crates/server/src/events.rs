//! The events and commands the service writes to its outbox, encoded as the
//! protobuf messages of `proto/wowchat/users/events/v1/events.proto`. Broadcast
//! events never carry an invitation token; only the mail command does, on
//! the mailer's own route.

use prost::Name;
use uuid::Uuid;
use wowchat_platform::{sealing::TokenKeys, telemetry};
use wowchat_users_api::{events::v1 as events, topology::commands};

use crate::{
    auth::Caller,
    domain::{
        activity::{Action, FieldChange},
        invitation::{Invitation, InvitationToken},
        joining::{InviteLink, JoinRequest},
        locale::Locale,
        mail_domain::MailDomain,
        permission::CustomRole,
        suppression::EmailSuppression,
        user::User,
        workspace::WorkspaceSettings,
    },
    store::{directory::DirectoryToken, directory_groups::Group, outbox::OutboxMessage},
    wire,
};

/// An outbox row carrying `payload`, named by its protobuf type (the
/// `prost::Name` prost-build emits).
fn message<M: Name>(
    workspace_id: Uuid,
    routing_key: &'static str,
    payload: M,
    request_id: &str,
) -> OutboxMessage {
    message_with_id(
        Uuid::now_v7(),
        workspace_id,
        routing_key,
        payload,
        request_id,
    )
}

fn message_with_id<M: Name>(
    id: Uuid,
    workspace_id: Uuid,
    routing_key: &'static str,
    payload: M,
    request_id: &str,
) -> OutboxMessage {
    OutboxMessage {
        id,
        workspace_id,
        routing_key,
        message_type: M::full_name(),
        payload: payload.encode_to_vec(),
        request_id: request_id.to_owned(),
        // The span of the change: its RPC's, or its transaction's within it.
        trace: telemetry::trace_context(&tracing::Span::current()),
    }
}

pub fn invitation_created(invitation: &Invitation, request_id: &str) -> OutboxMessage {
    message(
        invitation.workspace_id,
        Action::InvitationCreated.as_str(),
        events::InvitationCreated {
            invitation: Some(wire::invitation(invitation)),
        },
        request_id,
    )
}

pub fn invitation_resent(invitation: &Invitation, actor: Uuid, request_id: &str) -> OutboxMessage {
    message(
        invitation.workspace_id,
        Action::InvitationResent.as_str(),
        events::InvitationResent {
            invitation: Some(wire::invitation(invitation)),
            actor_user_id: actor.to_string(),
        },
        request_id,
    )
}

pub fn invitation_revoked(invitation: &Invitation, actor: Uuid, request_id: &str) -> OutboxMessage {
    message(
        invitation.workspace_id,
        Action::InvitationRevoked.as_str(),
        events::InvitationRevoked {
            invitation: Some(wire::invitation(invitation)),
            actor_user_id: actor.to_string(),
        },
        request_id,
    )
}

pub fn invitation_accepted(
    invitation: &Invitation,
    user: &User,
    request_id: &str,
) -> OutboxMessage {
    message(
        invitation.workspace_id,
        Action::InvitationAccepted.as_str(),
        events::InvitationAccepted {
            invitation: Some(wire::invitation(invitation)),
            user: Some(wire::user(user)),
        },
        request_id,
    )
}

/// Who made a change: a person, a directory with its token, or (neither)
/// the service itself, as a rule set earlier said (an access expiry).
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub directory_token_id: Option<Uuid>,
}

impl Actor {
    pub const SERVICE: Actor = Actor {
        user_id: None,
        directory_token_id: None,
    };
}

impl From<Uuid> for Actor {
    fn from(user_id: Uuid) -> Self {
        Actor {
            user_id: Some(user_id),
            directory_token_id: None,
        }
    }
}

impl From<&Caller> for Actor {
    /// A directory's change is the directory's, not its minter's.
    fn from(caller: &Caller) -> Self {
        Actor {
            user_id: caller
                .directory_token_id
                .is_none()
                .then_some(caller.user_id),
            directory_token_id: caller.directory_token_id,
        }
    }
}

pub fn user_changed(
    action: Action,
    user: &User,
    actor: impl Into<Actor>,
    changes: &[FieldChange],
    request_id: &str,
) -> OutboxMessage {
    let actor = actor.into();
    let id = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    message(
        user.workspace_id,
        action.as_str(),
        events::UserChanged {
            user: Some(wire::user(user)),
            actor_user_id: id(actor.user_id),
            changes: changes.iter().map(wire::field_change).collect(),
            actor_directory_token_id: id(actor.directory_token_id),
        },
        request_id,
    )
}

/// `invite_link.created`, `.revoked` or `.rotated` (by `action`).
pub fn invite_link_changed(
    action: Action,
    link: &InviteLink,
    actor: Uuid,
    request_id: &str,
) -> OutboxMessage {
    message(
        link.workspace_id,
        action.as_str(),
        events::InviteLinkChanged {
            link: Some(wire::invite_link(link)),
            actor_user_id: actor.to_string(),
        },
        request_id,
    )
}

/// `domain.added`, `.verified`, `.updated`, `.removed` or `.lapsed` (by
/// `action`); `actor` is `None` when a re-check lapsed it.
pub fn domain_changed(
    action: Action,
    domain: &MailDomain,
    actor: Option<Uuid>,
    request_id: &str,
) -> OutboxMessage {
    message(
        domain.workspace_id,
        action.as_str(),
        events::DomainChanged {
            domain: Some(wire::mail_domain(domain)),
            actor_user_id: actor.map(|id| id.to_string()).unwrap_or_default(),
        },
        request_id,
    )
}

/// `join_request.received`, `.approved` or `.denied` (by `action`);
/// `actor` is `None` when the requester's confirmation made it.
pub fn join_request_changed(
    action: Action,
    request: &JoinRequest,
    actor: Option<Uuid>,
    request_id: &str,
) -> OutboxMessage {
    message(
        request.workspace_id,
        action.as_str(),
        events::JoinRequestChanged {
            join_request: Some(wire::join_request(request)),
            actor_user_id: actor.map(|id| id.to_string()).unwrap_or_default(),
        },
        request_id,
    )
}

/// The command that asks a requester to confirm their join request, with
/// the token sealed as an invitation's is (bound to the request id), in
/// `locale` (the workspace's default).
pub fn send_join_request_confirmation_email(
    request: &JoinRequest,
    token: &InvitationToken,
    seal: Option<&TokenKeys>,
    workspace_name: &str,
    locale: Locale,
    request_id: &str,
) -> Result<OutboxMessage, crate::domain::Error> {
    let (token, sealed_token) = sealed(token, seal, request.id)?;
    Ok(message(
        request.workspace_id,
        commands::SEND_JOIN_REQUEST_CONFIRMATION_EMAIL,
        events::SendJoinRequestConfirmationEmail {
            join_request: Some(wire::join_request(request)),
            workspace_name: workspace_name.to_owned(),
            token,
            sealed_token,
            locale: locale.tag().to_owned(),
        },
        request_id,
    ))
}

/// A token for the mailer: sealed under `seal` and bound to `bound_to`
/// (the invitation or request id), or in the clear without keys
/// (development only).
fn sealed(
    token: &InvitationToken,
    seal: Option<&TokenKeys>,
    bound_to: Uuid,
) -> Result<(String, Option<events::SealedToken>), crate::domain::Error> {
    match seal {
        Some(keys) => {
            let sealed = keys
                .seal(token.expose(), bound_to.to_string().as_bytes())
                .map_err(crate::domain::Error::Unexpected)?;
            Ok((
                String::new(),
                Some(events::SealedToken {
                    key_id: sealed.key_id,
                    nonce: sealed.nonce,
                    ciphertext: sealed.ciphertext,
                }),
            ))
        }
        None => Ok((token.expose().to_owned(), None)),
    }
}

/// `directory.token_created` or `directory.token_revoked` (by `action`).
pub fn directory_token_changed(
    action: Action,
    token: &DirectoryToken,
    actor: Uuid,
    request_id: &str,
) -> OutboxMessage {
    message(
        token.workspace_id,
        action.as_str(),
        events::DirectoryTokenChanged {
            token: Some(wire::directory_token(token)),
            actor_user_id: actor.to_string(),
        },
        request_id,
    )
}

/// `directory.group_created`, `directory.group_updated` or
/// `directory.group_deleted` (by `action`).
pub fn directory_group_changed(
    action: Action,
    group: &Group,
    caller: &Caller,
    changes: &[FieldChange],
    request_id: &str,
) -> OutboxMessage {
    message(
        group.workspace_id,
        action.as_str(),
        events::DirectoryGroupChanged {
            group: Some(wire::directory_group(group, None)),
            actor_directory_token_id: caller
                .directory_token_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            changes: changes.iter().map(wire::field_change).collect(),
        },
        request_id,
    )
}

/// `role.created`, `role.updated` or `role.deleted` (by `action`).
pub fn role_changed(
    action: Action,
    role: &CustomRole,
    actor: Uuid,
    changes: &[FieldChange],
    request_id: &str,
) -> OutboxMessage {
    message(
        role.workspace_id,
        action.as_str(),
        events::RoleChanged {
            role: Some(wire::custom_role(role)),
            actor_user_id: actor.to_string(),
            changes: changes.iter().map(wire::field_change).collect(),
        },
        request_id,
    )
}

/// The command that carries the token to the mailer, and only to the mailer.
/// `id` is the message id the mailer reports the delivery result under.
/// With `seal` (the mail token keys) the token travels sealed, bound to
/// the invitation id; without (development only), in the clear.
/// `unsubscribe_token` makes the email's unsubscribe link.
#[allow(clippy::too_many_arguments)]
pub fn send_invitation_email(
    id: Uuid,
    invitation: &Invitation,
    token: &InvitationToken,
    seal: Option<&TokenKeys>,
    workspace_name: &str,
    inviter: &Caller,
    unsubscribe_token: String,
    request_id: &str,
) -> Result<OutboxMessage, crate::domain::Error> {
    let (token, sealed_token) = sealed(token, seal, invitation.id)?;
    Ok(message_with_id(
        id,
        invitation.workspace_id,
        commands::SEND_INVITATION_EMAIL,
        events::SendInvitationEmail {
            invitation: Some(wire::invitation(invitation)),
            token,
            workspace_name: workspace_name.to_owned(),
            inviter_display_name: inviter.display_name.clone(),
            inviter_email: inviter.email.clone(),
            sealed_token,
            unsubscribe_token,
            locale: invitation.locale.tag().to_owned(),
        },
        request_id,
    ))
}

/// `email.unsubscribed` (no actor; `invitation_id`: whose email carried
/// the link) or `email.suppression_cleared` (by `actor`), in `workspace_id`.
pub fn email_suppression_changed(
    workspace_id: Uuid,
    action: Action,
    suppression: &EmailSuppression,
    actor: Option<Uuid>,
    invitation_id: Option<Uuid>,
    request_id: &str,
) -> OutboxMessage {
    let text = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    message(
        workspace_id,
        action.as_str(),
        events::EmailSuppressionChanged {
            suppression: Some(wire::email_suppression(suppression)),
            actor_user_id: text(actor),
            invitation_id: text(invitation_id),
        },
        request_id,
    )
}

/// The command that tells the inviter their invitation was accepted, in
/// `locale` (the workspace's default).
pub fn send_invitation_accepted_email(
    invitation: &Invitation,
    user: &User,
    workspace_name: &str,
    inviter: &User,
    locale: Locale,
    request_id: &str,
) -> OutboxMessage {
    message(
        invitation.workspace_id,
        commands::SEND_INVITATION_ACCEPTED_EMAIL,
        events::SendInvitationAcceptedEmail {
            invitation: Some(wire::invitation(invitation)),
            user: Some(wire::user(user)),
            workspace_name: workspace_name.to_owned(),
            inviter_display_name: inviter.display_name.clone(),
            inviter_email: inviter.email.clone(),
            locale: locale.tag().to_owned(),
        },
        request_id,
    )
}

/// `invitation.updated`: a pending invitation's role, manager, expiry or
/// language changed.
pub fn invitation_updated(
    invitation: &Invitation,
    actor: Uuid,
    changes: &[FieldChange],
    request_id: &str,
) -> OutboxMessage {
    message(
        invitation.workspace_id,
        Action::InvitationUpdated.as_str(),
        events::InvitationUpdated {
            invitation: Some(wire::invitation(invitation)),
            actor_user_id: actor.to_string(),
            changes: changes.iter().map(wire::field_change).collect(),
        },
        request_id,
    )
}

/// `workspace.settings_updated`: the invitation settings changed.
pub fn workspace_settings_updated(
    workspace_id: Uuid,
    settings: &WorkspaceSettings,
    version: i64,
    actor: Uuid,
    changes: &[FieldChange],
    request_id: &str,
) -> OutboxMessage {
    message(
        workspace_id,
        Action::WorkspaceSettingsUpdated.as_str(),
        events::WorkspaceSettingsUpdated {
            workspace_id: workspace_id.to_string(),
            settings: Some(wire::workspace_settings(settings, version)),
            actor_user_id: actor.to_string(),
            changes: changes.iter().map(wire::field_change).collect(),
        },
        request_id,
    )
}
