//! For tests that run the binaries as processes of their own: the
//! [`Installation`] they share (a database, RabbitMQ names and a folder for
//! the development keys, all removed afterwards), each [`Process`] (killed
//! when dropped), and the waits and reads such a test makes.

use std::{
    io::Read,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use wowchat_users_api::{
    events::v1::SendInvitationEmail,
    topology::Topology,
    v1::{self as proto, user_service_client::UserServiceClient},
};

use crate::{clean_up, open_token};

/// The password [`Installation::bootstrap`] gives the owner.
pub const OWNER_PASSWORD: &str = "owner password 1";

/// How long a process may take to start serving.
const START: Duration = Duration::from_secs(60);

/// A database, RabbitMQ names and a folder (where the binaries keep their
/// development keys) of one test, and the server binary of this build.
/// Dropping it deletes all three: drop its processes first.
pub struct Installation {
    pub database: String,
    /// The RabbitMQ prefix (`WOWCHAT_AMQP_PREFIX`).
    pub prefix: String,
    pub dir: PathBuf,
    server: PathBuf,
}

/// The owner [`Installation::bootstrap`] made.
pub struct Owner {
    pub workspace_id: String,
    pub user_id: String,
    pub token: String,
}

impl Installation {
    /// A fresh installation for `server`, the `wowchat-users` binary
    /// (`env!("CARGO_BIN_EXE_wowchat-users")`), its folder named after `kind`.
    pub fn new(kind: &str, server: &str) -> Installation {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("wowchat-{kind}-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        Installation {
            database: format!("wowchat_test_{id}"),
            prefix: format!("test-{id}"),
            dir,
            server: server.into(),
        }
    }

    /// The database, directly.
    pub fn database_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.database)
    }

    /// A connection to the database, for assertions.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.database_url(), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        client
    }

    /// The server binary with `args`, in the folder, on the database and
    /// the RabbitMQ names of this installation, with development keys (any
    /// keys of the environment left out).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.server);
        command
            .args(args)
            .current_dir(&self.dir)
            .env("WOWCHAT_DATABASE_URL", self.database_url())
            .env("WOWCHAT_AMQP_PREFIX", &self.prefix)
            .env_remove("WOWCHAT_JWT_PUBLIC_KEYS")
            .env_remove("WOWCHAT_JWT_PRIVATE_KEY");
        command
    }

    /// Another binary of this build (`wowchat-mailer`, `wowchat-gateway`),
    /// in the folder; it must have been built (`cargo build -p <name>`).
    pub fn binary(&self, name: &str) -> Command {
        let path = self.server.with_file_name(name);
        assert!(
            path.exists(),
            "{} is missing: cargo build -p {name}",
            path.display()
        );
        let mut command = Command::new(path);
        command.current_dir(&self.dir);
        command
    }

    /// Runs the server binary with `args`, which must succeed: what it printed.
    pub fn output(&self, args: &[&str]) -> String {
        output(&mut self.command(args))
    }

    /// A token of `user_id` in `workspace_id`, as `token` mints it.
    pub fn token(&self, user_id: &str, workspace_id: &str) -> String {
        let args = [
            "token",
            "--user-id",
            user_id,
            "--workspace-id",
            workspace_id,
        ];
        self.output(&args).trim().to_owned()
    }

    /// Migrates the database and bootstraps a workspace owned by
    /// `owner_email` (password [`OWNER_PASSWORD`]): the owner, with a token.
    pub fn bootstrap(&self, owner_email: &str) -> Owner {
        self.output(&["migrate"]);
        let printed = self.output(&[
            "bootstrap",
            "--owner-email",
            owner_email,
            "--owner-password",
            OWNER_PASSWORD,
        ]);
        let workspace_id = printed_value(&printed, "workspace_id").to_owned();
        let user_id = printed_value(&printed, "user_id").to_owned();
        let token = self.token(&user_id, &workspace_id);
        Owner {
            workspace_id,
            user_id,
            token,
        }
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        clean_up(&self.database, Some(Topology::new(self.prefix.clone())));
    }
}

