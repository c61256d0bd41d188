//! The client behaviour report: what a client under test did wrong, read
//! from the request journal ([`crate::journal`]) after the fact.
//!
//! Each [`Kind`] of mistake is one small check that walks the entries in
//! the order they arrived and writes [`Evidence`] (request indices and
//! times on the mock's clock); the report has one [`Finding`] per kind that
//! found any. The checks only read entries: no HTTP, no clock, no world, so
//! a test can feed them a scripted sequence. The whole walk is linear in the
//! number of entries (a hash map per check), so a full journal of 10,000
//! requests takes milliseconds.
//!
//! A report is printed for people ([`Report::text`]), as JSON for tools
//! (serde), or as JUnit XML for CI dashboards ([`Report::junit`]): one test
//! case per kind, failing when the kind has findings.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::journal::{Broken, Entry, Refused};
use crate::limits::Profile;

/// A kind of client mistake; the snake_case id is stable (`--fail-on` uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SentDuringBackoff,
    RetriedTooSoon,
    UsedDeadToken,
    VersionHeader,
    IgnoredDailyQuota,
    SandboxBurst,
    DuplicateRisk,
    RepeatedScopeRefusal,
    /// Issue 13: the webhook handler answered a delivery with a non-2xx.
    #[serde(rename = "webhook_non_2xx")]
    WebhookNon2xx,
    /// Issue 13: the webhook handler took longer than `webhooks.slow_ms`, or did not answer in time.
    WebhookSlow,
    /// Issue 13: a webhook was given up after its last retry.
    WebhookAbandoned,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::SentDuringBackoff,
        Kind::RetriedTooSoon,
        Kind::UsedDeadToken,
        Kind::VersionHeader,
        Kind::IgnoredDailyQuota,
        Kind::SandboxBurst,
        Kind::DuplicateRisk,
        Kind::RepeatedScopeRefusal,
        Kind::WebhookNon2xx,
        Kind::WebhookSlow,
        Kind::WebhookAbandoned,
    ];

    /// The kinds read from the request journal.
    pub const JOURNAL: [Kind; 8] = [
        Kind::SentDuringBackoff,
        Kind::RetriedTooSoon,
        Kind::UsedDeadToken,
        Kind::VersionHeader,
        Kind::IgnoredDailyQuota,
        Kind::SandboxBurst,
        Kind::DuplicateRisk,
        Kind::RepeatedScopeRefusal,
    ];

    /// Issue 13: the kinds read from the webhook deliveries.
    pub const WEBHOOKS: [Kind; 3] = [Kind::WebhookNon2xx, Kind::WebhookSlow, Kind::WebhookAbandoned];

    pub fn id(self) -> &'static str {
        match self {
            Kind::SentDuringBackoff => "sent_during_backoff",
            Kind::RetriedTooSoon => "retried_too_soon",
            Kind::UsedDeadToken => "used_dead_token",
            Kind::VersionHeader => "version_header",
            Kind::IgnoredDailyQuota => "ignored_daily_quota",
            Kind::SandboxBurst => "sandbox_burst",
            Kind::DuplicateRisk => "duplicate_risk",
            Kind::RepeatedScopeRefusal => "repeated_scope_refusal",
            Kind::WebhookNon2xx => "webhook_non_2xx",
            Kind::WebhookSlow => "webhook_slow",
            Kind::WebhookAbandoned => "webhook_abandoned",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Kind::SentDuringBackoff => "kept sending to a location during the back-off after a 429",
            Kind::RetriedTooSoon => "retried a 429 sooner than X-RateLimit-Interval-Milliseconds",
            Kind::UsedDeadToken => "kept using a token after it was refused as invalid or expired",
            Kind::VersionHeader => "sent a missing or invalid Version header",
            Kind::IgnoredDailyQuota => "kept calling after X-RateLimit-Daily-Remaining reached 0",
            Kind::SandboxBurst => "would exceed a sandbox's burst limit (25 requests / 10 s per location)",
            Kind::DuplicateRisk => "retried a POST/PATCH after a 5xx or a broken answer: possible duplicates",
            Kind::RepeatedScopeRefusal => "called an operation again after its scope was refused",
            Kind::WebhookNon2xx => "the webhook handler answered a delivery with a non-2xx status",
            Kind::WebhookSlow => "the webhook handler was slow to answer",
            Kind::WebhookAbandoned => "webhooks were given up after the last retry",
        }
    }

    pub fn advice(self) -> &'static str {
        match self {
            Kind::SentDuringBackoff => {
                "After a 429, hold every request for that location, not only the refused one, until a slot can free."
            }
            Kind::RetriedTooSoon => "Wait X-RateLimit-Interval-Milliseconds (or Retry-After) before retrying a 429.",
            Kind::UsedDeadToken => {
                "After 401 'Invalid Private Integration token' or 'Invalid JWT', stop using the token: get a new one or stop."
            }
            Kind::VersionHeader => "Send a published Version header (e.g. 2021-07-28) on every API call.",
            Kind::IgnoredDailyQuota => "When X-RateLimit-Daily-Remaining is 0, stop calling until the day resets.",
            Kind::SandboxBurst => {
                "Pace calls to at most 25 per 10 s per location: production allows 100, a sandbox does not."
            }
            Kind::DuplicateRisk => {
                "Do not retry a POST or PATCH blindly after a 5xx, a timeout or a broken connection: check whether it took effect first."
            }
            Kind::RepeatedScopeRefusal => {
                "A scope refusal does not pass by retrying: add the scope to the integration or stop calling the operation."
            }
            Kind::WebhookNon2xx => {
                "Answer 200 as soon as the webhook is received and verified, and do the work afterwards; HighLevel retries anything else."
            }
            Kind::WebhookSlow => {
                "Answer the webhook first and process it asynchronously: a slow handler meets HighLevel's timeout and gets retries."
            }
            Kind::WebhookAbandoned => {
                "The handler never answered 2xx for these: HighLevel drops them after 12 retries, and your app missed the events."
            }
        }
    }

    /// `all`, or a comma-separated list of ids.
    pub fn parse_list(text: &str) -> Result<Vec<Kind>, String> {
        let mut out = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "all" {
                return Ok(Kind::ALL.to_vec());
            }
            let kind = Kind::ALL.into_iter().find(|k| k.id() == item).ok_or_else(|| {
                let ids: Vec<&str> = Kind::ALL.iter().map(|k| k.id()).collect();
                format!("unknown finding kind '{item}' (known: all, {})", ids.join(", "))
            })?;
            if !out.contains(&kind) {
                out.push(kind);
            }
        }
        Ok(out)
    }
}

