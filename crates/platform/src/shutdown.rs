//! Process shutdown: the signal that starts it, and a deadline so a peer
//! that never lets go of its connection cannot hold the process.

use std::time::Duration;

/// Completes on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Exits the process with status 1 if it is still running `grace` from now.
pub fn exit_after(grace: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        tracing::warn!("in-flight work did not finish in time; exiting");
        std::process::exit(1);
    });
}

/// The flags and variables one program reads its [`ShutdownArgs`] from:
/// the service's `--shutdown-*-secs` and `WOWCHAT_SHUTDOWN_*_SECS` unless
/// the program names its own (the gateway's `WOWCHAT_GATEWAY_SHUTDOWN_*`),
/// so one environment can time each apart. Defaults and meanings are the
/// same; what readiness says meanwhile is the program's own.
pub trait ShutdownVariables {
    /// The delay's flag, without its dashes.
    const DELAY_FLAG: &'static str = "shutdown-delay-secs";
    /// The delay's variable.
    const DELAY: &'static str = "WOWCHAT_SHUTDOWN_DELAY_SECS";
    /// The delay's help: how the program tells the balancers to move away.
    const DELAY_HELP: &'static str = "Seconds between the stop signal and closing the \
        listener: health reports NOT_SERVING meanwhile while calls are still served, so the \
        endpoints (and the gateway) move away before anything is refused";
    /// The drain's flag, without its dashes.
    const DRAIN_FLAG: &'static str = "shutdown-drain-secs";
    /// The drain's variable.
    const DRAIN: &'static str = "WOWCHAT_SHUTDOWN_DRAIN_SECS";
}

// The graceful stop every serving program declares, flattened into its
// settings (`#[command(flatten)] shutdown: ShutdownArgs<V>`): first a delay
// while readiness fails and everything is still served, then a drain for
// what is in flight. A plain comment, not a doc comment: clap would make it
// the `about` of the command it lands in.
#[derive(Debug, Clone, clap::Args)]
pub struct ShutdownArgs<V: ShutdownVariables> {
    #[arg(
        id = "shutdown_delay_secs",
        long = V::DELAY_FLAG,
        value_name = "SHUTDOWN_DELAY_SECS",
        env = V::DELAY,
        help = V::DELAY_HELP,
        default_value_t = 5
    )]
    pub delay_secs: u64,

    /// Seconds the calls in flight then have to finish.
    #[arg(
        id = "shutdown_drain_secs",
        long = V::DRAIN_FLAG,
        value_name = "SHUTDOWN_DRAIN_SECS",
        env = V::DRAIN,
        default_value_t = 20
    )]
    pub drain_secs: u64,

    #[arg(skip)]
    variables: std::marker::PhantomData<fn() -> V>,
}

impl<V: ShutdownVariables> ShutdownArgs<V> {
    /// How long readiness fails before the listener closes.
    pub fn delay(&self) -> Duration {
        Duration::from_secs(self.delay_secs)
    }

    /// How long what is in flight then has.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }

    /// How long after the stop signal the process may still run: the
    /// delay, the drain, and a margin for the background tasks.
    pub fn deadline(&self) -> Duration {
        Duration::from_secs(self.delay_secs + self.drain_secs + 5)
    }
}
