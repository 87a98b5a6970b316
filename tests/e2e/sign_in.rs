//! Signing in: a token every RPC accepts, the same answer for every wrong
//! credential after the same hashing work, deactivated users refused,
//! attempts limited per email and per address, sign-ins in the activity log,
//! and users' last-active time in ListUsers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use tonic::{Request, Status};
use tonic_types::StatusExt;
use wowchat_users_api::v1 as proto;
use wowchat_users_server::config::Settings;
use wowchat_users_testkit::{
    PASSWORD, TestApp, authed, deactivate, expect_denied, expect_invalid_argument, expect_limited,
    expect_unauthenticated, retry_delay, violated_fields,
};

const OWNER_EMAIL: &str = "owner@example.com";

fn request(app: &TestApp, email: &str, password: &str) -> proto::SignInRequest {
    proto::SignInRequest {
        workspace_id: app.workspace_id.to_string(),
        email: email.into(),
        password: password.into(),
    }
}

async fn sign_in(
    app: &TestApp,
    email: &str,
    password: &str,
) -> Result<proto::SignInResponse, Status> {
    app.auth()
        .await
        .sign_in(request(app, email, password))
        .await
        .map(|r| r.into_inner())
}

/// Asserts a sign-in was refused as every wrong guess is, whatever was wrong.
#[track_caller]
fn wrong_credentials<T: std::fmt::Debug>(result: Result<T, Status>) -> Status {
    expect_unauthenticated(result, "INVALID_CREDENTIALS")
}

