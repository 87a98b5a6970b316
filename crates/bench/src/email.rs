//! Invite → email: `InviteUser` at a fixed rate against the release server
//! (`serve`, relay included) and the release mailer with its default
//! settings, sending to a real SMTP server on loopback; how long from each
//! `InviteUser` response to the SMTP server's 250 for that invitation's email.
//!
//! The load is open-loop: call `i` starts at `i / rate` seconds whatever the
//! earlier calls are doing, so a slow system meets the same load a fast one
//! does, and its lag shows in the latencies. The invitations are spread over
//! several workspaces, each with its own owner calling, with the per-minute
//! invitation limits turned off (they would refuse all but a few hundred).
//!
//! The row: emails arrived per second, next to the invitations asked for per
//! second ("ceiling"), so the ratio is the share of emails that arrived; p50
//! and p99 of response → 250. Target (issue 7): every email arrives, p99 ≤ 1 s.
//!
//! The server and mailer processes are started here from the binaries next
//! to this one (built first when run through `cargo run`); a helper to share
//! with other scenarios once they start processes too.

use std::{
    collections::HashMap,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, ensure};
use lapin::{
    Confirmation,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueuePurgeOptions},
};
use prost::Message as _;
use tokio::{
    process::{Child, Command},
    task::JoinSet,
    time::Instant,
};
use tonic::{Request, transport::Channel};
use uuid::Uuid;
use wowchat_platform::amqp::Envelope;
use wowchat_users_api::{
    events::v1::SendInvitationEmail,
    topology::commands,
    v1::{Invitation, InviteUserRequest, user_service_client::UserServiceClient},
};
use wowchat_users_server::{
    auth::{JwtKeys, PasswordHasher},
    config::Settings,
    db,
    domain::{EmailAddress, user::Password},
    operations::{AppState, bootstrap::bootstrap},
};
use wowchat_users_testkit::{SmtpServer, queue_consumers, ready_messages};

use crate::{
    Common,
    report::{Ceiling, Measurement, Target},
    scratch::Scratch,
    service,
};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// InviteUser calls per second; 500 by default, 50 with --quick.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Seconds of load; 60 by default, 3 with --quick. (Not `--seconds`,
    /// which every scenario shares for its measurements of calls.)
    #[arg(long)]
    pub load_seconds: Option<u32>,
    /// Workspaces the invitations are spread over, one inviter each; 16 by default.
    #[arg(long)]
    pub workspaces: Option<usize>,
    /// Mail commands the mailer drains alone before the load, for its own
    /// rate (printed, not judged); 5,000 by default, 200 with --quick.
    #[arg(long)]
    pub backlog: Option<usize>,
}

/// Issue 7: every email arrives, and p99 from response to 250 is at most 1 s.
const TARGET: Target = Target {
    min_ratio: Some(1.0),
    max_ratio: None,
    min_throughput: None,
    max_p99: Some(Duration::from_secs(1)),
};

/// HTTP/2 connections the calls are spread over.
const CONNECTIONS: usize = 4;

/// Longest wait for the processes to be ready.
const STARTUP: Duration = Duration::from_secs(60);

/// After the load, how long the emails may stop arriving before the rest
/// count as lost.
const STALL: Duration = Duration::from_secs(20);

/// How often a progress line is printed during the load.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

pub async fn run(common: &Common, args: &Args) -> anyhow::Result<Measurement> {
    let rate = args
        .rate
        .unwrap_or(if common.quick { 50 } else { 500 })
        .max(1);
    let seconds = args
        .load_seconds
        .unwrap_or(if common.quick { 3 } else { 60 })
        .max(1);
    let (server_bin, mailer_bin) = (
        service::built_binary("server", "wowchat-users")?,
        service::built_binary("mailer", "wowchat-mailer")?,
    );
    let scratch = Scratch::create(common).await?;
    let keys_dir = std::env::temp_dir().join(format!("wowchat-bench-keys-{}", Uuid::new_v4()));
    let backlog = args
        .backlog
        .unwrap_or(if common.quick { 200 } else { 5_000 });
    let result = measure(
        common,
        &scratch,
        &keys_dir,
        (&server_bin, &mailer_bin),
        Load {
            rate,
            seconds,
            workspaces: args.workspaces.unwrap_or(16).max(1),
            backlog,
        },
    )
    .await;
    let _ = std::fs::remove_dir_all(&keys_dir);
    scratch.remove().await;
    result
}

