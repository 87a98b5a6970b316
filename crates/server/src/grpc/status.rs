//! The one place a domain error becomes a gRPC status: the right code, an
//! `ErrorInfo` with a stable reason, `BadRequest` field violations for
//! invalid input, `RetryInfo` when waiting helps. Internal detail is logged,
//! never sent.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use wowchat_users_api::v1 as proto;

use crate::domain::{Error, Reason};

pub use wowchat_users_api::ERROR_DOMAIN;

/// The code, reason and message the caller sees for `err`; unexpected
/// detail is logged here and never shown.
fn parts(err: &Error) -> (Code, Reason, String) {
    match err {
        Error::InvalidArgument { reason, violations } => {
            (Code::InvalidArgument, *reason, invalid_message(violations))
        }
        Error::NotFound { reason, message } => (Code::NotFound, *reason, message.clone()),
        Error::AlreadyExists { reason, message } => (Code::AlreadyExists, *reason, message.clone()),
        Error::FailedPrecondition { reason, message } => {
            (Code::FailedPrecondition, *reason, message.clone())
        }
        Error::Aborted { reason, message } => (Code::Aborted, *reason, message.clone()),
        Error::RecipientSuppressed(cause) => (
            Code::FailedPrecondition,
            Reason::RecipientSuppressed,
            cause.refusal_message().to_owned(),
        ),
        Error::ResourceExhausted {
            reason, message, ..
        } => {
            // Refusals by limit: sign-in, invitations, token attempts,
            // hashing queue, overload. Only refusals pay for the lookup.
            metrics::counter!("wowchat_rate_limit_refusals_total", "limit" => reason.as_str())
                .increment(1);
            (Code::ResourceExhausted, *reason, message.clone())
        }
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
    }
}

/// What is wrong, for people and logs that show only the message: the
/// first violations (`email: is not a valid email address`), the rest
/// counted; the `BadRequest` details list them all.
fn invalid_message(violations: &[crate::domain::FieldViolation]) -> String {
    const SHOWN: usize = 3;
    let mut message = violations
        .iter()
        .take(SHOWN)
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    if message.is_empty() {
        return "the request is invalid".to_owned();
    }
    if violations.len() > SHOWN {
        message.push_str(&format!(" (and {} more)", violations.len() - SHOWN));
    }
    message
}

/// A refused row of a batch: what the single call would have returned.
pub fn refusal(err: Error) -> proto::InviteRefusal {
    let (code, reason, message) = parts(&err);
    let (invalid_fields, retry_delay) = match err {
        Error::InvalidArgument { violations, .. } => {
            (violations.into_iter().map(|v| v.field).collect(), None)
        }
        Error::ResourceExhausted { retry_after, .. } => (
            Vec::new(),
            prost_types::Duration::try_from(retry_after).ok(),
        ),
        _ => (Vec::new(), None),
    };
    proto::InviteRefusal {
        code: code as i32,
        reason: reason.as_str().to_owned(),
        message,
        invalid_fields,
        retry_delay,
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let (code, reason, message) = parts(&err);
        let metadata = match &err {
            // Which suppression: `bounced` (an administrator may clear it)
            // or `unsubscribed` (nobody but the recipient decides).
            Error::RecipientSuppressed(cause) => {
                HashMap::from([("suppression".to_owned(), cause.as_str().to_owned())])
            }
            _ => HashMap::new(),
        };
        let mut details = ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, metadata);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_in_the_contract_and_the_contract_names_no_other_of_the_service() {
        for reason in Reason::ALL {
            assert!(
                proto::ErrorReason::from_str_name(reason.as_str()).is_some(),
                "{} is missing from ErrorReason (proto/wowchat/users/v1/errors.proto)",
                reason.as_str()
            );
        }
        // The contract's others are the gateway's own refusals.
        let gateway = [
            "INVALID_REQUEST",
            "BODY_UNREADABLE",
            "ROUTE_NOT_FOUND",
            "METHOD_NOT_ALLOWED",
            "BODY_READ_TIMEOUT",
        ];
        for number in 1.. {
            let Ok(value) = proto::ErrorReason::try_from(number) else {
                break;
            };
            let name = value.as_str_name();
            assert!(
                Reason::parse(name).is_some() || gateway.contains(&name),
                "ErrorReason {name} is given by nothing"
            );
        }
    }
}
