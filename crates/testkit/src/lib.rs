//! The test kit: a real server on a free port against a fresh Postgres
//! database of its own (dropped afterwards), a bootstrapped workspace with an
//! owner, a gRPC client, and helpers to read what a real caller would see.
//!
//! Set `TEST_LOG=1` to see the server's logs; `TEST_DATABASE_URL` points at
//! another Postgres (default `postgres://postgres@127.0.0.1:5432/postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashSet, path::PathBuf, sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard, WaitForCancellationFutureOwned};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;
use uuid::Uuid;
use wowchat_users_api::topology::Topology;
use wowchat_users_api::v1::{self as proto, user_service_client::UserServiceClient};
use wowchat_users_server::{
    config::Settings,
    domain::{EmailAddress, user::Password},
    operations::{AppState, bootstrap::bootstrap},
    startup::Application,
};

pub mod browser;
mod calls;
pub mod dnsmasq;
pub mod logs;
pub mod metrics;
pub mod pgbouncer;
pub mod processes;
pub mod proxy;
pub mod rabbitmq_cluster;
mod records;
pub mod replicated_postgres;
mod requests;
pub mod smtp;
mod system;
pub mod traces;

pub use calls::{
    Authorized, Bearer, CarriesInvitation, InvitationAnswer, OtherWorkspace, Services,
};
pub use proxy::TcpProxy;
pub use records::{OutboxRow, open_token};
pub use requests::*;
pub use smtp::{ReceivedMail, SmtpServer};
pub use wowchat_users_server;

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// The key test servers seal invitation tokens with, and test mailers open
/// them with (`WOWCHAT_MAIL_TOKEN_KEYS`).
pub const MAIL_TOKEN_KEYS: &str = "test:d293Y2hhdCB0ZXN0IG1haWwgdG9rZW4ga2V5LCAzMiE";

