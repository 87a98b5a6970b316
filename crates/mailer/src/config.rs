//! Configuration: command-line flags, each also read from a `WOWCHAT_*`
//! environment variable, with defaults that work against a local RabbitMQ,
//! Postgres and no SMTP server (emails then land as `.eml` files).
//!
//! [`MailerSettings`] is what a user types; [`MailerSettings::validate`]
//! parses it once into [`Config`], the typed values the worker runs on. The
//! URLs hold credentials, so they are [`Secret`]s and never reach a log line,
//! not even through an error message.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use lettre::message::Mailbox;
use url::Url;
use wowchat_platform::{
    amqp,
    environment::{EnvironmentArgs, EnvironmentFlag},
    metrics::{MetricsArgs, MetricsVariables},
    postgres::{DatabaseArgs, DatabaseVariables},
    telemetry::LogArgs,
};
use wowchat_users_api::topology::Topology;

pub use wowchat_platform::{Backoff, Secret};

pub use crate::render::TokenIn;

/// Leaves room for the longest suffix (`.users.delivery-results`) in 255 bytes.
const MAX_PREFIX_LEN: usize = 200;

/// The mailer's names for the settings it shares with the other programs
/// (docs/configuration.md): its database and metrics variables are its own,
/// so the service and the mailer can share one environment.
#[derive(Debug, Clone, Copy)]
pub struct MailerVariables;

impl DatabaseVariables for MailerVariables {
    const URL: &'static str = "WOWCHAT_MAILER_DATABASE_URL";
    const DIRECT_URL: &'static str = "WOWCHAT_MAILER_DATABASE_DIRECT_URL";
    const STATEMENT_CACHE: &'static str = "WOWCHAT_MAILER_DATABASE_STATEMENT_CACHE";
}

impl MetricsVariables for MailerVariables {
    const ADDR: &'static str = "WOWCHAT_MAILER_METRICS_ADDR";
}

impl EnvironmentFlag for MailerVariables {}

#[derive(Debug, Clone, Args)]
pub struct MailerSettings {
    #[command(flatten)]
    pub amqp: wowchat_platform::amqp::AmqpArgs,

    // Where the mailer records the messages it sent (its own tables).
    #[command(flatten)]
    pub database: DatabaseArgs<MailerVariables>,

    /// SMTP server, e.g. `smtps://user:pass@smtp.example.com` or
    /// `smtp://127.0.0.1:1025` (`?tls=required` for STARTTLS). When unset,
    /// each email is written as an `.eml` file into the mail directory.
    #[arg(long, env = "WOWCHAT_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// Where emails are written when no SMTP server is configured.
    #[arg(long, env = "WOWCHAT_MAIL_DIR", default_value = ".wowchat/mail")]
    pub mail_dir: PathBuf,

    /// The sender of every email.
    #[arg(long, env = "WOWCHAT_MAIL_FROM", default_value = "WowChat <no-reply@wowchat.localhost>")]
    pub mail_from: String,

    /// The page that accepts invitations: by default the gateway's own
    /// (`/invite`, the gateway listening on 127.0.0.1:8080). The link is
    /// `<this>#token=<token>`, or `<this>?token=<token>` as
    /// `WOWCHAT_ACCEPT_TOKEN_IN` says.
    #[arg(long, env = "WOWCHAT_ACCEPT_URL", default_value = "http://127.0.0.1:8080/invite")]
    pub accept_url: String,

