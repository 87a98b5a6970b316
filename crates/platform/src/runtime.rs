//! The Tokio runtime the service, the gateway and the mailer run on.

/// A multi-threaded runtime (a worker a core) with its LIFO slot off. A task
/// woken by a worker goes to that worker's LIFO slot, which no other worker
/// may steal from: when the OS preempts the worker (on a machine it shares
/// with Postgres and the callers), the task waits for a scheduler tick while
/// the other workers idle. Reads at 32 in flight on two cores had a p99 of
/// 4.35-4.44 ms with the slot, 2.45-4.2 ms without (the `reads` benchmark,
/// paired runs of one build). The
/// setting is in Tokio's unstable API (`--cfg tokio_unstable`, set in
/// `.cargo/config.toml`); built without it, the slot stays on.
pub fn multi_thread() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder.build()
}
