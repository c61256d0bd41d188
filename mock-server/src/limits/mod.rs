//! Rate limits: per-resource counters, the `X-RateLimit-*` header values, and
//! injected limits for client tests.
//!
//! Pure logic: no HTTP and no clock. The pipeline decides which [`RateKey`] a
//! request is counted against and which [`Profile`] applies (from the
//! environment of the location or company), passes the time in as `now_ms`,
//! and turns a [`Decision`] into headers or a 429.
//!
//! A [`Limiter`] keeps one counter per key: the times of the requests in the
//! burst window (at most `burst` of them) and a count for the day. The
//! counters live in sharded maps, each behind its own `Mutex`, so a decision
//! is exact under concurrency (200 simultaneous requests against a burst of 25
//! admit exactly 25) without one lock for every location.
//!
//! Why not the `governor` crate: it implements GCRA, which refills capacity
//! continuously (one slot every `window / burst`) and can only report
//! "remaining burst capacity" in those terms. HighLevel counts requests in a
//! window and its `X-RateLimit-Remaining` header shows how many are left in
//! it; a client that sent 25 requests in one second must see 0 for the rest of
//! the ten seconds, not a slot back every 400 ms. Nor does governor have a
//! daily quota, or a way to set a key's state for a test.

mod counter;
mod inject;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::world::Environment;
use counter::{Counter, DAY_MS};
pub use inject::{path_matches, ActiveInjection, Injection, Target};

/// Burst and daily limits of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Requests admitted per window.
    pub burst: u32,
    pub window_ms: u64,
    /// Requests admitted per day.
    pub daily: u32,
}

impl Profile {
    pub const SANDBOX: Profile = Profile { burst: 25, window_ms: 10_000, daily: 10_000 };
    pub const PRODUCTION: Profile = Profile { burst: 100, window_ms: 10_000, daily: 200_000 };

    pub fn for_environment(environment: Environment) -> Profile {
        match environment {
            Environment::Sandbox => Profile::SANDBOX,
            Environment::Production => Profile::PRODUCTION,
        }
    }
}

/// How the burst window moves. HighLevel does not document it [guess: rolling].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// A request counts for `window_ms` after it was made.
    #[default]
    Rolling,
    /// Windows start at multiples of `window_ms` since the epoch; all slots free at once.
    Fixed,
}

/// Fidelity settings of the limiter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case", deny_unknown_fields)]
pub struct Settings {
    pub window: WindowKind,
    /// The daily count resets at 00:00 at this offset from UTC, on the mock's clock [guess: 0].
    pub day_reset_utc_offset_minutes: i32,
    /// A request answered 429 consumes burst and daily quota too [guess: no].
    /// Injected refusals never do.
    pub count_refused: bool,
    /// Off: requests are still counted and the headers still sent, but the
    /// counters never refuse. Injected rules still apply: a test asked for them.
    pub enabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self { window: WindowKind::Rolling, day_reset_utc_offset_minutes: 0, count_refused: false, enabled: true }
    }
}

impl Settings {
    fn offset_ms(&self) -> i64 {
        i64::from(self.day_reset_utc_offset_minutes) * 60_000
    }

    /// The day `now_ms` falls in, counted from the epoch on the shifted clock.
    pub(crate) fn day_of(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(self.offset_ms()).div_euclid(DAY_MS)
    }

    /// Milliseconds from `now_ms` until the next day starts.
    pub(crate) fn until_next_day_ms(&self, now_ms: i64) -> i64 {
        DAY_MS - now_ms.saturating_add(self.offset_ms()).rem_euclid(DAY_MS)
    }
}

/// What a request is counted against: a location's or company's PIT traffic
/// (shared by all PITs of it), or an OAuth app's traffic for a location or company.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// The id of a location or company.
    Resource(String),
    App {
        client_id: String,
        resource: String,
    },
}

