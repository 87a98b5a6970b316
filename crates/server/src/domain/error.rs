//! The one error type of every operation. It is turned into a gRPC status in
//! exactly one place (`grpc::status`); storage failures stay opaque inside it.

use std::time::Duration;

named_enum! {
    /// A stable, machine-readable reason, sent as the `ErrorInfo` reason.
    pub enum Reason {
        InvalidArgument = "INVALID_ARGUMENT",
        InvalidPageToken = "INVALID_PAGE_TOKEN",
        RoleNotFound = "ROLE_NOT_FOUND",
        RoleExists = "ROLE_EXISTS",
        RoleBuiltIn = "ROLE_BUILT_IN",
        RoleInUse = "ROLE_IN_USE",
        PermissionNotFound = "PERMISSION_NOT_FOUND",
        ReportingToNotFound = "REPORTING_TO_NOT_FOUND",
        ReportingToInactive = "REPORTING_TO_INACTIVE",
        ReportingCycle = "REPORTING_CYCLE",
        UserNotFound = "USER_NOT_FOUND",
        InvitationNotFound = "INVITATION_NOT_FOUND",
        InvitationPending = "INVITATION_PENDING",
        UserAlreadyMember = "USER_ALREADY_MEMBER",
        InvitationExpired = "INVITATION_EXPIRED",
        InvitationRevoked = "INVITATION_REVOKED",
        InvitationAlreadyAccepted = "INVITATION_ALREADY_ACCEPTED",
        LastOwner = "LAST_OWNER",
        EtagMismatch = "ETAG_MISMATCH",
        RequestIdReused = "REQUEST_ID_REUSED",
        ResendCooldown = "RESEND_COOLDOWN",
        InvalidCredentials = "INVALID_CREDENTIALS",
        SignInRateLimited = "SIGN_IN_RATE_LIMITED",
        InvitationRateLimited = "INVITATION_RATE_LIMITED",
        RecipientRateLimited = "RECIPIENT_RATE_LIMITED",
        RecipientSuppressed = "RECIPIENT_SUPPRESSED",
        EmailSuppressionNotFound = "EMAIL_SUPPRESSION_NOT_FOUND",
        RecipientUnsubscribed = "RECIPIENT_UNSUBSCRIBED",
        InvalidUnsubscribeToken = "INVALID_UNSUBSCRIBE_TOKEN",
        SeatLimitReached = "SEAT_LIMIT_REACHED",
        EmailDomainNotAllowed = "EMAIL_DOMAIN_NOT_ALLOWED",
        TokenMissing = "TOKEN_MISSING",
        TokenInvalid = "TOKEN_INVALID",
        TokenExpired = "TOKEN_EXPIRED",
        SessionEnded = "SESSION_ENDED",
        UnknownCaller = "UNKNOWN_CALLER",
        UserDeactivated = "USER_DEACTIVATED",
        UserAccessExpired = "USER_ACCESS_EXPIRED",
        PermissionMissing = "PERMISSION_MISSING",
        RoleAboveCaller = "ROLE_ABOVE_CALLER",
        ConcurrentChange = "CONCURRENT_CHANGE",
        HashingBusy = "HASHING_BUSY",
        InvitationAttemptsExceeded = "INVITATION_ATTEMPTS_EXCEEDED",
        InvitationSendLimit = "INVITATION_SEND_LIMIT",
        InviterNotAuthorized = "INVITER_NOT_AUTHORIZED",
        DirectoryUserExists = "DIRECTORY_USER_EXISTS",
        DirectoryGroupExists = "DIRECTORY_GROUP_EXISTS",
        DirectoryGroupNotFound = "DIRECTORY_GROUP_NOT_FOUND",
        UserManagedByDirectory = "USER_MANAGED_BY_DIRECTORY",
        DirectoryTokenNotFound = "DIRECTORY_TOKEN_NOT_FOUND",
        DirectoryRateLimited = "DIRECTORY_RATE_LIMITED",
        InviteLinkNotFound = "INVITE_LINK_NOT_FOUND",
        InviteLinkLimitReached = "INVITE_LINK_LIMIT_REACHED",
        InviteLinkRevoked = "INVITE_LINK_REVOKED",
        JoinRequestNotFound = "JOIN_REQUEST_NOT_FOUND",
        JoinRequestClosed = "JOIN_REQUEST_CLOSED",
        JoiningRateLimited = "JOINING_RATE_LIMITED",
        DomainNotFound = "DOMAIN_NOT_FOUND",
        DomainExists = "DOMAIN_EXISTS",
        DomainNotVerifiable = "DOMAIN_NOT_VERIFIABLE",
        DomainRecordNotFound = "DOMAIN_RECORD_NOT_FOUND",
        DomainVerifiedElsewhere = "DOMAIN_VERIFIED_ELSEWHERE",
        DomainClaimExpired = "DOMAIN_CLAIM_EXPIRED",
        ServiceUnavailable = "SERVICE_UNAVAILABLE",
        ServerOverloaded = "SERVER_OVERLOADED",
        Internal = "INTERNAL",
    }
}

