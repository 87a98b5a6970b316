//! Invitation emails end to end: the service commits the change and its
//! events, the relay publishes them to the real RabbitMQ, the mailer sends
//! over SMTP to a real SMTP server, and the delivery result comes back.

use std::{collections::HashMap, time::Duration};

use lapin::ExchangeKind;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use wowchat_users_api::v1 as proto;
use wowchat_users_server::messaging::relay::HEALTH_SERVICE as RELAY_HEALTH;
use wowchat_users_testkit::{
    PASSWORD, SmtpServer, TcpProxy, TestApp, authed, invitation_request, logs,
    without_invitation_limits,
};

use crate::{
    relay::{drain, tap},
    support::eventually,
};

const WAIT: Duration = Duration::from_secs(30);

async fn with_relay() -> TestApp {
    TestApp::spawn_with(|settings| {
        settings.relay = true;
        settings.resend_cooldown_secs = 0;
    })
    .await
}

async fn relay_status(app: &TestApp) -> ServingStatus {
    HealthClient::new(app.channel().await)
        .check(HealthCheckRequest {
            service: RELAY_HEALTH.into(),
        })
        .await
        .map(|r| r.into_inner().status())
        .unwrap_or(ServingStatus::Unknown)
}

/// Invites `email` as an agent with `message`, as the owner.
async fn invite(app: &TestApp, email: &str, message: &str) -> proto::Invitation {
    let request = proto::InviteUserRequest {
        message: message.into(),
        ..invitation_request(email, "agent")
    };
    app.try_invite(request).await.unwrap()
}

#[tokio::test]
async fn an_invited_person_receives_an_email_whose_link_accepts_and_the_inviter_hears_of_it() {
    let app = with_relay().await;
    let smtp = SmtpServer::start().await;
    let _mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;

    let invited = invite(&app, "alice@example.com", "Welcome to the support team!").await;
    assert_eq!(invited.delivery_status(), proto::DeliveryStatus::Queued);
    let mails = smtp.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(mail.recipients, ["alice@example.com"]);
    let subject = mail.header("Subject").unwrap();
    assert!(subject.contains("Olive Owner"), "{subject}");
    assert!(subject.contains("Acme Support"), "{subject}");
    let body = mail.decoded();
    // The default link: the gateway's page, the token in the fragment.
    assert!(
        body.contains("http://127.0.0.1:8080/invite#token="),
        "{body}"
    );
    assert!(body.contains("Welcome to the support team!"));
    assert!(body.contains("agent"));
    assert_eq!(
        mail.header("Reply-To")
            .as_deref()
            .map(|r| r.contains("owner@example.com")),
        Some(true)
    );

    eventually("the invitation shows SENT", || async {
        app.invitation(&invited.id).await.delivery_status() == proto::DeliveryStatus::Sent
    })
    .await;

    let token = mail.token().expect("the email carries the token");
    let user = app.accept_named(&token, "Alice Agent").await.unwrap();
    let listed = app.list_users(proto::ListUsersRequest::default()).await;
    assert!(listed.users.iter().any(|u| u.id == user.id));

    smtp.wait_for(2, WAIT).await;
    let notices = smtp.messages_to("owner@example.com");
    assert_eq!(notices.len(), 1);
    assert!(notices[0].decoded().contains("Alice Agent"));
}

