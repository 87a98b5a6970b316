//! Domain records as wire messages: the one place a `User`, `Invitation`,
//! role or activity entry becomes its protobuf message, for the gRPC
//! responses and the outbox events alike. Below both `grpc` and `events`.

use prost_types::Timestamp;
use time::OffsetDateTime;
use uuid::Uuid;
use wowchat_users_api::v1 as proto;

use crate::{
    domain::{
        activity::{ActivityEntry, FieldChange},
        directory::{DirectoryEmail, DirectoryProfile, DirectoryState, name_of_display_name},
        invitation::{DeliveryStatus, Invitation, InvitationStatus},
        joining::{InviteLink, InviteLinkState, JoinRequest, JoinRequestStatus},
        mail_domain::{DomainStatus, EnrollmentMode, MailDomain},
        permission::{CustomRole, PermissionSet, Role},
        suppression::{EmailSuppression, SuppressionCause},
        user::{User, UserStatus},
        workspace::WorkspaceSettings,
    },
    store::{
        directory::{DirectoryMember, DirectoryToken},
        directory_groups::Group,
    },
};

/// A public key of `JwtKeys` as the JWKS message carries it.
pub fn json_web_key(key: &jsonwebtoken::jwk::Jwk) -> proto::JsonWebKey {
    use jsonwebtoken::jwk::{AlgorithmParameters, KeyAlgorithm};
    let mut out = proto::JsonWebKey {
        kid: key.common.key_id.clone().unwrap_or_default(),
        r#use: "sig".into(),
        alg: match key.common.key_algorithm {
            Some(KeyAlgorithm::EdDSA) => "EdDSA".into(),
            Some(KeyAlgorithm::RS256) => "RS256".into(),
            _ => String::new(),
        },
        ..Default::default()
    };
    match &key.algorithm {
        AlgorithmParameters::OctetKeyPair(okp) => {
            out.kty = "OKP".into();
            out.crv = "Ed25519".into();
            out.x = okp.x.clone();
        }
        AlgorithmParameters::RSA(rsa) => {
            out.kty = "RSA".into();
            out.n = rsa.n.clone();
            out.e = rsa.e.clone();
        }
        _ => {}
    }
    out
}

pub fn timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// A suppressed address. Where it came from (the workspace, the
/// invitation) is never shown: the list is the installation's.
pub fn email_suppression(suppression: &EmailSuppression) -> proto::EmailSuppression {
    proto::EmailSuppression {
        email: suppression.email.clone(),
        reason: match suppression.cause {
            SuppressionCause::Bounced => proto::SuppressionReason::Bounced,
            SuppressionCause::Unsubscribed => proto::SuppressionReason::Unsubscribed,
        } as i32,
        detail: suppression.detail.clone(),
        create_time: Some(timestamp(suppression.created_at)),
    }
}

