//! Logging and traces: the process's one subscriber (its level from
//! `RUST_LOG`, never the AMQP client's message bodies), OpenTelemetry spans
//! exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and the W3C trace context
//! (`traceparent`, `tracestate`) read from and written to the carriers that
//! cross process boundaries: gRPC metadata, HTTP headers, outbox rows, AMQP
//! headers.
//!
//! With no endpoint set there is no OpenTelemetry layer at all: a span costs
//! what it did before, and [`continue_trace`] and [`trace_context`] return
//! at once.

use std::{
    fmt,
    sync::atomic::{AtomicBool, Ordering},
};

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{SdkTracerProvider, Tracer},
};
use tracing::{Event, Span, Subscriber};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    fmt::{
        FmtContext, FormatEvent, FormatFields, MakeWriter,
        format::{self, Writer},
    },
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

/// The W3C header of the trace and parent span ids.
pub const TRACEPARENT: &str = wowchat_users_api::topology::TRACEPARENT_HEADER;
/// The W3C header of vendor-specific trace state.
pub const TRACESTATE: &str = wowchat_users_api::topology::TRACESTATE_HEADER;

/// Whether this process records OpenTelemetry spans.
static TRACING: AtomicBool = AtomicBool::new(false);

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object a line, with `trace_id` and `span_id` when traced.
    Json,
}

impl LogFormat {
    /// `json` in any case, else pretty (the settings accept only `pretty`
    /// and `json`, in any case).
    pub fn parse(name: &str) -> Self {
        if name.eq_ignore_ascii_case("json") {
            LogFormat::Json
        } else {
            LogFormat::Pretty
        }
    }
}

// The log format setting, as every program that flattens it declares it
// (`#[command(flatten)] log: LogArgs`). A plain comment rather than a doc
// comment: clap makes a flattened struct's doc comment the `about` of the
// command it lands in.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format: `pretty` or `json`. The level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "WOWCHAT_LOG_FORMAT", default_value = "pretty", value_parser = ["pretty", "json"], ignore_case = true)]
    pub log_format: String,
}

/// The exporter of a process that traces; flush it with [`Telemetry::shutdown`]
/// before exiting, or the last spans are lost.
#[must_use = "shut it down at exit, so the last spans are exported"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is still buffered and stops exporting.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // Blocks until the export thread is done; off the async workers.
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Installs the process's subscriber: logs to stderr in `format` (`pretty`
/// or `json`), at the level of `RUST_LOG` (default `info`), and spans to
/// the OTLP collector when an endpoint is configured, as `service_name`
/// unless `OTEL_SERVICE_NAME` says otherwise. Call it inside the Tokio
/// runtime (the exporter's gRPC client runs on it). A second call (tests
/// start many servers and workers in one process) installs nothing.
pub fn init(format: &str, service_name: &'static str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (provider, exporter_error) = if otlp_endpoint_configured() {
        match otlp_provider(service_name) {
            Ok(provider) => (Some(provider), None),
            Err(error) => (None, Some(error)),
        }
    } else {
        (None, None)
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    install(
        LogFormat::parse(format),
        filter,
        std::io::stderr,
        ansi,
        provider.clone(),
    );
    if let Some(error) = exporter_error {
        tracing::error!(error = %error, "OTLP exporter not built: traces are off");
    }
    Telemetry { provider }
}

/// A binary's `work`, logged and traced: installs the subscriber ([`init`]),
/// logs the `warnings` gathered before logging was up (settings that look
/// misspelt), runs `work`, then exports the last spans whatever it returned.
pub async fn run_logged<T>(
    format: &str,
    service_name: &'static str,
    warnings: Vec<String>,
    work: impl Future<Output = T>,
) -> T {
    let telemetry = init(format, service_name);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let result = work.await;
    telemetry.shutdown().await;
    result
}

/// The one place the subscriber is built: logs in `format` to `writer`,
/// filtered by `filter` (the AMQP client's payloads always off), and, with
/// `traces`, OpenTelemetry spans from every enabled `tracing` span.
/// Returns false when a subscriber was already installed.
pub fn install<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
    traces: Option<SdkTracerProvider>,
) -> bool
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let tracing_on = traces.is_some();
    let traces = traces.map(spans);
    let installed = Registry::default()
        .with(without_payloads(filter))
        .with(traces)
        .with(log_lines(format, writer, ansi))
        .try_init()
        .is_ok();
    if installed && tracing_on {
        TRACING.store(true, Ordering::Release);
    }
    installed
}

/// The layer that turns `tracing` spans into OpenTelemetry spans.
fn spans<S>(provider: SdkTracerProvider) -> OpenTelemetryLayer<S, Tracer>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("wowchat"))
        // Thread names and ids say nothing about a call.
        .with_threads(false)
}

/// Whether spans are recorded: callers skip building trace context otherwise.
pub fn enabled() -> bool {
    TRACING.load(Ordering::Acquire)
}

/// Whether the standard variables ask for OTLP export of traces.
fn otlp_endpoint_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()))
}

/// Spans batched and sent over OTLP/gRPC; endpoint, headers, timeout and
/// sampler from the standard `OTEL_*` variables.
fn otlp_provider(service_name: &'static str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service_name);
    }
    Ok(SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(exporter)
        .build())
}