/// The RabbitMQ of the tests: `TEST_AMQP_URL`, default the local one.
pub fn test_amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A running server with its own database and a bootstrapped workspace.
pub struct TestApp {
    pub address: String,
    /// Where the server serves Prometheus metrics, when the test asked for them.
    pub metrics_address: Option<std::net::SocketAddr>,
    pub database_name: String,
    pub database_url: String,
    pub workspace_id: Uuid,
    pub owner_id: Uuid,
    pub owner_token: String,
    pub state: Arc<AppState>,
    /// The RabbitMQ names of this test, deleted afterwards.
    pub topology: Topology,
    pub amqp_url: String,
    keys_dir: PathBuf,
    /// False for a replica (`spawn_replica`): the first server's drop
    /// deletes the database, keys and RabbitMQ names.
    owns_installation: bool,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server with settings adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let database_name = format!("wowchat_test_{}", Uuid::new_v4().simple());
        let mut config: tokio_postgres::Config = admin_url().parse().expect("TEST_DATABASE_URL");
        config.dbname(&database_name);
        Self::spawn_on(&database_name, database_url(&config), adjust).await
    }

    /// Starts a server on the database `database_name` at `database_url`
    /// (another Postgres than the test's own), with settings adjusted by
    /// `adjust`; the test's own reads ([`TestApp::db`]) go there too.
    pub async fn spawn_on(
        database_name: &str,
        database_url: String,
        adjust: impl FnOnce(&mut Settings),
    ) -> TestApp {
        logs::install();
        let database_name = database_name.to_owned();
        let keys_dir = std::env::temp_dir().join(&database_name);

        let mut settings = test_settings(&database_url, &keys_dir);
        settings.amqp.prefix = format!("test-{}", Uuid::new_v4().simple());
        adjust(&mut settings);
        let topology = Topology::new(settings.amqp.prefix.clone());
        let amqp_url = settings.amqp.url.expose().to_owned();

        let app = Application::build(settings).await.expect("server builds");
        let address = format!("http://{}", app.address());
        let metrics_address = app.metrics_address();
        let state = app.state();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(shutdown.clone().cancelled_owned()));

        let owner_email = EmailAddress::parse("owner@example.com").unwrap();
        let created = bootstrap(
            &state,
            "Acme Support",
            &owner_email,
            "Olive Owner",
            Password::parse(PASSWORD).unwrap(),
        )
        .await
        .expect("bootstrap");
        let owner_token = state
            .keys
            .mint(
                created.owner_id,
                created.workspace_id,
                Duration::from_secs(3600),
            )
            .unwrap();
        TestApp {
            address,
            metrics_address,
            database_name,
            database_url,
            workspace_id: created.workspace_id,
            owner_id: created.owner_id,
            owner_token,
            state,
            topology,
            amqp_url,
            keys_dir,
            owns_installation: true,
            shutdown,
            server: Some(server),
        }
    }

    /// Another replica of this server: its own process state (pool, caches,
    /// in-memory anything) on a port of its own, the same database, keys
    /// and RabbitMQ names, settings adjusted by `adjust`. Its owner token is
    /// this server's; dropping it leaves the installation to this one.
    pub async fn spawn_replica(&self, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = test_settings(&self.database_url, &self.keys_dir);
        settings.amqp.prefix = self.topology.prefix().to_owned();
        adjust(&mut settings);
        let app = Application::build(settings).await.expect("replica builds");
        let address = format!("http://{}", app.address());
        let metrics_address = app.metrics_address();
        let state = app.state();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(shutdown.clone().cancelled_owned()));
        TestApp {
            address,
            database_name: self.database_name.clone(),
            database_url: self.database_url.clone(),
            workspace_id: self.workspace_id,
            owner_id: self.owner_id,
            owner_token: self.owner_token.clone(),
            state,
            topology: self.topology.clone(),
            amqp_url: self.amqp_url.clone(),
            keys_dir: self.keys_dir.clone(),
            metrics_address,
            owns_installation: false,
            shutdown,
            server: Some(server),
        }
    }

    pub async fn client(&self) -> UserServiceClient<Channel> {
        UserServiceClient::connect(self.address.clone())
            .await
            .expect("connects")
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.address.clone())
            .unwrap()
            .connect()
            .await
            .expect("connects")
    }

    /// A bearer token for `user_id` of this workspace.
    pub fn token_for(&self, user_id: Uuid) -> String {
        self.state
            .keys
            .mint(user_id, self.workspace_id, Duration::from_secs(3600))
            .unwrap()
    }

    /// Stops the server, waiting for in-flight requests to finish.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if self.owns_installation {
            let _ = std::fs::remove_dir_all(&self.keys_dir);
            clean_up(&self.database_name, Some(self.topology.clone()));
        }
    }
}

/// Turns the invitation rate limits (per inviter, per workspace and per
/// recipient) off, for a test that invites faster than people do.
pub fn without_invitation_limits(settings: &mut Settings) {
    settings.invites_per_minute_per_inviter = 0;
    settings.invites_per_minute_per_workspace = 0;
    settings.invites_per_day_per_recipient = 0;
}

/// The settings of a test server on `database_url`: port 0, the
/// development keys in `keys_dir`, a small pool, the relay off, fast polls.
fn test_settings(database_url: &str, keys_dir: &std::path::Path) -> Settings {
    let mut settings = Settings::defaults();
    settings.database.url = database_url.to_owned().into();
    settings.listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.dev_keys_dir = keys_dir.to_owned();
    settings.db_pool_size = 8;
    settings.health_interval_ms = 100;
    settings.mail_token_keys = Some(MAIL_TOKEN_KEYS.into());
    // Nothing balances over a test server: stop at once when told.
    settings.shutdown.delay_secs = 0;
    // Tests that need RabbitMQ turn the relay on; each gets its own names.
    settings.relay = false;
    settings.amqp.url = test_amqp_url().into();
    settings.relay_poll_ms = 100;
    settings.relay_retry_max_secs = 1;
    settings
}

/// Runs a server in this process on a task of its own until the returned
/// guard is dropped: `run` is given the future its `run_until_stopped`
/// waits on, e.g. `run_until_dropped(|stop| gateway.run_until_stopped(stop))`.
pub fn run_until_dropped<F>(run: impl FnOnce(WaitForCancellationFutureOwned) -> F) -> DropGuard
where
    F: Future<Output: Send + 'static> + Send + 'static,
{
    let stop = CancellationToken::new();
    tokio::spawn(run(stop.clone().cancelled_owned()));
    stop.drop_guard()
}

