//! Errors as REST clients of Google APIs, grpc-gateway and Envoy's
//! transcoder see them: the `google.rpc.Status` JSON (`code`, `message`,
//! `details` with each detail decoded and named by `@type`) under the HTTP
//! status of its gRPC code, `Retry-After` from a `RetryInfo`.
//!
//! [`GatewayError`] is every way a REST call can fail, each turned into its
//! response here and nowhere else (axum's error-handling example), so the
//! gateway's handler is a chain of `?`.

use std::{collections::HashMap, sync::LazyLock};

use axum::{
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use prost_reflect::{DescriptorError, DescriptorPool, DynamicMessage, SerializeOptions, Value};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{routes::NoRoute, transcode::BadInput};

/// The ErrorInfo domain of the errors the gateway makes itself: the
/// service's own.
pub const DOMAIN: &str = wowchat_users_api::ERROR_DOMAIN;

/// The API's descriptors, decoded once for the process: the routes'
/// messages, and the `google.rpc` details an error body names by `@type`.
/// One static pool because an error's response is written where no
/// handler state reaches ([`IntoResponse`] takes the error alone).
pub fn descriptors() -> Result<&'static DescriptorPool, &'static DescriptorError> {
    static DESCRIPTORS: LazyLock<Result<DescriptorPool, DescriptorError>> =
        LazyLock::new(|| DescriptorPool::decode(wowchat_users_api::FILE_DESCRIPTOR_SET));
    DESCRIPTORS.as_ref()
}

/// Why a REST call got no answer from the service.
#[derive(Debug)]
pub enum GatewayError {
    /// No route's template matches the path.
    NoRoute { method: Method, path: String },
    /// Templates match the path, with other methods: 405 with `Allow`.
    MethodNotAllowed {
        method: Method,
        path: String,
        allowed: Vec<Method>,
    },
    /// The request body was over the limit, too slow or unreadable.
    Body(BodyError),
    /// The path, query or body does not make the request message.
    BadInput(BadInput),
    /// No replica of the service is known.
    NoReplica,
    /// The call failed: the service's status, or the gateway's own when
    /// no replica could take it.
    Call(Status),
    /// The service's answer could not be written as JSON.
    Encoding(String),
}

impl GatewayError {
    /// A request no route takes.
    pub fn no_route(why: NoRoute, method: &Method, path: &str) -> Self {
        let (method, path) = (method.clone(), path.to_owned());
        match why {
            NoRoute::NotFound => GatewayError::NoRoute { method, path },
            NoRoute::MethodNotAllowed(allowed) => GatewayError::MethodNotAllowed {
                method,
                path,
                allowed,
            },
        }
    }

    /// The HTTP status, where it is not the one of the gRPC code.
    fn http_status(&self) -> Option<StatusCode> {
        match self {
            GatewayError::MethodNotAllowed { .. } => Some(StatusCode::METHOD_NOT_ALLOWED),
            GatewayError::Body(body) => Some(body.http),
            _ => None,
        }
    }

    /// The `google.rpc.Status` the client reads. Failed calls the service
    /// (or its absence) is to blame for are logged here, once.
    fn into_status(self) -> Status {
        match self {
            GatewayError::NoRoute { method, path } => gateway_status(
                Code::NotFound,
                "ROUTE_NOT_FOUND",
                format!("no route for {method} {path}"),
                None,
            ),
            GatewayError::MethodNotAllowed { method, path, .. } => gateway_status(
                Code::Unimplemented,
                "METHOD_NOT_ALLOWED",
                format!("{path} does not take {method}"),
                None,
            ),
            GatewayError::Body(body) => {
                gateway_status(body.code, body.reason, body.detail, Some("body"))
            }
            GatewayError::BadInput(bad) => gateway_status(
                Code::InvalidArgument,
                "INVALID_REQUEST",
                format!("{}: {}", bad.field, bad.description),
                Some(&bad.field),
            ),
            GatewayError::NoReplica => no_replica(),
            GatewayError::Call(status) => {
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::Unknown | Code::Internal
                ) {
                    tracing::warn!(code = ?status.code(), message = status.message(), "call failed");
                }
                status
            }
            GatewayError::Encoding(error) => {
                tracing::error!(%error, "encoding a response as JSON");
                Status::internal("the response could not be encoded")
            }
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let http = self.http_status();
        let allow = match &self {
            GatewayError::MethodNotAllowed { allowed, .. } => {
                let allowed: Vec<&str> = allowed.iter().map(Method::as_str).collect();
                HeaderValue::from_str(&allowed.join(", ")).ok()
            }
            _ => None,
        };
        let status = self.into_status();
        // The pool was decoded at startup (`Gateway::build` fails without
        // it); an empty one would still give a body, without details.
        let mut response = match descriptors() {
            Ok(pool) => error_response(&status, pool, http),
            Err(_) => error_response(&status, &DescriptorPool::new(), http),
        };
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        response
    }
}

impl From<BodyError> for GatewayError {
    fn from(error: BodyError) -> Self {
        GatewayError::Body(error)
    }
}

impl From<BadInput> for GatewayError {
    fn from(error: BadInput) -> Self {
        GatewayError::BadInput(error)
    }
}

impl From<Status> for GatewayError {
    fn from(status: Status) -> Self {
        GatewayError::Call(status)
    }
}

/// A request body the gateway could not take, REST's and SCIM's alike.
#[derive(Debug)]
pub struct BodyError {
    /// 413, 408 or 400.
    pub http: StatusCode,
    pub code: Code,
    /// The ErrorInfo reason.
    pub reason: &'static str,
    pub detail: String,
}

/// The status of a call no replica could take: none is known.
pub fn no_replica() -> Status {
    gateway_status(
        Code::Unavailable,
        "SERVICE_UNAVAILABLE",
        "no replica of the service is known".into(),
        None,
    )
}

/// The HTTP status of a gRPC code, as `google/rpc/code.proto` maps them.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A status the gateway makes: `code`, a message, an ErrorInfo `reason`,
/// and a BadRequest violation when `field` is given.
pub fn gateway_status(code: Code, reason: &str, message: String, field: Option<&str>) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, DOMAIN, HashMap::new());
    if let Some(field) = field {
        details.add_bad_request_violation(field, message.clone());
    }
    Status::with_error_details(code, message, details)
}

