//! The REST gateway in front of the real server: real HTTP/1.1 requests to
//! `wowchat-gateway` on a free port, forwarded over gRPC to the service on
//! its own port. The README's REST walk-through, and every error as a
//! `google.rpc.Status` under its HTTP status.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value as Json, json};
use tokio_util::sync::DropGuard;
use tonic::codegen::http::{self, HeaderMap, Method, StatusCode};
use wowchat_gateway::GatewaySettings;
use wowchat_users_server::config::Settings;
use wowchat_users_testkit::TestApp;

use crate::support::{gateway_settings, start_gateway};

/// The key this test's gateway and server share.
const KEY: &str = "test gateway key, at least 32 bytes long";
/// Where the REST calls come from.
const CLIENT_ADDRESS: &str = "127.0.0.2";

/// A server with the gateway in front of it.
pub(crate) struct Rest {
    pub(crate) app: TestApp,
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    _stop: DropGuard,
}

/// What a REST call answered.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) json: Json,
}

impl Reply {
    /// The reply of a call expected to succeed.
    pub(crate) fn ok(self) -> Json {
        assert_eq!(self.status, StatusCode::OK, "{:#}", self.json);
        self.json
    }

    /// The ErrorInfo reason of an error reply.
    fn reason(&self) -> &str {
        self.detail("google.rpc.ErrorInfo")["reason"]
            .as_str()
            .unwrap_or_default()
    }

    fn detail(&self, type_name: &str) -> &Json {
        let type_url = format!("type.googleapis.com/{type_name}");
        self.json["details"]
            .as_array()
            .and_then(|details| details.iter().find(|d| d["@type"] == type_url.as_str()))
            .unwrap_or(&Json::Null)
    }
}

impl Rest {
    pub(crate) async fn spawn() -> Rest {
        Self::spawn_with(|_| {}).await
    }

    pub(crate) async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Rest {
        Self::spawn_with_gateway(adjust, |_| {}).await
    }

    /// A server and gateway as `adjust` and `adjust_gateway` set them.
    pub(crate) async fn spawn_with_gateway(
        adjust: impl FnOnce(&mut Settings),
        adjust_gateway: impl FnOnce(&mut GatewaySettings),
    ) -> Rest {
        let app = TestApp::spawn_with(|settings| {
            settings.gateway_key = Some(KEY.into());
            adjust(settings);
        })
        .await;
        let mut settings = gateway_settings(&app);
        settings.gateway_key = Some(KEY.into());
        settings.gateway_body_limit_bytes = 64 * 1024;
        adjust_gateway(&mut settings);
        let (address, stop) = start_gateway(settings).await;
        let base = format!("http://{address}");
        // The gateway's clients connect from 127.0.0.2, the gateway and
        // the tests' gRPC clients from 127.0.0.1: the service can tell them apart.
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(CLIENT_ADDRESS.parse().unwrap()));
        Rest {
            app,
            base,
            client: Client::builder(TokioExecutor::new()).build(connector),
            _stop: stop,
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Json>,
    ) -> Reply {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.raw(method, path, bearer, &[], body.into_bytes()).await
    }

    pub(crate) async fn raw(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(bearer) = bearer {
            request = request.header("authorization", format!("Bearer {bearer}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .expect("the gateway answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        // A 204 has no body.
        let json = if bytes.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes))
            })
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    pub(crate) fn owner(&self) -> Option<&str> {
        Some(self.app.owner_token.as_str())
    }

    /// Invites `email` as the owner over REST: the invitation's JSON.
    async fn invite(&self, email: &str, role: &str) -> Json {
        self.call(
            Method::POST,
            "/v1/invitations",
            self.owner(),
            Some(json!({"email": email, "role": role})),
        )
        .await
        .ok()["invitation"]
            .clone()
    }
}

fn text(value: &Json) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