/// One request that shows a mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Journal index of the request.
    pub request: u64,
    pub at_ms: i64,
    /// The earlier request it follows (the 429, the 401, the failed POST…).
    pub after: Option<u64>,
    /// Milliseconds since `after`.
    pub delay_ms: Option<i64>,
    pub detail: String,
}

/// Everything found of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    pub title: String,
    /// How many requests show it (the evidence lists the first few).
    pub count: usize,
    pub summary: String,
    pub advice: String,
    pub evidence: Vec<Evidence>,
}

/// The report over a set of journal entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub requests: usize,
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Requests the journal dropped before the report was made (its capacity
    /// was reached): the report cannot see them.
    pub dropped: u64,
    /// One per kind with findings, in [`Kind::ALL`] order.
    pub findings: Vec<Finding>,
    /// Kinds checked and not found.
    pub passed: Vec<Kind>,
}

/// What the checks need to know about the mock.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `Version` values the mock accepts.
    pub published_versions: Vec<String>,
    /// Operations that need no token (`POST /oauth/token`): nobody sends `Version` there.
    pub public_operations: HashSet<usize>,
    /// The burst a sandbox allows, whatever the mock runs.
    pub sandbox: Profile,
    /// A POST/PATCH repeated within this long after a failed one counts as its retry.
    pub retry_window_ms: i64,
    /// Evidence listed per finding (the count covers all).
    pub evidence_limit: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            published_versions: crate::config::Fidelity::default().published_versions,
            public_operations: HashSet::new(),
            sandbox: Profile::SANDBOX,
            retry_window_ms: 60_000,
            evidence_limit: 20,
        }
    }
}

impl Settings {
    pub fn of(mock: &crate::Mock) -> Self {
        Self {
            published_versions: mock.config.fidelity.published_versions.clone(),
            public_operations: mock
                .spec
                .operations
                .iter()
                .enumerate()
                .filter(|(_, op)| op.security.is_empty())
                .map(|(i, _)| i)
                .collect(),
            ..Self::default()
        }
    }
}

fn ms(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The window a 429 asks the client to wait: `Retry-After` when it was sent,
/// else `X-RateLimit-Interval-Milliseconds` (what HighLevel's Node SDK waits).
fn asked_wait_ms(e: &Entry) -> i64 {
    match e.retry_after_secs {
        Some(secs) => ms(secs).saturating_mul(1000),
        None => interval_ms(e),
    }
}

fn interval_ms(e: &Entry) -> i64 {
    e.rate.map_or(Profile::SANDBOX.window_ms, |r| r.interval_ms).try_into().unwrap_or(i64::MAX)
}

/// A 429 that a wait can cure (not the daily quota).
fn is_window_429(e: &Entry) -> bool {
    matches!(e.refused, Some(Refused::RateLimitedBurst | Refused::RateLimitedInjected))
}

fn call(e: &Entry) -> String {
    format!("{} {}", e.method, e.path)
}

/// One check: sees every entry in order, writes evidence.
trait Check<'a> {
    fn see(&mut self, e: &'a Entry, out: &mut Vec<Evidence>);
}

/// Requests for a location (or company) sent after a window 429 before any
/// slot could have freed: the oldest request the journal saw counted in the
/// window, plus the window; for an injected 429, the interval it announced.
#[derive(Default)]
struct SentDuringBackoff<'a> {
    resources: HashMap<&'a str, BackoffState>,
}

#[derive(Default)]
struct BackoffState {
    /// Times of requests counted in the current window, ascending.
    counted: VecDeque<i64>,
    /// (no slot before this time, the 429 that started it, its time)
    backoff: Option<(i64, u64, i64)>,
}

impl<'a> Check<'a> for SentDuringBackoff<'a> {
    fn see(&mut self, e: &'a Entry, out: &mut Vec<Evidence>) {
        let Some(resource) = e.location.as_deref() else { return };
        let state = self.resources.entry(resource).or_default();
        let window = interval_ms(e);
        if let Some((until, after, at)) = state.backoff {
            if e.at_ms < until {
                out.push(Evidence {
                    request: e.index,
                    at_ms: e.at_ms,
                    after: Some(after),
                    delay_ms: Some(e.at_ms.saturating_sub(at)),
                    detail: format!(
                        "{} for {resource} sent {} ms after the 429 of #{after}, inside the back-off that lasts until +{} ms",
                        call(e),
                        e.at_ms.saturating_sub(at),
                        until.saturating_sub(at)
                    ),
                });
            } else {
                state.backoff = None;
            }
        }
        while state.counted.front().is_some_and(|&t| e.at_ms.saturating_sub(t) >= window) {
            state.counted.pop_front();
        }
        if is_window_429(e) {
            let own = e.at_ms.saturating_add(asked_wait_ms(e).min(window));
            let free = match (e.refused, state.counted.front()) {
                (Some(Refused::RateLimitedBurst), Some(&oldest)) => oldest.saturating_add(window).min(own),
                _ => own,
            };
            state.backoff = Some(match state.backoff {
                Some((until, after, at)) => (until.max(free), after, at),
                None => (free, e.index, e.at_ms),
            });
        } else if e.used_quota() {
            state.counted.push_back(e.at_ms);
        }
    }
}

