//! Configuration: command-line flags, each also read from a `WOWCHAT_*`
//! environment variable, with defaults that work against the local Postgres.
//! Secrets (the database URL may hold a password) never reach a log line.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{ArgAction, Args};

pub use wowchat_platform::Secret;
use wowchat_platform::{
    environment::{EnvironmentArgs, EnvironmentFlag},
    metrics::{MetricsArgs, MetricsVariables},
    postgres::{DatabaseArgs, DatabaseVariables},
    shutdown::{ShutdownArgs, ShutdownVariables},
    telemetry::LogArgs,
};

use crate::auth::jwt::KeySettings;

/// Above this many matches ListUsers estimates `total_size`: an exact count
/// reads every match, so its cost grows with the matches.
pub const DEFAULT_LIST_EXACT_COUNT_LIMIT: i64 = 1000;

/// One hashing thread fewer than the cores this process may use, at least
/// one: a core stays for the requests during a burst of accepts (the
/// `storm` benchmark, docs/performance.md).
pub fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get().saturating_sub(1).max(1))
}

/// The service's names for the settings it shares with the other programs:
/// the shared groups' own (docs/configuration.md).
#[derive(Debug, Clone, Copy)]
pub struct ServiceVariables;

impl DatabaseVariables for ServiceVariables {}
impl MetricsVariables for ServiceVariables {}
impl EnvironmentFlag for ServiceVariables {}
impl ShutdownVariables for ServiceVariables {}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseArgs<ServiceVariables>,

    /// Most Postgres connections held by the pool.
    #[arg(long, env = "WOWCHAT_DB_POOL_SIZE", default_value_t = 16, value_parser = wowchat_platform::environment::at_least_one::<usize>)]
    pub db_pool_size: usize,

    /// PEM certificate (chain) the gRPC server presents: with
    /// `WOWCHAT_TLS_KEY`, it serves TLS only.
    #[arg(long, env = "WOWCHAT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `WOWCHAT_TLS_CERT`.
    #[arg(long, env = "WOWCHAT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificate(s): with it, every client must present a
    /// certificate it signed (mutual TLS).
    #[arg(long, env = "WOWCHAT_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(long, env = "WOWCHAT_LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen_addr: SocketAddr,

    /// Serve gRPC server reflection.
    #[arg(long, env = "WOWCHAT_REFLECTION", default_value_t = true, action = ArgAction::Set)]
    pub reflection: bool,

    /// `iss` of the JWTs this service accepts and mints.
    #[arg(long, env = "WOWCHAT_JWT_ISSUER", default_value = "wowchat-users")]
    pub jwt_issuer: String,

    /// `aud` of the JWTs this service accepts and mints.
    #[arg(long, env = "WOWCHAT_JWT_AUDIENCE", default_value = "wowchat")]
    pub jwt_audience: String,

    /// Comma-separated PEM files of the public keys (Ed25519 or RSA) bearer tokens are verified with.
    #[arg(long, env = "WOWCHAT_JWT_PUBLIC_KEYS", value_delimiter = ',')]
    pub jwt_public_keys: Vec<PathBuf>,

    /// PEM file of the Ed25519 private key tokens are minted with.
    #[arg(long, env = "WOWCHAT_JWT_PRIVATE_KEY")]
    pub jwt_private_key: Option<PathBuf>,

    /// Keys that seal invitation tokens for the mailer, `id:base64url`
    /// (32 bytes each), comma-separated; the first seals, every one opens
    /// (the mailer takes the same setting). Unset: tokens travel in the
    /// clear (development; production refuses it).
    #[arg(long, env = "WOWCHAT_MAIL_TOKEN_KEYS", hide_env_values = true)]
    pub mail_token_keys: Option<Secret>,

    /// Seconds a bearer token may live at most (`exp - iat`): longer ones
    /// are refused when verified and never minted (`token --ttl-secs`).
    #[arg(long, env = "WOWCHAT_JWT_MAX_LIFETIME_SECS", default_value_t = 86_400, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub jwt_max_lifetime_secs: u64,

    /// Where development mode keeps its generated key pair when no keys are configured.
    #[arg(long, env = "WOWCHAT_DEV_KEYS_DIR", default_value = ".wowchat/dev-keys")]
    pub dev_keys_dir: PathBuf,

    /// Least seconds between two sends of one invitation.
    #[arg(long, env = "WOWCHAT_RESEND_COOLDOWN_SECS", default_value_t = 60)]
    pub resend_cooldown_secs: u64,

    /// Seconds an access token from SignIn is accepted.
    #[arg(long, env = "WOWCHAT_ACCESS_TOKEN_TTL_SECS", default_value_t = 900, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub access_token_ttl_secs: u64,

    /// Failed sign-ins per minute for one email from one client address (all replicas together); 0 turns the limit off.
    #[arg(long, env = "WOWCHAT_SIGN_IN_PER_EMAIL_PER_MINUTE", default_value_t = 5)]
    pub sign_in_per_email_per_minute: u32,

    /// Sign-in attempts per minute from one client address (all replicas together); 0 turns the limit off.
    #[arg(long, env = "WOWCHAT_SIGN_IN_PER_ADDRESS_PER_MINUTE", default_value_t = 20)]
    pub sign_in_per_address_per_minute: u32,

    /// Wrong passwords per hour at one account (workspace and email) from
    /// every address together, except the addresses that signed in to it
    /// in the last `WOWCHAT_SIGN_IN_KNOWN_ADDRESS_DAYS`; 0 turns the limit off.
    #[arg(long, env = "WOWCHAT_SIGN_IN_FAILURES_PER_ACCOUNT_PER_HOUR", default_value_t = 30)]
    pub sign_in_failures_per_account_per_hour: u32,

    /// Days an address that signed in to an account successfully keeps its
    /// own budget when the account's is spent.
    #[arg(long, env = "WOWCHAT_SIGN_IN_KNOWN_ADDRESS_DAYS", default_value_t = 30, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub sign_in_known_address_days: u64,

    /// SCIM requests per minute by one directory token, on each replica (a
    /// burst of as many is let through); 0 turns the limit off.
    #[arg(long, env = "WOWCHAT_SCIM_REQUESTS_PER_MINUTE", default_value_t = 6000)]
    pub scim_requests_per_minute: u32,

    /// Invitation emails (invitations, batch rows, resends) per minute by one inviter (all replicas together); 0 turns the limit off.
    #[arg(long, env = "WOWCHAT_INVITES_PER_MINUTE_PER_INVITER", default_value_t = 60)]
    pub invites_per_minute_per_inviter: u32,

    /// Invitation emails (invitations, batch rows, resends) per minute in one workspace (all replicas together); 0 turns the limit off.
    #[arg(long, env = "WOWCHAT_INVITES_PER_MINUTE_PER_WORKSPACE", default_value_t = 300)]
    pub invites_per_minute_per_workspace: u32,

    /// Invitation emails (invitations, batch rows, resends) one address
    /// receives per day, whoever sends them and from whichever workspace (all
    /// replicas together); 0 turns the limit off.
    #[arg(long, env = "WOWCHAT_INVITES_PER_DAY_PER_RECIPIENT", default_value_t = 10)]
    pub invites_per_day_per_recipient: u32,

    /// How many times one invitation may be sent, the first send included; 0 for no cap.
    #[arg(long, env = "WOWCHAT_MAX_SENDS_PER_INVITATION", default_value_t = 5)]
    pub max_sends_per_invitation: u32,

    /// AcceptInvitation and PreviewInvitation attempts per minute with one token
    /// (all replicas together); 0 turns the limit off.
    #[arg(long, env = "WOWCHAT_INVITATION_ATTEMPTS_PER_TOKEN_PER_MINUTE", default_value_t = 10)]
    pub invitation_attempts_per_token_per_minute: u32,

    /// AcceptInvitation and PreviewInvitation attempts per minute from one client
    /// address (all replicas together); 0 turns the limit off.
    #[arg(long, env = "WOWCHAT_INVITATION_ATTEMPTS_PER_ADDRESS_PER_MINUTE", default_value_t = 60)]
    pub invitation_attempts_per_address_per_minute: u32,

    /// Take the client address from `x-forwarded-for`; only behind proxies
    /// that append to that header.
    #[arg(long, env = "WOWCHAT_TRUST_FORWARDED_FOR", default_value_t = false, action = ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// How many proxies in front of the service append to `x-forwarded-for`
    /// (the TCP peer being the nearest): the client is that many entries from the right.
    #[arg(long, env = "WOWCHAT_TRUSTED_PROXY_HOPS", default_value_t = 1)]
    pub trusted_proxy_hops: u32,

    /// Shared with the REST gateway (its `WOWCHAT_GATEWAY_KEY`): a call
    /// carrying it may name the client's address for the attempt limits.
    /// Unset: no call may. `standalone` makes one up when unset.
    #[arg(long, env = "WOWCHAT_GATEWAY_KEY", hide_env_values = true)]
    pub gateway_key: Option<Secret>,

    /// Hashing threads: most password hashes computed at once (each takes
    /// 19 MiB); more threads than cores hash no faster. By default one core
    /// fewer than the machine has (at least one), so a burst of sign-ups
    /// and accepts always leaves a core to every other call.
    #[arg(long, env = "WOWCHAT_HASH_CONCURRENCY", default_value_t = default_hash_concurrency(), value_parser = wowchat_platform::environment::at_least_one::<usize>)]
    pub hash_concurrency: usize,

    /// Most password operations waiting for a hashing thread; past it a call
    /// fails at once with RESOURCE_EXHAUSTED (HASHING_BUSY).
    #[arg(long, env = "WOWCHAT_HASH_QUEUE", default_value_t = 64)]
    pub hash_queue: usize,

    /// Seconds a caller's status and role are served from this replica's
    /// memory at most; Postgres notifications drop them at once when they
    /// change. 0 reads Postgres on every call.
    #[arg(long, env = "WOWCHAT_CALLER_CACHE_TTL_SECS", default_value_t = 60)]
    pub caller_cache_ttl_secs: u64,

    /// Most users (and, apart, verified bearer tokens) this replica's caller
    /// cache remembers.
    #[arg(long, env = "WOWCHAT_CALLER_CACHE_SIZE", default_value_t = 50_000, value_parser = wowchat_platform::environment::at_least_one::<usize>)]
    pub caller_cache_size: usize,

    /// Most calls one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "WOWCHAT_MAX_CONCURRENT_STREAMS", default_value_t = 100, value_parser = wowchat_platform::environment::at_least_one::<u32>)]
    pub max_concurrent_streams: u32,

    /// Most calls handled at once by this replica, all connections together;
    /// more are refused at once with RESOURCE_EXHAUSTED (health checks never are).
    #[arg(long, env = "WOWCHAT_MAX_CONCURRENT_REQUESTS", default_value_t = 256, value_parser = wowchat_platform::environment::at_least_one::<usize>)]
    pub max_concurrent_requests: usize,

    /// Most open client connections; more wait in the listen backlog.
    #[arg(long, env = "WOWCHAT_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,

    /// Seconds a new connection has to send its first bytes (the HTTP/2
    /// preface); one that sends nothing is closed.
    #[arg(long, env = "WOWCHAT_HANDSHAKE_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub handshake_timeout_secs: u64,

    /// Seconds between HTTP/2 pings on an idle connection; a peer that does
    /// not answer within 10 s more is gone and its connection closed.
    #[arg(long, env = "WOWCHAT_HTTP2_KEEPALIVE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub http2_keepalive_secs: u64,

    /// Seconds a client connection lives at most: then GOAWAY, so long-lived
    /// clients reconnect and spread over replicas added since. 0: forever.
    #[arg(long, env = "WOWCHAT_MAX_CONNECTION_AGE_SECS", default_value_t = 300)]
    pub max_connection_age_secs: u64,

    /// Seconds the calls open on an aged connection get to finish.
    #[arg(long, env = "WOWCHAT_MAX_CONNECTION_AGE_GRACE_SECS", default_value_t = 30)]
    pub max_connection_age_grace_secs: u64,

    #[command(flatten)]
    pub shutdown: ShutdownArgs<ServiceVariables>,

    /// `serve` creates the database and applies migrations at start. False
    /// where a migration Job does that with its own role and the service's
    /// role has no DDL rights.
    #[arg(long, env = "WOWCHAT_MIGRATE_ON_START", default_value_t = true, action = ArgAction::Set)]
    pub migrate_on_start: bool,

    /// Seconds a call may take before it fails with UNAVAILABLE (retryable):
    /// what it waits on (Postgres, a pooled connection, a lock) did not answer.
    #[arg(long, env = "WOWCHAT_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub request_timeout_secs: u64,

    /// ListUsers counts the matches exactly up to this many; above it
    /// `total_size` is Postgres's estimate and flagged as one.
    #[arg(
        long,
        env = "WOWCHAT_LIST_EXACT_COUNT_LIMIT",
        default_value_t = DEFAULT_LIST_EXACT_COUNT_LIMIT
    )]
    pub list_exact_count_limit: i64,

    /// Milliseconds between two health checks of Postgres.
    #[arg(long, env = "WOWCHAT_HEALTH_INTERVAL_MS", default_value_t = 1000)]
    pub health_interval_ms: u64,

    #[command(flatten)]
    pub amqp: wowchat_platform::amqp::AmqpArgs,

    /// Run the outbox relay and the delivery-result consumer inside `serve`.
    #[arg(long, env = "WOWCHAT_RELAY", default_value_t = true, action = ArgAction::Set)]
    pub relay: bool,

    /// Most outbox rows the relay publishes per batch.
    #[arg(long, env = "WOWCHAT_RELAY_BATCH_SIZE", default_value_t = 100, value_parser = wowchat_platform::environment::at_least_one::<i64>)]
    pub relay_batch_size: i64,

    /// Milliseconds between two looks at the outbox when no NOTIFY arrives.
    #[arg(long, env = "WOWCHAT_RELAY_POLL_MS", default_value_t = 1000, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub relay_poll_ms: u64,

    /// Seconds the relay waits for a publisher confirm before retrying the row.
    #[arg(long, env = "WOWCHAT_RELAY_CONFIRM_TIMEOUT_SECS", default_value_t = 10, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub relay_confirm_timeout_secs: u64,

    /// Longest delay between two tries of a row that failed to publish.
    #[arg(long, env = "WOWCHAT_RELAY_RETRY_MAX_SECS", default_value_t = 60, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub relay_retry_max_secs: u64,

    /// The relay reports NOT_SERVING when the oldest unpublished row is older than this.
    #[arg(long, env = "WOWCHAT_RELAY_STALL_SECS", default_value_t = 60)]
    pub relay_stall_secs: u64,

    /// `relay` only: serve gRPC health here (`wowchat.users.v1.OutboxRelay`,
    /// e.g. 0.0.0.0:50051); off when unset. `serve` reports it on its own port.
    #[arg(long, env = "WOWCHAT_RELAY_HEALTH_ADDR")]
    pub relay_health_addr: Option<SocketAddr>,

    /// Prune old rows (stored idempotent results, published outbox rows) inside `serve`;
    /// one replica at a time does it, under a Postgres advisory lock.
    #[arg(long, env = "WOWCHAT_RETENTION", default_value_t = true, action = ArgAction::Set)]
    pub retention: bool,

    /// Seconds between two retention rounds.
    #[arg(long, env = "WOWCHAT_RETENTION_INTERVAL_SECS", default_value_t = 600, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub retention_interval_secs: u64,

    /// Seconds a stored result of an idempotent call is kept (a retry later
    /// than this runs again); 0 keeps them forever.
    #[arg(long, env = "WOWCHAT_RETENTION_IDEMPOTENCY_KEYS_SECS", default_value_t = 86_400)]
    pub retention_idempotency_keys_secs: u64,

    /// Seconds a published outbox row is kept after publishing; 0 keeps them forever.
    #[arg(long, env = "WOWCHAT_RETENTION_PUBLISHED_OUTBOX_SECS", default_value_t = 604_800)]
    pub retention_published_outbox_secs: u64,

    /// Whole months of the activity log kept before the current month;
    /// older months are dropped a partition at a time. 0 keeps them all.
    #[arg(long, env = "WOWCHAT_RETENTION_ACTIVITY_MONTHS", default_value_t = 13)]
    pub retention_activity_months: u32,

    /// Most rows one retention DELETE removes.
    #[arg(long, env = "WOWCHAT_RETENTION_BATCH_SIZE", default_value_t = 1000, value_parser = wowchat_platform::environment::at_least_one::<i64>)]
    pub retention_batch_size: i64,

    /// Public calls of the ways in (an invite link's preview and redemption,
    /// a join request, its confirmation) per client address per minute; 0 is off.
    #[arg(long, env = "WOWCHAT_JOINING_ATTEMPTS_PER_ADDRESS_PER_MINUTE", default_value_t = 30)]
    pub joining_attempts_per_address_per_minute: u32,

    /// Redemptions of one invite link per minute; 0 is off.
    #[arg(long, env = "WOWCHAT_INVITE_LINK_REDEMPTIONS_PER_MINUTE", default_value_t = 60)]
    pub invite_link_redemptions_per_minute: u32,

    /// Join requests (and so confirmation emails) to one email address per
    /// hour, across workspaces; 0 is off.
    #[arg(long, env = "WOWCHAT_JOIN_REQUESTS_PER_EMAIL_PER_HOUR", default_value_t = 5)]
    pub join_requests_per_email_per_hour: u32,

    /// Most invite links of one workspace that work at once.
    #[arg(long, env = "WOWCHAT_MAX_INVITE_LINKS", default_value_t = 50)]
    pub max_invite_links: i64,

    /// Most open (unconfirmed or pending) join requests of one workspace;
    /// beyond it, requests are dropped unseen.
    #[arg(long, env = "WOWCHAT_MAX_OPEN_JOIN_REQUESTS", default_value_t = 500)]
    pub max_open_join_requests: i64,

    /// Seconds after a denial during which a request from the same address
    /// to the same workspace is dropped unseen.
    #[arg(long, env = "WOWCHAT_JOIN_REQUEST_COOLDOWN_SECS", default_value_t = 604_800)]
    pub join_request_cooldown_secs: u64,

    /// The DNS server domain verification asks for TXT records (e.g.
    /// 10.0.0.2:53); unset: the system's (/etc/resolv.conf).
    #[arg(long, env = "WOWCHAT_DNS_RESOLVER")]
    pub dns_resolver: Option<SocketAddr>,

    /// Seconds after which a verified domain's record is looked up again;
    /// a domain whose record went lapses.
    #[arg(long, env = "WOWCHAT_DOMAIN_RECHECK_SECS", default_value_t = 3600, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub domain_recheck_secs: u64,

    /// Seconds between two sweeps that deactivate users whose access expiry
    /// passed (their calls are refused from that moment regardless).
    #[arg(long, env = "WOWCHAT_ACCESS_EXPIRY_SWEEP_SECS", default_value_t = 60, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub access_expiry_sweep_secs: u64,

    #[command(flatten)]
    pub metrics: MetricsArgs<ServiceVariables>,

    #[command(flatten)]
    pub environment: EnvironmentArgs<ServiceVariables>,

    #[command(flatten)]
    pub log: LogArgs,
}

