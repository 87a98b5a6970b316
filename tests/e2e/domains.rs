//! Verified domains, against a real DNS server of the test's own (dnsmasq):
//! a claim is verified through its TXT record, belongs to one workspace,
//! lapses when the record goes; consumer and disposable domains are
//! refused; JoinByEmail follows the enrollment mode and answers alike.

use std::time::Duration;

use tonic::Status;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    TestApp, authed, dnsmasq::Dnsmasq, expect_invalid_argument, expect_permission_missing,
    expect_refused, violated_fields,
};

async fn add(app: &TestApp, bearer: &str, domain: &str) -> Result<proto::Domain, Status> {
    Ok(app
        .joining()
        .await
        .add_domain(authed(
            bearer,
            proto::AddDomainRequest {
                domain: domain.into(),
            },
        ))
        .await?
        .into_inner()
        .domain
        .expect("a domain"))
}

async fn verify(app: &TestApp, bearer: &str, id: &str) -> Result<proto::Domain, Status> {
    Ok(app
        .joining()
        .await
        .verify_domain(authed(
            bearer,
            proto::VerifyDomainRequest {
                domain_id: id.into(),
            },
        ))
        .await?
        .into_inner()
        .domain
        .expect("a domain"))
}

async fn get(app: &TestApp, id: &str) -> proto::Domain {
    app.joining()
        .await
        .get_domain(authed(
            &app.owner_token,
            proto::GetDomainRequest {
                domain_id: id.into(),
            },
        ))
        .await
        .expect("get")
        .into_inner()
        .domain
        .expect("a domain")
}

async fn set_mode(app: &TestApp, id: &str, mode: proto::EnrollmentMode, role: &str) {
    app.joining()
        .await
        .update_domain(authed(
            &app.owner_token,
            proto::UpdateDomainRequest {
                domain_id: id.into(),
                enrollment_mode: mode as i32,
                default_role: Some(role.into()),
            },
        ))
        .await
        .expect("update");
}

async fn join(app: &TestApp, email: &str) {
    app.joining()
        .await
        .join_by_email(proto::JoinByEmailRequest {
            email: email.into(),
            ..Default::default()
        })
        .await
        .expect("the same empty OK, always");
}

/// A verified `acme.test` of `app`'s workspace, published in `dns`.
async fn verified(app: &TestApp, dns: &mut Dnsmasq) -> proto::Domain {
    let claim = add(app, &app.owner_token, "acme.test").await.unwrap();
    dns.publish(&[(&claim.record_name, &claim.record_value)]);
    verify(app, &app.owner_token, &claim.id).await.unwrap()
}

#[tokio::test]
async fn a_domain_is_verified_by_its_txt_record_belongs_to_one_workspace_and_lapses_when_it_goes() {
    let mut dns = Dnsmasq::start(&[]);
    let address = dns.address;
    let app = TestApp::spawn_with(|s| {
        s.dns_resolver = Some(address);
        s.domain_recheck_secs = 1;
    })
    .await;
    let claim = add(&app, &app.owner_token, "Acme.TEST").await.unwrap();
    assert_eq!(claim.domain, "acme.test");
    assert_eq!(claim.state, proto::DomainState::Pending as i32);
    assert_eq!(claim.record_name, "_wowchat-verification.acme.test");
    assert!(
        claim
            .record_value
            .starts_with("wowchat-domain-verification=")
    );

    // Not published yet; then published with another value.
    expect_refused(
        verify(&app, &app.owner_token, &claim.id).await,
        "DOMAIN_RECORD_NOT_FOUND",
    );
    dns.publish(&[(
        &claim.record_name,
        "wowchat-domain-verification=someone-else",
    )]);
    expect_refused(
        verify(&app, &app.owner_token, &claim.id).await,
        "DOMAIN_RECORD_NOT_FOUND",
    );
    dns.publish(&[
        (&claim.record_name, "v=spf1 -all"),
        (&claim.record_name, &claim.record_value),
    ]);
    let done = verify(&app, &app.owner_token, &claim.id).await.unwrap();
    assert_eq!(done.state, proto::DomainState::Verified as i32);
    assert!(done.verify_time.is_some());
    assert_eq!(app.activity_count("domain.verified").await, 1);

    // Another workspace may claim it, and publish its own record, but the
    // domain stays with the first.
    let other = app.other_workspace().await;
    let rival = add(&app, &other.owner_token, "acme.test").await.unwrap();
    dns.publish(&[
        (&claim.record_name, &claim.record_value),
        (&rival.record_name, &rival.record_value),
    ]);
    expect_refused(
        verify(&app, &other.owner_token, &rival.id).await,
        "DOMAIN_VERIFIED_ELSEWHERE",
    );

    // The record goes: the next re-check lapses the domain.
    dns.publish(&[]);
    let mut state = 0;
    for _ in 0..100 {
        state = get(&app, &claim.id).await.state;
        if state == proto::DomainState::Lapsed as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state,
        proto::DomainState::Lapsed as i32,
        "lapsed at a re-check"
    );
    assert_eq!(app.activity_count("domain.lapsed").await, 1);
    assert_eq!(app.outbox_count("domain.lapsed").await, 1);
    // Published again, it verifies again.
    dns.publish(&[(&claim.record_name, &claim.record_value)]);
    let again = verify(&app, &app.owner_token, &claim.id).await.unwrap();
    assert_eq!(again.state, proto::DomainState::Verified as i32);
}