type CallKey<'a> = (&'a str, &'a str, &'a str);

fn call_key(e: &Entry) -> CallKey<'_> {
    (e.method.as_str(), e.path.as_str(), e.token.as_str())
}

/// The same method, path and token again, sooner than the 429 asked.
#[derive(Default)]
struct RetriedTooSoon<'a> {
    refused: HashMap<CallKey<'a>, (u64, i64, i64)>,
}

impl<'a> Check<'a> for RetriedTooSoon<'a> {
    fn see(&mut self, e: &'a Entry, out: &mut Vec<Evidence>) {
        let key = call_key(e);
        if let Some((after, at, wait)) = self.refused.remove(&key) {
            let waited = e.at_ms.saturating_sub(at);
            if waited < wait {
                out.push(Evidence {
                    request: e.index,
                    at_ms: e.at_ms,
                    after: Some(after),
                    delay_ms: Some(waited),
                    detail: format!(
                        "{} retried {waited} ms after the 429 of #{after}; it asked for {wait} ms",
                        call(e)
                    ),
                });
            }
        }
        if is_window_429(e) {
            self.refused.insert(key, (e.index, e.at_ms, asked_wait_ms(e)));
        }
    }
}

/// Requests refused again for a token already refused as invalid or expired.
#[derive(Default)]
struct UsedDeadToken<'a> {
    dead: HashMap<&'a str, (u64, i64)>,
}

impl<'a> Check<'a> for UsedDeadToken<'a> {
    fn see(&mut self, e: &'a Entry, out: &mut Vec<Evidence>) {
        if e.token == "none" {
            return;
        }
        match e.refused {
            Some(Refused::InvalidToken | Refused::ExpiredToken) => match self.dead.get(e.token.as_str()) {
                Some(&(after, at)) => out.push(Evidence {
                    request: e.index,
                    at_ms: e.at_ms,
                    after: Some(after),
                    delay_ms: Some(e.at_ms.saturating_sub(at)),
                    detail: format!("{} with {} after it was refused at #{after}", call(e), e.token),
                }),
                None => {
                    self.dead.insert(&e.token, (e.index, e.at_ms));
                }
            },
            // The token was recognised again (e.g. the world was reset): not dead.
            _ if e.rate.is_some() => {
                self.dead.remove(e.token.as_str());
            }
            _ => {}
        }
    }
}

struct VersionHeader<'s> {
    settings: &'s Settings,
}

impl<'a> Check<'a> for VersionHeader<'_> {
    fn see(&mut self, e: &'a Entry, out: &mut Vec<Evidence>) {
        if e.operation.is_some_and(|op| self.settings.public_operations.contains(&op)) {
            return;
        }
        let problem = match (&e.version, e.refused) {
            (None, _) => "without a Version header".to_string(),
            (Some(v), Some(Refused::VersionInvalid)) => format!("with Version '{v}', which was refused"),
            (Some(v), _) if !self.settings.published_versions.contains(v) => {
                format!("with Version '{v}', which is not a published value")
            }
            _ => return,
        };
        out.push(Evidence {
            request: e.index,
            at_ms: e.at_ms,
            after: None,
            delay_ms: None,
            detail: format!("{} sent {problem} (answered {})", call(e), e.status),
        });
    }
}

/// Requests for a location after an answer showed its daily quota at 0,
/// while the quota was still 0.
#[derive(Default)]
struct IgnoredDailyQuota<'a> {
    exhausted: HashMap<&'a str, (u64, i64)>,
}

impl<'a> Check<'a> for IgnoredDailyQuota<'a> {
    fn see(&mut self, e: &'a Entry, out: &mut Vec<Evidence>) {
        let (Some(resource), Some(rate)) = (e.location.as_deref(), e.rate) else { return };
        if rate.daily_remaining > 0 {
            self.exhausted.remove(resource);
            return;
        }
        match self.exhausted.get(resource) {
            Some(&(after, at)) => out.push(Evidence {
                request: e.index,
                at_ms: e.at_ms,
                after: Some(after),
                delay_ms: Some(e.at_ms.saturating_sub(at)),
                detail: format!(
                    "{} for {resource} sent after #{after} showed X-RateLimit-Daily-Remaining: 0 (answered {})",
                    call(e),
                    e.status
                ),
            }),
            None => {
                self.exhausted.insert(resource, (e.index, e.at_ms));
            }
        }
    }
}

/// The sandbox limiter replayed over the requests that reached the mock's
/// limiter: a rolling window, refused requests not counted.
struct SandboxBurst<'a> {
    profile: Profile,
    windows: HashMap<&'a str, VecDeque<(i64, u64)>>,
}

impl<'a> Check<'a> for SandboxBurst<'a> {
    fn see(&mut self, e: &'a Entry, out: &mut Vec<Evidence>) {
        let Some(resource) = e.location.as_deref() else { return };
        if !e.reached_rate_limit() {
            return;
        }
        let window_ms = ms(self.profile.window_ms);
        let burst = usize::try_from(self.profile.burst).unwrap_or(usize::MAX);
        let window = self.windows.entry(resource).or_default();
        while window.front().is_some_and(|&(t, _)| e.at_ms.saturating_sub(t) >= window_ms) {
            window.pop_front();
        }
        if window.len() >= burst {
            let (first_at, first) = window.front().copied().unwrap_or((e.at_ms, e.index));
            out.push(Evidence {
                request: e.index,
                at_ms: e.at_ms,
                after: Some(first),
                delay_ms: Some(e.at_ms.saturating_sub(first_at)),
                detail: format!(
                    "{} for {resource}: {} requests already within {} ms since #{first}; a sandbox allows {}",
                    call(e),
                    window.len(),
                    window_ms,
                    self.profile.burst
                ),
            });
        } else {
            window.push_back((e.at_ms, e.index));
        }
    }
}

