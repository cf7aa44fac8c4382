//! Graceful shutdown: the signals that stop the service.
//!
//! The handlers are installed first thing at start-up, so a SIGTERM that
//! arrives while the service is still connecting is kept and answered with
//! the same orderly stop once start-up is done, instead of killing the
//! process with the default action.

use std::task::Poll;

use actix_rt::signal::unix::{signal, Signal, SignalKind};

pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Starts listening for SIGINT and SIGTERM. Needs a running runtime.
    pub fn listen() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the first of SIGINT or SIGTERM and returns its name.
    pub async fn received(&mut self) -> &'static str {
        std::future::poll_fn(|cx| {
            if self.interrupt.poll_recv(cx).is_ready() {
                Poll::Ready("SIGINT")
            } else if self.terminate.poll_recv(cx).is_ready() {
                Poll::Ready("SIGTERM")
            } else {
                Poll::Pending
            }
        })
        .await
    }
}