pub fn user(user: &User) -> proto::User {
    proto::User {
        id: user.id.to_string(),
        workspace_id: user.workspace_id.to_string(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        role: user.role.clone(),
        reporting_to_user_id: user.reporting_to.map(|id| id.to_string()),
        status: match user.status {
            UserStatus::Active => proto::UserStatus::Active,
            UserStatus::Deactivated => proto::UserStatus::Deactivated,
        } as i32,
        deactivation_reason: user.deactivation_reason.clone().unwrap_or_default(),
        create_time: Some(timestamp(user.created_at)),
        update_time: Some(timestamp(user.updated_at)),
        etag: user.etag(),
        last_active_time: user.last_active_at.map(timestamp),
        access_expire_time: user.access_expires_at.map(timestamp),
    }
}

fn invitation_status(status: InvitationStatus) -> proto::InvitationStatus {
    match status {
        InvitationStatus::Pending => proto::InvitationStatus::Pending,
        InvitationStatus::Accepted => proto::InvitationStatus::Accepted,
        InvitationStatus::Revoked => proto::InvitationStatus::Revoked,
        InvitationStatus::Expired => proto::InvitationStatus::Expired,
    }
}

pub fn invitation(invitation: &Invitation) -> proto::Invitation {
    proto::Invitation {
        id: invitation.id.to_string(),
        workspace_id: invitation.workspace_id.to_string(),
        email: invitation.email.clone(),
        role: invitation.role.clone(),
        reporting_to_user_id: invitation.reporting_to.map(|id| id.to_string()),
        inviter_user_id: invitation.inviter_id.to_string(),
        message: invitation.message.clone(),
        status: invitation_status(invitation.status) as i32,
        expire_time: Some(timestamp(invitation.expires_at)),
        create_time: Some(timestamp(invitation.created_at)),
        update_time: Some(timestamp(invitation.updated_at)),
        resend_count: invitation.resend_count,
        accepted_user_id: invitation
            .accepted_user_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        delivery_status: match invitation.delivery_status {
            DeliveryStatus::Queued => proto::DeliveryStatus::Queued,
            DeliveryStatus::Sent => proto::DeliveryStatus::Sent,
            DeliveryStatus::Failed => proto::DeliveryStatus::Failed,
        } as i32,
        delivery_failure_reason: invitation
            .delivery_failure_reason
            .clone()
            .unwrap_or_default(),
        access_expire_time: invitation.access_expires_at.map(timestamp),
        etag: invitation.etag(),
        locale: invitation.locale.tag().to_owned(),
    }
}

pub fn invite_link(link: &InviteLink) -> proto::InviteLink {
    proto::InviteLink {
        id: link.id.to_string(),
        workspace_id: link.workspace_id.to_string(),
        role: link.role.clone(),
        reporting_to_user_id: link.reporting_to.map(|id| id.to_string()),
        creator_user_id: link.creator_id.to_string(),
        requires_approval: link.requires_approval,
        max_uses: link.max_uses,
        use_count: link.use_count,
        state: invite_link_state(link.state) as i32,
        expire_time: Some(timestamp(link.expires_at)),
        create_time: Some(timestamp(link.created_at)),
        update_time: Some(timestamp(link.updated_at)),
    }
}

pub fn invite_link_state(state: InviteLinkState) -> proto::InviteLinkState {
    match state {
        InviteLinkState::Active => proto::InviteLinkState::Active,
        InviteLinkState::Expired => proto::InviteLinkState::Expired,
        InviteLinkState::Revoked => proto::InviteLinkState::Revoked,
        InviteLinkState::Exhausted => proto::InviteLinkState::Exhausted,
    }
}

pub fn join_request(request: &JoinRequest) -> proto::JoinRequest {
    let id = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    proto::JoinRequest {
        id: request.id.to_string(),
        workspace_id: request.workspace_id.to_string(),
        email: request.email.clone(),
        display_name: request.display_name.clone(),
        message: request.message.clone(),
        state: match request.status {
            // Nobody sees an unconfirmed request; its mail command says so.
            JoinRequestStatus::Unconfirmed => proto::JoinRequestState::Unspecified,
            JoinRequestStatus::Pending => proto::JoinRequestState::Pending,
            JoinRequestStatus::Approved => proto::JoinRequestState::Approved,
            JoinRequestStatus::Denied => proto::JoinRequestState::Denied,
            JoinRequestStatus::Expired => proto::JoinRequestState::Expired,
        } as i32,
        invite_link_id: id(request.invite_link_id),
        create_time: Some(timestamp(request.created_at)),
        confirm_time: request.confirmed_at.map(timestamp),
        expire_time: Some(timestamp(request.expires_at)),
        decide_time: request.decided_at.map(timestamp),
        decided_by_user_id: id(request.decided_by),
        denial_reason: request.denial_reason.clone(),
        invitation_id: id(request.invitation_id),
        proposed_role: request.proposed_role.clone().unwrap_or_default(),
    }
}

pub fn mail_domain(domain: &MailDomain) -> proto::Domain {
    proto::Domain {
        id: domain.id.to_string(),
        workspace_id: domain.workspace_id.to_string(),
        domain: domain.domain.clone(),
        state: match domain.status {
            DomainStatus::Pending => proto::DomainState::Pending,
            DomainStatus::Verified => proto::DomainState::Verified,
            DomainStatus::Lapsed => proto::DomainState::Lapsed,
            DomainStatus::Expired => proto::DomainState::Expired,
        } as i32,
        record_name: domain.record_name(),
        record_value: domain.record_value(),
        enrollment_mode: match domain.enrollment_mode {
            EnrollmentMode::Manual => proto::EnrollmentMode::Manual,
            EnrollmentMode::Invite => proto::EnrollmentMode::Invite,
            EnrollmentMode::Suggest => proto::EnrollmentMode::Suggest,
        } as i32,
        default_role: domain.default_role.clone(),
        created_by_user_id: domain.created_by.to_string(),
        create_time: Some(timestamp(domain.created_at)),
        expire_time: Some(timestamp(domain.expires_at)),
        verify_time: domain.verified_at.map(timestamp),
        check_time: domain.checked_at.map(timestamp),
    }
}

pub fn workspace_settings(settings: &WorkspaceSettings, version: i64) -> proto::WorkspaceSettings {
    proto::WorkspaceSettings {
        seat_limit: i32::try_from(settings.seat_limit).unwrap_or(i32::MAX),
        allowed_email_domains: settings.allowed_email_domains.clone(),
        directory_default_role: settings.directory_default_role.clone(),
        accept_join_requests: settings.accept_join_requests,
        etag: crate::domain::etag(version),
        default_locale: settings.default_locale.tag().to_owned(),
    }
}

pub fn field_change(change: &FieldChange) -> proto::FieldChange {
    proto::FieldChange {
        field: change.field.clone(),
        old_value: change.old.clone(),
        new_value: change.new.clone(),
    }
}

pub fn activity_entry(entry: &ActivityEntry) -> proto::ActivityEntry {
    let id = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    proto::ActivityEntry {
        id: entry.id.to_string(),
        workspace_id: entry.workspace_id.to_string(),
        actor_user_id: id(entry.actor_id),
        action: entry.action.clone(),
        target_user_id: id(entry.target_user_id),
        target_invitation_id: id(entry.target_invitation_id),
        changes: entry.changes.iter().map(field_change).collect(),
        request_id: entry.request_id.clone(),
        create_time: Some(timestamp(entry.occurred_at)),
        actor_directory_token_id: id(entry.actor_directory_token_id),
    }
}

pub fn built_in_role(role: &Role) -> proto::Role {
    proto::Role {
        name: role.name.clone(),
        permissions: names(role.permissions),
        built_in: true,
        create_time: None,
        update_time: None,
        etag: String::new(),
    }
}

pub fn custom_role(custom: &CustomRole) -> proto::Role {
    proto::Role {
        name: custom.role.name.clone(),
        permissions: names(custom.role.permissions),
        built_in: false,
        create_time: Some(timestamp(custom.created_at)),
        update_time: Some(timestamp(custom.updated_at)),
        etag: custom.etag(),
    }
}

fn names(permissions: PermissionSet) -> Vec<String> {
    permissions.names().into_iter().map(str::to_owned).collect()
}

pub fn directory_token(token: &DirectoryToken) -> proto::DirectoryToken {
    proto::DirectoryToken {
        id: token.id.to_string(),
        display_name: token.display_name.clone(),
        creator_user_id: token.created_by.to_string(),
        create_time: Some(timestamp(token.created_at)),
        last_use_time: token.last_used_at.map(timestamp),
        revoke_time: token.revoked_at.map(timestamp),
    }
}

/// A member as a directory sees it. A member no directory ever wrote shows
/// its email as userName and as its one (primary, work) address, and a
/// name made from its display name.
pub fn directory_user(member: &DirectoryMember) -> proto::DirectoryUser {
    let user = &member.user;
    let written = member
        .profile
        .as_ref()
        .filter(|_| member.state == Some(DirectoryState::Linked));
    let profile = match written {
        Some(profile) => profile.clone(),
        None => DirectoryProfile {
            name: Some(name_of_display_name(&user.display_name)),
            display_name: Some(user.display_name.clone()),
            emails: vec![DirectoryEmail {
                value: user.email.clone(),
                kind: Some("work".into()),
                primary: Some(true),
            }],
        },
    };
    proto::DirectoryUser {
        id: user.id.to_string(),
        fields: Some(proto::DirectoryUserFields {
            user_name: member
                .user_name
                .clone()
                .unwrap_or_else(|| user.email.clone()),
            external_id: member.external_id.clone(),
            name: profile.name.map(|name| proto::DirectoryName {
                given_name: name.given,
                family_name: name.family,
            }),
            display_name: profile.display_name,
            emails: profile
                .emails
                .into_iter()
                .map(|email| proto::DirectoryEmail {
                    value: email.value,
                    r#type: email.kind,
                    primary: email.primary,
                })
                .collect(),
            active: user.status == UserStatus::Active,
            manager_user_id: user.reporting_to.map(|id| id.to_string()),
            password: None,
        }),
        role: user.role.clone(),
        create_time: Some(timestamp(user.created_at)),
        update_time: Some(timestamp(user.updated_at)),
        etag: user.etag(),
    }
}

/// A group as a directory sees it; `role`, the role it gives, when known.
pub fn directory_group(group: &Group, role: Option<&str>) -> proto::DirectoryGroup {
    proto::DirectoryGroup {
        id: group.id.to_string(),
        fields: Some(proto::DirectoryGroupFields {
            display_name: group.display_name.clone(),
            external_id: group.external_id.clone(),
            member_user_ids: group.members.iter().map(Uuid::to_string).collect(),
        }),
        role: role.unwrap_or_default().to_owned(),
        create_time: Some(timestamp(group.created_at)),
        update_time: Some(timestamp(group.updated_at)),
        etag: group.etag(),
    }
}
