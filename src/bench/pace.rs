//! A sleep with microsecond precision for the paced senders of `msgs`.
//!
//! tokio's timer has millisecond granularity (and its park timeout is rounded up to whole
//! milliseconds), so a paced sender woken by it releases its messages in bursts of
//! rate/1000, which then queue behind each other in the relay and dominate the measured
//! latency. On Linux a [`Pacer`] arms a timerfd instead: a high-resolution kernel timer with
//! no timer slack, registered with the runtime's epoll like a socket, so the runtime thread
//! wakes on time by itself: no extra thread, no cross-thread wakeup, no spinning.
//! Elsewhere (or when timerfd_create fails) it falls back to tokio's timer.

use std::time::Instant;

pub struct Pacer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl Pacer {
    /// Must be called inside a tokio runtime (with I/O enabled).
    pub fn new() -> Pacer {
        Pacer {
            #[cfg(target_os = "linux")]
            fd: linux::timerfd(),
        }
    }

    /// Whether the precise timer is in use (false: tokio's millisecond timer).
    pub fn is_precise(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.fd.is_some()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Sleep until `at` (returns at once when it has passed).
    pub async fn sleep_until(&self, at: Instant) {
        let now = Instant::now();
        if at <= now {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            if linux::wait(fd, at - now).await.is_ok() {
                return;
            }
        }
        tokio::time::sleep_until(at.into()).await;
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;

    use tokio::io::unix::AsyncFd;

    /// A non-blocking CLOCK_MONOTONIC timerfd (the clock of `Instant`), or `None`.
    pub fn timerfd() -> Option<AsyncFd<OwnedFd>> {
        // SAFETY: plain syscall; a non-negative result is a descriptor we now own.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return None;
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an OwnedFd keeps its descriptor open, and the same, until it is dropped
        // with the AsyncFd.
        unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
    }

    /// Arm the timer to fire once after `d` and wait until it has.
    pub async fn wait(fd: &AsyncFd<OwnedFd>, d: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                // At least 1 ns: an all-zero it_value would disarm the timer.
                tv_nsec: d.subsec_nanos().max(u32::from(d.as_secs() == 0)) as libc::c_long,
            },
        };
        // SAFETY: valid descriptor, valid pointer to a local struct, null old value.
        let r = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = fd.readable().await?;
            // Readiness may be left over from an earlier expiry whose count was already
            // read (arming resets it): then the read says EAGAIN and we wait again.
            match guard.try_io(|fd| {
                let mut ticks = [0u8; 8];
                // SAFETY: reads at most 8 bytes into a local 8-byte buffer.
                let n = unsafe { libc::read(fd.as_raw_fd(), ticks.as_mut_ptr().cast(), 8) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            }) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sleeps_about_as_long_as_asked() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        rt.block_on(async {
            let p = Pacer::new();
            // Many short sleeps: with tokio's timer each would take at least 1 ms.
            let start = Instant::now();
            let mut at = start;
            for _ in 0..50 {
                at += Duration::from_micros(100);
                p.sleep_until(at).await;
                assert!(Instant::now() >= at);
            }
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(5), "{took:?}");
            if p.is_precise() {
                // Generous: a loaded CI machine may be late, but not a millisecond per sleep.
                assert!(took < Duration::from_millis(40), "{took:?}");
            }
            // A time in the past returns at once.
            p.sleep_until(start).await;
        });
    }
}