    /// Where the accept link carries the token: `fragment` (`#token=…`,
    /// never sent to a server, so it reaches no log, proxy or `Referer`;
    /// what the gateway's page reads) or `query` (`?token=…`, for a page
    /// built on the older form).
    #[arg(
        long,
        env = "WOWCHAT_ACCEPT_TOKEN_IN",
        value_enum,
        ignore_case = true,
        default_value = "fragment"
    )]
    pub accept_token_in: TokenIn,

    /// The workspace's user list in the app; the accepted notice links to
    /// it and to `<this>/<user id>`, the new member's page.
    #[arg(long, env = "WOWCHAT_USERS_URL", default_value = "http://localhost:3000/users")]
    pub users_url: String,

    /// The page that confirms a join request; the link is
    /// `<this>?token=<token>`. Unset: `/confirm-join-request` on the app's
    /// origin (`WOWCHAT_USERS_URL`'s).
    #[arg(long, env = "WOWCHAT_JOIN_CONFIRM_URL")]
    pub join_confirm_url: Option<String>,

    /// The one-click unsubscribe page of every invitation email (the
    /// gateway's `/unsubscribe`): the footer link and the `List-Unsubscribe`
    /// header are `<this>?token=<token>` (RFC 8058).
    #[arg(
        long,
        env = "WOWCHAT_UNSUBSCRIBE_URL",
        default_value = "http://localhost:8080/unsubscribe"
    )]
    pub unsubscribe_url: String,

    /// Most mail commands handled at once (the AMQP prefetch count). Each
    /// holds a Postgres connection (the pool has this many + 4) and an SMTP
    /// connection while it sends; up to this many SMTP connections stay open
    /// between emails. Sending is mostly waiting (commits, SMTP replies,
    /// broker confirms), so throughput grows with it (docs/performance.md,
    /// "Why the code is as it is").
    #[arg(long, env = "WOWCHAT_MAILER_PREFETCH", default_value_t = 64)]
    pub prefetch: u16,

    /// Sends tried before a transient failure counts as final.
    #[arg(long, env = "WOWCHAT_MAILER_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,

    /// First retry delay in milliseconds; it doubles with every attempt.
    #[arg(long, env = "WOWCHAT_MAILER_RETRY_BASE_MS", default_value_t = 500)]
    pub retry_base_ms: u64,

    /// Longest retry (and reconnect) delay in milliseconds.
    #[arg(long, env = "WOWCHAT_MAILER_RETRY_MAX_MS", default_value_t = 30_000)]
    pub retry_max_ms: u64,

    /// Seconds an SMTP connection or command may take.
    #[arg(long, env = "WOWCHAT_SMTP_TIMEOUT_SECS", default_value_t = 10)]
    pub smtp_timeout_secs: u64,

    /// Seconds a dedupe row (a sent command) is kept, far longer than any
    /// redelivery of that command; 0 keeps them forever. One replica at a
    /// time prunes, under a Postgres advisory lock.
    #[arg(long, env = "WOWCHAT_MAILER_RETENTION_SENT_SECS", default_value_t = 2_592_000)]
    pub retention_sent_secs: u64,

    /// Seconds between two prunings of the dedupe table.
    #[arg(
        long,
        env = "WOWCHAT_MAILER_RETENTION_INTERVAL_SECS",
        default_value_t = 3600, value_parser = wowchat_platform::environment::at_least_one::<u64>)]
    pub retention_interval_secs: u64,

    #[command(flatten)]
    pub environment: EnvironmentArgs<MailerVariables>,

    /// Keys that open the sealed invitation tokens of mail commands: the
    /// service's `WOWCHAT_MAIL_TOKEN_KEYS` (`id:base64url`, comma-separated).
    #[arg(long, env = "WOWCHAT_MAIL_TOKEN_KEYS", hide_env_values = true)]
    pub mail_token_keys: Option<Secret>,

    #[command(flatten)]
    pub log: LogArgs,

    /// The worker creates the database and applies its migrations at start.
    /// False where a migration Job (`wowchat-mailer migrate`) does that with
    /// its own role and the worker's role has no DDL rights.
    #[arg(long, env = "WOWCHAT_MAILER_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    #[command(flatten)]
    pub metrics: MetricsArgs<MailerVariables>,

    /// Serve gRPC health (`grpc.health.v1.Health`) on this address (e.g.
    /// 0.0.0.0:50052): NOT_SERVING while RabbitMQ or Postgres cannot be
    /// reached. Off when unset.
    #[arg(long, env = "WOWCHAT_MAILER_HEALTH_ADDR")]
    pub health_addr: Option<std::net::SocketAddr>,
}

impl MailerSettings {
    /// The settings as if no flag were given: the defaults, and the
    /// variables that are set.
    pub fn defaults() -> Self {
        wowchat_platform::environment::defaults("wowchat-mailer")
    }