#[derive(Debug, Clone, Copy)]
struct Load {
    rate: u32,
    seconds: u32,
    workspaces: usize,
    backlog: usize,
}

impl Load {
    fn calls(&self) -> usize {
        self.rate as usize * self.seconds as usize
    }
}

/// One workspace's inviter.
struct Inviter {
    token: String,
    workspace: usize,
}

async fn measure(
    common: &Common,
    scratch: &Scratch,
    keys_dir: &Path,
    (server_bin, mailer_bin): (&Path, &Path),
    load: Load,
) -> anyhow::Result<Measurement> {
    let arrivals = Arrivals::default();
    let smtp = SmtpServer::start().await;
    let recorder = arrivals.clone();
    smtp.on_message(move |mail| recorder.record(&mail.recipients));

    let inviters = bootstrap_workspaces(scratch, keys_dir, load.workspaces).await?;
    fill_mailer_queue(scratch, load.backlog).await?;
    // Everything else as the mailer's defaults have it.
    let mailer = Process::start(
        "mailer",
        Command::new(mailer_bin)
            .env("WOWCHAT_MAILER_DATABASE_URL", &scratch.database_url)
            .env("WOWCHAT_AMQP_URL", &common.amqp_url)
            .env("WOWCHAT_AMQP_PREFIX", scratch.topology.prefix())
            .env("WOWCHAT_SMTP_URL", smtp.url()),
    )?;
    let drained = async {
        wait_for_mailer(scratch).await?;
        let waited = arrivals.wait_for(load.backlog, STALL).await;
        let arrived = arrivals.clear();
        ensure!(
            arrived >= load.backlog,
            "the mailer sent {arrived} of a backlog of {}",
            load.backlog
        );
        eprintln!(
            "email: the mailer alone drained {} commands at {:.0} emails/s",
            load.backlog,
            load.backlog as f64 / waited.as_secs_f64().max(1e-3)
        );
        purge_results(scratch).await
    }
    .await;
    if let Err(e) = drained {
        mailer.stop().await;
        return Err(e);
    }
    let address = service::free_address()?;
    let server = Process::start(
        "server",
        Command::new(server_bin)
            .arg("serve")
            .env("WOWCHAT_DATABASE_URL", &scratch.database_url)
            .env("WOWCHAT_LISTEN_ADDR", address.to_string())
            .env("WOWCHAT_DEV_KEYS_DIR", keys_dir)
            .env("WOWCHAT_AMQP_URL", &common.amqp_url)
            .env("WOWCHAT_AMQP_PREFIX", scratch.topology.prefix())
            .env("WOWCHAT_INVITES_PER_MINUTE_PER_INVITER", "0")
            .env("WOWCHAT_INVITES_PER_MINUTE_PER_WORKSPACE", "0"),
    )?;
    let measured = async {
        let channels = connect(&format!("http://{address}")).await?;
        eprintln!(
            "email: {} InviteUser/s for {} s over {} workspaces",
            load.rate, load.seconds, load.workspaces
        );
        let responses = drive(&channels, &inviters, load, scratch, &arrivals).await?;
        let answered = responses.len();
        eprintln!("email: load done; waiting for the last emails");
        let waited = arrivals.wait_for(answered, STALL).await;
        Ok::<_, anyhow::Error>(summarize(&responses, &arrivals, load, waited))
    }
    .await;
    mailer.stop().await;
    server.stop().await;
    measured
}

