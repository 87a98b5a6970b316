//! Bearer tokens: missing, malformed, expired, wrongly signed or naming
//! nobody all fail with UNAUTHENTICATED before anything else happens.

use std::time::Duration;

use wowchat_users_api::v1 as proto;
use wowchat_users_server::auth::jwt::Claims;
use wowchat_users_testkit::{TestApp, authed, expect_unauthenticated};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(app: &TestApp) -> Claims {
    Claims {
        sub: app.owner_id.to_string(),
        workspace_id: app.workspace_id.to_string(),
        iss: "wowchat-users".into(),
        aud: "wowchat".into(),
        iat: now(),
        exp: now() + 600,
    }
}

async fn list_users_with(
    app: &TestApp,
    token: &str,
) -> Result<tonic::Response<proto::ListUsersResponse>, tonic::Status> {
    app.client()
        .await
        .list_users(authed(token, proto::ListUsersRequest::default()))
        .await
}

#[tokio::test]
async fn a_call_without_a_bearer_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    expect_unauthenticated(
        client.list_users(proto::ListUsersRequest::default()).await,
        "TOKEN_MISSING",
    );
    let mut basic = tonic::Request::new(proto::ListUsersRequest::default());
    basic.metadata_mut().insert(
        "authorization",
        "Basic b3duZXI6cGFzc3dvcmQ=".parse().unwrap(),
    );
    expect_unauthenticated(client.list_users(basic).await, "TOKEN_MISSING");
    // Invalid input from an unauthenticated caller is refused as unauthenticated.
    expect_unauthenticated(
        client
            .invite_user(proto::InviteUserRequest::default())
            .await,
        "TOKEN_MISSING",
    );
}

#[tokio::test]
async fn malformed_expired_and_wrongly_signed_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let signer = &app.state.keys;

    for garbage in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        &"x".repeat(8000),
    ] {
        expect_unauthenticated(list_users_with(&app, garbage).await, "TOKEN_INVALID");
    }

    // "alg": "none" with valid-looking claims.
    let unsigned = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        base64_url(&serde_json::to_vec(&claims(&app)).unwrap())
    );
    expect_unauthenticated(list_users_with(&app, &unsigned).await, "TOKEN_INVALID");

    let expired = signer
        .sign(&Claims {
            iat: now() - 7200,
            exp: now() - 3600,
            ..claims(&app)
        })
        .unwrap();
    expect_unauthenticated(list_users_with(&app, &expired).await, "TOKEN_EXPIRED");

    let wrong_audience = signer
        .sign(&Claims {
            aud: "someone-else".into(),
            ..claims(&app)
        })
        .unwrap();
    expect_unauthenticated(
        list_users_with(&app, &wrong_audience).await,
        "TOKEN_INVALID",
    );

    let wrong_issuer = signer
        .sign(&Claims {
            iss: "evil".into(),
            ..claims(&app)
        })
        .unwrap();
    expect_unauthenticated(list_users_with(&app, &wrong_issuer).await, "TOKEN_INVALID");

    // Signed by another server's key.
    let other = TestApp::spawn().await;
    let foreign = other
        .state
        .keys
        .mint(app.owner_id, app.workspace_id, Duration::from_secs(600))
        .unwrap();
    expect_unauthenticated(list_users_with(&app, &foreign).await, "TOKEN_INVALID");

    // A good token still works.
    list_users_with(&app, &app.owner_token).await.unwrap();
}

#[tokio::test]
async fn a_token_meant_to_live_too_long_or_issued_in_the_future_is_refused() {
    let app = TestApp::spawn().await;
    let signer = &app.state.keys;
    // The default most a token may live is a day: ten years is refused,
    // and so is the largest expiry there is (no overflow anywhere).
    for (iat, exp) in [
        (now(), now() + 10 * 365 * 86_400),
        (now(), u64::MAX),
        (now() + 3600, now() + 7200),
        (now(), now() - 1 + 86_400 * 2),
    ] {
        let token = signer
            .sign(&Claims {
                iat,
                exp,
                ..claims(&app)
            })
            .unwrap();
        expect_unauthenticated(list_users_with(&app, &token).await, "TOKEN_INVALID");
    }
    // Nor will the server mint one.
    assert!(
        signer
            .mint(
                app.owner_id,
                app.workspace_id,
                Duration::from_secs(10 * 365 * 86_400)
            )
            .is_err()
    );
    let day = signer
        .sign(&Claims {
            iat: now(),
            exp: now() + 86_400,
            ..claims(&app)
        })
        .unwrap();
    list_users_with(&app, &day).await.unwrap();
}

#[tokio::test]
async fn a_valid_token_naming_no_user_is_refused() {
    let app = TestApp::spawn().await;
    let nobody = app.token_for(uuid::Uuid::now_v7());
    expect_unauthenticated(list_users_with(&app, &nobody).await, "UNKNOWN_CALLER");
    let not_a_uuid = app
        .state
        .keys
        .sign(&Claims {
            sub: "admin".into(),
            ..claims(&app)
        })
        .unwrap();
    expect_unauthenticated(list_users_with(&app, &not_a_uuid).await, "TOKEN_INVALID");
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
