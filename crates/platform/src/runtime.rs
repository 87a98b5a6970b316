//! The Tokio runtime the service, the gateway and the mailer run on.

/// A multi-threaded runtime (a worker a core) with its LIFO slot off. A task
/// woken by a worker goes to that worker's LIFO slot, which no other worker
/// may steal from: when the OS preempts the worker (on a machine it shares
/// with Postgres and the callers), the task waits for a scheduler tick while
/// the other workers idle, and the tail latency of reads grows (measured in
/// docs/performance.md, "Why the code is as it is"). The setting is in
/// Tokio's unstable API (`--cfg tokio_unstable`, set in
/// `.cargo/config.toml`); built without it, the slot stays on.
pub fn multi_thread() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder.build()
}
