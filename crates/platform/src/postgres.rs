//! Postgres: the connection pool, creating the database when it does not
//! exist, and bringing a schema up to date with a crate's embedded refinery
//! migrations under an advisory lock, so replicas starting together take
//! turns. Each deployable declares its own [`Schema`] once; [`reachable`]
//! is the probe its health endpoint runs.
//!
//! The URL holds a password: errors name the variable it came from
//! (`variable`, e.g. `WOWCHAT_DATABASE_URL`), never the URL itself.
//!
//! TLS (rustls) follows the URL's `sslmode`, as libpq's does:
//! - unset or `disable`: no TLS;
//! - `prefer`: TLS when the server offers it, unverified, else plain;
//! - `require`: TLS, the certificate unverified (encryption only);
//! - `verify-full`: TLS, the certificate verified against `sslrootcert` (a
//!   PEM file of CA certificates; the Mozilla roots when unset) and the host
//!   name checked against it.
//!
//! `verify-ca` is refused rather than silently weakened or strengthened.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use refinery::Runner;
use rustls::{
    ClientConfig, RootCertStore,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_postgres::{
    Client, Connection, Socket, config::SslMode, error::SqlState, tls::MakeTlsConnect,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::secret::Secret;

/// The variables one program reads its [`DatabaseArgs`] from: the
/// service's `WOWCHAT_DATABASE_*` unless the program names its own (the
/// mailer keeps `WOWCHAT_MAILER_DATABASE_*`, so one environment can give
/// the two different databases). Flags, defaults and meanings are the same.
pub trait DatabaseVariables {
    /// The database URL.
    const URL: &'static str = "WOWCHAT_DATABASE_URL";
    /// The direct URL, for sessions of their own.
    const DIRECT_URL: &'static str = "WOWCHAT_DATABASE_DIRECT_URL";
    /// Whether statements are prepared and cached per connection.
    const STATEMENT_CACHE: &'static str = "WOWCHAT_DATABASE_STATEMENT_CACHE";
}

// The database settings every program with a database declares, flattened
// into its settings (`#[command(flatten)] database: DatabaseArgs<V>`), `V`
// naming its variables. A plain comment, not a doc comment: clap would make
// it the `about` of the command it lands in.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs<V: DatabaseVariables> {
    /// Postgres connection URL (TLS as its `sslmode` says). The database is
    /// created if it does not exist.
    #[arg(
        id = "database_url",
        long = "database-url",
        value_name = "DATABASE_URL",
        env = V::URL,
        default_value = "postgres://postgres@127.0.0.1:5432/wowchat_users",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub url: Secret,

    /// A direct Postgres URL (not through a transaction-pooling PgBouncer)
    /// for what needs a session of its own: LISTEN, creating the database
    /// and migrating it. Unset: the database URL.
    #[arg(
        id = "database_direct_url",
        long = "database-direct-url",
        value_name = "DATABASE_DIRECT_URL",
        env = V::DIRECT_URL,
        hide_env_values = true
    )]
    pub direct_url: Option<Secret>,

    /// Prepare each statement once per connection and reuse it. `false`
    /// behind a transaction-pooling PgBouncer before 1.21 (no prepared
    /// statements there): every statement is then sent unnamed.
    #[arg(
        id = "database_statement_cache",
        long = "database-statement-cache",
        value_name = "DATABASE_STATEMENT_CACHE",
        env = V::STATEMENT_CACHE,
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub statement_cache: bool,

    #[arg(skip)]
    variables: std::marker::PhantomData<fn() -> V>,
}

impl<V: DatabaseVariables> DatabaseArgs<V> {
    /// Where sessions of their own connect: the direct URL, else the database URL.
    pub fn direct_url(&self) -> &Secret {
        self.direct_url.as_ref().unwrap_or(&self.url)
    }

    /// Applies `statement_cache` to the process (see [`crate::statements`]).
    pub fn apply_statement_mode(&self) {
        if !self.statement_cache {
            crate::statements::use_unnamed_statements();
        }
    }

