//! The one table a run prints: a row per scenario with its throughput, its
//! latencies, the ceiling measured beside it in the same run, the ratio
//! between them, the target and the verdict.

use std::time::Duration;

use crate::load::Outcome;

/// What a scenario must reach. Every bound given must hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target {
    /// Least ratio to the ceiling (a throughput's fraction of the ceiling's).
    pub min_ratio: Option<f64>,
    /// Greatest ratio to the ceiling (a p99 next to the p99 it must stay near).
    pub max_ratio: Option<f64>,
    /// Least throughput, per second.
    pub min_throughput: Option<f64>,
    /// Longest 99th-percentile latency.
    pub max_p99: Option<Duration>,
}

impl Target {
    /// No bound at all: a row shown for reference.
    pub fn is_none(&self) -> bool {
        self.min_ratio.is_none()
            && self.max_ratio.is_none()
            && self.min_throughput.is_none()
            && self.max_p99.is_none()
    }
}

/// What a scenario is measured against, in the same run.
#[derive(Debug, Clone, Copy)]
pub enum Ceiling {
    /// The most the same work gets done per second, in the scenario's unit:
    /// the ratio is the scenario's throughput over it.
    Throughput(f64),
    /// The p99 of the same calls undisturbed: the ratio is the scenario's
    /// p99 over it.
    P99(Duration),
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub scenario: String,
    /// What is counted per second: `rows/s`, `req/s`.
    pub unit: &'static str,
    pub throughput: f64,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    pub ceiling: Option<Ceiling>,
    pub target: Target,
}

impl Measurement {
    /// The row for calls measured by the load driver.
    pub fn of_calls(
        scenario: impl Into<String>,
        outcome: &Outcome,
        ceiling: Option<Ceiling>,
        target: Target,
    ) -> Measurement {
        Measurement {
            scenario: scenario.into(),
            unit: "req/s",
            throughput: outcome.throughput(),
            p50: outcome.p50(),
            p99: outcome.p99(),
            ceiling,
            target,
        }
    }

    /// The row for rows moved (`rows/s`), with no latencies, beside the
    /// throughput a bare client reaches.
    pub fn of_rows(
        scenario: impl Into<String>,
        throughput: f64,
        ceiling: f64,
        target: Target,
    ) -> Measurement {
        Measurement {
            scenario: scenario.into(),
            unit: "rows/s",
            throughput,
            p50: None,
            p99: None,
            ceiling: Some(Ceiling::Throughput(ceiling)),
            target,
        }
    }

    pub fn ratio(&self) -> Option<f64> {
        match self.ceiling? {
            Ceiling::Throughput(ceiling) if ceiling > 0.0 => Some(self.throughput / ceiling),
            Ceiling::P99(idle) if !idle.is_zero() => {
                Some(self.p99?.as_secs_f64() / idle.as_secs_f64())
            }
            _ => None,
        }
    }

    /// True when every bound of the target holds.
    pub fn passed(&self) -> bool {
        let Target {
            min_ratio,
            max_ratio,
            min_throughput,
            max_p99,
        } = self.target;
        min_ratio.is_none_or(|min| self.ratio().is_some_and(|ratio| ratio >= min))
            && max_ratio.is_none_or(|max| self.ratio().is_some_and(|ratio| ratio <= max))
            && min_throughput.is_none_or(|min| self.throughput >= min)
            && max_p99.is_none_or(|max| self.p99.is_some_and(|p99| p99 <= max))
    }
}

const COLUMNS: [&str; 8] = [
    "scenario",
    "throughput",
    "p50",
    "p99",
    "ceiling",
    "ratio",
    "target",
    "pass/fail",
];

/// The table, as a string of aligned columns. In a `quick` run the verdicts
/// are shown but marked: the runs are too short to judge.
pub fn table(measurements: &[Measurement], quick: bool) -> String {
    let rows: Vec<[String; 8]> = measurements
        .iter()
        .map(|m| {
            let verdict = match (m.passed(), quick) {
                // A row shown for reference: nothing to judge.
                _ if m.target.is_none() => "-".to_owned(),
                (true, false) => "pass".to_owned(),
                (false, false) => "FAIL".to_owned(),
                (true, true) => "pass (quick)".to_owned(),
                (false, true) => "fail (quick)".to_owned(),
            };
            [
                m.scenario.clone(),
                format!("{} {}", rate(m.throughput), m.unit),
                m.p50.map(millis).unwrap_or_else(|| "-".into()),
                m.p99.map(millis).unwrap_or_else(|| "-".into()),
                match m.ceiling {
                    Some(Ceiling::Throughput(c)) => format!("{} {}", rate(c), m.unit),
                    Some(Ceiling::P99(p99)) => format!("p99 {}", millis(p99)),
                    None => "-".into(),
                },
                m.ratio()
                    .map(|r| format!("{r:.2}x"))
                    .unwrap_or_else(|| "-".into()),
                target(&m.target),
                verdict,
            ]
        })
        .collect();
    let mut widths = COLUMNS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(&COLUMNS.map(str::to_owned));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

fn rate(per_second: f64) -> String {
    format!("{per_second:.0}")
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn target(t: &Target) -> String {
    let mut parts = Vec::new();
    if let Some(ratio) = t.min_ratio {
        parts.push(format!(">= {ratio:.2}x"));
    }
    if let Some(ratio) = t.max_ratio {
        parts.push(format!("<= {ratio:.2}x"));
    }
    if let Some(min) = t.min_throughput {
        parts.push(format!(">= {min:.0}/s"));
    }
    if let Some(max) = t.max_p99 {
        parts.push(format!("p99 <= {}", millis(max)));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(throughput: f64, ceiling: f64) -> Measurement {
        Measurement::of_rows(
            "relay",
            throughput,
            ceiling,
            Target {
                min_ratio: Some(0.7),
                min_throughput: Some(5000.0),
                ..Target::default()
            },
        )
    }

    #[test]
    fn every_bound_of_the_target_must_hold() {
        assert!(relay(8000.0, 10_000.0).passed());
        assert!(!relay(6000.0, 10_000.0).passed(), "ratio below 0.7");
        assert!(!relay(4900.0, 5000.0).passed(), "under 5000/s");
    }

    #[test]
    fn a_p99_bound_needs_a_p99() {
        let mut m = relay(8000.0, 10_000.0);
        m.target.max_p99 = Some(Duration::from_millis(5));
        assert!(!m.passed());
        m.p99 = Some(Duration::from_millis(4));
        assert!(m.passed());
    }

    #[test]
    fn a_p99_ceiling_bounds_the_ratio_from_above() {
        let storm = Measurement {
            scenario: "storm".into(),
            unit: "req/s",
            throughput: 500.0,
            p50: Some(Duration::from_millis(3)),
            p99: Some(Duration::from_millis(9)),
            ceiling: Some(Ceiling::P99(Duration::from_millis(6))),
            target: Target {
                max_ratio: Some(2.0),
                ..Target::default()
            },
        };
        assert!(storm.ratio().is_some_and(|r| (r - 1.5).abs() < 1e-9));
        assert!(storm.passed());
        let stalled = Measurement {
            p99: Some(Duration::from_millis(13)),
            ..storm
        };
        assert!(!stalled.passed(), "more than twice the idle p99");
        assert!(table(&[stalled], false).contains("p99 6.00 ms"));
    }

    #[test]
    fn the_table_has_a_row_per_scenario_and_marks_quick_runs() {
        let table = table(&[relay(8000.0, 10_000.0)], true);
        assert!(table.starts_with("| scenario"));
        assert!(table.contains("0.80x"));
        assert!(table.contains("pass (quick)"));
    }
}