type BodyKey<'a> = (&'a str, &'a str, &'a str, Option<u64>);

/// A POST/PATCH sent again (same method, path, token and body) shortly
/// after the previous one got a 5xx or a broken answer.
struct DuplicateRisk<'a> {
    window_ms: i64,
    failed: HashMap<BodyKey<'a>, (u64, i64, String)>,
}

fn failure(e: &Entry) -> Option<String> {
    match e.broken {
        Some(Broken::Reset) => Some(format!("a {} whose connection was reset", e.status)),
        Some(Broken::Truncated) => Some(format!("a {} whose body broke off", e.status)),
        Some(Broken::Abandoned) => Some("no answer before the client hung up".to_string()),
        Some(Broken::ClosedEarly) => Some(format!("a {} sent after the client had closed its side", e.status)),
        None if e.status >= 500 => Some(format!("a {}", e.status)),
        None => None,
    }
}

impl<'a> Check<'a> for DuplicateRisk<'a> {
    fn see(&mut self, e: &'a Entry, out: &mut Vec<Evidence>) {
        if e.idempotent {
            return;
        }
        let key = (e.method.as_str(), e.path.as_str(), e.token.as_str(), e.body_hash);
        if let Some((after, at, why)) = self.failed.get(&key) {
            let delay = e.at_ms.saturating_sub(*at);
            if delay <= self.window_ms {
                out.push(Evidence {
                    request: e.index,
                    at_ms: e.at_ms,
                    after: Some(*after),
                    delay_ms: Some(delay),
                    detail: format!(
                        "{} sent again with the same body {delay} ms after #{after} got {why}; if that one took effect, this is a duplicate",
                        call(e)
                    ),
                });
            }
        }
        match failure(e) {
            Some(why) => {
                self.failed.insert(key, (e.index, e.at_ms, why));
            }
            None => {
                self.failed.remove(&key);
            }
        }
    }
}

/// An operation called again with a token already refused for its scope.
#[derive(Default)]
struct RepeatedScopeRefusal<'a> {
    refused: HashMap<(&'a str, Option<usize>, &'a str), (u64, i64)>,
}

impl<'a> Check<'a> for RepeatedScopeRefusal<'a> {
    fn see(&mut self, e: &'a Entry, out: &mut Vec<Evidence>) {
        if e.refused != Some(Refused::Scope) {
            return;
        }
        // One operation, whatever ids its path carries; the path when unrouted.
        let what = if e.operation.is_some() { "" } else { e.path.as_str() };
        let key = (e.token.as_str(), e.operation, what);
        match self.refused.get(&key) {
            Some(&(after, at)) => out.push(Evidence {
                request: e.index,
                at_ms: e.at_ms,
                after: Some(after),
                delay_ms: Some(e.at_ms.saturating_sub(at)),
                detail: format!("{} with {} again after its scope was refused at #{after}", call(e), e.token),
            }),
            None => {
                self.refused.insert(key, (e.index, e.at_ms));
            }
        }
    }
}

fn summary(kind: Kind, evidence: &[Evidence]) -> String {
    let n = evidence.len();
    let soonest = evidence.iter().filter_map(|e| e.delay_ms).min().unwrap_or(0);
    let origins: HashSet<u64> = evidence.iter().filter_map(|e| e.after).collect();
    let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
    match kind {
        Kind::SentDuringBackoff => format!(
            "{} sent during the back-off after {}, the soonest {soonest} ms after it",
            plural(n, "request", "requests"),
            plural(origins.len(), "429", "429s")
        ),
        Kind::RetriedTooSoon => {
            format!("{} sooner than the 429 asked, the soonest after {soonest} ms", plural(n, "retry", "retries"))
        }
        Kind::UsedDeadToken => format!(
            "{} with {} already refused as invalid or expired",
            plural(n, "request", "requests"),
            plural(origins.len(), "token", "tokens")
        ),
        Kind::VersionHeader => format!("{} without a valid Version header", plural(n, "request", "requests")),
        Kind::IgnoredDailyQuota => {
            format!("{} after the daily quota was used up", plural(n, "request", "requests"))
        }
        Kind::SandboxBurst => {
            format!(
                "{} over 25 in 10 s for one location: a sandbox would refuse them",
                plural(n, "request", "requests")
            )
        }
        Kind::DuplicateRisk => format!(
            "{} of a failed POST/PATCH with the same body, the soonest {soonest} ms after the failure",
            plural(n, "repeat", "repeats")
        ),
        Kind::RepeatedScopeRefusal => {
            format!("{} of operations already refused for their scope", plural(n, "repeated call", "repeated calls"))
        }
        Kind::WebhookNon2xx => {
            format!("{} answered with a non-2xx status", plural(n, "webhook attempt", "webhook attempts"))
        }
        Kind::WebhookSlow => format!(
            "{} slower than the threshold or unanswered in time",
            plural(n, "webhook attempt", "webhook attempts")
        ),
        Kind::WebhookAbandoned => format!("{} given up after the last retry", plural(n, "webhook", "webhooks")),
    }
}

