//! Postgres over TLS: a throwaway cluster of the machine's Postgres, started
//! here on a free port with ssl on and plain connections refused, serving a
//! certificate of a CA made here. The server, the mailer and the shared
//! plumbing connect with `sslmode=require` and `verify-full`; `verify-full`
//! refuses another CA's certificate and a host name the certificate does not
//! name.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use wowchat_platform::postgres::ConnectConfig;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{TestApp, authed};

/// A CA: its certificate (PEM) and what signs with it.
pub(crate) struct Ca {
    pub(crate) pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` and its private key, both PEM.
    pub(crate) fn server(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The newest `bin` directory of the machine's Postgres.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Postgres server binaries in /usr/lib/postgresql")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb in /usr/lib/postgresql/*/bin")
        .1
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Postgres refuses to run as root: as root (CI, this machine), commands run
/// as the `postgres` user.
fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Postgres cluster that only accepts TLS, stopped and removed on drop.
struct TlsPostgres {
    dir: PathBuf,
    port: u16,
    server: Child,
    ca_file: PathBuf,
}

impl TlsPostgres {
    async fn start(ca: &Ca) -> TlsPostgres {
        let bin = postgres_bin();
        let dir =
            std::env::temp_dir().join(format!("wowchat-tls-{}", uuid::Uuid::new_v4().simple()));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &ca.pem).unwrap();
        // Owned by whoever runs Postgres (a no-op when that is us).
        let owner = |path: &Path| {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(path);
            chown
        };
        let root = running_as_root();
        if root {
            run(owner(&dir), "chown");
        }

        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "--no-locale",
            "-E",
            "UTF8",
        ]);
        run(initdb, "initdb");

        // Only the name `localhost`: connecting to 127.0.0.1 must fail verify-full.
        let (cert, key) = ca.server(&["localhost"]);
        std::fs::write(data.join("server.crt"), cert).unwrap();
        std::fs::write(data.join("server.key"), key).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 0.0.0.0/0 reject\n",
        )
        .unwrap();
        if root {
            run(owner(&data), "chown");
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }

        let port = free_port();
        let log = std::fs::File::create(dir.join("postgres.log")).unwrap();
        let mut postgres = as_postgres(&bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "ssl=on",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=30",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let server = postgres.spawn().expect("postgres starts");
        let cluster = TlsPostgres {
            dir,
            port,
            server,
            ca_file,
        };
        cluster.wait_ready().await;
        cluster
    }

    async fn wait_ready(&self) {
        let config = ConnectConfig::parse(&self.url("postgres", "sslmode=require"), "URL").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match config.connect().await {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => {
                    let log =
                        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
                    panic!("the TLS cluster did not come up: {e}\n{log}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn url(&self, database: &str, query: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/{database}?{query}",
            self.port
        )
    }

    fn verify_full(&self, database: &str) -> String {
        self.url(
            database,
            &format!("sslmode=verify-full&sslrootcert={}", self.ca_file.display()),
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        // A fast shutdown (SIGINT); killed if it lingers.
        let _ = Command::new("kill")
            .args(["-INT", &self.server.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the connection of `url` is encrypted, as the server sees it.
async fn encrypted(url: &str) -> anyhow::Result<bool> {
    let pool = wowchat_platform::postgres::pool(url, 1, "URL")?;
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn the_service_and_the_mailer_use_a_postgres_that_requires_tls_with_require_and_verify_full()
{
    let ca = Ca::new("wowchat test CA");
    let cluster = TlsPostgres::start(&ca).await;

    // Plain connections are refused: what works below works over TLS.
    let plain = cluster.url("postgres", "sslmode=disable");
    assert!(
        encrypted(&plain).await.is_err(),
        "the cluster must refuse plain connections"
    );

    assert!(
        encrypted(&cluster.url("postgres", "sslmode=require"))
            .await
            .unwrap()
    );
    assert!(encrypted(&cluster.verify_full("postgres")).await.unwrap());

    // The mailer creates and migrates its database over verify-full.
    let mail_db = cluster.verify_full("wowchat_mailer_tls");
    wowchat_mailer::db::SCHEMA
        .ensure_database(&mail_db)
        .await
        .unwrap();
    wowchat_mailer::db::SCHEMA.migrate(&mail_db).await.unwrap();

    // The whole service over verify-full: create, migrate, serve a call.
    let url = cluster.verify_full("wowchat_users_tls");
    let app = TestApp::spawn_with(|settings| settings.database.url = url.clone().into()).await;
    let users = app
        .client()
        .await
        .list_users(authed(&app.owner_token, proto::ListUsersRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users.len(), 1);
    assert!(encrypted(&url).await.unwrap());

    // And with require, over the same database.
    let require = cluster.url("wowchat_users_tls", "sslmode=require");
    wowchat_users_server::db::SCHEMA
        .migrate(&require)
        .await
        .unwrap();
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_of_another_ca_or_for_another_name() {
    let ca = Ca::new("wowchat test CA");
    let cluster = TlsPostgres::start(&ca).await;

    let other = Ca::new("someone else's CA");
    let other_file = cluster.dir.join("other-ca.pem");
    std::fs::write(&other_file, &other.pem).unwrap();
    let wrong_ca = cluster.url(
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={}", other_file.display()),
    );
    assert!(
        encrypted(&wrong_ca).await.is_err(),
        "another CA's certificate must be refused"
    );
    assert!(
        wowchat_users_server::db::SCHEMA
            .ensure_database(&wrong_ca)
            .await
            .is_err()
    );

    // The certificate names `localhost`, not 127.0.0.1.
    let wrong_name = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
        cluster.port,
        cluster.ca_file.display()
    );
    assert!(
        encrypted(&wrong_name).await.is_err(),
        "a name the certificate lacks must be refused"
    );
    // require encrypts without checking either.
    let require = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=require",
        cluster.port
    );
    assert!(encrypted(&require).await.unwrap());

    // The right CA and name still work.
    assert!(encrypted(&cluster.verify_full("postgres")).await.unwrap());
}
