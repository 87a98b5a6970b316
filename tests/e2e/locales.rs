//! Languages (issue 26 §2): an invitation carries a locale (InviteUser's,
//! else the workspace's `default_locale`), its email arrives in it through
//! the whole system (service, relay, RabbitMQ, mailer, a real SMTP server),
//! its page reads it from PreviewInvitation; the emails without an
//! invitation of their own (the accepted notice, a join request's
//! confirmation) are written in the workspace's default.

use std::time::Duration;

use mail_parser::MessageParser;
use prost::Message;
use tonic_types::StatusExt;
use wowchat_i18n::{Args, Catalog, Locale};
use wowchat_users_api::{events::v1 as events, v1 as proto};
use wowchat_users_testkit::{
    ReceivedMail, SmtpServer, TestApp, authed, expect_invalid_argument, invitation_request,
    violated_fields,
};

use crate::support::eventually;

const WAIT: Duration = Duration::from_secs(30);

async fn with_mail() -> (TestApp, SmtpServer, wowchat_users_testkit::MailerHandle) {
    let app = TestApp::spawn_with(|settings| {
        settings.relay = true;
        settings.resend_cooldown_secs = 0;
    })
    .await;
    let smtp = SmtpServer::start().await;
    let mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;
    (app, smtp, mailer)
}

async fn arrived(smtp: &SmtpServer, recipient: &str, count: usize) -> ReceivedMail {
    smtp.wait_for(1, WAIT).await;
    eventually(&format!("email {count} to {recipient} arrives"), || async {
        smtp.messages_to(recipient).len() >= count
    })
    .await;
    smtp.messages_to(recipient)[count - 1].clone()
}

/// The subject as a mail client shows it, and the HTML part.
fn read(mail: &ReceivedMail) -> (String, String) {
    let parsed = MessageParser::default()
        .parse(mail.data.as_bytes())
        .expect("the email parses");
    let subject = parsed.subject().expect("a subject").to_owned();
    let html = parsed.body_html(0).expect("an HTML part").into_owned();
    (subject, html)
}

fn invitation_subject(locale: Locale) -> String {
    Catalog::mail()
        .format(
            locale,
            "invitation-subject",
            &Args::new()
                .text("inviter", "Olive Owner")
                .text("workspace", "Acme Support"),
        )
        .unwrap()
}

async fn set_settings(
    app: &TestApp,
    settings: proto::WorkspaceSettings,
) -> proto::WorkspaceSettings {
    app.as_owner()
        .users
        .update_workspace_settings(proto::UpdateWorkspaceSettingsRequest {
            settings: Some(settings),
        })
        .await
        .expect("UpdateWorkspaceSettings succeeds")
        .into_inner()
        .settings
        .unwrap()
}