#[tokio::test]
async fn with_rabbitmq_unreachable_every_invitation_succeeds_and_each_email_arrives_once_after() {
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let port = proxy.port();
    let app = TestApp::spawn_with(|settings| {
        settings.relay = true;
        settings.amqp.url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f").into();
        // 200 invitations by one inviter: over the invitation rate limits.
        without_invitation_limits(settings);
    })
    .await;
    let smtp = SmtpServer::start().await;
    let _mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;
    eventually("the relay is connected", || async {
        relay_status(&app).await == ServingStatus::Serving
    })
    .await;

    proxy.cut();
    eventually("the relay reports NOT_SERVING", || async {
        relay_status(&app).await == ServingStatus::NotServing
    })
    .await;
    let mut client = app.client().await;
    for chunk in (0..200).collect::<Vec<_>>().chunks(20) {
        let calls = chunk.iter().map(|i| {
            let mut client = client.clone();
            let token = app.owner_token.clone();
            async move {
                client
                    .invite_user(authed(
                        &token,
                        proto::InviteUserRequest {
                            email: format!("person{i}@example.com"),
                            role: "agent".into(),
                            ..Default::default()
                        },
                    ))
                    .await
            }
        });
        for result in futures::future::join_all(calls).await {
            result.expect("RabbitMQ being down never fails an RPC");
        }
    }
    let backlog: i64 = app
        .count(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL",
            &[],
        )
        .await;
    assert_eq!(
        backlog, 400,
        "200 events and 200 mail commands wait in the outbox"
    );
    assert!(smtp.messages().is_empty());

    proxy.restore();
    smtp.wait_for(200, Duration::from_secs(90)).await;
    // Time for any duplicate to show up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for mail in smtp.messages() {
        for recipient in mail.recipients {
            *per_recipient.entry(recipient).or_default() += 1;
        }
    }
    assert_eq!(per_recipient.len(), 200);
    assert!(
        per_recipient.values().all(|n| *n == 1),
        "an email arrived twice"
    );
    eventually("the relay reports SERVING", || async {
        relay_status(&app).await == ServingStatus::Serving
    })
    .await;
    client
        .list_users(authed(&app.owner_token, proto::ListUsersRequest::default()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_mailer_killed_after_sending_but_before_acking_sends_nothing_more() {
    let app = with_relay().await;
    let smtp = SmtpServer::start().await;
    let proxy = std::sync::Arc::new(TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await);
    let mut settings = app.mailer_settings(&smtp.url());
    settings.amqp.url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port()).into();
    let first = app.start_mailer(settings).await;
    // The moment the email is handed over, the mailer loses RabbitMQ: it can
    // record the send but can neither report it nor ack the command.
    let cut = proxy.clone();
    smtp.on_message(move |_| cut.cut());

    let invited = invite(&app, "bob@example.com", "").await;
    smtp.wait_for(1, WAIT).await;
    let db = app.db().await;
    eventually("the mailer recorded the send", || async {
        db.query_one("SELECT count(*) FROM mailer_sent_messages", &[])
            .await
            .map(|row| row.get::<_, i64>(0) == 1)
            .unwrap_or(false)
    })
    .await;
    first.kill();

    // A new mailer gets the redelivered command.
    let second = app.start_mailer(app.mailer_settings(&smtp.url())).await;
    eventually("the redelivery is reported as delivered", || async {
        app.invitation(&invited.id).await.delivery_status() == proto::DeliveryStatus::Sent
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp.messages_to("bob@example.com").len(),
        1,
        "the redelivery sent nothing more"
    );
    second.stop().await;
}

#[tokio::test]
async fn a_refused_recipient_shows_delivery_failed_with_the_reason() {
    let app = with_relay().await;
    let smtp = SmtpServer::start().await;
    smtp.refuse("bounce@example.com");
    let _mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;

    let invited = invite(&app, "bounce@example.com", "").await;
    eventually("the invitation shows FAILED", || async {
        app.invitation(&invited.id).await.delivery_status() == proto::DeliveryStatus::Failed
    })
    .await;
    let failed = app.invitation(&invited.id).await;
    assert!(
        failed
            .delivery_failure_reason
            .contains("Recipient address rejected"),
        "{}",
        failed.delivery_failure_reason
    );
    assert!(smtp.messages().is_empty());
    // The command went to the dead-letter queue.
    let (_connection, channel, _) =
        tap(&app.topology.events_exchange(), ExchangeKind::Topic, &[]).await;
    let dead = drain(&channel, &app.topology.mailer_dead_letter_queue(), 1, WAIT).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].routing_key.as_str(), "mail.invitation");
}

#[tokio::test]
async fn a_transient_smtp_failure_is_retried_and_the_email_goes_out_once() {
    let app = with_relay().await;
    let smtp = SmtpServer::start().await;
    smtp.defer("grey@example.com", 2);
    let _mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;

    let invited = invite(&app, "grey@example.com", "").await;
    eventually("the invitation shows SENT", || async {
        app.invitation(&invited.id).await.delivery_status() == proto::DeliveryStatus::Sent
    })
    .await;
    assert_eq!(smtp.messages_to("grey@example.com").len(), 1);
}

