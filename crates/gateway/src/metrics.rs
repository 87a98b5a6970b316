//! Per-route HTTP metrics: `http_server_requests_total{route,method,code}`,
//! the `http_server_request_duration_seconds{route,method}` histogram and
//! `http_server_requests_in_flight{route,method}`. `route` is the proto's
//! path template (`/v1/users/{user_id}`), never the path itself, so ids do
//! not grow the label set; requests no route answers share one series.
//!
//! Handles are resolved once per route when the gateway is built (each
//! status code's counter on its first use): a request costs no registry
//! lookup.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use metrics::{Counter, Gauge, Histogram, Label};

use crate::routes::Routes;

/// The status codes the gateway answers with, each with a counter slot.
const CODES: [u16; 16] = [
    200, 400, 401, 403, 404, 405, 409, 413, 429, 499, 500, 501, 502, 503, 504, 415,
];

/// One route's series.
pub struct RouteMetrics {
    labels: [Label; 2],
    in_flight: Gauge,
    duration: Histogram,
    by_code: [OnceLock<Counter>; CODES.len()],
}

impl RouteMetrics {
    fn new(route: String, method: &str) -> Self {
        let labels = [
            Label::new("route", route),
            Label::new("method", method.to_owned()),
        ];
        RouteMetrics {
            in_flight: metrics::gauge!("http_server_requests_in_flight", labels.to_vec()),
            duration: metrics::histogram!("http_server_request_duration_seconds", labels.to_vec()),
            by_code: Default::default(),
            labels,
        }
    }

    /// Counts the request in flight until the returned guard ends it.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.increment(1.0);
        InFlight {
            route: self,
            started: Instant::now(),
            done: false,
        }
    }

    fn count(&self, code: StatusCode, took: Duration) {
        self.duration.record(took.as_secs_f64());
        let counter = |code: u16| {
            let mut labels = self.labels.to_vec();
            labels.push(Label::new("code", code.to_string()));
            metrics::counter!("http_server_requests_total", labels)
        };
        match CODES.iter().position(|known| *known == code.as_u16()) {
            Some(slot) => self.by_code[slot]
                .get_or_init(|| counter(code.as_u16()))
                .increment(1),
            None => counter(code.as_u16()).increment(1),
        }
    }
}

/// A request being answered; dropped unanswered (the client left), it
/// counts as 499, as nginx logs it.
pub struct InFlight<'a> {
    route: &'a RouteMetrics,
    started: Instant,
    done: bool,
}

impl InFlight<'_> {
    pub fn finish(mut self, code: StatusCode) {
        self.done = true;
        self.route.count(code, self.started.elapsed());
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.route.in_flight.decrement(1.0);
        if !self.done
            && let Ok(code) = StatusCode::from_u16(499)
        {
            self.route.count(code, self.started.elapsed());
        }
    }
}

/// The series of every route (in the order of [`Routes::iter`]) and of
/// requests no route answers.
pub struct GatewayMetrics {
    routes: Vec<RouteMetrics>,
    pub unmatched: RouteMetrics,
}

impl GatewayMetrics {
    pub fn new(routes: &Routes) -> Self {
        GatewayMetrics {
            routes: routes
                .iter()
                .map(|route| {
                    RouteMetrics::new(route.template.text.clone(), route.http_method.as_str())
                })
                .collect(),
            unmatched: RouteMetrics::new("unmatched".to_owned(), "any"),
        }
    }

    /// The series of the route at `index` of [`Routes::iter`].
    pub fn route(&self, index: usize) -> &RouteMetrics {
        self.routes.get(index).unwrap_or(&self.unmatched)
    }
}
