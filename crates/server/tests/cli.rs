//! The `wowchat-users` binary as an operator runs it: migrate, bootstrap,
//! token (development keys), serve with metrics, and a graceful stop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Read,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use wowchat_users_api::v1::{ListUsersRequest, user_service_client::UserServiceClient};

const BINARY: &str = env!("CARGO_BIN_EXE_wowchat-users");

/// A fresh database name and a scratch folder, both removed afterwards.
struct Scratch {
    database: String,
    dir: std::path::PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("wowchat-cli-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch {
            database: format!("wowchat_test_{id}"),
            dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .current_dir(&self.dir)
            .env(
                "WOWCHAT_DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:5432/{}", self.database),
            )
            .env("WOWCHAT_AMQP_PREFIX", format!("cli-{}", self.database))
            .env("WOWCHAT_LOG_FORMAT", "pretty")
            .env("RUST_LOG", "info")
            .env_remove("WOWCHAT_JWT_PUBLIC_KEYS")
            .env_remove("WOWCHAT_JWT_PRIVATE_KEY");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let topology = wowchat_users_api::topology::Topology::new(format!("cli-{}", self.database));
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(wowchat_users_testkit::delete_topology(&topology));
        })
        .join();
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.database
            ))
            .output();
    }
}

/// Two distinct free ports (both listeners are held until both are known).
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn value<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {stdout}"))
}

async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await.ok()?;
        Some(String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

#[tokio::test]
async fn an_operator_migrates_bootstraps_mints_a_token_serves_and_stops_the_server() {
    let scratch = Scratch::new();

    let migrated = scratch.run(&["migrate"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    let bootstrapped = scratch.run(&[
        "bootstrap",
        "--workspace-name",
        "Acme Support",
        "--owner-email",
        "owner@acme.test",
        "--owner-password",
        "owner password 1",
    ]);
    assert!(bootstrapped.status.success());
    // The first command that needs keys made the development pair, and said so.
    let stderr = String::from_utf8(bootstrapped.stderr).unwrap();
    assert!(stderr.contains("development mode"), "{stderr}");
    let stdout = String::from_utf8(bootstrapped.stdout).unwrap();
    let workspace_id = value(&stdout, "workspace_id").to_owned();
    let user_id = value(&stdout, "user_id").to_owned();
    assert!(
        !stdout.contains("password="),
        "a given password is not printed"
    );

    let minted = scratch.run(&[
        "token",
        "--user-id",
        &user_id,
        "--workspace-id",
        &workspace_id,
    ]);
    assert!(minted.status.success());
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let key = scratch.dir.join(".wowchat/dev-keys/jwt-private.pem");
    assert!(key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let (grpc_port, metrics_port) = free_ports();
    let mut server = scratch
        .command(&["serve"])
        .env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{grpc_port}"))
        .env("WOWCHAT_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained as it comes, so a chatty server never blocks on a full pipe.
    let mut stderr = server.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut logs = String::new();
        let _ = stderr.read_to_string(&mut logs);
        logs
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut client = loop {
        if let Ok(client) =
            UserServiceClient::connect(format!("http://127.0.0.1:{grpc_port}")).await
        {
            break client;
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut request = tonic::Request::new(ListUsersRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let users = client.list_users(request).await.unwrap().into_inner().users;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].email, "owner@acme.test");

    let metrics = loop {
        let body = http_get(metrics_port, "/metrics").await.unwrap_or_default();
        if body.contains("wowchat_outbox_backlog") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no outbox backlog metric: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(metrics.contains("wowchat_outbox_oldest_age_seconds"));

    // SIGTERM: the server stops accepting, finishes, and exits cleanly. The
    // client stays connected and answers the server's GOAWAY meanwhile.
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap())
        .await
        .unwrap();
    drop(client);
    let logs = logs.join().unwrap();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("server stopped"), "{logs}");
    assert!(!logs.contains(&token), "the token was logged");
}

#[test]
fn bootstrap_refuses_a_bad_email_with_a_clear_message() {
    let scratch = Scratch::new();
    let output = scratch.run(&[
        "bootstrap",
        "--owner-email",
        "not an email",
        "--owner-password",
        "owner password 1",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--owner-email"), "{stderr}");
}
