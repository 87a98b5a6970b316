//! Mail that respects the recipient (issue 26 §3): a hard bounce puts the
//! address on the installation's suppression list until an administrator
//! clears it; the one-click unsubscribe of RFC 8058, taken from the headers
//! of a real email received by the test SMTP server and POSTed to the real
//! gateway as Gmail does, stops invitation emails from every workspace for
//! good. All of it through the relay, RabbitMQ, the mailer and SMTP.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio_util::sync::DropGuard;
use tonic::{
    Code, Status,
    codegen::http::{self, HeaderMap, Method, StatusCode},
};
use tonic_types::StatusExt;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    MailerHandle, ReceivedMail, SmtpServer, TestApp, expect_error, invitation_request, logs,
};

use crate::support::{eventually, gateway_settings, start_gateway};

const WAIT: Duration = Duration::from_secs(30);

/// The server with its relay, the gateway in front of it, a real SMTP
/// server and a mailer whose unsubscribe links point at that gateway.
struct Installation {
    app: TestApp,
    smtp: SmtpServer,
    gateway: String,
    _mailer: MailerHandle,
    _gateway: DropGuard,
}

impl Installation {
    async fn start(refused: &[&str]) -> Installation {
        let app = TestApp::spawn_with(|settings| {
            settings.relay = true;
            settings.resend_cooldown_secs = 0;
        })
        .await;
        let smtp = SmtpServer::start().await;
        for address in refused {
            smtp.refuse(address);
        }
        let (address, stop) = start_gateway(gateway_settings(&app)).await;
        let base = format!("http://{address}");
        let mut mailer = app.mailer_settings(&smtp.url());
        mailer.unsubscribe_url = format!("{base}/unsubscribe");
        let mailer = app.start_mailer(mailer).await;
        Installation {
            app,
            smtp,
            gateway: base,
            _mailer: mailer,
            _gateway: stop,
        }
    }

    async fn suppression(&self, email: &str) -> Result<proto::EmailSuppression, Status> {
        let request = proto::GetEmailSuppressionRequest {
            email: email.into(),
        };
        let answer = self
            .app
            .as_owner()
            .users
            .get_email_suppression(request)
            .await?;
        Ok(answer.into_inner().suppression.expect("a suppression"))
    }

    async fn clear(
        &self,
        email: &str,
        request_id: &str,
    ) -> Result<Option<proto::EmailSuppression>, Status> {
        let request = proto::ClearEmailSuppressionRequest {
            email: email.into(),
            request_id: request_id.into(),
        };
        let answer = self
            .app
            .as_owner()
            .users
            .clear_email_suppression(request)
            .await?;
        Ok(answer.into_inner().cleared)
    }

    async fn activity(&self, token: &str, action: &str) -> Vec<proto::ActivityEntry> {
        let request = proto::ListActivityRequest {
            action: action.into(),
            ..Default::default()
        };
        let answer = self.app.as_(token).users.list_activity(request).await;
        answer.unwrap().into_inner().entries
    }
}