/// Deletes what a test made outside its process: the RabbitMQ names of
/// `topology`, if any, and the database `database` (whoever is still
/// connected). On a thread of its own: Drop cannot await, and the test's
/// runtime may be shutting down.
pub fn clean_up(database: &str, topology: Option<Topology>) {
    let drop_database = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            if let Some(topology) = topology {
                delete_topology(&topology).await;
            }
            if let Ok((client, connection)) =
                tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls).await
            {
                tokio::spawn(connection);
                let _ = client.batch_execute(&drop_database).await;
            }
        });
    })
    .join();
}

/// A mailer worker running in the test process.
pub struct MailerHandle {
    /// Its Prometheus endpoint and gRPC health endpoint, when asked for.
    pub metrics_address: Option<std::net::SocketAddr>,
    pub health_address: Option<std::net::SocketAddr>,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl MailerHandle {
    /// Stops it gracefully: the message in hand is finished first.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }

    /// Kills it where it stands, as a crash would.
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Dropped, it stops as [`MailerHandle::stop`] would, without waiting.
impl Drop for MailerHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// Mailer settings for this test: its database, its RabbitMQ names,
    /// sending through `smtp_url`, retrying fast.
    pub fn mailer_settings(&self, smtp_url: &str) -> wowchat_mailer::MailerSettings {
        let mut settings = wowchat_mailer::MailerSettings::defaults();
        settings.amqp.url = test_amqp_url().into();
        settings.amqp.prefix = self.topology.prefix().to_owned();
        settings.database.url = self.database_url.clone().into();
        settings.smtp_url = Some(smtp_url.to_owned().into());
        settings.mail_token_keys = Some(MAIL_TOKEN_KEYS.into());
        settings.retry_base_ms = 20;
        settings.retry_max_ms = 200;
        settings.max_attempts = 3;
        settings
    }

    /// Starts a mailer with `settings`; returns once it is consuming.
    /// Returns once the mailer consumes its queue, which is then bound: a
    /// command the relay publishes from then on is routed, not returned.
    pub async fn start_mailer(&self, settings: wowchat_mailer::MailerSettings) -> MailerHandle {
        let queue = Topology::new(settings.amqp.prefix.clone()).mailer_queue();
        let amqp_url = settings.amqp.url.expose().to_owned();
        let mailer = wowchat_mailer::Mailer::build(settings)
            .await
            .expect("mailer builds");
        let metrics_address = mailer.metrics_address();
        let health_address = mailer.health_address();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(mailer.run_until_stopped(shutdown.clone().cancelled_owned()));
        until_consumed_on(&amqp_url, &queue).await;
        MailerHandle {
            metrics_address,
            health_address,
            shutdown,
            task,
        }
    }
}

/// Messages ready in `queue`, read with a passive declare: an error when
/// the queue does not exist.
pub async fn ready_messages(channel: &lapin::Channel, queue: &str) -> Result<u32, lapin::Error> {
    Ok(passive_declare(channel, queue).await?.message_count())
}

/// Consumers of `queue`, read with a passive declare: an error when the
/// queue does not exist. A consumer's queue is bound: consumers declare and
/// bind before they consume.
pub async fn queue_consumers(channel: &lapin::Channel, queue: &str) -> Result<u32, lapin::Error> {
    Ok(passive_declare(channel, queue).await?.consumer_count())
}

async fn passive_declare(
    channel: &lapin::Channel,
    queue: &str,
) -> Result<lapin::Queue, lapin::Error> {
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue.into(), passive, lapin::types::FieldTable::default())
        .await
}

/// Waits, at most 30 s, until `queue` has a consumer (and so is bound).
pub async fn until_consumed(queue: &str) {
    until_consumed_on(&test_amqp_url(), queue).await;
}