    /// The same settings as the program `W` would hold them: `standalone`
    /// runs the mailer on the service's database.
    pub fn for_program<W: DatabaseVariables>(&self) -> DatabaseArgs<W> {
        DatabaseArgs {
            url: self.url.clone(),
            direct_url: self.direct_url.clone(),
            statement_cache: self.statement_cache,
            variables: std::marker::PhantomData,
        }
    }
}

/// Longest wait for a pooled connection: to get one, open one, or recycle one.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// A path to Postgres that goes silent (a partition dropping packets, a
/// host gone without a reset) is noticed in about half a minute, not the
/// kernel's two hours: keepalive probes on an idle connection, and a cap
/// on how long sent data may wait for an acknowledgement. The connection
/// then fails, and the pool replaces it. A URL that sets one keeps its own.
fn notice_silent_paths(config: &mut tokio_postgres::Config, url: &str) {
    if !url.contains("keepalives_idle") {
        config.keepalives_idle(Duration::from_secs(15));
    }
    if !url.contains("keepalives_interval") {
        config.keepalives_interval(Duration::from_secs(5));
    }
    if !url.contains("keepalives_retries") {
        config.keepalives_retries(3);
    }
    if !url.contains("tcp_user_timeout") {
        config.tcp_user_timeout(Duration::from_secs(30));
    }
}

/// A parsed database URL and the TLS its `sslmode` asks for.
#[derive(Clone)]
pub struct ConnectConfig {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
}

/// A connection's driver, to be polled (or spawned) for the client to work.
pub type PgConnection = Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

impl ConnectConfig {
    /// Parses `url` (read from `variable`): its errors never quote the URL.
    pub fn parse(url: &str, variable: &str) -> anyhow::Result<Self> {
        let (url, ssl) = split_tls_params(url);
        // The parser's message could quote the URL; keep only our own words.
        let mut config: tokio_postgres::Config = url
            .parse()
            .ok()
            .with_context(|| format!("{variable} is not a Postgres URL"))?;
        notice_silent_paths(&mut config, &url);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = || {
            ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .context("TLS protocol versions")
        };
        let tls = match ssl.mode.as_deref() {
            // Without TLS the connector is never called; one type for all modes.
            None | Some("disable") => {
                config.ssl_mode(SslMode::Disable);
                builder()?
                    .with_root_certificates(RootCertStore::empty())
                    .with_no_client_auth()
            }
            Some(mode @ ("prefer" | "require")) => {
                config.ssl_mode(if mode == "prefer" {
                    SslMode::Prefer
                } else {
                    SslMode::Require
                });
                builder()?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Unverified(provider.clone())))
                    .with_no_client_auth()
            }
            Some("verify-full") => {
                config.ssl_mode(SslMode::Require);
                let roots = match &ssl.root_cert {
                    Some(path) => root_store(path)
                        .with_context(|| format!("sslrootcert of {variable}: {path}"))?,
                    None => RootCertStore {
                        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                    },
                };
                builder()?
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            }
            Some("verify-ca") => bail!(
                "{variable}: sslmode=verify-ca is not supported; use verify-full, which also checks the host name"
            ),
            Some(_) => bail!("{variable}: sslmode must be disable, prefer, require or verify-full"),
        };
        Ok(ConnectConfig {
            config,
            tls: MakeRustlsConnect::new(tls),
        })
    }

    /// The parsed settings (host, database, ...).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The same server and TLS, another database.
    pub fn with_dbname(&self, name: &str) -> Self {
        let mut other = self.clone();
        other.config.dbname(name);
        other
    }

    /// The same, naming its connections `name` in `pg_stat_activity`.
    pub fn with_application_name(&self, name: &str) -> Self {
        let mut other = self.clone();
        other.config.application_name(name);
        other
    }

    /// One connection outside any pool; the caller drives its connection.
    pub async fn connect(&self) -> Result<(Client, PgConnection), tokio_postgres::Error> {
        self.config.connect(self.tls.clone()).await
    }
}

