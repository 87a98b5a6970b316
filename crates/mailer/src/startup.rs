//! Building and running the mailer: [`Mailer::build`] prepares everything
//! that does not need RabbitMQ (settings, Postgres, migrations, templates,
//! transport); [`Mailer::run_until_stopped`] then runs the reconnect loop
//! until its shutdown future completes.
//!
//! The reconnect loop is ours, not lapin's: each session connects, declares
//! the topology, sets the prefetch, consumes with manual acks and hands every
//! delivery to a task; when the connection is lost it waits (with backoff)
//! and starts a new session, so a broker restart heals by itself.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context, anyhow};
use deadpool_postgres::Pool;
use futures::StreamExt;
use lapin::{
    Connection,
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use uuid::Uuid;
use wowchat_platform::metrics::MetricsEndpoint;
use wowchat_users_api::topology::Topology;

use crate::{
    amqp::{self, Publisher},
    config::{Backoff, MailerSettings},
    db, health,
    metrics::MailerMetrics,
    render::Renderer,
    store::Store,
    transport::Transport,
    worker::Worker,
};

/// How often a session checks that its connection and channels are still open.
const HEALTH_CHECK: Duration = Duration::from_secs(2);

/// The mailer worker, ready to run.
pub struct Mailer {
    worker: Arc<Worker>,
    reconnect: Backoff,
    consuming: watch::Sender<bool>,
    /// The Prometheus endpoint, when `WOWCHAT_MAILER_METRICS_ADDR` asks for one.
    metrics: Option<MetricsEndpoint>,
    /// The gRPC health endpoint, when `WOWCHAT_MAILER_HEALTH_ADDR` asks for
    /// one, with the probe's own Postgres connection.
    health: Option<(TcpListener, Pool)>,
}

impl Mailer {
    /// Validates the settings, creates and migrates the database, and
    /// prepares the templates and the transport (SMTP, or the mail
    /// directory, created if missing). Does not touch RabbitMQ.
    pub async fn build(settings: MailerSettings) -> anyhow::Result<Self> {
        let config = settings.validate()?;
        // Before any metric handle is resolved: earlier ones stay no-ops.
        let metrics =
            MetricsEndpoint::bind_if(settings.metrics_addr, "WOWCHAT_MAILER_METRICS_ADDR").await?;
        let health = match settings.health_addr {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("WOWCHAT_MAILER_HEALTH_ADDR: binding {address}"))?,
            ),
            None => None,
        };
        if !settings.database_statement_cache {
            wowchat_platform::statements::use_unnamed_statements();
        }
        if settings.migrate_on_start {
            let direct = settings
                .database_direct_url
                .as_ref()
                .unwrap_or(&settings.database_url)
                .expose();
            db::ensure_database(direct).await?;
            db::migrate(direct).await?;
        }
        let url = settings.database_url.expose();
        // One connection per message in flight, plus room for bookkeeping.
        let pool = db::pool(url, usize::from(config.prefetch) + 4)?;
        let renderer = Renderer::new(
            config.mail_from.clone(),
            config.accept_url.clone(),
            config.users_url.clone(),
        )
        .context("loading the email templates")?
        .with_confirm_url_if_set(config.confirm_url.clone())
        .with_token_keys(
            settings
                .mail_token_keys
                .as_ref()
                .map(|keys| wowchat_platform::sealing::TokenKeys::parse(keys.expose()))
                .transpose()?,
        );
        let transport = Transport::new(
            settings.smtp_url.as_ref(),
            &settings.mail_dir,
            Duration::from_secs(settings.smtp_timeout_secs),
            // One for each command in hand.
            u32::from(config.prefetch),
        )
        .await?;
        // Files stay on this machine; over SMTP, strangers get these emails.
        if settings.smtp_url.is_some() {
            let settings = config.development_values();
            if !settings.is_empty() {
                tracing::warn!(
                    settings = settings.join(", "),
                    "emails go out over SMTP with a development sender or link \
                     (localhost or a test domain): set these for real recipients"
                );
            }
        }
        tracing::info!(
            emails_to = %transport.describe(settings.smtp_url.as_ref()),
            prefix = %config.topology.prefix(),
            "mailer ready"
        );
        let reconnect = config.retry;
        let health = match health {
            Some(listener) => Some((listener, db::pool(url, 1)?)),
            None => None,
        };
        Ok(Mailer {
            worker: Arc::new(Worker {
                config,
                store: Store::new(pool),
                transport,
                renderer,
                metrics: MailerMetrics::new(),
            }),
            reconnect,
            consuming: watch::Sender::new(false),
            metrics,
            health,
        })
    }

    /// Where Prometheus metrics are served, if they are.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::address)
    }

    /// Where gRPC health is served, if it is.
    pub fn health_address(&self) -> Option<SocketAddr> {
        self.health
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// The exchange and queue names the mailer uses.
    pub fn topology(&self) -> &Topology {
        &self.worker.config.topology
    }

    /// True while a consumer is attached to the mailer queue: tests can wait
    /// for it before publishing.
    pub fn consuming(&self) -> watch::Receiver<bool> {
        self.consuming.subscribe()
    }

    /// Consumes mail commands until `shutdown` completes, reconnecting to
    /// RabbitMQ whenever the connection is lost. On shutdown it stops
    /// consuming, finishes the commands in flight and closes the connection.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, mut stop) = watch::channel(false);
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let metrics = self
            .metrics
            .take()
            .map(|endpoint| endpoint.spawn(std::future::pending()));
        let health = self.health.take().map(|(listener, pool)| {
            let (reporter, serving) = health::serve(listener);
            [
                tokio::spawn(health::watch(reporter, pool, self.consuming.subscribe())),
                tokio::spawn(serving),
            ]
        });
        let pruning = self.worker.config.sent_retention.map(|max_age| {
            tokio::spawn(prune(
                self.worker.store.clone(),
                max_age,
                self.worker.config.retention_interval,
                stop.clone(),
            ))
        });
        let mut failures = 0u32;
        loop {
            if *stop.borrow() {
                break;
            }
            let mut consumed = false;
            match self.session(&mut stop, &mut consumed).await {
                Ok(()) => break,
                Err(e) => {
                    self.consuming.send_replace(false);
                    // A session that got as far as consuming starts the backoff over.
                    failures = if consumed {
                        1
                    } else {
                        failures.saturating_add(1)
                    };
                    let delay = self.reconnect.delay(failures);
                    tracing::warn!(
                        error = format!("{e:#}"),
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "no RabbitMQ connection: reconnecting"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
            }
        }
        signal.abort();
        if let Some(pruning) = pruning {
            pruning.abort();
        }
        self.consuming.send_replace(false);
        self.worker.metrics.consuming.set(0.0);
        for task in health.into_iter().flatten().chain(metrics) {
            task.abort();
        }
        tracing::info!("mailer stopped");
        Ok(())
    }

    /// One connection's life. Ok when stopped by shutdown, Err when lost.
    async fn session(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        consumed: &mut bool,
    ) -> anyhow::Result<()> {
        let config = &self.worker.config;
        let topology = &config.topology;
        let connection = wowchat_platform::amqp::connect(&config.amqp_uri, amqp::APP_ID).await?;
        let consume = connection
            .create_channel()
            .await
            .context("opening a channel")?;
        amqp::declare_topology(&consume, topology)
            .await
            .context("declaring the topology")?;
        consume
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await
            .context("setting the prefetch")?;
        let publisher = Publisher::new(
            connection
                .create_channel()
                .await
                .context("opening a channel")?,
            topology,
        )
        .await?;
        let tag = format!("{}-{}", amqp::APP_ID, Uuid::new_v4().simple());
        let mut consumer = consume
            .basic_consume(
                topology.mailer_queue().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("consuming the mailer queue")?;
        tracing::info!(queue = %topology.mailer_queue(), prefetch = config.prefetch, "consuming");
        self.consuming.send_replace(true);
        self.worker.metrics.consuming.set(1.0);
        *consumed = true;

        // Tells the handlers to stop waiting between retries: on shutdown, or
        // once this connection is lost and their acks can no longer land.
        let (stop_tasks, tasks_stop) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut health = tokio::time::interval(HEALTH_CHECK);
        let ended = loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break Ok(()),
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        tasks.spawn(self.worker.clone().handle(
                            delivery,
                            publisher.clone(),
                            tasks_stop.clone(),
                        ));
                    }
                    Some(Err(e)) => break Err(anyhow!(e).context("consuming")),
                    None => break Err(anyhow!("the broker cancelled the consumer")),
                },
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => report(joined),
                _ = health.tick() => {
                    if !connection.status().connected() {
                        break Err(anyhow!("the connection is closed"));
                    }
                    if !publisher.is_open() || !consume.status().connected() {
                        break Err(anyhow!("a channel was closed"));
                    }
                }
            }
        };
        self.consuming.send_replace(false);
        self.worker.metrics.consuming.set(0.0);
        if ended.is_ok() {
            tracing::info!(
                in_flight = tasks.len(),
                "shutting down: finishing the commands in flight"
            );
            // First no new deliveries, then the handlers may give theirs back:
            // a requeued command is not redelivered to this consumer.
            if let Err(e) = consume
                .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                .await
            {
                tracing::warn!(error = %e, "could not cancel the consumer");
            }
        }
        let _ = stop_tasks.send(true);
        while let Some(joined) = tasks.join_next().await {
            report(joined);
        }
        // A lost connection has nothing to close; one left open by a closed
        // channel is closed here rather than leaked until the drop.
        if connection.status().connected() {
            close(&connection).await;
        }
        ended
    }
}

fn report(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        tracing::error!(error = %e, "a mail handler failed");
    }
}

async fn close(connection: &Connection) {
    match tokio::time::timeout(HEALTH_CHECK * 2, connection.close(200, "OK".into())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not close the RabbitMQ connection cleanly")
        }
        Err(_) => tracing::warn!("RabbitMQ did not confirm closing the connection in time"),
    }
}

/// Prunes the dedupe table every `every` until stopped; the first round runs
/// at start. A failed round is logged and tried again at the next.
async fn prune(store: Store, max_age: Duration, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match store.prune_sent(max_age, PRUNE_BATCH).await {
            Ok(Some(deleted)) if deleted > 0 => {
                tracing::info!(deleted, "pruned old sent-message rows")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "pruning sent messages failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Rows per DELETE when pruning.
const PRUNE_BATCH: i64 = 1000;