/// What an HTTP request to the gateway answered.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// One plain HTTP/1.1 request, without cookies or credentials, as a mail
/// provider's unsubscriber sends it.
async fn http(method: Method, url: &str, content_type: Option<&str>, body: &str) -> Page {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = client
        .request(
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .expect("the gateway answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The fixture of Gmail's one-click unsubscribe (RFC 8058 §3.2): a POST to
/// the `List-Unsubscribe` URL with this content type and body, nothing else.
const GMAIL_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
const GMAIL_BODY: &str = "List-Unsubscribe=One-Click";

/// The ErrorInfo metadata `suppression` of a refusal.
fn suppression_of(status: &Status) -> String {
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get("suppression").cloned())
        .unwrap_or_default()
}

/// The URL between the angle brackets of the email's `List-Unsubscribe`.
fn list_unsubscribe_url(mail: &ReceivedMail) -> String {
    let header = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    header
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or_else(|| panic!("not <url>: {header}"))
        .to_owned()
}

#[tokio::test]
async fn a_hard_bounce_suppresses_the_address_for_every_invitation_until_an_admin_clears_it() {
    let installation = Installation::start(&["bounce@example.com"]).await;
    let app = &installation.app;

    // The 5xx at RCPT TO: the delivery shows it, and the address (as the
    // service normalizes it) is suppressed.
    let first = app
        .try_invite(invitation_request("Bounce@Example.com", "agent"))
        .await
        .unwrap();
    eventually("the invitation shows FAILED", || async {
        app.invitation(&first.id).await.delivery_status() == proto::DeliveryStatus::Failed
    })
    .await;
    eventually("the address is suppressed", || async {
        installation.suppression("bounce@example.com").await.is_ok()
    })
    .await;
    let suppressed = installation
        .suppression(" BOUNCE@example.com ")
        .await
        .unwrap();
    assert_eq!(suppressed.email, "bounce@example.com");
    assert_eq!(suppressed.reason(), proto::SuppressionReason::Bounced);
    assert!(
        suppressed.detail.contains("Recipient address rejected"),
        "{}",
        suppressed.detail
    );

    // Sending it again is refused, and so is a new invitation from this
    // workspace or another: FAILED_PRECONDITION, metadata `bounced`, a
    // message that says what to do. Nothing is written.
    let resend = app
        .as_owner()
        .users
        .resend_invitation(proto::ResendInvitationRequest {
            invitation_id: first.id.clone(),
            ..Default::default()
        })
        .await;
    let refused = expect_error(resend, Code::FailedPrecondition, "RECIPIENT_SUPPRESSED");
    assert_eq!(suppression_of(&refused), "bounced");
    app.as_owner()
        .users
        .revoke_invitation(proto::RevokeInvitationRequest {
            invitation_id: first.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let again = app
        .try_invite(invitation_request("bounce@EXAMPLE.com", "agent"))
        .await;
    let refused = expect_error(again, Code::FailedPrecondition, "RECIPIENT_SUPPRESSED");
    assert_eq!(suppression_of(&refused), "bounced");
    assert!(
        refused.message().contains("ClearEmailSuppression"),
        "{}",
        refused.message()
    );
    let other = app.other_workspace().await;
    let from_other = app
        .as_(&other.owner_token)
        .users
        .invite_user(invitation_request("bounce@example.com", "agent"))
        .await;
    expect_error(from_other, Code::FailedPrecondition, "RECIPIENT_SUPPRESSED");
    let listed = app
        .as_owner()
        .users
        .list_invitations(proto::ListInvitationsRequest {
            email: "bounce@example.com".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.total_size, 1,
        "the refused invitations wrote nothing"
    );

    // The administrator clears it: once, whatever the retries, with one
    // activity entry; clearing it again changes nothing.
    let cleared = installation
        .clear("Bounce@example.com", "clear-1")
        .await
        .unwrap();
    assert_eq!(
        cleared.map(|c| c.reason()),
        Some(proto::SuppressionReason::Bounced)
    );
    let retried = installation
        .clear("Bounce@example.com", "clear-1")
        .await
        .unwrap();
    assert_eq!(
        retried.map(|c| c.reason()),
        Some(proto::SuppressionReason::Bounced),
        "a retry answers as the first call"
    );
    assert_eq!(
        installation.clear("bounce@example.com", "").await.unwrap(),
        None
    );
    let entries = installation
        .activity(&app.owner_token, "email.suppression_cleared")
        .await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].actor_user_id, app.owner_id.to_string());
    let not_found = installation.suppression("bounce@example.com").await;
    expect_error(not_found, Code::NotFound, "EMAIL_SUPPRESSION_NOT_FOUND");

    // And the address can be invited again.
    app.try_invite(invitation_request("bounce@example.com", "agent"))
        .await
        .expect("invited again once cleared");
}

#[tokio::test]
async fn one_click_unsubscribe_from_a_real_email_stops_invitations_from_every_workspace() {
    let installation = Installation::start(&[]).await;
    let app = &installation.app;
    let invited = app
        .try_invite(invitation_request("ivy@example.com", "agent"))
        .await
        .unwrap();
    let mails = installation.smtp.wait_for(1, WAIT).await;
    let mail = &mails[0];

    // RFC 8058 §3.1: both headers; the link in both parts is the header's.
    let url = list_unsubscribe_url(mail);
    assert!(
        url.starts_with(&format!("{}/unsubscribe?token=", installation.gateway)),
        "{url}"
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .expect("a MIME message");
    let text = parsed.body_text(0).expect("a text part");
    let html = parsed.body_html(0).expect("an HTML part");
    assert!(text.contains(&url), "{text}");
    assert!(html.contains(&format!("href=\"{url}\"")), "{html}");
    let token = url.split("token=").nth(1).unwrap().to_owned();

    // A GET (a link scanner's prefetch, or a person) only shows the page.
    let page = http(Method::GET, &url, None, "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<form method=\"post\""), "{}", page.body);
    assert!(!page.body.contains("<script"), "{}", page.body);
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-frame-options"), "DENY");
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    expect_error(
        installation.suppression("ivy@example.com").await,
        Code::NotFound,
        "EMAIL_SUPPRESSION_NOT_FOUND",
    );

    // A forged or altered token is refused and changes nothing.
    let last = token.chars().last().unwrap();
    let altered = format!(
        "{}{}",
        &token[..token.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    let forged_url = url.replace(&token, &altered);
    let forged = http(
        Method::POST,
        &forged_url,
        Some(GMAIL_CONTENT_TYPE),
        GMAIL_BODY,
    )
    .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.body);
    let direct = app
        .as_owner()
        .users
        .unsubscribe(proto::UnsubscribeRequest { token: altered })
        .await;
    expect_error(direct, Code::InvalidArgument, "INVALID_UNSUBSCRIBE_TOKEN");
    // A POST without the one-click body is no unsubscribe either.
    let empty = http(Method::POST, &url, Some(GMAIL_CONTENT_TYPE), "").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    expect_error(
        installation.suppression("ivy@example.com").await,
        Code::NotFound,
        "EMAIL_SUPPRESSION_NOT_FOUND",
    );

    // Gmail's one-click POST: unsubscribed, and a page says so.
    let done = http(Method::POST, &url, Some(GMAIL_CONTENT_TYPE), GMAIL_BODY).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("ivy@example.com"), "{}", done.body);
    let suppressed = installation.suppression("ivy@example.com").await.unwrap();
    assert_eq!(suppressed.reason(), proto::SuppressionReason::Unsubscribed);

    // curl, a third-party client, as multipart/form-data (the other body
    // RFC 8058 allows): accepted, and it changes nothing more.
    let curl_url = url.clone();
    let curl = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .args(["-F", "List-Unsubscribe=One-Click", &curl_url])
            .output()
    })
    .await
    .unwrap();
    if let Ok(output) = curl {
        assert_eq!(String::from_utf8_lossy(&output.stdout), "200");
    }

    // Another workspace cannot invite the address; its administrator, nor
    // this one, cannot clear an unsubscribe.
    let other = app.other_workspace().await;
    let from_other = app
        .as_(&other.owner_token)
        .users
        .invite_user(invitation_request("IVY@example.com", "agent"))
        .await;
    let refused = expect_error(from_other, Code::FailedPrecondition, "RECIPIENT_SUPPRESSED");
    assert_eq!(suppression_of(&refused), "unsubscribed");
    let clear = app
        .as_(&other.owner_token)
        .users
        .clear_email_suppression(proto::ClearEmailSuppressionRequest {
            email: "ivy@example.com".into(),
            request_id: String::new(),
        })
        .await;
    expect_error(clear, Code::FailedPrecondition, "RECIPIENT_UNSUBSCRIBED");
    let still = installation.suppression("ivy@example.com").await.unwrap();
    assert_eq!(still.reason(), proto::SuppressionReason::Unsubscribed);

    // One audit entry, in the workspace the email came from, naming the
    // invitation; none in the other workspace.
    let entries = installation
        .activity(&app.owner_token, "email.unsubscribed")
        .await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].target_invitation_id, invited.id);
    assert_eq!(entries[0].actor_user_id, "");
    assert!(
        installation
            .activity(&other.owner_token, "email.unsubscribed")
            .await
            .is_empty()
    );

    // No log line holds the token (the kit captures every line).
    let logged = logs::captured();
    assert!(logged.contains("unsubscribed"), "logs were captured");
    assert!(
        !logged.contains(&token),
        "a log line holds the unsubscribe token"
    );
}