/// Makes `workspaces` workspaces, each with an owner, and a token for each
/// owner signed with the development key the server will load from `keys_dir`.
async fn bootstrap_workspaces(
    scratch: &Scratch,
    keys_dir: &Path,
    workspaces: usize,
) -> anyhow::Result<Vec<Inviter>> {
    let mut settings = Settings::defaults();
    settings.dev_keys_dir = keys_dir.to_path_buf();
    let keys = Arc::new(JwtKeys::load(&settings.key_settings())?);
    let state = AppState::new(
        db::SCHEMA.pool(&scratch.database_url, 2)?,
        keys.clone(),
        settings.caller_cache_settings(),
        PasswordHasher::owasp(1, 1)?,
        &settings.sign_in_settings(),
        &settings.invitation_policy_settings(),
    );
    let mut inviters = Vec::with_capacity(workspaces);
    for workspace in 0..workspaces {
        let email = EmailAddress::parse(&format!("owner@workspace-{workspace}.example.com"))
            .map_err(|e| anyhow::anyhow!("owner email: {e}"))?;
        let password =
            Password::parse("bench password 1").map_err(|e| anyhow::anyhow!("password: {e}"))?;
        let created = bootstrap(
            &state,
            &format!("Bench Workspace {workspace}"),
            &email,
            "Olive Owner",
            password,
        )
        .await
        .map_err(|e| anyhow::anyhow!("bootstrapping a workspace: {e}"))?;
        let token = keys.mint(
            created.owner_id,
            created.workspace_id,
            Duration::from_secs(3600),
        )?;
        inviters.push(Inviter { token, workspace });
    }
    Ok(inviters)
}

/// Calls `InviteUser` on the fixed schedule, printing progress; returns when
/// every call is answered: the invitee's email and when its answer came.
async fn drive(
    channels: &[Channel],
    inviters: &[Inviter],
    load: Load,
    scratch: &Scratch,
    arrivals: &Arrivals,
) -> anyhow::Result<HashMap<String, Instant>> {
    let period = Duration::from_secs(1) / load.rate;
    let mut calls = JoinSet::new();
    let mut responses = HashMap::with_capacity(load.calls());
    let mut failures: HashMap<String, usize> = HashMap::new();
    let mut progress = Progress::new(scratch).await?;
    let started = Instant::now();
    for call in 0..load.calls() {
        let due = started + period * u32::try_from(call).unwrap_or(u32::MAX);
        // Answers are collected while waiting for the next call's time.
        loop {
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(due) => break,
                Some(joined) = calls.join_next() => {
                    collect(joined?, &mut responses, &mut failures);
                }
            }
        }
        let inviter = &inviters[call % inviters.len()];
        let email = format!("invitee-{call}@workspace-{}.example.com", inviter.workspace);
        let mut client = UserServiceClient::new(channels[call % channels.len()].clone());
        let mut request = Request::new(InviteUserRequest {
            email: email.clone(),
            role: "agent".into(),
            message: "Welcome aboard! You will be answering the support inbox with us.".into(),
            ..Default::default()
        });
        let bearer = format!("Bearer {}", inviter.token)
            .parse()
            .context("the token as metadata")?;
        request.metadata_mut().insert("authorization", bearer);
        calls.spawn(async move {
            let answer = client.invite_user(request).await;
            (email, answer.map(|_| Instant::now()))
        });
        progress
            .maybe_print(started, responses.len(), arrivals, scratch)
            .await;
    }
    while let Some(joined) = calls.join_next().await {
        collect(joined?, &mut responses, &mut failures);
    }
    let late = started
        .elapsed()
        .saturating_sub(period * u32::try_from(load.calls())?);
    if late > Duration::from_secs(1) {
        eprintln!(
            "email: the last answer came {:.1} s after the schedule ended",
            late.as_secs_f64()
        );
    }
    if !failures.is_empty() {
        eprintln!("email: failed calls: {failures:?}");
    }
    Ok(responses)
}

fn collect(
    (email, answer): (String, Result<Instant, tonic::Status>),
    responses: &mut HashMap<String, Instant>,
    failures: &mut HashMap<String, usize>,
) {
    match answer {
        Ok(at) => {
            responses.insert(email, at);
        }
        Err(status) => *failures.entry(format!("{:?}", status.code())).or_default() += 1,
    }
}

