//! What people receive, seen as they would see it: for each adversarial
//! input, an invitation goes through the whole system (service, relay,
//! RabbitMQ, mailer, a real SMTP server), the invitee accepts, and the
//! inviter's notice arrives. Both messages are read back with a standard MIME
//! parser (subjects and names as displayed) and their HTML is opened in
//! headless Chromium at a phone's and a desktop's width.
//!
//! The pages, the `.eml` files and the screenshots stay in
//! `target/email-screenshots/` for a person to look at.

use std::path::{Path, PathBuf};

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;
use wowchat_users_api::v1 as proto;
use wowchat_users_testkit::{
    MailerHandle, ReceivedMail, SmtpServer, TestApp,
    browser::{Browser, DESKTOP, PHONE},
    invitation_request, rename, without_invitation_limits,
};

use crate::support::{assert_no_problems, eventually};

/// How far down a phone screen the button must end: a mail app shows the
/// sender, the subject and its own bars above the message, so of 844 px
/// about the first 600 px of the email are in view when it opens.
const PHONE_FOLD: f64 = 600.0;

/// One set of typed values: what the workspace, the inviter and the invitee
/// are called, the personal message and the role.
struct Case {
    name: &'static str,
    workspace: String,
    inviter: String,
    message: String,
    invitee: String,
    role: &'static str,
}

/// Sets `data-pwned` on the page if any of it ever runs.
const MARKUP: &str = "<script>document.documentElement.dataset.pwned='script'</script>\
     <img src=\"https://tracker.example.com/p.gif\" onerror=\"document.documentElement.dataset.pwned='img'\">\
     <svg onload=\"document.documentElement.dataset.pwned='svg'\"></svg>";

fn cases() -> Vec<Case> {
    let plain = Case {
        name: "plain",
        workspace: "Acme Support".into(),
        inviter: "Olive Owner".into(),
        message: "Welcome to the support team, Alice!\nWe start on Monday at 9:00.".into(),
        invitee: "Alice Agent".into(),
        role: "agent",
    };
    let long_url = "https://docs.example.com/onboarding/support-team/handbook/2025/first-week-checklist?section=tools&lang=en";
    assert!(long_url.len() >= 95);
    let word: String = "Pneumonoultramicroscopicsilicovolcanoconiosis"
        .repeat(5)
        .chars()
        .take(200)
        .collect();
    let longest_name = |stem: &str| -> String {
        let mut name = stem.to_owned();
        while name.chars().count() < 100 {
            name.push_str(" Longname");
        }
        name.chars().take(100).collect()
    };
    let longest_message = {
        let line = "This line of the personal message is long enough to wrap on a phone screen.";
        let mut message = [line; 10].join("\n");
        message.truncate(500);
        message
    };
    vec![
        plain,
        Case {
            name: "long-url",
            message: format!("Please read {long_url} before Monday."),
            ..base("Bob Builder")
        },
        Case {
            name: "long-word",
            inviter: word.chars().take(100).collect(),
            message: word.clone(),
            ..base(&word.chars().take(100).collect::<String>())
        },
        Case {
            name: "right-to-left",
            workspace: "فريق الدعم".into(),
            inviter: "דנה כהן".into(),
            message: "مرحبا بكم في فريق الدعم! نبدأ يوم الاثنين.\nשלום וברוכים הבאים.".into(),
            invitee: "سارة".into(),
            role: "supervisor",
        },
        Case {
            name: "emoji",
            workspace: "🚀 Rocket Support 🇫🇷".into(),
            inviter: "Zoë 👩🏽‍💻 Owner".into(),
            message: "Welcome aboard 🎉🎉🎉 👨‍👩‍👧‍👦 🏳️‍🌈".into(),
            invitee: "Dan 🐙".into(),
            role: "agent",
        },
        Case {
            name: "markup",
            workspace: "<i>Acme</i> & \"Partners\" 'Ltd'".into(),
            inviter: "Olive \"The Boss\" <b>Owner</b> & Co".into(),
            message: format!("{MARKUP} Tom & Jerry say \"hi\" & 'bye' &amp; &lt;"),
            invitee: "<svg onload=alert(1)> Eve & \"Mallory\"".into(),
            role: "permission-checker",
        },
        Case {
            name: "encoded-word",
            workspace: "=?utf-8?b?QWNtZQ==?= Support".into(),
            inviter: "=?utf-8?b?QQ==?=".into(),
            message: "Subject: =?utf-8?q?Hello?=".into(),
            invitee: "=?utf-8?q?Admin=0D=0ABcc:_all@example.com?=".into(),
            role: "agent",
        },
        Case {
            name: "longest",
            workspace: longest_name("Acme Worldwide Customer Support"),
            inviter: longest_name("Olivia Owner-Oppenheimer"),
            message: longest_message,
            invitee: longest_name("Alexandra Agent-Abernathy"),
            role: "supervisor",
        },
    ]
}

