//! SCIM 2.0 at `/scim/v2` through the real gateway and server: directory
//! tokens, the requests Okta and Microsoft Entra ID send (replayed from the
//! fixtures in `tests/fixtures/scim`, taken from their documentation), and
//! what each does to the member as the gRPC API sees it.

use serde_json::{Value as Json, json};
use tonic::codegen::http::{Method, StatusCode};
use wowchat_users_api::v1::{self as proto, directory_service_client::DirectoryServiceClient};
use wowchat_users_testkit::{
    authed, expect_denied, expect_error, expect_permission_missing, expect_unauthenticated,
    get_user_request,
};

use wowchat_users_server::config::Settings;

use crate::rest::{Reply, Rest};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scim");

/// A fixture's request body, with `{{name}}` placeholders replaced.
fn fixture(provider: &str, name: &str, values: &[(&str, &str)]) -> Json {
    let path = format!("{FIXTURES}/{provider}/{name}.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fixture: Json = serde_json::from_str(&text).unwrap();
    let mut body = fixture["body"].to_string();
    for (name, value) in values {
        body = body.replace(&format!("{{{{{name}}}}}"), value);
    }
    serde_json::from_str(&body).unwrap()
}

/// A workspace with a directory token, behind the gateway.
struct Directory {
    rest: Rest,
    secret: String,
    token_id: String,
}

impl Directory {
    async fn connect() -> Directory {
        Self::connect_with(|_| {}).await
    }

    async fn connect_with(adjust: impl FnOnce(&mut Settings)) -> Directory {
        let rest = Rest::spawn_with(adjust).await;
        let minted = rest
            .call(
                Method::POST,
                "/v1/directoryTokens",
                rest.owner(),
                Some(json!({"displayName": "Okta"})),
            )
            .await
            .ok();
        Directory {
            secret: minted["secret"].as_str().unwrap().to_owned(),
            token_id: minted["token"]["id"].as_str().unwrap().to_owned(),
            rest,
        }
    }

    async fn scim(&self, method: Method, path: &str, body: Option<Json>) -> Reply {
        self.scim_with(method, path, body, &[]).await
    }

    async fn scim_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Json>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.rest
            .raw(
                method,
                &format!("/scim/v2{path}"),
                Some(&self.secret),
                headers,
                body.into_bytes(),
            )
            .await
    }

    /// Creates a member by SCIM POST: its resource.
    async fn create(&self, body: Json) -> Json {
        let reply = self.scim(Method::POST, "/Users", Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.json);
        reply.json
    }

    async fn patch(&self, id: &str, operations: Json) -> Reply {
        self.scim(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": operations,
            })),
        )
        .await
    }

    /// The member as the gRPC API shows it to the owner.
    async fn member(&self, id: &str) -> proto::User {
        self.rest.app.user(id).await
    }
}