#[tokio::test]
async fn the_rest_walk_through_invites_accepts_lists_manages_and_signs_in() {
    let rest = Rest::spawn_with(|settings| settings.resend_cooldown_secs = 0).await;
    let owner_id = rest.app.owner_id.to_string();

    // Invite, with the request id echoed and the JSON mapping's names and shapes.
    let reply = rest
        .raw(
            Method::POST,
            "/v1/invitations",
            rest.owner(),
            &[("x-request-id", "rest-walk-1")],
            json!({
                "email": "alice@example.com",
                "role": "agent",
                "reporting_to_user_id": owner_id,
                "message": "Welcome!",
                "expiresIn": "86400s",
            })
            .to_string()
            .into_bytes(),
        )
        .await;
    assert_eq!(reply.headers["x-request-id"], "rest-walk-1");
    let invitation = reply.ok()["invitation"].clone();
    assert_eq!(invitation["status"], "INVITATION_STATUS_PENDING");
    assert_eq!(invitation["reportingToUserId"], owner_id.as_str());
    assert!(
        text(&invitation["expireTime"]).ends_with('Z'),
        "{invitation}"
    );
    let invitation_id = text(&invitation["id"]).to_owned();

    // The email's token, previewed and accepted without a bearer token.
    let token = rest.app.invitation_token(&invitation_id).await;
    let preview = rest
        .call(
            Method::POST,
            "/v1/invitations:preview",
            None,
            Some(json!({"token": token})),
        )
        .await
        .ok();
    assert_eq!(preview["workspaceName"], "Acme Support");
    assert_eq!(preview["inviterDisplayName"], "Olive Owner");
    let alice = rest
        .call(
            Method::POST,
            "/v1/invitations:accept",
            None,
            Some(json!({"token": token, "displayName": "Alice", "password": "alice password 1"})),
        )
        .await
        .ok()["user"]
        .clone();
    assert_eq!(alice["status"], "USER_STATUS_ACTIVE");
    let alice_id = text(&alice["id"]).to_owned();

    // Two more members-to-be; one is resent, then revoked.
    let bob = rest.invite("bob@example.com", "supervisor").await;
    let bob_id = text(&bob["id"]).to_owned();
    let resent = rest
        .call(
            Method::POST,
            &format!("/v1/invitations/{bob_id}:resend"),
            rest.owner(),
            Some(json!({})),
        )
        .await
        .ok();
    assert_eq!(resent["invitation"]["resendCount"], 1);
    let pending = rest
        .call(
            Method::GET,
            "/v1/invitations?status=INVITATION_STATUS_PENDING&email=BOB@example.com",
            rest.owner(),
            None,
        )
        .await
        .ok();
    assert_eq!(pending["invitations"][0]["id"], bob_id.as_str());
    let revoked = rest
        .call(
            Method::POST,
            &format!("/v1/invitations/{bob_id}:revoke"),
            rest.owner(),
            None,
        )
        .await
        .ok();
    assert_eq!(revoked["invitation"]["status"], "INVITATION_STATUS_REVOKED");

    // The users list: filters from the query string, two pages by token.
    let first = rest
        .call(
            Method::GET,
            "/v1/users?pageSize=1&status=USER_STATUS_ACTIVE",
            rest.owner(),
            None,
        )
        .await
        .ok();
    assert_eq!(first["users"].as_array().unwrap().len(), 1);
    assert_eq!(first["totalSize"], 2);
    let page_token = text(&first["nextPageToken"]);
    let second = rest
        .call(
            Method::GET,
            &format!("/v1/users?pageSize=1&status=USER_STATUS_ACTIVE&page_token={page_token}"),
            rest.owner(),
            None,
        )
        .await
        .ok();
    assert_eq!(second["users"][0]["id"], alice_id.as_str());
    assert_eq!(second["nextPageToken"], "", "the last page: {second}");
    let agents = rest
        .call(
            Method::GET,
            &format!("/v1/users?role=agent&reportingToUserId={owner_id}"),
            rest.owner(),
            None,
        )
        .await
        .ok();
    assert_eq!(agents["users"].as_array().unwrap().len(), 1);
    assert_eq!(agents["users"][0]["id"], alice_id.as_str());

    // Manage through the `:manage` verb; the change reads back.
    let managed = rest
        .call(
            Method::POST,
            &format!("/v1/users/{alice_id}:manage"),
            rest.owner(),
            Some(json!({"changeRole": {"role": "supervisor"}})),
        )
        .await
        .ok();
    assert_eq!(managed["user"]["role"], "supervisor");
    let read = rest
        .call(
            Method::GET,
            &format!("/v1/users/{alice_id}"),
            rest.owner(),
            None,
        )
        .await
        .ok();
    assert_eq!(read["user"]["role"], "supervisor");

    // Roles: create, list, check, delete.
    let role = rest
        .call(
            Method::POST,
            "/v1/roles",
            rest.owner(),
            Some(json!({"name": "reviewer", "permissions": ["users.read", "reports.read"]})),
        )
        .await
        .ok();
    assert_eq!(role["role"]["name"], "reviewer");
    let roles = rest
        .call(Method::GET, "/v1/roles", rest.owner(), None)
        .await
        .ok();
    assert!(roles.to_string().contains("\"reviewer\""), "{roles}");
    let catalog = rest
        .call(Method::GET, "/v1/permissions", rest.owner(), None)
        .await
        .ok();
    assert!(catalog.to_string().contains("users.invite"), "{catalog}");
    let check = rest
        .call(
            Method::GET,
            &format!("/v1/users/{alice_id}:checkPermission?permission=users.read"),
            rest.owner(),
            None,
        )
        .await
        .ok();
    assert_eq!(check["allowed"], true);
    rest.call(Method::DELETE, "/v1/roles/reviewer", rest.owner(), None)
        .await
        .ok();

    // A named body (`body: "settings"`).
    let settings = rest
        .call(
            Method::PUT,
            "/v1/workspace/settings",
            rest.owner(),
            Some(json!({"seatLimit": 50, "allowedEmailDomains": ["example.com"]})),
        )
        .await
        .ok();
    assert_eq!(settings["settings"]["seatLimit"], 50);

    // Alice signs in and calls with the token she got.
    let signed_in = rest
        .call(
            Method::POST,
            "/v1/auth:signIn",
            None,
            Some(json!({
                "workspaceId": rest.app.workspace_id.to_string(),
                "email": "ALICE@example.com",
                "password": "alice password 1",
            })),
        )
        .await
        .ok();
    assert_eq!(signed_in["tokenType"], "Bearer");
    let access_token = text(&signed_in["accessToken"]).to_owned();
    let own = rest
        .call(
            Method::GET,
            &format!("/v1/users/{alice_id}"),
            Some(&access_token),
            None,
        )
        .await
        .ok();
    assert_eq!(own["user"]["email"], "alice@example.com");

    // The activity log, filtered by the query string.
    let activity = rest
        .call(
            Method::GET,
            &format!("/v1/activity?targetUserId={alice_id}&action=user.role_changed"),
            rest.owner(),
            None,
        )
        .await
        .ok();
    assert_eq!(activity["entries"].as_array().unwrap().len(), 1);

    // The document the routes come from is served too.
    let document = rest
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .ok();
    assert_eq!(document["openapi"], "3.1.0");
}