fn base(invitee: &str) -> Case {
    Case {
        name: "",
        workspace: "Acme Support".into(),
        inviter: "Olive Owner".into(),
        message: String::new(),
        invitee: invitee.into(),
        role: "agent",
    }
}

/// A service whose relay runs, without invitation limits, and a mailer
/// sending its emails to an SMTP server of the test's own.
async fn sending() -> (TestApp, SmtpServer, MailerHandle) {
    let app = TestApp::spawn_with(|settings| {
        settings.relay = true;
        without_invitation_limits(settings);
    })
    .await;
    let smtp = SmtpServer::start().await;
    let mailer = app.start_mailer(app.mailer_settings(&smtp.url())).await;
    (app, smtp, mailer)
}

/// Both emails of one case, as they arrived.
struct Received {
    case: Case,
    invitation: ReceivedMail,
    notice: ReceivedMail,
}

#[tokio::test]
async fn every_email_holds_up_in_a_real_browser_at_phone_and_desktop_width_for_every_adversarial_input()
 {
    let (app, smtp, _mailer) = sending().await;
    app.create_role("permission-checker", &["users.read"]).await;
    let db = app.db().await;

    let mut received = Vec::new();
    for (i, case) in cases().into_iter().enumerate() {
        // The longest allowed names go in through the API; a workspace is
        // named only at bootstrap, so its name is set directly.
        db.execute(
            "UPDATE workspaces SET name = $1 WHERE id = $2",
            &[&case.workspace, &app.workspace_id],
        )
        .await
        .unwrap();
        app.manage(&app.owner_id.to_string(), rename(&case.inviter))
            .await
            .expect("the inviter's name is allowed");
        let email = format!("{}@example.com", case.name);
        app.try_invite(proto::InviteUserRequest {
            message: case.message.clone(),
            ..invitation_request(&email, case.role)
        })
        .await
        .expect("the invitation is allowed");
        let invitation = arrived(&smtp, &email, 1).await;
        let token = invitation.token().expect("the email carries the token");
        app.accept_named(&token, &case.invitee)
            .await
            .expect("the invitee's name is allowed");
        let notice = arrived(&smtp, "owner@example.com", i + 1).await;
        received.push(Received {
            case,
            invitation,
            notice,
        });
    }

    let mut failures = Vec::new();
    for r in &received {
        failures.extend(check_headers(r));
    }
    let dir = artifacts();
    let pages = tokio::task::spawn_blocking(move || look_in_the_browser(&received, &dir))
        .await
        .unwrap();
    failures.extend(pages.expect("the browser runs"));
    assert_no_problems(&failures);
}

/// The `count`th email to `recipient`, once it is there.
async fn arrived(smtp: &SmtpServer, recipient: &str, count: usize) -> ReceivedMail {
    eventually(&format!("email {count} to {recipient} arrives"), || async {
        smtp.messages_to(recipient).len() >= count
    })
    .await;
    smtp.messages_to(recipient)[count - 1].clone()
}

/// The subjects and names a mail client displays are what was typed; the
/// emails ask not to be answered automatically.
fn check_headers(r: &Received) -> Vec<String> {
    let case = &r.case;
    let mut failures = Vec::new();
    let mut expect = |what: &str, shown: Option<String>, typed: &str| {
        if shown.as_deref() != Some(typed) {
            failures.push(format!(
                "{}: {what} shows {shown:?}, typed {typed:?}",
                case.name
            ));
        }
    };
    let invitation = MessageParser::default()
        .parse(r.invitation.data.as_bytes())
        .expect("the invitation parses");
    let notice = MessageParser::default()
        .parse(r.notice.data.as_bytes())
        .expect("the notice parses");
    let invited = format!(
        "{} invited you to {} on WowChat",
        case.inviter, case.workspace
    );
    let accepted = format!(
        "{} accepted your invitation to {}",
        case.invitee, case.workspace
    );
    // Each email's subject, the inviter's name on the address it is about
    // (the invitation's Reply-To, the notice's To), and Auto-Submitted.
    for (email, message, subject, (header, addresses)) in [
        (
            "invitation",
            &invitation,
            invited,
            ("Reply-To", invitation.reply_to()),
        ),
        ("notice", &notice, accepted, ("To", notice.to())),
    ] {
        expect(
            &format!("the {email}'s subject"),
            message.subject().map(str::to_owned),
            &subject,
        );
        expect(
            &format!("the {email}'s {header} name"),
            addresses
                .and_then(|a| a.first())
                .and_then(|a| a.name())
                .map(str::to_owned),
            &case.inviter,
        );
        expect(
            &format!("the {email}'s Auto-Submitted"),
            message
                .header_raw("Auto-Submitted")
                .map(|v| v.trim().to_owned()),
            "auto-generated",
        );
    }
    // The plain text shows every line of the message as typed.
    let text = invitation.body_text(0).unwrap_or_default();
    for line in case.message.lines() {
        if !text.contains(line.trim()) {
            failures.push(format!(
                "{}: the plain text lacks the line {line:?}",
                case.name
            ));
        }
    }
    for part in [&invitation, &notice] {
        if part.html_body_count() != 1 || part.text_body_count() != 1 {
            failures.push(format!("{}: not one text and one HTML part", case.name));
        }
        let content_type = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")));
        if content_type.as_deref() != Some("multipart/alternative") {
            failures.push(format!("{}: {content_type:?}", case.name));
        }
    }
    failures
}

