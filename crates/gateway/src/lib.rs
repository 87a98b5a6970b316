//! The REST gateway of WowChat Users: serves every `google.api.http` route
//! of the API's services over HTTP/1.1 and forwards each call to the gRPC
//! service over the network, as Envoy's transcoder or grpc-gateway would.
//! Routes, messages and the JSON mapping all come from the API crate's
//! descriptor set, so a new RPC needs no code here.
//!
//! - `routes`: the route table and path-template matching;
//! - `transcode`: request message from path, query and body; response JSON;
//! - `codec`: the tonic codec over dynamic messages;
//! - `errors`: `GatewayError`, every way a REST call fails, as
//!   `google.rpc.Status` JSON under the HTTP status of its gRPC code;
//! - `metrics`: per-route request counts, durations and requests in flight;
//! - `openapi`: the OpenAPI 3.1 document of the same routes;
//! - `listener`: the edge: connection cap, timeouts, PROXY protocol, drain;
//! - `client_address`: the real client behind trusted proxies;
//! - `proxy_protocol`: reading a balancer's PROXY protocol header;
//! - `upstream`: the service's replicas, their health, which takes a call;
//! - `scim`: SCIM 2.0 at `/scim/v2`, on the service's DirectoryService;
//! - `invite_page`: the invitation page at `/invite`, which the email links to;
//! - `unsubscribe`: RFC 8058 one-click unsubscribe at `/unsubscribe`.

// The edge never panics on a request: no `expect` either (`unwrap` is denied
// for the whole workspace).
#![deny(clippy::expect_used)]