#[tokio::test]
async fn errors_are_google_rpc_statuses_under_their_http_status() {
    let rest = Rest::spawn().await;

    // 409: a pending invitation for the email.
    let invitation = rest.invite("dup@example.com", "agent").await;
    let reply = rest
        .call(
            Method::POST,
            "/v1/invitations",
            rest.owner(),
            Some(json!({"email": "DUP@example.com", "role": "agent"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{:#}", reply.json);
    assert_eq!(reply.json["code"], 6);
    assert_eq!(reply.reason(), "INVITATION_PENDING");
    assert_eq!(
        reply.detail("google.rpc.ErrorInfo")["domain"],
        "users.wowchat.dev"
    );

    // 429: resent within the cooldown, with Retry-After and RetryInfo.
    let id = text(&invitation["id"]);
    let reply = rest
        .call(
            Method::POST,
            &format!("/v1/invitations/{id}:resend"),
            rest.owner(),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{:#}",
        reply.json
    );
    let retry_after: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(
        text(&reply.detail("google.rpc.RetryInfo")["retryDelay"]).ends_with('s'),
        "{:#}",
        reply.json
    );

    // 400: field violations, and a message that says what is wrong.
    let reply = rest
        .call(
            Method::POST,
            "/v1/invitations",
            rest.owner(),
            Some(json!({"email": "not an email", "role": "agent"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:#}", reply.json);
    assert_eq!(reply.json["code"], 3);
    let violations = &reply.detail("google.rpc.BadRequest")["fieldViolations"];
    assert_eq!(violations[0]["field"], "email", "{:#}", reply.json);
    assert!(
        text(&reply.json["message"]).starts_with("email: "),
        "{:#}",
        reply.json
    );

    // 400 from the gateway itself: not JSON, an unknown parameter, a bad enum.
    let reply = rest
        .raw(
            Method::POST,
            "/v1/invitations",
            rest.owner(),
            &[],
            b"{oops".to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.reason(), "INVALID_REQUEST");
    let reply = rest
        .call(Method::GET, "/v1/users?colour=blue", rest.owner(), None)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.detail("google.rpc.BadRequest")["fieldViolations"][0]["field"],
        "colour"
    );
    let reply = rest
        .call(Method::GET, "/v1/users?status=SLEEPING", rest.owner(), None)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:#}", reply.json);

    // 401 without a token, 403 for an agent who may not invite.
    let reply = rest.call(Method::GET, "/v1/users", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:#}", reply.json);
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
    assert_eq!(reply.json["code"], 16);
    let (_, agent) = rest.app.member("agent@example.com", "agent").await;
    let reply = rest
        .call(
            Method::POST,
            "/v1/invitations",
            Some(&agent),
            Some(json!({"email": "x@example.com", "role": "agent"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{:#}", reply.json);
    assert_eq!(reply.json["code"], 7);

    // 404: an unknown user, an unknown route; 405: a known path, another method.
    let reply = rest
        .call(
            Method::GET,
            &format!("/v1/users/{}", uuid::Uuid::new_v4()),
            rest.owner(),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{:#}", reply.json);
    assert_eq!(reply.json["code"], 5);
    let reply = rest
        .call(Method::GET, "/v1/nothing", rest.owner(), None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = rest
        .call(Method::DELETE, "/v1/users", rest.owner(), None)
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET");

    // 413: a body over the limit.
    let huge = json!({"email": "big@example.com", "role": "agent", "message": "x".repeat(70_000)});
    let reply = rest
        .call(Method::POST, "/v1/invitations", rest.owner(), Some(huge))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{:#}",
        reply.json
    );
}

#[tokio::test]
async fn sign_in_limits_count_the_gateways_client_not_the_gateway() {
    // One attempt per address and minute: the gateway's client uses it up;
    // a direct caller claiming another address without the key does not
    // get around it, nor is it blamed for the gateway's client.
    let rest = Rest::spawn_with(|settings| settings.sign_in_per_address_per_minute = 1).await;
    let attempt = json!({
        "workspaceId": rest.app.workspace_id.to_string(),
        "email": "owner@example.com",
        "password": "wrong password here",
    });
    let first = rest
        .call(Method::POST, "/v1/auth:signIn", None, Some(attempt.clone()))
        .await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED, "{:#}", first.json);
    let second = rest
        .call(Method::POST, "/v1/auth:signIn", None, Some(attempt))
        .await;
    assert_eq!(
        second.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{:#}",
        second.json
    );
    assert_eq!(second.reason(), "SIGN_IN_RATE_LIMITED");
    assert!(second.headers.contains_key("retry-after"));

    // Over gRPC, from the same host but not through the gateway: the
    // service's own peer address, with its own budget.
    let mut auth = rest.app.auth().await;
    let mut request = tonic::Request::new(wowchat_users_api::v1::SignInRequest {
        workspace_id: rest.app.workspace_id.to_string(),
        email: "owner@example.com".into(),
        password: wowchat_users_testkit::PASSWORD.into(),
    });
    request
        .metadata_mut()
        .insert("x-wowchat-client-address", "127.0.0.1".parse().unwrap());
    let direct = tokio::time::timeout(Duration::from_secs(30), auth.sign_in(request))
        .await
        .unwrap();
    assert!(direct.is_ok(), "{direct:?}");
}

/// What grpcurl does with an error: asks reflection for the files that
/// define each detail's type, then prints the details as JSON. Here the
/// same steps run with prost-reflect, on a real refusal.
#[tokio::test]
async fn reflection_describes_the_error_details_so_grpc_clients_decode_them() {
    use prost::Message;
    use prost_reflect::{DescriptorPool, DynamicMessage};
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };

    let app = TestApp::spawn().await;
    let refusal = app
        .try_invite(wowchat_users_testkit::invitation_request(
            "not an email",
            "agent",
        ))
        .await
        .expect_err("an invalid email is refused");
    assert_eq!(refusal.code(), tonic::Code::InvalidArgument);
    let status = tonic_types::pb::Status::decode(refusal.details()).expect("google.rpc.Status");

    // Each detail's file from reflection, then the files it imports, by name.
    let mut reflection = ServerReflectionClient::new(app.channel().await);
    let mut ask = async |request: MessageRequest| {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        let mut responses = reflection
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response = responses.message().await.unwrap().expect("one response");
        let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
            panic!("{:?}", response.message_response);
        };
        files
            .file_descriptor_proto
            .iter()
            .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
            .collect::<Vec<_>>()
    };
    let mut files = std::collections::BTreeMap::new();
    let mut symbols = Vec::new();
    for detail in &status.details {
        let symbol = detail
            .type_url
            .strip_prefix("type.googleapis.com/")
            .expect("a type URL of googleapis.com");
        symbols.push(symbol);
        let mut wanted = ask(MessageRequest::FileContainingSymbol(symbol.into())).await;
        while let Some(file) = wanted.pop() {
            for import in &file.dependency {
                if !files.contains_key(import) {
                    wanted.extend(ask(MessageRequest::FileByFilename(import.clone())).await);
                }
            }
            files.insert(file.name().to_owned(), file);
        }
    }
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(files.into_values())
        .expect("reflection's files describe every detail");
    let shown: Vec<(String, serde_json::Value)> = status
        .details
        .iter()
        .zip(symbols)
        .map(|(detail, symbol)| {
            let descriptor = pool
                .get_message_by_name(symbol)
                .unwrap_or_else(|| panic!("reflection describes {symbol}"));
            let message = DynamicMessage::decode(descriptor, detail.value.as_slice()).unwrap();
            (symbol.to_owned(), serde_json::to_value(&message).unwrap())
        })
        .collect();

    let detail = |name: &str| {
        shown
            .iter()
            .find(|(symbol, _)| symbol == name)
            .map(|(_, json)| json.clone())
            .unwrap_or_else(|| panic!("no {name} among {shown:?}"))
    };
    assert_eq!(
        detail("google.rpc.ErrorInfo")["reason"],
        "INVALID_ARGUMENT",
        "{shown:?}"
    );
    assert_eq!(
        detail("google.rpc.BadRequest")["fieldViolations"][0]["field"],
        "email",
        "{shown:?}"
    );
}

/// Another service verifies a token with nothing but the published JWKS.
#[tokio::test]
async fn the_jwks_endpoint_publishes_the_key_tokens_are_verified_with() {
    let rest = Rest::spawn().await;
    let reply = rest
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .ok();
    let keys = reply["keys"].as_array().expect("a JWKS");
    assert_eq!(keys.len(), 1, "{reply:#}");
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert!(key.get("n").is_none(), "no RSA fields on an OKP key: {key}");

    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(reply.clone()).unwrap();
    let token = rest.owner().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = set
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the token's key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["wowchat"]);
    validation.set_issuer(&["wowchat-users"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("verified with the published key")
    .claims;
    assert_eq!(claims["sub"], rest.app.owner_id.to_string());
}
