//! The mailer's gRPC health endpoint (`grpc.health.v1.Health`, service
//! `""`): SERVING while it consumes the mail queue and reaches Postgres,
//! NOT_SERVING as soon as either fails, so a probe sees a mailer that cannot
//! send.

use std::{future::Future, time::Duration};

use deadpool_postgres::Pool;
use tokio::{net::TcpListener, sync::watch};
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};
use wowchat_platform::postgres;

/// How often Postgres is checked, and how long a check may take.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Serves `grpc.health.v1.Health` with `reporter`'s statuses on `listener`
/// until the task is dropped.
pub fn serve(listener: TcpListener) -> (HealthReporter, impl Future<Output = ()> + Send) {
    let (reporter, service) = tonic_health::server::health_reporter();
    let serving = Server::builder()
        .add_service(service)
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)));
    (reporter, async move {
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "the health endpoint stopped");
        }
    })
}

/// Keeps the status current: `consuming` from the RabbitMQ session, and a
/// `SELECT 1` on `pool` (the probe's own connection) every second.
pub async fn watch(reporter: HealthReporter, pool: Pool, mut consuming: watch::Receiver<bool>) {
    let mut last = None;
    loop {
        let database = postgres::reachable(&pool, CHECK_EVERY).await;
        let broker = *consuming.borrow_and_update();
        let status = if database && broker {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            if status == ServingStatus::Serving {
                tracing::info!("RabbitMQ and Postgres reachable: serving");
            } else {
                tracing::warn!(
                    rabbitmq = broker,
                    postgres = database,
                    "cannot send: not serving"
                );
            }
            reporter.set_service_status("", status).await;
            last = Some(status);
        }
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            changed = consuming.changed() => if changed.is_err() { return },
        }
    }
}