pub mod client_address;
pub mod codec;
pub mod errors;
pub mod invite_page;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod proxy_protocol;
pub mod routes;
pub mod scim;
pub mod transcode;
mod unsubscribe;
pub mod upstream;

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use axum::{
    Router,
    body::Bytes,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use tonic::{
    Code, Status,
    metadata::{MetadataKey, MetadataValue},
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use tracing::field;
use wowchat_platform::{
    environment::{EnvironmentArgs, EnvironmentFlag},
    metrics::{MetricsArgs, MetricsEndpoint, MetricsVariables},
    secret::Secret,
    shutdown::{ShutdownArgs, ShutdownVariables},
    telemetry::{self, SpanKind, TRACEPARENT, TRACESTATE},
};

pub use crate::client_address::ForwardedHeader;
use crate::{
    client_address::{ClientAddress, TrustedProxies},
    codec::DynamicCodec,
    errors::{BodyError, GatewayError, descriptors, gateway_status, no_replica},
    listener::{EdgeSettings, Readiness},
    metrics::GatewayMetrics,
    routes::{NoRoute, Routes},
    upstream::{Replica, Upstreams},
};

/// The request id header, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The header that proves to the service that the gateway sent the call.
/// Its value is the shared gateway key; the service drops it on arrival.
pub const GATEWAY_KEY_HEADER: &str = "x-wowchat-gateway-key";
/// The address of the gateway's client (the TCP peer), which the service
/// believes only with a valid [`GATEWAY_KEY_HEADER`].
pub const CLIENT_ADDRESS_HEADER: &str = "x-wowchat-client-address";

/// The gateway's names for the settings it shares with the other programs
/// (docs/configuration.md): its flags start with `gateway-`, as every flag
/// of the gateway does (`standalone` takes them beside the service's).
#[derive(Debug, Clone, Copy)]
pub struct GatewayVariables;

impl MetricsVariables for GatewayVariables {
    const FLAG: &'static str = "gateway-metrics-addr";
    const ADDR: &'static str = "WOWCHAT_GATEWAY_METRICS_ADDR";
}

impl EnvironmentFlag for GatewayVariables {
    const FLAG: &'static str = "gateway-environment";
}

impl ShutdownVariables for GatewayVariables {
    const DELAY_FLAG: &'static str = "gateway-shutdown-delay-secs";
    const DELAY: &'static str = "WOWCHAT_GATEWAY_SHUTDOWN_DELAY_SECS";
    const DELAY_HELP: &'static str = "Seconds between the stop signal and closing the \
        listener: `/readyz` answers 503 meanwhile, so the balancer stops sending new requests";
    const DRAIN_FLAG: &'static str = "gateway-shutdown-drain-secs";
    const DRAIN: &'static str = "WOWCHAT_GATEWAY_SHUTDOWN_DRAIN_SECS";
}

/// The gateway's settings: flags, each also an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewaySettings {
    /// Address the REST gateway listens on (port 0 picks a free port).
    #[arg(long, env = "WOWCHAT_GATEWAY_LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub gateway_listen_addr: SocketAddr,

    /// The gRPC service the gateway forwards to: `http://host:port`, or
    /// several comma-separated. Each name is resolved again every
    /// `WOWCHAT_GATEWAY_UPSTREAM_RESOLVE_SECS` and every address it gives
    /// is a replica that takes calls in turn (a Kubernetes headless
    /// Service gives every ready pod).
    #[arg(long, env = "WOWCHAT_GATEWAY_UPSTREAM", default_value = "http://127.0.0.1:50051")]
    pub gateway_upstream: String,

    /// PEM CA certificate of the service's TLS: with it the upstreams are
    /// `https://` and the service's certificate must be signed by it and
    /// name the upstream's host.
    #[arg(long, env = "WOWCHAT_GATEWAY_UPSTREAM_CA")]
    pub gateway_upstream_ca: Option<std::path::PathBuf>,

    /// PEM client certificate (and `..._CLIENT_KEY`) the gateway presents
    /// to a service that requires one (`WOWCHAT_TLS_CLIENT_CA`).
    #[arg(long, env = "WOWCHAT_GATEWAY_UPSTREAM_CLIENT_CERT")]
    pub gateway_upstream_client_cert: Option<std::path::PathBuf>,

    /// PEM private key of the client certificate.
    #[arg(long, env = "WOWCHAT_GATEWAY_UPSTREAM_CLIENT_KEY")]
    pub gateway_upstream_client_key: Option<std::path::PathBuf>,

    /// Seconds between two lookups of the upstream names.
    #[arg(long, env = "WOWCHAT_GATEWAY_UPSTREAM_RESOLVE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub gateway_upstream_resolve_secs: u64,

    /// Shared with the service (its `WOWCHAT_GATEWAY_KEY`): with it the
    /// service believes the client address the gateway forwards. Unset: the
    /// service sees the gateway as the client.
    #[arg(long, env = "WOWCHAT_GATEWAY_KEY", hide_env_values = true)]
    pub gateway_key: Option<Secret>,

    /// Largest request body in bytes; larger is 413.
    #[arg(long, env = "WOWCHAT_GATEWAY_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024, value_parser = wowchat_platform::environment::at_least_one::<usize>)]
    pub gateway_body_limit_bytes: usize,

    /// Comma-separated origins allowed by CORS (e.g. `https://app.example.com`);
    /// unset: no CORS headers, browsers on other origins are refused.
    #[arg(long, env = "WOWCHAT_GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub gateway_cors_origins: Vec<String>,

    /// Deadline of each forwarded call.
    #[arg(long, env = "WOWCHAT_GATEWAY_TIMEOUT_SECS", default_value_t = 30, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub gateway_timeout_secs: u64,

    #[command(flatten)]
    pub gateway_metrics: MetricsArgs<GatewayVariables>,

    /// Comma-separated networks (CIDRs, e.g. `10.0.0.0/8,192.0.2.7/32`) of
    /// the proxies or balancers in front of the gateway. From a peer in
    /// them, and only then, the client's address is read from the
    /// forwarded header or the PROXY protocol header. Unset: the TCP peer
    /// is the client, whatever it sends.
    #[arg(long, env = "WOWCHAT_GATEWAY_TRUSTED_PROXIES", value_delimiter = ',')]
    pub gateway_trusted_proxies: Vec<ipnet::IpNet>,

    /// The header trusted proxies write the client into: `x-forwarded-for`
    /// or `forwarded` (RFC 7239). Read from the right, past every trusted proxy.
    #[arg(
        long,
        env = "WOWCHAT_GATEWAY_CLIENT_ADDRESS_HEADER",
        value_enum,
        ignore_case = true,
        default_value = "x-forwarded-for"
    )]
    pub gateway_client_address_header: ForwardedHeader,

    /// Every connection opens with a PROXY protocol header (v1 or v2), as a
    /// TCP balancer with haproxy's `send-proxy-v2` or an AWS NLB sends it;
    /// a connection without one is closed. Needs the trusted proxies.
    #[arg(long, env = "WOWCHAT_GATEWAY_PROXY_PROTOCOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub gateway_proxy_protocol: bool,

    /// Seconds a client has to send a request's head (line and headers),
    /// from its first byte; then the connection is closed.
    #[arg(long, env = "WOWCHAT_GATEWAY_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub gateway_header_read_timeout_secs: u64,

    /// Seconds a client has to send a request's body; then 408.
    #[arg(long, env = "WOWCHAT_GATEWAY_BODY_READ_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub gateway_body_read_timeout_secs: u64,

    /// Seconds a keep-alive connection may wait for its next request.
    #[arg(long, env = "WOWCHAT_GATEWAY_IDLE_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub gateway_idle_timeout_secs: u64,

    /// Most open client connections; more wait in the listen backlog.
    #[arg(long, env = "WOWCHAT_GATEWAY_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub gateway_max_connections: u64,

    #[command(flatten)]
    pub gateway_shutdown: ShutdownArgs<GatewayVariables>,

    /// Continue the trace of a client's `traceparent`. Off (the default, for
    /// a gateway facing the internet): each request starts a trace of its
    /// own, linked to the client's, so outsiders cannot pick trace ids or
    /// force sampling. On for a gateway only internal callers reach.
    #[arg(long, env = "WOWCHAT_GATEWAY_TRUST_TRACEPARENT", default_value_t = false, action = clap::ArgAction::Set)]
    pub gateway_trust_traceparent: bool,

    /// The gateway's public URL (e.g. `https://users.example.com`), for the
    /// SCIM resources' `meta.location`; unset: `http://` and the request's
    /// Host header.
    #[arg(long, env = "WOWCHAT_GATEWAY_PUBLIC_URL")]
    pub gateway_public_url: Option<String>,

    /// Where the invitation page (`/invite`) sends a new member once they
    /// accepted, and one who already has an account: the "Open WowChat" link.
    #[arg(long, env = "WOWCHAT_GATEWAY_APP_URL", default_value = "http://localhost:3000/")]
    pub gateway_app_url: String,

    #[command(flatten)]
    pub gateway_environment: EnvironmentArgs<GatewayVariables>,
}

