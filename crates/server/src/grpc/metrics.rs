//! Per-method gRPC metrics under the go-grpc-prometheus names:
//! `grpc_server_started_total`, `grpc_server_handled_total` (by
//! `grpc_code`), the `grpc_server_handling_seconds` histogram, and
//! `grpc_server_in_flight_requests`.
//!
//! Every method's handles are resolved once, when the layer is built from
//! the descriptor sets; a request costs a map lookup by path, two clock
//! reads and a few atomic updates: no allocation, no lock. Paths of no known
//! method share one `unknown` series, so a caller cannot grow the label set.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use http_body::{Body, Frame, SizeHint};
use metrics::{Counter, Gauge, Histogram, Label};
use prost::Message;
use tonic::codegen::http::{self, HeaderMap};
use tower_layer::Layer;
use tower_service::Service;

/// The `grpc_code` label of each status code, as Go's `codes.Code.String()`
/// spells it (the names dashboards built for go-grpc-prometheus expect).
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];
const CANCELED: usize = 1;
const UNKNOWN: usize = 2;

/// One method's series.
struct MethodMetrics {
    labels: [Label; 3],
    started: Counter,
    in_flight: Gauge,
    handling: Histogram,
    /// By code, registered on first use: most methods only ever see a few.
    handled: [OnceLock<Counter>; 17],
}

impl MethodMetrics {
    fn new(service: &str, method: &str, kind: &'static str) -> Self {
        let labels = [
            Label::new("grpc_type", kind),
            Label::new("grpc_service", service.to_owned()),
            Label::new("grpc_method", method.to_owned()),
        ];
        MethodMetrics {
            started: metrics::counter!("grpc_server_started_total", labels.to_vec()),
            handling: metrics::histogram!("grpc_server_handling_seconds", labels.to_vec()),
            in_flight: metrics::gauge!("grpc_server_in_flight_requests", labels.to_vec()),
            handled: Default::default(),
            labels,
        }
    }

    fn handled(&self, code: usize) -> &Counter {
        self.handled[code].get_or_init(|| {
            let mut labels = self.labels.to_vec();
            labels.push(Label::new("grpc_code", CODE_NAMES[code]));
            metrics::counter!("grpc_server_handled_total", labels)
        })
    }
}

/// The series of every known method by path (`/package.Service/Method`).
struct MethodTable {
    by_path: HashMap<String, Arc<MethodMetrics>>,
    unknown: Arc<MethodMetrics>,
}

impl MethodTable {
    fn from_descriptor_sets(sets: &[&[u8]]) -> Self {
        let mut by_path = HashMap::new();
        for set in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    let full = match file.package() {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    for method in &service.method {
                        let kind = match (method.client_streaming(), method.server_streaming()) {
                            (false, false) => "unary",
                            (true, false) => "client_stream",
                            (false, true) => "server_stream",
                            (true, true) => "bidi_stream",
                        };
                        by_path.insert(
                            format!("/{full}/{}", method.name()),
                            Arc::new(MethodMetrics::new(&full, method.name(), kind)),
                        );
                    }
                }
            }
        }
        MethodTable {
            by_path,
            unknown: Arc::new(MethodMetrics::new("unknown", "unknown", "unknown")),
        }
    }

    fn get(&self, path: &str) -> &Arc<MethodMetrics> {
        self.by_path.get(path).unwrap_or(&self.unknown)
    }
}

/// Counts and times every call by method and status code.
#[derive(Clone)]
pub struct MetricsLayer {
    table: Arc<MethodTable>,
}

