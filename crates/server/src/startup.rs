//! Building and running the server: it takes a bound listener and a shutdown
//! future, so tests run it on port 0 and stop it when they are done.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{codegen::http, transport::Server};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer},
};
use tracing::{Level, field};
use wowchat_platform::{
    metrics::{MetricsEndpoint, sample_pool},
    telemetry::{self, SpanKind, TRACEPARENT, TRACESTATE},
};
use wowchat_users_api::{
    FILE_DESCRIPTOR_SET,
    v1::{
        auth_service_server::AuthServiceServer, directory_service_server::DirectoryServiceServer,
        join_service_server::JoinServiceServer, role_service_server::RoleServiceServer,
        user_service_server::UserServiceServer,
    },
};

use crate::{
    auth::{JwtKeys, PasswordHasher},
    config::Settings,
    db,
    grpc::{
        REQUEST_ID_HEADER, UserServiceImpl, auth::AuthServiceImpl, connections,
        directory::DirectoryServiceImpl, gateway::TrustGatewayLayer, joining::JoinServiceImpl,
        metrics::MetricsLayer, overload::ShedLayer, roles::RoleServiceImpl,
    },
    messaging::{relay::Relay, results::DeliveryResults},
    operations::AppState,
    retention::Retention,
    store::Pool,
};

/// How often the pool gauges are sampled.
pub const POOL_SAMPLE: Duration = Duration::from_secs(5);

pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: Arc<AppState>,
    /// The health probe's own connection, so a flood that keeps the request
    /// pool busy cannot make the replica look dead.
    health_pool: Pool,
    /// The Prometheus endpoint, when `WOWCHAT_METRICS_ADDR` asks for one.
    metrics: Option<MetricsEndpoint>,
    settings: Settings,
}

impl Application {
    /// Creates and migrates the database, connects the pool, loads the keys
    /// and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.check_environment()?;
        // A TLS or key setting that cannot work fails here, before anything else.
        settings.server_tls()?;
        let mail_tokens = settings.mail_tokens()?;
        if mail_tokens.is_none() {
            tracing::warn!(
                "WOWCHAT_MAIL_TOKEN_KEYS is not set: invitation tokens travel to the mailer in \
                 the clear (outbox rows, queues, the dead-letter queue); development only"
            );
        }
        // Keys first: a bad key setting fails before anything touches Postgres.
        let keys = JwtKeys::load(&settings.key_settings()).context("loading JWT keys")?;
        // Before any metric handle is resolved: handles taken earlier stay no-ops.
        let metrics = settings.metrics.bind().await?;
        settings.database.apply_statement_mode();
        if settings.migrate_on_start {
            let direct = settings.database.direct_url().expose();
            db::SCHEMA.ensure_database(direct).await?;
            db::SCHEMA.migrate(direct).await?;
        }
        let url = settings.database.url.expose();
        let pool = db::SCHEMA.pool(url, settings.db_pool_size)?;
        let health_pool = db::SCHEMA.pool(url, 1)?;
        let state = Arc::new(
            AppState::new(
                pool,
                Arc::new(keys),
                settings.caller_cache_settings(),
                PasswordHasher::owasp(settings.hash_concurrency, settings.hash_queue)?,
                &settings.sign_in_settings(),
                &settings.invitation_policy_settings(),
            )
            .with_mail_tokens(mail_tokens)
            .with_directory_limit(settings.scim_requests_per_minute)
            .with_joining(&settings.joining_policy_settings())
            .with_dns(
                crate::dns::TxtResolver::new(settings.dns_resolver)
                    .context("the DNS resolver (WOWCHAT_DNS_RESOLVER)")?,
            ),
        );
        let listener = TcpListener::bind(settings.listen_addr)
            .await
            .with_context(|| format!("binding {}", settings.listen_addr))?;
        let address = listener.local_addr()?;
        Ok(Application {
            listener,
            address,
            state,
            health_pool,
            metrics,
            settings,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Where Prometheus metrics are served, if they are.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::address)
    }

