//! SCIM errors (RFC 7644 §3.12): every failure under `/scim/v2` is an Error
//! body with `status` as a string, never the REST gateway's google.rpc.Status.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::CONTENT_TYPE;

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM error: an HTTP status, an optional `scimType` and a detail.
#[derive(Debug)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl ScimError {
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), detail)
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidFilter"), detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidPath"), detail)
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, None, detail)
    }

    /// The SCIM error of a failed call to the service.
    pub fn of_status(status: &Status) -> Self {
        let reason = status
            .get_details_error_info()
            .map(|info| info.reason)
            .unwrap_or_default();
        let detail = status.message().to_owned();
        let (http, scim_type) = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => {
                (StatusCode::BAD_REQUEST, Some("invalidValue"))
            }
            // A rule refused the change: a reporting cycle, the last owner,
            // a domain the workspace does not allow, a full workspace.
            Code::FailedPrecondition => (StatusCode::BAD_REQUEST, Some("invalidValue")),
            Code::NotFound => (StatusCode::NOT_FOUND, None),
            Code::AlreadyExists => (StatusCode::CONFLICT, Some("uniqueness")),
            Code::Aborted if reason == "ETAG_MISMATCH" => (StatusCode::PRECONDITION_FAILED, None),
            Code::Aborted => (StatusCode::CONFLICT, None),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, None),
            Code::Unauthenticated => (StatusCode::UNAUTHORIZED, None),
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, Some("tooMany")),
            Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
            Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, None),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        let detail = if http == StatusCode::INTERNAL_SERVER_ERROR {
            "the service failed; try again".to_owned()
        } else if reason.is_empty() {
            detail
        } else {
            format!("{detail} ({reason})")
        };
        let retry_after = status
            .get_details_retry_info()
            .and_then(|retry| retry.retry_delay)
            .map(|delay| delay.as_secs_f64().ceil().max(1.0) as u64);
        ScimError {
            status: http,
            scim_type,
            detail,
            retry_after,
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            body.to_string(),
        )
            .into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
