//! One invitation is one trace: the caller's `traceparent` reaches the REST
//! gateway, whose gRPC call carries it to the service; the change's
//! transaction stores it with the outbox rows; the relay publishes them in
//! that trace; the mailer continues it, sends over SMTP and publishes the
//! result, whose recording continues it again. Read back from the SDK's
//! in-memory exporter, by this test's own trace id.

use std::time::Duration;

use serde_json::json;
use tonic::codegen::http::Method;
use wowchat_users_testkit::{
    SmtpServer,
    traces::{CallerTrace, FinishedSpan},
};

use crate::{rest::Rest, support::eventually};

const WAIT: Duration = Duration::from_secs(30);

/// The one span of `spans` named `name`.
fn one<'a>(spans: &'a [FinishedSpan], name: &str) -> &'a FinishedSpan {
    let named: Vec<&FinishedSpan> = spans.iter().filter(|span| span.name == name).collect();
    assert_eq!(named.len(), 1, "spans named {name:?} in {spans:#?}");
    named[0]
}

fn assert_parent(child: &FinishedSpan, parent_span_id: &str, parent: &str) {
    assert_eq!(
        child.parent_span_id, parent_span_id,
        "{:?} is not a child of {parent}",
        child.name
    );
}

/// The owner invites `email` as an agent through the gateway, the call
/// carrying the `traceparent` of `caller`.
async fn invite_in_trace(rest: &Rest, caller: &CallerTrace, email: &str) {
    let invitation = rest
        .raw(
            Method::POST,
            "/v1/invitations",
            rest.owner(),
            &[("traceparent", &caller.traceparent)],
            json!({"email": email, "role": "agent"})
                .to_string()
                .into_bytes(),
        )
        .await
        .ok();
    assert!(invitation["invitation"]["id"].is_string(), "{invitation}");
}

#[tokio::test]
async fn one_invitation_is_one_trace_from_the_gateway_to_the_recorded_delivery_result() {
    // A gateway that internal callers reach: it continues their traces.
    let rest = Rest::spawn_with_gateway(
        |settings| settings.relay = true,
        |gateway| gateway.gateway_trust_traceparent = true,
    )
    .await;
    let smtp = SmtpServer::start().await;
    let _mailer = rest
        .app
        .start_mailer(rest.app.mailer_settings(&smtp.url()))
        .await;
    let caller = CallerTrace::new();

    invite_in_trace(&rest, &caller, "traced@example.com").await;
    let mail = smtp.wait_for(1, WAIT).await.remove(0);
    // The trace is whole once the delivery result's span has ended.
    eventually("the delivery result is recorded in the trace", || async {
        caller
            .spans()
            .iter()
            .any(|span| span.name == "process invitation.delivered")
    })
    .await;

    let spans = caller.spans();
    let gateway = one(&spans, "POST /v1/invitations");
    let rpc = one(&spans, "wowchat.users.v1.UserService/InviteUser");
    let transaction = one(&spans, "postgres transaction");
    let announce = one(&spans, "publish invitation.created");
    let mailer = one(&spans, "process mail.invitation");
    let send = one(&spans, "send email");
    let result = one(&spans, "process invitation.delivered");
    assert_parent(gateway, &caller.span_id, "the caller");
    assert_parent(rpc, &gateway.span_id, "the gateway's span");
    assert_parent(transaction, &rpc.span_id, "the RPC");
    assert_parent(announce, &transaction.span_id, "the transaction");
    // A command the broker returned (the mailer's queue not bound yet) is
    // published again: each try is a span of its own.
    let publishes: Vec<&FinishedSpan> = spans
        .iter()
        .filter(|span| span.name == "publish mail.invitation")
        .collect();
    for publish in &publishes {
        assert_parent(publish, &transaction.span_id, "the transaction");
    }
    assert!(
        publishes
            .iter()
            .any(|publish| mailer.parent_span_id == publish.span_id),
        "{mailer:#?} is not a child of the relay's publish"
    );
    assert_parent(send, &mailer.span_id, "the mailer's span");
    assert_parent(result, &mailer.span_id, "the mailer's span");
    for span in &spans {
        let parent_in_trace = span.parent_span_id == caller.span_id
            || spans
                .iter()
                .any(|other| other.span_id == span.parent_span_id);
        assert!(parent_in_trace, "{span:#?} has no parent in the trace");
    }

    // No credential in any span: not the bearer token, not the invitation's.
    let token = mail.token().expect("the email carries a token");
    for span in &spans {
        for (key, value) in &span.attributes {
            for secret in [rest.app.owner_token.as_str(), token.as_str()] {
                assert!(
                    !value.contains(secret),
                    "{} holds a secret in {key}",
                    span.name
                );
            }
        }
    }
}

/// From the public edge (the default), a client's `traceparent` is not
/// continued: it cannot choose the trace id nor force sampling. Here the
/// sampler records only traces a caller started sampled (it is
/// parent-based, off at the root): nothing of the call is in the client's
/// trace, nor anywhere else.
#[tokio::test]
async fn the_public_gateway_does_not_continue_a_clients_trace() {
    let rest = Rest::spawn_with(|_| {}).await;
    let caller = CallerTrace::new();
    invite_in_trace(&rest, &caller, "untraced@example.com").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans = caller.spans();
    assert!(spans.is_empty(), "the client's trace went on: {spans:#?}");
}
