//! Logging: one subscriber for the process, its level from `RUST_LOG`, and
//! never the AMQP client's message bodies.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber; `format` is `pretty` or `json`. A second
/// call (tests start many servers and workers in one process) does nothing.
pub fn init(format: &str) {
    let filter = without_payloads(
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    );
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Silences the AMQP client where it would print message bodies (a returned
/// mail command carries an invitation token), whatever `RUST_LOG` asks for.
pub fn without_payloads(filter: EnvFilter) -> EnvFilter {
    [
        "lapin=warn",
        "lapin::returned_messages=off",
        "amq_protocol=warn",
    ]
    .into_iter()
    .filter_map(|directive| directive.parse().ok())
    .fold(filter, EnvFilter::add_directive)
}
