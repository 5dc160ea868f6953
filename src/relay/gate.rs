//! A wake-up gate: poll a task's rarely ready futures only after one of them woke the task.
//!
//! A connection's reader waits on its socket and on a handful of futures that almost never
//! complete (the connection closing, a drain, the transaction timer and wake-ups, the
//! probation timer). `select!` polls every branch each time the task runs, and most of those
//! polls take a lock (`CancellationToken`, `Notify`): at one message per read that was about
//! 2,500 instructions per message, a tenth of the relay's work. The gate gives those futures
//! a waker of its own, which records the wake-up and then wakes the task; the task polls them
//! again only when the record says one of them fired, or after it replaced one (a new
//! `Notified`, a timer set to a new deadline), which must be polled once to register.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;

struct Inner {
    /// A gated future woke us (or the gate was opened) since the last poll through it.
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Inner {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

pub struct Gate {
    inner: Arc<Inner>,
    waker: Waker,
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

impl Gate {
    /// Open at first: the first poll polls every gated future, which registers them.
    pub fn new() -> Gate {
        let inner = Arc::new(Inner {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(inner.clone());
        Gate { inner, waker }
    }

    /// Poll the gated futures at the next `poll`: after one of them was replaced or reset,
    /// or after one completed (the others may have fired at the same time).
    pub fn open(&self) {
        self.inner.woken.store(true, Ordering::Release);
    }

    /// Register the task; when a gated future woke it since the last time (or the gate is
    /// open), run `poll_gated` with a context whose waker is the gate's.
    pub fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        poll_gated: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.inner.task.register(cx.waker());
        if !self.inner.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        poll_gated(&mut Context::from_waker(&self.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::time::Duration;

    #[tokio::test]
    async fn a_gated_future_wakes_the_task_and_is_polled_only_then() {
        let gate = Gate::new();
        let notify = Arc::new(tokio::sync::Notify::new());
        let mut notified = Box::pin(notify.notified());
        let polls = std::sync::atomic::AtomicUsize::new(0);
        let waiter = async {
            std::future::poll_fn(|cx| {
                gate.poll(cx, |cx| {
                    polls.fetch_add(1, Ordering::Relaxed);
                    notified.as_mut().poll(cx)
                })
            })
            .await
        };
        let n = notify.clone();
        let firer = async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            n.notify_one();
        };
        let woke = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::join!(waiter, firer)
        })
        .await;
        assert!(
            woke.is_ok(),
            "the notification through the gate did not wake the task"
        );
        // Once to register, once after the wake-up: the sleep's wake-ups of the same task
        // (join! polls both) did not poll the gated future again.
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }
}
