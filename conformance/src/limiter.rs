//! The client-side limiter: at most N requests in any window of 10 s, so a
//! run against a real sandbox never meets the sandbox's own limit (25 / 10 s)
//! by accident. Only the deliberate burst test goes past it.
//!
//! Time is an input here too: a [`Pace`] says what time it is and how to
//! wait. Against a real sandbox that is the wall clock and a sleep; against a
//! mock whose clock the suite controls, waiting is moving the mock's clock
//! forward, so a mock run costs no wall time at all.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::error::Error;

/// What time it is, and how to let time pass.
pub trait Pace {
    fn now_ms(&self) -> u64;
    fn wait_ms(&self, ms: u64) -> Result<(), Error>;
}

/// Requests per window, counted over a rolling window.
#[derive(Debug)]
pub struct Limiter {
    per_window: usize,
    window_ms: u64,
    /// When the requests still in the window were admitted.
    sent: Mutex<VecDeque<u64>>,
}

impl Limiter {
    pub fn new(per_window: u32, window_ms: u64) -> Self {
        Self { per_window: per_window.max(1) as usize, window_ms, sent: Mutex::new(VecDeque::new()) }
    }

    pub fn per_window(&self) -> usize {
        self.per_window
    }

    /// Waits, if need be, until one more request fits in the window, and counts it.
    pub fn admit(&self, pace: &dyn Pace) -> Result<(), Error> {
        self.make_room(1, pace)?;
        let now = pace.now_ms();
        self.lock().push_back(now);
        Ok(())
    }

    /// Waits until `n` requests in a row would be admitted without waiting,
    /// so that a test can send them at one moment of a controlled clock.
    pub fn reserve(&self, n: usize, pace: &dyn Pace) -> Result<(), Error> {
        self.make_room(n.min(self.per_window), pace)
    }

    fn make_room(&self, n: usize, pace: &dyn Pace) -> Result<(), Error> {
        loop {
            let now = pace.now_ms();
            let wait = {
                let mut sent = self.lock();
                while sent.front().is_some_and(|t| t + self.window_ms <= now) {
                    sent.pop_front();
                }
                if sent.len() + n <= self.per_window {
                    return Ok(());
                }
                // The slot that frees the room we need.
                let index = sent.len() + n - self.per_window - 1;
                sent.get(index).map(|t| t + self.window_ms - now).unwrap_or(self.window_ms)
            };
            pace.wait_ms(wait.max(1))?;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        self.sent.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The wall clock, for real sandboxes.
#[derive(Debug, Default)]
pub struct WallClock;

impl Pace for WallClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    fn wait_ms(&self, ms: u64) -> Result<(), Error> {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A clock that moves only when waited on, and remembers every wait.
    #[derive(Default)]
    struct Virtual {
        now: RefCell<u64>,
        waits: RefCell<Vec<u64>>,
    }

    impl Pace for Virtual {
        fn now_ms(&self) -> u64 {
            *self.now.borrow()
        }
        fn wait_ms(&self, ms: u64) -> Result<(), Error> {
            *self.now.borrow_mut() += ms;
            self.waits.borrow_mut().push(ms);
            Ok(())
        }
    }

    #[test]
    fn twenty_five_requests_pass_at_once_and_the_next_waits_for_the_first_to_leave_the_window() {
        let limiter = Limiter::new(25, 10_000);
        let pace = Virtual::default();
        for _ in 0..25 {
            limiter.admit(&pace).unwrap();
        }
        assert!(pace.waits.borrow().is_empty());
        *pace.now.borrow_mut() += 4_000;
        limiter.admit(&pace).unwrap();
        assert_eq!(*pace.waits.borrow(), vec![6_000]);
    }

    #[test]
    fn a_reservation_waits_until_that_many_requests_fit() {
        let limiter = Limiter::new(5, 10_000);
        let pace = Virtual::default();
        for i in 0..5 {
            *pace.now.borrow_mut() = i * 1_000;
            limiter.admit(&pace).unwrap();
        }
        // At 4 s the window holds requests made at 0..4 s; three free slots
        // need the requests of 0, 1 and 2 s to leave: until 12 s.
        limiter.reserve(3, &pace).unwrap();
        assert_eq!(pace.now_ms(), 12_000);
        for _ in 0..3 {
            limiter.admit(&pace).unwrap();
        }
        assert_eq!(pace.now_ms(), 12_000, "reserved requests do not wait");
    }
}