    /// The shared state, for commands and tests that act without a request.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes; then reports NOT_SERVING while
    /// still serving for the shutdown delay, and lets the calls in flight
    /// finish within the drain.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let health = tokio::spawn(watch_database(
            reporter.clone(),
            self.health_pool.clone(),
            Duration::from_millis(self.settings.health_interval_ms),
        ));
        let listener_closed = CancellationToken::new();
        let stopping = {
            let health = health.abort_handle();
            let reporter = reporter.clone();
            let delay = self.settings.shutdown.delay();
            let listener_closed = listener_closed.clone();
            async move {
                shutdown.await;
                // Not serving from now on: the endpoints controller and the
                // gateways stop sending calls while this replica still
                // answers the ones on their way.
                health.abort();
                report(&reporter, ServingStatus::NotServing).await;
                tracing::info!(
                    ?delay,
                    "stop requested: NOT_SERVING, serving on for the delay"
                );
                tokio::time::sleep(delay).await;
                tracing::info!("closing the listener: finishing the calls in flight");
                listener_closed.cancel();
            }
        };
        let background = CancellationToken::new();
        let metrics = self
            .metrics
            .map(|endpoint| endpoint.spawn(background.clone().cancelled_owned()));
        let pool_gauges = [
            tokio::spawn(sample_pool(
                self.state.pool.clone(),
                "requests",
                POOL_SAMPLE,
            )),
            tokio::spawn(sample_pool(self.health_pool.clone(), "health", POOL_SAMPLE)),
        ];
        let caller_listener = tokio::spawn(crate::auth::invalidation::run(
            self.state.callers.clone(),
            self.settings.database.direct_url().clone(),
            self.state.pool.clone(),
            background.clone(),
        ));
        let messaging = self.settings.relay.then(|| {
            spawn_messaging(
                &self.state.pool,
                &self.settings,
                Some(reporter),
                background.clone(),
            )
        });
        let retention = self.settings.retention.then(|| {
            tokio::spawn(
                Retention::new(self.state.pool.clone(), self.settings.retention_settings())
                    .run(background.clone()),
            )
        });
        let access_expiry = tokio::spawn(crate::operations::access_expiry::run(
            self.state.clone(),
            Duration::from_secs(self.settings.access_expiry_sweep_secs),
            background.clone(),
        ));
        let domain_rechecks = tokio::spawn(crate::operations::mail_domains::run_rechecks(
            self.state.clone(),
            Duration::from_secs(self.settings.domain_recheck_secs),
            background.clone(),
        ));
        // Both reflection versions: many clients (grpcurl before 1.9) speak only v1alpha.
        let (reflection, reflection_alpha) = if self.settings.reflection {
            let builder = || {
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            };
            (
                Some(
                    builder()
                        .build_v1()
                        .context("building the reflection service")?,
                ),
                Some(
                    builder()
                        .build_v1alpha()
                        .context("building the reflection service")?,
                ),
            )
        } else {
            (None, None)
        };
        let service = UserServiceServer::new(
            UserServiceImpl::new(self.state.clone())
                .with_exact_count_limit(self.settings.list_exact_count_limit.max(0)),
        )
        .max_decoding_message_size(1024 * 1024);
        let roles = RoleServiceServer::new(RoleServiceImpl::new(self.state.clone()))
            .max_decoding_message_size(1024 * 1024);
        let auth = AuthServiceServer::new(AuthServiceImpl::new(self.state.clone()))
            .max_decoding_message_size(64 * 1024);
        let directory = DirectoryServiceServer::new(DirectoryServiceImpl::new(self.state.clone()))
            .max_decoding_message_size(1024 * 1024);
        let joining = JoinServiceServer::new(JoinServiceImpl::new(self.state.clone()))
            .max_decoding_message_size(64 * 1024);

        tracing::info!(address = %self.address, "serving gRPC");
        let request_id = http::HeaderName::from_static(REQUEST_ID_HEADER);
        let mut server = Server::builder()
            // A client cannot open more calls on one connection than this; the
            // global limit below bounds all connections together.
            .max_concurrent_streams(self.settings.max_concurrent_streams)
            // A peer that vanished without a FIN is found and its connection closed.
            .http2_keepalive_interval(Some(Duration::from_secs(
                self.settings.http2_keepalive_secs,
            )))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)));
        if let Some(tls) = self.settings.server_tls()? {
            server = server
                .tls_config(tls)
                .context("the TLS certificate and key (WOWCHAT_TLS_CERT, WOWCHAT_TLS_KEY)")?;
        }
        if self.settings.max_connection_age_secs > 0 {
            // Long-lived clients (other services, gateways) reconnect now
            // and then, and so spread over replicas added since.
            server = server
                .max_connection_age(Duration::from_secs(self.settings.max_connection_age_secs))
                .max_connection_age_grace(Duration::from_secs(
                    self.settings.max_connection_age_grace_secs,
                ));
        }
        let serving = server
            // First: the gateway key goes before anything can log it.
            .layer(TrustGatewayLayer::new(
                self.settings.gateway_key.as_ref().map(|key| key.expose()),
            ))
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_grpc()
                    .make_span_with(call_span)
                    // A line per OK call only at debug (`RUST_LOG=tower_http=debug`):
                    // at tens of thousands of calls a second, writing each one costs
                    // more than the call. A non-OK status is logged: it is expected
                    // traffic (NOT_FOUND, ...), not an error of the server.
                    .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                    .on_failure(DefaultOnFailure::new().level(Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            // Outside the shedding, so refused calls are counted too.
            .layer(MetricsLayer::new(&[
                FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            ]))
            .layer(ShedLayer::new(
                self.settings.max_concurrent_requests,
                self.settings.request_timeout(),
            ))
            .add_service(health_service)
            .add_optional_service(reflection)
            .add_optional_service(reflection_alpha)
            .add_service(service)
            .add_service(roles)
            .add_service(auth)
            .add_service(directory)
            .add_service(joining)
            .serve_with_incoming_shutdown(
                connections::accept(
                    self.listener,
                    usize::try_from(self.settings.max_connections).unwrap_or(usize::MAX),
                    Duration::from_secs(self.settings.handshake_timeout_secs),
                ),
                stopping,
            );
        tokio::pin!(serving);
        let drain = self.settings.shutdown.drain();
        let result = tokio::select! {
            served = &mut serving => served.context("serving gRPC"),
            () = async {
                listener_closed.cancelled().await;
                tokio::time::sleep(drain).await;
            } => {
                tracing::warn!(?drain, "calls still open after the drain: stopping anyway");
                Ok(())
            }
        };
        health.abort();
        for task in pool_gauges {
            task.abort();
        }
        // The relay finishes its batch: what was committed before the stop
        // goes out now or with the next start.
        background.cancel();
        let tasks = messaging.into_iter().flatten().chain(retention).chain([
            caller_listener,
            access_expiry,
            domain_rechecks,
        ]);
        let _ =
            tokio::time::timeout(Duration::from_secs(15), futures::future::join_all(tasks)).await;
        // Last: the final numbers stay readable until everything stopped.
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        tracing::info!("server stopped");
        result
    }
}

