//! A real SMTP server on loopback for tests: it speaks SMTP over TCP (EHLO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps every message it accepts, can
//! refuse chosen recipients with a permanent 550, and can run a hook at the
//! moment a message arrives, before the client hears it was accepted.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub recipients: Vec<String>,
    /// The message as sent after DATA (headers and MIME body), dot-unstuffed.
    pub data: String,
}

impl ReceivedMail {
    /// The first header of that name, unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// The message with quoted-printable soft line breaks and `=3D` undone,
    /// so links read as written.
    pub fn decoded(&self) -> String {
        self.data.replace("=\r\n", "").replace("=3D", "=")
    }

    /// The invitation token of the accept link (`token=` and 43 URL-safe
    /// characters): the first such, past the unsubscribe link's longer
    /// token (`List-Unsubscribe` comes first, in the headers).
    pub fn token(&self) -> Option<String> {
        let decoded = self.decoded();
        decoded.match_indices("token=").find_map(|(at, found)| {
            let token: String = decoded[at + found.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            (token.len() == 43).then_some(token)
        })
    }
}

type Hook = Box<dyn Fn(&ReceivedMail) + Send + Sync>;

#[derive(Default)]
struct State {
    messages: Mutex<Vec<ReceivedMail>>,
    refused: Mutex<HashSet<String>>,
    /// Recipients answered with a transient 451, and how many more times.
    deferred: Mutex<std::collections::HashMap<String, u32>>,
    on_message: Mutex<Option<Hook>>,
    arrived: Notify,
}

pub struct SmtpServer {
    address: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("local address");
        let state = Arc::new(State::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = session(stream, state).await;
                });
            }
        });
        SmtpServer {
            address,
            state,
            task,
        }
    }

    /// The URL a mailer sends through (plain SMTP, no TLS).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// Refuses `recipient` permanently at RCPT TO.
    pub fn refuse(&self, recipient: &str) {
        self.state
            .refused
            .lock()
            .unwrap()
            .insert(recipient.to_lowercase());
    }

    /// Answers RCPT TO `recipient` with a transient 451 for the next `times` tries.
    pub fn defer(&self, recipient: &str, times: u32) {
        self.state
            .deferred
            .lock()
            .unwrap()
            .insert(recipient.to_lowercase(), times);
    }

    /// Runs `hook` when a message arrives, before the client is told it was accepted.
    pub fn on_message(&self, hook: impl Fn(&ReceivedMail) + Send + Sync + 'static) {
        *self.state.on_message.lock().unwrap() = Some(Box::new(hook));
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.state.messages.lock().unwrap().clone()
    }

    /// Messages to `recipient`.
    pub fn messages_to(&self, recipient: &str) -> Vec<ReceivedMail> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m.recipients
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(recipient))
            })
            .collect()
    }

    /// Waits until at least `count` messages arrived, for at most `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.state.arrived.notified();
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("expected {count} messages, got {}", self.messages().len());
            }
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn address_of(argument: &str) -> String {
    let start = argument.find('<').map_or(0, |i| i + 1);
    let end = argument[start..]
        .find('>')
        .map_or(argument.len(), |i| start + i);
    argument[start..end].trim().to_owned()
}

async fn session(stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 wowchat-test ESMTP\r\n").await?;
    let mut from = String::new();
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => "250-wowchat-test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into(),
            "HELO" => "250 wowchat-test\r\n".into(),
            "MAIL" => {
                from = address_of(&command);
                recipients.clear();
                "250 2.1.0 Ok\r\n".into()
            }
            "RCPT" => {
                let recipient = address_of(&command);
                let key = recipient.to_lowercase();
                let deferred = match state.deferred.lock().unwrap().get_mut(&key) {
                    Some(left) if *left > 0 => {
                        *left -= 1;
                        true
                    }
                    _ => false,
                };
                if deferred {
                    format!("451 4.7.1 <{recipient}>: Greylisted, try again later\r\n")
                } else if state.refused.lock().unwrap().contains(&key) {
                    format!("550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\r\n")
                } else {
                    recipients.push(recipient);
                    "250 2.1.5 Ok\r\n".into()
                }
            }
            "DATA" if recipients.is_empty() => "554 5.5.1 No valid recipients\r\n".into(),
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let mail = ReceivedMail {
                    from: from.clone(),
                    recipients: std::mem::take(&mut recipients),
                    data,
                };
                if let Some(hook) = state.on_message.lock().unwrap().as_ref() {
                    hook(&mail);
                }
                state.messages.lock().unwrap().push(mail);
                state.arrived.notify_waiters();
                "250 2.0.0 Ok: queued\r\n".into()
            }
            "RSET" => {
                recipients.clear();
                "250 2.0.0 Ok\r\n".into()
            }
            "NOOP" => "250 2.0.0 Ok\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not recognized\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}