/// The report over `entries` (journal entries, in any order).
pub fn build(entries: &[Entry], settings: &Settings) -> Report {
    let mut order: Vec<&Entry> = entries.iter().collect();
    order.sort_by_key(|e| (e.at_ms, e.index));
    let mut checks: Vec<(Kind, Box<dyn Check<'_> + '_>)> = vec![
        (Kind::SentDuringBackoff, Box::new(SentDuringBackoff::default())),
        (Kind::RetriedTooSoon, Box::new(RetriedTooSoon::default())),
        (Kind::UsedDeadToken, Box::new(UsedDeadToken::default())),
        (Kind::VersionHeader, Box::new(VersionHeader { settings })),
        (Kind::IgnoredDailyQuota, Box::new(IgnoredDailyQuota::default())),
        (Kind::SandboxBurst, Box::new(SandboxBurst { profile: settings.sandbox, windows: HashMap::new() })),
        (Kind::DuplicateRisk, Box::new(DuplicateRisk { window_ms: settings.retry_window_ms, failed: HashMap::new() })),
        (Kind::RepeatedScopeRefusal, Box::new(RepeatedScopeRefusal::default())),
    ];
    debug_assert_eq!(checks.len(), Kind::JOURNAL.len());
    let mut found: Vec<Vec<Evidence>> = vec![Vec::new(); checks.len()];
    for e in &order {
        for ((_, check), out) in checks.iter_mut().zip(found.iter_mut()) {
            check.see(e, out);
        }
    }
    let mut findings = Vec::new();
    let mut passed = Vec::new();
    for ((kind, _), mut evidence) in checks.into_iter().zip(found) {
        if evidence.is_empty() {
            passed.push(kind);
            continue;
        }
        let summary = summary(kind, &evidence);
        let count = evidence.len();
        evidence.truncate(settings.evidence_limit);
        findings.push(Finding {
            kind,
            title: kind.title().to_string(),
            count,
            summary,
            advice: kind.advice().to_string(),
            evidence,
        });
    }
    Report {
        requests: entries.len(),
        first_index: entries.iter().map(|e| e.index).min(),
        last_index: entries.iter().map(|e| e.index).max(),
        from_ms: order.first().map(|e| e.at_ms),
        to_ms: order.last().map(|e| e.at_ms),
        dropped: 0,
        findings,
        passed,
    }
}

/// Issue 13: adds the webhook kinds, judged over the deliveries of the
/// outbox: attempts answered non-2xx, attempts slower than `slow_ms` (or
/// unanswered before the timeout), and deliveries abandoned. For these
/// kinds an evidence's `request` is the attempt's number, not a journal index.
pub fn add_webhooks(
    report: &mut Report,
    deliveries: &[crate::state::deliveries::Delivery],
    slow_ms: u64,
    settings: &Settings,
) {
    use crate::state::deliveries::DeliveryState;
    let mut found: [Vec<Evidence>; 3] = Default::default();
    for d in deliveries {
        let what = format!("{} {} to {}", d.event, d.webhook_id, d.url);
        for a in &d.attempts {
            let evidence = |detail: String| Evidence {
                request: u64::from(a.attempt),
                at_ms: a.at_ms,
                after: None,
                delay_ms: Some(ms(a.latency_ms)),
                detail,
            };
            if let Some(status) = a.status.filter(|s| !(200..300).contains(s)) {
                found[0].push(evidence(format!("{what}: attempt {} answered {status}", a.attempt)));
            }
            let timed_out = a.error.as_deref().is_some_and(|e| e.starts_with("no answer within"));
            if a.latency_ms >= slow_ms || timed_out {
                let how = a.error.clone().unwrap_or_else(|| format!("answered after {} ms", a.latency_ms));
                found[1].push(evidence(format!("{what}: attempt {} {how} (threshold {slow_ms} ms)", a.attempt)));
            }
        }
        if d.state == DeliveryState::Abandoned {
            let last = d.attempts.last();
            found[2].push(Evidence {
                request: last.map_or(0, |a| u64::from(a.attempt)),
                at_ms: last.map_or(d.created_ms, |a| a.at_ms),
                after: None,
                delay_ms: None,
                detail: format!("{what}: abandoned after {} attempts without a 2xx", d.attempts.len()),
            });
        }
    }
    for (kind, mut evidence) in Kind::WEBHOOKS.into_iter().zip(found) {
        report.findings.retain(|f| f.kind != kind);
        report.passed.retain(|k| *k != kind);
        if evidence.is_empty() {
            report.passed.push(kind);
            continue;
        }
        let summary = summary(kind, &evidence);
        let count = evidence.len();
        evidence.truncate(settings.evidence_limit);
        report.findings.push(Finding {
            kind,
            title: kind.title().to_string(),
            count,
            summary,
            advice: kind.advice().to_string(),
            evidence,
        });
    }
    let rank = |k: &Kind| Kind::ALL.iter().position(|x| x == k);
    report.findings.sort_by_key(|f| rank(&f.kind));
    report.passed.sort_by_key(rank);
}

impl Report {
    pub fn finding(&self, kind: Kind) -> Option<&Finding> {
        self.findings.iter().find(|f| f.kind == kind)
    }

    /// Kinds among `kinds` that have findings.
    pub fn failing(&self, kinds: &[Kind]) -> Vec<Kind> {
        self.findings.iter().map(|f| f.kind).filter(|k| kinds.contains(k)).collect()
    }

    fn span(&self) -> String {
        let range = match (self.first_index, self.last_index) {
            (Some(a), Some(b)) => format!(" (#{a}..#{b})"),
            _ => String::new(),
        };
        let times = match (self.from_ms, self.to_ms) {
            (Some(a), Some(b)) => {
                format!(", {} to {}", crate::clock::iso8601(a), crate::clock::iso8601(b))
            }
            _ => String::new(),
        };
        let dropped = if self.dropped > 0 {
            format!("; {} older requests were dropped from the journal and are not seen", self.dropped)
        } else {
            String::new()
        };
        format!("{} requests{range}{times}{dropped}", self.requests)
    }

