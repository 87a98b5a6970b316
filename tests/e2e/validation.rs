//! Bad input gets a clear error (INVALID_ARGUMENT, an ErrorInfo reason and a
//! field violation per bad field) and changes nothing.

use std::ops::Range;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use prost_types::Timestamp;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    TestApp, authed, change_role, deactivate, expect_invalid_argument, expect_not_found,
    get_invitation_request, get_user_request, manage_request, reactivate, rename, report_to,
    revoke_request, violated_fields,
};

/// Rows of every table a change writes to, to show bad input wrote nothing.
async fn row_counts(app: &TestApp) -> Vec<i64> {
    let db = app.db().await;
    let mut counts = Vec::new();
    for table in [
        "users",
        "invitations",
        "activity",
        "outbox",
        "idempotency_keys",
    ] {
        let row = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap();
        counts.push(row.get(0));
    }
    counts
}

#[track_caller]
fn expect_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str) {
    let status = expect_invalid_argument(result, "INVALID_ARGUMENT");
    assert!(
        violated_fields(&status).iter().any(|f| f == field),
        "expected a violation on {field}, got {status:?}"
    );
    // No internal detail in the message.
    assert!(!status.message().to_lowercase().contains("sql"));
}

/// Makes one field of a valid invitation request invalid.
type Spoil = fn(&mut proto::InviteUserRequest);

