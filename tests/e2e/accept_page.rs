//! The invitation page the email links to (`GET /invite` on the gateway),
//! in a real browser (Debian's headless Chromium over CDP): from the link
//! in the email the test's SMTP server received to a member who signs in
//! with the password typed in the page, at a phone's and a desktop's
//! width; every refusal in its words, each set up for real; an axe-core
//! audit of the form, the success and every refusal; no request to another
//! origin, the page's security headers, and no token in any log.
//!
//! The screenshots stay in `target/accept-page-screenshots/` for a person
//! to look at.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{Value, json};
use tokio_util::sync::DropGuard;
use wowchat_gateway::invite_page;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    MailerHandle, SmtpServer, TestApp,
    browser::{Browser, DESKTOP, PHONE, Page, Viewport},
    deactivate, invitation_request, logs, revoke_request, without_invitation_limits,
};

use crate::support::{assert_no_problems, eventually, gateway_settings, start_gateway};

/// The key this test's gateway and server share.
const KEY: &str = "test gateway key, at least 32 bytes long";
/// Where a new member goes after accepting (WOWCHAT_GATEWAY_APP_URL).
const APP_URL: &str = "https://app.wowchat.example/";
/// Attempts a token gets a minute (WOWCHAT_INVITATION_ATTEMPTS_PER_TOKEN_PER_MINUTE).
const ATTEMPTS_PER_TOKEN: u32 = 4;
/// The password the invitees type, and one the service refuses.
const TYPED_PASSWORD: &str = "four words typed here";
const WEAK_PASSWORD: &str = "short";
/// The page's states a submission waits for: the field error shown, and
/// the invitation accepted.
const FIELD_ERROR: &str = "!document.getElementById('password-error').hidden";
const ACCEPTED: &str = "document.getElementById('result').dataset.reason === 'ACCEPTED'";
/// How long the page may take to answer.
const WAIT: Duration = Duration::from_secs(15);
/// The command that installs axe-core, named when it is missing.
const SETUP: &str = "scripts/setup-machine";

/// A server (relay on), its gateway with the page, and, for the journey, a
/// mailer that links to the page and the SMTP server it sends to; and
/// axe-core, which every browser test of the page audits it with.
struct Site {
    app: TestApp,
    base: String,
    axe: String,
    smtp: SmtpServer,
    _mailer: Option<MailerHandle>,
    _gateway: DropGuard,
}

async fn site(with_mail: bool) -> Site {
    // First: a missing axe-core fails the test before anything starts.
    let axe = axe_core();
    let app = TestApp::spawn_with(|settings| {
        settings.gateway_key = Some(KEY.into());
        settings.relay = with_mail;
        settings.invitation_attempts_per_token_per_minute = ATTEMPTS_PER_TOKEN;
        without_invitation_limits(settings);
    })
    .await;
    let mut settings = gateway_settings(&app);
    settings.gateway_key = Some(KEY.into());
    settings.gateway_app_url = APP_URL.into();
    let (address, stop) = start_gateway(settings).await;
    let base = format!("http://{address}");
    let smtp = SmtpServer::start().await;
    let mailer = if with_mail {
        let mut settings = app.mailer_settings(&smtp.url());
        // The default link (WOWCHAT_ACCEPT_URL), on this test's gateway.
        settings.accept_url = format!("{base}/invite");
        Some(app.start_mailer(settings).await)
    } else {
        None
    };
    Site {
        app,
        base,
        axe,
        smtp,
        _mailer: mailer,
        _gateway: stop,
    }
}

/// axe-core's script, installed by `scripts/setup-machine`; `AXE_CORE_JS`
/// names another copy. Missing, the test fails: an audit that did not run
/// passed nothing.
fn axe_core() -> String {
    let path = std::env::var_os("AXE_CORE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/wowchat-users/axe-core/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "axe-core is missing ({}: {error}): run `{SETUP}`, which installs it \
             (npm install --prefix ~/.cache/wowchat-users/axe-core axe-core@4.10.3), \
             or set AXE_CORE_JS to axe.min.js",
            path.display()
        )
    })
}

/// The page's words in English, by message id, as the script gets them.
fn catalog() -> Value {
    Value::Object(invite_page::messages(wowchat_i18n::Locale::English).unwrap())
}