/// The row, and a line with the counts behind it.
fn summarize(
    responses: &HashMap<String, Instant>,
    arrivals: &Arrivals,
    load: Load,
    waited: Duration,
) -> Measurement {
    let (arrived, duplicates) = arrivals.snapshot();
    let mut latencies: Vec<Duration> = responses
        .iter()
        .filter_map(|(email, responded)| {
            arrived
                .get(email)
                .map(|accepted| accepted.saturating_duration_since(*responded))
        })
        .collect();
    latencies.sort_unstable();
    let delivered = latencies.len();
    eprintln!(
        "email: {} calls, {} answered OK, {delivered} of those emails arrived \
         ({duplicates} duplicates, {} to unknown addresses), the last {:.1} s after the load",
        load.calls(),
        responses.len(),
        arrived.len() - delivered,
        waited.as_secs_f64(),
    );
    let seconds = f64::from(load.seconds);
    Measurement {
        scenario: "email".into(),
        unit: "emails/s",
        throughput: delivered as f64 / seconds,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        ceiling: Some(Ceiling::Throughput(load.calls() as f64 / seconds)),
        target: TARGET,
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// When the SMTP server accepted an email for each recipient (the first
/// time), stamped just before its 250 goes out.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<ArrivalLog>>);

#[derive(Default)]
struct ArrivalLog {
    first: HashMap<String, Instant>,
    duplicates: usize,
}

impl Arrivals {
    fn record(&self, recipients: &[String]) {
        let now = Instant::now();
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for recipient in recipients {
            if log.first.insert(recipient.to_lowercase(), now).is_some() {
                log.duplicates += 1;
            }
        }
    }

    /// Forgets every arrival; returns how many there were.
    fn clear(&self) -> usize {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let arrived = log.first.len();
        *log = ArrivalLog::default();
        arrived
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).first.len()
    }

    fn snapshot(&self) -> (HashMap<String, Instant>, usize) {
        let log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (log.first.clone(), log.duplicates)
    }

    /// Waits until `expected` emails arrived, or none arrived for `stall`;
    /// returns how long it waited.
    async fn wait_for(&self, expected: usize, stall: Duration) -> Duration {
        let started = Instant::now();
        let mut last = (self.count(), started);
        while last.0 < expected && last.1.elapsed() < stall {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let count = self.count();
            if count > last.0 {
                last = (count, Instant::now());
            }
        }
        last.1.saturating_duration_since(started)
    }
}

/// A progress line every [`PROGRESS_EVERY`]: where a lag would build up.
struct Progress {
    next: Duration,
    database: tokio_postgres::Client,
    channel: lapin::Channel,
    _connection: lapin::Connection,
}

impl Progress {
    async fn new(scratch: &Scratch) -> anyhow::Result<Progress> {
        let (database, connection) =
            tokio_postgres::connect(&scratch.database_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let amqp = scratch.brokers.connect("wowchat-bench").await?;
        let channel = amqp.create_channel().await?;
        Ok(Progress {
            next: PROGRESS_EVERY,
            database,
            channel,
            _connection: amqp,
        })
    }

    async fn maybe_print(
        &mut self,
        started: Instant,
        answered: usize,
        arrivals: &Arrivals,
        scratch: &Scratch,
    ) {
        let elapsed = started.elapsed();
        if elapsed < self.next {
            return;
        }
        self.next += PROGRESS_EVERY;
        let outbox: i64 = self
            .database
            .query_one(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL",
                &[],
            )
            .await
            .map_or(-1, |row| row.get(0));
        let queued = ready_messages(&self.channel, &scratch.topology.mailer_queue())
            .await
            .map_or(-1, i64::from);
        eprintln!(
            "email: {:>3} s: {answered} answered, {} emails, outbox backlog {outbox}, \
             mailer queue {queued}",
            elapsed.as_secs(),
            arrivals.count(),
        );
    }
}

/// Declares the whole topology and puts `commands` invitation mail commands
/// in the mailer's queue, as the relay would (same properties).
async fn fill_mailer_queue(scratch: &Scratch, commands: usize) -> anyhow::Result<()> {
    let connection = scratch.brokers.connect("wowchat-bench").await?;
    let channel = connection.create_channel().await?;
    wowchat_mailer::amqp::declare_topology(&channel, &scratch.topology).await?;
    wowchat_users_server::messaging::declare_topology(&connection, &scratch.topology).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let workspace_id = Uuid::now_v7().to_string();
    let published = (0..commands).map(|i| {
        let message_id = Uuid::now_v7().to_string();
        let command = SendInvitationEmail {
            invitation: Some(Invitation {
                id: Uuid::now_v7().to_string(),
                workspace_id: workspace_id.clone(),
                email: format!("backlog-{i}@drain.example.com"),
                role: "agent".into(),
                message: "Welcome aboard! You will be answering the support inbox with us.".into(),
                expire_time: Some(prost_types::Timestamp {
                    seconds: 4_102_444_800,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            token: "t".repeat(43),
            workspace_name: "Acme Support".into(),
            inviter_display_name: "Olive Owner".into(),
            inviter_email: "olive.owner@acme-support.example.com".into(),
            sealed_token: None,
            // As long as a real one: the email carries its link twice and
            // its headers.
            unsubscribe_token: "u".repeat(104),
            ..Default::default()
        };
        let properties = Envelope {
            message_id: &message_id,
            routing_key: commands::SEND_INVITATION_EMAIL,
            app_id: "wowchat-bench",
            timestamp: time::OffsetDateTime::now_utc().unix_timestamp(),
            workspace_id: &workspace_id,
            message_type: "wowchat.users.events.v1.SendInvitationEmail",
            request_id: None,
            trace: None,
        }
        .properties();
        let channel = &channel;
        let exchange = scratch.topology.commands_exchange();
        async move {
            channel
                .basic_publish(
                    exchange.into(),
                    commands::SEND_INVITATION_EMAIL.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &command.encode_to_vec(),
                    properties,
                )
                .await?
                .await
        }
    });
    for confirmation in futures::future::join_all(published).await {
        ensure!(
            matches!(confirmation?, Confirmation::Ack(None)),
            "the broker refused or returned a mail command"
        );
    }
    let _ = channel.close(200, "filled".into()).await;
    let _ = connection.close(200, "filled".into()).await;
    Ok(())
}

/// Empties the archive the backlog's results went to (the server's result
/// queue does not exist yet), so the server starts clean.
async fn purge_results(scratch: &Scratch) -> anyhow::Result<()> {
    let connection = scratch.brokers.connect("wowchat-bench").await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_purge(
            scratch.topology.events_archive_queue().into(),
            QueuePurgeOptions::default(),
        )
        .await?;
    let _ = channel.close(200, "purged".into()).await;
    let _ = connection.close(200, "purged".into()).await;
    Ok(())
}

/// Waits until the mailer consumes its queue.
async fn wait_for_mailer(scratch: &Scratch) -> anyhow::Result<()> {
    let connection = scratch.brokers.connect("wowchat-bench").await?;
    let deadline = Instant::now() + STARTUP;
    loop {
        // A passive declare of a missing queue closes the channel: one per try.
        let channel = connection.create_channel().await?;
        let consumers = queue_consumers(&channel, &scratch.topology.mailer_queue()).await;
        if consumers.is_ok_and(|consumers| consumers > 0) {
            let _ = channel.close(200, "ready".into()).await;
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the mailer did not start consuming"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = connection.close(200, "ready".into()).await;
    Ok(())
}

/// [`CONNECTIONS`] connections to the server, once it listens.
async fn connect(address: &str) -> anyhow::Result<Vec<Channel>> {
    let endpoint = Channel::from_shared(address.to_owned())?.tcp_nodelay(true);
    let deadline = Instant::now() + STARTUP;
    let mut channels = Vec::with_capacity(CONNECTIONS);
    while channels.len() < CONNECTIONS {
        match endpoint.connect().await {
            Ok(channel) => channels.push(channel),
            Err(e) if Instant::now() > deadline => {
                return Err(e).context("the server did not start listening");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(channels)
}

/// A process of ours: killed if dropped, stopped with SIGTERM by [`Process::stop`].
struct Process {
    name: &'static str,
    child: Child,
}

impl Process {
    /// Starts `command` quietly (`RUST_LOG=warn`, so logging costs nothing
    /// the benchmark did not ask for); its warnings reach our stderr.
    fn start(name: &'static str, command: &mut Command) -> anyhow::Result<Process> {
        let child = command
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the {name}"))?;
        Ok(Process { name, child })
    }

    /// SIGTERM, then up to 30 s (the processes' own watchdog) to exit.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            eprintln!("email: the {} did not stop in time; killing it", self.name);
            let _ = self.child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.50), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(
            percentile(&values[..1], 0.99),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 0.99), None);
    }
}