/// The span of one call, with its request id; a child of the caller's
/// span when the call carries a `traceparent`.
fn call_span<B>(request: &http::Request<B>) -> tracing::Span {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let path = request.uri().path();
    let span = tracing::info_span!(
        "grpc",
        method = %path,
        request_id = %header(REQUEST_ID_HEADER).unwrap_or_default(),
        "otel.name" = field::Empty,
        "otel.kind" = field::Empty,
    );
    telemetry::continue_trace(&span, header(TRACEPARENT), header(TRACESTATE));
    // `wowchat.users.v1.UserService/InviteUser`, as OpenTelemetry names RPCs.
    telemetry::describe_span(&span, SpanKind::Server, path.trim_start_matches('/'));
    span
}

/// Starts the outbox relay and the delivery-result consumer.
pub fn spawn_messaging(
    pool: &Pool,
    settings: &Settings,
    health: Option<HealthReporter>,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let relay_settings = settings.relay_settings();
    let results = DeliveryResults::new(
        pool.clone(),
        settings.amqp.url.clone(),
        relay_settings.topology.clone(),
    );
    vec![
        tokio::spawn(Relay::new(pool.clone(), relay_settings, health).run(shutdown.clone())),
        tokio::spawn(results.run(shutdown)),
    ]
}

/// Reports NOT_SERVING while Postgres cannot be reached, SERVING once it can;
/// `pool` is the probe's own, not the one requests wait on.
async fn watch_database(reporter: HealthReporter, pool: Pool, every: Duration) {
    let mut last = None;
    loop {
        let reachable =
            wowchat_platform::postgres::reachable(&pool, every.max(Duration::from_secs(1))).await;
        let status = if reachable {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            if reachable {
                tracing::info!("Postgres reachable: serving");
            } else {
                tracing::warn!("Postgres unreachable: not serving");
            }
            report(&reporter, status).await;
            last = Some(status);
        }
        tokio::time::sleep(every).await;
    }
}

/// The replica's status, for the whole server and for the user service.
async fn report(reporter: &HealthReporter, status: ServingStatus) {
    let named = <UserServiceServer<UserServiceImpl> as tonic::server::NamedService>::NAME;
    reporter.set_service_status("", status).await;
    reporter.set_service_status(named, status).await;
}