    /// For people.
    pub fn text(&self) -> String {
        let mut out = format!("ghl-mock client behaviour report: {}\n\n", self.span());
        for kind in Kind::ALL {
            match self.finding(kind) {
                Some(f) => {
                    let _ = writeln!(out, "FAIL {}: {}", kind.id(), f.title);
                    let _ = writeln!(out, "     {}", f.summary);
                    for e in &f.evidence {
                        let _ =
                            writeln!(out, "       #{} at {}: {}", e.request, crate::clock::iso8601(e.at_ms), e.detail);
                    }
                    if f.count > f.evidence.len() {
                        let _ = writeln!(out, "       … and {} more", f.count - f.evidence.len());
                    }
                    let _ = writeln!(out, "     fix: {}", f.advice);
                }
                None if self.passed.contains(&kind) => {
                    let _ = writeln!(out, "ok   {}", kind.id());
                }
                None => {}
            }
        }
        let _ = write!(out, "\n{} of {} kinds found", self.findings.len(), self.findings.len() + self.passed.len());
        let ids: Vec<&str> = self.findings.iter().map(|f| f.kind.id()).collect();
        if ids.is_empty() {
            out.push_str(": the client behaved.\n");
        } else {
            let _ = writeln!(out, ": {}", ids.join(", "));
        }
        out
    }

