//! The signals the service handles: SIGINT and SIGTERM stop it gracefully,
//! SIGHUP reloads its configuration.
//!
//! The handlers are installed first thing at start-up, so a SIGTERM that
//! arrives while the service is still connecting is kept and handled with
//! the same orderly stop once start-up is done, instead of killing the
//! process with the default action.

use std::task::Poll;

use actix_rt::signal::unix::{signal, Signal, SignalKind};

/// The action a received signal requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalRequest {
    /// Stop, with the signal's name.
    Stop(&'static str),
    Reload,
}

pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopSignals {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP. Needs a running
    /// runtime.
    pub fn listen() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> SignalRequest {
        std::future::poll_fn(|cx| {
            if self.interrupt.poll_recv(cx).is_ready() {
                Poll::Ready(SignalRequest::Stop("SIGINT"))
            } else if self.terminate.poll_recv(cx).is_ready() {
                Poll::Ready(SignalRequest::Stop("SIGTERM"))
            } else if self.hangup.poll_recv(cx).is_ready() {
                Poll::Ready(SignalRequest::Reload)
            } else {
                Poll::Pending
            }
        })
        .await
    }
}