#[tokio::test]
async fn an_smtp_server_that_keeps_deferring_ends_in_the_dead_letter_queue() {
    let app = with_relay().await;
    let smtp = SmtpServer::start().await;
    smtp.defer("later@example.com", 100);
    // Three attempts (the test kit's setting), then the dead-letter queue.
    let _mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;

    let invited = invite(&app, "later@example.com", "").await;
    eventually("the invitation shows FAILED", || async {
        app.invitation(&invited.id).await.delivery_status() == proto::DeliveryStatus::Failed
    })
    .await;
    assert!(
        app.invitation(&invited.id)
            .await
            .delivery_failure_reason
            .contains("Greylisted")
    );
    let (_connection, channel, _) =
        tap(&app.topology.events_exchange(), ExchangeKind::Topic, &[]).await;
    let dead = drain(&channel, &app.topology.mailer_dead_letter_queue(), 1, WAIT).await;
    assert_eq!(dead.len(), 1);
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn no_broadcast_event_and_no_log_line_contains_a_token() {
    let app = with_relay().await;
    let smtp = SmtpServer::start().await;
    let _mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;
    let (_connection, channel, queue) =
        tap(&app.topology.events_exchange(), ExchangeKind::Topic, &["#"]).await;

    let carol = invite(&app, "carol@example.com", "").await;
    smtp.wait_for(1, WAIT).await;
    app.client()
        .await
        .resend_invitation(authed(
            &app.owner_token,
            proto::ResendInvitationRequest {
                invitation_id: carol.id.clone(),
                expires_in: None,
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    let mails = smtp.wait_for(2, WAIT).await;
    let tokens: Vec<String> = mails.iter().filter_map(|m| m.token()).collect();
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1], "resending rotates the token");
    app.client()
        .await
        .accept_invitation(proto::AcceptInvitationRequest {
            token: tokens[1].clone(),
            display_name: "Carol".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap();
    smtp.wait_for(3, WAIT).await;

    // created, resent, accepted, and two delivery results at least.
    let events = drain(&channel, &queue, 5, WAIT).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.routing_key.as_str()).collect();
    for kind in [
        "invitation.created",
        "invitation.resent",
        "invitation.accepted",
        "invitation.delivered",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let logs = logs::captured();
    assert!(logs.contains("invitation"), "logs were captured");
    for token in &tokens {
        for event in &events {
            assert!(
                !event
                    .data
                    .windows(token.len())
                    .any(|w| w == token.as_bytes()),
                "{} carries a token",
                event.routing_key
            );
        }
        assert!(
            !logs.contains(token.as_str()),
            "a log line contains a token"
        );
        // Nor as the bytes of a message body printed with `{:?}`.
        let as_bytes = format!("{:?}", token.as_bytes());
        assert!(
            !logs.contains(as_bytes.trim_matches(['[', ']'])),
            "a log line contains a token's bytes"
        );
    }
    let published_commands: i64 = app.count("SELECT count(*) FROM outbox WHERE routing_key LIKE 'mail.%' AND published_at IS NOT NULL AND length(payload) > 0", &[]).await;
    assert_eq!(
        published_commands, 0,
        "no copy of a token stays in the outbox"
    );
}

/// The invitation token at rest: sealed for the mailer, it is found in no
/// row of the database (a `pg_dump`) and in no queue, not even the
/// dead-letter queue that keeps a failed email's command for days; the
/// delivered email still carries a link that accepts.
#[tokio::test]
async fn an_invitation_token_is_found_nowhere_at_rest_not_even_in_the_dead_letter_queue() {
    let app = with_relay().await;
    let smtp = SmtpServer::start().await;
    smtp.refuse("bounce@example.com");
    let _mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;
    // Everything routed to the commands exchange is copied here too.
    let (_connection, channel, copies) = tap(
        &app.topology.commands_exchange(),
        ExchangeKind::Direct,
        &[wowchat_users_api::topology::commands::SEND_INVITATION_EMAIL],
    )
    .await;

    let delivered = invite(&app, "ok@example.com", "").await;
    let failed = invite(&app, "bounce@example.com", "").await;
    eventually("one email sent, one failed", || async {
        app.invitation(&delivered.id).await.delivery_status() == proto::DeliveryStatus::Sent
            && app.invitation(&failed.id).await.delivery_status() == proto::DeliveryStatus::Failed
    })
    .await;
    let mail = smtp.messages_to("ok@example.com").remove(0);

    // No row: the whole database as a backup would hold it.
    let dump = std::process::Command::new("pg_dump")
        .args(["-h", "127.0.0.1", "-U", "postgres", "--data-only", "-d"])
        .arg(&app.database_name)
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(dump.stdout.len() > 1000, "the dump holds the data");
    // No queue: the copies of the commands and the dead letter.
    let mut messages: Vec<Vec<u8>> = drain(&channel, &copies, 2, WAIT)
        .await
        .into_iter()
        .map(|delivery| delivery.data)
        .collect();
    assert_eq!(messages.len(), 2);
    let dead = drain(&channel, &app.topology.mailer_dead_letter_queue(), 1, WAIT).await;
    assert_eq!(dead.len(), 1);
    // The failed email's token, as only the mailer's key can open it.
    let dead_command =
        <wowchat_users_api::events::v1::SendInvitationEmail as prost::Message>::decode(
            dead[0].data.as_slice(),
        )
        .unwrap();
    assert!(dead_command.token.is_empty(), "a token in the clear");
    let tokens = [
        mail.token().expect("the email carries its token"),
        wowchat_users_testkit::open_token(&dead_command),
    ];
    assert_eq!(tokens[1].len(), 43);
    messages.extend(dead.into_iter().map(|delivery| delivery.data));
    for token in &tokens {
        let needle = token.as_bytes();
        // pg_dump writes bytea (the outbox payload) as hex.
        let hex: String = needle.iter().map(|b| format!("{b:02x}")).collect();
        for form in [needle, hex.as_bytes()] {
            assert!(
                !dump.stdout.windows(form.len()).any(|w| w == form),
                "the token is in the database"
            );
        }
        for message in &messages {
            assert!(
                !message.windows(needle.len()).any(|w| w == needle),
                "the token is in a queue"
            );
        }
    }

    // The delivered link still accepts.
    app.accept_named(&tokens[0], "Ok")
        .await
        .expect("the emailed token accepts");
}
