//! Prometheus metrics: one recorder per process (the `metrics` facade's
//! global one), served over HTTP by each deployable on an address of its own.
//!
//! The recorder is installed once, before anything resolves a metric handle:
//! a handle resolved with no recorder installed stays a no-op. Serving takes
//! a bound listener, so tests scrape a real endpoint on port 0.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::OnceLock, time::Duration};

use anyhow::Context;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Bytes, header};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Latency buckets in seconds, shared by every duration histogram: from a
/// cached read (a quarter of a millisecond) to a request's 30 s deadline.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

/// Buckets of histograms that count things (rows per relay batch).
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// Histograms whose values are counts, not seconds.
const SIZE_HISTOGRAMS: &[&str] = &["wowchat_relay_batch_size"];

/// How often histogram samples are folded in, so memory stays bounded
/// between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process's Prometheus recorder (once; later calls return the
/// same handle) and starts its upkeep thread.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .map_err(|e| e.to_string())?;
            for name in SIZE_HISTOGRAMS {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full((*name).to_owned()), SIZE_BUCKETS)
                    .map_err(|e| e.to_string())?;
            }
            let handle = builder.install_recorder().map_err(|e| e.to_string())?;
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP);
                        upkeep.run_upkeep();
                    }
                })
                .map_err(|e| e.to_string())?;
            Ok(handle)
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))
}

/// The flag and the variable one program reads its [`MetricsArgs`] from:
/// the service's `--metrics-addr` and `WOWCHAT_METRICS_ADDR` unless the
/// program names its own (the mailer's `WOWCHAT_MAILER_METRICS_ADDR`, the
/// gateway's `WOWCHAT_GATEWAY_METRICS_ADDR`), so one environment can give
/// each its own port.
pub trait MetricsVariables {
    /// The flag, without its dashes.
    const FLAG: &'static str = "metrics-addr";
    /// The variable.
    const ADDR: &'static str = "WOWCHAT_METRICS_ADDR";
}

// The metrics endpoint setting every serving program declares, flattened
// into its settings (`#[command(flatten)] metrics: MetricsArgs<V>`). A
// plain comment, not a doc comment: clap would make it the `about` of the
// command it lands in.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs<V: MetricsVariables> {
    /// Serve Prometheus metrics (`GET /metrics`) on this address (e.g.
    /// 127.0.0.1:9464); off when unset.
    #[arg(id = "metrics_addr", long = V::FLAG, value_name = "METRICS_ADDR", env = V::ADDR)]
    pub addr: Option<SocketAddr>,

    #[arg(skip)]
    variables: std::marker::PhantomData<fn() -> V>,
}

impl<V: MetricsVariables> MetricsArgs<V> {
    /// Installs the recorder and binds the address, when one is set (errors
    /// name the variable).
    pub async fn bind(&self) -> anyhow::Result<Option<MetricsEndpoint>> {
        MetricsEndpoint::bind_if(self.addr, V::ADDR).await
    }
}

/// A bound Prometheus endpoint: `GET /metrics` renders every metric of the process.
pub struct MetricsEndpoint {
    listener: TcpListener,
    address: SocketAddr,
    handle: PrometheusHandle,
}

impl MetricsEndpoint {
    /// Installs the recorder and binds `address` (`variable` names the
    /// setting in errors).
    pub async fn bind(address: SocketAddr, variable: &str) -> anyhow::Result<MetricsEndpoint> {
        let handle = install()?;
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("{variable}: binding {address}"))?;
        let address = listener.local_addr()?;
        Ok(MetricsEndpoint {
            listener,
            address,
            handle,
        })
    }

    /// Binds `address` when one is configured.
    pub async fn bind_if(
        address: Option<SocketAddr>,
        variable: &str,
    ) -> anyhow::Result<Option<MetricsEndpoint>> {
        match address {
            Some(address) => Ok(Some(MetricsEndpoint::bind(address, variable).await?)),
            None => Ok(None),
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        tracing::info!(address = %self.address, "serving Prometheus metrics");
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return,
                accepted = self.listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                // Out of file descriptors and the like: try again shortly.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let handle = self.handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let response = scrape(&handle, &request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    /// Serves on a task of its own until `shutdown` completes.
    pub fn spawn(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.serve(shutdown))
    }
}

fn scrape<B>(handle: &PrometheusHandle, request: &Request<B>) -> Response<Full<Bytes>> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, handle.render()),
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
        _ => (StatusCode::NOT_FOUND, String::new()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// Samples a Postgres pool's size, idle connections and waiting callers
/// into gauges labelled `pool`, every `every`, until the task is dropped.
pub async fn sample_pool(pool: deadpool_postgres::Pool, name: &'static str, every: Duration) {
    let size = metrics::gauge!("wowchat_db_pool_connections", "pool" => name);
    let idle = metrics::gauge!("wowchat_db_pool_idle_connections", "pool" => name);
    let waiting = metrics::gauge!("wowchat_db_pool_waiting", "pool" => name);
    let max = metrics::gauge!("wowchat_db_pool_max_connections", "pool" => name);
    loop {
        let status = pool.status();
        size.set(status.size as f64);
        idle.set(status.available as f64);
        waiting.set(status.waiting as f64);
        max.set(status.max_size as f64);
        tokio::time::sleep(every).await;
    }
}

/// A pool connection, the wait for it recorded in
/// `wowchat_db_pool_checkout_seconds{pool}` (`checkout`, resolved once by
/// the caller so the hot path does no registry lookup).
pub async fn checkout(
    pool: &deadpool_postgres::Pool,
    checkout: &metrics::Histogram,
) -> Result<deadpool_postgres::Object, deadpool_postgres::PoolError> {
    let started = std::time::Instant::now();
    let client = pool.get().await;
    checkout.record(started.elapsed().as_secs_f64());
    client
}

/// The checkout-time histogram of the pool `name`.
pub fn checkout_histogram(name: &'static str) -> metrics::Histogram {
    metrics::histogram!("wowchat_db_pool_checkout_seconds", "pool" => name)
}
