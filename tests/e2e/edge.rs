//! The gateway at the edge, behind the real proxies a platform team puts in
//! front of it (Debian's haproxy and nginx, started here on free ports):
//! each client keeps its own sign-in budget whatever stands in front, a
//! forged X-Forwarded-For from an untrusted peer changes nothing, and slow
//! connections are closed while the gateway goes on answering.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::DropGuard;
use tonic::codegen::http::{self, StatusCode};
use wowchat_gateway::{Gateway, GatewaySettings};
use wowchat_users_testkit::{PASSWORD, TestApp, processes::free_port};

use crate::support::{gateway_settings, start_gateway};

const KEY: &str = "edge test gateway key, long enough";
const CLIENT_A: &str = "127.0.0.2";
const CLIENT_B: &str = "127.0.0.3";

/// A server allowing 2 sign-in attempts per address a minute, and the
/// gateway in front of it as `adjust` sets it.
struct Edge {
    app: TestApp,
    gateway: SocketAddr,
    _stop: DropGuard,
}

impl Edge {
    async fn start(adjust: impl FnOnce(&mut GatewaySettings)) -> Edge {
        let app = TestApp::spawn_with(|settings| {
            settings.gateway_key = Some(KEY.into());
            settings.sign_in_per_address_per_minute = 2;
        })
        .await;
        let mut settings = gateway_settings(&app);
        settings.gateway_key = Some(KEY.into());
        adjust(&mut settings);
        let (address, stop) = start_gateway(settings).await;
        Edge {
            app,
            gateway: address,
            _stop: stop,
        }
    }

    /// A sign-in sent from `from` to `port` on loopback: its HTTP status.
    async fn sign_in(
        &self,
        port: u16,
        from: &str,
        email: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> StatusCode {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(from.parse().unwrap()));
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
        let body = json!({
            "workspaceId": self.app.workspace_id.to_string(),
            "email": email,
            "password": password,
        });
        let mut request = http::Request::post(format!("http://127.0.0.1:{port}/v1/auth:signIn"))
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = tokio::time::timeout(
            Duration::from_secs(30),
            client.request(request.body(Full::new(body.to_string().into())).unwrap()),
        )
        .await
        .expect("answered in time")
        .expect("the proxy answers");
        let status = response.status();
        let _ = response.into_body().collect().await;
        status
    }

