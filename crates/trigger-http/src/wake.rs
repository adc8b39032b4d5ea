//! Absorbing a future's wake-ups of itself.
//!
//! Wasmtime's component call path completes a call by sending on a channel
//! the same task is waiting on, so the task wakes itself while it is being
//! polled. Tokio treats a self-wake as a yield: it requeues the task and
//! wakes a sibling worker to steal it — one futex and one eventfd write per
//! request, and two cores playing ping-pong. [`AbsorbSelfWakes`] catches a
//! wake that happens during its own poll and simply polls again, unless the
//! poll ran long enough that the wake may be a deliberate yield, which is
//! passed on untouched. (The epoch deadline's yields, every tick of guest
//! execution, use `tokio::task::yield_now`, whose wake comes after the poll
//! and is never absorbed.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// A poll shorter than this that woke itself is re-polled at once; a longer
/// one is treated as a deliberate yield.
const QUICK_POLL: Duration = Duration::from_micros(500);

/// Re-polls at most this many times in one `poll` before yielding anyway.
const MAX_REPOLLS: usize = 8;

/// Wraps a future so that its wake-ups of itself during a quick poll do not
/// reach the executor.
pub(crate) struct AbsorbSelfWakes<F> {
    inner: Pin<Box<F>>,
}

impl<F> AbsorbSelfWakes<F> {
    pub(crate) fn new(inner: F) -> Self {
        AbsorbSelfWakes {
            inner: Box::pin(inner),
        }
    }
}

struct ProbeWaker {
    outer: Waker,
    polling: AtomicBool,
    woken_while_polling: AtomicBool,
}

impl Wake for ProbeWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.polling.load(Ordering::Acquire) {
            self.woken_while_polling.store(true, Ordering::Release);
        } else {
            self.outer.wake_by_ref();
        }
    }
}

impl<F: Future> Future for AbsorbSelfWakes<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let probe = Arc::new(ProbeWaker {
            outer: cx.waker().clone(),
            polling: AtomicBool::new(true),
            woken_while_polling: AtomicBool::new(false),
        });
        let waker = Waker::from(probe.clone());
        let mut inner_cx = Context::from_waker(&waker);
        for _ in 0..MAX_REPOLLS {
            probe.woken_while_polling.store(false, Ordering::Release);
            probe.polling.store(true, Ordering::Release);
            let started = Instant::now();
            let result = self.inner.as_mut().poll(&mut inner_cx);
            probe.polling.store(false, Ordering::Release);
            if result.is_ready() {
                return result;
            }
            if !probe.woken_while_polling.load(Ordering::Acquire) {
                return Poll::Pending;
            }
            if started.elapsed() >= QUICK_POLL {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wakes itself `n` times before finishing, counting its polls.
    struct SelfWaking {
        left: usize,
        polls: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Future for SelfWaking {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.left == 0 {
                return Poll::Ready(());
            }
            self.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    struct CountingWaker(std::sync::atomic::AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn quick_self_wakes_are_absorbed_and_bounded() {
        let outer = Arc::new(CountingWaker(Default::default()));
        let waker = Waker::from(outer.clone());
        let mut cx = Context::from_waker(&waker);
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut f = AbsorbSelfWakes::new(SelfWaking {
            left: 3,
            polls: polls.clone(),
        });
        assert!(Pin::new(&mut f).poll(&mut cx).is_ready());
        assert_eq!(
            (
                polls.load(Ordering::Relaxed),
                outer.0.load(Ordering::Relaxed)
            ),
            (4, 0)
        );

        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut f = AbsorbSelfWakes::new(SelfWaking {
            left: 100,
            polls: polls.clone(),
        });
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), MAX_REPOLLS);
        assert_eq!(
            outer.0.load(Ordering::Relaxed),
            1,
            "after the bound the wake is passed on"
        );
    }
}