    /// JUnit XML: one test case per kind, failing when it has findings.
    pub fn junit(&self) -> String {
        let total = self.findings.len() + self.passed.len();
        let failures = self.findings.len();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(out, "<testsuites name=\"ghl-mock\" tests=\"{total}\" failures=\"{failures}\" errors=\"0\">");
        let _ = writeln!(
            out,
            "  <testsuite name=\"client behaviour\" tests=\"{total}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">"
        );
        let _ = writeln!(
            out,
            "    <properties><property name=\"requests\" value=\"{}\"/></properties>",
            xml_escape(&self.span())
        );
        for kind in Kind::ALL {
            let name = kind.id();
            if let Some(f) = self.finding(kind) {
                let _ = writeln!(out, "    <testcase classname=\"ghl-mock.client\" name=\"{name}\">");
                let _ = write!(out, "      <failure type=\"{name}\" message=\"{}\">", xml_escape(&f.summary));
                let mut body = format!("{}\n", f.title);
                for e in &f.evidence {
                    let _ = writeln!(body, "#{} at {}: {}", e.request, crate::clock::iso8601(e.at_ms), e.detail);
                }
                if f.count > f.evidence.len() {
                    let _ = writeln!(body, "… and {} more", f.count - f.evidence.len());
                }
                let _ = write!(body, "fix: {}", f.advice);
                let _ = writeln!(out, "{}</failure>", xml_escape(&body));
                let _ = writeln!(out, "    </testcase>");
            } else if self.passed.contains(&kind) {
                let _ = writeln!(out, "    <testcase classname=\"ghl-mock.client\" name=\"{name}\"/>");
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// Text made safe for XML attribute values and character data: the five
/// entities, line breaks and tabs as character references (so attributes keep
/// them), and the control characters XML 1.0 forbids replaced.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::RateHeaders;
    use axum::http::Method;

    const LOC: &str = "locA";
    const TOKEN: &str = "pit:0000000a";

    /// A scripted request: builder methods set what differs from a plain,
    /// admitted `GET /contacts/` with a token and `Version`.
    #[derive(Clone)]
    struct R(Entry);

    fn get(at_ms: i64) -> R {
        R(Entry {
            index: 0,
            at_ms,
            method: Method::GET,
            path: "/contacts/".into(),
            operation: Some(1),
            token: TOKEN.into(),
            location: Some(LOC.into()),
            status: 200,
            refused: None,
            broken: None,
            rate: Some(RateHeaders {
                limit_daily: 10_000,
                daily_remaining: 9_000,
                interval_ms: 10_000,
                max: 25,
                remaining: 20,
            }),
            retry_after_secs: None,
            version: Some("2021-07-28".into()),
            idempotent: true,
            body_hash: None,
        })
    }

    fn post(at_ms: i64, body: u64) -> R {
        let mut r = get(at_ms);
        r.0.method = Method::POST;
        r.0.idempotent = false;
        r.0.status = 201;
        r.0.body_hash = Some(body);
        r
    }

    impl R {
        fn refused(mut self, status: u16, why: Refused) -> Self {
            self.0.status = status;
            self.0.refused = Some(why);
            if matches!(why, Refused::InvalidToken | Refused::ExpiredToken | Refused::MissingToken) {
                self.0.rate = None;
            }
            self
        }
        fn limited(self) -> Self {
            self.refused(429, Refused::RateLimitedBurst)
        }
        fn injected(self) -> Self {
            self.refused(429, Refused::RateLimitedInjected)
        }
        fn status(mut self, status: u16) -> Self {
            self.0.status = status;
            self
        }
        fn broken(mut self, broken: Broken) -> Self {
            self.0.broken = Some(broken);
            self
        }
        fn daily_left(mut self, left: u32) -> Self {
            if let Some(r) = &mut self.0.rate {
                r.daily_remaining = left;
            }
            self
        }
        fn version(mut self, v: Option<&str>) -> Self {
            self.0.version = v.map(str::to_string);
            self
        }
        fn op(mut self, op: usize) -> Self {
            self.0.operation = Some(op);
            self
        }
        fn path(mut self, path: &str) -> Self {
            self.0.path = path.into();
            self
        }
        fn token(mut self, t: &str) -> Self {
            self.0.token = t.into();
            self
        }
        fn location(mut self, l: &str) -> Self {
            self.0.location = Some(l.into());
            self
        }
        fn retry_after(mut self, secs: u64) -> Self {
            self.0.retry_after_secs = Some(secs);
            self
        }
    }

    fn run(script: &[R]) -> Report {
        let entries: Vec<Entry> =
            script.iter().enumerate().map(|(i, r)| Entry { index: i as u64 + 1, ..r.0.clone() }).collect();
        let settings = Settings { public_operations: [99].into_iter().collect(), ..Settings::default() };
        build(&entries, &settings)
    }

    fn burst(from_ms: i64, n: usize, step_ms: i64) -> Vec<R> {
        (0..n).map(|i| get(from_ms + i as i64 * step_ms)).collect()
    }

    /// For each kind: a script that shows it, and a near miss that must not.
    fn cases() -> Vec<(Kind, &'static str, Vec<R>, Vec<R>)> {
        vec![
            (
                Kind::SentDuringBackoff,
                "another call right after a 429 / the next call once the oldest request left the window",
                {
                    let mut s = burst(0, 25, 100);
                    s.push(get(2_500).limited());
                    s.push(get(2_600).path("/contacts/abc"));
                    s
                },
                {
                    let mut s = burst(0, 25, 100);
                    s.push(get(2_500).limited());
                    s.push(get(10_000).path("/contacts/abc"));
                    s
                },
            ),
            (
                Kind::RetriedTooSoon,
                "retry 2 s after an injected 429 / retry after the 10 s interval",
                vec![get(0).injected(), get(2_000)],
                vec![get(0).injected(), get(10_000)],
            ),
            (
                Kind::RetriedTooSoon,
                "retry sooner than Retry-After / after it",
                vec![get(0).injected().retry_after(3), get(2_999)],
                vec![get(0).injected().retry_after(3), get(3_000).path("/contacts/x"), get(3_000)],
            ),
            (
                Kind::UsedDeadToken,
                "the same token after 401 invalid token / a new token after it",
                vec![get(0).refused(401, Refused::InvalidToken), get(100).refused(401, Refused::InvalidToken)],
                vec![get(0).refused(401, Refused::InvalidToken), get(100).token("pit:0000000b")],
            ),
            (
                Kind::UsedDeadToken,
                "an expired OAuth token reused / one refused token, then the token works again",
                vec![get(0).refused(401, Refused::ExpiredToken), get(5).refused(401, Refused::ExpiredToken)],
                vec![get(0).refused(401, Refused::InvalidToken), get(5), get(6)],
            ),
            (
                Kind::VersionHeader,
                "no Version / Version on every call, none on the public token endpoint",
                vec![get(0), get(1).version(None).refused(401, Refused::VersionMissing)],
                vec![get(0), get(1).version(Some("v3")), get(2).version(None).op(99)],
            ),
            (
                Kind::VersionHeader,
                "an unpublished Version / a published one",
                vec![get(0).version(Some("2020-01-01")).refused(401, Refused::VersionInvalid)],
                vec![get(0).version(Some("2023-02-21"))],
            ),
            (
                Kind::IgnoredDailyQuota,
                "calls after the quota showed 0 / stopping there, and another location",
                vec![get(0).daily_left(0), get(1).daily_left(0).refused(429, Refused::RateLimitedDaily)],
                vec![get(0).daily_left(0), get(1).location("locB").daily_left(5)],
            ),
            (
                Kind::IgnoredDailyQuota,
                "calls after a daily 429 / calls once the day reset",
                vec![
                    get(0).daily_left(0).refused(429, Refused::RateLimitedDaily),
                    get(1_000).daily_left(0).refused(429, Refused::RateLimitedDaily),
                ],
                vec![get(0).daily_left(0).refused(429, Refused::RateLimitedDaily), get(86_400_000).daily_left(9_999)],
            ),
            (
                Kind::SandboxBurst,
                "26 calls in 10 s under a production profile / 25 in 10 s, then the 26th 10 s after the first",
                burst(0, 26, 300),
                {
                    let mut s = burst(0, 25, 300);
                    s.push(get(10_000));
                    s
                },
            ),
            (
                Kind::SandboxBurst,
                "26 calls at once / 30 at once spread over two locations",
                burst(0, 26, 0),
                (0..30).map(|i| get(0).location(if i % 2 == 0 { "locA" } else { "locB" })).collect(),
            ),
            (
                Kind::DuplicateRisk,
                "the same POST again after a 500 / a different body after the 500",
                vec![post(0, 7).status(500), post(50, 7)],
                vec![post(0, 7).status(500), post(50, 8)],
            ),
            (
                Kind::DuplicateRisk,
                "the same POST after a reset connection / the same PUT after a reset",
                vec![post(0, 7).broken(Broken::Reset), post(50, 7)],
                {
                    let mut put = post(0, 7).broken(Broken::Reset);
                    put.0.method = Method::PUT;
                    put.0.idempotent = true;
                    let mut again = post(50, 7);
                    again.0.method = Method::PUT;
                    again.0.idempotent = true;
                    vec![put, again]
                },
            ),
            (
                Kind::DuplicateRisk,
                "the same POST after the client gave up waiting / the same POST after a 201",
                vec![post(0, 7).status(0).broken(Broken::Abandoned), post(1_000, 7)],
                vec![post(0, 7), post(1_000, 7)],
            ),
            (
                Kind::RepeatedScopeRefusal,
                "the same refused operation twice (different ids) / two different refused operations",
                vec![
                    get(0).op(5).path("/locations/a").refused(401, Refused::Scope),
                    get(1).op(5).path("/locations/b").refused(401, Refused::Scope),
                ],
                vec![get(0).op(5).refused(401, Refused::Scope), get(1).op(6).refused(401, Refused::Scope)],
            ),
        ]
    }

    #[test]
    fn every_kind_is_found_in_its_script_and_not_in_its_near_miss() {
        for (kind, what, shows, misses) in cases() {
            let report = run(&shows);
            assert!(report.finding(kind).is_some(), "{kind:?} not found in: {what}\n{}", report.text());
            let report = run(&misses);
            assert!(
                report.finding(kind).is_none(),
                "{kind:?} wrongly found in the near miss of: {what}\n{}",
                report.text()
            );
        }
    }

    #[test]
    fn every_kind_has_a_case_both_ways() {
        let covered: HashSet<Kind> = cases().into_iter().map(|(k, ..)| k).collect();
        assert_eq!(covered.len(), Kind::JOURNAL.len());
    }

    #[test]
    fn a_well_behaved_sequence_passes_every_kind() {
        let mut script = burst(0, 20, 500);
        script.push(get(10_000).injected());
        script.push(get(20_000));
        script.push(post(20_500, 1).status(503));
        script.push(post(21_000, 2));
        script.push(get(21_500).refused(401, Refused::Scope).op(5));
        let report = run(&script);
        assert!(report.findings.is_empty(), "{}", report.text());
        assert_eq!(report.passed, Kind::JOURNAL.to_vec());
    }

    #[test]
    fn evidence_names_the_requests_and_their_times() {
        let report = run(&[get(0).injected(), get(250), get(300)]);
        let f = report.finding(Kind::RetriedTooSoon).unwrap();
        assert_eq!(f.count, 1);
        assert_eq!(
            (f.evidence[0].request, f.evidence[0].at_ms, f.evidence[0].after, f.evidence[0].delay_ms),
            (2, 250, Some(1), Some(250))
        );
        let f = report.finding(Kind::SentDuringBackoff).unwrap();
        assert_eq!(f.evidence.iter().map(|e| e.request).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(f.summary, "2 requests sent during the back-off after 1 429, the soonest 250 ms after it");
    }

    #[test]
    fn evidence_is_capped_but_the_count_is_not() {
        let mut script = vec![get(0).refused(401, Refused::InvalidToken)];
        script.extend((1..=50).map(|i| get(i).refused(401, Refused::InvalidToken)));
        let f = run(&script).finding(Kind::UsedDeadToken).cloned().unwrap();
        assert_eq!((f.count, f.evidence.len()), (50, 20));
    }

    #[test]
    fn kinds_parse_from_a_comma_list_or_all() {
        assert_eq!(Kind::parse_list("all").unwrap(), Kind::ALL.to_vec());
        assert_eq!(
            Kind::parse_list("retried_too_soon, used_dead_token").unwrap(),
            vec![Kind::RetriedTooSoon, Kind::UsedDeadToken]
        );
        assert!(Kind::parse_list("retried_too_son").unwrap_err().contains("unknown finding kind"));
        for kind in Kind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.id()));
        }
    }

    #[test]
    fn junit_has_one_failing_case_per_finding_and_a_passing_case_per_clean_kind() {
        let report = run(&[get(0).injected(), get(1).path("/a&b<c>")]);
        let xml = report.junit();
        assert_eq!(xml.matches("<testcase ").count(), 8);
        assert_eq!(xml.matches("<failure ").count(), report.findings.len());
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("/a&amp;b&lt;c&gt;"), "paths are escaped: {xml}");
        assert!(!xml.contains("/a&b"), "{xml}");
    }

