//! The one place a domain error becomes a gRPC status: the right code, an
//! `ErrorInfo` with a stable reason, `BadRequest` field violations for
//! invalid input, `RetryInfo` when waiting helps. Internal detail is logged,
//! never sent.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::{Error, Reason};

/// The `ErrorInfo` domain of every error this service returns.
pub const ERROR_DOMAIN: &str = "users.wowchat.v1";

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let (code, reason, message) = match &err {
            Error::InvalidArgument { reason, .. } => (
                Code::InvalidArgument,
                *reason,
                "the request is invalid".to_owned(),
            ),
            Error::NotFound { reason, message } => (Code::NotFound, *reason, message.clone()),
            Error::AlreadyExists { reason, message } => {
                (Code::AlreadyExists, *reason, message.clone())
            }
            Error::FailedPrecondition { reason, message } => {
                (Code::FailedPrecondition, *reason, message.clone())
            }
            Error::Aborted { reason, message } => (Code::Aborted, *reason, message.clone()),
            Error::ResourceExhausted {
                reason, message, ..
            } => (Code::ResourceExhausted, *reason, message.clone()),
            Error::Unauthenticated { reason, message } => {
                (Code::Unauthenticated, *reason, message.clone())
            }
            Error::PermissionDenied { reason, message } => {
                (Code::PermissionDenied, *reason, message.clone())
            }
            Error::Unavailable(source) => {
                tracing::warn!(error = ?source, "dependency unavailable");
                (
                    Code::Unavailable,
                    Reason::ServiceUnavailable,
                    "the service is temporarily unavailable".to_owned(),
                )
            }
            Error::Unexpected(source) => {
                tracing::error!(error = ?source, "unexpected error");
                (
                    Code::Internal,
                    Reason::Internal,
                    "internal error".to_owned(),
                )
            }
        };
        let mut details =
            ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new());
        match err {
            Error::InvalidArgument { violations, .. } => {
                for violation in violations {
                    details.add_bad_request_violation(violation.field, violation.description);
                }
            }
            Error::ResourceExhausted { retry_after, .. } => {
                details.set_retry_info(Some(retry_after));
            }
            _ => {}
        }
        Status::with_error_details(code, message, details)
    }
}
