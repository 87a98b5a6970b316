//! The REST gateway of WowChat Users: serves every `google.api.http` route
//! of the API's services over HTTP/1.1 and forwards each call to the gRPC
//! service over the network, as Envoy's transcoder or grpc-gateway would.
//! Routes, messages and the JSON mapping all come from the API crate's
//! descriptor set, so a new RPC needs no code here.
//!
//! - `routes`: the route table and path-template matching;
//! - `transcode`: request message from path, query and body; response JSON;
//! - `codec`: the tonic codec over dynamic messages;
//! - `errors`: `google.rpc.Status` JSON and the HTTP mapping of gRPC codes;
//! - `metrics`: per-route request counts, durations and requests in flight;
//! - `openapi`: the OpenAPI 3.1 document of the same routes.

#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod codec;
pub mod errors;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod transcode;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    Router,
    body::Bytes,
    extract::{ConnectInfo, DefaultBodyLimit, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tonic::{
    Code, Status,
    metadata::{MetadataKey, MetadataValue},
    transport::{Channel, Endpoint},
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use tracing::field;
use wowchat_platform::{
    metrics::MetricsEndpoint,
    telemetry::{self, SpanKind, TRACEPARENT, TRACESTATE},
};

use crate::{
    codec::DynamicCodec,
    errors::{error_response, gateway_status},
    metrics::GatewayMetrics,
    routes::{NoRoute, Routes},
};

/// A setting that is never printed, not even through `{:?}`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// The request id header, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The header that proves to the service that the gateway sent the call.
/// Its value is the shared gateway key; the service drops it on arrival.
pub const GATEWAY_KEY_HEADER: &str = "x-wowchat-gateway-key";
/// The address of the gateway's client (the TCP peer), which the service
/// believes only with a valid [`GATEWAY_KEY_HEADER`].
pub const CLIENT_ADDRESS_HEADER: &str = "x-wowchat-client-address";

/// The gateway's settings: flags, each also an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewaySettings {
    /// Address the REST gateway listens on (port 0 picks a free port).
    #[arg(
        long,
        env = "WOWCHAT_GATEWAY_LISTEN_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub gateway_listen_addr: SocketAddr,

    /// The gRPC service the gateway forwards to.
    #[arg(
        long,
        env = "WOWCHAT_GATEWAY_UPSTREAM",
        default_value = "http://127.0.0.1:50051"
    )]
    pub gateway_upstream: String,

    /// Shared with the service (its `WOWCHAT_GATEWAY_KEY`): with it the
    /// service believes the client address the gateway forwards. Unset: the
    /// service sees the gateway as the client.
    #[arg(long, env = "WOWCHAT_GATEWAY_KEY", hide_env_values = true)]
    pub gateway_key: Option<Secret>,

    /// Largest request body in bytes; larger is 413.
    #[arg(long, env = "WOWCHAT_GATEWAY_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub gateway_body_limit_bytes: usize,

    /// Comma-separated origins allowed by CORS (e.g. `https://app.example.com`);
    /// unset: no CORS headers, browsers on other origins are refused.
    #[arg(long, env = "WOWCHAT_GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub gateway_cors_origins: Vec<String>,

    /// Deadline of each forwarded call.
    #[arg(long, env = "WOWCHAT_GATEWAY_TIMEOUT_SECS", default_value_t = 30)]
    pub gateway_timeout_secs: u64,

    /// Serve Prometheus metrics on this address (e.g. 0.0.0.0:9465); off when unset.
    #[arg(long, env = "WOWCHAT_GATEWAY_METRICS_ADDR")]
    pub gateway_metrics_addr: Option<SocketAddr>,
}

impl GatewaySettings {
    /// The defaults, with the environment applied.
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            settings: GatewaySettings,
        }
        <Only as clap::Parser>::parse_from(["wowchat-gateway"]).settings
    }
}

/// What every request handler shares.
struct Shared {
    pool: DescriptorPool,
    routes: Routes,
    channel: Channel,
    gateway_key: Option<MetadataValue<tonic::metadata::Ascii>>,
    timeout: Duration,
    openapi: Bytes,
    metrics: GatewayMetrics,
}

/// A bound gateway, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    address: SocketAddr,
    router: Router,
    metrics: Option<MetricsEndpoint>,
}

