//! One shutdown signal for every thread: SIGTERM/SIGINT trigger it, loops poll it or sleep
//! on it (so a stop never waits out a sleep), and it carries no other state.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A cloneable, level-triggered stop flag with a timed wait.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// The flag and the condition variable sleepers wait on.
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Fires the signal and wakes every sleeper.
    pub fn trigger(&self) {
        let (m, cv) = &*self.inner;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps up to `d`; returns true (early) if the signal fires.
    pub fn wait_timeout(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let (m, cv) = &*self.inner;
        let mut fired = m.lock().unwrap_or_else(|p| p.into_inner());
        while !*fired {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            fired = cv.wait_timeout(fired, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_early_when_triggered() {
        let s = Shutdown::new();
        assert!(!s.wait_timeout(Duration::from_millis(10)));
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.wait_timeout(Duration::from_secs(600)));
        std::thread::sleep(Duration::from_millis(20));
        s.trigger();
        assert!(t.join().unwrap());
        assert!(s.is_triggered());
    }
}
