//! A real browser for tests: Debian's headless Chromium, driven over the
//! Chrome DevTools Protocol (CDP) on a loopback WebSocket.
//!
//! Only the handful of CDP calls the tests need (open a page at a viewport,
//! load a file or a URL, evaluate an expression (awaiting its promise), wait
//! for one to hold, type and press keys, take a screenshot, list the
//! requests the page made), so a small WebSocket crate is the whole dependency rather
//! than a CDP client generated from the full protocol. Blocking: run it on a
//! blocking thread (`tokio::task::spawn_blocking`).
//!
//! Chromium runs with a throwaway profile, and with `--no-sandbox` only when
//! the tests run as root, where its sandbox cannot start.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Longest wait for one answer or one event.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The executables tried, in order, unless `CHROMIUM` names one.
const CANDIDATES: &[&str] = &["chromium", "chromium-browser", "google-chrome"];

pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    profile: PathBuf,
    next_id: u64,
    /// Events received while waiting for answers, not yet looked at.
    events: Vec<Value>,
}

/// One tab, with the size it emulates.
pub struct Page {
    target_id: String,
    session_id: String,
    pub width: u32,
    pub height: u32,
    /// Every URL the page requested since its last load.
    requests: Vec<String>,
}

/// A viewport to emulate.
#[derive(Debug, Clone, Copy)]
pub struct Viewport {
    pub width: u32,
    pub height: u32,
    /// A touch device with a meta-viewport, as a phone's mail app.
    pub mobile: bool,
    pub scale: f64,
}

/// A phone, 390 CSS px wide (as an iPhone 12 to 15): the one every
/// browser test renders at, so the pages and the emails are held to the
/// same screen.
pub const PHONE: Viewport = Viewport {
    width: 390,
    height: 844,
    mobile: true,
    scale: 2.0,
};

/// A desktop window.
pub const DESKTOP: Viewport = Viewport {
    width: 1200,
    height: 900,
    mobile: false,
    scale: 1.0,
};

impl Page {
    /// The URLs the page requested while it loaded, its own included.
    pub fn requests(&self) -> &[String] {
        &self.requests
    }
}

