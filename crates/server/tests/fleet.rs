//! The fleet: 3 service processes (`serve`, relay off), 2 relay processes
//! (`relay`), 2 mailers (the `wowchat-mailer` binary) and the REST gateway
//! (`wowchat-gateway`, in front of a replica), each a real
//! process of this build, on one Postgres (directly, and through a
//! PgBouncer in transaction mode with unnamed statements), one RabbitMQ
//! and an SMTP server. Invitations spread over the services while one
//! service, one mailer and one relay are SIGKILLed (the service and the
//! mailer restarted):
//! - every call is answered, those cut by the kill retried on another
//!   replica with the same request id, and each invitation exists once;
//! - every email arrives; an email sent twice (in flight at the kill)
//!   carries the same Message-ID both times;
//! - the relay that stays alive drains the backlog;
//! - a sign-in limit holds across the replicas;
//! - a user deactivated through one replica is refused on the next call
//!   on another, through the gateway too;
//! - an invitation made through the gateway is answered and its email
//!   arrives like the others.
//!
//! [`INVITATIONS`] is the issue's 1,000 per fleet (about 12 s each in a
//! debug build here). The mailer binary is built by `cargo test --workspace`
//! (the mailer's own tests need it); run this file alone after `cargo
//! build -p wowchat-mailer`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{HashMap, HashSet},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;
use wowchat_users_api::v1::{self as proto, auth_service_client::AuthServiceClient};
use wowchat_users_testkit::{
    Services, SmtpServer, deactivate, manage_request,
    pgbouncer::PgBouncer,
    processes::{
        self, Installation, Process, accept_invitation, accepting, free_port, printed_value,
        serving,
    },
};

/// Invitations per fleet run: the issue's 1,000.
const INVITATIONS: usize = 1000;

/// Invitations in flight at once, all replicas together.
const IN_FLIGHT: usize = 16;

/// Commands one mailer holds at once: at most this many emails per killed
/// mailer may go out twice.
const MAILER_PREFETCH: usize = 8;

/// Sign-in attempts per client address and minute, all replicas together.
const SIGN_IN_LIMIT: usize = 6;

const SERVER: &str = env!("CARGO_BIN_EXE_wowchat-users");

/// One installation (its database, RabbitMQ names and folder with the
/// shared development keys), its SMTP server, optional PgBouncer and
/// processes; the processes go first when it is dropped.
struct Fleet {
    services: Vec<(u16, Process)>,
    relays: Vec<Process>,
    mailers: Vec<Process>,
    /// The REST gateway's port and process.
    gateway: Option<(u16, Process)>,
    bouncer: Option<PgBouncer>,
    smtp: SmtpServer,
    installation: Installation,
}

impl Fleet {
    async fn new(through_bouncer: bool) -> Fleet {
        Fleet {
            services: Vec::new(),
            relays: Vec::new(),
            mailers: Vec::new(),
            gateway: None,
            bouncer: through_bouncer.then(|| PgBouncer::start("127.0.0.1", 5432, "postgres", 30)),
            smtp: SmtpServer::start().await,
            installation: Installation::new("fleet", SERVER),
        }
    }

    fn direct_url(&self) -> String {
        self.installation.database_url()
    }

    /// The URL pools use: through PgBouncer when there is one.
    fn pooled_url(&self) -> String {
        match &self.bouncer {
            Some(bouncer) => bouncer.url("postgres", &self.installation.database),
            None => self.direct_url(),
        }
    }

    fn server(&self, args: &[&str]) -> Command {
        let mut command = self.installation.command(args);
        command
            .env("WOWCHAT_DATABASE_URL", self.pooled_url())
            .env("WOWCHAT_DATABASE_DIRECT_URL", self.direct_url())
            .env(
                "WOWCHAT_DATABASE_STATEMENT_CACHE",
                (self.bouncer.is_none()).to_string(),
            )
            .env("WOWCHAT_DB_POOL_SIZE", "8")
            .env("WOWCHAT_RELAY", "false")
            .env("WOWCHAT_RELAY_POLL_MS", "200")
            .env("WOWCHAT_RELAY_RETRY_MAX_SECS", "1")
            .env("WOWCHAT_INVITES_PER_MINUTE_PER_INVITER", "0")
            .env("WOWCHAT_INVITES_PER_MINUTE_PER_WORKSPACE", "0")
            .env(
                "WOWCHAT_SIGN_IN_PER_ADDRESS_PER_MINUTE",
                SIGN_IN_LIMIT.to_string(),
            )
            .env("RUST_LOG", "warn");
        command
    }

    fn output(&self, args: &[&str]) -> String {
        processes::output(&mut self.server(args))
    }

    fn start_service(&self, port: u16) -> Process {
        let mut command = self.server(&["serve"]);
        command.env("WOWCHAT_LISTEN_ADDR", format!("127.0.0.1:{port}"));
        Process::start(&mut command)
    }

    fn start_relay(&self) -> Process {
        Process::start(&mut self.server(&["relay"]))
    }

