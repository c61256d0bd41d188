//! The request journal: a bounded record of every API request the mock
//! answered (control-plane calls are not API requests and are not recorded),
//! read by `GET /__admin/journal` and by the client behaviour report
//! ([`crate::report`]).
//!
//! What it owns: the ring of [`Entry`]s (the newest `journal_capacity` of
//! them; older ones are dropped and counted), and the [`Filter`] the control
//! plane selects them with. What it must never hold: a token. A request's
//! token is kept as its fingerprint only, its body as a 64-bit hash (enough
//! to tell a retry from a new request, never shown), its query string not at
//! all, and a `Version` value only when it is short enough not to be a secret
//! pasted into the wrong header.
//!
//! The pipeline opens a [`Pending`] record when a request arrives, notes what
//! the stages learn on its [`Seen`] (the token's fingerprint comes from the
//! auth stage, so a recognised token is not hashed twice; only a token the
//! auth stage did not recognise is fingerprinted here, when the entry is
//! written), and finishes it with the answer. A
//! request whose client hangs up before the answer (a client-side timeout)
//! is dropped mid-way by the server; the record is then written by `Drop`,
//! marked [`Broken::Abandoned`], because that is exactly the case a retrying
//! client must be careful about.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::check::bearer;
use crate::auth::secret::fingerprint;
use crate::auth::AuthError;
use crate::error::ApiError;
use crate::limits::{path_matches, RateHeaders, Refusal};
use crate::respond::control::Fault;

/// `Version` values longer than this are recorded by length only.
const MAX_VERSION_CHARS: usize = 24;
/// A recorded path keeps at most this many bytes (and says how long it was):
/// the journal's memory follows its capacity, not what clients send.
pub const MAX_PATH_BYTES: usize = 1024;

/// `path`, redacted, and cut to [`MAX_PATH_BYTES`] at a character boundary.
fn recorded_path(path: &str) -> String {
    let path = crate::auth::secret::redact_path(path);
    if path.len() <= MAX_PATH_BYTES {
        return path.into_owned();
    }
    let mut cut = MAX_PATH_BYTES;
    while !path.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…({} bytes)", &path[..cut], path.len())
}

/// Why the mock refused a request, as a short machine-readable kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refused {
    NotFound,
    MethodNotAllowed,
    MissingToken,
    /// Unknown, garbage, deleted or past-its-rotation-window token.
    InvalidToken,
    /// An OAuth access token past its expiry.
    ExpiredToken,
    VersionMissing,
    VersionInvalid,
    /// A PIT on an `*-Access-Only` operation.
    TokenKind,
    UserType,
    Scope,
    Location,
    /// A `companyId` that is not the token's company.
    Company,
    RateLimitedBurst,
    RateLimitedDaily,
    RateLimitedInjected,
    PayloadTooLarge,
    /// The body did not arrive in time.
    RequestTimeout,
    MalformedBody,
    UnsupportedMediaType,
    Validation,
    BadRequest,
    /// A refusal of the OAuth token endpoints (`invalid_grant`, …).
    #[serde(rename = "oauth")]
    OAuth,
    Other,
}

