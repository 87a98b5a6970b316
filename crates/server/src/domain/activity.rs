//! The activity log's vocabulary: what happened, and which fields changed.
//! An action's name is also the routing key of the event it publishes.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

named_enum! {
    /// What happened: the activity entry's action and its event's routing key.
    pub enum Action {
        InvitationCreated = "invitation.created",
        InvitationResent = "invitation.resent",
        InvitationRevoked = "invitation.revoked",
        InvitationAccepted = "invitation.accepted",
        InvitationUpdated = "invitation.updated",
        UserUpdated = "user.updated",
        UserRoleChanged = "user.role_changed",
        UserReportingToChanged = "user.reporting_to_changed",
        UserDeactivated = "user.deactivated",
        UserReactivated = "user.reactivated",
        UserSignedIn = "user.signed_in",
        UserSignedOut = "user.signed_out",
        UserSessionsEnded = "user.sessions_ended",
        UserAccessExpiryChanged = "user.access_expiry_changed",
        UserAccessExpired = "user.access_expired",
        UserProvisioned = "user.provisioned",
        DirectoryTokenCreated = "directory.token_created",
        DirectoryTokenRevoked = "directory.token_revoked",
        DirectoryGroupCreated = "directory.group_created",
        DirectoryGroupUpdated = "directory.group_updated",
        DirectoryGroupDeleted = "directory.group_deleted",
        InviteLinkCreated = "invite_link.created",
        InviteLinkRevoked = "invite_link.revoked",
        InviteLinkRotated = "invite_link.rotated",
        JoinRequestReceived = "join_request.received",
        JoinRequestApproved = "join_request.approved",
        JoinRequestDenied = "join_request.denied",
        DomainAdded = "domain.added",
        DomainVerified = "domain.verified",
        DomainUpdated = "domain.updated",
        DomainRemoved = "domain.removed",
        DomainLapsed = "domain.lapsed",
        RoleCreated = "role.created",
        RoleUpdated = "role.updated",
        RoleDeleted = "role.deleted",
        WorkspaceSettingsUpdated = "workspace.settings_updated",
        EmailUnsubscribed = "email.unsubscribed",
        EmailSuppressionCleared = "email.suppression_cleared",
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

    /// A user's sessions ended at `at` (SignOut, ManageUser end_sessions).
    pub fn sessions_ended(at: time::OffsetDateTime) -> Self {
        let at = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        FieldChange::new("sessions_valid_after", "", at)
    }
}

/// One entry of the append-only log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEntry {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub actor_id: Option<Uuid>,
    /// The directory token that made the change (SCIM), when one did.
    pub actor_directory_token_id: Option<Uuid>,
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