fn words(id: &str) -> String {
    catalog()[id]
        .as_str()
        .unwrap_or_else(|| panic!("no message {id}"))
        .to_owned()
}

/// `target/accept-page-screenshots/<name>`, emptied.
fn artifacts(name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .to_path_buf();
    let dir = target.join("accept-page-screenshots").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Which part of the page shows once it has answered: `invite` (the form)
/// or `result` (success or refusal).
const SHOWN: &str = r#"(() => {
  const shown = id => !document.getElementById(id).hidden;
  return shown('invite') ? 'invite' : shown('result') ? 'result' : null;
})()"#;

/// What the page shows and where the focus is.
const SEEN: &str = r#"(() => {
  const text = id => document.getElementById(id).textContent.trim();
  const shown = id => !document.getElementById(id).hidden;
  const link = document.getElementById('result-link');
  return {
    href: location.href,
    title: document.title,
    focused: document.activeElement && document.activeElement.id,
    inviteHeading: text('invite-heading'),
    inviteFrom: text('invite-from'),
    email: text('invite-email'),
    role: text('invite-role'),
    expires: text('invite-expires'),
    reason: document.getElementById('result').dataset.reason || null,
    heading: text('result-heading'),
    body: text('result-body'),
    link: shown('result-link') ? { text: link.textContent.trim(), href: link.href } : null,
    retry: shown('retry') ? text('retry') : null,
    status: text('status'),
    passwordError: shown('password-error') ? text('password-error') : null,
    passwordInvalid: document.getElementById('password').getAttribute('aria-invalid'),
    formError: shown('form-error') ? text('form-error') : null,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  };
})()"#;

/// Runs axe-core on the page as it is: its violations, described.
fn audit(browser: &mut Browser, page: &Page, axe: &str) -> anyhow::Result<Vec<String>> {
    if browser.evaluate(page, "typeof window.axe")? != json!("object") {
        // Its last statement's value is not wanted (nor serializable).
        browser.evaluate(page, &format!("{axe}\n;0"))?;
    }
    let found = browser.evaluate_awaited(
        page,
        r#"axe.run(document).then(r => ({
             passes: r.passes.length,
             violations: r.violations.map(v =>
               v.id + ' (' + v.impact + '): ' + v.help + ' at ' +
               v.nodes.map(n => n.target.join(' ')).join(', ')),
           }))"#,
    )?;
    // An audit that checked nothing would pass anything.
    if found["passes"].as_u64().is_none_or(|passes| passes < 10) {
        return Ok(vec![format!("axe checked next to nothing: {found}")]);
    }
    Ok(found["violations"]
        .as_array()
        .map(|all| all.iter().map(|v| v.to_string()).collect())
        .unwrap_or_else(|| vec![format!("axe gave no list: {found}")]))
}

/// Opens `url` at `viewport` and waits until the page shows the form or a
/// result.
fn open(browser: &mut Browser, viewport: Viewport, url: &str) -> anyhow::Result<Page> {
    let mut page = browser.open(viewport)?;
    browser.navigate(&mut page, url)?;
    browser.wait_until(&page, SHOWN, WAIT)?;
    Ok(page)
}

/// Types `password` into the focused field and presses Enter, waits until
/// `until` holds, and screenshots the page to `shot`: what it then shows.
fn submit(
    browser: &mut Browser,
    page: &Page,
    password: &str,
    until: &str,
    shot: &Path,
) -> anyhow::Result<Value> {
    browser.insert_text(page, password)?;
    browser.press(page, "Enter")?;
    browser.wait_until(page, until, WAIT)?;
    let seen = browser.evaluate(page, SEEN)?;
    browser.screenshot(page, shot)?;
    Ok(seen)
}

/// Every request of the page went to the gateway's origin, none carried
/// the token, and the page made the calls it should have.
fn check_requests(
    requests: &[String],
    base: &str,
    token: Option<&str>,
    expected_paths: &[&str],
) -> Vec<String> {
    let mut failures = Vec::new();
    let origin = format!("{base}/");
    for url in requests {
        if !url.starts_with(&origin) {
            failures.push(format!("a request to another origin: {url}"));
        }
        if token.is_some_and(|token| url.contains(token)) {
            failures.push(format!("a request carries the token: {url}"));
        }
    }
    for path in expected_paths {
        if !requests.iter().any(|url| *url == format!("{base}{path}")) {
            failures.push(format!("no request of {path} among {requests:?}"));
        }
    }
    failures
}