impl Refused {
    /// The kind of a refusal; `limit` is the limiter's reason when the refusal is a 429.
    pub fn of(error: &ApiError, limit: Option<Refusal>) -> Refused {
        match error {
            ApiError::NotFound { .. } => Refused::NotFound,
            ApiError::MethodNotAllowed { .. } => Refused::MethodNotAllowed,
            ApiError::Auth(e) => match e {
                AuthError::MissingToken => Refused::MissingToken,
                AuthError::InvalidJwt | AuthError::InvalidPit => Refused::InvalidToken,
                AuthError::ExpiredJwt => Refused::ExpiredToken,
                AuthError::VersionMissing => Refused::VersionMissing,
                AuthError::VersionInvalid => Refused::VersionInvalid,
                AuthError::PitNotAllowed => Refused::TokenKind,
                AuthError::UserTypeMismatch | AuthError::UserTypeNotSupported => Refused::UserType,
                AuthError::ScopeMissing { .. } => Refused::Scope,
                AuthError::WrongLocation { .. } => Refused::Location,
                AuthError::WrongCompany { .. } => Refused::Company,
            },
            ApiError::RateLimited => match limit {
                Some(Refusal::Daily) => Refused::RateLimitedDaily,
                Some(Refusal::Injected) => Refused::RateLimitedInjected,
                Some(Refusal::Burst) | None => Refused::RateLimitedBurst,
            },
            ApiError::Unprocessable { .. } => Refused::Validation,
            ApiError::BadRequest { .. } | ApiError::RemovedInV3 { .. } => Refused::BadRequest,
            ApiError::MalformedBody { .. } => Refused::MalformedBody,
            ApiError::PayloadTooLarge { .. } | ApiError::HeadersTooLarge { .. } => Refused::PayloadTooLarge,
            ApiError::RequestTimeout => Refused::RequestTimeout,
            ApiError::UnsupportedMediaType { .. } => Refused::UnsupportedMediaType,
            ApiError::OAuth(_) => Refused::OAuth,
            ApiError::Control { .. } | ApiError::Unavailable { .. } => Refused::Other,
            ApiError::RecordNotFound { .. } => Refused::BadRequest,
        }
    }

    pub fn is_rate_limit(self) -> bool {
        matches!(self, Refused::RateLimitedBurst | Refused::RateLimitedDaily | Refused::RateLimitedInjected)
    }

    /// Refused after the token was recognised but before the rate limiter
    /// counted the request (BEHAVIOUR.md §3 order): such a request uses no quota.
    pub fn is_before_rate_limit(self) -> bool {
        matches!(
            self,
            Refused::VersionMissing
                | Refused::VersionInvalid
                | Refused::TokenKind
                | Refused::UserType
                | Refused::Scope
                | Refused::Location
                | Refused::Company
                | Refused::PayloadTooLarge
                | Refused::RequestTimeout
        )
    }
}

/// An answer that did not arrive whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Broken {
    /// A rule's fault closed the connection after the headers.
    Reset,
    /// A rule's fault sent half the body.
    Truncated,
    /// The client hung up (gave up waiting) before the answer was sent.
    Abandoned,
    /// The client shut its side of the connection before the answer was
    /// ready; the answer was sent, and it may or may not have been read (a
    /// half-close and a hang-up look the same: `limits.half_close`).
    ClosedEarly,
}

/// One API request as the journal keeps it (serialized only by a shared
/// store, which keeps the journal of every replica).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Monotonic over the mock's life; clearing the journal does not restart it.
    pub index: u64,
    /// When the request arrived, on the mock's clock.
    pub at_ms: i64,
    #[serde(with = "method_text")]
    pub method: Method,
    /// The path without its query string.
    pub path: String,
    /// Index of the operation it was routed to, in the mock's `SpecSet`.
    pub operation: Option<usize>,
    /// The token's fingerprint (`pit:3fa2c1d0`), or `none` without one.
    pub token: String,
    /// The token owner's id (a location or company) once the token was
    /// recognised, else the location the request named, if any.
    pub location: Option<String>,
    /// The status sent; 0 when no answer was sent.
    pub status: u16,
    pub refused: Option<Refused>,
    pub broken: Option<Broken>,
    /// The `X-RateLimit-*` values of the answer, when the token was recognised.
    pub rate: Option<RateHeaders>,
    pub retry_after_secs: Option<u64>,
    /// The `Version` header as sent (`None`: not sent).
    pub version: Option<String>,
    pub idempotent: bool,
    /// A hash of a POST or PATCH body, to tell a retry from a new request. Never shown.
    pub body_hash: Option<u64>,
}