#[tokio::test]
async fn consumer_and_disposable_domains_are_refused_and_only_owners_claim() {
    let app = TestApp::spawn().await;
    for free in ["gmail.com", "Outlook.com", "eu.mailinator.com"] {
        let status = expect_invalid_argument(
            add(&app, &app.owner_token, free).await,
            "DOMAIN_NOT_VERIFIABLE",
        );
        assert_eq!(violated_fields(&status), ["domain"], "{free}");
    }
    let status = expect_invalid_argument(
        add(&app, &app.owner_token, "localhost").await,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["domain"]);
    let (_, admin_token) = app.member("admin@example.com", "admin").await;
    expect_permission_missing(add(&app, &admin_token, "acme.test").await);
    let claim = add(&app, &app.owner_token, "acme.test").await.unwrap();
    let twice = add(&app, &app.owner_token, "acme.test").await;
    assert_eq!(
        twice.expect_err("claimed once").code(),
        tonic::Code::AlreadyExists
    );
    // A claim left unverified past its week expires.
    let id: uuid::Uuid = claim.id.parse().unwrap();
    app.db()
        .await
        .execute(
            "UPDATE workspace_domains SET expires_at = now() - interval '1 second' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        get(&app, &claim.id).await.state,
        proto::DomainState::Expired as i32
    );
    expect_refused(
        verify(&app, &app.owner_token, &claim.id).await,
        "DOMAIN_CLAIM_EXPIRED",
    );
}

#[tokio::test]
async fn join_by_email_follows_the_enrollment_mode_and_tells_a_stranger_nothing() {
    let mut dns = Dnsmasq::start(&[]);
    let address = dns.address;
    let app = TestApp::spawn_with(|s| s.dns_resolver = Some(address)).await;
    let domain = verified(&app, &mut dns).await;

    // MANUAL (the default): nothing.
    join(&app, "zoe@acme.test").await;
    assert!(app.invitation_mails_to("zoe@acme.test").await.is_empty());

    // INVITE: an invitation email with the default role, in the claimer's name.
    set_mode(
        &app,
        &domain.id,
        proto::EnrollmentMode::Invite,
        "supervisor",
    )
    .await;
    join(&app, "zoe@acme.test").await;
    let mails = app.invitation_mails_to("zoe@acme.test").await;
    assert_eq!(mails.len(), 1);
    let invitation = mails[0].invitation.clone().unwrap();
    assert_eq!(invitation.role, "supervisor");
    assert_eq!(invitation.inviter_user_id, app.owner_id.to_string());
    // Again: already invited, nothing more, the same answer.
    join(&app, "zoe@acme.test").await;
    assert_eq!(app.invitation_mails_to("zoe@acme.test").await.len(), 1);

    // SUGGEST: a join request to confirm, proposing the default role.
    set_mode(&app, &domain.id, proto::EnrollmentMode::Suggest, "agent").await;
    join(&app, "yan@acme.test").await;
    assert!(app.invitation_mails_to("yan@acme.test").await.is_empty());
    let token = app
        .join_confirmation_tokens("yan@acme.test")
        .await
        .remove(0);
    app.confirm_join_request(&token).await.unwrap();
    let requests = app.join_requests(&app.owner_token).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].proposed_role, "agent");

    // No workspace verified these: the same empty OK, and no email.
    for email in ["xi@unclaimed.test", "wu@gmail.com"] {
        join(&app, email).await;
        assert!(app.invitation_mails_to(email).await.is_empty());
        assert!(app.join_confirmation_tokens(email).await.is_empty());
    }
    // The allowed-domains setting still restricts: an INVITE domain outside
    // it sends nothing.
    set_mode(&app, &domain.id, proto::EnrollmentMode::Invite, "agent").await;
    app.update_settings(0, &["example.com"]).await.unwrap();
    join(&app, "vic@acme.test").await;
    assert!(app.invitation_mails_to("vic@acme.test").await.is_empty());
}