impl GatewaySettings {
    /// The defaults, with the environment applied.
    pub fn defaults() -> Self {
        wowchat_platform::environment::defaults("wowchat-gateway")
    }
}

/// The gateway key must be at least this long: 32 random bytes' worth of
/// guessing, e.g. `openssl rand -base64 32` (44 characters).
pub const MIN_GATEWAY_KEY_LENGTH: usize = 32;

/// Refuses a gateway key too short to stand against guessing; the gateway
/// and the service hold the key to the same rule.
pub fn check_gateway_key(key: Option<&str>) -> anyhow::Result<()> {
    match key {
        Some(key) if key.len() < MIN_GATEWAY_KEY_LENGTH => anyhow::bail!(
            "WOWCHAT_GATEWAY_KEY is {} characters long; it must be at least \
             {MIN_GATEWAY_KEY_LENGTH} (e.g. `openssl rand -base64 32`)",
            key.len()
        ),
        _ => Ok(()),
    }
}

/// What every request handler shares.
struct Shared {
    routes: Routes,
    upstreams: Arc<Upstreams>,
    gateway_key: Option<MetadataValue<tonic::metadata::Ascii>>,
    timeout: Duration,
    openapi: Bytes,
    metrics: GatewayMetrics,
    trusted_proxies: Arc<TrustedProxies>,
    body_limit: usize,
    body_read_timeout: Duration,
    readiness: Arc<Readiness>,
    /// Continue clients' traces (else each request starts its own).
    trust_traceparent: bool,
    /// The public URL of the gateway, for SCIM's `meta.location`; unset:
    /// `http://` and the request's Host.
    public_url: Option<String>,
}

/// A bound gateway, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    address: SocketAddr,
    router: Router,
    metrics: Option<MetricsEndpoint>,
    edge: EdgeSettings,
    readiness: Arc<Readiness>,
}

