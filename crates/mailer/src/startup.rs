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
    Channel, Connection, Consumer,
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wowchat_platform::metrics::MetricsEndpoint;
use wowchat_users_api::topology::Topology;

use crate::{
    amqp::{self, Publisher},
    config::{Backoff, Config, MailerSettings},
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
    /// Whether a consumer is attached to the mailer queue: state the health
    /// endpoint and tests read, not a shutdown signal.
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
        let metrics = settings.metrics.bind().await?;
        let health = bind_health(settings.health_addr).await?;
        settings.database.apply_statement_mode();
        if settings.migrate_on_start {
            db::SCHEMA
                .create_and_migrate(settings.database.direct_url().expose())
                .await?;
        }
        let url = settings.database.url.expose();
        // One connection per message in flight, plus room for bookkeeping.
        let pool = db::SCHEMA.pool(url, usize::from(config.prefetch) + 4)?;
        let renderer = renderer(&settings, &config)?;
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
            warn_of_development_values(&config);
        }
        tracing::info!(
            emails_to = %transport.describe(settings.smtp_url.as_ref()),
            prefix = %config.topology.prefix(),
            "mailer ready"
        );
        let reconnect = config.retry;
        let health = match health {
            Some(listener) => Some((listener, db::SCHEMA.pool(url, 1)?)),
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
        let stop = CancellationToken::new();
        let signal = tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        });
        let endpoints = self.spawn_endpoints();
        let pruning = self.worker.config.sent_retention.map(|max_age| {
            tokio::spawn(prune(
                self.worker.store.clone(),
                max_age,
                self.worker.config.retention_interval,
                stop.clone(),
            ))
        });
        self.reconnect_until(&stop).await;
        signal.abort();
        self.consuming.send_replace(false);
        self.worker.metrics.consuming.set(0.0);
        for task in endpoints.into_iter().chain(pruning) {
            task.abort();
        }
        tracing::info!("mailer stopped");
        Ok(())
    }

    /// Starts serving metrics and health, where configured; they serve
    /// until their tasks are aborted, once the mailer has stopped.
    fn spawn_endpoints(&mut self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(endpoint) = self.metrics.take() {
            tasks.push(endpoint.spawn(std::future::pending()));
        }
        if let Some((listener, pool)) = self.health.take() {
            let (reporter, serving) = health::serve(listener);
            tasks.push(tokio::spawn(health::watch(
                reporter,
                pool,
                self.consuming.subscribe(),
            )));
            tasks.push(tokio::spawn(serving));
        }
        tasks
    }

    /// Runs one session after another until `stop`: a lost connection is
    /// retried after the backoff, which starts over once a session got as
    /// far as consuming.
    async fn reconnect_until(&self, stop: &CancellationToken) {
        let mut failures = 0u32;
        while !stop.is_cancelled() {
            let mut consumed = false;
            let Err(e) = self.session(stop, &mut consumed).await else {
                break;
            };
            self.consuming.send_replace(false);
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
                _ = stop.cancelled() => break,
            }
        }
    }

    /// One connection's life. Ok when stopped by `stop`, Err when lost.
    async fn session(&self, stop: &CancellationToken, consumed: &mut bool) -> anyhow::Result<()> {
        let mut session = Session::open(&self.worker.config).await?;
        self.consuming.send_replace(true);
        self.worker.metrics.consuming.set(1.0);
        *consumed = true;

        // Tells the handlers to stop waiting between retries: once this
        // connection is lost and their acks can no longer land, or on
        // shutdown. Not a child of `stop`, which would tell them at once:
        // on shutdown the consumer is cancelled first (below).
        let handlers_stop = CancellationToken::new();
        let mut handlers = JoinSet::new();
        let ended = self
            .consume(&mut session, stop, &handlers_stop, &mut handlers)
            .await;
        self.consuming.send_replace(false);
        self.worker.metrics.consuming.set(0.0);
        if ended.is_ok() {
            tracing::info!(
                in_flight = handlers.len(),
                "shutting down: finishing the commands in flight"
            );
            // First no new deliveries, then the handlers may give theirs back:
            // a requeued command is not redelivered to this consumer.
            session.cancel_consumer().await;
        }
        handlers_stop.cancel();
        while let Some(joined) = handlers.join_next().await {
            report(joined);
        }
        // A lost connection has nothing to close; one left open by a closed
        // channel is closed here rather than leaked until the drop.
        if session.connection.status().connected() {
            close(&session.connection).await;
        }
        ended
    }

    /// Hands each delivery to a handler of its own until `stop` (Ok) or
    /// until the connection, a channel or the consumer is lost (Err).
    async fn consume(
        &self,
        session: &mut Session,
        stop: &CancellationToken,
        handlers_stop: &CancellationToken,
        handlers: &mut JoinSet<()>,
    ) -> anyhow::Result<()> {
        let mut health = tokio::time::interval(HEALTH_CHECK);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                next = session.consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        handlers.spawn(self.worker.clone().handle(
                            delivery,
                            session.publisher.clone(),
                            handlers_stop.clone(),
                        ));
                    }
                    Some(Err(e)) => return Err(anyhow!(e).context("consuming")),
                    None => return Err(anyhow!("the broker cancelled the consumer")),
                },
                Some(joined) = handlers.join_next(), if !handlers.is_empty() => report(joined),
                _ = health.tick() => session.check()?,
            }
        }
    }
}