impl Browser {
    /// Starts headless Chromium; its log goes to `log_file`.
    pub fn launch(log_file: &Path) -> anyhow::Result<Browser> {
        let executable = match std::env::var("CHROMIUM") {
            Ok(path) => path,
            Err(_) => CANDIDATES
                .iter()
                .find(|name| on_path(name))
                .map(|name| (*name).to_owned())
                .context("no chromium on PATH (apt-get install chromium)")?,
        };
        let profile =
            std::env::temp_dir().join(format!("wowchat-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile)?;
        if let Some(dir) = log_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log = std::fs::File::create(log_file)?;
        let mut command = Command::new(&executable);
        command
            .arg("--headless")
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.display()))
            .args([
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--mute-audio",
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if running_as_root() {
            command.arg("--no-sandbox");
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {executable}"))?;
        // Chromium writes its port and browser path once it listens.
        let port_file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + CALL_TIMEOUT;
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.trim().to_owned(), path.trim().to_owned());
                }
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{executable} exited at start ({status}); see {}",
                    log_file.display()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!(
                    "{executable} did not open its DevTools port; see {}",
                    log_file.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let address = format!("127.0.0.1:{port}");
        let stream = TcpStream::connect(&address).context("connecting to DevTools")?;
        stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        let (socket, _) = tungstenite::client(format!("ws://{address}{path}"), stream)
            .map_err(|e| anyhow::anyhow!("DevTools handshake: {e}"))?;
        Ok(Browser {
            child,
            socket,
            profile,
            next_id: 0,
            events: Vec::new(),
        })
    }

    /// A new tab emulating `viewport`, with network events on.
    pub fn open(&mut self, viewport: Viewport) -> anyhow::Result<Page> {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = string(&target, "targetId")?;
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        )?;
        let session_id = string(&attached, "sessionId")?;
        let session = Some(session_id.as_str());
        self.call(session, "Page.enable", json!({}))?;
        self.call(session, "Network.enable", json!({}))?;
        self.call(
            session,
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": viewport.width,
                "height": viewport.height,
                "deviceScaleFactor": viewport.scale,
                "mobile": viewport.mobile,
            }),
        )?;
        if viewport.mobile {
            self.call(
                session,
                "Emulation.setTouchEmulationEnabled",
                json!({ "enabled": true }),
            )?;
        }
        Ok(Page {
            target_id,
            session_id,
            width: viewport.width,
            height: viewport.height,
            requests: Vec::new(),
        })
    }

    /// Loads `file` into `page` and waits for its load event.
    pub fn load(&mut self, page: &mut Page, file: &Path) -> anyhow::Result<()> {
        let url = format!("file://{}", file.canonicalize()?.display());
        self.navigate(page, &url)
    }

    /// Loads `url` into `page` and waits for its load event.
    pub fn navigate(&mut self, page: &mut Page, url: &str) -> anyhow::Result<()> {
        self.events.retain(|e| !for_session(e, &page.session_id));
        page.requests.clear();
        let session = Some(page.session_id.as_str());
        let navigated = self.call(session, "Page.navigate", json!({ "url": url }))?;
        if let Some(error) = navigated.get("errorText").and_then(Value::as_str) {
            bail!("loading {url}: {error}");
        }
        self.wait_for_event(&page.session_id, "Page.loadEventFired")?;
        // Requests seen up to the load event, and any the answers brought along.
        let requests = self.events.iter().filter(|e| {
            for_session(e, &page.session_id)
                && e.get("method").and_then(Value::as_str) == Some("Network.requestWillBeSent")
        });
        page.requests = requests
            .filter_map(|e| e.pointer("/params/request/url").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        Ok(())
    }

    /// Evaluates `expression` in the page; returns its JSON value.
    pub fn evaluate(&mut self, page: &Page, expression: &str) -> anyhow::Result<Value> {
        let result = self.call(
            Some(&page.session_id),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        )?;
        if let Some(exception) = result.get("exceptionDetails") {
            bail!("evaluating {expression}: {exception}");
        }
        Ok(result
            .pointer("/result/value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Evaluates `expression` and, when it is a promise, waits for it:
    /// its JSON value.
    pub fn evaluate_awaited(&mut self, page: &Page, expression: &str) -> anyhow::Result<Value> {
        let result = self.call(
            Some(&page.session_id),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(exception) = result.get("exceptionDetails") {
            bail!("evaluating {}…: {exception}", prefix(expression));
        }
        Ok(result
            .pointer("/result/value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Evaluates `expression` until its value is truthy (not `null`,
    /// `false`, `0` or `""`), for at most `timeout`: that value.
    pub fn wait_until(
        &mut self,
        page: &Page,
        expression: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.evaluate(page, expression)?;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!("`{expression}` did not hold within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` into the focused element, as a keyboard would.
    pub fn insert_text(&mut self, page: &Page, text: &str) -> anyhow::Result<()> {
        self.call(
            Some(&page.session_id),
            "Input.insertText",
            json!({ "text": text }),
        )?;
        Ok(())
    }

    /// Presses and releases `key`: `Enter` or `Tab`.
    pub fn press(&mut self, page: &Page, key: &str) -> anyhow::Result<()> {
        let (code, text) = match key {
            "Enter" => (13, "\r"),
            "Tab" => (9, ""),
            _ => bail!("no key code for {key}"),
        };
        for kind in ["keyDown", "keyUp"] {
            let mut event = json!({
                "type": kind,
                "key": key,
                "code": key,
                "windowsVirtualKeyCode": code,
                "nativeVirtualKeyCode": code,
            });
            if kind == "keyDown" && !text.is_empty() {
                event["text"] = json!(text);
            }
            self.call(Some(&page.session_id), "Input.dispatchKeyEvent", event)?;
        }
        Ok(())
    }

    /// Every URL `page` requested since it was loaded, its own included,
    /// up to now (later requests of its script too).
    pub fn requests_so_far(&mut self, page: &Page) -> anyhow::Result<Vec<String>> {
        // One round trip brings along the events sent before its answer.
        self.call(
            Some(&page.session_id),
            "Runtime.evaluate",
            json!({ "expression": "0" }),
        )?;
        Ok(self
            .events
            .iter()
            .filter(|e| {
                for_session(e, &page.session_id)
                    && e.get("method").and_then(Value::as_str) == Some("Network.requestWillBeSent")
            })
            .filter_map(|e| e.pointer("/params/request/url").and_then(Value::as_str))
            .map(str::to_owned)
            .collect())
    }

    /// A PNG of the whole page (not only the viewport) into `path`.
    pub fn screenshot(&mut self, page: &Page, path: &Path) -> anyhow::Result<()> {
        let metrics = self.call(Some(&page.session_id), "Page.getLayoutMetrics", json!({}))?;
        let height = metrics
            .pointer("/cssContentSize/height")
            .and_then(Value::as_f64)
            .unwrap_or(f64::from(page.height))
            .max(f64::from(page.height));
        let shot = self.call(
            Some(&page.session_id),
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": page.width, "height": height, "scale": 1 },
            }),
        )?;
        let png = base64::engine::general_purpose::STANDARD.decode(string(&shot, "data")?)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Closes the tab.
    pub fn close(&mut self, page: Page) -> anyhow::Result<()> {
        self.call(
            None,
            "Target.closeTarget",
            json!({ "targetId": page.target_id }),
        )?;
        Ok(())
    }

    /// Sends one command and waits for its answer, keeping the events that
    /// arrive meanwhile.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(command.to_string()))
            .with_context(|| format!("sending {method}"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let message = self.next_message(deadline, method)?;
            if message.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(error) = message.get("error") {
                    bail!("{method}: {error}");
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    fn wait_for_event(&mut self, session: &str, method: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let seen = self.events.iter().find(|e| {
                for_session(e, session) && e.get("method").and_then(Value::as_str) == Some(method)
            });
            if let Some(event) = seen {
                return Ok(event.clone());
            }
            let message = self.next_message(deadline, method)?;
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    fn next_message(&mut self, deadline: Instant, waiting_for: &str) -> anyhow::Result<Value> {
        loop {
            if Instant::now() > deadline {
                bail!("no answer to {waiting_for} in {CALL_TIMEOUT:?}");
            }
            match self.socket.read() {
                Ok(Message::Text(text)) => return Ok(serde_json::from_str(text.as_str())?),
                Ok(_) => continue,
                Err(e) => bail!("waiting for {waiting_for}: {e}"),
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.socket.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The start of a long expression, for an error message.
fn prefix(expression: &str) -> &str {
    let end = expression
        .char_indices()
        .nth(80)
        .map_or(expression.len(), |(at, _)| at);
    &expression[..end]
}

fn for_session(event: &Value, session: &str) -> bool {
    event.get("sessionId").and_then(Value::as_str) == Some(session)
}

fn string(value: &Value, key: &str) -> anyhow::Result<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no {key} in {value}"))
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Root cannot use Chromium's sandbox.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|line| line.starts_with("Uid:"))
            .and_then(|line| line.split_whitespace().nth(2))
            == Some("0")
    })
}