/// Fails with `what` unless `got` is the string `want`.
fn expect(fail: &mut dyn FnMut(String), what: &str, got: &Value, want: &str) {
    if got.as_str() != Some(want) {
        fail(format!("{what}: {got}, expected {want:?}"));
    }
}

/// [`expect`] of each `(what, field of seen, wanted)`, in order.
fn expect_all(fail: &mut dyn FnMut(String), seen: &Value, checks: &[(&str, &str, &str)]) {
    for (what, field, want) in checks {
        expect(fail, what, &seen[field], want);
    }
}

/// One invitee's way through the page, as the test saw it.
struct Journey {
    device: &'static str,
    email: String,
    name: String,
    link: String,
    token: String,
}

#[tokio::test]
async fn an_invitee_goes_from_the_emails_link_to_signed_in_at_phone_and_desktop_width() {
    let site = site(true).await;
    let app = &site.app;

    // Each invitee's link, from the email as it arrived.
    let mut journeys = Vec::new();
    for (device, email, name) in [
        ("phone", "ivy@example.com", "Ivy Invitee"),
        ("desktop", "dan@example.com", "Dan Desk"),
    ] {
        app.try_invite(proto::InviteUserRequest {
            message: "Welcome to the support team!".into(),
            ..invitation_request(email, "agent")
        })
        .await
        .expect("invited");
        eventually(&format!("the email to {email} arrives"), || async {
            !site.smtp.messages_to(email).is_empty()
        })
        .await;
        let mail = site.smtp.messages_to(email)[0].clone();
        let token = mail.token().expect("the email carries a token");
        let prefix = format!("{}/invite#token=", site.base);
        let text = mail.decoded();
        let start = text.find(&prefix).unwrap_or_else(|| {
            panic!("the email links to the gateway's page, token in the fragment: {text}")
        });
        let link: String = text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
            .collect();
        assert_eq!(link, format!("{prefix}{token}"));
        journeys.push(Journey {
            device,
            email: email.into(),
            name: name.into(),
            link,
            token,
        });
    }

    let dir = artifacts("journey");
    let (base, axe) = (site.base.clone(), site.axe.clone());
    let (journeys, failures) = tokio::task::spawn_blocking(move || {
        let failures = walk(&journeys, &base, &dir, &axe).expect("the browser runs");
        (journeys, failures)
    })
    .await
    .unwrap();
    assert_no_problems(&failures);

    // Each is a member who signs in with the password typed in the page.
    for journey in &journeys {
        let signed_in = app
            .auth()
            .await
            .sign_in(proto::SignInRequest {
                workspace_id: app.workspace_id.to_string(),
                email: journey.email.clone(),
                password: TYPED_PASSWORD.into(),
            })
            .await
            .unwrap_or_else(|status| panic!("{} signs in: {status:?}", journey.email))
            .into_inner();
        let user = signed_in.user.expect("the user");
        assert_eq!(user.display_name, journey.name);
        assert_eq!(user.role, "agent");
        assert!(!signed_in.access_token.is_empty());
    }

    // The page's headers, as the listener sends them.
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    for path in ["/invite", "/invite/page.js", "/invite/page.css"] {
        let response = client
            .get(format!("{}{path}", site.base).parse().unwrap())
            .await
            .expect("the gateway answers");
        let headers = response.headers().clone();
        let _ = response.into_body().collect().await;
        for (name, value) in invite_page::SECURITY_HEADERS {
            assert_eq!(
                headers.get(name).map(|v| v.as_bytes()),
                Some(value.as_bytes()),
                "{path}: {name}"
            );
        }
    }
    assert_eq!(
        invite_page::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    );

    // The fragment never left the browser: no log line of the gateway, the
    // service or the mailer holds a token.
    let logged = logs::captured();
    assert!(
        logged.contains("serving REST"),
        "the gateway's log is captured"
    );
    for journey in &journeys {
        assert!(
            !logged.contains(&journey.token),
            "the token of {} is in the log",
            journey.email
        );
    }
}