/// Runs `command`, which must succeed: what it printed.
pub fn output(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A process of a test, killed when dropped.
pub struct Process {
    child: Child,
    /// Its stderr, read on a thread as it comes (so a chatty process never
    /// blocks on a full pipe), whole once it has exited.
    logs: Option<JoinHandle<String>>,
}

impl Process {
    /// Starts `command`, its output dropped (shown with `TEST_LOG` set).
    pub fn start(command: &mut Command) -> Process {
        if std::env::var_os("TEST_LOG").is_none() {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Process {
            child: command.spawn().unwrap(),
            logs: None,
        }
    }

    /// Starts `command` with its logs (stderr) kept, for [`Process::stop`]
    /// and [`Process::logs`].
    pub fn start_logged(command: &mut Command) -> Process {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let logs = std::thread::spawn(move || {
            let mut logs = String::new();
            let _ = stderr.read_to_string(&mut logs);
            logs
        });
        Process {
            child,
            logs: Some(logs),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills it where it stands (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Asks it to stop (SIGTERM), as an orchestrator does.
    pub fn send_sigterm(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {}", self.id());
    }

    /// Waits until it exits, which must be cleanly: its logs (empty unless
    /// it was started logged).
    pub async fn exits_cleanly(mut self) -> String {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let logs = self.logs();
        assert!(status.success(), "exited with {status}: {logs}");
        logs
    }

    /// SIGTERM, then [`Process::exits_cleanly`].
    pub async fn stop(self) -> String {
        self.send_sigterm();
        self.exits_cleanly().await
    }

    /// Its logs until now, once it has exited or been killed (empty unless
    /// it was started logged).
    pub fn logs(&mut self) -> String {
        self.logs
            .take()
            .map(|logs| logs.join().unwrap())
            .unwrap_or_default()
    }

    /// A figure of its `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on loopback now, for a process to listen on.
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// `N` distinct ports free on loopback now (each held until all are known).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: [std::net::TcpListener; N] =
        std::array::from_fn(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    listeners.map(|listener| listener.local_addr().unwrap().port())
}

/// The value of `key=` in what a command printed (`bootstrap` prints
/// `workspace_id=…` and `user_id=…`).
pub fn printed_value<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {stdout}"))
}

/// A channel to the gRPC server on `port` once its health says SERVING
/// for `service` (`""`: the server as a whole).
pub async fn serving(port: u16, service: &str) -> Channel {
    let endpoint = Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
    let deadline = Instant::now() + START;
    loop {
        let mut status = None;
        if let Ok(channel) = endpoint.connect().await {
            let request = HealthCheckRequest {
                service: service.into(),
            };
            let answer = HealthClient::new(channel.clone()).check(request).await;
            status = answer.ok().map(|answer| answer.into_inner().status());
            if status == Some(ServingStatus::Serving) {
                return channel;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{service:?} on {port} did not start serving: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until something accepts connections on `port`.
pub async fn accepting(port: u16) {
    let deadline = Instant::now() + START;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET path` on `port` over HTTP/1.1: the whole response, or nothing when
/// it does not come within 2 s.
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        Some(String::from_utf8_lossy(&response).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

/// AcceptInvitation of `token` on `channel` by someone who gives
/// `display_name` and `password`: their new user.
pub async fn accept_invitation(
    channel: Channel,
    token: String,
    display_name: &str,
    password: &str,
) -> proto::User {
    let request = proto::AcceptInvitationRequest {
        token,
        display_name: display_name.into(),
        password: password.into(),
    };
    let accepted = UserServiceClient::new(channel)
        .accept_invitation(request)
        .await;
    let user = accepted
        .expect("the invitation is accepted")
        .into_inner()
        .user;
    user.expect("a user in the response")
}

/// The token of the one invitation mail command in the outbox of `db`,
/// opened as the mailer would (a server without mail token keys writes it
/// in the clear).
pub async fn mailed_invitation_token(db: &tokio_postgres::Client) -> String {
    let payload: Vec<u8> = db
        .query_one(
            "SELECT payload FROM outbox WHERE routing_key = 'mail.invitation'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    open_token(&SendInvitationEmail::decode(payload.as_slice()).unwrap())
}