impl Gateway {
    /// Reads the routes, connects (lazily) to the upstream and binds the listener.
    pub async fn build(settings: GatewaySettings) -> anyhow::Result<Gateway> {
        check_settings(&settings)?;
        // Before the routes' handles are resolved: earlier ones stay no-ops.
        let metrics = settings.gateway_metrics.bind().await?;
        let shared = Arc::new(Shared::new(&settings).await?);
        let edge = edge_settings(&settings, shared.trusted_proxies.clone());
        let readiness = shared.readiness.clone();
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
            edge,
            readiness,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where Prometheus metrics are served, if they are.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::address)
    }

    /// Serves until `shutdown` completes; then reports not-ready, serves on
    /// for the shutdown delay, and lets the requests in flight finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.address, "serving REST");
        let metrics = self
            .metrics
            .map(|endpoint| endpoint.spawn(std::future::pending()));
        listener::serve(
            self.listener,
            self.router,
            self.edge,
            self.readiness,
            shutdown,
        )
        .await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// Refuses settings that cannot work together, and warns of a missing key.
fn check_settings(settings: &GatewaySettings) -> anyhow::Result<()> {
    if settings.gateway_proxy_protocol && settings.gateway_trusted_proxies.is_empty() {
        anyhow::bail!(
            "WOWCHAT_GATEWAY_PROXY_PROTOCOL=true needs WOWCHAT_GATEWAY_TRUSTED_PROXIES: \
             the networks of the balancers whose PROXY headers are believed"
        );
    }
    settings.gateway_environment.refuse(
        settings.gateway_key.is_none(),
        "a missing WOWCHAT_GATEWAY_KEY (every REST client would share one attempt budget)",
    )?;
    check_gateway_key(settings.gateway_key.as_ref().map(Secret::expose))?;
    if settings.gateway_key.is_none() {
        tracing::warn!(
            "WOWCHAT_GATEWAY_KEY is not set: the service cannot tell the gateway's clients \
             apart, so every REST client shares one sign-in and invitation attempt budget; \
             set the same key on the gateway and the service"
        );
    }
    Ok(())
}

impl Shared {
    /// The routes and their document from the API's descriptors, the
    /// upstream replicas (resolved, then watched), and the settings every
    /// request reads.
    async fn new(settings: &GatewaySettings) -> anyhow::Result<Shared> {
        let pool = descriptors().context("decoding the API's descriptor set")?;
        let routes = Routes::from_pool(pool)?;
        let openapi = Bytes::from(openapi::document_json(pool, &routes)?);
        let upstreams = Upstreams::start(
            &settings.gateway_upstream,
            Duration::from_secs(settings.gateway_upstream_resolve_secs),
            upstream_tls(settings)?,
        )
        .await?;
        let gateway_key = settings
            .gateway_key
            .as_ref()
            .map(|key| MetadataValue::try_from(key.expose()))
            .transpose()
            .context("WOWCHAT_GATEWAY_KEY must be visible ASCII")?;
        Ok(Shared {
            upstreams,
            gateway_key,
            timeout: Duration::from_secs(settings.gateway_timeout_secs),
            openapi,
            metrics: GatewayMetrics::new(&routes),
            routes,
            trusted_proxies: Arc::new(TrustedProxies::new(
                settings.gateway_trusted_proxies.clone(),
                settings.gateway_client_address_header,
            )),
            body_limit: settings.gateway_body_limit_bytes,
            body_read_timeout: Duration::from_secs(settings.gateway_body_read_timeout_secs),
            readiness: Arc::new(Readiness::default()),
            trust_traceparent: settings.gateway_trust_traceparent,
            public_url: settings
                .gateway_public_url
                .as_ref()
                .map(|url| url.trim_end_matches('/').to_owned()),
        })
    }
}