/// The libpq TLS parameters tokio-postgres does not know.
#[derive(Default)]
struct TlsParams {
    mode: Option<String>,
    root_cert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query, so tokio-postgres
/// parses the rest (it knows neither `verify-full` nor `sslrootcert`).
fn split_tls_params(url: &str) -> (String, TlsParams) {
    let mut params = TlsParams::default();
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), params);
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8_lossy()
            .into_owned();
        match key {
            "sslmode" => params.mode = Some(value),
            "sslrootcert" => params.root_cert = Some(value),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, params)
}

fn root_store(path: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).context("reading the file")? {
        roots
            .add(cert.context("reading a certificate")?)
            .context("adding a CA certificate")?;
    }
    if roots.is_empty() {
        bail!("no certificate in the file");
    }
    Ok(roots)
}

/// `sslmode=require`/`prefer`: encryption without authenticating the server,
/// as libpq does; the handshake signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn parse(url: &str, variable: &str) -> anyhow::Result<ConnectConfig> {
    ConnectConfig::parse(url, variable)
}

/// A pool of at most `max_size` connections to `url` (read from `variable`).
pub fn pool(url: &str, max_size: usize, variable: &str) -> anyhow::Result<Pool> {
    let ConnectConfig { config, tls } = parse(url, variable)?;
    // Fast recycling: a connection whose socket closed (Postgres restarted or
    // dropped it) is replaced, and a healthy one costs no verification query
    // per checkout; a query on a connection that died silently fails as
    // UNAVAILABLE and closes it, so the next checkout replaces it.
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .recycle_timeout(Some(POOL_TIMEOUT))
        .build()
        .context("building the Postgres pool")
}

/// One connection outside the pool, driven on its own task.
async fn connect(config: &ConnectConfig) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect().await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "migration connection closed");
        }
    });
    Ok(client)
}

/// Creates the database named in `url` (read from `variable`) when it does
/// not exist yet; one created meanwhile by someone else is fine.
pub async fn ensure_database(url: &str, variable: &str) -> anyhow::Result<()> {
    let config = parse(url, variable)?;
    match connect(&config).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
            let name = config
                .config()
                .get_dbname()
                .context("the database URL names no database")?
                .to_owned();
            let admin = config.with_dbname("postgres");
            let client = connect(&admin)
                .await
                .context("connecting to create the database")?;
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            match client
                .batch_execute(&format!("CREATE DATABASE {quoted}"))
                .await
            {
                Ok(()) => {
                    tracing::info!(database = %name, "created the database");
                    Ok(())
                }
                // Another replica (or the other deployable) created it first;
                // a racing create can also surface as a catalog unique violation.
                Err(e)
                    if e.code() == Some(&SqlState::DUPLICATE_DATABASE)
                        || e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
                {
                    Ok(())
                }
                Err(e) => Err(e).context("creating the database"),
            }
        }
        Err(e) => Err(e).context("connecting to Postgres"),
    }
}

/// Runs `runner` (a crate's `refinery::embed_migrations!` runner) against
/// `url` (read from `variable`) while holding the advisory lock `lock_key`,
/// so replicas starting at once take turns. Deployables sharing a database
/// each pass their own `lock_key` and `history_table` (refinery's default
/// table when `None`), so neither waits on nor sees the other's history.
pub async fn migrate(
    url: &str,
    variable: &str,
    mut runner: Runner,
    lock_key: i64,
    history_table: Option<&str>,
) -> anyhow::Result<()> {
    let config = parse(url, variable)?;
    let mut client = connect(&config)
        .await
        .context("connecting to Postgres to migrate")?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&lock_key])
        .await
        .context("taking the migration lock")?;
    if let Some(table) = history_table {
        runner.set_migration_table_name(table);
    }
    let report = runner.run_async(&mut client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&lock_key])
        .await
        .context("releasing the migration lock")?;
    let report = report.context("running migrations")?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    Ok(())
}