/// One invalid request field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {violations:?}")]
    InvalidArgument {
        reason: Reason,
        violations: Vec<FieldViolation>,
    },
    #[error("{message}")]
    NotFound { reason: Reason, message: String },
    #[error("{message}")]
    AlreadyExists { reason: Reason, message: String },
    #[error("{message}")]
    FailedPrecondition { reason: Reason, message: String },
    #[error("{message}")]
    Aborted { reason: Reason, message: String },
    /// FAILED_PRECONDITION RECIPIENT_SUPPRESSED: no invitation email goes
    /// to the address, for the cause its ErrorInfo metadata names.
    #[error("invitation emails to this address are suppressed ({0})")]
    RecipientSuppressed(crate::domain::suppression::SuppressionCause),
    #[error("{message}")]
    ResourceExhausted {
        reason: Reason,
        message: String,
        retry_after: Duration,
    },
    #[error("{message}")]
    Unauthenticated { reason: Reason, message: String },
    #[error("{message}")]
    PermissionDenied { reason: Reason, message: String },
    /// A dependency (Postgres) cannot be reached; the caller may retry.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything unexpected; logged whole, never shown to the caller.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        Error::InvalidArgument {
            reason: Reason::InvalidArgument,
            violations: vec![FieldViolation::new(field, description)],
        }
    }

    pub fn invalid_with(reason: Reason, field: &str, description: impl Into<String>) -> Self {
        Error::InvalidArgument {
            reason,
            violations: vec![FieldViolation::new(field, description)],
        }
    }

    pub fn not_found(reason: Reason, message: impl Into<String>) -> Self {
        Error::NotFound {
            reason,
            message: message.into(),
        }
    }

    pub fn precondition(reason: Reason, message: impl Into<String>) -> Self {
        Error::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }

    pub fn denied(reason: Reason, message: impl Into<String>) -> Self {
        Error::PermissionDenied {
            reason,
            message: message.into(),
        }
    }

    pub fn unauthenticated(reason: Reason, message: impl Into<String>) -> Self {
        Error::Unauthenticated {
            reason,
            message: message.into(),
        }
    }

    /// RESOURCE_EXHAUSTED with a retry delay of `wait` rounded up to whole
    /// milliseconds, at least one: "now" would invite an immediate retry.
    pub fn rate_limited(reason: Reason, message: &str, wait: Duration) -> Self {
        let retry_after = Duration::from_millis(
            u64::try_from(wait.as_millis())
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        );
        Error::ResourceExhausted {
            reason,
            message: message.to_owned(),
            retry_after,
        }
    }

    /// A deadlock or serialization failure: the change lost a race with
    /// another and may simply run again.
    pub fn concurrency_conflict() -> Self {
        Error::Aborted {
            reason: Reason::ConcurrentChange,
            message: "a concurrent change conflicted with this one; retry".into(),
        }
    }

    pub fn is_concurrency_conflict(&self) -> bool {
        matches!(
            self,
            Error::Aborted {
                reason: Reason::ConcurrentChange,
                ..
            }
        )
    }

    pub fn user_not_found() -> Self {
        Error::not_found(Reason::UserNotFound, "user not found")
    }

    /// Refuses a change sent with the etag of an older `version` than
    /// `current` (AIP-154): the `what` changed since the caller read it.
    pub fn unless_current(expected: Option<i64>, current: i64, what: &str) -> Result<(), Error> {
        match expected {
            Some(expected) if expected != current => Err(Error::Aborted {
                reason: Reason::EtagMismatch,
                message: format!("the {what} changed since it was read; read it again"),
            }),
            _ => Ok(()),
        }
    }

    pub fn invitation_not_found() -> Self {
        Error::not_found(Reason::InvitationNotFound, "invitation not found")
    }

    /// Unknown, expired, revoked, exhausted or rotated: one answer, so a
    /// secret's holder learns nothing more.
    pub fn invite_link_not_found() -> Self {
        Error::not_found(
            Reason::InviteLinkNotFound,
            "this invite link does not work; ask for a new one",
        )
    }

    pub fn join_request_not_found() -> Self {
        Error::not_found(Reason::JoinRequestNotFound, "join request not found")
    }
}

/// Collects the violations of a request before failing, so a caller sees
/// them at once; at most [`Violations::MAX`], so no input can blow up the
/// error trailer.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// The most violations one error reports.
    pub const MAX: usize = 20;

    /// Records the error of `result` under `field`, returning its value if any.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(description) => {
                self.push(field, description);
                None
            }
        }
    }

    pub fn push(&mut self, field: &str, description: impl Into<String>) {
        if self.0.len() < Self::MAX {
            self.0.push(FieldViolation::new(field, description));
        }
    }

    /// Fails with every recorded violation, or succeeds when there are none.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                reason: Reason::InvalidArgument,
                violations: self.0,
            })
        }
    }
}
