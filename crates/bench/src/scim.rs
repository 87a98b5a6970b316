//! SCIM through the gateway, as an identity provider drives it: 10,000
//! members created by `POST /scim/v2/Users` at 16 in flight, next to the
//! same number of InviteUser calls through the same gateway (`POST
//! /v1/invitations`) at the same concurrency; then `filter=userName eq "…"`
//! at 100,000 members, the lookup Okta and Entra ID make before every
//! create, at 8 in flight as the `list` scenario reads. The gateway runs in this process, the server in its own.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio_util::sync::CancellationToken;
use tonic::codegen::http::{self, Method, StatusCode};
use wowchat_gateway::{Gateway, GatewaySettings};
use wowchat_users_api::v1::{
    CreateDirectoryTokenRequest, directory_service_client::DirectoryServiceClient,
};

use crate::{
    Common, list, listing,
    load::{self, Outcome},
    report::{Ceiling, Measurement, Target},
    service::{self, Service},
};

const IN_FLIGHT: usize = 16;
/// Lookups in flight: as the `list` scenario's reads.
const LOOKUPS_IN_FLIGHT: usize = listing::IN_FLIGHT;
/// Members created by SCIM (and invitations sent beside them).
const CREATES: u64 = 10_000;
/// Members the userName lookup searches among.
const MEMBERS: i64 = 100_000;

/// Issue 22: creating by SCIM at least 0.8 times InviteUser's rate.
const CREATE_TARGET: Target = Target {
    min_ratio: Some(0.8),
    max_ratio: None,
    min_throughput: None,
    max_p99: None,
};
/// Issue 22: the lookup by userName at 100,000 members.
const FILTER_TARGET: Target = Target {
    min_ratio: None,
    max_ratio: None,
    min_throughput: None,
    max_p99: Some(std::time::Duration::from_millis(5)),
};

type Http = Client<HttpConnector, Full<Bytes>>;

pub async fn run(common: &Common) -> anyhow::Result<Vec<Measurement>> {
    service::with_service(common, &[], async |scratch, service| {
        let (gateway, stop) = start_gateway(service).await?;
        let http: Http = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let channels = load::connect(&service.address).await?;
        let creates = if common.quick { 300 } else { CREATES };

        eprintln!("scim: {creates} invitations through the gateway, {IN_FLIGHT} in flight");
        let inviting = service.workspace("scim-invite").await?;
        let owner = inviting.owner.header().to_owned();
        let invite = counted(&channels, creates, {
            let (http, gateway) = (http.clone(), gateway.clone());
            move |number| {
                let body = format!(r#"{{"email":"invitee-{number}@bench.example.com","role":"agent"}}"#);
                post(http.clone(), format!("{gateway}/v1/invitations"), owner.clone(), body, StatusCode::OK)
            }
        })
        .await?;

        eprintln!("scim: {creates} members created by SCIM POST, {IN_FLIGHT} in flight");
        let directory = service.workspace("scim-directory").await?;
        let secret = directory_token(service, &directory).await?;
        let bearer = format!("Bearer {secret}");
        let create = counted(&channels, creates, {
            let (http, gateway) = (http.clone(), gateway.clone());
            move |number| {
                let body = format!(
                    r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"member-{number}@bench.example.com","name":{{"givenName":"Member","familyName":"{number}"}},"emails":[{{"value":"member-{number}@bench.example.com","type":"work","primary":true}}],"displayName":"Member {number}","active":true}}"#
                );
                post(http.clone(), format!("{gateway}/scim/v2/Users"), bearer.clone(), body, StatusCode::CREATED)
            }
        })
        .await?;

        eprintln!("scim: filter=userName eq, {LOOKUPS_IN_FLIGHT} in flight");
        let seeded = service.workspace("scim-lookup").await?;
        let db = service.db().await?;
        let members = if common.quick { 5_000 } else { MEMBERS };
        list::seed(&db, seeded.id, members).await?;
        scratch.analyze().await?;
        let names: Vec<String> = db
            .query(
                "SELECT email FROM users WHERE workspace_id = $1 ORDER BY random() LIMIT 1000",
                &[&seeded.id],
            )
            .await?
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect();
        anyhow::ensure!(!names.is_empty(), "no member was seeded");
        let secret = directory_token(service, &seeded).await?;
        let bearer = format!("Bearer {secret}");
        let names = Arc::new(names);
        let lookup = common
            .run(LOOKUPS_IN_FLIGHT)
            .measure(&channels, {
                let (http, gateway) = (http.clone(), gateway.clone());
                move |_, number| {
                    let name = &names[usize::try_from(number).unwrap_or(0) % names.len()];
                    // The upper-cased name: the match ignores case, as Okta's test asks.
                    let query = format!("userName eq \"{}\"", name.to_uppercase());
                    let url = format!(
                        "{gateway}/scim/v2/Users?filter={}",
                        form_urlencoded(&query)
                    );
                    let (http, bearer) = (http.clone(), bearer.clone());
                    Box::pin(async move {
                        let body = call(&http, Method::GET, url, &bearer, String::new(), StatusCode::OK).await?;
                        let found: serde_json::Value = serde_json::from_slice(&body)?;
                        anyhow::ensure!(
                            found["totalResults"] == 1,
                            "the lookup found no one: {}",
                            String::from_utf8_lossy(&body)
                        );
                        Ok(())
                    }) as load::Call
                }
            })
            .await?;
        stop.cancel();
        Ok(vec![
            Measurement::of_calls(
                "scim: InviteUser via the gateway (ceiling)",
                &invite,
                None,
                Target::default(),
            ),
            Measurement::of_calls(
                format!("scim: create {creates} by POST /Users"),
                &create,
                Some(Ceiling::Throughput(invite.throughput())),
                CREATE_TARGET,
            ),
            Measurement::of_calls(
                format!("scim: filter userName eq, {members} members"),
                &lookup,
                None,
                FILTER_TARGET,
            ),
        ])
    })
    .await
}

