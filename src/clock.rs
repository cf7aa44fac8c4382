//! The wall clock, injected so tests can run simulated days on paused time.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::timetable::Instant;

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch, UTC.
    fn now(&self) -> Instant;
}

/// The system's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("system clock is set after 1970");
        since_epoch.as_millis() as Instant
    }
}