    /// Parses every setting once; the errors name the setting, never its value.
    pub fn validate(&self) -> anyhow::Result<Config> {
        self.refuse_developer_defaults()?;
        let brokers = amqp::Brokers::parse(self.amqp.url.expose(), "WOWCHAT_AMQP_URL")?;
        let mail_from: Mailbox = self
            .mail_from
            .parse()
            .context("WOWCHAT_MAIL_FROM is not an email address like `Name <name@example.com>`")?;
        let accept_url = http_url(&self.accept_url, "WOWCHAT_ACCEPT_URL")?;
        let users_url = http_url(&self.users_url, "WOWCHAT_USERS_URL")?;
        let unsubscribe_url = http_url(&self.unsubscribe_url, "WOWCHAT_UNSUBSCRIBE_URL")?;
        let confirm_url = self
            .join_confirm_url
            .as_deref()
            .map(|url| http_url(url, "WOWCHAT_JOIN_CONFIRM_URL"))
            .transpose()?;
        // Exchange and queue names are AMQP short strings: at most 255 bytes.
        if self.amqp.prefix.trim().is_empty() || self.amqp.prefix.len() > MAX_PREFIX_LEN {
            bail!("WOWCHAT_AMQP_PREFIX must have 1 to {MAX_PREFIX_LEN} bytes");
        }
        if self.prefetch == 0 {
            bail!("WOWCHAT_MAILER_PREFETCH must be at least 1");
        }
        if self.max_attempts == 0 {
            bail!("WOWCHAT_MAILER_MAX_ATTEMPTS must be at least 1");
        }
        Ok(Config {
            brokers,
            topology: Topology::new(self.amqp.prefix.clone()),
            mail_from,
            accept_url,
            accept_token_in: self.accept_token_in,
            users_url,
            confirm_url,
            unsubscribe_url,
            prefetch: self.prefetch,
            retry: Backoff {
                base: Duration::from_millis(self.retry_base_ms),
                max: Duration::from_millis(self.retry_max_ms.max(self.retry_base_ms)),
            },
            max_attempts: self.max_attempts,
            sent_retention: (self.retention_sent_secs > 0)
                .then(|| Duration::from_secs(self.retention_sent_secs)),
            retention_interval: Duration::from_secs(self.retention_interval_secs),
        })
    }

    /// In production: no `guest:guest`, no localhost link, no tokens in the clear.
    fn refuse_developer_defaults(&self) -> anyhow::Result<()> {
        self.environment.refuse(
            wowchat_platform::environment::is_guest_amqp_url(self.amqp.url.expose()),
            "RabbitMQ's guest:guest in WOWCHAT_AMQP_URL",
        )?;
        self.environment.refuse(
            is_localhost_link(&self.accept_url)
                || is_localhost_link(&self.users_url)
                || self
                    .join_confirm_url
                    .as_deref()
                    .is_some_and(is_localhost_link),
            "a localhost link in the emails: set WOWCHAT_ACCEPT_URL, WOWCHAT_USERS_URL \
             (and WOWCHAT_JOIN_CONFIRM_URL if set)",
        )?;
        self.environment.refuse(
            is_localhost_link(&self.unsubscribe_url),
            "a localhost unsubscribe link in the emails: set WOWCHAT_UNSUBSCRIBE_URL to the \
             gateway's public /unsubscribe",
        )?;
        self.environment.refuse(
            self.mail_token_keys.is_none(),
            "a mailer without WOWCHAT_MAIL_TOKEN_KEYS (the service seals tokens in production)",
        )
    }
}

/// `url` (read from `variable`) as an http(s) URL that paths can be added to.
fn http_url(url: &str, variable: &str) -> anyhow::Result<Url> {
    Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
        .with_context(|| format!("{variable} is not an http(s) URL"))
}

/// A link to `localhost` or `127.*` (or `[::1]`), which no recipient can follow.
fn is_localhost_link(url: &str) -> bool {
    Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .is_some_and(|host| host == "localhost" || host.starts_with("127.") || host == "[::1]")
}

/// The settings the worker runs on, parsed.
#[derive(Clone)]
pub struct Config {
    /// Every RabbitMQ address, tried in order.
    pub brokers: amqp::Brokers,
    pub topology: Topology,
    pub mail_from: Mailbox,
    pub accept_url: Url,
    /// Where the accept link carries the token.
    pub accept_token_in: TokenIn,
    pub users_url: Url,
    /// The join request confirmation page, when set apart.
    pub confirm_url: Option<Url>,
    /// The one-click unsubscribe page (RFC 8058).
    pub unsubscribe_url: Url,
    pub prefetch: u16,
    pub retry: Backoff,
    pub max_attempts: u32,
    /// Age past which a dedupe row is deleted; `None` keeps them.
    pub sent_retention: Option<Duration>,
    pub retention_interval: Duration,
}

impl Config {
    /// What would make real emails wrong: a sender or a link still on a
    /// development name (`localhost`, `*.localhost`, a loopback address, or a
    /// reserved test domain). Each entry names the setting to change.
    pub fn development_values(&self) -> Vec<&'static str> {
        let mut found = Vec::new();
        if is_development_host(self.mail_from.email.domain()) {
            found.push("WOWCHAT_MAIL_FROM");
        }
        for (setting, url) in [
            ("WOWCHAT_ACCEPT_URL", &self.accept_url),
            ("WOWCHAT_USERS_URL", &self.users_url),
            ("WOWCHAT_UNSUBSCRIBE_URL", &self.unsubscribe_url),
        ] {
            if url.host_str().is_none_or(is_development_host) {
                found.push(setting);
            }
        }
        found
    }
}