impl Entry {
    /// The entry as the control plane shows it; `operation_id` names `operation`.
    pub fn to_json(&self, operation_id: Option<&str>) -> Value {
        json!({
            "index": self.index,
            "at_ms": self.at_ms,
            "at": crate::clock::iso8601(self.at_ms),
            "method": self.method.as_str(),
            "path": self.path,
            "operation": operation_id,
            "token": self.token,
            "location": self.location,
            "status": self.status,
            "refused": self.refused,
            "broken": self.broken,
            "rate": self.rate.map(|r| json!({
                "remaining": r.remaining,
                "daily_remaining": r.daily_remaining,
                "interval_ms": r.interval_ms,
            })),
            "retry_after_secs": self.retry_after_secs,
            "version_sent": self.version.is_some(),
            "version": self.version,
            "idempotent": self.idempotent,
        })
    }

    /// The rate limiter counted it: the token was recognised and it was not
    /// refused before the limiter, nor by it.
    pub fn used_quota(&self) -> bool {
        self.rate.is_some() && self.refused.is_none_or(|r| !r.is_before_rate_limit() && !r.is_rate_limit())
    }

    /// It got as far as the rate limiter (admitted or refused there).
    pub fn reached_rate_limit(&self) -> bool {
        self.rate.is_some() && self.refused.is_none_or(|r| !r.is_before_rate_limit())
    }
}

mod method_text {
    use axum::http::Method;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(method: &Method, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(method.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
        let text = String::deserialize(d)?;
        Method::from_bytes(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// What the stages of the pipeline learn about a request, for its entry.
/// Every setter is a no-op when the journal is off, so the hot path pays nothing.
#[derive(Debug, Default)]
pub struct Seen {
    enabled: bool,
    hash_body: bool,
    token: Option<String>,
    operation: Option<usize>,
    location: Option<String>,
    body_hash: Option<u64>,
}

impl Seen {
    /// The fingerprint of a token the auth stage recognised (so the journal
    /// need not hash the token again).
    pub fn token(&mut self, fingerprint: &str) {
        if self.enabled {
            self.token = Some(fingerprint.to_string());
        }
    }

    pub fn operation(&mut self, index: usize) {
        self.operation = Some(index);
    }

    /// The location or company the request is counted against.
    pub fn location(&mut self, id: &str) {
        if self.enabled {
            self.location = Some(id.to_string());
        }
    }

    /// The location a request names, computed only when someone records it.
    pub fn named_location(&mut self, named: impl FnOnce() -> Option<String>) {
        if self.enabled && self.location.is_none() {
            self.location = named();
        }
    }

    pub fn body(&mut self, bytes: &[u8]) {
        if self.hash_body && !bytes.is_empty() {
            self.body_hash = Some(crate::spec::fnv1a(bytes));
        }
    }
}

/// What the answer was, for [`Pending::finish`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Answered {
    pub status: u16,
    pub refused: Option<Refused>,
    pub rate: Option<RateHeaders>,
    pub retry_after_secs: Option<u64>,
    pub fault: Option<Fault>,
    /// The client shut its side before the answer was ready.
    pub closed_early: bool,
}

/// The record of a request in flight: written by [`Pending::finish`], or,
/// when the request is dropped before it is answered, by `Drop`.
pub struct Pending<'a> {
    journal: &'a dyn crate::state::Journals,
    draft: Option<Entry>,
    /// The request's `Authorization` value, until the entry is written: its
    /// fingerprint is computed then, and only when the auth stage did not
    /// recognise the token (which would have noted its fingerprint already).
    authorization: Option<HeaderValue>,
    pub seen: Seen,
}

impl Pending<'_> {
    pub fn finish(mut self, answered: Answered) {
        let Some(mut entry) = self.draft.take() else { return };
        self.fill(&mut entry);
        entry.status = answered.status;
        entry.refused = answered.refused;
        entry.rate = answered.rate;
        entry.retry_after_secs = answered.retry_after_secs;
        entry.broken = match answered.fault {
            Some(Fault::Reset) => Some(Broken::Reset),
            Some(Fault::Truncate) => Some(Broken::Truncated),
            None if answered.closed_early => Some(Broken::ClosedEarly),
            None => None,
        };
        self.journal.record(entry);
    }

    fn fill(&mut self, entry: &mut Entry) {
        entry.token = match (self.seen.token.take(), self.authorization.take()) {
            (Some(fingerprint), _) => fingerprint,
            (None, None) => "none".to_string(),
            (None, Some(value)) => {
                // The slow path (a refused or unchecked token): `bearer` reads a header map.
                let mut headers = HeaderMap::new();
                headers.insert(AUTHORIZATION, value);
                bearer(&headers).map(fingerprint).unwrap_or_else(|_| "none".to_string())
            }
        };
        entry.operation = self.seen.operation;
        entry.location = self.seen.location.take();
        entry.body_hash = self.seen.body_hash;
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(mut entry) = self.draft.take() {
            self.fill(&mut entry);
            entry.broken = Some(Broken::Abandoned);
            self.journal.record(entry);
        }
    }
}

/// Opens the record of a request that just arrived, in `journal`.
pub fn begin<'a>(
    journal: &'a dyn crate::state::Journals,
    at_ms: i64,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Pending<'a> {
    let idempotent = !matches!(*method, Method::POST | Method::PATCH);
    if !journal.is_enabled() {
        return Pending { journal, draft: None, authorization: None, seen: Seen::default() };
    }
    let version = headers.get("version").map(|v| match v.to_str().map(str::trim) {
        Ok(text) if text.chars().count() <= MAX_VERSION_CHARS => text.to_string(),
        _ => format!("<{} bytes>", v.len()),
    });
    let draft = Entry {
        index: 0,
        at_ms,
        method: method.clone(),
        // A token pasted into the URL is kept only as its fingerprint.
        path: recorded_path(path),
        operation: None,
        token: String::new(),
        location: None,
        status: 0,
        refused: None,
        broken: None,
        rate: None,
        retry_after_secs: None,
        version,
        idempotent,
        body_hash: None,
    };
    let seen = Seen { enabled: true, hash_body: !idempotent, ..Seen::default() };
    // A cheap clone: the value shares the request's bytes.
    let authorization = headers.get(AUTHORIZATION).cloned();
    Pending { journal, draft: Some(draft), authorization, seen }
}

