//! Counters and the delivery-lateness histogram, rendered in the Prometheus
//! text format (version 0.0.4) for `GET /metrics`.
//!
//! Route actors count trip events here and the Kafka writer records how
//! late each trip event's batch reached the broker; route states and
//! consumer counts are asked of their actors at scrape time by the HTTP
//! layer, which passes them in as [`ScrapeInputs`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::timetable::Instant;

/// Upper bounds (seconds) of the lateness histogram's buckets.
const LATENESS_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// Totals of the Kafka writer, copied in after each write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterTotals {
    pub batches: u64,
    pub records: u64,
    pub transactions: u64,
    pub failures: u64,
    pub undelivered: u64,
}

#[derive(Default)]
struct State {
    /// tenant → route → count per event kind, indexed like `event_kinds`.
    /// Nested with one small array per route, so counting allocates only on
    /// a route's first event, and 100,000 routes stay a few MB.
    trip_events: BTreeMap<String, BTreeMap<String, Vec<u64>>>,
    /// Event kind names, in the order they were first counted.
    event_kinds: Vec<String>,
    /// Count per bucket of `LATENESS_BUCKETS`, not cumulative.
    lateness_buckets: [u64; LATENESS_BUCKETS.len()],
    lateness_over: u64,
    lateness_sum: f64,
    /// Every delivery since `keep_lateness_samples`, `None` until then.
    lateness_samples: Option<Vec<LatenessSample>>,
    writer: WriterTotals,
}

/// One trip event batch the broker acknowledged, in ms since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatenessSample {
    pub scheduled_at: Instant,
    pub acknowledged_at: Instant,
}

/// The service's metrics, shared by the actors that update them.
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