/// How the listener treats connections, from the settings.
fn edge_settings(settings: &GatewaySettings, trusted_proxies: Arc<TrustedProxies>) -> EdgeSettings {
    EdgeSettings {
        proxy_protocol: settings.gateway_proxy_protocol,
        trusted_proxies,
        header_read_timeout: Duration::from_secs(settings.gateway_header_read_timeout_secs),
        idle_timeout: Duration::from_secs(settings.gateway_idle_timeout_secs),
        max_connections: usize::try_from(settings.gateway_max_connections).unwrap_or(usize::MAX),
        shutdown_delay: settings.gateway_shutdown.delay(),
        shutdown_drain: settings.gateway_shutdown.drain(),
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
        // For the balancer: 503 from the stop signal on, while the gateway
        // still serves (WOWCHAT_GATEWAY_SHUTDOWN_DELAY_SECS).
        .route("/readyz", get(readyz))
        .route("/scim/v2", axum::routing::any(scim::serve))
        .route("/scim/v2/{*path}", axum::routing::any(scim::serve))
        // RFC 8058 one-click unsubscribe: a GET shows, only a POST acts.
        .route(
            "/unsubscribe",
            get(unsubscribe::page).post(unsubscribe::submit),
        )
        .merge(invite_page::router(&settings.gateway_app_url)?)
        .fallback(transcode)
        .with_state(shared)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(move |request: &Request| request_span(&traced, request)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    if let Some(origins) = cors_origins(&settings.gateway_cors_origins)? {
        router = router.layer(cors(origins));
    }
    Ok(router)
}

/// The span of one request, with the client's trace continued or linked.
fn request_span(shared: &Shared, request: &Request) -> tracing::Span {
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
    // The client's trace goes on here only when trusted; else
    // this span roots a trace of its own, linked to the client's.
    if shared.trust_traceparent {
        telemetry::continue_trace(&span, header(TRACEPARENT), header(TRACESTATE));
    } else {
        telemetry::link_trace(&span, header(TRACEPARENT), header(TRACESTATE));
    }
    if telemetry::enabled() {
        telemetry::describe_span(&span, SpanKind::Server, &span_name(shared, request));
    }
    span
}

/// CORS for the allowed origins: the API's methods, and the headers a
/// browser client sends and reads.
fn cors(origins: AllowOrigin) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(origins)
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
        .max_age(Duration::from_secs(600))
}

/// The TLS the gateway speaks to the service with, when given its CA.
fn upstream_tls(
    settings: &GatewaySettings,
) -> anyhow::Result<Option<tonic::transport::ClientTlsConfig>> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let read = |path: &std::path::PathBuf, variable: &str| {
        std::fs::read(path).with_context(|| format!("{variable}: reading {}", path.display()))
    };
    let Some(ca) = &settings.gateway_upstream_ca else {
        if settings.gateway_upstream_client_cert.is_some() {
            anyhow::bail!("WOWCHAT_GATEWAY_UPSTREAM_CLIENT_CERT needs WOWCHAT_GATEWAY_UPSTREAM_CA");
        }
        return Ok(None);
    };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(
        ca,
        "WOWCHAT_GATEWAY_UPSTREAM_CA",
    )?));
    match (
        &settings.gateway_upstream_client_cert,
        &settings.gateway_upstream_client_key,
    ) {
        (None, None) => {}
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read(cert, "WOWCHAT_GATEWAY_UPSTREAM_CLIENT_CERT")?,
                read(key, "WOWCHAT_GATEWAY_UPSTREAM_CLIENT_KEY")?,
            ));
        }
        _ => anyhow::bail!(
            "WOWCHAT_GATEWAY_UPSTREAM_CLIENT_CERT and WOWCHAT_GATEWAY_UPSTREAM_CLIENT_KEY go together"
        ),
    }
    Ok(Some(tls))
}

/// The CORS origins setting: a list of origins, or `*` alone for any origin
/// (then without credentials, as the Fetch standard requires of `*`).
fn cors_origins(setting: &[String]) -> anyhow::Result<Option<AllowOrigin>> {
    let origins: Vec<&str> = setting
        .iter()
        .map(|origin| origin.trim())
        .filter(|origin| !origin.is_empty())
        .collect();
    if origins.is_empty() {
        return Ok(None);
    }
    if origins.contains(&"*") {
        if origins.len() > 1 {
            anyhow::bail!(
                "WOWCHAT_GATEWAY_CORS_ORIGINS: `*` (any origin) stands alone, not in a list"
            );
        }
        return Ok(Some(AllowOrigin::any()));
    }
    let mut values = Vec::with_capacity(origins.len());
    for origin in origins {
        let value = origin
            .parse::<axum::http::Uri>()
            .ok()
            .filter(|uri| {
                uri.scheme().is_some()
                    && uri.host().is_some()
                    && uri
                        .path_and_query()
                        .is_none_or(|p| p.as_str() == "/" && !origin.ends_with('/'))
            })
            .and_then(|_| HeaderValue::from_str(origin).ok())
            .with_context(|| {
                format!(
                    "WOWCHAT_GATEWAY_CORS_ORIGINS: `{origin}` is not an origin \
                     (scheme://host[:port], e.g. https://app.example.com), nor `*`"
                )
            })?;
        values.push(value);
    }
    Ok(Some(AllowOrigin::list(values)))
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.readiness.is_ready() {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping").into_response()
    }
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
    ClientAddress(client): ClientAddress,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: axum::body::Body,
) -> Response {
    let found = shared.routes.find(&method, uri.path());
    let series = match &found {
        Ok(matched) => shared.metrics.route(matched.index),
        Err(_) => &shared.metrics.unmatched,
    };
    let call = series.start();
    let response = answer(&shared, found, client, &method, &headers, &uri, body)
        .await
        .into_response();
    call.finish(response.status());
    response
}

