//! The `wowchat-users` binary: serve (default), migrate, bootstrap, token.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use uuid::Uuid;
use wowchat_platform::environment;
use wowchat_users_server::{
    auth::{JwtKeys, PasswordHasher},
    config::Settings,
    db,
    domain::{EmailAddress, user::Password},
    operations::{AppState, bootstrap::bootstrap},
    startup::{Application, spawn_messaging},
    telemetry,
};

#[derive(Parser)]
#[command(name = "wowchat-users", version, about = "WowChat Users gRPC service")]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC server (the default).
    Serve,
    /// Run the server, the relay, the mailer and the REST gateway in one
    /// process: the quickstart. The mailer takes its settings from the same
    /// variables as `wowchat-mailer`; the gateway forwards to this server.
    Standalone {
        #[command(flatten)]
        gateway: Box<wowchat_gateway::GatewaySettings>,
    },
    /// Run only the outbox relay and the delivery-result consumer.
    Relay,
    /// Create the database if needed and apply the migrations, then exit.
    Migrate,
    /// Create a workspace and its first owner; prints their ids.
    Bootstrap {
        #[arg(long, default_value = "My workspace")]
        workspace_name: String,
        #[arg(long)]
        owner_email: String,
        #[arg(long, default_value = "Owner")]
        owner_name: String,
        /// The owner's password; generated and printed when not given.
        #[arg(long, env = "WOWCHAT_OWNER_PASSWORD", hide_env_values = true)]
        owner_password: Option<String>,
    },
    /// Mint a bearer JWT for a user with the configured private key.
    Token {
        #[arg(long)]
        user_id: Uuid,
        #[arg(long)]
        workspace_id: Uuid,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
}

/// Allocations of a megabyte or more (an argon2id hash's 19 MiB) are mapped
/// on their own and handed back to the system when freed. Without a fixed
/// threshold glibc raises it after the first such free, and every hashing
/// thread's arena then keeps its blocks: memory that grows with load, not
/// with the hashes running.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn map_large_allocations() {
    // SAFETY: mallopt only sets an allocator parameter; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn map_large_allocations() {}

fn main() -> anyhow::Result<()> {
    map_large_allocations();
    // Before the runtime: no other thread may read the environment meanwhile.
    environment::read_secret_files(environment::SECRETS)?;
    // `standalone` reads the mailer's variables too.
    let mailer =
        <wowchat_mailer::MailerSettings as clap::Args>::augment_args(clap::Command::new("mailer"));
    let (cli, warnings) = environment::parse::<Cli>(&[mailer], environment::SECRETS);
    let format = cli.settings.log.log_format.clone();
    wowchat_platform::runtime::multi_thread()
        .context("starting the runtime")?
        .block_on(telemetry::run_logged(
            &format,
            "wowchat-users",
            warnings,
            execute(cli),
        ))
}

async fn execute(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    settings.database.apply_statement_mode();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let deadline = settings.shutdown.deadline();
            let app = Application::build(settings).await?;
            app.run_until_stopped(shutdown_signal(deadline)).await
        }
        Command::Standalone { gateway } => standalone(settings, *gateway).await,
        Command::Relay => relay(&settings).await,
        Command::Migrate => migrate(&settings).await,
        Command::Bootstrap {
            workspace_name,
            owner_email,
            owner_name,
            owner_password,
        } => {
            let owner = Owner {
                email: owner_email,
                name: owner_name,
                password: owner_password,
            };
            bootstrap_workspace(&settings, workspace_name.trim(), owner).await
        }
        Command::Token {
            user_id,
            workspace_id,
            ttl_secs,
        } => {
            let keys = JwtKeys::load(&settings.key_settings())?;
            println!(
                "{}",
                keys.mint(user_id, workspace_id, Duration::from_secs(ttl_secs))?
            );
            Ok(())
        }
    }
}

