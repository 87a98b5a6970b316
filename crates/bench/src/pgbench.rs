//! The SQL ceilings: `pgbench` (installed with PostgreSQL) running a script
//! against the scenario's database with as many connections as the gRPC
//! scenario has calls in flight, each statement prepared once, as the
//! server's are.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};

use crate::scratch::Scratch;

/// One script: its file's name and its SQL.
pub struct Script {
    pub name: String,
    pub sql: String,
}

/// Transactions per second of `scripts` (each transaction one of them,
/// picked at random) at `clients` connections for `duration` (whole
/// seconds, at least one).
pub async fn tps(
    scratch: &Scratch,
    scripts: &[Script],
    clients: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let config: tokio_postgres::Config = scratch
        .database_url
        .parse()
        .context("the scenario's database URL")?;
    let mut command = tokio::process::Command::new(program());
    command
        .args(["--no-vacuum", "--protocol=prepared"])
        .arg(format!("--client={clients}"))
        .arg(format!("--jobs={}", threads().min(clients.max(1))))
        .arg(format!("--time={}", duration.as_secs().max(1)))
        .kill_on_drop(true);
    for script in scripts {
        let path = scratch.dir.join(format!("{}.sql", script.name));
        std::fs::write(&path, &script.sql)
            .with_context(|| format!("writing {}", path.display()))?;
        command.arg(format!("--file={}", path.display()));
    }
    use tokio_postgres::config::Host;
    if let Some(Host::Tcp(host)) = config.get_hosts().first() {
        command.arg(format!("--host={host}"));
    }
    if let Some(port) = config.get_ports().first() {
        command.arg(format!("--port={port}"));
    }
    if let Some(user) = config.get_user() {
        command.arg(format!("--username={user}"));
    }
    if let Some(password) = config.get_password() {
        command.env("PGPASSWORD", String::from_utf8_lossy(password).as_ref());
    }
    command.arg(config.get_dbname().context("the database's name")?);
    let output = command.output().await.context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_tps(&stdout).with_context(|| format!("no tps in pgbench's output: {stdout}"))
}

/// `tps = 1234.567890 (without initial connection time)`.
fn parse_tps(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `pgbench` from the newest PostgreSQL under /usr/lib/postgresql, else the
/// one on the PATH.
fn program() -> PathBuf {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|version| {
            let number: u32 = version.file_name().to_str()?.parse().ok()?;
            let path = version.path().join("bin/pgbench");
            path.exists().then_some((number, path))
        })
        .max_by_key(|(number, _)| *number)
        .map(|(_, path)| path);
    installed.unwrap_or_else(|| Path::new("pgbench").to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tps_line_is_read() {
        let out = "latency average = 2.1 ms\ninitial connection time = 9.8 ms\n\
                   tps = 15203.449126 (without initial connection time)\n";
        assert_eq!(parse_tps(out), Some(15203.449126));
        assert_eq!(parse_tps("pgbench: error"), None);
    }
}