impl MetricsLayer {
    /// The methods of the services in `descriptor_sets` (encoded
    /// `FileDescriptorSet`s); resolve handles only after the recorder is
    /// installed.
    pub fn new(descriptor_sets: &[&[u8]]) -> Self {
        MetricsLayer {
            table: Arc::new(MethodTable::from_descriptor_sets(descriptor_sets)),
        }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        Metered {
            inner,
            table: self.table.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    table: Arc<MethodTable>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Metered<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = self.table.get(request.uri().path()).clone();
        method.started.increment(1);
        method.in_flight.increment(1.0);
        MeteredFuture {
            inner: self.inner.call(request),
            call: Some(Call {
                method,
                started: Instant::now(),
            }),
        }
    }
}

/// A call under way: recorded once, with its code, when it ends; as
/// `Canceled` if it is dropped first (the client went away).
struct Call {
    method: Arc<MethodMetrics>,
    started: Instant,
}

impl Call {
    fn finish(self, code: usize) {
        self.method
            .handling
            .record(self.started.elapsed().as_secs_f64());
        self.method.handled(code).increment(1);
        // `Drop` decrements the in-flight gauge.
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.method.in_flight.decrement(1.0);
    }
}

/// The code in a `grpc-status` header or trailer, if there is one.
fn status_code(headers: &HeaderMap) -> Option<usize> {
    let value = headers.get("grpc-status")?;
    let code = std::str::from_utf8(value.as_bytes())
        .ok()?
        .parse::<usize>()
        .ok()?;
    Some(if code < CODE_NAMES.len() {
        code
    } else {
        UNKNOWN
    })
}

pin_project_lite::pin_project! {
    pub struct MeteredFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }

    impl<F> PinnedDrop for MeteredFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(call) = this.project().call.take() {
                call.finish(CANCELED);
            }
        }
    }
}

impl<F, B, E> Future for MeteredFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<MeteredBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                // A status in the headers (trailers-only: every error) ends
                // the call now; otherwise the trailers will carry it.
                let call = match (call, status_code(response.headers())) {
                    (Some(call), Some(code)) => {
                        call.finish(code);
                        None
                    }
                    (call, _) => call,
                };
                Ok(response.map(|inner| MeteredBody { inner, call }))
            }
            Err(error) => {
                if let Some(call) = call {
                    call.finish(UNKNOWN);
                }
                Err(error)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// The response body, watched for the trailers that carry the status.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }

    impl<B> PinnedDrop for MeteredBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(call) = this.project().call.take() {
                call.finish(CANCELED);
            }
        }
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        let code = match &frame {
            Some(Ok(frame)) => frame
                .trailers_ref()
                .map(|trailers| status_code(trailers).unwrap_or(UNKNOWN)),
            Some(Err(_)) => Some(UNKNOWN),
            // A gRPC response ends with its trailers; an end without them
            // is no status the client could read.
            None => Some(UNKNOWN),
        };
        // Only a frame that ends the call takes it: data frames leave it be.
        if let Some(code) = code
            && let Some(call) = this.call.take()
        {
            call.finish(code);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_method_of_the_api_has_its_series_and_other_paths_share_one() {
        let table = MethodTable::from_descriptor_sets(&[
            wowchat_users_api::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ]);
        let invite = table.get("/wowchat.users.v1.UserService/InviteUser");
        assert_eq!(invite.labels[1].value(), "wowchat.users.v1.UserService");
        assert_eq!(invite.labels[2].value(), "InviteUser");
        assert_eq!(invite.labels[0].value(), "unary");
        let watch = table.get("/grpc.health.v1.Health/Watch");
        assert_eq!(watch.labels[0].value(), "server_stream");
        assert!(Arc::ptr_eq(
            table.get("/made.up.Service/Anything"),
            &table.unknown
        ));
    }

    #[test]
    fn codes_are_named_as_go_grpc_prometheus_names_them() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", "7".parse().unwrap());
        assert_eq!(
            CODE_NAMES[status_code(&headers).unwrap()],
            "PermissionDenied"
        );
        headers.insert("grpc-status", "99".parse().unwrap());
        assert_eq!(status_code(&headers), Some(UNKNOWN));
        assert_eq!(CODE_NAMES[0], "OK");
    }
}
