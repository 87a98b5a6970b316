//! Every log line of the test process, kept in memory so a test can show
//! that no secret was ever logged. `TEST_LOG=1` also prints them.

use std::{
    io::Write,
    sync::{Mutex, OnceLock},
};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};
use wowchat_platform::telemetry::{self, LogFormat};

static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<()> = OnceLock::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LINES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        Capture
    }
}

/// Installs the capturing subscriber, at debug level for the project's
/// crates, once per process, with traces recorded in memory
/// ([`crate::traces`]).
pub fn install() {
    INSTALLED.get_or_init(|| {
        let filter = EnvFilter::new(
            "info,wowchat_users_server=debug,wowchat_mailer=debug,wowchat_users_testkit=debug",
        );
        telemetry::install(
            LogFormat::Pretty,
            filter,
            Capture,
            false,
            Some(crate::traces::provider()),
        );
    });
}

/// Everything logged so far by any test of this process.
pub fn captured() -> String {
    String::from_utf8_lossy(&LINES.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Whether any line logged so far satisfies `matches`. Scans in place: a
/// test polling for a line must not copy the whole process's log each time
/// (holding the lock every other test logs through).
pub fn any_line(mut matches: impl FnMut(&str) -> bool) -> bool {
    LINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .split(|&byte| byte == b'\n')
        .any(|line| matches(&String::from_utf8_lossy(line)))
}