/// `localhost`, a name under `.localhost`, `.local`, `.test`, `.example` or
/// `.invalid` (RFC 2606, 6761, 6762), or a loopback or unspecified address.
fn is_development_host(host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback() || ip.is_unspecified();
    }
    host == "localhost"
        || [".localhost", ".local", ".test", ".example", ".invalid"]
            .iter()
            .any(|suffix| host.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_settings_share_a_flag_or_a_variable() {
        wowchat_platform::environment::assert_distinct_settings::<MailerSettings>("wowchat-mailer");
    }

    #[test]
    fn the_defaults_are_valid() {
        let settings = MailerSettings::defaults();
        assert_eq!(settings.amqp.prefix, "wowchat");
        assert!(settings.smtp_url.is_none());
        let config = settings.validate().expect("defaults validate");
        assert_eq!(config.topology.mailer_queue(), "wowchat.mailer");
    }

    #[test]
    fn the_defaults_are_development_values_and_real_ones_are_not() {
        let config = MailerSettings::defaults().validate().expect("defaults");
        assert_eq!(
            config.development_values(),
            [
                "WOWCHAT_MAIL_FROM",
                "WOWCHAT_ACCEPT_URL",
                "WOWCHAT_USERS_URL",
                "WOWCHAT_UNSUBSCRIBE_URL"
            ]
        );
        let mut settings = MailerSettings::defaults();
        settings.mail_from = "WowChat <no-reply@wowchat.com>".into();
        settings.accept_url = "https://app.wowchat.com/accept-invitation".into();
        settings.unsubscribe_url = "https://users.wowchat.com/unsubscribe".into();
        settings.users_url = "http://127.0.0.1:3000/users".into();
        let config = settings.validate().expect("valid");
        assert_eq!(config.development_values(), ["WOWCHAT_USERS_URL"]);
        for host in ["[::1]", "mail.acme.test", "x.example", "LOCALHOST."] {
            assert!(is_development_host(host), "{host}");
        }
        for host in ["wowchat.com", "localhost.example.com", "10.0.0.1"] {
            assert!(!is_development_host(host), "{host}");
        }
    }

    #[test]
    fn the_default_accept_link_is_the_gateways_page_with_the_token_in_the_fragment() {
        let config = MailerSettings::defaults().validate().expect("defaults");
        assert_eq!(config.accept_url.as_str(), "http://127.0.0.1:8080/invite");
        assert_eq!(config.accept_token_in, TokenIn::Fragment);
        let mut settings = MailerSettings::defaults();
        settings.accept_token_in =
            <TokenIn as clap::ValueEnum>::from_str("QUERY", true).expect("query");
        assert_eq!(
            settings.validate().expect("valid").accept_token_in,
            TokenIn::Query
        );
    }

    #[test]
    fn production_refuses_a_localhost_unsubscribe_link() {
        let mut settings = MailerSettings::defaults();
        settings.environment.environment = wowchat_platform::environment::Environment::Production;
        settings.amqp.url = "amqp://mailer:s3cret@rabbit.internal:5672/%2f".into();
        settings.accept_url = "https://app.wowchat.com/accept-invitation".into();
        settings.users_url = "https://app.wowchat.com/users".into();
        settings.mail_token_keys = Some(MAIL_TOKEN_KEYS.into());
        let error = format!("{:#}", settings.validate().err().expect("refused"));
        assert!(error.contains("WOWCHAT_UNSUBSCRIBE_URL"), "{error}");
        settings.unsubscribe_url = "https://users.wowchat.com/unsubscribe".into();
        let config = settings.validate().expect("valid");
        assert_eq!(
            config.unsubscribe_url.as_str(),
            "https://users.wowchat.com/unsubscribe"
        );
        settings.unsubscribe_url = "mailto:unsubscribe@wowchat.com".into();
        assert!(settings.validate().is_err(), "an http(s) page, not mailto");
    }

    /// A well-formed key setting (not a real key).
    const MAIL_TOKEN_KEYS: &str = "k:d293Y2hhdCB0ZXN0IG1haWwgdG9rZW4ga2V5LCAzMiE";

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let mut settings = MailerSettings::defaults();
        settings.smtp_url = Some("smtps://user:hunter2@smtp.example.com".into());
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains("guest:guest"));
    }

    #[test]
    fn an_invalid_amqp_url_is_reported_without_its_text() {
        let mut settings = MailerSettings::defaults();
        settings.amqp.url = "nonsense://user:hunter2@".into();
        let error = format!("{:#}", settings.validate().err().expect("rejected"));
        assert!(error.contains("WOWCHAT_AMQP_URL"));
        assert!(!error.contains("hunter2"));
    }
}