    fn start_mailer(&self) -> Process {
        let mut command = self.installation.binary("wowchat-mailer");
        command
            .env("WOWCHAT_MAILER_DATABASE_URL", self.pooled_url())
            .env("WOWCHAT_MAILER_DATABASE_DIRECT_URL", self.direct_url())
            .env(
                "WOWCHAT_MAILER_DATABASE_STATEMENT_CACHE",
                (self.bouncer.is_none()).to_string(),
            )
            .env("WOWCHAT_AMQP_PREFIX", &self.installation.prefix)
            .env("WOWCHAT_SMTP_URL", self.smtp.url())
            .env("WOWCHAT_MAILER_PREFETCH", MAILER_PREFETCH.to_string())
            .env("WOWCHAT_MAILER_RETRY_BASE_MS", "50")
            .env("WOWCHAT_MAILER_RETRY_MAX_MS", "500")
            .env("RUST_LOG", "warn");
        Process::start(&mut command)
    }

    /// The gateway on `port`, forwarding to the service on `upstream`.
    fn start_gateway(&self, port: u16, upstream: u16) -> Process {
        let mut command = self.installation.binary("wowchat-gateway");
        command
            .env("WOWCHAT_GATEWAY_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env(
                "WOWCHAT_GATEWAY_UPSTREAM",
                format!("http://127.0.0.1:{upstream}"),
            )
            .env("RUST_LOG", "warn");
        Process::start(&mut command)
    }

    /// One REST call through the gateway: the status and the whole response.
    async fn rest(&self, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (port, _) = self.gateway.as_ref().expect("a gateway");
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", *port))
            .await
            .unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {response:?}"));
        (status, response)
    }
}

/// Codes a call cut by a dying replica may end with: safe to send again
/// with the same request id.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::Internal
            | Code::DeadlineExceeded
    )
}

/// Invites `email` through replica `first`, retrying on the next replicas
/// with the same request id; the invitation id.
async fn invite_until_answered(
    channels: &[Channel],
    owner: &str,
    first: usize,
    email: String,
    role: &str,
) -> Result<String, tonic::Status> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut last = None;
    for attempt in 0..40 {
        let channel = channels[(first + attempt) % channels.len()].clone();
        let request = proto::InviteUserRequest {
            email: email.clone(),
            role: role.into(),
            request_id: request_id.clone(),
            ..Default::default()
        };
        match Services::on(channel, owner)
            .users
            .invite_user(request)
            .await
        {
            Ok(response) => return Ok(response.into_inner().invitation.unwrap().id),
            Err(status) if retryable(status.code()) => {
                last = Some(status);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => return Err(status),
        }
    }
    Err(last.unwrap())
}