/// Both journeys in the browser: the problems seen.
fn walk(journeys: &[Journey], base: &str, dir: &Path, axe: &str) -> anyhow::Result<Vec<String>> {
    let mut browser = Browser::launch(&dir.join("chromium.log"))?;
    let mut failures = Vec::new();
    for journey in journeys {
        let (device, viewport) = match journey.device {
            "phone" => ("phone", PHONE),
            _ => ("desktop", DESKTOP),
        };
        let mut fail = |what: String| failures.push(format!("{device}: {what}"));
        let page = open(&mut browser, viewport, &journey.link)?;
        let seen = browser.evaluate(&page, SEEN)?;
        browser.screenshot(&page, &dir.join(format!("{device}-1-form.png")))?;
        // The token is out of the address bar at once.
        if seen["href"] != json!(format!("{base}/invite")) {
            fail(format!("the address bar still shows {}", seen["href"]));
        }
        expect(
            &mut fail,
            "the heading",
            &seen["inviteHeading"],
            "Join Acme Support on WowChat",
        );
        expect(
            &mut fail,
            "the inviter",
            &seen["inviteFrom"],
            "Olive Owner invited you to join Acme Support.",
        );
        expect(&mut fail, "the email", &seen["email"], &journey.email);
        expect(&mut fail, "the role", &seen["role"], "agent");
        expect(&mut fail, "the focus", &seen["focused"], "invite-heading");
        if seen["expires"].as_str().is_none_or(|e| e.len() < 8) {
            fail(format!("no expiry shown: {}", seen["expires"]));
        }
        if seen["scrollWidth"].as_f64() > seen["innerWidth"].as_f64()
            || seen["innerWidth"] != json!(viewport.width)
        {
            fail(format!(
                "scrolls sideways: {} px in {} px",
                seen["scrollWidth"], seen["innerWidth"]
            ));
        }
        for violation in audit(&mut browser, &page, axe)? {
            fail(format!("axe on the form: {violation}"));
        }

        // By keyboard: Tab from the heading to the name, type, then the password.
        browser.press(&page, "Tab")?;
        expect(
            &mut fail,
            "Tab from the heading goes to",
            &browser.evaluate(&page, "document.activeElement.id")?,
            "display-name",
        );
        browser.insert_text(&page, &journey.name)?;
        browser.evaluate(&page, "document.getElementById('password').focus()")?;
        if device == "desktop" {
            // Too short: the service's field violation shows by the field.
            let shot = dir.join(format!("{device}-2-weak-password.png"));
            let refused = submit(&mut browser, &page, WEAK_PASSWORD, FIELD_ERROR, &shot)?;
            let (field, summary) = (words("field-password"), words("field-summary"));
            expect_all(
                &mut fail,
                &refused,
                &[
                    ("the password's error", "passwordError", &field),
                    ("the password's aria-invalid", "passwordInvalid", "true"),
                    ("the focus after a field error", "focused", "password"),
                    ("the summary", "formError", &summary),
                ],
            );
            for violation in audit(&mut browser, &page, axe)? {
                fail(format!("axe on a field error: {violation}"));
            }
            browser.evaluate(&page, "document.getElementById('password').value = ''")?;
        }
        let shot = dir.join(format!("{device}-3-success.png"));
        let done = submit(&mut browser, &page, TYPED_PASSWORD, ACCEPTED, &shot)?;
        let next = words("success-body").replace("{email}", &journey.email);
        expect_all(
            &mut fail,
            &done,
            &[
                ("the success", "heading", "Welcome to Acme Support!"),
                ("what to do next", "body", &next),
            ],
        );
        if done["link"] != json!({ "text": "Open WowChat", "href": APP_URL }) {
            fail(format!("the Open WowChat link: {}", done["link"]));
        }
        expect(
            &mut fail,
            "the focus after success",
            &done["focused"],
            "result-heading",
        );
        // The status region reads the outcome out.
        let said = format!(
            "document.getElementById('status').textContent === {}",
            json!(words("success-status"))
        );
        if let Err(error) = browser.wait_until(&page, &said, WAIT) {
            fail(format!("the status region: {error}"));
        }
        for violation in audit(&mut browser, &page, axe)? {
            fail(format!("axe on the success: {violation}"));
        }
        let requests = browser.requests_so_far(&page)?;
        for problem in check_requests(
            &requests,
            base,
            Some(&journey.token),
            &[
                "/invite",
                "/invite/page.css",
                "/invite/page.js",
                "/v1/invitations:preview",
                "/v1/invitations:accept",
            ],
        ) {
            fail(problem);
        }
        browser.close(page)?;

        if device == "phone" {
            // The same link again: accepted already, sign in instead.
            let again = open(&mut browser, viewport, &journey.link)?;
            let seen = browser.evaluate(&again, SEEN)?;
            browser.screenshot(&again, &dir.join(format!("{device}-4-accepted-again.png")))?;
            expect(
                &mut fail,
                "opened again",
                &seen["heading"],
                &words("error-INVITATION_ALREADY_ACCEPTED-heading"),
            );
            if seen["link"] != json!({ "text": "Sign in to WowChat", "href": APP_URL }) {
                fail(format!("no sign-in link: {}", seen["link"]));
            }
            browser.close(again)?;
        }
    }
    Ok(failures)
}