/// How many requests the journal holds and has dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub capacity: usize,
    pub held: usize,
    /// About how many bytes the held entries take, and the most they may.
    pub bytes: usize,
    pub max_bytes: usize,
    /// Entries dropped to make room since the last clear.
    pub dropped: u64,
    /// Requests recorded over the mock's life.
    pub recorded: u64,
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Entry>,
    recorded: u64,
    dropped: u64,
    bytes: usize,
}

/// The newest `capacity` API requests, within `max_bytes` (about) of memory;
/// capacity 0 records nothing.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    max_bytes: usize,
    ring: Mutex<Ring>,
}

/// The default bound on the journal's memory.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

impl Entry {
    /// About how many bytes the entry holds in memory.
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of::<Entry>()
            + self.path.len()
            + self.token.len()
            + self.location.as_ref().map_or(0, String::len)
            + self.version.as_ref().map_or(0, String::len)
    }
}

impl Journal {
    pub fn new(capacity: usize) -> Self {
        Self::bounded(capacity, DEFAULT_MAX_BYTES)
    }

    pub fn bounded(capacity: usize, max_bytes: usize) -> Self {
        Self { capacity, max_bytes, ring: Mutex::new(Ring::default()) }
    }

    pub fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Opens the record of a request that just arrived (see [`begin`]).
    pub fn begin(&self, at_ms: i64, method: &Method, path: &str, headers: &HeaderMap) -> Pending<'_> {
        begin(self, at_ms, method, path, headers)
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends an entry, dropping the oldest when full; numbers it.
    pub fn record(&self, mut entry: Entry) {
        if !self.is_enabled() {
            return;
        }
        let size = entry.bytes();
        let mut gone = Vec::new();
        {
            let mut ring = self.ring();
            ring.recorded += 1;
            entry.index = ring.recorded;
            while !ring.entries.is_empty()
                && (ring.entries.len() >= self.capacity || ring.bytes + size > self.max_bytes)
            {
                if let Some(old) = ring.entries.pop_front() {
                    ring.bytes = ring.bytes.saturating_sub(old.bytes());
                    ring.dropped += 1;
                    gone.push(old);
                }
            }
            ring.bytes += size;
            ring.entries.push_back(entry);
        }
        // The dropped entries are freed after the lock is let go.
        drop(gone);
    }