/// `target/email-screenshots`, emptied.
fn artifacts() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .to_path_buf();
    let dir = target.join("email-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the page tells about itself once loaded.
const MEASURE: &str = r#"(() => {
  const root = document.documentElement;
  const button = document.querySelector('a.button');
  const box = button ? button.getBoundingClientRect() : null;
  const all = [...document.querySelectorAll('*')];
  return {
    scrollWidth: root.scrollWidth,
    innerWidth: window.innerWidth,
    button: box && { top: box.top, bottom: box.bottom, left: box.left, right: box.right,
                     width: box.width, height: box.height },
    buttonText: button ? button.textContent.trim() : null,
    pastTheRightEdge: all.filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                         .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''))
                         .slice(0, 5),
    scripts: document.scripts.length,
    handlers: all.filter(e => [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length,
    pwned: root.dataset.pwned || null,
    heading: (document.querySelector('h1') || {}).textContent || null,
  };
})()"#;

fn look_in_the_browser(received: &[Received], dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut browser = Browser::launch(&dir.join("chromium.log"))?;
    let mut failures = Vec::new();
    for r in received {
        for (kind, mail) in [("invitation", &r.invitation), ("accepted", &r.notice)] {
            let stem = format!("{}-{kind}", r.case.name);
            std::fs::write(dir.join(format!("{stem}.eml")), &mail.data)?;
            let parsed = MessageParser::default()
                .parse(mail.data.as_bytes())
                .ok_or_else(|| anyhow::anyhow!("{stem}: does not parse"))?;
            let html = parsed
                .body_html(0)
                .ok_or_else(|| anyhow::anyhow!("{stem}: no HTML part"))?;
            let file = dir.join(format!("{stem}.html"));
            std::fs::write(&file, html.as_bytes())?;
            for (device, viewport) in [("phone", PHONE), ("desktop", DESKTOP)] {
                let mut page = browser.open(viewport)?;
                browser.load(&mut page, &file)?;
                let seen = browser.evaluate(&page, MEASURE)?;
                browser.screenshot(&page, &dir.join(format!("{stem}-{device}.png")))?;
                let own_url = format!("file://{}", file.canonicalize()?.display());
                let other: Vec<String> = page
                    .requests()
                    .iter()
                    .filter(|u| **u != own_url)
                    .cloned()
                    .collect();
                browser.close(page)?;
                let mut fail =
                    |what: String| failures.push(format!("{stem} on a {device}: {what}"));
                let number = |key: &str| seen.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
                let (scroll_width, inner_width) = (number("scrollWidth"), number("innerWidth"));
                if !at_most(scroll_width, inner_width) || inner_width != f64::from(viewport.width) {
                    fail(format!(
                        "scrolls sideways: {scroll_width} px wide in a {inner_width} px window"
                    ));
                }
                if seen["pastTheRightEdge"]
                    .as_array()
                    .is_none_or(|a| !a.is_empty())
                {
                    fail(format!(
                        "cut off on the right: {}",
                        seen["pastTheRightEdge"]
                    ));
                }
                let button = &seen["button"];
                let edge = |key: &str| button.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
                let visible = at_most(1.0, edge("width")) && at_most(36.0, edge("height"));
                let on_screen = at_most(0.0, edge("left")) && at_most(edge("right"), inner_width);
                if !visible {
                    fail(format!("no visible button: {button}"));
                } else if !on_screen {
                    fail(format!("the button is off the screen: {button}"));
                } else if device == "phone" && !at_most(edge("bottom"), PHONE_FOLD) {
                    fail(format!("the button is below the fold: {button}"));
                }
                if seen["scripts"] != 0 || seen["handlers"] != 0 || !seen["pwned"].is_null() {
                    fail(format!(
                        "markup came alive: {} scripts, {} handlers, pwned {}",
                        seen["scripts"], seen["handlers"], seen["pwned"]
                    ));
                }
                if !other.is_empty() {
                    fail(format!("loaded other resources: {other:?}"));
                }
            }
        }
    }
    Ok(failures)
}

