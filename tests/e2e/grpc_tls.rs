//! TLS on the gRPC listener: with a certificate and key the service speaks
//! only TLS, and with a client CA it requires client certificates. The
//! gateway, given the CA (and its own certificate), reaches it; a client
//! without the CA, or without a certificate, is refused.

use std::{path::Path, time::Duration};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use wowchat_gateway::{Gateway, GatewaySettings};
use wowchat_users_api::v1::{self as proto, user_service_client::UserServiceClient};
use wowchat_users_testkit::{TestApp, authed};

use crate::postgres_tls::Ca;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn list_users(channel: Channel, token: &str) -> Result<(), tonic::Status> {
    UserServiceClient::new(channel)
        .list_users(authed(token, proto::ListUsersRequest::default()))
        .await
        .map(|_| ())
}

async fn channel(
    port: u16,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://localhost:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    endpoint.connect().await
}

#[tokio::test]
async fn the_service_serves_mutual_tls_and_the_gateway_reaches_it_with_the_ca() {
    let dir = std::env::temp_dir().join(format!("wowchat-grpc-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Ca::new("wowchat test CA");
    let (cert, key) = ca.server(&["localhost"]);
    let (client_cert, client_key) = ca.server(&["gateway"]);
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    let cert_path = write(&dir, "server.pem", &cert);
    let key_path = write(&dir, "server.key", &key);
    let client_cert_path = write(&dir, "client.pem", &client_cert);
    let client_key_path = write(&dir, "client.key", &client_key);
    let app = TestApp::spawn_with(|settings| {
        settings.tls_cert = Some(cert_path.clone());
        settings.tls_key = Some(key_path.clone());
        settings.tls_client_ca = Some(ca_path.clone());
    })
    .await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();

    // Plaintext, a client that does not know the CA, and one without a
    // certificate: all refused.
    let plain = match channel(port, None).await {
        Ok(channel) => list_users(channel, &app.owner_token).await.is_err(),
        Err(_) => true,
    };
    assert!(plain, "a plaintext call was answered");
    let stranger =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(Ca::new("other").pem));
    let refused = match channel(port, Some(stranger)).await {
        Ok(channel) => list_users(channel, &app.owner_token).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a client without the CA was answered");
    let anonymous = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem));
    let refused = match channel(port, Some(anonymous)).await {
        Ok(channel) => list_users(channel, &app.owner_token).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a client without a certificate was answered");
    let with_certificate = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .identity(Identity::from_pem(&client_cert, &client_key));
    list_users(
        channel(port, Some(with_certificate)).await.unwrap(),
        &app.owner_token,
    )
    .await
    .unwrap();

    // The gateway with the CA and its certificate: REST works.
    let mut settings = GatewaySettings::defaults();
    settings.gateway_listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.gateway_upstream = format!("https://localhost:{port}");
    settings.gateway_upstream_ca = Some(ca_path.clone());
    settings.gateway_upstream_client_cert = Some(client_cert_path);
    settings.gateway_upstream_client_key = Some(client_key_path);
    settings.gateway_shutdown.delay_secs = 0;
    let gateway = Gateway::build(settings).await.expect("the gateway builds");
    let base = format!("http://{}", gateway.address());
    let _stop = wowchat_users_testkit::run_until_dropped(|stop| gateway.run_until_stopped(stop));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let request = tonic::codegen::http::Request::get(format!("{base}/v1/users"))
        .header("authorization", format!("Bearer {}", app.owner_token))
        .body(http_body_util::Full::<bytes::Bytes>::default())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);

    // An http:// upstream with a CA, or half a client certificate, is refused at start.
    let mut settings = GatewaySettings::defaults();
    settings.gateway_listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.gateway_upstream = format!("http://localhost:{port}");
    settings.gateway_upstream_ca = Some(ca_path);
    let error = Gateway::build(settings).await.err().expect("refused");
    assert!(format!("{error:#}").contains("https://"), "{error:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