#[tokio::test]
async fn invalid_invitations_are_refused_field_by_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let before = row_counts(&app).await;
    let invite = |request: proto::InviteUserRequest| authed(&app.owner_token, request);
    let valid = proto::InviteUserRequest {
        email: "new@example.com".into(),
        role: "agent".into(),
        ..Default::default()
    };

    for (email, why) in [
        ("", "empty"),
        ("   ", "blank"),
        ("not-an-email", "no domain"),
        ("\u{fffd}\u{fffd}@\u{fffd}", "replacement characters"),
        ("a\u{0}b@example.com", "control character"),
        ("Alice <alice@example.com>", "display-name form"),
    ] {
        let result = client
            .invite_user(invite(proto::InviteUserRequest {
                email: email.into(),
                ..valid.clone()
            }))
            .await;
        assert!(result.is_err(), "{why} email accepted");
        expect_invalid(result, "email");
    }
    for role in ["", "Agent", "agent!", &"r".repeat(65)] {
        let request = proto::InviteUserRequest {
            role: role.into(),
            ..valid.clone()
        };
        expect_invalid(client.invite_user(invite(request)).await, "role");
    }
    // `valid` with one field spoilt: refused on that field.
    let spoilt: [(Spoil, &str); 6] = [
        (
            |r| r.email = format!("{}@example.com", "a".repeat(10_000)),
            "email",
        ),
        (
            |r| r.reporting_to_user_id = Some("not-a-uuid".into()),
            "reporting_to_user_id",
        ),
        (|r| r.message = "m".repeat(501), "message"),
        (|r| r.message = ["line"; 11].join("\n"), "message"),
        (
            |r| {
                r.expires_in = Some(prost_types::Duration {
                    seconds: -5,
                    nanos: 0,
                })
            },
            "expires_in",
        ),
        (|r| r.request_id = "has spaces in it".into(), "request_id"),
    ];
    for (spoil, field) in spoilt {
        let mut request = valid.clone();
        spoil(&mut request);
        expect_invalid(client.invite_user(invite(request)).await, field);
    }

    // Several bad fields are reported together.
    let status = client
        .invite_user(invite(proto::InviteUserRequest {
            email: "nope".into(),
            role: "".into(),
            message: "\u{7}".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["email", "message", "role"]);

    assert_eq!(row_counts(&app).await, before, "bad input wrote something");
}

#[tokio::test]
async fn invalid_acceptances_are_refused_and_create_no_user() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let invitation = app.invite("bob@example.com", "agent").await;
    let token = app.invitation_token(&invitation.id).await;
    let before = row_counts(&app).await;
    let accept = |token: &str, display_name: &str, password: &str| proto::AcceptInvitationRequest {
        token: token.into(),
        display_name: display_name.into(),
        password: password.into(),
    };

    for (token, display_name, password, field) in [
        ("", "Bob", "long enough password", "token"),
        (&token, "", "long enough password", "display_name"),
        (
            &token,
            &"b".repeat(101),
            "long enough password",
            "display_name",
        ),
        (&token, "Bob", "short", "password"),
        (&token, "Bob", &"p".repeat(129), "password"),
    ] {
        let refused = client
            .accept_invitation(accept(token, display_name, password))
            .await;
        expect_invalid(refused, field);
    }
    // A token of the wrong shape is simply unknown.
    expect_not_found(
        client
            .accept_invitation(accept("\u{fffd}garbage", "Bob", "long enough password"))
            .await,
        "INVITATION_NOT_FOUND",
    );

    assert_eq!(row_counts(&app).await, before);
    // The invitation still works afterwards.
    client
        .accept_invitation(accept(&token, "Bob", "long enough password"))
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_ids_page_sizes_page_tokens_and_filters_are_refused() {
    let app = TestApp::spawn().await;
    let token = &app.owner_token;
    let before = row_counts(&app).await;
    let owner = &app;
    let users = move |request: proto::ListUsersRequest| {
        let mut users = owner.as_(token).users;
        async move { users.list_users(request).await }
    };
    let invitations = move |request: proto::ListInvitationsRequest| {
        let mut users = owner.as_(token).users;
        async move { users.list_invitations(request).await }
    };
    let activity = move |request: proto::ListActivityRequest| {
        let mut users = owner.as_(token).users;
        async move { users.list_activity(request).await }
    };

    for id in [
        "",
        "123",
        "not-a-uuid",
        "00000000-0000-0000-0000-00000000000g",
    ] {
        expect_invalid(
            app.as_(token).users.get_user(get_user_request(id)).await,
            "user_id",
        );
        expect_invalid(
            app.as_(token)
                .users
                .get_invitation(get_invitation_request(id))
                .await,
            "invitation_id",
        );
        expect_invalid(
            app.as_(token)
                .users
                .revoke_invitation(revoke_request(id))
                .await,
            "invitation_id",
        );
        let reactivation = manage_request(id, reactivate());
        expect_invalid(
            app.as_(token).users.manage_user(reactivation).await,
            "user_id",
        );
    }

    // AIP-158: more than the maximum is served as the maximum.
    for page_size in [201, 10_000, i32::MAX] {
        let page = proto::ListUsersRequest {
            page_size,
            ..Default::default()
        };
        users(page).await.expect("a larger page size is coerced");
        let page = proto::ListActivityRequest {
            page_size,
            ..Default::default()
        };
        activity(page).await.expect("a larger page size is coerced");
    }
    for page_size in [-1, i32::MIN] {
        let page = proto::ListUsersRequest {
            page_size,
            ..Default::default()
        };
        expect_invalid(users(page).await, "page_size");
        let page = proto::ListInvitationsRequest {
            page_size,
            ..Default::default()
        };
        expect_invalid(invitations(page).await, "page_size");
        let page = proto::ListActivityRequest {
            page_size,
            ..Default::default()
        };
        expect_invalid(activity(page).await, "page_size");
    }

    for page_token in ["garbage", "!!!", "AAAA", &"A".repeat(5000)] {
        let page = proto::ListUsersRequest {
            page_token: page_token.into(),
            ..Default::default()
        };
        let status = expect_invalid_argument(users(page).await, "INVALID_PAGE_TOKEN");
        assert_eq!(violated_fields(&status), ["page_token"]);
    }

    let unknown_status = proto::ListUsersRequest {
        status: 99,
        ..Default::default()
    };
    expect_invalid(users(unknown_status).await, "status");
    let malformed_manager = proto::ListUsersRequest {
        reporting_to_user_id: "nope".into(),
        ..Default::default()
    };
    expect_invalid(users(malformed_manager).await, "reporting_to_user_id");
    let long_query = proto::ListUsersRequest {
        query: "q".repeat(201),
        ..Default::default()
    };
    expect_invalid(users(long_query).await, "query");
    let unknown_status = proto::ListInvitationsRequest {
        status: -3,
        ..Default::default()
    };
    expect_invalid(invitations(unknown_status).await, "status");
    let unknown_action = proto::ListActivityRequest {
        action: "user.exploded".into(),
        ..Default::default()
    };
    expect_invalid(activity(unknown_action).await, "action");
    let far_future = proto::ListActivityRequest {
        start_time: Some(Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        }),
        ..Default::default()
    };
    expect_invalid(activity(far_future).await, "start_time");

    // The maximum page size itself is fine.
    let largest = proto::ListUsersRequest {
        page_size: 200,
        ..Default::default()
    };
    users(largest).await.unwrap();
    assert_eq!(row_counts(&app).await, before);
}