/// `a <= b`, false when either is not a number.
fn at_most(a: f64, b: f64) -> bool {
    a <= b
}

/// What a locale's email must show of its language and direction.
const LANGUAGE: &str = r#"(() => {
  const root = document.documentElement;
  const card = document.querySelector('.card');
  const button = document.querySelector('a.button');
  const box = button ? button.getBoundingClientRect() : null;
  const all = [...document.querySelectorAll('*')];
  const outside = e => { const r = e.getBoundingClientRect();
                         return r.right > window.innerWidth + 0.5 || r.left < -0.5; };
  return {
    lang: root.lang,
    dir: root.dir,
    cardDirection: card ? getComputedStyle(card).direction : null,
    cardAlign: card ? getComputedStyle(card).textAlign : null,
    scrollWidth: root.scrollWidth,
    innerWidth: window.innerWidth,
    button: box && { left: box.left, right: box.right, bottom: box.bottom, width: box.width },
    outside: all.filter(outside).map(e => e.tagName.toLowerCase()).slice(0, 5),
  };
})()"#;

/// Every locale's invitation, sent through the whole system and drawn in
/// Chromium at a phone's width: it says `lang` and `dir` (Arabic right to
/// left, its text starting on the right), nothing overflows on either
/// side, the button is on screen, and the subject is the catalog's.
#[tokio::test]
async fn every_locale_s_invitation_reads_in_its_language_and_direction_at_phone_width() {
    use wowchat_i18n::{Args, Catalog, Locale};

    let (app, smtp, _mailer) = sending().await;
    let mut emails = Vec::new();
    for locale in Locale::ALL {
        let email = format!("reader-{}@example.com", locale.tag().to_lowercase());
        app.try_invite(proto::InviteUserRequest {
            message: "Bienvenue — ようこそ — أهلا".into(),
            locale: locale.tag().into(),
            ..invitation_request(&email, "supervisor")
        })
        .await
        .expect("the invitation is allowed");
        emails.push((locale, arrived(&smtp, &email, 1).await));
    }

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("email-screenshots-locales");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let failures = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut browser = Browser::launch(&dir.join("chromium.log"))?;
        let mut failures = Vec::new();
        for (locale, mail) in &emails {
            let parsed = MessageParser::default()
                .parse(mail.data.as_bytes())
                .ok_or_else(|| anyhow::anyhow!("{locale}: does not parse"))?;
            let subject = Catalog::mail().format(
                *locale,
                "invitation-subject",
                &Args::new()
                    .text("inviter", "Olive Owner")
                    .text("workspace", "Acme Support"),
            )?;
            if parsed.subject() != Some(subject.as_str()) {
                failures.push(format!(
                    "{locale}: subject {:?}, not {subject:?}",
                    parsed.subject()
                ));
            }
            let html = parsed
                .body_html(0)
                .ok_or_else(|| anyhow::anyhow!("{locale}: no HTML part"))?;
            let file = dir.join(format!("invitation-{locale}.html"));
            std::fs::write(&file, html.as_bytes())?;
            let mut page = browser.open(PHONE)?;
            browser.load(&mut page, &file)?;
            let seen = browser.evaluate(&page, LANGUAGE)?;
            browser.screenshot(&page, &dir.join(format!("invitation-{locale}-phone.png")))?;
            browser.close(page)?;
            let mut fail = |what: String| failures.push(format!("{locale} on a phone: {what}"));
            let (direction, align) = if locale.is_right_to_left() {
                ("rtl", "right")
            } else {
                ("ltr", "left")
            };
            if seen["lang"] != locale.tag() || seen["dir"] != direction {
                fail(format!("lang {} dir {}", seen["lang"], seen["dir"]));
            }
            if seen["cardDirection"] != direction || seen["cardAlign"] != align {
                fail(format!(
                    "the card runs {} aligned {}",
                    seen["cardDirection"], seen["cardAlign"]
                ));
            }
            let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
            if !at_most(number(&seen["scrollWidth"]), number(&seen["innerWidth"])) {
                fail(format!("scrolls sideways: {}", seen["scrollWidth"]));
            }
            if seen["outside"].as_array().is_none_or(|a| !a.is_empty()) {
                fail(format!("cut off at an edge: {}", seen["outside"]));
            }
            let button = &seen["button"];
            if !(at_most(0.0, number(&button["left"]))
                && at_most(number(&button["right"]), number(&seen["innerWidth"]))
                && at_most(1.0, number(&button["width"]))
                && at_most(number(&button["bottom"]), PHONE_FOLD))
            {
                fail(format!("the button is not in view: {button}"));
            }
        }
        Ok(failures)
    })
    .await
    .unwrap()
    .expect("the browser runs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
