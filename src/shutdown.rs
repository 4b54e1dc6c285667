//! One shutdown signal for every thread: SIGTERM/SIGINT trigger it, loops poll it or sleep
//! on it (so a stop never waits out a sleep), and it carries no other state.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Callbacks run once when the signal fires (to wake async tasks without polling).
type Callbacks = Vec<Box<dyn FnOnce() + Send>>;

/// A cloneable, level-triggered stop flag with a timed wait.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// The flag and the condition variable sleepers wait on.
    inner: Arc<(Mutex<bool>, Condvar)>,
    /// Run by [`Shutdown::trigger`]; guarded separately so callbacks never run under the
    /// flag's lock.
    callbacks: Arc<Mutex<Callbacks>>,
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Fires the signal, wakes every sleeper and runs the registered callbacks.
    pub fn trigger(&self) {
        let (m, cv) = &*self.inner;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        let callbacks = std::mem::take(&mut *self.callbacks.lock().unwrap_or_else(|p| p.into_inner()));
        for f in callbacks {
            f();
        }
    }

    /// Runs `f` when the signal fires (at once if it already has).
    pub fn on_trigger(&self, f: impl FnOnce() + Send + 'static) {
        if self.is_triggered() {
            f();
            return;
        }
        self.callbacks.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(f));
        // Fired between the check and the push: run it now (take() makes this idempotent).
        if self.is_triggered() {
            let callbacks = std::mem::take(&mut *self.callbacks.lock().unwrap_or_else(|p| p.into_inner()));
            for f in callbacks {
                f();
            }
        }
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

    #[test]
    fn callbacks_run_once_on_trigger_or_at_once_after() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let s = Shutdown::new();
        let n = Arc::new(AtomicU32::new(0));
        let n2 = n.clone();
        s.on_trigger(move || {
            n2.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(n.load(Ordering::SeqCst), 0);
        s.trigger();
        s.trigger();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let n3 = n.clone();
        s.on_trigger(move || {
            n3.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }
}