    /// Client A uses up its budget through `port` (trying a forged header
    /// too); client B, another address, then signs in as the owner.
    async fn clients_keep_their_own_budgets(&self, port: u16) {
        let forged = [("x-forwarded-for", CLIENT_B)];
        let stranger = "stranger@example.com";
        for _ in 0..2 {
            let status = self
                .sign_in(port, CLIENT_A, stranger, "not the password", &forged)
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let refused = self
            .sign_in(port, CLIENT_A, stranger, "not the password", &forged)
            .await;
        assert_eq!(
            refused,
            StatusCode::TOO_MANY_REQUESTS,
            "A's budget is spent"
        );
        let owner = self
            .sign_in(port, CLIENT_B, "owner@example.com", PASSWORD, &[])
            .await;
        assert_eq!(owner, StatusCode::OK, "B has its own budget");
    }
}

/// A proxy process of the test, stopped with it.
struct Proxy {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Proxy {
    fn start(program: &str, config: impl FnOnce(&Path, u16) -> (String, Vec<String>)) -> Proxy {
        let dir = std::env::temp_dir().join(format!("wowchat-edge-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let (text, args) = config(&dir, port);
        std::fs::write(dir.join("proxy.conf"), text).unwrap();
        let child = Command::new(program)
            .args(args)
            // Never the test's own output: a process that outlived the test
            // holding it open would keep the runner's pipe from closing.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} runs (apt-get install {program}): {e}"));
        let proxy = Proxy { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{program} did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    fn haproxy(mode: &str, gateway: SocketAddr) -> Proxy {
        Proxy::start("haproxy", |dir, port| {
            let (options, server) = match mode {
                "tcp" => ("mode tcp", "send-proxy-v2"),
                _ => ("mode http\n  option forwardfor", ""),
            };
            let text = format!(
                "global\n  maxconn 256\ndefaults\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
                 listen edge\n  bind 127.0.0.1:{port}\n  {options}\n  server gateway {gateway} {server}\n"
            );
            let config = dir.join("proxy.conf").display().to_string();
            (text, vec!["-db".into(), "-f".into(), config])
        })
    }

    fn nginx(gateway: SocketAddr) -> Proxy {
        Proxy::start("nginx", |dir, port| {
            let d = dir.display();
            let text = format!(
                "daemon off;\nmaster_process off;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log error;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
                 server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://{gateway};\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }}\n  }}\n}}\n"
            );
            let config = dir.join("proxy.conf").display().to_string();
            (text, vec!["-p".into(), d.to_string(), "-c".into(), config])
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn trusting_loopback(settings: &mut GatewaySettings) {
    settings.gateway_trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

#[tokio::test]
async fn behind_haproxy_with_the_proxy_protocol_each_client_is_itself() {
    let edge = Edge::start(|settings| {
        trusting_loopback(settings);
        settings.gateway_proxy_protocol = true;
    })
    .await;
    let haproxy = Proxy::haproxy("tcp", edge.gateway);
    edge.clients_keep_their_own_budgets(haproxy.port).await;

    // Straight to the gateway, without a PROXY header: closed unanswered.
    let mut direct = tokio::net::TcpStream::connect(edge.gateway).await.unwrap();
    direct
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), direct.read_to_end(&mut answer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))) && answer.is_empty(),
        "answered without a PROXY header: {}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn behind_haproxy_with_forwardfor_each_client_is_itself() {
    let edge = Edge::start(trusting_loopback).await;
    let haproxy = Proxy::haproxy("http", edge.gateway);
    edge.clients_keep_their_own_budgets(haproxy.port).await;
}

#[tokio::test]
async fn behind_nginx_with_x_forwarded_for_each_client_is_itself() {
    let edge = Edge::start(trusting_loopback).await;
    let nginx = Proxy::nginx(edge.gateway);
    edge.clients_keep_their_own_budgets(nginx.port).await;
}

#[tokio::test]
async fn a_forged_x_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    // Only 127.0.0.1 is trusted; A (127.0.0.2) claims to be B.
    let edge = Edge::start(trusting_loopback).await;
    edge.clients_keep_their_own_budgets(edge.gateway.port())
        .await;
}

#[tokio::test]
async fn without_trusted_proxies_a_proxy_is_one_client() {
    // What the platform team saw before: every client behind the proxy
    // shares the proxy's budget. Kept as the baseline the settings fix.
    let edge = Edge::start(|_| {}).await;
    let nginx = Proxy::nginx(edge.gateway);
    let stranger = "stranger@example.com";
    for _ in 0..2 {
        let status = edge
            .sign_in(nginx.port, CLIENT_A, stranger, "not the password", &[])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let owner = edge
        .sign_in(nginx.port, CLIENT_B, "owner@example.com", PASSWORD, &[])
        .await;
    assert_eq!(owner, StatusCode::TOO_MANY_REQUESTS);
}

/// Slowloris: 1,500 connections that send half a request, then a header
/// line every 10 s. The head deadline closes them; meanwhile `/healthz`
/// and a REST call answer at once.
#[tokio::test]
async fn slow_connections_are_closed_and_the_gateway_answers_meanwhile() {
    let edge = Edge::start(|settings| {
        settings.gateway_header_read_timeout_secs = 10;
    })
    .await;
    let target = edge.gateway;
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..1500 {
        let closed = closed_tx.clone();
        slow.push(tokio::spawn(async move {
            let Ok(mut stream) = tokio::net::TcpStream::connect(target).await else {
                return;
            };
            if stream
                .write_all(b"POST /v1/auth:signIn HTTP/1.1\r\nHost: x\r\n")
                .await
                .is_err()
            {
                let _ = closed.send(());
                return;
            }
            let mut buffer = [0u8; 256];
            for line in 0..5 {
                // A read that ends (0 bytes or an error) is the gateway closing.
                match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        let _ = closed.send(());
                        return;
                    }
                    Ok(Ok(_)) => {}
                    Err(_) => {}
                }
                let header = format!("x-slow-{line}: still here\r\n");
                if stream.write_all(header.as_bytes()).await.is_err() {
                    let _ = closed.send(());
                    return;
                }
            }
        }));
    }
    drop(closed_tx);

    // Meanwhile, and after: health and a real call answer within 2 s.
    let answers = |what: &'static str| async move {
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let request = http::Request::get(format!("http://{target}{what}"))
            .body(Full::<Bytes>::default())
            .unwrap();
        let started = Instant::now();
        let response = tokio::time::timeout(Duration::from_secs(2), client.request(request))
            .await
            .unwrap_or_else(|_| panic!("{what} did not answer within 2 s"))
            .unwrap();
        assert!(response.status().is_success() || response.status() == StatusCode::UNAUTHORIZED);
        started.elapsed()
    };
    while started.elapsed() < Duration::from_secs(40) {
        answers("/healthz").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    answers("/healthz").await;
    let rest = edge
        .sign_in(target.port(), CLIENT_B, "owner@example.com", PASSWORD, &[])
        .await;
    assert_eq!(rest, StatusCode::OK);
    let mut closed = 0;
    while let Ok(()) = closed_rx.try_recv() {
        closed += 1;
    }
    eprintln!("{closed} of 1,500 slow connections closed after 40 s");
    assert!(
        closed >= 1400,
        "only {closed} of 1,500 slow connections closed after 40 s"
    );
    for task in slow {
        task.abort();
    }
}

/// A body that does not arrive in time is 408; an idle keep-alive
/// connection is closed.
#[tokio::test]
async fn a_stalled_body_is_408_and_an_idle_connection_is_closed() {
    let edge = Edge::start(|settings| {
        settings.gateway_body_read_timeout_secs = 1;
        settings.gateway_idle_timeout_secs = 2;
    })
    .await;
    let mut stalled = tokio::net::TcpStream::connect(edge.gateway).await.unwrap();
    stalled
        .write_all(b"POST /v1/auth:signIn HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("BODY_READ_TIMEOUT"), "{text}");

    let mut idle = tokio::net::TcpStream::connect(edge.gateway).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut everything = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut everything))
        .await
        .expect("the idle connection is closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&everything).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed before it was idle"
    );
}

#[tokio::test]
async fn cors_any_origin_works_and_a_bad_origin_is_refused_by_name() {
    let edge = Edge::start(|settings| settings.gateway_cors_origins = vec!["*".into()]).await;
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let request = http::Request::get(format!("http://{}/healthz", edge.gateway))
        .header("origin", "https://anywhere.example")
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "*",
        "{response:?}"
    );

    for bad in [vec!["*", "https://a.example"], vec!["not an origin"]] {
        let mut settings = GatewaySettings::defaults();
        settings.gateway_listen_addr = "127.0.0.1:0".parse().unwrap();
        settings.gateway_cors_origins = bad.iter().map(|s| s.to_string()).collect();
        let error = Gateway::build(settings).await.err().expect("refused");
        assert!(
            format!("{error:#}").contains("WOWCHAT_GATEWAY_CORS_ORIGINS"),
            "{error:#}"
        );
    }
    let refused = |adjust: fn(&mut GatewaySettings), named: &'static str| async move {
        let mut settings = GatewaySettings::defaults();
        settings.gateway_listen_addr = "127.0.0.1:0".parse().unwrap();
        adjust(&mut settings);
        let error = Gateway::build(settings).await.err().expect("refused");
        assert!(format!("{error:#}").contains(named), "{error:#}");
    };
    refused(
        |s| s.gateway_proxy_protocol = true,
        "WOWCHAT_GATEWAY_TRUSTED_PROXIES",
    )
    .await;
    // A key shorter than 32 bytes, or none in production.
    refused(
        |s| s.gateway_key = Some("sixteen bytes ok".into()),
        "at least 32",
    )
    .await;
    refused(
        |s| {
            s.gateway_environment.environment =
                wowchat_platform::environment::Environment::Production
        },
        "WOWCHAT_ENVIRONMENT=production refuses a missing WOWCHAT_GATEWAY_KEY",
    )
    .await;
}

#[tokio::test]
async fn the_service_refuses_a_short_gateway_key_and_ignores_a_wrong_one() {
    let mut settings = wowchat_users_server::config::Settings::defaults();
    settings.listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.gateway_key = Some("sixteen bytes ok".into());
    let error = wowchat_users_server::startup::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{error:#}").contains("WOWCHAT_GATEWAY_KEY"),
        "{error:#}"
    );

    // A wrong key is answered as no key: the claimed address is ignored,
    // and the caller's own budget is the one spent.
    let app = TestApp::spawn_with(|settings| {
        settings.gateway_key = Some(KEY.into());
        settings.sign_in_per_address_per_minute = 1;
    })
    .await;
    let mut auth = app.auth().await;
    for claimed in ["127.0.0.7", "127.0.0.8"] {
        let mut request = tonic::Request::new(wowchat_users_api::v1::SignInRequest {
            workspace_id: app.workspace_id.to_string(),
            email: "stranger@example.com".into(),
            password: "not the password".into(),
        });
        let metadata = request.metadata_mut();
        metadata.insert(
            "x-wowchat-gateway-key",
            "a wrong key of the same length....".parse().unwrap(),
        );
        metadata.insert("x-wowchat-client-address", claimed.parse().unwrap());
        let status = auth.sign_in(request).await.expect_err("refused");
        let expected = if claimed == "127.0.0.7" {
            tonic::Code::Unauthenticated
        } else {
            tonic::Code::ResourceExhausted
        };
        assert_eq!(status.code(), expected, "{status:?}");
    }
}