/// One refusal: how it is set up, and what the page must say.
struct Refusal {
    name: &'static str,
    /// The page's URL after `/invite`.
    fragment: String,
    reason: &'static str,
}

#[tokio::test]
async fn every_refusal_reads_as_plain_words_with_what_to_do_next() {
    let site = site(false).await;
    let app = &site.app;
    let mut refusals = Vec::new();
    let mut add = |name, token: &str, reason| {
        refusals.push(Refusal {
            name,
            fragment: format!("#token={token}"),
            reason,
        })
    };

    // Expired: its time is past.
    let expired = app.invite("expired@example.com", "agent").await;
    let token = app.invitation_token(&expired.id).await;
    app.expire_invitation(&expired.id).await;
    add("expired", &token, "INVITATION_EXPIRED");

    // Revoked by the owner.
    let revoked = app.invite("revoked@example.com", "agent").await;
    let token = app.invitation_token(&revoked.id).await;
    app.as_owner()
        .users
        .revoke_invitation(revoke_request(&revoked.id))
        .await
        .expect("revoked");
    add("revoked", &token, "INVITATION_REVOKED");

    // Accepted already.
    let accepted = app.invite("accepted@example.com", "agent").await;
    let token = app.invitation_token(&accepted.id).await;
    app.accept(&token).await.expect("accepted once");
    add("already-accepted", &token, "INVITATION_ALREADY_ACCEPTED");

    // The inviter was deactivated after sending it.
    let (admin, admin_bearer) = app.member("amy.admin@example.com", "admin").await;
    let by_admin = app
        .as_(&admin_bearer)
        .users
        .invite_user(invitation_request("by-admin@example.com", "agent"))
        .await
        .expect("the admin invites")
        .into_inner()
        .invitation
        .unwrap();
    let token = app.invitation_token(&by_admin.id).await;
    app.manage(&admin.id, deactivate("left"))
        .await
        .expect("deactivated");
    add("inviter-deactivated", &token, "INVITER_NOT_AUTHORIZED");

    // Tried too often: the token's attempts are spent.
    let tried = app.invite("tried@example.com", "agent").await;
    let token = app.invitation_token(&tried.id).await;
    for _ in 0..ATTEMPTS_PER_TOKEN {
        app.preview(&token).await.expect("within the limit");
    }
    add("too-many-attempts", &token, "INVITATION_ATTEMPTS_EXCEEDED");

    // A token nobody holds, and a link cut before its token.
    add(
        "unknown-token",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "INVITATION_NOT_FOUND",
    );
    refusals.push(Refusal {
        name: "no-token",
        fragment: String::new(),
        reason: "INVITATION_NOT_FOUND",
    });

    // Seats: a pending invitation holds its seat, so a full workspace
    // still lets its invitee in (SEAT_LIMIT_REACHED never answers the
    // page's calls; its words are in the catalog for when it does).
    let seated = app.invite("seated@example.com", "agent").await;
    let seated_token = app.invitation_token(&seated.id).await;
    // The owner and the pending invitations already take more than one seat.
    app.set_seat_limit(1).await;
    let full = app
        .try_invite(invitation_request("one-too-many@example.com", "agent"))
        .await;
    assert_eq!(
        full.as_ref()
            .map_err(wowchat_users_testkit::reason)
            .err()
            .as_deref(),
        Some("SEAT_LIMIT_REACHED"),
        "the seats are full: {full:?}"
    );

    let dir = artifacts("refusals");
    let (base, axe) = (site.base.clone(), site.axe.clone());
    let failures = tokio::task::spawn_blocking(move || {
        look_at_refusals(&refusals, &seated_token, &base, &dir, &axe).expect("the browser runs")
    })
    .await
    .unwrap();
    assert_no_problems(&failures);
}