/// The log line layer: pretty, or JSON carrying the current trace ids.
fn log_lines<S, W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Pretty => Box::new(lines),
        LogFormat::Json => Box::new(
            lines
                .json()
                .event_format(WithTraceIds(format::format().json())),
        ),
    }
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

/// A JSON log line with `trace_id` and `span_id` of the span it was logged
/// in, so a line found in the logs leads to its trace and back.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    N: for<'writer> FormatFields<'writer> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Entering a span makes its OpenTelemetry context the current one.
        let current = Context::current();
        let span = current.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        // The line is one JSON object: the ids go in before its last brace.
        match line.trim_end().strip_suffix('}') {
            Some(object) => writeln!(
                writer,
                r#"{object},"trace_id":"{}","span_id":"{}"}}"#,
                ids.trace_id(),
                ids.span_id()
            ),
            None => writer.write_str(&line),
        }
    }
}

/// Makes `span` (created, not yet entered) a child of the remote span a
/// caller sent as `traceparent` (with its `tracestate`), so the caller's
/// trace continues here. Nothing happens without a `traceparent` or while
/// traces are off; an unreadable one starts a trace of its own.
pub fn continue_trace(span: &Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    if let Some(parent) = remote_context(traceparent, tracestate) {
        let _ = span.set_parent(parent);
    }
}

/// The remote span a caller sent, while traces are on and it is readable.
fn remote_context(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Context> {
    let traceparent = traceparent?;
    if !enabled() {
        return None;
    }
    let carrier = Incoming {
        traceparent,
        tracestate,
    };
    // Against an empty context: an unreadable header must not make the
    // span a child of whatever happens to be current.
    let remote = TraceContextPropagator::new().extract_with_context(&Context::new(), &carrier);
    remote.span().span_context().is_valid().then_some(remote)
}

/// Links `span` to the remote span a caller sent as `traceparent`, without
/// continuing the caller's trace: for callers from outside, who must not
/// choose trace ids or force sampling, yet whose trace stays findable.
pub fn link_trace(span: &Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    if let Some(remote) = remote_context(traceparent, tracestate) {
        span.add_link(remote.span().span_context().clone());
    }
}

/// The W3C trace context of `span`, to send along with what it causes.
/// `None` while traces are off or when the span has no valid context.
pub fn trace_context(span: &Span) -> Option<TraceContext> {
    if !enabled() {
        return None;
    }
    let context = span.context();
    let mut carrier = W3cHeaders::default();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    Some(TraceContext {
        traceparent: carrier.traceparent?,
        tracestate: carrier.tracestate.filter(|state| !state.is_empty()),
    })
}

/// Records the OpenTelemetry name and kind of `span` (declared with
/// `"otel.name" = field::Empty, "otel.kind" = field::Empty`) when traces are
/// on; the log lines stay as they were otherwise.
pub fn describe_span(span: &Span, kind: SpanKind, name: &str) {
    if enabled() {
        span.record("otel.kind", kind.as_str());
        span.record("otel.name", name);
    }
}

/// The OpenTelemetry span kinds a span of this project may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Handles a call: the gRPC server, the REST gateway.
    Server,
    /// Makes a call: SMTP, Postgres.
    Client,
    /// Hands a message to the broker.
    Producer,
    /// Handles a message from the broker.
    Consumer,
}

impl SpanKind {
    fn as_str(self) -> &'static str {
        match self {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// A span's W3C trace context, as the `traceparent` and `tracestate`
/// headers carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

/// The two W3C headers as received, for the propagator to read.
struct Incoming<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.traceparent),
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

/// The two W3C headers, as the propagator writes them.
#[derive(Default)]
struct W3cHeaders {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for W3cHeaders {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE => self.tracestate = Some(value),
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry_sdk::trace::InMemorySpanExporter;

    use super::*;

    /// Log lines written to memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    #[test]
    fn a_json_line_logged_in_a_span_carries_that_spans_trace_and_span_ids() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let lines = Lines::default();
        let subscriber = Registry::default()
            // A clone kept: the last one dropped shuts the exporter down,
            // which forgets what it holds.
            .with(spans(provider.clone()))
            .with(log_lines(LogFormat::Json, lines.clone(), false));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("call").in_scope(|| tracing::info!(answer = 42, "inside"));
            tracing::info!("outside");
        });

        let span = exporter.get_finished_spans().unwrap().remove(0);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let inside = &lines[0];
        assert_eq!(inside["fields"]["message"], "inside");
        assert_eq!(inside["fields"]["answer"], 42);
        assert_eq!(inside["span"]["name"], "call");
        assert_eq!(inside["trace_id"], span.span_context.trace_id().to_string());
        assert_eq!(inside["span_id"], span.span_context.span_id().to_string());
        let outside = &lines[1];
        assert_eq!(outside["fields"]["message"], "outside");
        assert!(outside.get("trace_id").is_none(), "{outside}");
    }

    #[test]
    fn without_traces_json_lines_are_as_before() {
        let lines = Lines::default();
        let subscriber = Registry::default().with(log_lines(LogFormat::Json, lines.clone(), false));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("call").in_scope(|| tracing::info!("inside"));
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["span"]["name"], "call");
        assert!(line.get("trace_id").is_none(), "{line}");
    }
}
