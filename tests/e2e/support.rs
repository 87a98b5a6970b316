//! Small helpers shared by the test modules.

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio_util::sync::DropGuard;
use wowchat_gateway::{Gateway, GatewaySettings};
use wowchat_users_testkit::{
    MailerHandle, SmtpServer, TestApp, run_until_dropped, without_invitation_limits,
};

/// Polls `condition` until it holds, for at most 30 seconds.
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fails the test with every problem a check found, one a line.
pub fn assert_no_problems(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A gateway's settings for a test: on a free port, in front of `app`,
/// closing at once when stopped (no shutdown delay).
pub fn gateway_settings(app: &TestApp) -> GatewaySettings {
    let mut settings = GatewaySettings::defaults();
    settings.gateway_listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.gateway_upstream = app.address.clone();
    settings.gateway_shutdown.delay_secs = 0;
    settings
}

/// Builds the gateway of `settings` and runs it until the guard is
/// dropped; its address.
pub async fn start_gateway(settings: GatewaySettings) -> (SocketAddr, DropGuard) {
    let gateway = Gateway::build(settings).await.expect("gateway builds");
    let address = gateway.address();
    (
        address,
        run_until_dropped(|stop| gateway.run_until_stopped(stop)),
    )
}

/// Points the server's database URL at `port` on loopback (a test kit
/// proxy in front of this machine's Postgres) instead of 5432.
pub fn database_through(settings: &mut wowchat_users_server::config::Settings, port: u16) {
    let url = settings
        .database
        .url
        .expose()
        .replace(":5432/", &format!(":{port}/"));
    settings.database.url = url.into();
}

/// A server publishing through its relay and a mailer consuming, both on
/// the broker of `amqp_url` (a proxy, a cluster), the mailer sending
/// through `smtp`; no invitation limits, and `adjust` for the rest.
pub async fn relay_and_mailer_on(
    amqp_url: &str,
    smtp: &SmtpServer,
    adjust: impl FnOnce(&mut wowchat_users_server::config::Settings),
) -> (TestApp, MailerHandle) {
    let app = TestApp::spawn_with(|settings| {
        settings.relay = true;
        settings.amqp.url = amqp_url.to_owned().into();
        without_invitation_limits(settings);
        adjust(settings);
    })
    .await;
    let mut mailer_settings = app.mailer_settings(&smtp.url());
    mailer_settings.amqp.url = amqp_url.to_owned().into();
    let mailer = app.start_mailer(mailer_settings).await;
    (app, mailer)
}