/// The server, its relay, the mailer and the REST gateway in one process
/// until a signal.
async fn standalone(
    mut settings: Settings,
    mut gateway: wowchat_gateway::GatewaySettings,
) -> anyhow::Result<()> {
    let mut mailer_settings = wowchat_mailer::MailerSettings::defaults();
    // One broker and one prefix for the service and its mailer.
    mailer_settings.amqp = settings.amqp.clone();
    // The service seals invitation tokens and the mailer opens them: one
    // key made up for this process unless one was given.
    let token_keys = match (&settings.mail_token_keys, &mailer_settings.mail_token_keys) {
        (Some(keys), _) | (None, Some(keys)) => keys.expose().to_owned(),
        (None, None) => wowchat_platform::sealing::TokenKeys::generate_setting()?,
    };
    settings.mail_token_keys = Some(token_keys.as_str().into());
    mailer_settings.mail_token_keys = Some(token_keys.as_str().into());
    if std::env::var_os("WOWCHAT_MAILER_DATABASE_URL").is_none() {
        mailer_settings.database = settings.database.for_program();
    }
    // The gateway vouches for its clients' addresses with a key the server
    // trusts: one made up for this process unless both were given one.
    let key = match (&settings.gateway_key, &gateway.gateway_key) {
        (Some(key), _) => key.expose().to_owned(),
        (None, Some(key)) => key.expose().to_owned(),
        (None, None) => random_key(),
    };
    settings.gateway_key = Some(key.as_str().into());
    gateway.gateway_key = Some(key.as_str().into());
    let deadline = settings
        .shutdown
        .deadline()
        .max(gateway.gateway_shutdown.deadline());
    let app = Application::build(settings).await?;
    gateway.gateway_upstream = format!("http://{}", app.address());
    let gateway = wowchat_gateway::Gateway::build(gateway).await?;
    let mailer = wowchat_mailer::Mailer::build(mailer_settings).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal(deadline).await;
        signal.cancel();
    });
    let (served, mailed, transcoded) = tokio::join!(
        app.run_until_stopped(shutdown.clone().cancelled_owned()),
        mailer.run_until_stopped(shutdown.clone().cancelled_owned()),
        gateway.run_until_stopped(shutdown.cancelled_owned()),
    );
    served.and(mailed).and(transcoded)
}

/// The outbox relay and the delivery-result consumer alone, until a signal.
/// The serving commands bind the metrics endpoint (`Application::build`
/// and here); one-off commands (`bootstrap` in a running pod) never do.
async fn relay(settings: &Settings) -> anyhow::Result<()> {
    settings.check_environment()?;
    let metrics = settings.metrics.bind().await?;
    if settings.migrate_on_start {
        migrate(settings).await?;
    }
    let pool = db::SCHEMA.pool(
        settings.database.url.expose(),
        wowchat_users_server::messaging::relay::POOL_SIZE,
    )?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let health = match settings.relay_health_addr {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("WOWCHAT_RELAY_HEALTH_ADDR: binding {address}"))?;
            let (reporter, service) = tonic_health::server::health_reporter();
            let serving = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    shutdown.clone().cancelled_owned(),
                );
            tokio::spawn(async move {
                if let Err(e) = serving.await {
                    tracing::error!(error = %e, "the health endpoint stopped");
                }
            });
            Some(reporter)
        }
        None => None,
    };
    let mut tasks = spawn_messaging(&pool, settings, health, shutdown.clone());
    if let Some(metrics) = metrics {
        tasks.push(metrics.spawn(shutdown.clone().cancelled_owned()));
    }
    let gauges = tokio::spawn(wowchat_platform::metrics::sample_pool(
        pool.clone(),
        "relay",
        wowchat_users_server::startup::POOL_SAMPLE,
    ));
    shutdown_signal(settings.shutdown.deadline()).await;
    shutdown.cancel();
    futures::future::join_all(tasks).await;
    gauges.abort();
    Ok(())
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    db::SCHEMA
        .create_and_migrate(settings.database.direct_url().expose())
        .await
}

/// The first owner as given on the command line.
struct Owner {
    email: String,
    name: String,
    /// Generated and printed when not given.
    password: Option<String>,
}

/// Creates a workspace and its owner; prints their ids (and a generated password).
async fn bootstrap_workspace(
    settings: &Settings,
    workspace_name: &str,
    owner: Owner,
) -> anyhow::Result<()> {
    let email =
        EmailAddress::parse(&owner.email).map_err(|e| anyhow::anyhow!("--owner-email {e}"))?;
    let (password, generated) = match owner.password {
        Some(p) => (p, false),
        None => (random_password(), true),
    };
    let parsed = Password::parse(&password).map_err(|e| anyhow::anyhow!("--owner-password {e}"))?;
    migrate(settings).await?;
    let state = AppState::new(
        db::SCHEMA.pool(settings.database.url.expose(), 2)?,
        std::sync::Arc::new(JwtKeys::load(&settings.key_settings())?),
        settings.caller_cache_settings(),
        PasswordHasher::owasp(1, 1)?,
        &settings.sign_in_settings(),
        &settings.invitation_policy_settings(),
    );
    let created = bootstrap(&state, workspace_name, &email, owner.name.trim(), parsed)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("bootstrapping")?;
    println!("workspace_id={}", created.workspace_id);
    println!("user_id={}", created.owner_id);
    if generated {
        println!("password={password}");
    }
    Ok(())
}

/// 32 random bytes, base64: as long as a gateway key must be.
fn random_key() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random_password() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Completes on Ctrl-C or SIGTERM; the process then has until `deadline`
/// to finish.
async fn shutdown_signal(deadline: Duration) {
    wowchat_platform::shutdown::signal().await;
    tracing::info!("shutdown requested");
    wowchat_platform::shutdown::exit_after(deadline);
}
