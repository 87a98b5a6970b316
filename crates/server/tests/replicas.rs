//! Two replicas of the real binary on one database: a change made through
//! one is seen by the other's very next call, though the other had its
//! caller in its cache (Postgres tells it: NOTIFY caller_changed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use prost::Message;
use tonic::{Code, transport::Channel};
use wowchat_users_api::v1::{
    self as proto,
    manage_user_request::{self as manage, Action},
    role_service_client::RoleServiceClient,
    user_service_client::UserServiceClient,
};
use wowchat_users_testkit::{
    authed,
    processes::{free_port, printed_value},
};

const BINARY: &str = env!("CARGO_BIN_EXE_wowchat-users");

/// A database and a folder (the shared development keys) of this test.
struct Installation {
    database: String,
    dir: std::path::PathBuf,
    servers: Vec<Child>,
}

impl Installation {
    fn new() -> Installation {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("wowchat-replicas-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        Installation {
            database: format!("wowchat_test_{id}"),
            dir,
            servers: Vec::new(),
        }
    }

    fn database_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.database)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .current_dir(&self.dir)
            .env("WOWCHAT_DATABASE_URL", self.database_url())
            .env("WOWCHAT_RELAY", "false")
            .env("WOWCHAT_RETENTION", "false")
            .env("RUST_LOG", "warn")
            .env_remove("WOWCHAT_JWT_PUBLIC_KEYS")
            .env_remove("WOWCHAT_JWT_PRIVATE_KEY");
        command
    }

    fn output(&self, args: &[&str]) -> String {
        let output = self.command(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn token(&self, user_id: &str, workspace_id: &str) -> String {
        self.output(&[
            "token",
            "--user-id",
            user_id,
            "--workspace-id",
            workspace_id,
        ])
        .trim()
        .to_owned()
    }

    /// Starts a replica serving gRPC and metrics; returns its two ports.
    fn serve(&mut self) -> (u16, u16) {
        let (grpc, metrics) = (free_port(), free_port());
        let server = self
            .command(&["serve"])
            .env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{grpc}"))
            .env("WOWCHAT_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.servers.push(server);
        (grpc, metrics)
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.database
            ))
            .output();
    }
}

async fn channel_when_up(port: u16) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            return channel;
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the metric `name` the replica serves on `port`, if any.
async fn metric(port: u16, name: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await.ok()?;
    body.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
}

async fn get_user(
    channel: &Channel,
    token: &str,
    user_id: &str,
) -> Result<proto::User, tonic::Status> {
    UserServiceClient::new(channel.clone())
        .get_user(authed(
            token,
            proto::GetUserRequest {
                user_id: user_id.into(),
            },
        ))
        .await
        .map(|r| r.into_inner().user.unwrap())
}

async fn check(
    channel: &Channel,
    token: &str,
    user_id: &str,
    permission: &str,
) -> proto::CheckPermissionResponse {
    RoleServiceClient::new(channel.clone())
        .check_permission(authed(
            token,
            proto::CheckPermissionRequest {
                user_id: user_id.into(),
                permission: permission.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn manage(channel: &Channel, token: &str, user_id: &str, action: Action) {
    UserServiceClient::new(channel.clone())
        .manage_user(authed(
            token,
            proto::ManageUserRequest {
                user_id: user_id.into(),
                action: Some(action),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
}

fn denied_with(result: Result<proto::User, tonic::Status>, reason: &str) {
    use tonic_types::StatusExt;
    let status = result.expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, reason, "{status:?}");
}

#[tokio::test]
async fn a_change_made_through_one_replica_is_seen_by_the_other_s_very_next_call() {
    let mut installation = Installation::new();
    installation.output(&["migrate"]);
    let bootstrapped = installation.output(&[
        "bootstrap",
        "--owner-email",
        "owner@acme.test",
        "--owner-password",
        "owner password 1",
    ]);
    let workspace_id = printed_value(&bootstrapped, "workspace_id").to_owned();
    let owner_id = printed_value(&bootstrapped, "user_id").to_owned();
    let owner = installation.token(&owner_id, &workspace_id);
    let (port_a, _) = installation.serve();
    let (port_b, metrics_b) = installation.serve();
    let (a, b) = (channel_when_up(port_a).await, channel_when_up(port_b).await);

    // Sue joins through A.
    let invitation = UserServiceClient::new(a.clone())
        .invite_user(authed(
            &owner,
            proto::InviteUserRequest {
                email: "sue@acme.test".into(),
                role: "supervisor".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert!(invitation.into_inner().invitation.is_some());
    let (db, connection) =
        tokio_postgres::connect(&installation.database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let payload: Vec<u8> = db
        .query_one(
            "SELECT payload FROM outbox WHERE routing_key = 'mail.invitation'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let invitation_token =
        wowchat_users_api::events::v1::SendInvitationEmail::decode(payload.as_slice())
            .unwrap()
            .token;
    let sue_id = UserServiceClient::new(a.clone())
        .accept_invitation(proto::AcceptInvitationRequest {
            token: invitation_token,
            display_name: "Sue".into(),
            password: "sue's password 1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
        .id;
    let sue = installation.token(&sue_id, &workspace_id);

    // B listens, and serves Sue (and what it knows of her) from memory.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(metrics_b, "wowchat_caller_cache_listening").await != Some(1.0) {
        assert!(Instant::now() < deadline, "B's cache never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        get_user(&b, &sue, &sue_id).await.unwrap();
        assert!(check(&b, &owner, &sue_id, "users.read").await.allowed);
    }
    let hits = metric(metrics_b, "wowchat_caller_cache_hits_total")
        .await
        .unwrap_or(0.0);
    assert!(hits >= 4.0, "B served callers from memory: {hits}");

    // Demoted through A: B's very next call knows.
    let change_role = Action::ChangeRole(manage::ChangeRole {
        role: "agent".into(),
    });
    manage(&a, &owner, &sue_id, change_role).await;
    denied_with(get_user(&b, &sue, &sue_id).await, "PERMISSION_MISSING");
    let answer = check(&b, &owner, &sue_id, "users.read").await;
    assert!(!answer.allowed);
    assert_eq!(answer.role, "agent");

    // Promoted again and cached again on B, then deactivated through A.
    let change_role = Action::ChangeRole(manage::ChangeRole {
        role: "supervisor".into(),
    });
    manage(&a, &owner, &sue_id, change_role).await;
    get_user(&b, &sue, &sue_id).await.unwrap();
    get_user(&b, &sue, &sue_id).await.unwrap();
    let deactivate = Action::Deactivate(manage::Deactivate {
        reason: "left".into(),
    });
    manage(&a, &owner, &sue_id, deactivate).await;
    denied_with(get_user(&b, &sue, &sue_id).await, "USER_DEACTIVATED");
    assert!(!check(&b, &owner, &sue_id, "users.read").await.allowed);
}