/// The values a scrape collects from the actors: each route's state, and
/// each consumer's record counts.
#[derive(Default)]
pub struct ScrapeInputs {
    /// (tenant, route, state name).
    pub route_states: Vec<(String, String, &'static str)>,
    /// (topic, outcome, reason, count); reason is empty unless outcome is `bad`.
    pub consumed: Vec<(String, &'static str, String, u64)>,
    /// (topic, count) of failed reads from the broker.
    pub read_errors: Vec<(String, u64)>,
}

/// Every state name, so a route's gauge shows 0 for the states it is not in.
const STATES: [&str; 5] = [
    "open_entry",
    "locked_entry",
    "in_transit",
    "awaiting_return",
    "out_of_service",
];

impl Metrics {
    pub fn count_trip_event(&self, tenant: &str, route: &str, event: &str) {
        let mut guard = self.state.lock().expect("metrics lock");
        let state = &mut *guard;

        let kind = match state.event_kinds.iter().position(|name| name == event) {
            Some(kind) => kind,
            None => {
                state.event_kinds.push(event.to_string());
                state.event_kinds.len() - 1
            }
        };
        if !state.trip_events.contains_key(tenant) {
            state
                .trip_events
                .insert(tenant.to_string(), BTreeMap::new());
        }
        let routes = state.trip_events.get_mut(tenant).expect("tenant inserted");
        if !routes.contains_key(route) {
            routes.insert(route.to_string(), Vec::new());
        }
        let counts = routes.get_mut(route).expect("route inserted");
        if counts.len() <= kind {
            counts.resize(kind + 1, 0);
        }
        counts[kind] += 1;
    }

    /// Records how late a trip event's batch reached the broker, in ms.
    pub fn observe_lateness(&self, late_ms: i64) {
        let mut state = self.state.lock().expect("metrics lock");
        add_lateness(&mut state, late_ms);
    }

    /// Records a trip event batch the broker acknowledged: its lateness, and
    /// the sample itself if samples are kept.
    pub fn observe_delivery(&self, scheduled_at: Instant, acknowledged_at: Instant) {
        let mut state = self.state.lock().expect("metrics lock");
        add_lateness(&mut state, acknowledged_at - scheduled_at);
        if let Some(samples) = &mut state.lateness_samples {
            samples.push(LatenessSample {
                scheduled_at,
                acknowledged_at,
            });
        }
    }

    /// Starts keeping every delivery, for exact percentiles (the benchmark)
    /// where the histogram's buckets are too coarse. The caller must drain
    /// them with `take_lateness_samples`, or they grow without bound.
    pub fn keep_lateness_samples(&self) {
        let mut state = self.state.lock().expect("metrics lock");
        state.lateness_samples.get_or_insert_with(Vec::new);
    }

    /// Takes the deliveries kept since the last call.
    pub fn take_lateness_samples(&self) -> Vec<LatenessSample> {
        let mut state = self.state.lock().expect("metrics lock");
        state
            .lateness_samples
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub fn set_writer_totals(&self, totals: WriterTotals) {
        self.state.lock().expect("metrics lock").writer = totals;
    }

    /// Renders everything in the Prometheus text exposition format.
    pub fn render(&self, inputs: &ScrapeInputs) -> String {
        let state = self.state.lock().expect("metrics lock");
        let mut out = String::new();

        family(
            &mut out,
            "atlas_transports_route_state",
            "gauge",
            "1 for the state each route is in, 0 for the others.",
        );
        for (tenant, route, current) in &inputs.route_states {
            for name in STATES {
                let value = u8::from(*current == name);
                let labels = labels(&[("tenant", tenant), ("route", route), ("state", name)]);
                let _ = writeln!(out, "atlas_transports_route_state{labels} {value}");
            }
        }

        family(
            &mut out,
            "atlas_transports_trip_events_total",
            "counter",
            "Trip events performed, by route and kind.",
        );
        for (tenant, routes) in &state.trip_events {
            for (route, counts) in routes {
                let mut by_event: Vec<(&str, u64)> = counts
                    .iter()
                    .enumerate()
                    .filter(|(_, count)| **count > 0)
                    .map(|(kind, count)| (state.event_kinds[kind].as_str(), *count))
                    .collect();
                by_event.sort_unstable();
                for (event, count) in by_event {
                    let labels = labels(&[("tenant", tenant), ("route", route), ("event", event)]);
                    let _ = writeln!(out, "atlas_transports_trip_events_total{labels} {count}");
                }
            }
        }

        family(
            &mut out,
            "atlas_transports_trip_event_delivery_lateness_seconds",
            "histogram",
            "From a trip event's scheduled instant to the broker's acknowledgement of its batch.",
        );
        let mut cumulative = 0;
        for (bound, count) in LATENESS_BUCKETS.iter().zip(state.lateness_buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "atlas_transports_trip_event_delivery_lateness_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let total = cumulative + state.lateness_over;
        let _ = writeln!(
            out,
            "atlas_transports_trip_event_delivery_lateness_seconds_bucket{{le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(
            out,
            "atlas_transports_trip_event_delivery_lateness_seconds_sum {}",
            state.lateness_sum
        );
        let _ = writeln!(
            out,
            "atlas_transports_trip_event_delivery_lateness_seconds_count {total}"
        );

        let writer = state.writer;
        for (name, help, value) in [
            (
                "atlas_transports_batches_written_total",
                "Batches written to Kafka.",
                writer.batches,
            ),
            (
                "atlas_transports_records_written_total",
                "Records in those batches.",
                writer.records,
            ),
            (
                "atlas_transports_transactions_total",
                "Writes to Kafka, each holding one or more batches.",
                writer.transactions,
            ),
            (
                "atlas_transports_write_failures_total",
                "Write attempts that failed and were tried again.",
                writer.failures,
            ),
            (
                "atlas_transports_batches_undelivered_total",
                "Batches given up: at shutdown or refused by the broker.",
                writer.undelivered,
            ),
        ] {
            family(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }

        family(
            &mut out,
            "atlas_transports_records_consumed_total",
            "counter",
            "Consumed records by topic and outcome (handled, ignored, bad by reason).",
        );
        for (topic, outcome, reason, count) in &inputs.consumed {
            let labels = labels(&[("topic", topic), ("outcome", outcome), ("reason", reason)]);
            let _ = writeln!(
                out,
                "atlas_transports_records_consumed_total{labels} {count}"
            );
        }

        family(
            &mut out,
            "atlas_transports_consumer_read_errors_total",
            "counter",
            "Failed reads from the broker, by topic.",
        );
        for (topic, count) in &inputs.read_errors {
            let labels = labels(&[("topic", topic)]);
            let _ = writeln!(
                out,
                "atlas_transports_consumer_read_errors_total{labels} {count}"
            );
        }

        out
    }
}

fn add_lateness(state: &mut State, late_ms: i64) {
    let seconds = late_ms.max(0) as f64 / 1000.0;
    state.lateness_sum += seconds;
    match LATENESS_BUCKETS.iter().position(|bound| seconds <= *bound) {
        Some(bucket) => state.lateness_buckets[bucket] += 1,
        None => state.lateness_over += 1,
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `{name="value",...}` with the text format's escapes.
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.observe_lateness(3);
        metrics.observe_lateness(40);
        metrics.observe_lateness(60_000);

        let text = metrics.render(&ScrapeInputs::default());
        assert!(
            text.contains("lateness_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("lateness_seconds_bucket{le=\"0.05\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("lateness_seconds_bucket{le=\"30\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("lateness_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("lateness_seconds_count 3\n"), "{text}");
    }

    #[test]
    fn lateness_samples_kept_only_when_asked() {
        let metrics = Metrics::default();
        metrics.observe_delivery(1_000, 1_004);
        assert!(metrics.take_lateness_samples().is_empty());

        metrics.keep_lateness_samples();
        metrics.observe_delivery(2_000, 2_007);
        let sample = LatenessSample {
            scheduled_at: 2_000,
            acknowledged_at: 2_007,
        };
        assert_eq!(metrics.take_lateness_samples(), vec![sample]);
        assert!(metrics.take_lateness_samples().is_empty());

        let text = metrics.render(&ScrapeInputs::default());
        assert!(text.contains("lateness_seconds_count 2\n"), "{text}");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(labels(&[("route", "a\"b\\c")]), r#"{route="a\"b\\c"}"#);
    }

    #[test]
    fn route_state_gauge_marks_one_state() {
        let metrics = Metrics::default();
        let inputs = ScrapeInputs {
            route_states: vec![("t".into(), "subway".into(), "in_transit")],
            ..Default::default()
        };
        let text = metrics.render(&inputs);
        assert!(text.contains(
            r#"atlas_transports_route_state{tenant="t",route="subway",state="in_transit"} 1"#
        ));
        assert!(text.contains(
            r#"atlas_transports_route_state{tenant="t",route="subway",state="open_entry"} 0"#
        ));
    }
}
