//! The replica's listener of `caller_changed` (see migration V16) and of
//! `caller_synced` (see `CallerCache::sync`): one
//! Postgres connection of its own, outside the pool, that applies each
//! notification to the [`CallerCache`] the moment it arrives.
//!
//! The cache serves only while this listener vouches for it: from the
//! LISTEN (after emptying the cache) until a lease that every heartbeat
//! renews. A connection that breaks, or a heartbeat unanswered, makes every
//! call read Postgres until the listener is back, reconnecting with backoff.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use tokio::time::Instant;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;
use wowchat_platform::{Backoff, Secret, postgres::ConnectConfig};

use super::CallerCache;

/// The Postgres channel the V16 triggers notify, and `CallerCache::sync`.
const CHANGED: &str = "caller_changed";

/// Where listeners acknowledge a sync.
const SYNCED: &str = "caller_synced";

/// The listener's `application_name`, so operators (and tests) can find it.
pub const APPLICATION_NAME: &str = "wowchat-users caller listener";

/// How often the listener proves its connection alive.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long one answered heartbeat lets the cache serve: a connection that
/// died silently stops it within this.
pub(super) const LEASE: Duration = Duration::from_secs(5);

/// Delays between reconnects: 100 ms doubling to 5 s.
const RECONNECT: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(5),
};

/// Listens until `shutdown`, reconnecting whenever the connection is lost.
/// `database_url` must reach Postgres directly (a session of its own), not
/// through a transaction-pooling PgBouncer.
pub async fn run(cache: Arc<CallerCache>, database_url: Secret, shutdown: CancellationToken) {
    let mut failures = 0u32;
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => break,
            outcome = listen(&cache, &database_url, &mut failures) => outcome,
        };
        cache.disconnected();
        if let Err(error) = outcome {
            tracing::warn!(error = %format!("{error:#}"), "caller listener disconnected; reading callers from Postgres meanwhile");
        }
        failures = failures.saturating_add(1);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(RECONNECT.delay(failures)) => {}
        }
    }
    cache.disconnected();
}

/// One connection's life: LISTEN, then heartbeats until something fails.
async fn listen(
    cache: &Arc<CallerCache>,
    database_url: &Secret,
    failures: &mut u32,
) -> anyhow::Result<()> {
    let config = ConnectConfig::parse(database_url.expose(), "WOWCHAT_DATABASE_DIRECT_URL")?
        .with_application_name(APPLICATION_NAME);
    let (client, mut connection) = config.connect().await?;
    // Notifications are applied here, in the order Postgres sent them, so
    // a heartbeat's answer comes after every notification sent before it,
    // and so does the acknowledgement of a sync.
    let applier = cache.clone();
    let (sync_requests, mut syncs) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let AsyncMessage::Notification(notification) = message? else {
                continue;
            };
            let payload = notification.payload();
            match (notification.channel(), payload.strip_prefix("sync ")) {
                (CHANGED, Some(token)) => {
                    let _ = sync_requests.send(token.to_owned());
                }
                (CHANGED, None) => applier.apply(payload),
                (SYNCED, _) => applier.acknowledged(payload),
                _ => {}
            }
        }
        Ok::<_, tokio_postgres::Error>(())
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {CHANGED}; LISTEN {SYNCED}"))
            .await?;
        cache.connected((Instant::now() + LEASE).into_std());
        *failures = 0;
        tracing::info!("caller listener connected: the caller cache serves");
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ended = &mut driver => {
                    ended??;
                    anyhow::bail!("the connection closed");
                }
                Some(token) = syncs.recv() => {
                    client
                        .execute("SELECT pg_notify($1, $2)", &[&SYNCED, &token])
                        .await?;
                }
                _ = heartbeat.tick() => {
                    let sent = Instant::now();
                    tokio::time::timeout(LEASE, client.simple_query(""))
                        .await
                        .map_err(|_| anyhow::anyhow!("a heartbeat went unanswered"))??;
                    cache.renew((sent + LEASE).into_std());
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}
