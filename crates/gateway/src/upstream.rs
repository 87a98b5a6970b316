//! The service replicas behind the gateway, and which one takes a call.
//!
//! One HTTP/2 connection would pin every call to one replica (a ClusterIP
//! Service balances connections, not calls). So the gateway keeps a
//! connection to every address its upstreams resolve to, re-resolved
//! periodically (a Kubernetes headless Service lists every ready pod),
//! watches each replica's gRPC health, and sends each call to the next
//! serving replica in turn: a replica that reports NOT_SERVING (it is
//! stopping, or lost Postgres) gets no new calls, as with Envoy's active
//! health checks.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, Uri};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The service whose health says whether a replica takes calls.
const HEALTH_SERVICE: &str = "wowchat.users.v1.UserService";

/// One replica: its connection and whether it says it is serving.
pub struct Replica {
    pub address: SocketAddr,
    pub channel: Channel,
    serving: AtomicBool,
    watcher: JoinHandle<()>,
}

impl Replica {
    fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Relaxed)
    }

    /// A call found it gone: no more calls until its health says otherwise.
    pub fn mark_down(&self) {
        self.serving.store(false, Ordering::Relaxed);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// Every replica of every configured upstream.
pub struct Upstreams {
    targets: Vec<Uri>,
    /// TLS to every replica, when the service serves it.
    tls: Option<ClientTlsConfig>,
    replicas: RwLock<Vec<Arc<Replica>>>,
    next: AtomicUsize,
}

impl Upstreams {
    /// Parses the upstream URLs (`http://host:port`, comma-separated),
    /// resolves them once and keeps resolving them every `resolve_every`.
    pub async fn start(
        urls: &str,
        resolve_every: Duration,
        tls: Option<ClientTlsConfig>,
    ) -> anyhow::Result<Arc<Upstreams>> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut targets = Vec::new();
        for url in urls.split(',').map(str::trim).filter(|url| !url.is_empty()) {
            let uri: Uri = url.parse().with_context(|| {
                format!("WOWCHAT_GATEWAY_UPSTREAM: `{url}` is not a URL (http://host:port)")
            })?;
            if uri.scheme_str() != Some(scheme) || uri.host().is_none() {
                anyhow::bail!(
                    "WOWCHAT_GATEWAY_UPSTREAM: `{url}` must be {scheme}://host:port \
                     ({scheme} since WOWCHAT_GATEWAY_UPSTREAM_CA is {})",
                    if tls.is_some() { "set" } else { "not set" }
                );
            }
            targets.push(uri);
        }
        if targets.is_empty() {
            anyhow::bail!("WOWCHAT_GATEWAY_UPSTREAM: no upstream given");
        }
        let upstreams = Arc::new(Upstreams {
            targets,
            tls,
            replicas: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
        });
        upstreams.resolve().await;
        let weak = Arc::downgrade(&upstreams);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(resolve_every.max(Duration::from_secs(1)));
            every.tick().await;
            loop {
                every.tick().await;
                let Some(upstreams) = weak.upgrade() else {
                    return;
                };
                upstreams.resolve().await;
            }
        });
        Ok(upstreams)
    }

    /// Looks every upstream up: new addresses are connected, vanished ones
    /// dropped. A failed lookup keeps what the last one found.
    async fn resolve(&self) {
        let mut found: HashMap<SocketAddr, &Uri> = HashMap::new();
        for target in &self.targets {
            let host = target.host().unwrap_or_default().trim_matches(['[', ']']);
            let port = target.port_u16().unwrap_or(80);
            match tokio::net::lookup_host((host, port)).await {
                Ok(addresses) => {
                    for address in addresses {
                        found.insert(address, target);
                    }
                }
                Err(error) => {
                    tracing::warn!(upstream = %target, %error, "resolving the upstream");
                    return;
                }
            }
        }
        let current: Vec<SocketAddr> = self.read().iter().map(|r| r.address).collect();
        let added: Vec<(SocketAddr, &Uri)> = found
            .iter()
            .filter(|(address, _)| !current.contains(address))
            .map(|(address, target)| (*address, *target))
            .collect();
        let removed = current.iter().any(|address| !found.contains_key(address));
        if added.is_empty() && !removed {
            return;
        }
        let mut replicas = self
            .replicas
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        replicas.retain(|replica| found.contains_key(&replica.address));
        for (address, target) in added {
            match Replica::connect(address, target, self.tls.as_ref()) {
                Ok(replica) => replicas.push(replica),
                Err(error) => tracing::warn!(%address, %error, "connecting to a replica"),
            }
        }
        tracing::info!(replicas = replicas.len(), "upstream replicas");
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Replica>>> {
        self.replicas
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next serving replica other than `not`; any replica when none
    /// says it serves (a call that fails beats a call never tried).
    pub fn pick(&self, not: Option<&Replica>) -> Option<Arc<Replica>> {
        let replicas = self.read();
        let count = replicas.len();
        if count == 0 {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let other = |replica: &&Arc<Replica>| not.is_none_or(|not| replica.address != not.address);
        // In turn among the serving ones, so a replica that is down does
        // not hand its share to its neighbour; counted, then walked, so a
        // call allocates nothing.
        for only_serving in [true, false] {
            let candidates = || {
                replicas
                    .iter()
                    .filter(other)
                    .filter(move |replica| !only_serving || replica.is_serving())
            };
            let eligible = candidates().count();
            if eligible > 0 {
                return candidates().nth(turn % eligible).cloned();
            }
        }
        replicas.get(turn % count).cloned()
    }
}

impl Replica {
    fn connect(
        address: SocketAddr,
        target: &Uri,
        tls: Option<&ClientTlsConfig>,
    ) -> anyhow::Result<Arc<Replica>> {
        let mut endpoint = Endpoint::from_shared(format!(
            "{}://{address}",
            if tls.is_some() { "https" } else { "http" }
        ))?;
        if let Some(tls) = tls {
            // Verified against the name the service was configured by.
            let host = target.host().unwrap_or_default().trim_matches(['[', ']']);
            endpoint = endpoint.tls_config(tls.clone().domain_name(host))?;
        }
        let channel = endpoint
            // The name the service was configured by, not the pod's address.
            .origin(target.clone())
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .connect_lazy();
        let serving = AtomicBool::new(false);
        let replica = Arc::new_cyclic(|weak: &std::sync::Weak<Replica>| {
            let weak = weak.clone();
            let health = channel.clone();
            Replica {
                address,
                channel,
                serving,
                watcher: tokio::spawn(async move { watch_health(health, address, weak).await }),
            }
        });
        Ok(replica)
    }
}

/// Follows the replica's health (gRPC `Health.Watch`) for as long as it
/// exists: serving exactly while its last word was SERVING.
async fn watch_health(channel: Channel, address: SocketAddr, replica: std::sync::Weak<Replica>) {
    let set = |serving: bool| {
        if let Some(replica) = replica.upgrade()
            && replica.serving.swap(serving, Ordering::Relaxed) != serving
        {
            tracing::info!(%address, serving, "replica health");
        }
    };
    let mut client = HealthClient::new(channel);
    loop {
        let request = HealthCheckRequest {
            service: HEALTH_SERVICE.into(),
        };
        if let Ok(response) = client.watch(request).await {
            let mut updates = response.into_inner();
            while let Some(Ok(update)) = updates.next().await {
                let serving = update.status == ServingStatus::Serving as i32;
                set(serving);
                // A stopping replica drains its open streams before it
                // exits: this one must not be among them. Asked again below.
                if !serving {
                    break;
                }
            }
        }
        set(false);
        if replica.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