#[track_caller]
fn scim_error(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{:#}", reply.json);
    assert_eq!(
        reply.json["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{:#}",
        reply.json
    );
    assert_eq!(reply.json["status"], json!(status.as_u16().to_string()));
    assert_eq!(
        reply.headers["content-type"], "application/scim+json",
        "{:#}",
        reply.json
    );
}

#[tokio::test]
async fn okta_spec_test_steps_pass() {
    let directory = Directory::connect().await;
    let user_name = "Runscope300Hfluaklab151@example.com";
    let values = [
        ("randomUsername", user_name),
        ("randomEmail", user_name),
        ("randomGivenName", "Hflu"),
        ("randomFamilyName", "Aklab"),
    ];

    // Users with count=1: a ListResponse holding at most one.
    let listed = directory
        .scim(Method::GET, "/Users?count=1&startIndex=1", None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.json["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(listed.json["Resources"].as_array().unwrap().len(), 1);
    assert_eq!(listed.json["itemsPerPage"], json!(1));
    assert!(listed.json["totalResults"].as_i64().unwrap() >= 1);

    // An unknown userName: 200, no resources.
    let unknown = directory
        .scim(
            Method::GET,
            "/Users?filter=userName%20eq%20%22abcdefgh%40example.com%22",
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(unknown.json["totalResults"], json!(0));

    // Create with realistic values, then read it back.
    let created = directory
        .create(fixture("okta", "06-spec-create-user", &values))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["userName"], json!(user_name));
    assert_eq!(created["active"], json!(true));
    assert_eq!(created["name"]["givenName"], json!("Hflu"));
    let read = directory
        .scim(Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json["userName"], json!(user_name));
    assert_eq!(read.json["meta"]["location"], created["meta"]["location"]);
    let member = directory.member(id).await;
    assert_eq!(member.email, user_name);
    assert_eq!(member.display_name, "Hflu Aklab");
    assert_eq!(member.status(), proto::UserStatus::Active);
    assert_eq!(member.role, "agent");

    // The same user again: 409 uniqueness.
    let again = directory
        .scim(
            Method::POST,
            "/Users",
            Some(fixture(
                "okta",
                "08-spec-create-duplicate-user-409",
                &values,
            )),
        )
        .await;
    scim_error(&again, StatusCode::CONFLICT);
    assert_eq!(again.json["scimType"], json!("uniqueness"));

    // The upper-cased userName finds it.
    let upper = directory
        .scim(
            Method::GET,
            &format!(
                "/Users?filter=userName%20eq%20%22{}%22",
                user_name.to_uppercase().replace('@', "%40")
            ),
            None,
        )
        .await;
    assert_eq!(upper.json["totalResults"], json!(1), "{:#}", upper.json);
    assert_eq!(upper.json["Resources"][0]["id"], json!(id));

    // Unknown ids: 404 with an Error body.
    for unknown_id in ["010101001010101011001010101011", "00919288221112222"] {
        let missing = directory
            .scim(Method::GET, &format!("/Users/{unknown_id}"), None)
            .await;
        scim_error(&missing, StatusCode::NOT_FOUND);
    }

    // A bad token: 401 with an Error body and a Bearer challenge.
    let refused = directory
        .rest
        .raw(
            Method::GET,
            "/scim/v2/Users",
            Some("wcdir_not-a-real-token"),
            &[],
            Vec::new(),
        )
        .await;
    scim_error(&refused, StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    // No token at all, or a member's JWT: refused the same way.
    let anonymous = directory
        .rest
        .raw(Method::GET, "/scim/v2/Users", None, &[], Vec::new())
        .await;
    scim_error(&anonymous, StatusCode::UNAUTHORIZED);
    let jwt = directory
        .rest
        .raw(
            Method::GET,
            "/scim/v2/Users",
            directory.rest.owner(),
            &[],
            Vec::new(),
        )
        .await;
    scim_error(&jwt, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn okta_deactivates_by_patch_and_by_put_and_a_scim_user_signs_in_until_then() {
    let directory = Directory::connect().await;
    let created = directory
        .create(fixture("okta", "21-ref-create-user", &[]))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["externalId"], json!("00ujl29u0le5T6Aj10h7"));
    assert!(created.get("password").is_none(), "{created:#}");
    // Okta's `groups: []` and `locale` are accepted and ignored.
    assert!(created.get("locale").is_none());

    // The password Okta sent signs the member in.
    let app = &directory.rest.app;
    let signed_in = app
        .auth()
        .await
        .sign_in(proto::SignInRequest {
            workspace_id: app.workspace_id.to_string(),
            email: "test.user@okta.local".into(),
            password: "1mz050nq".into(),
        })
        .await
        .expect("the member signs in")
        .into_inner();
    let token = signed_in.access_token;
    let list_permissions = || async {
        app.roles()
            .await
            .list_permissions(authed(&token, proto::ListPermissionsRequest::default()))
            .await
    };
    list_permissions().await.expect("the member's token works");

    // Okta deactivates: the member's very next call is refused.
    let deactivated = directory
        .scim(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(fixture("okta", "27-ref-patch-deactivate-user", &[])),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK, "{:#}", deactivated.json);
    assert_eq!(deactivated.json["active"], json!(false));
    expect_denied(list_permissions().await, "USER_DEACTIVATED");
    assert_eq!(
        directory.member(&id).await.status(),
        proto::UserStatus::Deactivated
    );

    // Okta's PUT reactivates (active: true) and replaces the profile.
    let mut put = fixture("okta", "26-ref-put-user", &[]);
    put["active"] = json!(true);
    put["name"]["givenName"] = json!("Tess");
    let replaced = directory
        .scim(Method::PUT, &format!("/Users/{id}"), Some(put.clone()))
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{:#}", replaced.json);
    assert_eq!(replaced.json["active"], json!(true));
    assert_eq!(
        directory.member(&id).await.status(),
        proto::UserStatus::Active
    );
    // And deactivates by PUT with active: false.
    put["active"] = json!(false);
    let replaced = directory
        .scim(Method::PUT, &format!("/Users/{id}"), Some(put))
        .await;
    assert_eq!(replaced.json["active"], json!(false), "{:#}", replaced.json);
    assert_eq!(
        directory.member(&id).await.status(),
        proto::UserStatus::Deactivated
    );
}

#[tokio::test]
async fn entra_requests_and_quirks_set_the_member_as_asked() {
    let directory = Directory::connect().await;
    // Entra's create: roles: [], meta in the body, the enterprise schema named.
    let created = directory
        .create(fixture("entra", "01-create-user", &[]))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let version = created["meta"]["version"].clone();
    assert_eq!(
        directory.member(&id).await.email,
        "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
    );
    // Example 2's UPN-shaped userName, its nulls and the misspelt schema.
    let joy = directory
        .create(fixture("entra", "21-example2-provision-user", &[]))
        .await;
    let joy_id = joy["id"].as_str().unwrap().to_owned();
    assert_eq!(joy["userName"], json!("jyoung@testuser.com"));
    assert_eq!(directory.member(&joy_id).await.email, "jyoung@Contoso.com");

    // Lookups by userName and by externalId (quoted, as Entra sends it).
    let by_user_name = directory
        .scim(
            Method::GET,
            "/Users?filter=userName+eq+%22Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee%22",
            None,
        )
        .await;
    assert_eq!(by_user_name.json["totalResults"], json!(1));
    let by_external_id = directory
        .scim(
            Method::GET,
            "/Users?filter=externalId+eq+%22jyoung%22",
            None,
        )
        .await;
    assert_eq!(by_external_id.json["Resources"][0]["id"], json!(joy_id));
    let by_work_email = directory
        .scim(
            Method::GET,
            "/Users?filter=emails%5Btype+eq+%22work%22%5D.value+eq+%22JYOUNG%40contoso.com%22",
            None,
        )
        .await;
    assert_eq!(
        by_work_email.json["totalResults"],
        json!(1),
        "{:#}",
        by_work_email.json
    );

    // A periodic no-op: active "True" on an active member changes nothing.
    let noop = directory
        .patch(
            &id,
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
        )
        .await;
    assert_eq!(noop.status, StatusCode::OK, "{:#}", noop.json);
    assert_eq!(noop.json["meta"]["version"], version);

    // Entra without aadOptscim062020: "Replace" and "False" deactivate.
    let body = fixture("entra", "30-quirk-disable-user-no-flag", &[]);
    let disabled = directory
        .scim(Method::PATCH, &format!("/Users/{id}"), Some(body))
        .await;
    assert_eq!(disabled.json["active"], json!(false), "{:#}", disabled.json);
    assert_eq!(
        directory.member(&id).await.status(),
        proto::UserStatus::Deactivated
    );

    // The work address by its filtered path, and dotted keys without a path.
    let changed = directory
        .patch(
            &joy_id,
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "joy.young@contoso.com"},
                {"op": "Add", "value": {"name.givenName": "Joyce", "displayName": "Joyce Young"}},
            ]),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:#}", changed.json);
    let member = directory.member(&joy_id).await;
    assert_eq!(member.email, "joy.young@contoso.com");
    assert_eq!(member.display_name, "Joyce Young");
    assert_eq!(changed.json["name"]["givenName"], json!("Joyce"));

    // The manager by the enterprise path (a plain id, as Entra sends it).
    let owner_id = directory.rest.app.owner_id.to_string();
    let managed = directory
        .patch(
            &joy_id,
            json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": owner_id}]),
        )
        .await;
    assert_eq!(managed.status, StatusCode::OK, "{:#}", managed.json);
    assert_eq!(
        directory
            .member(&joy_id)
            .await
            .reporting_to_user_id
            .as_deref(),
        Some(owner_id.as_str())
    );
    // A cycle is refused with invalidValue, and changes nothing.
    let cycle = directory
        .patch(
            &owner_id,
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": joy_id}}]),
        )
        .await;
    scim_error(&cycle, StatusCode::BAD_REQUEST);
    assert_eq!(cycle.json["scimType"], json!("invalidValue"));
    assert_eq!(directory.member(&owner_id).await.reporting_to_user_id, None);

    // A stale If-Match: 412.
    let stale = directory
        .scim_with(
            Method::PATCH,
            &format!("/Users/{joy_id}"),
            Some(json!({"Operations": [{"op": "replace", "path": "displayName", "value": "J"}]})),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    scim_error(&stale, StatusCode::PRECONDITION_FAILED);

    // DELETE: deactivated and let go of; 404 to SCIM, still in the history.
    let deleted = directory
        .scim(Method::DELETE, &format!("/Users/{joy_id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    scim_error(
        &directory
            .scim(Method::GET, &format!("/Users/{joy_id}"), None)
            .await,
        StatusCode::NOT_FOUND,
    );
    scim_error(
        &directory
            .scim(Method::DELETE, &format!("/Users/{joy_id}"), None)
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(
        directory.member(&joy_id).await.status(),
        proto::UserStatus::Deactivated
    );
    let gone = directory
        .scim(
            Method::GET,
            "/Users?filter=externalId+eq+%22jyoung%22",
            None,
        )
        .await;
    assert_eq!(gone.json["totalResults"], json!(0));

    // The activity log names the token as the actor.
    let entries = directory
        .rest
        .app
        .activity(proto::ListActivityRequest {
            target_user_id: joy_id.clone(),
            ..Default::default()
        })
        .await;
    assert!(!entries.is_empty());
    for entry in &entries {
        assert_eq!(entry.actor_user_id, "", "{entry:?}");
        assert_eq!(entry.actor_directory_token_id, directory.token_id);
    }
    assert!(entries.iter().any(|e| e.action == "user.provisioned"));
    assert!(entries.iter().any(|e| e.action == "user.deactivated"));

    // Provisioned again (the person came back, with the address they had
    // last): the same member, taken over and active, with what was sent.
    let mut again = fixture("entra", "21-example2-provision-user", &[]);
    again["emails"][0]["value"] = json!("joy.young@contoso.com");
    let back = directory.create(again).await;
    assert_eq!(back["id"], json!(joy_id));
    assert_eq!(back["userName"], json!("jyoung@testuser.com"));
    let member = directory.member(&joy_id).await;
    assert_eq!(member.status(), proto::UserStatus::Active);
    assert_eq!(member.email, "joy.young@contoso.com");
}

#[tokio::test]
async fn directory_tokens_are_for_owners_shown_once_and_revocable() {
    let directory = Directory::connect().await;
    let app = &directory.rest.app;
    let mut tokens = DirectoryServiceClient::new(app.channel().await);

    // Only owners (scim.manage) mint.
    let (_admin, admin_token) = app.member("admin@example.com", "admin").await;
    expect_permission_missing(
        tokens
            .create_directory_token(authed(
                &admin_token,
                proto::CreateDirectoryTokenRequest {
                    display_name: "Entra".into(),
                },
            ))
            .await,
    );
    // A second token works beside the first: rotation without downtime.
    let second = tokens
        .create_directory_token(authed(
            &app.owner_token,
            proto::CreateDirectoryTokenRequest {
                display_name: "Okta (next)".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let listed = tokens
        .list_directory_tokens(authed(
            &app.owner_token,
            proto::ListDirectoryTokensRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.tokens.len(), 2);
    assert_eq!(listed.total_size, 2);
    // A page at a time, newest first.
    let first_page = tokens
        .list_directory_tokens(authed(
            &app.owner_token,
            proto::ListDirectoryTokensRequest {
                page_size: 1,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.tokens[0].id, listed.tokens[0].id);
    let second_page = tokens
        .list_directory_tokens(authed(
            &app.owner_token,
            proto::ListDirectoryTokensRequest {
                page_size: 1,
                page_token: first_page.next_page_token,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.tokens[0].id, listed.tokens[1].id);
    assert!(second_page.next_page_token.is_empty());
    let listed_text = format!("{listed:?}");
    assert!(!listed_text.contains(&directory.secret));
    assert!(!listed_text.contains(&second.secret));

    // Revoked: refused on the next call; the other token still works.
    tokens
        .revoke_directory_token(authed(
            &app.owner_token,
            proto::RevokeDirectoryTokenRequest {
                token_id: directory.token_id.clone(),
            },
        ))
        .await
        .unwrap();
    scim_error(
        &directory.scim(Method::GET, "/Users", None).await,
        StatusCode::UNAUTHORIZED,
    );
    let with_second = directory
        .rest
        .raw(
            Method::GET,
            "/scim/v2/Users",
            Some(&second.secret),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(with_second.status, StatusCode::OK);

    // A directory token works for SCIM only.
    expect_error(
        app.as_(&second.secret)
            .users
            .get_user(get_user_request(&app.owner_id.to_string()))
            .await,
        tonic::Code::Unauthenticated,
        "TOKEN_INVALID",
    );
}

#[tokio::test]
async fn a_directory_obeys_the_workspace_rules_and_sees_no_other_workspace() {
    let directory = Directory::connect().await;
    let app = &directory.rest.app;
    let user = |name: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "active": true,
        })
    };

    // Allowed email domains.
    app.update_settings(0, &["example.com"]).await.unwrap();
    let refused = directory
        .scim(Method::POST, "/Users", Some(user("bob@elsewhere.test")))
        .await;
    scim_error(&refused, StatusCode::BAD_REQUEST);
    // No email at all: the userName is no address and no emails came.
    let no_email = directory
        .scim(Method::POST, "/Users", Some(user("bob")))
        .await;
    scim_error(&no_email, StatusCode::BAD_REQUEST);

    // The seat limit: the owner holds the one seat.
    app.update_settings(1, &[]).await.unwrap();
    let full = directory
        .scim(Method::POST, "/Users", Some(user("carol@example.com")))
        .await;
    scim_error(&full, StatusCode::BAD_REQUEST);
    assert!(
        full.json["detail"]
            .as_str()
            .unwrap()
            .contains("SEAT_LIMIT_REACHED")
    );
    app.update_settings(0, &[]).await.unwrap();

    // The last active owner stays.
    let owner_id = app.owner_id.to_string();
    let last_owner = directory
        .patch(
            &owner_id,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    scim_error(&last_owner, StatusCode::BAD_REQUEST);
    assert_eq!(
        directory.member(&owner_id).await.status(),
        proto::UserStatus::Active
    );

    // Another workspace's members: 404 by id, nothing by email.
    let other = app.other_workspace().await;
    let by_id = directory
        .scim(Method::GET, &format!("/Users/{}", other.owner_id), None)
        .await;
    scim_error(&by_id, StatusCode::NOT_FOUND);
    let by_email = directory
        .scim(
            Method::GET,
            "/Users?filter=userName+eq+%22other%40example.com%22",
            None,
        )
        .await;
    assert_eq!(by_email.json["totalResults"], json!(0));
    scim_error(
        &directory
            .scim(Method::DELETE, &format!("/Users/{}", other.owner_id), None)
            .await,
        StatusCode::NOT_FOUND,
    );

    // A member the directory holds: the directory owns its name and status.
    let dave = directory
        .create(json!({"userName": "dave@example.com", "displayName": "Dave"}))
        .await;
    let dave_id = dave["id"].as_str().unwrap();
    let refused = app
        .manage(
            dave_id,
            proto::manage_user_request::Action::Deactivate(
                proto::manage_user_request::Deactivate {
                    reason: "left".into(),
                },
            ),
        )
        .await;
    let status = expect_error(
        refused,
        tonic::Code::FailedPrecondition,
        "USER_MANAGED_BY_DIRECTORY",
    );
    assert!(
        status.message().contains("display_name, status"),
        "{status:?}"
    );
    // Its role stays the workspace's to change.
    app.manage(
        dave_id,
        proto::manage_user_request::Action::ChangeRole(proto::manage_user_request::ChangeRole {
            role: "supervisor".into(),
        }),
    )
    .await
    .expect("the role is not the directory's");

    // Bad filters are invalidFilter; a body over the limit is a SCIM 413.
    let bad = directory
        .scim(
            Method::GET,
            "/Users?filter=userName+eq+%22a%22+or+userName+eq+%22b%22",
            None,
        )
        .await;
    scim_error(&bad, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json["scimType"], json!("invalidFilter"));
    let huge = directory
        .scim(
            Method::POST,
            "/Users",
            Some(json!({"userName": "x".repeat(70_000)})),
        )
        .await;
    scim_error(&huge, StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown paths and methods: SCIM errors too.
    scim_error(
        &directory.scim(Method::GET, "/Nothing", None).await,
        StatusCode::NOT_FOUND,
    );
    scim_error(
        &directory.scim(Method::DELETE, "/Users", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
    );
}

#[tokio::test]
async fn a_directory_token_over_its_rate_gets_429_with_retry_after() {
    let directory = Directory::connect_with(|settings| settings.scim_requests_per_minute = 3).await;
    for _ in 0..3 {
        let reply = directory.scim(Method::GET, "/Users?count=1", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.json);
    }
    let limited = directory.scim(Method::GET, "/Users?count=1", None).await;
    scim_error(&limited, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json["scimType"], json!("tooMany"));
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    // Another token of the workspace has its own budget.
    let other = directory
        .rest
        .call(
            Method::POST,
            "/v1/directoryTokens",
            directory.rest.owner(),
            Some(json!({"displayName": "Entra"})),
        )
        .await
        .ok();
    let reply = directory
        .rest
        .raw(
            Method::GET,
            "/scim/v2/Users?count=1",
            other["secret"].as_str(),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// A fixture's body with the documentation's example ids replaced by ours.
fn fixture_with_ids(provider: &str, name: &str, ids: &[(&str, &str)]) -> Json {
    let mut text = fixture(provider, name, &[]).to_string();
    for (example, ours) in ids {
        text = text.replace(example, ours);
    }
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn groups_named_as_roles_set_their_members_roles_as_okta_and_entra_change_them() {
    let directory = Directory::connect().await;
    let create = |name: &str| json!({"userName": format!("{name}@example.com"), "active": true});
    let ann = directory.create(create("ann")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = directory.create(create("bob")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(directory.member(&ann).await.role, "agent");

    // Okta's group push: an empty group, then members by its PATCH.
    let mut body = fixture("okta", "28-ref-create-group", &[]);
    body["displayName"] = json!("Supervisor");
    let created = directory.scim(Method::POST, "/Groups", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.json);
    let group = created.json["id"].as_str().unwrap().to_owned();
    let patched = directory
        .scim(
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(fixture_with_ids(
                "okta",
                "32-ref-patch-group-members-remove-add",
                &[("23a35c27-23d3-4c03-b4c5-6443c09e7173", &ann)],
            )),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:#}", patched.json);
    assert_eq!(patched.json["members"][0]["value"], json!(ann));
    assert_eq!(directory.member(&ann).await.role, "supervisor");

    // Entra adds Bob (`"$ref": null`), then removes Ann by a value list:
    // only Ann leaves, and she gets the default role back.
    let added = directory
        .scim(
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(fixture_with_ids(
                "entra",
                "14-patch-group-add-member",
                &[("f648f8d5ea4e4cd38e9c", &bob)],
            )),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{:#}", added.json);
    assert_eq!(directory.member(&bob).await.role, "supervisor");
    let removed = directory
        .scim(
            Method::PATCH,
            &format!("/Groups/{group}"),
            Some(fixture_with_ids(
                "entra",
                "36-quirk-remove-member-no-flag",
                &[("u1091", &ann)],
            )),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:#}", removed.json);
    assert_eq!(removed.json["members"].as_array().unwrap().len(), 1);
    assert_eq!(directory.member(&ann).await.role, "agent");
    assert_eq!(directory.member(&bob).await.role, "supervisor");

    // Looked up by name (ignoring case), as Okta and Entra do; GET /Groups.
    let found = directory
        .scim(
            Method::GET,
            "/Groups?filter=displayName+eq+%22supervisor%22",
            None,
        )
        .await;
    assert_eq!(found.json["totalResults"], json!(1), "{:#}", found.json);
    let all = directory.scim(Method::GET, "/Groups", None).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.json["Resources"][0]["id"], json!(group));

    // A group named as no role only holds its members.
    let team = directory
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Support Team", "members": [{"value": ann}]})),
        )
        .await;
    assert_eq!(team.status, StatusCode::CREATED, "{:#}", team.json);
    assert_eq!(directory.member(&ann).await.role, "agent");

    // The last active owner stays: a group that would demote them is refused.
    let owner = directory.rest.app.owner_id.to_string();
    let demote = directory
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "agent", "members": [{"value": owner}]})),
        )
        .await;
    scim_error(&demote, StatusCode::BAD_REQUEST);
    assert_eq!(directory.member(&owner).await.role, "owner");
    // Another workspace's member is no member.
    let other = directory.rest.app.other_workspace().await;
    let foreign = directory
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Foreign", "members": [{"value": other.owner_id}]})),
        )
        .await;
    scim_error(&foreign, StatusCode::BAD_REQUEST);
    // A name another group has: 409.
    let twice = directory
        .scim(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "SUPERVISOR"})),
        )
        .await;
    scim_error(&twice, StatusCode::CONFLICT);

    // Deleting the group: its members leave it, Bob back to the default role.
    let deleted = directory
        .scim(Method::DELETE, &format!("/Groups/{group}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(directory.member(&bob).await.role, "agent");
    scim_error(
        &directory
            .scim(Method::GET, &format!("/Groups/{group}"), None)
            .await,
        StatusCode::NOT_FOUND,
    );

    // Each role change is the directory's, in the activity log.
    let changes = directory
        .rest
        .app
        .activity(proto::ListActivityRequest {
            target_user_id: bob.clone(),
            action: "user.role_changed".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes
            .iter()
            .all(|e| e.actor_directory_token_id == directory.token_id)
    );
}

#[tokio::test]
async fn the_workspace_chooses_the_role_its_directory_gives_by_default() {
    let directory = Directory::connect().await;
    let app = &directory.rest.app;
    let settings = |role: &str| proto::UpdateWorkspaceSettingsRequest {
        settings: Some(proto::WorkspaceSettings {
            directory_default_role: role.into(),
            ..Default::default()
        }),
    };
    let refused = app
        .client()
        .await
        .update_workspace_settings(authed(&app.owner_token, settings("no-such-role")))
        .await;
    expect_error(refused, tonic::Code::InvalidArgument, "ROLE_NOT_FOUND");
    let updated = app
        .client()
        .await
        .update_workspace_settings(authed(&app.owner_token, settings("supervisor")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        updated.settings.unwrap().directory_default_role,
        "supervisor"
    );
    let created = directory
        .create(json!({"userName": "sue@example.com"}))
        .await;
    let sue = created["id"].as_str().unwrap();
    assert_eq!(directory.member(sue).await.role, "supervisor");
}

#[tokio::test]
async fn a_scim_deactivation_and_a_revocation_hold_at_once_on_every_replica() {
    let directory = Directory::connect().await;
    let app = &directory.rest.app;
    let replica = app.spawn_replica(|_| {}).await;
    let created = directory
        .create(json!({"userName": "rita@example.com", "password": "rita password 1"}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    // Signed in on the replica, whose caller cache then holds her.
    let token = replica
        .auth()
        .await
        .sign_in(proto::SignInRequest {
            workspace_id: app.workspace_id.to_string(),
            email: "rita@example.com".into(),
            password: "rita password 1".into(),
        })
        .await
        .expect("she signs in on the replica")
        .into_inner()
        .access_token;
    let on_replica = || async {
        replica
            .roles()
            .await
            .list_permissions(authed(&token, proto::ListPermissionsRequest::default()))
            .await
    };
    on_replica().await.expect("her token works on the replica");
    on_replica().await.expect("and again, from its cache");

    // Deactivated by SCIM through the gateway of the first server: her next
    // call on the replica is refused.
    let reply = directory
        .patch(
            &id,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.json);
    expect_denied(on_replica().await, "USER_DEACTIVATED");

    // The directory token works on the replica until it is revoked on the
    // first server; then its next call there is refused.
    let mut replica_directory = DirectoryServiceClient::new(replica.channel().await);
    let get = proto::GetDirectoryUserRequest {
        user_id: id.clone(),
    };
    replica_directory
        .get_directory_user(authed(&directory.secret, get.clone()))
        .await
        .expect("the token works on the replica");
    directory
        .rest
        .call(
            Method::POST,
            &format!("/v1/directoryTokens/{}:revoke", directory.token_id),
            directory.rest.owner(),
            Some(json!({})),
        )
        .await
        .ok();
    expect_unauthenticated(
        replica_directory
            .get_directory_user(authed(&directory.secret, get))
            .await,
        "TOKEN_INVALID",
    );
}