impl Settings {
    /// The settings as if no flag were given: the defaults, and the
    /// variables that are set.
    pub fn defaults() -> Self {
        wowchat_platform::environment::defaults("wowchat-users")
    }

    pub fn key_settings(&self) -> KeySettings {
        KeySettings {
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            public_keys: self.jwt_public_keys.clone(),
            private_key: self.jwt_private_key.clone(),
            dev_keys_dir: self.dev_keys_dir.clone(),
            max_lifetime: Duration::from_secs(self.jwt_max_lifetime_secs),
        }
    }

    pub fn relay_settings(&self) -> crate::messaging::relay::RelaySettings {
        crate::messaging::relay::RelaySettings {
            amqp_url: self.amqp.url.clone(),
            listen_url: self.database.direct_url().clone(),
            topology: wowchat_users_api::topology::Topology::new(self.amqp.prefix.clone()),
            batch_size: self.relay_batch_size,
            poll_interval: Duration::from_millis(self.relay_poll_ms.max(10)),
            confirm_timeout: Duration::from_secs(self.relay_confirm_timeout_secs),
            retry_max: Duration::from_secs(self.relay_retry_max_secs),
            stall_after: Duration::from_secs(self.relay_stall_secs),
        }
    }

    pub fn joining_policy_settings(
        &self,
    ) -> crate::operations::joining_policy::JoiningPolicySettings {
        crate::operations::joining_policy::JoiningPolicySettings {
            attempts_per_address_per_minute: self.joining_attempts_per_address_per_minute,
            redemptions_per_link_per_minute: self.invite_link_redemptions_per_minute,
            requests_per_email_per_hour: self.join_requests_per_email_per_hour,
            max_usable_links: self.max_invite_links,
            max_open_requests: self.max_open_join_requests,
            request_cooldown: Duration::from_secs(self.join_request_cooldown_secs),
        }
    }

