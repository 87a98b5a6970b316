//! The replica's listener of `caller_changed` (see migration V16) and of
//! `caller_synced` (see `CallerCache::sync`): one
//! Postgres connection of its own, outside the pool, that applies each
//! notification to the [`CallerCache`] the moment it arrives.
//!
//! The cache serves only while this listener vouches for it: from its first
//! heartbeat (after emptying the cache) until a lease that every heartbeat
//! renews. A heartbeat is a NOTIFY on a channel only this listener hears,
//! sent from another connection (the request pool, the way every change's
//! notification is sent), and counts only once it arrives: that proves
//! notifications reach the listener, not just that its connection answers.
//! A listener behind a transaction-pooling PgBouncer, whose LISTEN stays on
//! a server connection other clients borrow, never vouches (sent on its own
//! connection, PgBouncer would hand the echo back and prove nothing). A connection that breaks, or a heartbeat that
//! does not come back, makes every call read Postgres until the listener is
//! back, reconnecting with backoff.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use tokio::time::Instant;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;
use wowchat_platform::{Backoff, Secret, postgres::ConnectConfig};

use super::CallerCache;
use crate::store::{Pool, notifications};

/// The Postgres channel the V16 triggers notify, and `CallerCache::sync`.
pub(super) const CHANGED: &str = "caller_changed";

/// Where listeners acknowledge a sync.
const SYNCED: &str = "caller_synced";

/// The listener's `application_name`, so operators (and tests) can find it.
pub const APPLICATION_NAME: &str = "wowchat-users caller listener";

/// How often the listener proves that notifications reach it.
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
pub async fn run(
    cache: Arc<CallerCache>,
    database_url: Secret,
    pool: Pool,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => break,
            outcome = listen(&cache, &database_url, &pool, &mut failures) => outcome,
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
    pool: &Pool,
    failures: &mut u32,
) -> anyhow::Result<()> {
    let config = ConnectConfig::parse(database_url.expose(), "WOWCHAT_DATABASE_DIRECT_URL")?
        .with_application_name(APPLICATION_NAME);
    let (client, mut connection) = config.connect().await?;
    // A channel only this connection listens to: its own heartbeats.
    let echo_channel = format!("caller_heartbeat_{}", uuid::Uuid::new_v4().simple());
    let (echo_sender, mut echoes) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let own_channel = echo_channel.clone();
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
            if notification.channel() == own_channel {
                if let Ok(beat) = payload.parse() {
                    let _ = echo_sender.send(beat);
                }
                continue;
            }
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
        notifications::listen(&client, &[CHANGED, SYNCED, &echo_channel]).await?;
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The heartbeat sent last and not yet back, with when it was sent.
        let mut awaited: Option<(u64, Instant)> = None;
        let mut beats = 0u64;
        let mut vouching = false;
        loop {
            tokio::select! {
                ended = &mut driver => {
                    ended??;
                    anyhow::bail!("the connection closed");
                }
                Some(token) = syncs.recv() => {
                    notifications::notify_from(&client, SYNCED, &token).await?;
                }
                Some(beat) = echoes.recv() => {
                    let Some((expected, sent)) = awaited else { continue };
                    if beat != expected {
                        continue;
                    }
                    awaited = None;
                    if vouching {
                        cache.renew((sent + LEASE).into_std());
                    } else {
                        // Every notification sent before this one has been
                        // applied: from here the cache may serve.
                        cache.connected((sent + LEASE).into_std());
                        vouching = true;
                        *failures = 0;
                        tracing::info!("caller listener connected: the caller cache serves");
                    }
                }
                _ = heartbeat.tick() => {
                    if let Some((_, sent)) = awaited
                        && sent.elapsed() >= LEASE
                    {
                        anyhow::bail!(
                            "a heartbeat notification did not come back: notifications do not \
                             arrive on this connection (behind a transaction-pooling PgBouncer? \
                             set WOWCHAT_DATABASE_DIRECT_URL)"
                        );
                    }
                    if awaited.is_none() {
                        beats += 1;
                        let sent = Instant::now();
                        let beat = beats.to_string();
                        tokio::time::timeout(LEASE, async {
                            let sender = pool.get().await?;
                            notifications::notify(&sender, &echo_channel, &beat).await?;
                            Ok::<_, anyhow::Error>(())
                        })
                        .await
                        .map_err(|_| anyhow::anyhow!("a heartbeat could not be sent"))??;
                        awaited = Some((beats, sent));
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}