    /// The entries `filter` selects, oldest first.
    pub fn entries(&self, filter: &Filter) -> Vec<Entry> {
        self.ring().entries.iter().filter(|e| filter.matches(e)).cloned().collect()
    }

    /// The newest `limit` entries `filter` selects, oldest first.
    pub fn newest(&self, filter: &Filter, limit: usize) -> Vec<Entry> {
        let ring = self.ring();
        let mut out: Vec<Entry> =
            ring.entries.iter().rev().filter(|e| filter.matches(e)).take(limit).cloned().collect();
        out.reverse();
        out
    }

    pub fn count(&self, filter: &Filter) -> usize {
        self.ring().entries.iter().filter(|e| filter.matches(e)).count()
    }

    pub fn clear(&self) {
        let mut ring = self.ring();
        ring.entries.clear();
        ring.dropped = 0;
        ring.bytes = 0;
    }

    pub fn stats(&self) -> Stats {
        let ring = self.ring();
        Stats {
            capacity: self.capacity,
            held: ring.entries.len(),
            bytes: ring.bytes,
            max_bytes: self.max_bytes,
            dropped: ring.dropped,
            recorded: ring.recorded,
        }
    }
}

/// The in-memory backend of the journal: this ring.
#[async_trait::async_trait]
impl crate::state::Journals for Journal {
    fn is_enabled(&self) -> bool {
        Journal::is_enabled(self)
    }

    fn record(&self, entry: Entry) {
        Journal::record(self, entry);
    }

    async fn entries(&self, filter: &Filter) -> Result<Vec<Entry>, crate::state::StateError> {
        Ok(Journal::entries(self, filter))
    }

    async fn newest(&self, filter: &Filter, limit: usize) -> Result<Vec<Entry>, crate::state::StateError> {
        Ok(Journal::newest(self, filter, limit))
    }

    async fn count(&self, filter: &Filter) -> Result<usize, crate::state::StateError> {
        Ok(Journal::count(self, filter))
    }

    async fn stats(&self) -> Result<Stats, crate::state::StateError> {
        Ok(Journal::stats(self))
    }

    async fn clear(&self) -> Result<(), crate::state::StateError> {
        Journal::clear(self);
        Ok(())
    }
}

/// A status to match: `429`, or a class such as `4xx`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StatusMatch {
    Code(u16),
    Text(String),
}

impl StatusMatch {
    fn check(&self) -> Result<(), String> {
        match self {
            StatusMatch::Code(_) => Ok(()),
            StatusMatch::Text(t) if t.parse::<u16>().is_ok() => Ok(()),
            StatusMatch::Text(t) if is_class(t) => Ok(()),
            StatusMatch::Text(t) => {
                Err(format!("`status` must be a status such as 429 or a class such as 4xx, not '{t}'"))
            }
        }
    }

    fn matches(&self, status: u16) -> bool {
        match self {
            StatusMatch::Code(c) => *c == status,
            StatusMatch::Text(t) => match t.parse::<u16>() {
                Ok(c) => c == status,
                Err(_) => t.as_bytes().first().is_some_and(|d| u16::from(d.wrapping_sub(b'0')) == status / 100),
            },
        }
    }
}

/// `4xx`: a digit and two x's.
fn is_class(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 3 && b[0].is_ascii_digit() && b[1..].eq_ignore_ascii_case(b"xx")
}