    pub fn retention_settings(&self) -> crate::retention::RetentionSettings {
        let period = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        crate::retention::RetentionSettings {
            interval: Duration::from_secs(self.retention_interval_secs),
            idempotency_keys: period(self.retention_idempotency_keys_secs),
            published_outbox: period(self.retention_published_outbox_secs),
            batch_size: self.retention_batch_size,
            activity_months: (self.retention_activity_months > 0)
                .then_some(self.retention_activity_months),
        }
    }

    pub fn sign_in_settings(&self) -> crate::operations::sign_in::SignInSettings {
        crate::operations::sign_in::SignInSettings {
            access_token_ttl: Duration::from_secs(self.access_token_ttl_secs),
            attempts_per_email_per_minute: self.sign_in_per_email_per_minute,
            attempts_per_address_per_minute: self.sign_in_per_address_per_minute,
            failures_per_account_per_hour: self.sign_in_failures_per_account_per_hour,
            known_address_window: Duration::from_secs(self.sign_in_known_address_days * 86_400),
            trust_forwarded_for: self.trust_forwarded_for,
            trusted_proxy_hops: self.trusted_proxy_hops,
        }
    }

    pub fn invitation_policy_settings(
        &self,
    ) -> crate::operations::invitation_policy::InvitationPolicySettings {
        crate::operations::invitation_policy::InvitationPolicySettings {
            resend_cooldown: Duration::from_secs(self.resend_cooldown_secs),
            max_sends_per_invitation: self.max_sends_per_invitation,
            sends_per_inviter_per_minute: self.invites_per_minute_per_inviter,
            sends_per_workspace_per_minute: self.invites_per_minute_per_workspace,
            sends_per_recipient_per_day: self.invites_per_day_per_recipient,
            attempts_per_token_per_minute: self.invitation_attempts_per_token_per_minute,
            attempts_per_address_per_minute: self.invitation_attempts_per_address_per_minute,
        }
    }

