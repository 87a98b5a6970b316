//! Starting what the load is driven against, each in a process of its own as
//! it runs in production: the `wowchat-users` binary of the same build
//! profile as the benchmark, and the no-op gRPC server (this binary's hidden
//! `noop-server` command) that is the ceiling of every call. Both answer the
//! standard health check, which is how a start is waited for.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use uuid::Uuid;
use wowchat_users_server::{
    auth::{JwtKeys, PasswordHasher},
    config::Settings,
    db,
    domain::{EmailAddress, user::Password},
    operations::{AppState, bootstrap::bootstrap},
};

use crate::{Common, load, scratch::Scratch};

/// How long a server may take to answer its first health check.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A server process, killed when dropped.
pub struct Process {
    child: Child,
    pub address: String,
    /// Where its output goes, shown when it does not start.
    log: PathBuf,
}

impl Process {
    /// Starts `command`, its output into `log`, and waits until the gRPC
    /// server on `listen` reports SERVING.
    pub async fn start(
        mut command: Command,
        listen: SocketAddr,
        log: PathBuf,
    ) -> anyhow::Result<Process> {
        let output =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {:?}", command.as_std().get_program()))?;
        let mut process = Process {
            child,
            address: format!("http://{listen}"),
            log,
        };
        process.wait_until_serving().await?;
        Ok(process)
    }

    async fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited ({status}): {}", self.log_tail());
            }
            if self.serving().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server did not start: {}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn serving(&self) -> bool {
        let Ok(channel) = Channel::from_shared(self.address.clone()) else {
            return false;
        };
        let Ok(channel) = channel.connect().await else {
            return false;
        };
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = log.len().saturating_sub(2000);
        let start = (start..log.len())
            .find(|i| log.is_char_boundary(*i))
            .unwrap_or(log.len());
        format!("its log ends with:\n{}", &log[start..])
    }

    /// Stops it (SIGKILL: the scenario's database is dropped anyway).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A free port on loopback (another process may take it first; then the
/// server does not start and says so).
pub fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The no-op ceiling: this binary's `noop-server` on a free port.
pub async fn start_noop(scratch: &Scratch) -> anyhow::Result<Process> {
    let listen = free_address()?;
    let mut command = Command::new(std::env::current_exe().context("finding this benchmark")?);
    command.args(["noop-server", "--listen", &listen.to_string()]);
    Process::start(command, listen, scratch.dir.join("noop-server.log")).await
}

/// The no-op server itself: the standard health service and nothing else,
/// with TCP_NODELAY as the real server has it.
pub async fn serve_noop(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        )
        .await
        .context("serving the no-op server")
}

/// The `wowchat-users` binary of this build profile (or `--server-bin`).
fn server_binary(common: &Common) -> anyhow::Result<PathBuf> {
    match &common.server_bin {
        Some(path) => Ok(path.clone()),
        None => built_binary("server", "wowchat-users"),
    }
}

/// The binary `bin` of the workspace crate in `crates/<crate_dir>`, of this
/// build profile, beside this benchmark; brought up to date by cargo when
/// the benchmark runs under `cargo run` (a no-op when it is).
pub fn built_binary(crate_dir: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let beside = std::env::current_exe()
        .context("finding this benchmark's binary")?
        .with_file_name(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    if let Some(cargo) = std::env::var_os("CARGO") {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(crate_dir)
            .join("Cargo.toml");
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "--quiet", "--bin", bin, "--manifest-path"]);
        build.arg(manifest);
        // What `cargo run` set for this crate would count as a changed
        // environment and rebuild half the dependencies, both ways.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_RUSTC_CURRENT_DIR",
                ]
                .contains(&name.as_ref())
            {
                build.env_remove(name.as_ref());
            }
        }
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build.status().context("running cargo build")?;
        anyhow::ensure!(status.success(), "cargo could not build {bin}");
    }
    anyhow::ensure!(
        beside.exists(),
        "{} does not exist: build it (`cargo build --release --bin {bin}`){}",
        beside.display(),
        if bin == "wowchat-users" {
            " or pass --server-bin"
        } else {
            ""
        }
    );
    Ok(beside)
}

/// Runs `scenario` against the server started on a scratch of its own with
/// `env` (see `Service::start`); both are gone afterwards.
pub async fn with_service<T>(
    common: &Common,
    env: &[(&str, String)],
    scenario: impl AsyncFnOnce(&Scratch, &Service) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    Scratch::with(common, async |scratch| {
        let service = Service::start(common, scratch, env).await?;
        let result = scenario(scratch, &service).await;
        service.stop().await;
        result
    })
    .await
}