/// One deployable's schema in Postgres: the variable its URL is read from
/// (for errors), its embedded migrations, the advisory lock its replicas
/// take turns on, and its history table (refinery's default when `None`).
/// A deployable declares it once; its pool, creation and migration follow
/// from it.
#[derive(Clone, Copy)]
pub struct Schema {
    /// Where the database URL comes from, e.g. `WOWCHAT_DATABASE_URL`.
    pub variable: &'static str,
    /// The crate's `refinery::embed_migrations!` runner.
    pub migrations: fn() -> Runner,
    /// Any constant every replica of the deployable agrees on, and no
    /// other deployable uses.
    pub lock: i64,
    pub history_table: Option<&'static str>,
}

impl Schema {
    /// A pool of at most `max_size` connections to `url`.
    pub fn pool(&self, url: &str, max_size: usize) -> anyhow::Result<Pool> {
        pool(url, max_size, self.variable)
    }

    /// Creates the database named in `url` when it does not exist yet.
    pub async fn ensure_database(&self, url: &str) -> anyhow::Result<()> {
        ensure_database(url, self.variable).await
    }

    /// Brings the schema up to date; safe when several replicas start at once.
    pub async fn migrate(&self, url: &str) -> anyhow::Result<()> {
        migrate(
            url,
            self.variable,
            (self.migrations)(),
            self.lock,
            self.history_table,
        )
        .await
    }

    /// Creates the database if needed, then migrates it: what a migration
    /// command, or a start with migrations on, does with the direct URL.
    pub async fn create_and_migrate(&self, url: &str) -> anyhow::Result<()> {
        self.ensure_database(url).await?;
        self.migrate(url).await
    }
}

/// Whether `pool` answers a `SELECT 1` within `within` (a connection
/// checked out, or opened, included): what a health probe asks.
pub async fn reachable(pool: &Pool, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        let client = pool.get().await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    })
    .await
    .ok()
    .flatten()
    .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_path_is_noticed_in_seconds_unless_the_url_says_otherwise() {
        let config = |url: &str| ConnectConfig::parse(url, "URL").expect("parses").config;
        let defaults = config("postgres://u@127.0.0.1/db");
        assert_eq!(defaults.get_keepalives_idle(), Duration::from_secs(15));
        assert_eq!(
            defaults.get_keepalives_interval(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(defaults.get_keepalives_retries(), Some(3));
        assert_eq!(
            defaults.get_tcp_user_timeout(),
            Some(&Duration::from_secs(30))
        );
        let own = config("postgres://u@127.0.0.1/db?keepalives_idle=60&tcp_user_timeout=5");
        assert_eq!(own.get_keepalives_idle(), Duration::from_secs(60));
        assert_eq!(own.get_tcp_user_timeout(), Some(&Duration::from_secs(5)));
    }

    #[test]
    fn an_invalid_url_is_reported_by_its_variable_without_its_text() {
        let error =
            pool("nonsense://user:hunter2@", 1, "WOWCHAT_DATABASE_URL").expect_err("rejected");
        let error = format!("{error:#}");
        assert!(error.contains("WOWCHAT_DATABASE_URL"));
        assert!(!error.contains("hunter2"));
    }

    #[test]
    fn the_tls_parameters_are_taken_out_of_the_url_and_the_rest_is_kept() {
        let (url, params) = split_tls_params(
            "postgres://u:p@db:5432/app?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(url, "postgres://u:p@db:5432/app?application_name=x");
        assert_eq!(params.mode.as_deref(), Some("verify-full"));
        assert_eq!(params.root_cert.as_deref(), Some("/etc/ca.pem"));
        let (url, params) = split_tls_params("postgres://db/app");
        assert_eq!(url, "postgres://db/app");
        assert!(params.mode.is_none());
    }

    #[test]
    fn unsupported_or_unknown_ssl_modes_are_refused_by_name() {
        for mode in ["verify-ca", "bogus"] {
            let error = ConnectConfig::parse(
                &format!("postgres://u:hunter2@db/app?sslmode={mode}"),
                "WOWCHAT_DATABASE_URL",
            )
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
            assert!(error.contains("sslmode"), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
        for mode in ["disable", "prefer", "require", "verify-full"] {
            assert!(
                ConnectConfig::parse(&format!("postgres://db/app?sslmode={mode}"), "V").is_ok(),
                "{mode}"
            );
        }
    }
}