/// Which entries to select; every field given must match (WireMock-style).
/// The same fields serve `GET /__admin/journal?…`, `POST /__admin/journal/count`
/// and the report's selection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub method: Option<String>,
    /// A glob: `*` is one segment, `**` any number (`/contacts/*`).
    pub path: Option<String>,
    pub status: Option<StatusMatch>,
    /// A fingerprint (`pit:3fa2c1d0`), `none`, or a whole token (used only to
    /// compute its fingerprint; see [`Filter::normalized`]).
    pub token: Option<String>,
    pub location: Option<String>,
    pub refused: Option<Refused>,
    /// Only requests that arrived at or after this time (ms, the mock's clock).
    pub since: Option<i64>,
}

impl Filter {
    /// A whole token becomes its fingerprint, so the filter never keeps it;
    /// an invalid status pattern is refused.
    pub fn normalized(mut self) -> Result<Self, String> {
        if let Some(t) = &mut self.token {
            let trimmed = t.trim();
            if trimmed != "none" && !trimmed.contains(':') {
                *t = crate::auth::secret::fingerprint(trimmed);
            } else if trimmed.len() != t.len() {
                *t = trimmed.to_string();
            }
        }
        if let Some(s) = &self.status {
            s.check()?;
        }
        Ok(self)
    }