impl RateKey {
    /// The location or company id the traffic is for.
    pub fn resource(&self) -> &str {
        match self {
            RateKey::Resource(resource) | RateKey::App { resource, .. } => resource,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    Burst,
    Daily,
    Injected,
}

/// The values of the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateHeaders {
    pub limit_daily: u32,
    pub daily_remaining: u32,
    pub interval_ms: u64,
    pub max: u32,
    pub remaining: u32,
}

/// The rate-limit headers as HighLevel names them, and as HTTP/1.1 writes
/// them (lowercase; header names are case-insensitive), in one order.
const RATE_HEADER_NAMES: [&str; 5] = [
    "X-RateLimit-Limit-Daily",
    "X-RateLimit-Daily-Remaining",
    "X-RateLimit-Interval-Milliseconds",
    "X-RateLimit-Max",
    "X-RateLimit-Remaining",
];
const RATE_HEADERS: [axum::http::HeaderName; 5] = [
    axum::http::HeaderName::from_static("x-ratelimit-limit-daily"),
    axum::http::HeaderName::from_static("x-ratelimit-daily-remaining"),
    axum::http::HeaderName::from_static("x-ratelimit-interval-milliseconds"),
    axum::http::HeaderName::from_static("x-ratelimit-max"),
    axum::http::HeaderName::from_static("x-ratelimit-remaining"),
];

impl RateHeaders {
    /// The values, in the order of the names.
    fn values(&self) -> [u64; 5] {
        [
            u64::from(self.limit_daily),
            u64::from(self.daily_remaining),
            self.interval_ms,
            u64::from(self.max),
            u64::from(self.remaining),
        ]
    }

    /// The headers of an answer, ready to send.
    pub fn header_values(&self) -> [(axum::http::HeaderName, u64); 5] {
        let values = self.values();
        std::array::from_fn(|i| (RATE_HEADERS[i].clone(), values[i]))
    }

    /// Header names as HighLevel sends them, with their values.
    pub fn pairs(&self) -> [(&'static str, String); 5] {
        let values = self.values();
        std::array::from_fn(|i| (RATE_HEADER_NAMES[i], values[i].to_string()))
    }
}

/// The outcome of one counted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The true counters after this request (an injected refusal shows them untouched).
    pub headers: RateHeaders,
    /// Seconds until a burst slot frees, or until the day resets when the
    /// daily quota is the cause, rounded up, at least 1; for an injected
    /// refusal, the window length. 0 when allowed.
    pub retry_after_secs: u64,
    pub reason: Option<Refusal>,
}

/// Whole seconds covering `ms`, at least 1.
pub(crate) fn ceil_secs(ms: i64) -> u64 {
    u64::try_from(ms.max(1)).unwrap_or(1).div_ceil(1000)
}

const SHARDS: usize = 16;
/// `check` sweeps idle counters once every this many requests (each shard
/// once every `SWEEP_EVERY / SHARDS` of its own).
const SWEEP_EVERY: u64 = 1024;

/// The counters of the rate keys that hash to one shard, and how many
/// calls have used it (each shard sweeps itself: no counter is shared
/// by every request).
#[derive(Debug, Default)]
struct Shard {
    counters: HashMap<RateKey, Counter, foldhash::fast::RandomState>,
    checks: u64,
}

impl Shard {
    /// Drops the counters that nothing can depend on at `now_ms` any more.
    fn sweep(&mut self, now_ms: i64) {
        self.counters.retain(|_, counter| !counter.is_idle(now_ms));
    }
}

/// Counters of every rate key, and the injected rules. `Send + Sync`; share it by reference or `Arc`.
#[derive(Debug)]
pub struct Limiter {
    settings: Settings,
    shards: Vec<Mutex<Shard>>,
    hasher: foldhash::fast::RandomState,
    injections: Mutex<inject::Injections>,
    /// How many injected rules wait (kept beside the rules, so that a check
    /// with none armed takes no lock for them).
    armed: AtomicUsize,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new(Settings::default())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Limiter {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: foldhash::fast::RandomState::default(),
            injections: Mutex::new(inject::Injections::default()),
            armed: AtomicUsize::new(0),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn shard(&self, key: &RateKey) -> MutexGuard<'_, Shard> {
        // The remainder is below SHARDS, so the cast back cannot truncate.
        let i = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        lock(&self.shards[i])
    }