#[tokio::test]
async fn an_invitation_in_german_is_stored_emailed_and_previewed_in_german() {
    let (app, smtp, _mailer) = with_mail().await;
    let invited = app
        .try_invite(proto::InviteUserRequest {
            locale: "de".into(),
            ..invitation_request("dora@example.com", "agent")
        })
        .await
        .unwrap();
    assert_eq!(invited.locale, "de");
    assert_eq!(app.invitation(&invited.id).await.locale, "de");

    let mail = arrived(&smtp, "dora@example.com", 1).await;
    let (subject, html) = read(&mail);
    assert_eq!(subject, invitation_subject(Locale::German));
    assert_ne!(subject, invitation_subject(Locale::English));
    assert!(html.contains(r#"<html lang="de""#), "{html}");

    let token = mail.token().expect("the email carries the token");
    let preview = app.preview(&token).await.unwrap();
    assert_eq!(preview.locale, "de");
}

#[tokio::test]
async fn a_locale_is_taken_in_any_case_and_an_unsupported_one_creates_nothing() {
    let app = TestApp::spawn().await;
    let invited = app
        .try_invite(proto::InviteUserRequest {
            locale: "PT-br".into(),
            ..invitation_request("paulo@example.com", "agent")
        })
        .await
        .unwrap();
    assert_eq!(invited.locale, "pt-BR");
    assert_eq!(
        app.invitation_mails_to("paulo@example.com").await[0].locale,
        "pt-BR"
    );
    // Without one: the workspace's default, English until changed.
    assert_eq!(app.invite("erin@example.com", "agent").await.locale, "en");

    let status = expect_invalid_argument(
        app.try_invite(proto::InviteUserRequest {
            locale: "xx".into(),
            ..invitation_request("xavier@example.com", "agent")
        })
        .await,
        "INVALID_ARGUMENT",
    );
    let bad = status.get_details_bad_request().expect("field violations");
    assert_eq!(bad.field_violations.len(), 1);
    assert_eq!(bad.field_violations[0].field, "locale");
    let description = &bad.field_violations[0].description;
    assert!(
        description.contains("en, de, fr, es, pt-BR, ja, ar"),
        "{description}"
    );
    assert_eq!(app.outbox_count("invitation.created").await, 2);
    assert_eq!(app.activity_count("invitation.created").await, 2);
    assert!(
        app.invitation_mails_to("xavier@example.com")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn the_workspace_default_writes_invitations_without_a_locale_and_the_accepted_notice() {
    let (app, smtp, _mailer) = with_mail().await;
    let before = app.workspace_settings().await;
    assert_eq!(before.default_locale, "en");

    // An unsupported default changes nothing.
    let refused = app
        .as_owner()
        .users
        .update_workspace_settings(proto::UpdateWorkspaceSettingsRequest {
            settings: Some(proto::WorkspaceSettings {
                default_locale: "xx".into(),
                ..before.clone()
            }),
        })
        .await;
    let status = expect_invalid_argument(refused, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["settings.default_locale"]);
    assert_eq!(app.workspace_settings().await, before);

    let set = set_settings(
        &app,
        proto::WorkspaceSettings {
            default_locale: "JA".into(),
            ..before.clone()
        },
    )
    .await;
    assert_eq!(set.default_locale, "ja");
    assert_eq!(app.workspace_settings().await, set);
    let entry = app
        .activity(proto::ListActivityRequest::default())
        .await
        .into_iter()
        .find(|e| e.action == "workspace.settings_updated")
        .expect("the change is logged");
    let change = entry
        .changes
        .iter()
        .find(|c| c.field == "default_locale")
        .expect("the locale's change");
    assert_eq!(
        (change.old_value.as_str(), change.new_value.as_str()),
        ("en", "ja")
    );
    let payloads = app.outbox_payloads("workspace.settings_updated").await;
    let event = events::WorkspaceSettingsUpdated::decode(payloads[0].as_slice()).unwrap();
    assert_eq!(event.settings.unwrap().default_locale, "ja");

    // Without a locale: the workspace's.
    let invited = app.invite("yuki@example.com", "agent").await;
    assert_eq!(invited.locale, "ja");
    let mail = arrived(&smtp, "yuki@example.com", 1).await;
    let (subject, html) = read(&mail);
    assert_eq!(subject, invitation_subject(Locale::Japanese));
    assert!(html.contains(r#"<html lang="ja""#), "{html}");
    // One asked for still wins.
    let french = app
        .try_invite(proto::InviteUserRequest {
            locale: "fr".into(),
            ..invitation_request("francois@example.com", "agent")
        })
        .await
        .unwrap();
    assert_eq!(french.locale, "fr");

    // The inviter hears of the acceptance in the workspace's language.
    let token = mail.token().expect("the email carries the token");
    app.accept_named(&token, "Yuki Agent").await.unwrap();
    let notice = arrived(&smtp, "owner@example.com", 1).await;
    let (subject, html) = read(&notice);
    let expected = Catalog::mail()
        .format(
            Locale::Japanese,
            "accepted-subject",
            &Args::new()
                .text("user", "Yuki Agent")
                .text("workspace", "Acme Support"),
        )
        .unwrap();
    assert_eq!(subject, expected);
    assert!(html.contains(r#"<html lang="ja""#), "{html}");
}

#[tokio::test]
async fn a_pending_invitation_s_locale_changes_and_its_resend_is_written_in_it() {
    let (app, smtp, _mailer) = with_mail().await;
    let invited = app.invite("fabien@example.com", "agent").await;
    assert_eq!(invited.locale, "en");
    arrived(&smtp, "fabien@example.com", 1).await;

    let update = |locale: &str| proto::UpdateInvitationRequest {
        invitation_id: invited.id.clone(),
        locale: Some(locale.into()),
        ..Default::default()
    };
    let status = expect_invalid_argument(
        app.as_owner()
            .users
            .update_invitation(update("fr-XX"))
            .await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["locale"]);
    assert_eq!(app.invitation(&invited.id).await.locale, "en");

    let updated = app
        .as_owner()
        .users
        .update_invitation(update("FR"))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(updated.locale, "fr");
    assert_eq!(updated.role, "agent", "the other fields stay");
    let entry = app
        .activity(proto::ListActivityRequest::default())
        .await
        .into_iter()
        .find(|e| e.action == "invitation.updated")
        .expect("the change is logged");
    let fields: Vec<_> = entry
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.old_value.as_str(), c.new_value.as_str()))
        .collect();
    assert_eq!(fields, [("locale", "en", "fr")]);

    app.as_owner()
        .users
        .resend_invitation(proto::ResendInvitationRequest {
            invitation_id: invited.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let resent = arrived(&smtp, "fabien@example.com", 2).await;
    let (subject, html) = read(&resent);
    assert_eq!(subject, invitation_subject(Locale::French));
    assert!(html.contains(r#"<html lang="fr""#), "{html}");
    let preview = app.preview(&resent.token().unwrap()).await.unwrap();
    assert_eq!(preview.locale, "fr");
}

#[tokio::test]
async fn a_join_request_is_confirmed_and_invited_in_the_workspace_s_default() {
    let app = TestApp::spawn().await;
    let settings = app.workspace_settings().await;
    set_settings(
        &app,
        proto::WorkspaceSettings {
            default_locale: "es".into(),
            accept_join_requests: true,
            ..settings
        },
    )
    .await;
    app.joining()
        .await
        .create_join_request(proto::CreateJoinRequestRequest {
            workspace_id: app.workspace_id.to_string(),
            email: "sofia@example.com".into(),
            display_name: "Sofía".into(),
            message: String::new(),
        })
        .await
        .unwrap();
    let confirmations = app
        .outbox_payloads("mail.join_request_confirmation")
        .await
        .iter()
        .map(|p| events::SendJoinRequestConfirmationEmail::decode(p.as_slice()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(confirmations.len(), 1);
    assert_eq!(confirmations[0].locale, "es");
    let token = &app.join_confirmation_tokens("sofia@example.com").await[0];
    app.confirm_join_request(token).await.unwrap();
    let request = app.join_requests(&app.owner_token).await.remove(0);
    let approved = app
        .joining()
        .await
        .approve_join_request(authed(
            &app.owner_token,
            proto::ApproveJoinRequestRequest {
                join_request_id: request.id,
                role: "agent".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.invitation.unwrap().locale, "es");
    let mails = app.invitation_mails_to("sofia@example.com").await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].locale, "es");
}

#[tokio::test]
async fn over_rest_the_default_and_the_locale_are_json_fields_and_a_bad_one_is_a_400() {
    use serde_json::json;
    use tonic::codegen::http::{Method, StatusCode};

    let rest = crate::rest::Rest::spawn().await;
    let settings = rest
        .call(
            Method::PUT,
            "/v1/workspace/settings",
            rest.owner(),
            Some(json!({"defaultLocale": "de"})),
        )
        .await
        .ok();
    assert_eq!(settings["settings"]["defaultLocale"], "de");
    let invited = rest
        .call(
            Method::POST,
            "/v1/invitations",
            rest.owner(),
            Some(json!({"email": "dieter@example.com", "role": "agent"})),
        )
        .await
        .ok();
    assert_eq!(invited["invitation"]["locale"], "de");
    let refused = rest
        .call(
            Method::POST,
            "/v1/invitations",
            rest.owner(),
            Some(json!({"email": "x@example.com", "role": "agent", "locale": "xx"})),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:#}",
        refused.json
    );
    let violations = refused.json["details"]
        .as_array()
        .and_then(|details| {
            details
                .iter()
                .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        })
        .map(|bad| bad["fieldViolations"].clone())
        .unwrap_or_default();
    assert_eq!(violations[0]["field"], "locale", "{:#}", refused.json);
}
