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