    /// Runs `f` on the key's counter, brought up to `now_ms`, creating it if needed.
    fn with_counter<T>(&self, key: &RateKey, profile: Profile, now_ms: i64, f: impl FnOnce(&mut Counter) -> T) -> T {
        let mut shard = self.shard(key);
        shard.checks += 1;
        if shard.checks.is_multiple_of(SWEEP_EVERY / SHARDS as u64) {
            shard.sweep(now_ms);
        }
        // Looked up before it is inserted: the key is copied only the first time.
        if !shard.counters.contains_key(key) {
            shard.counters.insert(key.clone(), Counter::default());
        }
        let mut fresh = Counter::default();
        let counter = shard.counters.get_mut(key).unwrap_or(&mut fresh);
        counter.advance(profile, &self.settings, now_ms);
        f(counter)
    }

    /// Runs `f` on the injected rules and keeps the count of armed ones true.
    fn with_injections<T>(&self, f: impl FnOnce(&mut inject::Injections) -> T) -> T {
        let mut injections = lock(&self.injections);
        let out = f(&mut injections);
        self.armed.store(injections.len(), Ordering::Release);
        out
    }

    /// Counts one request of `key` at `now_ms` under `profile` and decides.
    /// `token_fingerprint` and `path` are matched by injected rules only.
    pub fn check(&self, key: &RateKey, profile: Profile, token_fingerprint: &str, path: &str, now_ms: i64) -> Decision {
        let injected = self.armed.load(Ordering::Acquire) > 0
            && self.with_injections(|rules| rules.take(key, token_fingerprint, path));
        let settings = &self.settings;
        self.with_counter(key, profile, now_ms, |counter| {
            if injected {
                // A 429 says nothing is left in the window, injected or not.
                let headers = RateHeaders { remaining: 0, ..counter.headers(profile) };
                return Decision {
                    allowed: false,
                    headers,
                    retry_after_secs: ceil_secs(i64::try_from(profile.window_ms).unwrap_or(i64::MAX)),
                    reason: Some(Refusal::Injected),
                };
            }
            let reason = if counter.day_count() >= profile.daily {
                Some(Refusal::Daily)
            } else if counter.in_window() >= usize::try_from(profile.burst).unwrap_or(usize::MAX) {
                Some(Refusal::Burst)
            } else {
                None
            };
            let reason = reason.filter(|_| settings.enabled);
            if reason.is_none() || settings.count_refused {
                counter.record(profile, now_ms);
            }
            // Measured after recording: with `count_refused` this refusal itself
            // pushes the next free slot back.
            let retry_after_secs = match reason {
                None | Some(Refusal::Injected) => 0,
                Some(Refusal::Daily) => ceil_secs(settings.until_next_day_ms(now_ms)),
                Some(Refusal::Burst) => ceil_secs(counter.burst_retry_ms(profile, settings.window, now_ms)),
            };
            Decision { allowed: reason.is_none(), headers: counter.headers(profile), retry_after_secs, reason }
        })
    }

    /// The header values of `key` at `now_ms`, without counting a request.
    pub fn peek(&self, key: &RateKey, profile: Profile, now_ms: i64) -> RateHeaders {
        let mut shard = self.shard(key);
        match shard.counters.get_mut(key) {
            Some(counter) => {
                counter.advance(profile, &self.settings, now_ms);
                counter.headers(profile)
            }
            // Peeking must not make the map grow.
            None => Counter::default().headers(profile),
        }
    }

    /// Adds a rule refusing the next `count` matching requests; returns its id.
    /// Rules are spent oldest first, one per refused request. A rule with a
    /// count of 0 is not kept.
    pub fn inject(&self, rule: Injection) -> u64 {
        self.with_injections(|rules| rules.add(rule))
    }