/// Match, build the request message, call, answer. Each step's failure is
/// a [`GatewayError`], which makes its own response.
async fn answer(
    shared: &Shared,
    found: Result<routes::Matched<'_>, NoRoute>,
    client: IpAddr,
    method: &Method,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: axum::body::Body,
) -> Result<Response, GatewayError> {
    let matched = found.map_err(|why| GatewayError::no_route(why, method, uri.path()))?;
    let body = read_body(shared, body).await?;
    let message = transcode::request_message(&matched, uri.query(), &body)?;
    let route = matched.route;
    let metadata = forward_metadata(shared, headers, client);
    // A call that a replica did not process may go to another: a read
    // always, a mutation when its request id makes a second try harmless.
    let retry_safe = *method == Method::GET || carries_request_id(&message);
    let first = shared.upstreams.pick(None).ok_or(GatewayError::NoReplica)?;
    let response = with_failover(shared, first, retry_safe, |channel| {
        call(shared, channel, route, message.clone(), metadata.clone())
    })
    .await?;
    let request_id = response.metadata().get(REQUEST_ID_HEADER).cloned();
    let json = transcode::response_json(&response.into_inner(), route.response_body.as_ref())
        .map_err(GatewayError::Encoding)?;
    Ok(json_response(json, request_id))
}

/// A call's answer: its JSON, and the request id the service gave it.
fn json_response(
    json: Vec<u8>,
    request_id: Option<MetadataValue<tonic::metadata::Ascii>>,
) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response();
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    response
}

/// One call to one replica.
async fn call(
    shared: &Shared,
    channel: tonic::transport::Channel,
    route: &routes::Route,
    message: prost_reflect::DynamicMessage,
    metadata: tonic::metadata::MetadataMap,
) -> Result<tonic::Response<prost_reflect::DynamicMessage>, Status> {
    let mut request = tonic::Request::from_parts(metadata, Default::default(), message);
    request.set_timeout(shared.timeout);
    let mut client = tonic::client::Grpc::new(channel);
    let ready = tokio::time::timeout(shared.timeout, client.ready()).await;
    match ready {
        Ok(Ok(())) => {
            client
                .unary(
                    request,
                    route.grpc_path.clone(),
                    DynamicCodec::new(route.method.output()),
                )
                .await
        }
        Ok(Err(error)) => Err(gateway_status(
            Code::Unavailable,
            "SERVICE_UNAVAILABLE",
            format!("the service is unreachable: {error}"),
            None,
        )),
        Err(_) => Err(gateway_status(
            Code::Unavailable,
            "SERVICE_UNAVAILABLE",
            "the service did not get ready in time".into(),
            None,
        )),
    }
}

/// One typed call to a replica, as `answer` makes a dynamic one: with the
/// caller's metadata (see [`forward_metadata`]), under the gateway's
/// deadline, tried once more on another replica when the first was gone
/// and the call is `retry_safe` (or was not processed).
async fn call_typed<T, F, Fut>(
    shared: &Shared,
    headers: &HeaderMap,
    client: IpAddr,
    retry_safe: bool,
    call: F,
) -> Result<T, Status>
where
    F: Fn(tonic::transport::Channel, tonic::metadata::MetadataMap) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    let metadata = forward_metadata(shared, headers, client);
    let first = shared.upstreams.pick(None).ok_or_else(no_replica)?;
    with_failover(shared, first, retry_safe, |channel| {
        let call = call(channel, metadata.clone());
        async move {
            match tokio::time::timeout(shared.timeout, call).await {
                Ok(result) => result.map(tonic::Response::into_inner),
                Err(_) => Err(Status::deadline_exceeded(
                    "the service did not answer in time",
                )),
            }
        }
    })
    .await
}

