//! The test kit: a real server on a free port against a fresh Postgres
//! database of its own (dropped afterwards), a bootstrapped workspace with an
//! owner, a gRPC client, and helpers to read what a real caller would see.
//!
//! Set `TEST_LOG=1` to see the server's logs; `TEST_DATABASE_URL` points at
//! another Postgres (default `postgres://postgres@127.0.0.1:5432/postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use prost::Message;
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Code, Request, Status, metadata::MetadataValue, transport::Channel};
use tonic_types::StatusExt;
use uuid::Uuid;
use wowchat_users_api::topology::Topology;
use wowchat_users_api::v1::{
    self as proto, role_service_client::RoleServiceClient, user_service_client::UserServiceClient,
};
use wowchat_users_server::{
    config::Settings,
    domain::{EmailAddress, user::Password},
    operations::{AppState, bootstrap::bootstrap},
    startup::Application,
};

pub mod logs;
pub mod proxy;
pub mod smtp;

pub use proxy::TcpProxy;
pub use smtp::{ReceivedMail, SmtpServer};
pub use wowchat_users_server;

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

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
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server with settings adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        logs::install();
        let database_name = format!("wowchat_test_{}", Uuid::new_v4().simple());
        let mut config: tokio_postgres::Config = admin_url().parse().expect("TEST_DATABASE_URL");
        config.dbname(&database_name);
        let database_url = database_url(&config);
        let keys_dir = std::env::temp_dir().join(&database_name);

        let mut settings = Settings::defaults();
        settings.database_url = database_url.clone().into();
        settings.listen_addr = "127.0.0.1:0".parse().unwrap();
        settings.dev_keys_dir = keys_dir.clone();
        settings.db_pool_size = 8;
        settings.health_interval_ms = 100;
        // Tests that need RabbitMQ turn the relay on; each gets its own names.
        settings.relay = false;
        settings.amqp_prefix = format!("test-{}", Uuid::new_v4().simple());
        settings.amqp_url = test_amqp_url().into();
        settings.relay_poll_ms = 100;
        settings.relay_retry_max_secs = 1;
        adjust(&mut settings);
        let topology = Topology::new(settings.amqp_prefix.clone());
        let amqp_url = settings.amqp_url.expose().to_owned();

        let app = Application::build(settings).await.expect("server builds");
        let address = format!("http://{}", app.address());
        let state = app.state();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = shutdown_rx.await;
        }));

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
            database_name,
            database_url,
            workspace_id: created.workspace_id,
            owner_id: created.owner_id,
            owner_token,
            state,
            topology,
            amqp_url,
            keys_dir,
            shutdown: Some(shutdown_tx),
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

    /// A direct connection to this test's database, for assertions.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
                .await
                .expect("connects to the test database");
        tokio::spawn(connection);
        client
    }

    /// The token the mailer received for the invitation, read from the newest
    /// mail command in the outbox, as the mailer would read it.
    pub async fn invitation_token(&self, invitation_id: &str) -> String {
        let rows = self
            .db()
            .await
            .query(
                "SELECT payload FROM outbox WHERE routing_key = 'mail.invitation' ORDER BY created_at DESC, id DESC",
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|row| proto::SendInvitationEmail::decode(row.get::<_, &[u8]>(0)).unwrap())
            .find(|mail| {
                mail.invitation
                    .as_ref()
                    .is_some_and(|i| i.id == invitation_id)
            })
            .map(|mail| mail.token)
            .expect("a mail command for the invitation")
    }

    /// Invites `email` as `role` as the owner.
    pub async fn invite(&self, email: &str, role: &str) -> proto::Invitation {
        self.client()
            .await
            .invite_user(authed(
                &self.owner_token,
                proto::InviteUserRequest {
                    email: email.into(),
                    role: role.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("invite succeeds")
            .into_inner()
            .invitation
            .unwrap()
    }

    /// A member with `role` (invited by the owner, accepted), and their token.
    pub async fn member(&self, email: &str, role: &str) -> (proto::User, String) {
        let invitation = self.invite(email, role).await;
        let token = self.invitation_token(&invitation.id).await;
        let user = self
            .client()
            .await
            .accept_invitation(proto::AcceptInvitationRequest {
                token,
                display_name: format!("{role} {email}"),
                password: PASSWORD.into(),
            })
            .await
            .expect("accept succeeds")
            .into_inner()
            .user
            .unwrap();
        let bearer = self.token_for(user.id.parse().unwrap());
        (user, bearer)
    }

    /// InviteUser as the holder of `bearer`.
    pub async fn invite_as(
        &self,
        bearer: &str,
        request: proto::InviteUserRequest,
    ) -> Result<proto::Invitation, Status> {
        self.client()
            .await
            .invite_user(authed(bearer, request))
            .await
            .map(|r| r.into_inner().invitation.unwrap())
    }

    /// ResendInvitation (default validity) as the holder of `bearer`.
    pub async fn resend_as(
        &self,
        bearer: &str,
        invitation_id: &str,
    ) -> Result<proto::Invitation, Status> {
        self.client()
            .await
            .resend_invitation(authed(
                bearer,
                proto::ResendInvitationRequest {
                    invitation_id: invitation_id.into(),
                    expires_in: None,
                },
            ))
            .await
            .map(|r| r.into_inner().invitation.unwrap())
    }

    /// RevokeInvitation as the holder of `bearer`.
    pub async fn revoke_as(
        &self,
        bearer: &str,
        invitation_id: &str,
    ) -> Result<proto::Invitation, Status> {
        self.client()
            .await
            .revoke_invitation(authed(
                bearer,
                proto::RevokeInvitationRequest {
                    invitation_id: invitation_id.into(),
                },
            ))
            .await
            .map(|r| r.into_inner().invitation.unwrap())
    }

    /// GetInvitation as the owner.
    pub async fn invitation(&self, invitation_id: &str) -> proto::Invitation {
        self.client()
            .await
            .get_invitation(authed(
                &self.owner_token,
                proto::GetInvitationRequest {
                    invitation_id: invitation_id.into(),
                },
            ))
            .await
            .expect("get invitation")
            .into_inner()
            .invitation
            .unwrap()
    }

    /// ManageUser as the holder of `bearer`.
    pub async fn manage_as(
        &self,
        bearer: &str,
        request: proto::ManageUserRequest,
    ) -> Result<proto::User, Status> {
        self.client()
            .await
            .manage_user(authed(bearer, request))
            .await
            .map(|r| r.into_inner().user.unwrap())
    }

    /// AcceptInvitation with `token`, as the invitee.
    pub async fn accept(&self, token: &str) -> Result<proto::User, Status> {
        self.client()
            .await
            .accept_invitation(proto::AcceptInvitationRequest {
                token: token.into(),
                display_name: "Invitee".into(),
                password: PASSWORD.into(),
            })
            .await
            .map(|r| r.into_inner().user.unwrap())
    }

    /// PreviewInvitation of `token`.
    pub async fn preview(&self, token: &str) -> Result<proto::PreviewInvitationResponse, Status> {
        self.client()
            .await
            .preview_invitation(proto::PreviewInvitationRequest {
                token: token.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// Sets the workspace's seat limit as the owner (any email domain).
    pub async fn set_seat_limit(&self, seat_limit: i32) {
        self.client()
            .await
            .update_workspace_settings(authed(
                &self.owner_token,
                proto::UpdateWorkspaceSettingsRequest {
                    settings: Some(proto::WorkspaceSettings {
                        seat_limit,
                        allowed_email_domains: vec![],
                    }),
                },
            ))
            .await
            .expect("settings update");
    }

    /// CreateRole as the holder of `bearer`.
    pub async fn create_role_as(
        &self,
        bearer: &str,
        name: &str,
        permissions: &[&str],
    ) -> Result<proto::Role, Status> {
        RoleServiceClient::connect(self.address.clone())
            .await
            .expect("connects")
            .create_role(authed(
                bearer,
                proto::CreateRoleRequest {
                    name: name.into(),
                    permissions: permissions.iter().map(|p| p.to_string()).collect(),
                    request_id: String::new(),
                },
            ))
            .await
            .map(|r| r.into_inner().role.unwrap())
    }

    /// UpdateRole as the holder of `bearer`.
    pub async fn update_role_as(
        &self,
        bearer: &str,
        name: &str,
        permissions: &[&str],
    ) -> Result<proto::Role, Status> {
        RoleServiceClient::connect(self.address.clone())
            .await
            .expect("connects")
            .update_role(authed(
                bearer,
                proto::UpdateRoleRequest {
                    name: name.into(),
                    permissions: permissions.iter().map(|p| p.to_string()).collect(),
                    ..Default::default()
                },
            ))
            .await
            .map(|r| r.into_inner().role.unwrap())
    }

    /// Stops the server, waiting for in-flight requests to finish.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        let name = self.database_name.clone();
        let topology = self.topology.clone();
        let _ = std::fs::remove_dir_all(&self.keys_dir);
        // Dropped on a thread of its own: Drop cannot await, and the test's
        // runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                delete_topology(&topology).await;
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A mailer worker running in the test process.
pub struct MailerHandle {
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl MailerHandle {
    /// Stops it gracefully: the message in hand is finished first.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }

    /// Kills it where it stands, as a crash would.
    pub fn kill(self) {
        self.task.abort();
    }
}

impl TestApp {
    /// Mailer settings for this test: its database, its RabbitMQ names,
    /// sending through `smtp_url`, retrying fast.
    pub fn mailer_settings(&self, smtp_url: &str) -> wowchat_mailer::MailerSettings {
        let mut settings = wowchat_mailer::MailerSettings::defaults();
        settings.amqp_url = test_amqp_url().into();
        settings.amqp_prefix = self.topology.prefix().to_owned();
        settings.database_url = self.database_url.clone().into();
        settings.smtp_url = Some(smtp_url.to_owned().into());
        settings.retry_base_ms = 20;
        settings.retry_max_ms = 200;
        settings.max_attempts = 3;
        settings
    }

    /// Starts a mailer with `settings`; returns once it is consuming.
    pub async fn start_mailer(&self, settings: wowchat_mailer::MailerSettings) -> MailerHandle {
        let mailer = wowchat_mailer::Mailer::build(settings)
            .await
            .expect("mailer builds");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(mailer.run_until_stopped(async {
            let _ = rx.await;
        }));
        MailerHandle {
            shutdown: Some(tx),
            task,
        }
    }
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

/// An InviteUser request for `email` as `role`, nothing else set.
pub fn invitation_request(email: &str, role: &str) -> proto::InviteUserRequest {
    proto::InviteUserRequest {
        email: email.into(),
        role: role.into(),
        ..Default::default()
    }
}

/// A ManageUser request applying `action` to `user_id`, without etag or request id.
pub fn manage_request(
    user_id: &str,
    action: proto::manage_user_request::Action,
) -> proto::ManageUserRequest {
    proto::ManageUserRequest {
        user_id: user_id.into(),
        action: Some(action),
        ..Default::default()
    }
}

/// `message` with `authorization: Bearer <token>`.
pub fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
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