impl Gateway {
    /// Reads the routes, connects (lazily) to the upstream and binds the listener.
    pub async fn build(settings: GatewaySettings) -> anyhow::Result<Gateway> {
        // Before the routes' handles are resolved: earlier ones stay no-ops.
        let metrics = MetricsEndpoint::bind_if(
            settings.gateway_metrics_addr,
            "WOWCHAT_GATEWAY_METRICS_ADDR",
        )
        .await?;
        let pool = DescriptorPool::decode(wowchat_users_api::FILE_DESCRIPTOR_SET)
            .context("decoding the API's descriptor set")?;
        let routes = Routes::from_pool(&pool)?;
        let openapi = Bytes::from(openapi::document_json(&pool, &routes)?);
        let channel = Endpoint::from_shared(settings.gateway_upstream.clone())
            .context("WOWCHAT_GATEWAY_UPSTREAM")?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let gateway_key = settings
            .gateway_key
            .as_ref()
            .map(|key| MetadataValue::try_from(key.expose()))
            .transpose()
            .context("WOWCHAT_GATEWAY_KEY must be visible ASCII")?;
        let shared = Arc::new(Shared {
            pool,
            channel,
            gateway_key,
            timeout: Duration::from_secs(settings.gateway_timeout_secs.max(1)),
            openapi,
            metrics: GatewayMetrics::new(&routes),
            routes,
        });
        let router = router(shared, &settings)?;
        let listener = TcpListener::bind(settings.gateway_listen_addr)
            .await
            .with_context(|| format!("binding {}", settings.gateway_listen_addr))?;
        let address = listener.local_addr()?;
        Ok(Gateway {
            listener,
            address,
            router,
            metrics,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where Prometheus metrics are served, if they are.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::address)
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.address, "serving REST");
        let metrics = self
            .metrics
            .map(|endpoint| endpoint.spawn(std::future::pending()));
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving REST");
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        served?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

fn router(shared: Arc<Shared>, settings: &GatewaySettings) -> anyhow::Result<Router> {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let traced = shared.clone();
    let mut router = Router::new()
        .route("/openapi.json", get(openapi_document))
        // For probes: the process answers HTTP (readiness of the service
        // behind it is the service's own probe).
        .route("/healthz", get(|| async { "ok" }))
        .fallback(transcode)
        .with_state(shared)
        .layer(DefaultBodyLimit::max(settings.gateway_body_limit_bytes))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(move |request: &Request| {
                let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
                // The path only: a query may hold an email or a token.
                let span = tracing::info_span!(
                    "http",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %header(REQUEST_ID_HEADER).unwrap_or_default(),
                    "otel.name" = field::Empty,
                    "otel.kind" = field::Empty,
                );
                // The client's trace goes on here.
                telemetry::continue_trace(&span, header(TRACEPARENT), header(TRACESTATE));
                if telemetry::enabled() {
                    telemetry::describe_span(&span, SpanKind::Server, &span_name(&traced, request));
                }
                span
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    if !settings.gateway_cors_origins.is_empty() {
        let origins = settings
            .gateway_cors_origins
            .iter()
            .map(|origin| HeaderValue::from_str(origin.trim()))
            .collect::<Result<Vec<_>, _>>()
            .context("WOWCHAT_GATEWAY_CORS_ORIGINS")?;
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                ])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static(REQUEST_ID_HEADER),
                ])
                .expose_headers([
                    HeaderName::from_static(REQUEST_ID_HEADER),
                    header::RETRY_AFTER,
                ])
                .max_age(Duration::from_secs(600)),
        );
    }
    Ok(router)
}

/// A request's span name: its method and route template (never the path,
/// whose ids would make every name unique), or the method alone.
fn span_name(shared: &Shared, request: &Request) -> String {
    match shared.routes.find(request.method(), request.uri().path()) {
        Ok(matched) => format!("{} {}", request.method(), matched.route.template.text),
        Err(_) => request.method().to_string(),
    }
}

async fn openapi_document(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        shared.openapi.clone(),
    )
        .into_response()
}

/// Every route of the API, counted and timed by route template.
async fn transcode(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let found = shared.routes.find(&method, uri.path());
    let series = match &found {
        Ok(matched) => shared.metrics.route(matched.index),
        Err(_) => &shared.metrics.unmatched,
    };
    let call = series.start();
    let response = answer(&shared, found, peer, &method, &headers, &uri, body).await;
    call.finish(response.status());
    response
}

