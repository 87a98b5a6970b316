//! Requests and ManageUser actions built in one expression, so a test reads
//! as its sentence: `app.manage(&ann.id, deactivate("Left"))`.

use tonic::{Request, metadata::MetadataValue};
use wowchat_users_api::v1::{
    self as proto,
    manage_user_request::{self as manage, Action},
};

/// An InviteUser request for `email` as `role`, nothing else set.
pub fn invitation_request(email: &str, role: &str) -> proto::InviteUserRequest {
    proto::InviteUserRequest {
        email: email.into(),
        role: role.into(),
        ..Default::default()
    }
}

/// An InviteUser request for `email` as `role`, reporting to `manager_id`.
pub fn invitation_reporting_to(
    email: &str,
    role: &str,
    manager_id: &str,
) -> proto::InviteUserRequest {
    proto::InviteUserRequest {
        reporting_to_user_id: Some(manager_id.into()),
        ..invitation_request(email, role)
    }
}

/// A ManageUser request applying `action` to `user_id`, without etag or request id.
pub fn manage_request(user_id: &str, action: Action) -> proto::ManageUserRequest {
    proto::ManageUserRequest {
        user_id: user_id.into(),
        action: Some(action),
        ..Default::default()
    }
}

/// A GetUser request for `user_id`.
pub fn get_user_request(user_id: &str) -> proto::GetUserRequest {
    proto::GetUserRequest {
        user_id: user_id.into(),
    }
}

/// A GetInvitation request for `invitation_id`.
pub fn get_invitation_request(invitation_id: &str) -> proto::GetInvitationRequest {
    proto::GetInvitationRequest {
        invitation_id: invitation_id.into(),
    }
}

/// A ResendInvitation request for `invitation_id`: the default validity, no etag.
pub fn resend_request(invitation_id: &str) -> proto::ResendInvitationRequest {
    proto::ResendInvitationRequest {
        invitation_id: invitation_id.into(),
        ..Default::default()
    }
}

/// A RevokeInvitation request for `invitation_id`, without etag.
pub fn revoke_request(invitation_id: &str) -> proto::RevokeInvitationRequest {
    proto::RevokeInvitationRequest {
        invitation_id: invitation_id.into(),
        ..Default::default()
    }
}

/// A CreateRole request for `name` holding `permissions`.
pub fn new_role(name: &str, permissions: &[&str]) -> proto::CreateRoleRequest {
    proto::CreateRoleRequest {
        name: name.into(),
        permissions: strings(permissions),
        ..Default::default()
    }
}

/// An UpdateRole request (no etag) giving `name` exactly `permissions`.
pub fn role_update(name: &str, permissions: &[&str]) -> proto::UpdateRoleRequest {
    proto::UpdateRoleRequest {
        name: name.into(),
        permissions: strings(permissions),
        ..Default::default()
    }
}

/// A DeleteRole request for `name`, without request id.
pub fn delete_role_request(name: &str) -> proto::DeleteRoleRequest {
    proto::DeleteRoleRequest {
        name: name.into(),
        ..Default::default()
    }
}

/// A CheckPermission request: does `user_id` hold `permission`?
pub fn permission_check(user_id: &str, permission: &str) -> proto::CheckPermissionRequest {
    proto::CheckPermissionRequest {
        user_id: user_id.into(),
        permission: permission.into(),
    }
}

/// `items` as owned strings, as repeated string fields take them.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

pub fn rename(display_name: &str) -> Action {
    Action::UpdateProfile(manage::UpdateProfile {
        display_name: Some(display_name.into()),
    })
}

pub fn change_role(role: &str) -> Action {
    Action::ChangeRole(manage::ChangeRole { role: role.into() })
}

pub fn report_to(manager_id: &str) -> Action {
    Action::SetReportingTo(manage::SetReportingTo {
        reporting_to_user_id: manager_id.into(),
    })
}

pub fn clear_manager() -> Action {
    Action::ClearReportingTo(manage::ClearReportingTo {})
}

pub fn deactivate(reason: &str) -> Action {
    Action::Deactivate(manage::Deactivate {
        reason: reason.into(),
    })
}

pub fn reactivate() -> Action {
    Action::Reactivate(manage::Reactivate {})
}

/// Access that ends `seconds` from now (in the past for a negative count).
pub fn access_ends_in(seconds: f64) -> Action {
    Action::SetAccessExpiry(manage::SetAccessExpiry {
        expire_time: Some(timestamp_in(seconds)),
    })
}

pub fn access_never_ends() -> Action {
    Action::ClearAccessExpiry(manage::ClearAccessExpiry {})
}

/// The time `seconds` from now, as a protobuf timestamp.
pub fn timestamp_in(seconds: f64) -> prost_types::Timestamp {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
        + seconds;
    prost_types::Timestamp {
        seconds: at.floor() as i64,
        nanos: (at.fract() * 1e9) as i32,
    }
}

/// A change as the activity log and the events list it.
pub fn field_change(field: &str, old: &str, new: &str) -> proto::FieldChange {
    proto::FieldChange {
        field: field.into(),
        old_value: old.into(),
        new_value: new.into(),
    }
}

/// A validity of `seconds`, as InviteUser and ResendInvitation take it.
pub fn expires_in(seconds: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos: 0 })
}

/// `message` with `authorization: Bearer <token>`.
pub fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
}

/// `request` with `x-request-id: <id>`.
pub fn with_request_id<T>(mut request: Request<T>, id: &str) -> Request<T> {
    request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::try_from(id).unwrap());
    request
}