#[tokio::test]
async fn every_other_way_in_refuses_a_suppressed_address_or_says_nothing_and_sends_nothing() {
    let app = TestApp::spawn().await;
    // As the delivery-result consumer records a hard bounce.
    app.db()
        .await
        .execute(
            "INSERT INTO email_suppressions (email_normalized, cause, detail) \
             VALUES ('ray@example.com', 'bounced', '550 5.1.1 User unknown'), \
                    ('sam@example.com', 'bounced', '550 5.1.1 User unknown')",
            &[],
        )
        .await
        .unwrap();
    let owner = app.as_owner();

    // A batch row is refused as InviteUser would be; the others go.
    let batch = owner
        .users
        .clone()
        .batch_invite_users(proto::BatchInviteUsersRequest {
            requests: vec![
                invitation_request("ray@example.com", "agent"),
                invitation_request("una@example.com", "agent"),
            ],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    match &batch[0].outcome {
        Some(proto::batch_invite_result::Outcome::Refusal(refusal)) => {
            assert_eq!(refusal.reason, "RECIPIENT_SUPPRESSED");
            assert_eq!(refusal.code, Code::FailedPrecondition as i32);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        batch[1].outcome,
        Some(proto::batch_invite_result::Outcome::Invitation(_))
    ));

    // An invite link answers a stranger as for anyone, and sends nothing.
    let link = owner
        .joining
        .clone()
        .create_invite_link(proto::CreateInviteLinkRequest {
            role: "agent".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let redeemed = owner
        .joining
        .clone()
        .redeem_invite_link(proto::RedeemInviteLinkRequest {
            secret: link.secret.clone(),
            email: "Ray@example.com".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!redeemed.requires_approval);
    assert!(app.invitation_mails_to("Ray@example.com").await.is_empty());
    assert!(app.invitation_mails_to("ray@example.com").await.is_empty());

    // An approved join request: refused, and the request stays pending.
    let approval_link = owner
        .joining
        .clone()
        .create_invite_link(proto::CreateInviteLinkRequest {
            role: "agent".into(),
            requires_approval: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    owner
        .joining
        .clone()
        .redeem_invite_link(proto::RedeemInviteLinkRequest {
            secret: approval_link.secret.clone(),
            email: "sam@example.com".into(),
            display_name: "Sam".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let token = app
        .join_confirmation_tokens("sam@example.com")
        .await
        .remove(0);
    owner
        .joining
        .clone()
        .confirm_join_request(proto::ConfirmJoinRequestRequest { token })
        .await
        .unwrap();
    let pending = owner
        .joining
        .clone()
        .list_join_requests(proto::ListJoinRequestsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .join_requests;
    let request = pending
        .iter()
        .find(|r| r.email == "sam@example.com")
        .expect("the request");
    let approved = owner
        .joining
        .clone()
        .approve_join_request(proto::ApproveJoinRequestRequest {
            join_request_id: request.id.clone(),
            ..Default::default()
        })
        .await;
    let refused = expect_error(approved, Code::FailedPrecondition, "RECIPIENT_SUPPRESSED");
    assert_eq!(suppression_of(&refused), "bounced");
    assert!(app.invitation_mails_to("sam@example.com").await.is_empty());
    let still = owner
        .joining
        .clone()
        .get_join_request(proto::GetJoinRequestRequest {
            join_request_id: request.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .join_request
        .unwrap();
    assert_eq!(still.state(), proto::JoinRequestState::Pending);
}
