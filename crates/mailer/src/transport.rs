//! How emails leave: over SMTP when a server is configured, otherwise as
//! `.eml` files in the mail directory (for development and tests). Also the
//! one place that decides whether a failed send is worth retrying.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::{self, PoolConfig},
};

use crate::config::Secret;

/// Longest failure reason kept (it travels in an event and the logs).
const MAX_REASON_LEN: usize = 500;

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(FileDrop),
}

/// Writes each email into a staging directory, then renames it into the mail
/// directory: whoever watches that directory never reads a half-written file.
pub struct FileDrop {
    dir: PathBuf,
    staging: PathBuf,
    writer: AsyncFileTransport<Tokio1Executor>,
}

/// Where an email went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Accepted by the SMTP server, with its reply (e.g. "250 2.0.0 queued as 1234").
    Smtp { reply: String },
    /// Written to this file.
    File(PathBuf),
}

/// A send that failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    pub permanent: bool,
    /// The SMTP server refused it for good with a 5xx reply: a hard bounce,
    /// whose address the service suppresses. Not a refusal of the client's
    /// own (an address lettre will not send to), nor a file that failed.
    pub hard_bounce: bool,
    /// The server's reply or what went wrong; never the message or credentials.
    pub reason: String,
}

impl Transport {
    /// SMTP when `smtp_url` is given, `.eml` files in `mail_dir` otherwise.
    /// SMTP connections are pooled: up to `idle_connections` stay open
    /// between emails, each sparing the next email a connection setup
    /// (TCP, greeting, EHLO, TLS, AUTH) for a NOOP.
    pub async fn new(
        smtp_url: Option<&Secret>,
        mail_dir: &Path,
        timeout: Duration,
        idle_connections: u32,
    ) -> anyhow::Result<Self> {
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .ok()
                    .context("WOWCHAT_SMTP_URL is not a valid smtp:// or smtps:// URL")?
                    .timeout(Some(timeout))
                    .pool_config(PoolConfig::new().max_size(idle_connections))
                    .build();
                Ok(Transport::Smtp(transport))
            }
            None => {
                let staging = mail_dir.join(".staging");
                tokio::fs::create_dir_all(&staging).await.with_context(|| {
                    format!("creating the mail directory {}", mail_dir.display())
                })?;
                Ok(Transport::Files(FileDrop {
                    dir: mail_dir.to_path_buf(),
                    writer: AsyncFileTransport::new(&staging),
                    staging,
                }))
            }
        }
    }

    /// For the startup log: where emails go, without credentials.
    pub fn describe(&self, smtp_url: Option<&Secret>) -> String {
        match self {
            Transport::Smtp(_) => smtp_url
                .and_then(|u| url::Url::parse(u.expose()).ok())
                .map(|u| {
                    format!(
                        "{}://{}{}",
                        u.scheme(),
                        u.host_str().unwrap_or("?"),
                        u.port().map(|p| format!(":{p}")).unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "SMTP".into()),
            Transport::Files(files) => format!("files in {}", files.dir.display()),
        }
    }

    pub async fn send(&self, message: Message) -> Result<Sent, SendFailure> {
        match self {
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(response) => Ok(Sent::Smtp {
                    reply: format!(
                        "{} {}",
                        response.code(),
                        response.message().collect::<Vec<_>>().join(" ")
                    ),
                }),
                Err(e) => Err(classify(&e)),
            },
            Transport::Files(files) => files.write(message).await,
        }
    }
}

impl FileDrop {
    async fn write(&self, message: Message) -> Result<Sent, SendFailure> {
        // A full or read-only disk may be fixed by an operator: worth retrying.
        let failed = |what: &str, e: &dyn std::fmt::Display| SendFailure {
            permanent: false,
            hard_bounce: false,
            reason: truncate(format!("{what}: {e}")),
        };
        let id = self
            .writer
            .send(message)
            .await
            .map_err(|e| failed("writing the email file", &e))?;
        let name = format!("{id}.eml");
        let path = self.dir.join(&name);
        tokio::fs::rename(self.staging.join(&name), &path)
            .await
            .map_err(|e| failed("moving the email file", &e))?;
        Ok(Sent::File(path))
    }
}

/// Transient: a 4xx reply, or the server could not be reached, timed out or
/// hung up. Permanent: a 5xx reply (a refused recipient, a rejected message)
/// or an email the client itself refuses to send. A hard bounce: the 5xx.
pub fn classify(error: &smtp::Error) -> SendFailure {
    let permanent = error.is_permanent() || error.is_client();
    SendFailure {
        permanent,
        hard_bounce: error.is_permanent(),
        reason: truncate(error.to_string()),
    }
}

fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_REASON_LEN {
        let mut end = MAX_REASON_LEN;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::{
        io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
        net::TcpListener,
    };

    use super::*;

    fn message() -> Message {
        Message::builder()
            .from("WowChat <no-reply@wowchat.localhost>".parse().unwrap())
            .to("ivy@example.com".parse().unwrap())
            .subject("Hello")
            .body(String::from("Hello Ivy"))
            .unwrap()
    }

    /// A one-connection SMTP server that answers RCPT TO with `rcpt_reply`.
    async fn fake_smtp(rcpt_reply: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            while let Ok(Some(line)) = lines.next_line().await {
                let reply: &str = if in_data {
                    if line == "." {
                        in_data = false;
                        "250 2.0.0 Ok: queued as FAKE1"
                    } else {
                        continue;
                    }
                } else {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    match verb.as_str() {
                        "EHLO" | "HELO" => "250 fake",
                        "MAIL" => "250 2.1.0 Ok",
                        "RCPT" => rcpt_reply,
                        "DATA" => {
                            in_data = true;
                            "354 End data with <CR><LF>.<CR><LF>"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
                            break;
                        }
                        _ => "250 Ok",
                    }
                };
                write
                    .write_all(format!("{reply}\r\n").as_bytes())
                    .await
                    .unwrap();
            }
        });
        format!("smtp://127.0.0.1:{port}")
    }

    async fn smtp(url: &str) -> Transport {
        let url: Secret = url.into();
        Transport::new(Some(&url), Path::new("unused"), Duration::from_secs(5), 1)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_accepted_email_reports_the_server_reply() {
        let transport = smtp(&fake_smtp("250 2.1.5 Ok").await).await;
        let sent = transport.send(message()).await.unwrap();
        assert_eq!(
            sent,
            Sent::Smtp {
                reply: "250 2.0.0 Ok: queued as FAKE1".into()
            }
        );
    }

    #[tokio::test]
    async fn emails_in_a_row_share_one_pooled_connection() {
        // The server takes a single connection: the second email goes out
        // only if the first one's connection was kept for it.
        let transport = smtp(&fake_smtp("250 2.1.5 Ok").await).await;
        transport.send(message()).await.unwrap();
        // The connection returns to the pool on a task of its own.
        tokio::task::yield_now().await;
        let again = transport.send(message()).await.unwrap();
        assert!(matches!(again, Sent::Smtp { reply } if reply.starts_with("250")));
    }

    #[tokio::test]
    async fn a_refused_recipient_is_a_permanent_failure_with_the_servers_reply() {
        let transport =
            smtp(&fake_smtp("550 5.1.1 <ivy@example.com>: Recipient address rejected").await).await;
        let failure = transport.send(message()).await.unwrap_err();
        assert!(failure.permanent);
        assert!(failure.hard_bounce, "a 5xx reply is a hard bounce");
        assert!(failure.reason.contains("550"), "{}", failure.reason);
        assert!(failure.reason.contains("Recipient address rejected"));
    }

    #[tokio::test]
    async fn a_4xx_reply_is_a_transient_failure() {
        let transport = smtp(&fake_smtp("451 4.7.1 Greylisted, try again later").await).await;
        let failure = transport.send(message()).await.unwrap_err();
        assert!(!failure.permanent);
        assert!(!failure.hard_bounce);
        assert!(failure.reason.contains("451"), "{}", failure.reason);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transient_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let transport = smtp(&format!("smtp://127.0.0.1:{port}")).await;
        let failure = transport.send(message()).await.unwrap_err();
        assert!(!failure.permanent, "{}", failure.reason);
        assert!(!failure.hard_bounce);
    }

    #[tokio::test]
    async fn credentials_never_appear_in_the_description() {
        let url: Secret = "smtps://user:hunter2@smtp.example.com:465".into();
        let transport = Transport::new(Some(&url), Path::new("unused"), Duration::from_secs(5), 1)
            .await
            .unwrap();
        assert_eq!(
            transport.describe(Some(&url)),
            "smtps://smtp.example.com:465"
        );
    }

    #[tokio::test]
    async fn without_smtp_each_email_becomes_an_eml_file() {
        let dir = tempfile::tempdir().unwrap();
        let transport = Transport::new(None, dir.path(), Duration::from_secs(5), 1)
            .await
            .unwrap();
        let Sent::File(path) = transport.send(message()).await.unwrap() else {
            panic!("not a file")
        };
        assert_eq!(path.parent(), Some(dir.path()));
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("eml"));
        let raw = std::fs::read_to_string(&path).unwrap();
        assert!(raw.contains("Subject: Hello"));
        let staged = std::fs::read_dir(dir.path().join(".staging"))
            .unwrap()
            .count();
        assert_eq!(staged, 0);
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let reason = truncate("é".repeat(400));
        assert!(reason.len() <= MAX_REASON_LEN + '…'.len_utf8());
        assert!(reason.ends_with('…'));
    }
}