/// Runs `attempt` on the replica `first`, and once more on another when
/// the first was gone (UNAVAILABLE) and the call is `retry_safe` or was
/// provably not processed. The first is marked down for the picks after.
async fn with_failover<T, F, Fut>(
    shared: &Shared,
    first: Arc<Replica>,
    retry_safe: bool,
    attempt: F,
) -> Result<T, Status>
where
    F: Fn(tonic::transport::Channel) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    match attempt(first.channel.clone()).await {
        Err(status)
            if status.code() == Code::Unavailable && (retry_safe || not_processed(&status)) =>
        {
            first.mark_down();
            match shared.upstreams.pick(Some(&first)) {
                Some(second) => {
                    tracing::debug!(from = %first.address, to = %second.address, "retrying on another replica");
                    attempt(second.channel.clone()).await
                }
                None => Err(status),
            }
        }
        other => other,
    }
}

/// A mutation with a non-empty `request_id`: the service answers a second
/// try with the first one's result.
fn carries_request_id(message: &prost_reflect::DynamicMessage) -> bool {
    message
        .get_field_by_name("request_id")
        .is_some_and(|value| value.as_str().is_some_and(|id| !id.is_empty()))
}

/// Failures that prove the replica never ran the call: the connection was
/// refused or could not be made, or HTTP/2 refused the stream (REFUSED_STREAM,
/// as a replica that is going away does to streams past its GOAWAY).
fn not_processed(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        if let Some(h2) = error.downcast_ref::<h2::Error>()
            && h2.reason() == Some(h2::Reason::REFUSED_STREAM)
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// The whole body, within the size limit and the body-read timeout.
async fn read_body(shared: &Shared, body: axum::body::Body) -> Result<Bytes, BodyError> {
    let read = axum::body::to_bytes(body, shared.body_limit);
    match tokio::time::timeout(shared.body_read_timeout, read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Err(_) => Err(BodyError {
            http: StatusCode::REQUEST_TIMEOUT,
            code: Code::DeadlineExceeded,
            reason: "BODY_READ_TIMEOUT",
            detail: format!(
                "the request body did not arrive within {} s",
                shared.body_read_timeout.as_secs()
            ),
        }),
        Ok(Err(error)) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(BodyError {
                    http: StatusCode::PAYLOAD_TOO_LARGE,
                    code: Code::InvalidArgument,
                    reason: "BODY_UNREADABLE",
                    detail: format!("the request body is over {} bytes", shared.body_limit),
                })
            } else {
                Err(BodyError {
                    http: StatusCode::BAD_REQUEST,
                    code: Code::InvalidArgument,
                    reason: "BODY_UNREADABLE",
                    detail: format!("the request body could not be read: {error}"),
                })
            }
        }
    }
}

/// The metadata a call carries: the caller's `authorization` and
/// `x-request-id`, the trace context, and, with the gateway key, the
/// client's address.
fn forward_metadata(
    shared: &Shared,
    headers: &HeaderMap,
    client: IpAddr,
) -> tonic::metadata::MetadataMap {
    let mut metadata = tonic::metadata::MetadataMap::new();
    // A trusted client's trace context as it came, unless this gateway's own
    // span (its child) takes its place below; an untrusted one's never.
    let trace_headers: &[&str] = if shared.trust_traceparent {
        &[TRACEPARENT, TRACESTATE]
    } else {
        &[]
    };
    for &name in ["authorization", REQUEST_ID_HEADER]
        .iter()
        .chain(trace_headers)
    {
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
    if let Some(key) = &shared.gateway_key {
        metadata.insert(MetadataKey::from_static(GATEWAY_KEY_HEADER), key.clone());
        if let Ok(address) = MetadataValue::try_from(client.to_string()) {
            metadata.insert(MetadataKey::from_static(CLIENT_ADDRESS_HEADER), address);
        }
    }
    metadata
}
