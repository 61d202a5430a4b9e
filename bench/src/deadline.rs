//! A per-caller RPC deadline that does not touch the timer wheel per call.
//!
//! `tokio::time::timeout` around every call registers a timer entry when the
//! call first pends and removes it when the call finishes: two trips into
//! the runtime's timer driver (and its lock) per RPC. A closed-loop caller
//! runs one call at a time, and deadlines only move forward, so
//! [`Deadline`] keeps one [`Sleep`] registered for the caller's lifetime. It
//! may fire early (at an older call's deadline); it is then re-armed to the
//! current call's deadline, so it is re-registered at most about once per
//! timeout period, and it never fires late.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// One caller's deadline timer; see the module docs.
#[derive(Debug)]
pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
}

impl Deadline {
    /// A timer first armed `timeout` from now (no call can have an earlier
    /// deadline).
    pub fn new(timeout: Duration) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Runs `fut` until it completes or `deadline` passes; `None` means the
    /// deadline passed first (and `fut` was dropped).
    pub async fn run<F: Future>(&mut self, deadline: Instant, fut: F) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            loop {
                match self.sleep.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) if self.sleep.deadline() >= deadline => {
                        return Poll::Ready(None);
                    }
                    Poll::Ready(()) => self.sleep.as_mut().reset(deadline),
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_at_each_calls_own_deadline() {
        let t = Duration::from_millis(300);
        let mut d = Deadline::new(t);
        // Quick calls complete without waiting for the timer.
        for _ in 0..3 {
            let now = Instant::now();
            assert_eq!(d.run(now + t, async { 7 }).await, Some(7));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The timer is still armed for the first call's deadline (t = 300 ms),
        // which has just passed; this call's deadline is 300 ms from now.
        let start = Instant::now();
        let out = d.run(start + t, std::future::pending::<()>()).await;
        assert_eq!(out, None);
        let waited = start.elapsed();
        assert!(waited >= t, "fired early, after {waited:?}");
        // A call that finishes well before its deadline.
        let start = Instant::now();
        let out = d
            .run(start + t, tokio::time::sleep(Duration::from_millis(50)))
            .await;
        assert_eq!(out, Some(()));
    }
}