    pub fn caller_cache_settings(&self) -> crate::auth::cache::CacheSettings {
        crate::auth::cache::CacheSettings {
            max_age: Duration::from_secs(self.caller_cache_ttl_secs),
            capacity: self.caller_cache_size,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// Refuses a weak gateway key, and, in production, what only a
    /// developer's machine should have.
    pub fn check_environment(&self) -> anyhow::Result<()> {
        wowchat_gateway::check_gateway_key(self.gateway_key.as_ref().map(Secret::expose))?;
        if self.access_token_ttl_secs > self.jwt_max_lifetime_secs {
            anyhow::bail!(
                "WOWCHAT_ACCESS_TOKEN_TTL_SECS ({}) is longer than WOWCHAT_JWT_MAX_LIFETIME_SECS ({})",
                self.access_token_ttl_secs,
                self.jwt_max_lifetime_secs
            );
        }
        let environment = &self.environment;
        environment.refuse(
            self.jwt_public_keys.is_empty() || self.jwt_private_key.is_none(),
            "generated development JWT keys: set WOWCHAT_JWT_PUBLIC_KEYS and WOWCHAT_JWT_PRIVATE_KEY",
        )?;
        environment.refuse(
            wowchat_platform::environment::is_guest_amqp_url(self.amqp.url.expose()),
            "RabbitMQ's guest:guest in WOWCHAT_AMQP_URL",
        )?;
        environment.refuse(
            self.mail_token_keys.is_none(),
            "invitation tokens in the clear on their way to the mailer: set WOWCHAT_MAIL_TOKEN_KEYS",
        )?;
        environment.refuse(
            self.gateway_key.is_none(),
            "a missing WOWCHAT_GATEWAY_KEY (every REST client would share one attempt budget)",
        )
    }

    /// The TLS the gRPC server serves, if configured: certificate and key
    /// both or neither, and a client CA only with them.
    pub fn server_tls(&self) -> anyhow::Result<Option<tonic::transport::ServerTlsConfig>> {
        use anyhow::Context;
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let read = |path: &PathBuf, variable: &str| {
            std::fs::read(path).with_context(|| format!("{variable}: reading {}", path.display()))
        };
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => {
                if self.tls_client_ca.is_some() {
                    anyhow::bail!(
                        "WOWCHAT_TLS_CLIENT_CA needs WOWCHAT_TLS_CERT and WOWCHAT_TLS_KEY"
                    );
                }
                Ok(None)
            }
            (Some(cert), Some(key)) => {
                let identity = Identity::from_pem(
                    read(cert, "WOWCHAT_TLS_CERT")?,
                    read(key, "WOWCHAT_TLS_KEY")?,
                );
                let mut tls = ServerTlsConfig::new().identity(identity);
                if let Some(ca) = &self.tls_client_ca {
                    tls = tls
                        .client_ca_root(Certificate::from_pem(read(ca, "WOWCHAT_TLS_CLIENT_CA")?));
                }
                Ok(Some(tls))
            }
            _ => anyhow::bail!("WOWCHAT_TLS_CERT and WOWCHAT_TLS_KEY go together"),
        }
    }

    /// The keys that seal invitation tokens, if set.
    pub fn mail_tokens(&self) -> anyhow::Result<Option<wowchat_platform::sealing::TokenKeys>> {
        self.mail_token_keys
            .as_ref()
            .map(|keys| wowchat_platform::sealing::TokenKeys::parse(keys.expose()))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_settings_share_a_flag_or_a_variable() {
        wowchat_platform::environment::assert_distinct_settings::<Settings>("wowchat-users");
    }
}
