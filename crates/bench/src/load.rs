//! The one load driver every gRPC scenario uses: a fixed number of calls in
//! flight over several HTTP/2 connections, each caller calling again as soon
//! as its call returns, every latency kept.

use std::{
    future::Future,
    pin::Pin,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

/// HTTP/2 connections a scenario's callers share, as a pool of clients would.
pub const CONNECTIONS: usize = 4;

/// Numbers handed to calls: unique in the process, so a warm-up and the
/// measurement after it never invite the same email.
static NUMBERS: AtomicU64 = AtomicU64::new(0);

/// One call's future, boxed so a scenario can name the caller it builds.
pub type Call = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// What makes a call, given a connection and a number: what `drive` runs.
pub trait Caller: Fn(Channel, u64) -> Call + Clone + Send + 'static {}
impl<F: Fn(Channel, u64) -> Call + Clone + Send + 'static> Caller for F {}

/// How a scenario measures: calls in flight, a warm-up (the pool's
/// connections, prepared statements, Postgres's buffers), then the
/// measurement.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub in_flight: usize,
    pub warm_up: Duration,
    pub duration: Duration,
}

impl Run {
    /// Warms up, then measures `call` over `channels`.
    pub async fn measure(
        &self,
        channels: &[Channel],
        call: impl Caller,
    ) -> anyhow::Result<Outcome> {
        drive(channels, self.in_flight, self.warm_up, call.clone()).await?;
        drive(channels, self.in_flight, self.duration, call).await
    }
}

/// What one run of calls gave: how many, over how long, and each latency.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub elapsed: Duration,
    /// Sorted, shortest first.
    latencies: Vec<Duration>,
}

impl Outcome {
    pub fn calls(&self) -> usize {
        self.latencies.len()
    }

    /// Calls per second.
    pub fn throughput(&self) -> f64 {
        self.calls() as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency `q` of the way up (0.5 the median), by nearest rank.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        let last = self.latencies.len().checked_sub(1)?;
        let rank = (self.latencies.len() as f64 * q).ceil() as usize;
        Some(self.latencies[rank.saturating_sub(1).min(last)])
    }

    pub fn p50(&self) -> Option<Duration> {
        self.percentile(0.50)
    }

    pub fn p99(&self) -> Option<Duration> {
        self.percentile(0.99)
    }
}

/// `CONNECTIONS` connections to the gRPC server at `address` (`http://…`).
pub async fn connect(address: &str) -> anyhow::Result<Vec<Channel>> {
    let endpoint = Channel::from_shared(address.to_owned())
        .with_context(|| format!("{address} is not a URI"))?
        .tcp_nodelay(true);
    let mut channels = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to {address}"))?,
        );
    }
    Ok(channels)
}

/// `Authorization: Bearer <token>`, parsed once and attached to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    pub fn new(token: &str) -> anyhow::Result<Bearer> {
        Ok(Bearer(
            format!("Bearer {token}")
                .parse()
                .context("a token that fits in a header")?,
        ))
    }

    /// The `authorization` header's value: `Bearer <token>`.
    pub fn header(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        request
    }
}

/// Runs `call` with `in_flight` callers over `channels` for `duration`.
/// Each call gets a channel and a number unique in the process (for unique
/// emails, or to take turns among requests). The first failed call fails
/// the run.
pub async fn drive(
    channels: &[Channel],
    in_flight: usize,
    duration: Duration,
    call: impl Caller,
) -> anyhow::Result<Outcome> {
    let stop = CancellationToken::new();
    let timer = tokio::spawn({
        let stop = stop.clone();
        async move {
            tokio::time::sleep(duration).await;
            stop.cancel();
        }
    });
    let outcome = drive_until(channels, in_flight, stop, call).await;
    timer.abort();
    outcome
}

/// Like `drive`, until `stop` is cancelled: for load that lasts as long as
/// something else does.
pub async fn drive_until(
    channels: &[Channel],
    in_flight: usize,
    stop: CancellationToken,
    call: impl Caller,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(!channels.is_empty(), "no connection to drive the load over");
    let started = Instant::now();
    let callers: Vec<_> = (0..in_flight)
        .map(|i| {
            let channel = channels[i % channels.len()].clone();
            let (call, stop) = (call.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.is_cancelled() {
                    let number = NUMBERS.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    if let Err(err) = call(channel.clone(), number).await {
                        // The others stop too: one broken caller fails the run.
                        stop.cancel();
                        return Err(err);
                    }
                    latencies.push(sent.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for caller in callers {
        latencies.extend(caller.await.context("a caller panicked")??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Outcome { elapsed, latencies })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(millis: impl IntoIterator<Item = u64>) -> Outcome {
        let mut latencies: Vec<_> = millis.into_iter().map(Duration::from_millis).collect();
        latencies.sort_unstable();
        Outcome {
            elapsed: Duration::from_secs(1),
            latencies,
        }
    }

    #[test]
    fn percentiles_are_taken_by_nearest_rank() {
        let o = outcome(1..=100);
        assert_eq!(o.p50(), Some(Duration::from_millis(50)));
        assert_eq!(o.p99(), Some(Duration::from_millis(99)));
        assert_eq!(o.percentile(1.0), Some(Duration::from_millis(100)));
        assert_eq!(o.throughput(), 100.0);
    }

    #[test]
    fn a_run_without_calls_has_no_percentiles() {
        assert_eq!(outcome([]).p99(), None);
    }
}