#[tokio::test]
async fn a_manage_request_with_bad_fields_changes_nothing() {
    let app = TestApp::spawn().await;
    let (agent, _) = app.member("agent@example.com", "agent").await;
    let before = row_counts(&app).await;

    for (action, field) in [
        (rename(" "), "update_profile.display_name"),
        (change_role(""), "change_role.role"),
        (report_to("x"), "set_reporting_to.reporting_to_user_id"),
        (deactivate(&"r".repeat(501)), "deactivate.reason"),
    ] {
        expect_invalid(app.manage(&agent.id, action).await, field);
    }
    expect_invalid_argument(
        app.manage(&agent.id, change_role("wizard")).await,
        "ROLE_NOT_FOUND",
    );
    assert_eq!(row_counts(&app).await, before);
}

/// About 5000 BC: a time protobuf and the service's clock hold, Postgres not.
const YEAR_MINUS_5000: i64 = -220_000_000_000;

#[tokio::test]
async fn times_postgres_cannot_store_are_field_violations_not_internal_errors() {
    let app = TestApp::spawn().await;
    let token = &app.owner_token;
    let long_ago = Some(Timestamp {
        seconds: YEAR_MINUS_5000,
        nanos: 0,
    });
    let users = proto::ListUsersRequest {
        active_since: long_ago,
        ..Default::default()
    };
    let status = expect_invalid_argument(
        app.as_(token).users.list_users(users).await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["active_since"]);
    let activity = proto::ListActivityRequest {
        start_time: long_ago,
        end_time: long_ago,
        ..Default::default()
    };
    let status = expect_invalid_argument(
        app.as_(token).users.list_activity(activity).await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["start_time", "end_time"]);

    // The first second of year 1 is a time Postgres stores.
    let year_one = proto::ListUsersRequest {
        active_since: Some(Timestamp {
            seconds: -62_135_596_800,
            nanos: 0,
        }),
        ..Default::default()
    };
    app.as_(token).users.list_users(year_one).await.unwrap();
}

/// A real page token altered: each byte of its `cursor` bytes with one bit
/// flipped, and its `time` bytes (Unix nanoseconds) set to about 5000 BC.
fn altered(token: &str, cursor: Range<usize>, time: Range<usize>) -> Vec<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
    let mut altered: Vec<Vec<u8>> = cursor
        .enumerate()
        .map(|(n, at)| {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << (n % 8);
            flipped
        })
        .collect();
    let mut long_ago = bytes.clone();
    long_ago[time].copy_from_slice(&(i128::from(YEAR_MINUS_5000) * 1_000_000_000).to_be_bytes());
    altered.push(long_ago);
    altered.iter().map(|b| URL_SAFE_NO_PAD.encode(b)).collect()
}

#[track_caller]
fn expect_bad_token<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
    let status = expect_invalid_argument(result, "INVALID_PAGE_TOKEN");
    assert_eq!(violated_fields(&status), ["page_token"]);
}

/// A page of one of the owner's `$list` (answering `$request`, listing
/// `$items`) after a page token: its next page token and its size.
macro_rules! one_per_page {
    ($app:expr, $list:ident, $request:ident, $items:ident) => {
        async |page_token: String| {
            let request = proto::$request {
                page_size: 1,
                page_token,
                ..Default::default()
            };
            let page = $app.as_owner().users.$list(request).await?.into_inner();
            Ok::<_, tonic::Status>((page.next_page_token, page.$items.len()))
        }
    };
}

/// The real token to a listing's second page, [`altered`] in `cursor` and
/// `time`, is refused each time; as it came, it reads that page.
async fn refuses_altered_tokens(
    list: impl AsyncFn(String) -> Result<(String, usize), tonic::Status>,
    cursor: Range<usize>,
    time: Range<usize>,
) {
    let (first, _) = list(String::new()).await.unwrap();
    for page_token in altered(&first, cursor, time) {
        expect_bad_token(list(page_token).await);
    }
    let (_, size) = list(first).await.unwrap();
    assert_eq!(size, 1);
}

#[tokio::test]
async fn page_tokens_altered_in_any_bit_of_their_cursor_are_refused() {
    let app = TestApp::spawn().await;
    app.invite("a@example.com", "agent").await;
    app.invite("b@example.com", "agent").await;
    app.member("c@example.com", "agent").await;

    // ListUsers: a version byte, then whether a time is present, the time, the id.
    let users = one_per_page!(app, list_users, ListUsersRequest, users);
    refuses_altered_tokens(users, 1..34, 2..18).await;

    // ListInvitations and ListActivity: a version byte, then the time, the id.
    let invitations = one_per_page!(app, list_invitations, ListInvitationsRequest, invitations);
    refuses_altered_tokens(invitations, 1..33, 1..17).await;
    let activity = one_per_page!(app, list_activity, ListActivityRequest, entries);
    refuses_altered_tokens(activity, 1..33, 1..17).await;
}
