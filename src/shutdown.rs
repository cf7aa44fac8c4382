//! The signals the service handles: SIGINT and SIGTERM stop it gracefully,
//! SIGHUP reloads its configuration.
//!
//! The handlers are installed first thing at start-up, so a SIGTERM that
//! arrives while the service is still connecting does not kill the process
//! with the default action. `unless_stopped` races start-up against the
//! stop signals: start-up against an unreachable broker can take a minute,
//! and a stop must not wait for it.

use std::future::Future;
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

/// The outcome of start-up.
pub enum StartUp<T> {
    Finished(T),
    /// A stop signal arrived first, with the signal's name.
    Stopped(&'static str),
}

/// Runs `start_up` until it finishes or a stop signal arrives. A SIGHUP in
/// the meantime sets `reload_requested`, so the caller reloads once
/// started. Start-up steps that block their thread delay the stop until
/// they return.
pub async fn unless_stopped<T>(
    start_up: impl Future<Output = T>,
    signals: &mut StopSignals,
    reload_requested: &mut bool,
) -> StartUp<T> {
    let mut start_up = std::pin::pin!(start_up);
    loop {
        let mut next_signal = std::pin::pin!(signals.next());
        let request = std::future::poll_fn(|cx| {
            if let Poll::Ready(value) = start_up.as_mut().poll(cx) {
                return Poll::Ready(Err(value));
            }
            next_signal.as_mut().poll(cx).map(Ok)
        })
        .await;

        match request {
            Err(value) => return StartUp::Finished(value),
            Ok(SignalRequest::Stop(signal)) => return StartUp::Stopped(signal),
            Ok(SignalRequest::Reload) => *reload_requested = true,
        }
    }
}