/// The gateway in front of the service, on a free port: its base URL, and
/// what stops it.
async fn start_gateway(service: &Service) -> anyhow::Result<(String, CancellationToken)> {
    let mut settings = GatewaySettings::defaults();
    settings.gateway_listen_addr = "127.0.0.1:0".parse()?;
    settings.gateway_upstream = service.address.clone();
    settings.gateway_shutdown.delay_secs = 0;
    let gateway = Gateway::build(settings)
        .await
        .context("the gateway builds")?;
    let base = format!("http://{}", gateway.address());
    let stop = CancellationToken::new();
    tokio::spawn(gateway.run_until_stopped({
        let stop = stop.clone();
        async move { stop.cancelled().await }
    }));
    Ok((base, stop))
}

/// A directory token of `workspace`, minted by its owner.
async fn directory_token(
    service: &Service,
    workspace: &service::Workspace,
) -> anyhow::Result<String> {
    let channel = load::connect(&service.address)
        .await?
        .into_iter()
        .next()
        .context("a connection")?;
    let minted = DirectoryServiceClient::new(channel)
        .create_directory_token(workspace.owner.request(CreateDirectoryTokenRequest {
            display_name: "bench".into(),
        }))
        .await?
        .into_inner();
    Ok(minted.secret)
}

/// Runs `call` at 16 in flight until `count` calls succeeded (after a
/// second's warm-up that is not counted).
async fn counted(
    channels: &[tonic::transport::Channel],
    count: u64,
    call: impl Fn(u64) -> load::Call + Clone + Send + Sync + 'static,
) -> anyhow::Result<Outcome> {
    let warm = call.clone();
    load::drive(
        channels,
        IN_FLIGHT,
        std::time::Duration::from_millis(500),
        move |_, number| warm(number),
    )
    .await?;
    let stop = CancellationToken::new();
    let done = Arc::new(AtomicU64::new(0));
    load::drive_until(channels, IN_FLIGHT, stop.clone(), move |_, number| {
        let (call, done, stop) = (call.clone(), done.clone(), stop.clone());
        Box::pin(async move {
            call(number).await?;
            if done.fetch_add(1, Ordering::Relaxed) + 1 >= count {
                stop.cancel();
            }
            Ok(())
        }) as load::Call
    })
    .await
}

fn post(http: Http, url: String, bearer: String, body: String, expected: StatusCode) -> load::Call {
    Box::pin(async move {
        call(&http, Method::POST, url, &bearer, body, expected).await?;
        Ok(())
    })
}

async fn call(
    http: &Http,
    method: Method,
    url: String,
    bearer: &str,
    body: String,
    expected: StatusCode,
) -> anyhow::Result<Bytes> {
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", bearer)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let response = http.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status == expected,
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

/// A query string value, percent-encoded.
fn form_urlencoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
