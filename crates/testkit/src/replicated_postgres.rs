//! A Postgres primary and its synchronous standby of the test's own, made
//! from this machine's Postgres binaries as an operator would: `initdb`, a
//! `pg_basebackup -R` of the running primary, `synchronous_standby_names`
//! naming the standby. Each listens on a free port of 127.0.0.1 and keeps
//! its files in a temporary folder. The primary can be killed as a machine
//! dies (SIGKILL to the postmaster and every backend) and the standby
//! promoted. As root the clusters run as `postgres` (Postgres refuses root).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::system::{as_account, free_port, is_root};

/// The name the standby's WAL receiver gives the primary, which the
/// primary's `synchronous_standby_names` waits for.
const STANDBY_NAME: &str = "standby";

/// A primary and a synchronous standby; both stopped and their files
/// removed when dropped.
pub struct ReplicatedPostgres {
    pub primary_port: u16,
    pub standby_port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl ReplicatedPostgres {
    /// Makes and starts both clusters; returns once the standby streams
    /// synchronously (a commit on the primary waits for the standby's flush).
    pub fn start() -> ReplicatedPostgres {
        let dir = std::env::temp_dir().join(format!("wowchat-replicated-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            run(Command::new("chown").args(["postgres"]).arg(&dir));
        }
        let pair = ReplicatedPostgres {
            primary_port: free_port(),
            standby_port: free_port(),
            bin: binaries(),
            dir,
        };
        pair.make_primary();
        pair.start_cluster("primary");
        pair.make_standby();
        pair.start_cluster("standby");
        pair.wait_until_synchronous();
        pair
    }

    /// The URL of `database` on whichever of the two is primary: both
    /// hosts, `target_session_attrs=read-write`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{database}?target_session_attrs=read-write",
            self.primary_port, self.standby_port
        )
    }

    /// Kills the primary as a machine dies: SIGKILL to the postmaster and
    /// to every process it started, nothing flushed, no shutdown.
    pub fn kill_primary(&self) {
        let postmaster = self.postmaster_pid("primary");
        let children = children_of(postmaster);
        for pid in std::iter::once(postmaster).chain(children) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }

    /// Promotes the standby to primary; returns once it accepts writes.
    pub fn promote_standby(&self) {
        self.pg_ctl("standby", &["promote", "-w", "-t", "30"]);
    }

    /// Both clusters' server logs, for a failing test's message.
    pub fn logs(&self) -> String {
        ["primary", "standby"]
            .iter()
            .map(|name| {
                let log = std::fs::read_to_string(self.dir.join(format!("{name}.log")));
                format!("--- {name}\n{}", log.unwrap_or_default())
            })
            .collect()
    }

    fn make_primary(&self) {
        let data = self.data("primary");
        self.as_postgres(&self.bin.join("initdb"))
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .map(|status| assert!(status.success(), "initdb failed"))
            .expect("initdb runs (apt-get install postgresql)");
        let settings = format!(
            "port = {port}\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{dir}'\n\
             max_connections = 200\n\
             wal_level = replica\n\
             max_wal_senders = 4\n\
             synchronous_commit = on\n\
             synchronous_standby_names = '{STANDBY_NAME}'\n",
            port = self.primary_port,
            dir = self.dir.display(),
        );
        append(&data.join("postgresql.conf"), &settings);
    }

    fn make_standby(&self) {
        let data = self.data("standby");
        let source = format!(
            "host=127.0.0.1 port={} user=postgres application_name={STANDBY_NAME}",
            self.primary_port
        );
        run(self
            .as_postgres(&self.bin.join("pg_basebackup"))
            .args([
                "--write-recovery-conf",
                "--checkpoint=fast",
                "-d",
                &source,
                "-D",
            ])
            .arg(&data));
        // The copy's settings are the primary's: its own port, and, once
        // promoted, no standby of its own to wait for.
        let settings = format!(
            "port = {}\nsynchronous_standby_names = ''\n",
            self.standby_port
        );
        append(&data.join("postgresql.conf"), &settings);
    }

    fn start_cluster(&self, name: &str) {
        let log = self.dir.join(format!("{name}.log"));
        let log = log.to_str().unwrap().to_owned();
        self.pg_ctl(name, &["start", "-w", "-t", "60", "-l", &log]);
    }

    fn wait_until_synchronous(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = Command::new(self.bin.join("psql"))
                .args(["-h", "127.0.0.1", "-U", "postgres", "-At", "-p"])
                .arg(self.primary_port.to_string())
                .args(["-c", "SELECT sync_state FROM pg_stat_replication"])
                .output()
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
                .unwrap_or_default();
            if state == "sync" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the standby did not stream synchronously ({state:?}):\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pg_ctl(&self, name: &str, args: &[&str]) {
        let status = self
            .as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data(name))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {args:?} {name}:\n{}", self.logs());
    }

    fn postmaster_pid(&self, name: &str) -> u32 {
        let pid_file = std::fs::read_to_string(self.data(name).join("postmaster.pid"))
            .expect("the cluster runs");
        pid_file.lines().next().unwrap().trim().parse().unwrap()
    }

    fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn as_postgres(&self, program: &Path) -> Command {
        as_account("postgres", "/var/lib/postgresql", program)
    }
}

impl Drop for ReplicatedPostgres {
    fn drop(&mut self) {
        for name in ["primary", "standby"] {
            if self.data(name).join("postmaster.pid").exists() {
                let _ = self
                    .as_postgres(&self.bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(self.data(name))
                    .args(["stop", "-m", "immediate"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The processes whose parent is `pid`, read from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // After the command's closing parenthesis: state, then the parent.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn run(command: &mut Command) {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The newest installed Postgres's programs (Debian keeps them per version).
fn binaries() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Postgres is installed (apt-get install postgresql)")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(|version| version.file_name()?.to_str()?.parse::<u32>().ok())
    });
    versions.pop().expect("an installed Postgres with initdb")
}
