//! The activity log's vocabulary: what happened, and which fields changed.
//! An action's name is also the routing key of the event it publishes.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    InvitationCreated,
    InvitationResent,
    InvitationRevoked,
    InvitationAccepted,
    InvitationUpdated,
    UserUpdated,
    UserRoleChanged,
    UserReportingToChanged,
    UserDeactivated,
    UserReactivated,
    UserSignedIn,
    RoleCreated,
    RoleUpdated,
    RoleDeleted,
    WorkspaceSettingsUpdated,
}

impl Action {
    pub const ALL: [Action; 15] = [
        Action::InvitationCreated,
        Action::InvitationResent,
        Action::InvitationRevoked,
        Action::InvitationAccepted,
        Action::InvitationUpdated,
        Action::UserUpdated,
        Action::UserRoleChanged,
        Action::UserReportingToChanged,
        Action::UserDeactivated,
        Action::UserReactivated,
        Action::UserSignedIn,
        Action::RoleCreated,
        Action::RoleUpdated,
        Action::RoleDeleted,
        Action::WorkspaceSettingsUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::InvitationCreated => "invitation.created",
            Action::InvitationResent => "invitation.resent",
            Action::InvitationRevoked => "invitation.revoked",
            Action::InvitationAccepted => "invitation.accepted",
            Action::InvitationUpdated => "invitation.updated",
            Action::UserUpdated => "user.updated",
            Action::UserRoleChanged => "user.role_changed",
            Action::UserReportingToChanged => "user.reporting_to_changed",
            Action::UserDeactivated => "user.deactivated",
            Action::UserReactivated => "user.reactivated",
            Action::UserSignedIn => "user.signed_in",
            Action::RoleCreated => "role.created",
            Action::RoleUpdated => "role.updated",
            Action::RoleDeleted => "role.deleted",
            Action::WorkspaceSettingsUpdated => "workspace.settings_updated",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// One field's value before and after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

impl FieldChange {
    pub fn new(field: &str, old: impl ToString, new: impl ToString) -> Self {
        FieldChange {
            field: field.to_owned(),
            old: old.to_string(),
            new: new.to_string(),
        }
    }
}

/// One entry of the append-only log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEntry {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub target_user_id: Option<Uuid>,
    pub target_invitation_id: Option<Uuid>,
    pub changes: Vec<FieldChange>,
    pub request_id: String,
    pub occurred_at: OffsetDateTime,
}

/// Filters of `ListActivity`.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub actor_id: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    pub action: Option<Action>,
    pub from: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}