    /// Injected rules still waiting for requests, oldest first.
    pub fn injections(&self) -> Vec<ActiveInjection> {
        lock(&self.injections).list()
    }

    /// Withdraws an injected rule; false when no rule has that id (any more).
    pub fn remove_injection(&self, id: u64) -> bool {
        self.with_injections(|rules| rules.remove(id))
    }

    /// The daily quota of `key` is used up from `now_ms` until the next day.
    pub fn exhaust_daily(&self, key: &RateKey, profile: Profile, now_ms: i64) {
        self.with_counter(key, profile, now_ms, |c| c.exhaust_daily(profile, now_ms));
    }

    /// `X-RateLimit-Remaining` of `key` becomes `remaining` (at most the
    /// burst): the window holds `burst - remaining` requests made at `now_ms`,
    /// which leave it one window later.
    pub fn set_burst_remaining(&self, key: &RateKey, profile: Profile, remaining: u32, now_ms: i64) {
        self.with_counter(key, profile, now_ms, |c| c.set_burst_remaining(profile, remaining, now_ms));
    }

    /// Forgets all counters and injected rules.
    pub fn clear(&self) {
        for shard in &self.shards {
            lock(shard).counters.clear();
        }
        self.with_injections(inject::Injections::clear);
    }

    /// Drops counters idle for longer than a day and a window: nothing they
    /// hold can change an answer any more. `check` sweeps each shard by
    /// itself (every `SWEEP_EVERY / SHARDS` of its calls); callers may sweep
    /// them all at any time.
    pub fn sweep(&self, now_ms: i64) {
        for shard in &self.shards {
            lock(shard).sweep(now_ms);
        }
    }

    /// How many distinct milliseconds `key`'s window holds (tests: memory is by millisecond, not by request).
    #[cfg(test)]
    pub(crate) fn window_entries(&self, key: &RateKey) -> Option<usize> {
        self.shard(key).counters.get(key).map(Counter::entries)
    }

    /// How many rate keys (a resource, or an app for a resource) have a counter.
    pub fn resources(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).counters.len()).sum()
    }
}

/// The in-memory backend of the counters: this limiter, whose every call is
/// one short lock of one shard.
#[async_trait::async_trait]
impl crate::state::Counters for Limiter {
    async fn hit(
        &self,
        key: &RateKey,
        profile: Profile,
        token_fingerprint: &str,
        path: &str,
        now_ms: i64,
    ) -> Result<Decision, crate::state::StateError> {
        Ok(self.check(key, profile, token_fingerprint, path, now_ms))
    }

    async fn peek(
        &self,
        key: &RateKey,
        profile: Profile,
        now_ms: i64,
    ) -> Result<RateHeaders, crate::state::StateError> {
        Ok(Limiter::peek(self, key, profile, now_ms))
    }

    async fn exhaust_daily(
        &self,
        key: &RateKey,
        profile: Profile,
        now_ms: i64,
    ) -> Result<(), crate::state::StateError> {
        Limiter::exhaust_daily(self, key, profile, now_ms);
        Ok(())
    }

    async fn set_burst_remaining(
        &self,
        key: &RateKey,
        profile: Profile,
        remaining: u32,
        now_ms: i64,
    ) -> Result<(), crate::state::StateError> {
        Limiter::set_burst_remaining(self, key, profile, remaining, now_ms);
        Ok(())
    }

    async fn inject(&self, rule: Injection) -> Result<u64, crate::state::StateError> {
        Ok(Limiter::inject(self, rule))
    }

    async fn injections(&self) -> Result<Vec<ActiveInjection>, crate::state::StateError> {
        Ok(Limiter::injections(self))
    }

    async fn remove_injection(&self, id: u64) -> Result<bool, crate::state::StateError> {
        Ok(Limiter::remove_injection(self, id))
    }

    async fn clear(&self) -> Result<(), crate::state::StateError> {
        Limiter::clear(self);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