fn look_at_refusals(
    refusals: &[Refusal],
    seated_token: &str,
    base: &str,
    dir: &Path,
    axe: &str,
) -> anyhow::Result<Vec<String>> {
    let mut browser = Browser::launch(&dir.join("chromium.log"))?;
    let mut failures = Vec::new();
    for refusal in refusals {
        let mut fail = |what: String| failures.push(format!("{}: {what}", refusal.name));
        let page = open(
            &mut browser,
            PHONE,
            &format!("{base}/invite{}", refusal.fragment),
        )?;
        let seen = browser.evaluate(&page, SEEN)?;
        browser.screenshot(&page, &dir.join(format!("{}-phone.png", refusal.name)))?;
        if seen["reason"] != json!(refusal.reason) {
            fail(format!(
                "the page read {}, expected {}",
                seen["reason"], refusal.reason
            ));
        }
        let heading = words(&format!("error-{}-heading", refusal.reason));
        if seen["heading"] != json!(heading) {
            fail(format!("heading {}, expected {heading:?}", seen["heading"]));
        }
        let body = seen["body"].as_str().unwrap_or_default();
        if refusal.reason == "INVITATION_ATTEMPTS_EXCEEDED" {
            // The wait, from the error's RetryInfo, in words.
            let wait = body
                .strip_prefix("This invitation was tried too many times in a short while. Wait ")
                .and_then(|rest| rest.strip_suffix(", then try again."));
            let seconds = wait
                .and_then(|w| {
                    w.strip_suffix(" seconds")
                        .or_else(|| w.strip_suffix(" second"))
                })
                .and_then(|n| n.parse::<u32>().ok());
            if !seconds.is_some_and(|s| (1..=60).contains(&s)) {
                fail(format!("no wait in seconds in {body:?}"));
            }
            if seen["retry"] != json!("Try again") {
                fail(format!("no Try again button: {}", seen["retry"]));
            }
        } else {
            let expected = words(&format!("error-{}-body", refusal.reason));
            if body != expected {
                fail(format!("body {body:?}, expected {expected:?}"));
            }
        }
        let signs_in = refusal.reason == "INVITATION_ALREADY_ACCEPTED";
        if signs_in != (seen["link"] == json!({ "text": "Sign in to WowChat", "href": APP_URL })) {
            fail(format!("the sign-in link: {}", seen["link"]));
        }
        if seen["focused"] != json!("result-heading") {
            fail(format!("the focus is on {}", seen["focused"]));
        }
        if seen["href"] != json!(format!("{base}/invite")) {
            fail(format!("the address bar still shows {}", seen["href"]));
        }
        for violation in audit(&mut browser, &page, axe)? {
            fail(format!("axe: {violation}"));
        }
        let token = refusal.fragment.strip_prefix("#token=");
        let expected: &[&str] = match token {
            None => &["/invite", "/invite/page.css", "/invite/page.js"],
            Some(_) => &["/invite", "/v1/invitations:preview"],
        };
        for problem in check_requests(&browser.requests_so_far(&page)?, base, token, expected) {
            fail(problem);
        }
        browser.close(page)?;
    }

    // The full workspace's pending invitee gets in.
    let page = open(
        &mut browser,
        PHONE,
        &format!("{base}/invite#token={seated_token}"),
    )?;
    browser.evaluate(&page, "document.getElementById('display-name').focus()")?;
    browser.insert_text(&page, "Sam Seated")?;
    browser.evaluate(&page, "document.getElementById('password').focus()")?;
    browser.insert_text(&page, TYPED_PASSWORD)?;
    browser.press(&page, "Enter")?;
    if let Err(error) = browser.wait_until(&page, ACCEPTED, WAIT) {
        let seen = browser.evaluate(&page, SEEN)?;
        failures.push(format!(
            "seats full: the pending invitee was refused: {error}: {seen}"
        ));
    }
    browser.close(page)?;
    Ok(failures)
}