    pub fn matches(&self, e: &Entry) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(e.method.as_str()))
            && self.path.as_deref().is_none_or(|glob| path_matches(glob, &e.path))
            && self.status.as_ref().is_none_or(|s| s.matches(e.status))
            && self.token.as_deref().is_none_or(|t| t == e.token)
            && self.location.as_deref().is_none_or(|l| e.location.as_deref() == Some(l))
            && self.refused.is_none_or(|r| e.refused == Some(r))
            && self.since.is_none_or(|s| e.at_ms >= s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, status: u16) -> Entry {
        Entry {
            index: 0,
            at_ms: 1_000,
            method: Method::GET,
            path: path.into(),
            operation: None,
            token: "pit:00000001".into(),
            location: Some("loc".into()),
            status,
            refused: None,
            broken: None,
            rate: None,
            retry_after_secs: None,
            version: Some("2021-07-28".into()),
            idempotent: true,
            body_hash: None,
        }
    }

    #[test]
    fn a_full_journal_drops_its_oldest_entries_and_counts_them() {
        let journal = Journal::new(3);
        for i in 0..5 {
            journal.record(entry(&format!("/r/{i}"), 200));
        }
        let held = journal.entries(&Filter::default());
        assert_eq!(held.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(held[0].path, "/r/2");
        let bytes: usize = held.iter().map(Entry::bytes).sum();
        let stats = Stats { capacity: 3, held: 3, bytes, max_bytes: DEFAULT_MAX_BYTES, dropped: 2, recorded: 5 };
        assert_eq!(journal.stats(), stats);
        journal.clear();
        journal.record(entry("/after", 200));
        assert_eq!(journal.entries(&Filter::default())[0].index, 6, "indices keep counting after a clear");
    }

    #[test]
    fn a_journal_of_capacity_zero_records_nothing() {
        let journal = Journal::new(0);
        let headers = HeaderMap::new();
        journal.begin(0, &Method::GET, "/x", &headers).finish(Answered::default());
        journal.record(entry("/x", 200));
        assert_eq!(journal.stats().recorded, 0);
    }

    #[test]
    fn a_request_dropped_before_its_answer_is_recorded_as_abandoned() {
        let journal = Journal::new(10);
        let headers = HeaderMap::new();
        let mut pending = journal.begin(5, &Method::POST, "/contacts/", &headers);
        pending.seen.operation(7);
        pending.seen.body(b"{\"a\":1}");
        drop(pending);
        let e = &journal.entries(&Filter::default())[0];
        assert_eq!((e.broken, e.status, e.operation, e.idempotent), (Some(Broken::Abandoned), 0, Some(7), false));
        assert!(e.body_hash.is_some());
        assert_eq!(e.version, None);
    }

    #[test]
    fn filters_match_method_path_glob_status_class_token_and_time() {
        let mut e = entry("/contacts/abc", 429);
        e.refused = Some(Refused::RateLimitedInjected);
        let parse = |v: Value| serde_json::from_value::<Filter>(v).unwrap().normalized().unwrap();
        assert!(parse(json!({"path": "/contacts/*", "status": 429, "method": "get"})).matches(&e));
        assert!(parse(json!({"status": "4xx", "token": "pit:00000001", "since": 1000})).matches(&e));
        assert!(parse(json!({"refused": "rate_limited_injected"})).matches(&e));
        assert!(!parse(json!({"status": "5xx"})).matches(&e));
        assert!(!parse(json!({"since": 1001})).matches(&e));
        assert!(!parse(json!({"path": "/contacts/"})).matches(&e));
        assert!(serde_json::from_value::<Filter>(json!({"status": "4x"})).unwrap().normalized().is_err());
        assert!(serde_json::from_value::<Filter>(json!({"colour": "red"})).is_err(), "unknown fields are refused");
    }

    #[test]
    fn a_token_is_recorded_by_the_fingerprint_auth_noted_or_else_by_its_own() {
        let journal = Journal::new(4);
        let token = crate::auth::secret::new_pit();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer  {token} ").parse().unwrap());
        journal.begin(0, &Method::GET, "/x", &headers).finish(Answered::default());
        let mut noted = journal.begin(0, &Method::GET, "/x", &headers);
        noted.seen.token("pit:noted000");
        noted.finish(Answered::default());
        headers.insert("authorization", "Basic abc".parse().unwrap());
        journal.begin(0, &Method::GET, "/x", &headers).finish(Answered::default());
        let tokens: Vec<String> = journal.entries(&Filter::default()).into_iter().map(|e| e.token).collect();
        assert_eq!(tokens, vec![fingerprint(&token), "pit:noted000".to_string(), "none".to_string()]);
    }

    #[test]
    fn a_whole_token_in_a_filter_is_kept_only_as_its_fingerprint() {
        let token = crate::auth::secret::new_pit();
        let f = Filter { token: Some(token.clone()), ..Filter::default() }.normalized().unwrap();
        assert_eq!(f.token, Some(crate::auth::secret::fingerprint(&token)));
        assert!(!format!("{f:?}").contains(&token));
    }

    #[test]
    fn refusals_are_named_by_their_stage_and_the_limiters_reason() {
        let limited = ApiError::RateLimited;
        assert_eq!(Refused::of(&limited, Some(Refusal::Daily)), Refused::RateLimitedDaily);
        assert_eq!(Refused::of(&limited, Some(Refusal::Injected)), Refused::RateLimitedInjected);
        assert_eq!(Refused::of(&limited, Some(Refusal::Burst)), Refused::RateLimitedBurst);
        assert_eq!(Refused::of(&ApiError::Auth(AuthError::InvalidPit), None), Refused::InvalidToken);
        assert_eq!(Refused::of(&ApiError::Auth(AuthError::ExpiredJwt), None), Refused::ExpiredToken);
        let scope = ApiError::Auth(AuthError::ScopeMissing { scope: "x".into() });
        assert_eq!(Refused::of(&scope, None), Refused::Scope);
        assert_eq!(Refused::of(&ApiError::Unprocessable { messages: vec![] }, None), Refused::Validation);
        assert_eq!(serde_json::to_value(Refused::RateLimitedBurst).unwrap(), json!("rate_limited_burst"));
        assert_eq!(serde_json::to_value(Refused::OAuth).unwrap(), json!("oauth"));
    }

    #[test]
    fn a_long_version_value_is_recorded_by_its_length_only() {
        let journal = Journal::new(2);
        let mut headers = HeaderMap::new();
        let secret = crate::auth::secret::new_pit();
        headers.insert("version", secret.parse().unwrap());
        journal.begin(0, &Method::GET, "/x", &headers).finish(Answered::default());
        let e = &journal.entries(&Filter::default())[0];
        assert_eq!(e.version.as_deref(), Some("<40 bytes>"));
        assert_eq!(e.token, "none");
    }
}