/// Asserts a sign-in was held back by a sign-in limit.
#[track_caller]
fn held_back<T: std::fmt::Debug>(result: Result<T, Status>) -> Status {
    expect_limited(result, "SIGN_IN_RATE_LIMITED")
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The token's claims, read without verifying (the server verifies).
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn signing_in_returns_a_token_that_works_and_expires_as_configured() {
    assert_eq!(Settings::defaults().access_token_ttl_secs, 15 * 60);
    let app = TestApp::spawn_with(|s| s.access_token_ttl_secs = 120).await;
    let (alice, _) = app.member("alice@example.com", "admin").await;

    // The email as typed in another case is the same member.
    let before = now_secs();
    let signed_in = sign_in(&app, "Alice@Example.COM", PASSWORD).await.unwrap();
    let after = now_secs();
    assert_eq!(signed_in.token_type, "Bearer");
    assert_eq!(signed_in.user.as_ref().unwrap().id, alice.id);

    // Valid for the configured 120 seconds, and the response says until when.
    let claims = claims(&signed_in.access_token);
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(exp - claims["iat"].as_i64().unwrap(), 120);
    assert!((before + 120..=after + 120).contains(&exp));
    assert_eq!(signed_in.expire_time.unwrap().seconds, exp);
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(
        claims["workspace_id"],
        app.workspace_id.to_string().as_str()
    );

    // The same kind of token every other RPC accepts.
    let users = app
        .as_(&signed_in.access_token)
        .users
        .list_users(proto::ListUsersRequest::default())
        .await
        .expect("the signed-in token works on ListUsers")
        .into_inner();
    assert_eq!(users.total_size, 2);
}

#[tokio::test]
async fn a_wrong_password_an_unknown_email_and_an_unknown_workspace_fail_the_same_way() {
    let app = TestApp::spawn().await;
    let wrong_password = sign_in(&app, OWNER_EMAIL, "not the password").await;
    let unknown_email = sign_in(&app, "nobody@example.com", PASSWORD).await;
    let unknown_workspace = app
        .auth()
        .await
        .sign_in(proto::SignInRequest {
            workspace_id: uuid::Uuid::now_v7().to_string(),
            ..request(&app, OWNER_EMAIL, PASSWORD)
        })
        .await;

    let statuses = [
        wrong_credentials(wrong_password),
        wrong_credentials(unknown_email),
        wrong_credentials(unknown_workspace),
    ];
    for status in &statuses[1..] {
        assert_eq!(status.message(), statuses[0].message());
        assert_eq!(
            format!("{:?}", status.get_details_error_info()),
            format!("{:?}", statuses[0].get_details_error_info())
        );
        assert_eq!(status.details(), statuses[0].details());
    }
    assert!(!statuses[0].message().contains("owner"));

    // Malformed input is refused as such, which reveals nothing about members.
    let status = expect_invalid_argument(
        app.auth()
            .await
            .sign_in(proto::SignInRequest {
                workspace_id: "not-a-uuid".into(),
                email: "not an email".into(),
                password: String::new(),
            })
            .await,
        "INVALID_ARGUMENT",
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["email", "password", "workspace_id"]);
}

#[tokio::test]
async fn an_unknown_email_costs_the_same_password_hashing_as_a_wrong_password() {
    let app = TestApp::spawn().await;
    let hasher = &app.state.hasher;

    let start = hasher.verifications();
    wrong_credentials(sign_in(&app, OWNER_EMAIL, "not the password").await);
    let wrong_password = hasher.verifications() - start;

    let start = hasher.verifications();
    wrong_credentials(sign_in(&app, "nobody@example.com", "not the password").await);
    let unknown_email = hasher.verifications() - start;

    let start = hasher.verifications();
    sign_in(&app, OWNER_EMAIL, PASSWORD).await.unwrap();
    let right_password = hasher.verifications() - start;

    assert_eq!(wrong_password, 1, "a wrong password is verified once");
    assert_eq!(
        unknown_email, wrong_password,
        "an unknown email is verified against the dummy hash just the same"
    );
    assert_eq!(right_password, 1);
}

#[tokio::test]
async fn a_deactivated_user_cannot_sign_in() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("agent@example.com", "agent").await;
    app.manage(&agent.id, deactivate("Left")).await.unwrap();

    // Without the password: the same answer as anyone else's wrong guess.
    let wrong = wrong_credentials(sign_in(&app, "agent@example.com", "not the password").await);
    let unknown = wrong_credentials(sign_in(&app, "nobody@example.com", "not the password").await);
    assert_eq!(wrong.message(), unknown.message());
    // With it: told why, and no token.
    expect_denied(
        sign_in(&app, "agent@example.com", PASSWORD).await,
        "USER_DEACTIVATED",
    );
    let user = app.user(&agent.id).await;
    assert_eq!(user.last_active_time, None);
    let signed_in: i64 = app.activity_count("user.signed_in").await;
    assert_eq!(signed_in, 0);
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_email_with_retry_info() {
    // The defaults: 5 failures a minute per email (from one address), 20
    // attempts per address.
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        wrong_credentials(sign_in(&app, OWNER_EMAIL, "not the password").await);
    }
    let hashed = app.state.hasher.verifications();
    // The sixth is refused, even with the right password and in another case,
    // without any hashing.
    let status = held_back(sign_in(&app, "OWNER@example.com", PASSWORD).await);
    let delay = retry_delay(&status);
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(12) + Duration::from_millis(1),
        "one attempt comes back every 12 seconds, got {delay:?}"
    );
    assert_eq!(app.state.hasher.verifications(), hashed);

    // Another email from the same address is not held back.
    let (_, _) = app.member("alice@example.com", "agent").await;
    sign_in(&app, "alice@example.com", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_client_address() {
    let app = TestApp::spawn_with(|s| {
        s.sign_in_per_address_per_minute = 3;
        s.sign_in_per_email_per_minute = 0;
    })
    .await;
    let mut client = app.auth().await;
    // Without a trusted proxy, x-forwarded-for is the caller's to invent and
    // is ignored: every attempt counts against the peer address.
    for n in 0..3 {
        let mut attempt = Request::new(request(&app, &format!("guess{n}@example.com"), PASSWORD));
        attempt.metadata_mut().insert(
            "x-forwarded-for",
            format!("198.51.100.{n}").parse().unwrap(),
        );
        wrong_credentials(client.sign_in(attempt).await);
    }
    let status = held_back(client.sign_in(request(&app, OWNER_EMAIL, PASSWORD)).await);
    let delay = retry_delay(&status);
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(21),
        "{delay:?}"
    );
}