/// The page speaks the invitation's language: an invitation written in
/// Arabic or German opens the page in it (the page reloads itself in the
/// invitation's locale after reading it), right to left for Arabic, at a
/// phone's width with nothing overflowing, and passes the audit; a browser
/// that asks for French gets French before any invitation is read.
#[tokio::test]
async fn the_page_speaks_the_invitation_s_language_arabic_right_to_left_at_phone_width() {
    use wowchat_i18n::Locale;

    let site = site(false).await;
    let mut links = Vec::new();
    for locale in [Locale::Arabic, Locale::German] {
        let invitation = site
            .app
            .try_invite(proto::InviteUserRequest {
                locale: locale.tag().into(),
                ..invitation_request(&format!("reader-{locale}@example.com"), "agent")
            })
            .await
            .expect("invited");
        let token = site.app.invitation_token(&invitation.id).await;
        links.push((locale, format!("{}/invite#token={token}", site.base)));
    }
    let dir = artifacts("locales");
    let (base, axe) = (site.base.clone(), site.axe.clone());
    let failures = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut browser = Browser::launch(&dir.join("chromium.log"))?;
        let mut failures = Vec::new();
        for (locale, link) in &links {
            let mut page = browser.open(PHONE)?;
            browser.navigate(&mut page, link)?;
            // The page reloads itself in the invitation's language: wait
            // for that one to show the form (null-safe across the reload).
            browser.wait_until(
                &page,
                &format!(
                    "(() => {{ const root = document.documentElement; \
                     const form = document.getElementById('invite'); \
                     return !!root && root.lang === '{}' && !!form && !form.hidden; }})()",
                    locale.tag()
                ),
                WAIT,
            )?;
            let seen = browser.evaluate(
                &page,
                r#"({ lang: document.documentElement.lang, dir: document.documentElement.dir,
                      heading: document.getElementById('invite-heading').textContent.trim(),
                      title: document.title, href: location.href,
                      direction: getComputedStyle(document.body).direction,
                      scrollWidth: document.documentElement.scrollWidth,
                      innerWidth: window.innerWidth })"#,
            )?;
            browser.screenshot(&page, &dir.join(format!("invite-{locale}-phone.png")))?;
            let mut fail = |what: String| failures.push(format!("{locale}: {what}"));
            let words = invite_page::messages(*locale)?;
            let heading = words["invite-heading"]
                .as_str()
                .unwrap_or_default()
                .replace("{workspace}", "Acme Support");
            expect(&mut fail, "lang", &seen["lang"], locale.tag());
            expect(&mut fail, "dir", &seen["dir"], locale.direction());
            expect(
                &mut fail,
                "the text's direction",
                &seen["direction"],
                locale.direction(),
            );
            expect(&mut fail, "the heading", &seen["heading"], &heading);
            expect(
                &mut fail,
                "the address bar",
                &seen["href"],
                &format!("{base}/invite?lang={}", locale.tag()),
            );
            if seen["scrollWidth"].as_f64() > seen["innerWidth"].as_f64() {
                fail(format!("scrolls sideways: {seen}"));
            }
            for violation in audit(&mut browser, &page, &axe)? {
                fail(format!("axe: {violation}"));
            }
            browser.close(page)?;
        }
        Ok(failures)
    })
    .await
    .unwrap()
    .expect("the browser runs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Before any invitation is read, the browser's language decides.
    let response = page_html(&site.base, "/invite", "fr-CH, fr;q=0.9, en;q=0.5").await;
    assert!(
        response.contains("<html lang=\"fr\" dir=\"ltr\">"),
        "{response}"
    );
    let arabic = page_html(&site.base, "/invite?lang=ar", "en").await;
    assert!(arabic.contains("<html lang=\"ar\" dir=\"rtl\">"));
}

/// The page's HTML for `path`, asked for in `accept_language`.
async fn page_html(base: &str, path: &str, accept_language: &str) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = tonic::codegen::http::Request::get(format!("{base}{path}"))
        .header("accept-language", accept_language)
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.headers()["vary"], "accept-language");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}