/// One RabbitMQ connection, consuming the mailer queue on one channel and
/// publishing results on another.
struct Session {
    connection: Connection,
    consume: Channel,
    publisher: Publisher,
    consumer: Consumer,
    /// The consumer tag, to cancel it by.
    tag: String,
}

impl Session {
    /// Connects, declares the topology, sets the prefetch and starts
    /// consuming with manual acks.
    async fn open(config: &Config) -> anyhow::Result<Session> {
        let topology = &config.topology;
        let connection = config.brokers.connect(amqp::APP_ID).await?;
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
        let consumer = consume
            .basic_consume(
                topology.mailer_queue().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("consuming the mailer queue")?;
        tracing::info!(queue = %topology.mailer_queue(), prefetch = config.prefetch, "consuming");
        Ok(Session {
            connection,
            consume,
            publisher,
            consumer,
            tag,
        })
    }

    /// Err once the connection or one of the channels is closed.
    fn check(&self) -> anyhow::Result<()> {
        if !self.connection.status().connected() {
            return Err(anyhow!("the connection is closed"));
        }
        if !self.publisher.is_open() || !self.consume.status().connected() {
            return Err(anyhow!("a channel was closed"));
        }
        Ok(())
    }

    /// Asks the broker for no more deliveries; a failure is only logged.
    async fn cancel_consumer(&self) {
        if let Err(e) = self
            .consume
            .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default())
            .await
        {
            tracing::warn!(error = %e, "could not cancel the consumer");
        }
    }
}

/// The health endpoint's listener, when `WOWCHAT_MAILER_HEALTH_ADDR` asks for one.
async fn bind_health(address: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("WOWCHAT_MAILER_HEALTH_ADDR: binding {address}"))?;
    Ok(Some(listener))
}

/// The email templates, with the links and the keys that open the tokens.
fn renderer(settings: &MailerSettings, config: &Config) -> anyhow::Result<Renderer> {
    let renderer = Renderer::new(
        config.mail_from.clone(),
        config.accept_url.clone(),
        config.users_url.clone(),
    )
    .context("loading the email templates")?
    .with_token_in(config.accept_token_in)
    .with_confirm_url_if_set(config.confirm_url.clone())
    .with_unsubscribe_url(config.unsubscribe_url.clone());
    let token_keys = settings
        .mail_token_keys
        .as_ref()
        .map(|keys| wowchat_platform::sealing::TokenKeys::parse(keys.expose()))
        .transpose()?;
    Ok(renderer.with_token_keys(token_keys))
}

/// Warns when real emails would carry a development sender or link.
fn warn_of_development_values(config: &Config) {
    let settings = config.development_values();
    if !settings.is_empty() {
        tracing::warn!(
            settings = settings.join(", "),
            "emails go out over SMTP with a development sender or link \
             (localhost or a test domain): set these for real recipients"
        );
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

/// Prunes the dedupe table every `every` until `stop`; the first round runs
/// at start. A failed round is logged and tried again at the next.
async fn prune(store: Store, max_age: Duration, every: Duration, stop: CancellationToken) {
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
            _ = stop.cancelled() => return,
        }
    }
}

/// Rows per DELETE when pruning.
const PRUNE_BATCH: i64 = 1000;