/// Match, build the request message, call, answer.
async fn answer(
    shared: &Shared,
    found: Result<routes::Matched<'_>, NoRoute>,
    peer: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let matched = match found {
        Ok(matched) => matched,
        Err(NoRoute::NotFound) => {
            let status = gateway_status(
                Code::NotFound,
                "ROUTE_NOT_FOUND",
                format!("no route for {method} {}", uri.path()),
                None,
            );
            return error_response(&status, &shared.pool, None);
        }
        Err(NoRoute::MethodNotAllowed(allowed)) => {
            let status = gateway_status(
                Code::Unimplemented,
                "METHOD_NOT_ALLOWED",
                format!("{} does not take {method}", uri.path()),
                None,
            );
            let mut response =
                error_response(&status, &shared.pool, Some(StatusCode::METHOD_NOT_ALLOWED));
            let allow = allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return response;
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let http = rejection.status();
            let code = if http == StatusCode::PAYLOAD_TOO_LARGE {
                Code::InvalidArgument
            } else {
                Code::Unavailable
            };
            let status =
                gateway_status(code, "BODY_UNREADABLE", rejection.body_text(), Some("body"));
            return error_response(&status, &shared.pool, Some(http));
        }
    };
    let message = match transcode::request_message(&matched, uri.query(), &body) {
        Ok(message) => message,
        Err(bad) => {
            let text = format!("{}: {}", bad.field, bad.description);
            let status = gateway_status(
                Code::InvalidArgument,
                "INVALID_REQUEST",
                text,
                Some(&bad.field),
            );
            return error_response(&status, &shared.pool, None);
        }
    };
    let route = matched.route;
    let mut request = tonic::Request::new(message);
    request.set_timeout(shared.timeout);
    forward_metadata(
        headers,
        peer,
        shared.gateway_key.as_ref(),
        request.metadata_mut(),
    );

    let mut client = tonic::client::Grpc::new(shared.channel.clone());
    let result = match client.ready().await {
        Ok(()) => {
            client
                .unary(
                    request,
                    route.grpc_path.clone(),
                    DynamicCodec::new(route.method.output()),
                )
                .await
        }
        Err(error) => Err(Status::unavailable(format!(
            "the service is unreachable: {error}"
        ))),
    };
    match result {
        Ok(response) => {
            let request_id = response.metadata().get(REQUEST_ID_HEADER).cloned();
            let message = response.into_inner();
            match transcode::response_json(&message, route.response_body.as_ref()) {
                Ok(json) => {
                    let mut response = (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        json,
                    )
                        .into_response();
                    if let Some(id) =
                        request_id.and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok())
                    {
                        response.headers_mut().insert(REQUEST_ID_HEADER, id);
                    }
                    response
                }
                Err(error) => {
                    tracing::error!(%error, "encoding a response as JSON");
                    let status = Status::internal("the response could not be encoded");
                    error_response(&status, &shared.pool, None)
                }
            }
        }
        Err(status) => {
            if matches!(
                status.code(),
                Code::Unavailable | Code::Unknown | Code::Internal
            ) {
                tracing::warn!(code = ?status.code(), message = status.message(), "call failed");
            }
            error_response(&status, &shared.pool, None)
        }
    }
}

/// The metadata a call carries: the caller's `authorization` and
/// `x-request-id`, the trace context, and, with the gateway key, the
/// client's address.
fn forward_metadata(
    headers: &HeaderMap,
    peer: SocketAddr,
    gateway_key: Option<&MetadataValue<tonic::metadata::Ascii>>,
    metadata: &mut tonic::metadata::MetadataMap,
) {
    // The client's trace context as it came, unless this gateway's own span
    // (its child) takes its place below.
    for name in ["authorization", REQUEST_ID_HEADER, TRACEPARENT, TRACESTATE] {
        if let Some(value) = headers
            .get(name)
            .and_then(|v| MetadataValue::try_from(v.as_bytes()).ok())
        {
            metadata.insert(MetadataKey::from_static(name), value);
        }
    }
    if let Some(trace) = telemetry::trace_context(&tracing::Span::current()) {
        let own = [
            (TRACEPARENT, Some(trace.traceparent)),
            (TRACESTATE, trace.tracestate),
        ];
        for (name, value) in own {
            match value.and_then(|value| MetadataValue::try_from(value).ok()) {
                Some(value) => metadata.insert(MetadataKey::from_static(name), value),
                None => metadata.remove(name),
            };
        }
    }
    if let Some(key) = gateway_key {
        metadata.insert(MetadataKey::from_static(GATEWAY_KEY_HEADER), key.clone());
        if let Ok(address) = MetadataValue::try_from(peer.ip().to_string()) {
            metadata.insert(MetadataKey::from_static(CLIENT_ADDRESS_HEADER), address);
        }
    }
}