/// SignIn as it reaches the service through proxies: with the
/// `x-forwarded-for` they built.
async fn sign_in_via(
    app: &TestApp,
    forwarded_for: &str,
    email: &str,
    password: &str,
) -> Result<proto::SignInResponse, Status> {
    let mut attempt = Request::new(request(app, email, password));
    attempt
        .metadata_mut()
        .insert("x-forwarded-for", forwarded_for.parse().unwrap());
    let response = app.auth().await.sign_in(attempt).await?;
    Ok(response.into_inner())
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_address_is_the_one_the_proxy_appended() {
    let app = TestApp::spawn_with(|s| {
        s.trust_forwarded_for = true;
        s.sign_in_per_address_per_minute = 2;
        s.sign_in_per_email_per_minute = 0;
    })
    .await;
    // The proxy appends the client it saw; what comes before is the client's
    // own invention, and rotating it buys nothing.
    for (n, email) in ["a@example.com", "b@example.com"].into_iter().enumerate() {
        wrong_credentials(
            sign_in_via(
                &app,
                &format!("198.51.100.{n}, 203.0.113.7"),
                email,
                "not the password",
            )
            .await,
        );
    }
    held_back(
        sign_in_via(
            &app,
            "198.51.100.9, 203.0.113.7",
            "c@example.com",
            "not the password",
        )
        .await,
    );
    // Another client behind the same proxy is not held back, whatever it claims.
    wrong_credentials(
        sign_in_via(
            &app,
            "203.0.113.7, 203.0.113.8",
            "c@example.com",
            "not the password",
        )
        .await,
    );
}

#[tokio::test]
async fn behind_two_trusted_proxies_the_client_is_two_hops_from_the_right() {
    let app = TestApp::spawn_with(|s| {
        s.trust_forwarded_for = true;
        s.trusted_proxy_hops = 2;
        s.sign_in_per_address_per_minute = 1;
        s.sign_in_per_email_per_minute = 0;
    })
    .await;
    // client → edge proxy (appends the client) → inner proxy (appends the
    // edge) → the service, whose peer is the inner proxy.
    wrong_credentials(
        sign_in_via(
            &app,
            "198.51.100.1, 203.0.113.7, 10.0.0.1",
            OWNER_EMAIL,
            "not the password",
        )
        .await,
    );
    held_back(
        sign_in_via(
            &app,
            "198.51.100.2, 203.0.113.7, 10.0.0.2",
            OWNER_EMAIL,
            "not the password",
        )
        .await,
    );
    sign_in_via(
        &app,
        "203.0.113.7, 203.0.113.9, 10.0.0.1",
        OWNER_EMAIL,
        PASSWORD,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn wrong_guesses_from_elsewhere_do_not_lock_the_owner_of_an_email_out() {
    let app = TestApp::spawn_with(|s| {
        s.trust_forwarded_for = true;
        s.sign_in_per_email_per_minute = 2;
        s.sign_in_per_address_per_minute = 0;
    })
    .await;
    let attacker = "198.51.100.66";
    let owner = "203.0.113.7";
    for _ in 0..2 {
        wrong_credentials(sign_in_via(&app, attacker, OWNER_EMAIL, "a wrong guess").await);
    }
    // The guesser is held back, even with the right password...
    held_back(sign_in_via(&app, attacker, OWNER_EMAIL, PASSWORD).await);
    // ...the owner is not, and right passwords never use up the limit.
    for _ in 0..5 {
        sign_in_via(&app, owner, OWNER_EMAIL, PASSWORD)
            .await
            .unwrap();
    }
    // The owner's own typos still count.
    for _ in 0..2 {
        wrong_credentials(sign_in_via(&app, owner, OWNER_EMAIL, "a typo in it").await);
    }
    held_back(sign_in_via(&app, owner, OWNER_EMAIL, PASSWORD).await);
}

#[tokio::test]
async fn signing_in_is_recorded_in_the_activity_log_and_published() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.member("alice@example.com", "agent").await;
    wrong_credentials(sign_in(&app, "alice@example.com", "not the password").await);
    let mut attempt = Request::new(request(&app, "alice@example.com", PASSWORD));
    attempt
        .metadata_mut()
        .insert("x-request-id", "sign-in-1".parse().unwrap());
    app.auth().await.sign_in(attempt).await.unwrap();

    let page = app
        .client()
        .await
        .list_activity(authed(
            &app.owner_token,
            proto::ListActivityRequest {
                action: "user.signed_in".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // Only the successful attempt.
    assert_eq!(page.entries.len(), 1);
    let entry = &page.entries[0];
    assert_eq!(entry.actor_user_id, alice.id);
    assert_eq!(entry.target_user_id, alice.id);
    assert_eq!(entry.request_id, "sign-in-1");

    // Its event, written in the same transaction.
    let events: i64 = app
        .count(
            "SELECT count(*) FROM outbox WHERE routing_key = 'user.signed_in' \
             AND message_type = 'wowchat.users.events.v1.UserChanged' AND request_id = 'sign-in-1'",
            &[],
        )
        .await;
    assert_eq!(events, 1);
}

#[tokio::test]
async fn signing_in_and_calling_set_the_last_active_time_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.member("alice@example.com", "agent").await;
    let (bob, bob_token) = app.member("bob@example.com", "admin").await;
    assert_eq!(alice.last_active_time, None);

    let signed_in = sign_in(&app, "alice@example.com", PASSWORD).await.unwrap();
    let user = signed_in.user.unwrap();
    let active = user.last_active_time.expect("set by signing in");
    assert!((active.seconds - now_secs()).abs() < 60);
    // Not a change of the user: the etag stays.
    assert_eq!(user.etag, alice.etag);
    assert_eq!(app.user(&alice.id).await.last_active_time, Some(active));

    // An authenticated call sets it too, once a minute at most.
    assert_eq!(app.user(&bob.id).await.last_active_time, None);
    app.as_(&bob_token)
        .users
        .list_users(proto::ListUsersRequest::default())
        .await
        .unwrap();
    let first = app
        .user(&bob.id)
        .await
        .last_active_time
        .expect("set by an authenticated call");
    app.as_(&bob_token)
        .users
        .list_users(proto::ListUsersRequest::default())
        .await
        .unwrap();
    assert_eq!(app.user(&bob.id).await.last_active_time, Some(first));
}

/// Every user ListUsers lists for `request`, `page_size` at a time.
async fn all_users(app: &TestApp, request: proto::ListUsersRequest) -> Vec<proto::User> {
    let pages = app.user_pages(request).await;
    pages.into_iter().flat_map(|page| page.users).collect()
}

fn ids(users: &[proto::User]) -> Vec<String> {
    users.iter().map(|u| u.id.clone()).collect()
}

#[tokio::test]
async fn users_are_listed_by_last_active_time_with_pagination_and_filtered_by_it() {
    let app = TestApp::spawn().await;
    let mut owner = app.as_owner().users;
    let mut members = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        members.push(app.member(&format!("{name}@example.com"), "agent").await.0);
    }
    // a an hour ago, b and c at the same moment ten minutes ago, d and e
    // never; the owner has been calling (now).
    let db = app.db().await;
    db.execute(
        "UPDATE users SET last_active_at = now() - interval '1 hour' WHERE id = $1::text::uuid",
        &[&members[0].id],
    )
    .await
    .unwrap();
    db.execute(
        "UPDATE users SET last_active_at = date_trunc('second', now()) - interval '10 minutes' \
         WHERE id IN ($1::text::uuid, $2::text::uuid)",
        &[&members[1].id, &members[2].id],
    )
    .await
    .unwrap();

    let by_activity = proto::ListUsersRequest {
        page_size: 2,
        order_by: "last_active_time desc".into(),
        ..Default::default()
    };
    let paged = all_users(&app, by_activity.clone()).await;
    // The expected order: latest first, ties and the never-active by id
    // descending, the never-active last.
    let mut expected = paged.clone();
    expected.sort_by(|x, y| {
        let key = |u: &proto::User| u.last_active_time.map(|t| (t.seconds, t.nanos));
        match (key(x), key(y)) {
            (Some(a), Some(b)) => b.cmp(&a),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| y.id.cmp(&x.id))
    });
    assert_eq!(ids(&paged), ids(&expected));
    assert_eq!(paged.len(), 6, "every user exactly once");
    assert_eq!(paged[0].id, app.owner_id.to_string());
    let tied = {
        let mut t = vec![members[1].id.clone(), members[2].id.clone()];
        t.sort();
        t.reverse();
        t
    };
    assert_eq!(ids(&paged[1..3]), tied);
    assert_eq!(paged[3].id, members[0].id);
    assert!(paged[4..].iter().all(|u| u.last_active_time.is_none()));
    // The same order in one page.
    let whole = app
        .list_users(proto::ListUsersRequest {
            page_size: 50,
            ..by_activity.clone()
        })
        .await;
    assert_eq!(ids(&whole.users), ids(&paged));

    // Active in the last half hour: the owner, b and c, one page at a time.
    let since = prost_types::Timestamp {
        seconds: now_secs() - 30 * 60,
        nanos: 0,
    };
    let recent = all_users(
        &app,
        proto::ListUsersRequest {
            page_size: 1,
            active_since: Some(since),
            ..by_activity.clone()
        },
    )
    .await;
    assert_eq!(ids(&recent), ids(&paged[..3]));
    let counted = app
        .list_users(proto::ListUsersRequest {
            active_since: Some(since),
            ..Default::default()
        })
        .await;
    assert_eq!(counted.total_size, 3);
    // The default order (creation) is unchanged and filters the same way.
    let mut created: Vec<String> = ids(&counted.users);
    assert_eq!(created[0], app.owner_id.to_string());
    created.sort();
    let mut recent_ids = ids(&recent);
    recent_ids.sort();
    assert_eq!(created, recent_ids);

    // A token continues only the order it was made in.
    let first = app.list_users(by_activity.clone()).await;
    expect_invalid_argument(
        owner
            .list_users(proto::ListUsersRequest {
                page_size: 2,
                page_token: first.next_page_token,
                ..Default::default()
            })
            .await,
        "INVALID_PAGE_TOKEN",
    );
    let status = expect_invalid_argument(
        owner
            .list_users(proto::ListUsersRequest {
                order_by: "email".into(),
                ..Default::default()
            })
            .await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["order_by"]);
}

/// Guessing one account from many addresses: 50 addresses, 5 wrong
/// passwords each, get the account's 30 an hour in all, then a clear
/// SIGN_IN_RATE_LIMITED with RetryInfo; the owner's usual address, which
/// signed in before, still signs in.
#[tokio::test]
async fn an_account_s_wrong_passwords_are_limited_across_addresses_but_not_for_its_owner() {
    let app = TestApp::spawn_with(|s| s.trust_forwarded_for = true).await;
    let owner_address = "127.0.0.60";
    sign_in_via(&app, owner_address, OWNER_EMAIL, PASSWORD)
        .await
        .unwrap();

    let (mut wrong, mut limited) = (0, 0);
    for n in 2..=51 {
        let address = format!("127.0.0.{n}");
        for _ in 0..5 {
            match sign_in_via(&app, &address, OWNER_EMAIL, "not the password").await {
                Err(status) if status.code() == tonic::Code::Unauthenticated => wrong += 1,
                result => {
                    let status = held_back(result);
                    assert!(retry_delay(&status) > Duration::ZERO);
                    limited += 1;
                }
            }
        }
    }
    assert_eq!(wrong, 30, "the account's budget, whatever the addresses");
    assert_eq!(limited, 250 - 30);

    // Its owner, from where they signed in before, is not locked out; a
    // new address is, even with the right password.
    sign_in_via(&app, owner_address, OWNER_EMAIL, PASSWORD)
        .await
        .unwrap();
    held_back(sign_in_via(&app, "127.0.0.99", OWNER_EMAIL, PASSWORD).await);
}
