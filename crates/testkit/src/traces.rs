//! The spans of the traces a test starts, kept in memory by the SDK's own
//! exporter. Only traces whose caller asked for sampling are recorded (the
//! sampler is parent-based, off at the root): tests that send no
//! `traceparent` leave nothing here, and a test reads its own trace by its
//! trace id, whatever else runs in the process.

use std::sync::OnceLock;

use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use uuid::Uuid;

static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();

fn exporter() -> &'static InMemorySpanExporter {
    EXPORTER.get_or_init(InMemorySpanExporter::default)
}

/// The tracer provider of the test process: every ended span of a sampled
/// trace goes to the in-memory exporter at once.
pub(crate) fn provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
        .with_simple_exporter(exporter().clone())
        .build()
}

/// A caller's trace: its ids, and the `traceparent` that starts it.
pub struct CallerTrace {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// The caller's own span, the remote parent of the first span it causes.
    pub span_id: String,
    /// Sampled, so everything it causes is recorded.
    pub traceparent: String,
}

impl CallerTrace {
    /// A new trace with random ids.
    pub fn new() -> Self {
        let trace_id = Uuid::new_v4().simple().to_string();
        let span_id = Uuid::new_v4().simple().to_string()[..16].to_owned();
        let traceparent = format!("00-{trace_id}-{span_id}-01");
        CallerTrace {
            trace_id,
            span_id,
            traceparent,
        }
    }

    /// The spans of this trace that have ended so far.
    pub fn spans(&self) -> Vec<FinishedSpan> {
        let Ok(trace_id) = TraceId::from_hex(&self.trace_id) else {
            return Vec::new();
        };
        exporter()
            .get_finished_spans()
            .unwrap_or_default()
            .into_iter()
            .filter(|span| span.span_context.trace_id() == trace_id)
            .map(|span| FinishedSpan {
                name: span.name.into_owned(),
                kind: span.span_kind,
                span_id: span.span_context.span_id().to_string(),
                parent_span_id: span.parent_span_id.to_string(),
                attributes: span
                    .attributes
                    .iter()
                    .map(|attribute| (attribute.key.to_string(), attribute.value.to_string()))
                    .collect(),
            })
            .collect()
    }
}

impl Default for CallerTrace {
    fn default() -> Self {
        Self::new()
    }
}

/// An ended span, as exported.
#[derive(Debug, Clone)]
pub struct FinishedSpan {
    pub name: String,
    pub kind: SpanKind,
    pub span_id: String,
    /// `0000000000000000` for a root span.
    pub parent_span_id: String,
    pub attributes: Vec<(String, String)>,
}
