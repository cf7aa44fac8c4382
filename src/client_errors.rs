//! Logging of librdkafka's client-level errors, one line per kind of error
//! per interval.
//!
//! librdkafka queues an error event for every failed connection attempt and
//! hands them over when the client is next polled. A client that could not
//! reach its broker for a while then logs hundreds of identical lines in
//! one millisecond (664 were seen at a single stop). This keeps the first
//! of each kind, and reports how many were left out when the next one is
//! logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;

/// Shortest time between two lines for the same kind of error.
const INTERVAL: Duration = Duration::from_secs(10);

/// When each kind of error was last logged, and how many since were not.
#[derive(Default)]
pub struct ClientErrorLog {
    kinds: Mutex<HashMap<String, (Instant, u64)>>,
}

impl ClientErrorLog {
    /// Logs `error` unless the same kind was logged less than `INTERVAL` ago.
    pub fn log(&self, client: &str, error: &KafkaError, reason: &str) {
        let kind = match error.rdkafka_error_code() {
            Some(code) => format!("{code:?}"),
            None => error.to_string(),
        };
        let now = Instant::now();

        let mut kinds = self.kinds.lock().expect("client error log lock");
        let suppressed = match kinds.get_mut(&kind) {
            Some((last, suppressed)) if now.duration_since(*last) < INTERVAL => {
                *suppressed += 1;
                return;
            }
            Some((last, suppressed)) => {
                *last = now;
                std::mem::take(suppressed)
            }
            None => {
                kinds.insert(kind, (now, 0));
                0
            }
        };
        drop(kinds);

        log::warn!("kafka {client} error={error} reason={reason} repeats_not_logged={suppressed}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn repeats_within_interval_are_counted() {
        let errors = ClientErrorLog::default();
        let down = KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        for _ in 0..5 {
            errors.log("producer", &down, "1/1 brokers are down");
        }

        let kinds = errors.kinds.lock().unwrap();
        assert_eq!(kinds.len(), 1);
        assert_eq!(kinds.values().next().unwrap().1, 4);
    }
}