async fn run_fleet(through_bouncer: bool) {
    let started = Instant::now();
    let mut fleet = Fleet::new(through_bouncer).await;
    fleet.output(&["migrate"]);
    let bootstrapped = fleet.output(&["bootstrap", "--owner-email", "owner@fleet.test"]);
    let workspace_id = printed_value(&bootstrapped, "workspace_id").to_owned();
    let owner_id = printed_value(&bootstrapped, "user_id").to_owned();
    let owner = fleet.installation.token(&owner_id, &workspace_id);

    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    for &port in &ports {
        let child = fleet.start_service(port);
        fleet.services.push((port, child));
    }
    for _ in 0..2 {
        let relay = fleet.start_relay();
        fleet.relays.push(relay);
        let mailer = fleet.start_mailer();
        fleet.mailers.push(mailer);
    }
    for &port in &ports {
        serving(port, "").await;
    }
    // The gateway in front of a replica that lives through the kills.
    let gateway_port = free_port();
    let gateway = fleet.start_gateway(gateway_port, ports[2]);
    fleet.gateway = Some((gateway_port, gateway));
    accepting(gateway_port).await;
    let channels: Vec<Channel> = ports
        .iter()
        .map(|port| {
            Channel::from_shared(format!("http://127.0.0.1:{port}"))
                .unwrap()
                .connect_lazy()
        })
        .collect();

    // A member to deactivate later, invited before the load.
    let sue_invitation =
        invite_until_answered(&channels, &owner, 0, "sue@fleet.test".into(), "supervisor")
            .await
            .unwrap();

    // The load, with a service, a mailer and a relay killed a third of the way.
    let done = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let workers = (0..IN_FLIGHT).map(|_| {
        let (channels, owner, done, next) =
            (channels.clone(), owner.clone(), done.clone(), next.clone());
        tokio::spawn(async move {
            let mut invited = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= INVITATIONS {
                    return invited;
                }
                let email = format!("person{n}@fleet.test");
                let result =
                    invite_until_answered(&channels, &owner, n % 3, email.clone(), "agent").await;
                done.fetch_add(1, Ordering::Relaxed);
                invited.push((email, result));
            }
        })
    });
    let workers: Vec<_> = workers.collect();
    while done.load(Ordering::Relaxed) < INVITATIONS / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let port = fleet.services[0].0;
    fleet.services[0].1.kill();
    fleet.mailers[0].kill();
    fleet.relays[0].kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    fleet.services[0].1 = fleet.start_service(port);
    fleet.mailers[0] = fleet.start_mailer();

    let mut invited = Vec::new();
    for worker in workers {
        invited.extend(worker.await.unwrap());
    }
    let refused: Vec<_> = invited.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(
        refused.is_empty(),
        "every invitation is answered: {refused:?}"
    );
    // One more through the gateway, as a REST client makes it.
    let (status, response) = fleet
        .rest(
            "POST",
            "/v1/invitations",
            &owner,
            r#"{"email":"rest@fleet.test","role":"agent"}"#,
        )
        .await;
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("rest@fleet.test"), "{response}");
    let db = fleet.installation.db().await;
    let (rows, emails): (i64, i64) = {
        let row = db
            .query_one(
                "SELECT count(*), count(DISTINCT email_normalized) FROM invitations",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(
        (rows, emails),
        (INVITATIONS as i64 + 2, INVITATIONS as i64 + 2),
        "each invitation exists once, retries and all"
    );

    // Every email arrives; one sent twice carries one Message-ID.
    let expected: HashSet<String> = invited
        .iter()
        .map(|(email, _)| email.clone())
        .chain(["sue@fleet.test".to_owned(), "rest@fleet.test".to_owned()])
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut by_recipient: HashMap<String, Vec<String>>;
    loop {
        by_recipient = HashMap::new();
        for mail in fleet.smtp.messages() {
            for recipient in &mail.recipients {
                by_recipient
                    .entry(recipient.clone())
                    .or_default()
                    .push(mail.header("Message-ID").unwrap_or_default());
            }
        }
        if expected
            .iter()
            .all(|email| by_recipient.contains_key(email))
        {
            break;
        }
        let missing = expected
            .iter()
            .filter(|email| !by_recipient.contains_key(*email))
            .count();
        assert!(Instant::now() < deadline, "{missing} emails never arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut twice = 0;
    for (recipient, ids) in &by_recipient {
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            distinct.len(),
            1,
            "{recipient}: one Message-ID, got {ids:?}"
        );
        if ids.len() > 1 {
            twice += 1;
        }
    }
    assert!(
        twice <= MAILER_PREFETCH,
        "only emails in flight at the kill go out twice: {twice}"
    );

    // The relay that lived drained the backlog.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let backlog: i64 = db
            .query_one(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if backlog == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{backlog} outbox rows left");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A sign-in limit holds across the replicas: wrong guesses spread over
    // the three get the limit once.
    let mut outcomes = Vec::new();
    for n in 0..2 * SIGN_IN_LIMIT {
        let result = AuthServiceClient::new(channels[n % 3].clone())
            .sign_in(proto::SignInRequest {
                workspace_id: workspace_id.clone(),
                email: format!("guess{n}@fleet.test"),
                password: "not a password".into(),
            })
            .await;
        outcomes.push(result.expect_err("a guess").code());
    }
    let held = outcomes
        .iter()
        .filter(|code| **code == Code::ResourceExhausted)
        .count();
    assert_eq!(held, SIGN_IN_LIMIT, "{outcomes:?}");

    // Sue joins through replica 1, reads through replica 2; deactivated
    // through replica 0, her next call on replica 2 is refused.
    let sue_mail = fleet
        .smtp
        .messages_to("sue@fleet.test")
        .into_iter()
        .next()
        .expect("Sue's invitation");
    let token = sue_mail.token().expect("a token in the email");
    let sue = accept_invitation(channels[1].clone(), token, "Sue", "sue's password 1").await;
    let _ = sue_invitation;
    let sue_token = fleet.installation.token(&sue.id, &workspace_id);
    let get_sue = || {
        let channel = channels[2].clone();
        let (token, id) = (sue_token.clone(), sue.id.clone());
        async move {
            let request = proto::GetUserRequest { user_id: id };
            Services::on(channel, &token).users.get_user(request).await
        }
    };
    // Supervisors read users; the first call caches her on replica 2.
    get_sue().await.unwrap();
    Services::on(channels[0].clone(), &owner)
        .users
        .manage_user(manage_request(&sue.id, deactivate("left")))
        .await
        .unwrap();
    let refused = get_sue().await.expect_err("deactivated");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(
        refused.get_details_error_info().unwrap().reason,
        "USER_DEACTIVATED"
    );
    let (status, response) = fleet
        .rest("GET", &format!("/v1/users/{}", sue.id), &sue_token, "")
        .await;
    assert_eq!(status, 403, "{response}");
    assert!(response.contains("USER_DEACTIVATED"), "{response}");
    eprintln!(
        "fleet ({}): {INVITATIONS} invitations, {} emails sent twice, {:.1} s",
        if through_bouncer {
            "through PgBouncer"
        } else {
            "direct"
        },
        twice,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_on_postgres_keeps_every_promise_while_replicas_die() {
    run_fleet(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_through_pgbouncer_in_transaction_mode_keeps_every_promise_while_replicas_die() {
    run_fleet(true).await;
}