    #[test]
    fn clock_values_at_the_ends_of_time_do_not_break_the_report() {
        let report = run(&[get(i64::MIN).injected(), get(i64::MAX), post(i64::MIN, 1).status(500), post(i64::MAX, 1)]);
        let during = report.finding(Kind::SentDuringBackoff).map(|f| f.evidence.iter().map(|e| e.request).collect());
        assert_eq!(during, Some(vec![3]), "only the POST at the same instant as the 429:\n{}", report.text());
        assert!(report.finding(Kind::DuplicateRisk).is_none(), "an age apart is not a retry");
    }

    #[test]
    fn a_webhook_handler_that_failed_slowly_until_abandoned_shows_all_three_webhook_kinds() {
        use crate::state::deliveries::{Attempt, Delivery, DeliveryState};
        let attempt = |n: u32, status: Option<u16>, latency_ms: u64| Attempt {
            attempt: n,
            at_ms: i64::from(n) * 1_000,
            status,
            latency_ms,
            error: status.is_none().then(|| "no answer within 10000 ms".to_string()),
            manual: false,
        };
        let delivery = |state, attempts| Delivery {
            webhook_id: "w1".into(),
            event: "ContactCreate".into(),
            client_id: "app".into(),
            location: Some(LOC.into()),
            url: "http://127.0.0.1:9/hook".into(),
            body: std::sync::Arc::from("{}"),
            created_ms: 0,
            state,
            next_attempt_at_ms: None,
            attempts,
            in_flight: false,
        };
        let bad = delivery(DeliveryState::Abandoned, vec![attempt(1, Some(500), 3), attempt(2, None, 10_000)]);
        let mut report = run(&[get(0)]);
        add_webhooks(&mut report, &[bad], 5_000, &Settings::default());
        let kinds: Vec<Kind> = report.findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, Kind::WEBHOOKS.to_vec(), "{}", report.text());
        assert_eq!(report.finding(Kind::WebhookNon2xx).unwrap().evidence[0].request, 1);
        let good = delivery(DeliveryState::Delivered, vec![attempt(1, Some(200), 3)]);
        let mut report = run(&[get(0)]);
        add_webhooks(&mut report, &[good], 5_000, &Settings::default());
        assert!(report.findings.is_empty(), "{}", report.text());
        assert_eq!(report.passed, Kind::ALL.to_vec());
    }

    #[test]
    fn the_report_round_trips_through_json() {
        let report = run(&[get(0).injected(), get(1)]);
        let back: Report = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(back, report);
    }
}