/// The response of a failed call.
pub fn error_response(
    status: &Status,
    pool: &DescriptorPool,
    http: Option<StatusCode>,
) -> Response {
    let body = status_json(status, pool);
    let mut response = (
        http.unwrap_or_else(|| http_status(status.code())),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    if status.code() == Code::ResourceExhausted {
        let seconds = status
            .get_details_retry_info()
            .and_then(|retry| retry.retry_delay)
            .map(|delay| delay.as_secs_f64().ceil().max(1.0) as u64);
        if let Some(seconds) = seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
    if status.code() == Code::Unauthenticated {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// `{"code": 6, "message": "…", "details": [{"@type": "…ErrorInfo", …}]}`.
/// A detail of a type the descriptors do not know is left out.
pub fn status_json(status: &Status, pool: &DescriptorPool) -> Vec<u8> {
    let fallback = || {
        serde_json::to_vec(&serde_json::json!({
            "code": status.code() as i32,
            "message": status.message(),
            "details": [],
        }))
        .unwrap_or_default()
    };
    let Some(descriptor) = pool.get_message_by_name("google.rpc.Status") else {
        return fallback();
    };
    let mut message = DynamicMessage::decode(descriptor.clone(), status.details())
        .unwrap_or_else(|_| DynamicMessage::new(descriptor));
    message.set_field_by_name("code", Value::I32(status.code() as i32));
    message.set_field_by_name("message", Value::String(status.message().to_owned()));
    // Keep the details the descriptors can decode.
    let options = SerializeOptions::new().skip_default_fields(false);
    if let Some(Value::List(details)) = message.get_field_by_name("details").map(|v| v.into_owned())
    {
        let known: Vec<Value> = details
            .into_iter()
            .filter(|detail| {
                detail.as_message().is_some_and(|any| {
                    any.serialize_with_options(serde_json::value::Serializer, &options)
                        .is_ok()
                })
            })
            .collect();
        message.set_field_by_name("details", Value::List(known));
    }
    let mut out = Vec::new();
    match message.serialize_with_options(&mut serde_json::Serializer::new(&mut out), &options) {
        Ok(()) => out,
        Err(_) => fallback(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use tonic_types::{ErrorDetails, FieldViolation};

    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(wowchat_users_api::FILE_DESCRIPTOR_SET).unwrap()
    }

    #[test]
    fn details_are_decoded_by_type() {
        let mut details = ErrorDetails::with_error_info(
            "INVITATION_PENDING",
            DOMAIN,
            HashMap::from([("email".to_owned(), "a@example.com".to_owned())]),
        );
        details.set_bad_request(vec![FieldViolation::new("email", "is not valid")]);
        let status = Status::with_error_details(Code::AlreadyExists, "pending", details);
        let json: serde_json::Value =
            serde_json::from_slice(&status_json(&status, &pool())).unwrap();
        assert_eq!(json["code"], 6);
        assert_eq!(json["message"], "pending");
        assert_eq!(
            json["details"][0],
            serde_json::json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "INVITATION_PENDING",
                "domain": DOMAIN,
                "metadata": {"email": "a@example.com"}
            })
        );
        assert_eq!(json["details"][1]["fieldViolations"][0]["field"], "email");
    }

    #[test]
    fn exhausted_is_429_with_retry_after_in_whole_seconds() {
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(2_100))),
        );
        let response = error_response(&status, &pool(), None);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }

    #[test]
    fn codes_map_as_google_maps_them() {
        assert_eq!(http_status(Code::AlreadyExists), StatusCode::CONFLICT);
        assert_eq!(http_status(Code::Aborted), StatusCode::CONFLICT);
        assert_eq!(http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(http_status(Code::PermissionDenied), StatusCode::FORBIDDEN);
        assert_eq!(
            http_status(Code::FailedPrecondition),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn a_status_without_details_still_reads_as_a_status() {
        let status = Status::not_found("no such thing");
        let json: serde_json::Value =
            serde_json::from_slice(&status_json(&status, &pool())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": 5, "message": "no such thing", "details": []})
        );
    }
}
