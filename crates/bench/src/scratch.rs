//! What a scenario runs on: a fresh database migrated by the server's own
//! migrations, RabbitMQ names under a prefix of its own, and a folder for
//! keys, logs and scripts. All are removed afterwards, whatever the
//! scenario's outcome.

use std::path::PathBuf;

use anyhow::Context;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use uuid::Uuid;
use wowchat_platform::amqp;
use wowchat_users_api::topology::Topology;
use wowchat_users_server::db;

use crate::Common;

pub struct Scratch {
    /// The URL of the scenario's database.
    pub database_url: String,
    pub topology: Topology,
    pub brokers: amqp::Brokers,
    /// The scenario's folder: development keys, server logs, pgbench scripts.
    pub dir: PathBuf,
    database_name: String,
    admin: tokio_postgres::Config,
}

impl Scratch {
    /// Runs `scenario` on a scratch of its own, removed afterwards whatever
    /// the outcome.
    pub async fn with<T>(
        common: &Common,
        scenario: impl AsyncFnOnce(&Scratch) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let scratch = Scratch::create(common).await?;
        let result = scenario(&scratch).await;
        scratch.remove().await;
        result
    }

    /// Creates and migrates `wowchat_bench_<random>` next to `--database-url`.
    pub async fn create(common: &Common) -> anyhow::Result<Scratch> {
        let suffix = Uuid::new_v4().simple().to_string();
        let admin: tokio_postgres::Config = common
            .database_url
            .parse()
            .ok()
            .context("--database-url is not a Postgres URL")?;
        let database_name = format!("wowchat_bench_{suffix}");
        let database_url = url_of(&admin, &database_name);
        let brokers = amqp::Brokers::parse(&common.amqp_url, "--amqp-url")?;
        let dir = std::env::temp_dir().join(&database_name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        db::SCHEMA.ensure_database(&database_url).await?;
        let scratch = Scratch {
            database_url,
            topology: Topology::new(format!("bench-{suffix}")),
            brokers,
            dir,
            database_name,
            admin,
        };
        if let Err(err) = db::SCHEMA.migrate(&scratch.database_url).await {
            scratch.remove().await;
            return Err(err);
        }
        Ok(scratch)
    }

    /// Refreshes the planner's statistics, as autovacuum keeps them on a
    /// database in use (it looks a minute apart: longer than a measurement).
    pub async fn analyze(&self) -> anyhow::Result<()> {
        let (client, connection) =
            tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        client.batch_execute("ANALYZE").await?;
        drop(client);
        let _ = connection.await;
        Ok(())
    }

    /// Drops the database, deletes every queue and exchange under the
    /// prefix, and the folder.
    pub async fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Ok(connection) = self.brokers.connect("wowchat-bench").await {
            if let Ok(channel) = connection.create_channel().await {
                let t = &self.topology;
                for queue in [
                    t.events_archive_queue(),
                    t.delivery_results_queue(),
                    t.mailer_queue(),
                    t.mailer_dead_letter_queue(),
                ] {
                    let _ = channel
                        .queue_delete(queue.into(), QueueDeleteOptions::default())
                        .await;
                }
                for exchange in [
                    t.events_exchange(),
                    t.commands_exchange(),
                    t.mailer_dead_letter_exchange(),
                ] {
                    let _ = channel
                        .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
                        .await;
                }
                let _ = channel.close(200, "benchmark done".into()).await;
            }
            let _ = connection.close(200, "benchmark done".into()).await;
        }
        match self.admin.connect(tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                let drop = format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.database_name
                );
                if let Err(err) = client.batch_execute(&drop).await {
                    eprintln!("could not drop {}: {err}", self.database_name);
                }
            }
            Err(err) => eprintln!("could not drop {}: {err}", self.database_name),
        }
    }
}

/// The URL of database `name` on the server `admin` points at.
fn url_of(admin: &tokio_postgres::Config, name: &str) -> String {
    use tokio_postgres::config::Host;
    let host = match admin.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = admin.get_ports().first().copied().unwrap_or(5432);
    let user = admin.get_user().unwrap_or("postgres");
    let password = admin
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!("postgres://{user}{password}@{host}:{port}/{name}")
}