/// A workspace made by `bootstrap`, with its owner's bearer token.
pub struct Workspace {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub owner: load::Bearer,
}

/// The `wowchat-users` server on the scenario's database, and what the
/// benchmark needs around it: workspaces, tokens, a database connection.
pub struct Service {
    process: Process,
    pub address: String,
    /// The server's own state over the scenario's database (not its
    /// process): for bootstrapping workspaces and minting tokens.
    state: Arc<AppState>,
}

impl Service {
    /// Starts the server on `scratch` with the defaults a deployment has,
    /// except: no relay (its cost is the `relay` scenario's), no
    /// invitation or SCIM rate limits (policy, not speed), and `env` on top.
    pub async fn start(
        common: &Common,
        scratch: &Scratch,
        env: &[(&str, String)],
    ) -> anyhow::Result<Service> {
        let mut settings = Settings::defaults();
        settings.dev_keys_dir = scratch.dir.join("keys");
        // Generates the development key pair the server then loads.
        let keys = JwtKeys::load(&settings.key_settings())?;
        let state = Arc::new(AppState::new(
            db::SCHEMA.pool(&scratch.database_url, 2)?,
            Arc::new(keys),
            settings.caller_cache_settings(),
            PasswordHasher::owasp(1, 16)?,
            &settings.sign_in_settings(),
            &settings.invitation_policy_settings(),
        ));
        let listen = free_address()?;
        let mut command = Command::new(server_binary(common)?);
        command
            .arg("serve")
            .env("WOWCHAT_DATABASE_URL", &scratch.database_url)
            .env("WOWCHAT_LISTEN_ADDR", listen.to_string())
            .env("WOWCHAT_DEV_KEYS_DIR", &settings.dev_keys_dir)
            .env("WOWCHAT_AMQP_URL", &common.amqp_url)
            .env("WOWCHAT_AMQP_PREFIX", scratch.topology.prefix())
            .env("WOWCHAT_RELAY", "false")
            .env("WOWCHAT_INVITES_PER_MINUTE_PER_INVITER", "0")
            .env("WOWCHAT_INVITES_PER_MINUTE_PER_WORKSPACE", "0")
            .env("WOWCHAT_INVITATION_ATTEMPTS_PER_ADDRESS_PER_MINUTE", "0")
            .env("WOWCHAT_SCIM_REQUESTS_PER_MINUTE", "0")
            // Keys from the caller's environment would not match the dev keys.
            .env_remove("WOWCHAT_JWT_PUBLIC_KEYS")
            .env_remove("WOWCHAT_JWT_PRIVATE_KEY")
            .envs(env.iter().map(|(k, v)| (k, v)));
        let process = Process::start(command, listen, scratch.dir.join("server.log")).await?;
        Ok(Service {
            address: process.address.clone(),
            process,
            state,
        })
    }

    /// A new workspace named `name` with its owner.
    pub async fn workspace(&self, name: &str) -> anyhow::Result<Workspace> {
        let email = EmailAddress::parse(&format!("owner@{name}.example.com"))
            .map_err(|e| anyhow::anyhow!("the owner's email: {e}"))?;
        let password = Password::parse("owner password 1")
            .map_err(|e| anyhow::anyhow!("the owner's password: {e}"))?;
        let created = bootstrap(&self.state, name, &email, "Olive Owner", password)
            .await
            .map_err(|e| anyhow::anyhow!("bootstrapping {name}: {e}"))?;
        Ok(Workspace {
            id: created.workspace_id,
            owner_id: created.owner_id,
            owner: self.bearer(created.owner_id, created.workspace_id)?,
        })
    }

    /// A bearer token for `user` of `workspace`, valid for the whole run.
    pub fn bearer(&self, user: Uuid, workspace: Uuid) -> anyhow::Result<load::Bearer> {
        let token = self
            .state
            .keys
            .mint(user, workspace, Duration::from_secs(3600))?;
        load::Bearer::new(&token)
    }

    /// A connection to the scenario's database, for seeding and reading.
    pub async fn db(&self) -> anyhow::Result<wowchat_users_server::store::Client> {
        Ok(self.state.pool.get().await?)
    }

    pub async fn stop(self) {
        self.process.stop().await;
    }
}
