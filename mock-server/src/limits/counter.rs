//! One rate key's state: the requests in its burst window and its count for the day.

use std::collections::VecDeque;

use super::{Profile, RateHeaders, Settings, WindowKind};

pub(super) const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Default)]
pub(super) struct Counter {
    /// The counted requests that can still matter, as runs of one
    /// millisecond each (the clock's resolution): `(time, how many)`,
    /// ascending by time. Only the newest `burst` requests decide anything
    /// (the window is full exactly when the `burst`-th newest is still in
    /// it), so older ones are dropped: memory stays bounded by the burst and
    /// by the window's length in milliseconds, whichever is smaller.
    window: VecDeque<(i64, u32)>,
    /// How many requests `window` holds (the sum of its counts).
    in_window: usize,
    /// The day `day_count` belongs to, in days since the epoch on the shifted clock.
    day: i64,
    day_count: u32,
    /// The latest time anything was stored; the sweep measures idleness from it.
    last_stored_ms: i64,
    /// The window of the profile last seen, for the sweep.
    window_ms: u64,
}

/// A window length usable in arithmetic: `0` behaves as one millisecond.
fn window_len(profile: Profile) -> i64 {
    i64::try_from(profile.window_ms).unwrap_or(i64::MAX).max(1)
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Counter {
    /// Forgets requests that left the window and a count of a past day.
    pub(super) fn advance(&mut self, profile: Profile, settings: &Settings, now_ms: i64) {
        let w = window_len(profile);
        // The deque is sorted, and both expiry rules are monotone in the
        // timestamp, so the expired requests are always a prefix.
        while let Some(&(t, n)) = self.window.front() {
            let expired = match settings.window {
                WindowKind::Rolling => now_ms.saturating_sub(t) >= w,
                WindowKind::Fixed => t.div_euclid(w) < now_ms.div_euclid(w),
            };
            if !expired {
                break;
            }
            self.window.pop_front();
            self.in_window -= n as usize;
        }
        let day = settings.day_of(now_ms);
        if day != self.day {
            // A clock moved back to an earlier day also starts afresh.
            self.day = day;
            self.day_count = 0;
        }
        self.window_ms = profile.window_ms;
    }

    #[cfg(test)]
    pub(super) fn entries(&self) -> usize {
        self.window.len()
    }

    pub(super) fn in_window(&self) -> usize {
        self.in_window
    }

    pub(super) fn day_count(&self) -> u32 {
        self.day_count
    }

    /// Counts one request at `now_ms` against the window and the day.
    pub(super) fn record(&mut self, profile: Profile, now_ms: i64) {
        // A clock moved back can make `now_ms` older than stored requests;
        // inserting in order keeps the deque sorted for `advance`.
        match self.window.back_mut() {
            Some((t, n)) if *t == now_ms => *n = n.saturating_add(1),
            Some(&mut (t, _)) if t > now_ms => {
                let at = self.window.partition_point(|&(t, _)| t < now_ms);
                match self.window.get_mut(at) {
                    Some((t, n)) if *t == now_ms => *n = n.saturating_add(1),
                    _ => self.window.insert(at, (now_ms, 1)),
                }
            }
            _ => self.window.push_back((now_ms, 1)),
        }
        self.in_window += 1;
        self.keep_newest(usize::try_from(profile.burst).unwrap_or(usize::MAX));
        self.day_count = self.day_count.saturating_add(1);
        self.stored(now_ms);
    }

    /// The daily quota is used up until the next day.
    pub(super) fn exhaust_daily(&mut self, profile: Profile, now_ms: i64) {
        self.day_count = self.day_count.max(profile.daily);
        self.stored(now_ms);
    }

    /// The window holds `burst - remaining` requests made at `now_ms`.
    pub(super) fn set_burst_remaining(&mut self, profile: Profile, remaining: u32, now_ms: i64) {
        let used = profile.burst.saturating_sub(remaining);
        self.window.clear();
        self.in_window = 0;
        if used > 0 {
            self.window.push_back((now_ms, used));
            self.in_window = used as usize;
        }
        self.stored(now_ms);
    }

    /// Drops the oldest requests beyond the newest `keep`.
    fn keep_newest(&mut self, keep: usize) {
        while self.in_window > keep {
            let excess = self.in_window - keep;
            let Some((_, n)) = self.window.front_mut() else { break };
            if (*n as usize) <= excess {
                self.in_window -= *n as usize;
                self.window.pop_front();
            } else {
                // Below `*n`, so it fits a u32.
                *n -= u32::try_from(excess).unwrap_or(*n);
                self.in_window = keep;
            }
        }
    }

    /// The time of the `i`-th oldest request in the window.
    fn nth_oldest(&self, mut i: usize) -> Option<i64> {
        for &(t, n) in &self.window {
            if i < n as usize {
                return Some(t);
            }
            i -= n as usize;
        }
        None
    }

    fn stored(&mut self, now_ms: i64) {
        self.last_stored_ms = self.last_stored_ms.max(now_ms);
    }

    /// True when nothing stored here can matter at `now_ms` any more: every
    /// request left the window and the day is over, so dropping the counter
    /// changes no answer.
    pub(super) fn is_idle(&self, now_ms: i64) -> bool {
        let idle_for = now_ms.saturating_sub(self.last_stored_ms);
        let window = i64::try_from(self.window_ms).unwrap_or(i64::MAX);
        idle_for > DAY_MS.saturating_add(window)
    }

    pub(super) fn headers(&self, profile: Profile) -> RateHeaders {
        RateHeaders {
            limit_daily: profile.daily,
            daily_remaining: profile.daily.saturating_sub(self.day_count),
            interval_ms: profile.window_ms,
            max: profile.burst,
            remaining: profile.burst.saturating_sub(clamp_u32(self.in_window)),
        }
    }

    /// Milliseconds until the window admits a request again.
    pub(super) fn burst_retry_ms(&self, profile: Profile, kind: WindowKind, now_ms: i64) -> i64 {
        let w = window_len(profile);
        match kind {
            WindowKind::Fixed => w - now_ms.rem_euclid(w),
            WindowKind::Rolling => {
                let burst = usize::try_from(profile.burst).unwrap_or(usize::MAX);
                // The window admits again once all but `burst - 1` of its
                // requests left it: when the one at `len - burst` expires.
                match self.in_window.checked_sub(burst) {
                    Some(i) if burst > 0 => self.nth_oldest(i).map_or(w, |t| t.saturating_add(w) - now_ms),
                    _ => w,
                }
            }
        }
    }
}