/// [`until_consumed`] on the broker of `amqp_url` (one or several
/// addresses, as `WOWCHAT_AMQP_URL` lists them).
async fn until_consumed_on(amqp_url: &str, queue: &str) {
    let connection = wowchat_platform::amqp::Brokers::parse(amqp_url, "the mailer's AMQP URL")
        .expect("an AMQP URL")
        .connect("wowchat-tests")
        .await
        .expect("RabbitMQ for the tests");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // A failed passive declare closes its channel: a new one each time.
        let channel = connection.create_channel().await.expect("a channel");
        if queue_consumers(&channel, queue).await.is_ok_and(|n| n > 0) {
            let _ = channel.close(200, "done".into()).await;
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing consumes {queue}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = connection.close(200, "done".into()).await;
}

/// Deletes every queue and exchange named under the test's prefix.
pub async fn delete_topology(topology: &Topology) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(connection) =
        lapin::Connection::connect(&test_amqp_url(), lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    for queue in [
        topology.events_archive_queue(),
        topology.delivery_results_queue(),
        topology.mailer_queue(),
        topology.mailer_dead_letter_queue(),
    ] {
        let _ = channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [
        topology.events_exchange(),
        topology.commands_exchange(),
        topology.mailer_dead_letter_exchange(),
    ] {
        let _ = channel
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "test done".into()).await;
}

fn database_url(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!(
        "postgres://{user}{password}@{host}:{port}/{}",
        config.get_dbname().unwrap_or("postgres")
    )
}

/// The ids of `users`, to compare listings regardless of order.
pub fn user_ids<'a>(users: impl IntoIterator<Item = &'a proto::User>) -> HashSet<String> {
    users.into_iter().map(|user| user.id.clone()).collect()
}

/// `ids` as a set, to compare with [`user_ids`].
pub fn id_set(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

/// The `ErrorInfo` reason of an error status.
pub fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The fields named by the status's `BadRequest` violations.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The delay a refusal's `RetryInfo` asks for.
pub fn retry_delay(status: &Status) -> Duration {
    status
        .get_details_retry_info()
        .expect("RetryInfo is attached")
        .retry_delay
        .expect("RetryInfo has a delay")
}

/// Asserts the call failed with `code` and `reason`, and returns the status.
#[track_caller]
pub fn expect_error<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    expected_reason: &str,
) -> Status {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "code of {status:?}");
    assert_eq!(reason(&status), expected_reason, "reason of {status:?}");
    status
}

/// The `expect_…` assertions of one status code each: the call failed with
/// that code and `reason`, and they return the status.
macro_rules! expect_code {
    ($($(#[$doc:meta])* $name:ident => $code:ident;)*) => {$(
        $(#[$doc])*
        #[track_caller]
        pub fn $name<T: std::fmt::Debug>(result: Result<T, Status>, reason: &str) -> Status {
            expect_error(result, Code::$code, reason)
        }
    )*};
}

expect_code! {
    /// Asserts the call was refused by a rule of the current state
    /// (FAILED_PRECONDITION) for `reason`.
    expect_refused => FailedPrecondition;
    /// Asserts the caller was not allowed (PERMISSION_DENIED) for `reason`.
    expect_denied => PermissionDenied;
    /// Asserts what the call names does not exist for the caller (NOT_FOUND).
    expect_not_found => NotFound;
    /// Asserts the caller was not recognised (UNAUTHENTICATED) for `reason`.
    expect_unauthenticated => Unauthenticated;
    /// Asserts the call was held back by a limit (RESOURCE_EXHAUSTED) for `reason`.
    expect_limited => ResourceExhausted;
    /// Asserts the request was refused as invalid input (INVALID_ARGUMENT)
    /// for `reason` (the returned status holds its field violations).
    expect_invalid_argument => InvalidArgument;
    /// Asserts what the call would create already exists (ALREADY_EXISTS).
    expect_exists => AlreadyExists;
}

/// Asserts the caller lacks the permission the call needs.
#[track_caller]
pub fn expect_permission_missing<T: std::fmt::Debug>(result: Result<T, Status>) -> Status {
    expect_denied(result, "PERMISSION_MISSING")
}

/// Asserts the call would reach above the caller's own role.
#[track_caller]
pub fn expect_above_caller<T: std::fmt::Debug>(result: Result<T, Status>) -> Status {
    expect_denied(result, "ROLE_ABOVE_CALLER")
}
