//! The state interface: everything the mock remembers about resources goes
//! through [`Records`], one async call per domain operation, each atomic by
//! itself (insert-if-unique, update-with-a-closure, find-or-insert), each
//! returning owned values. No lock, guard or borrow crosses the interface, so
//! a handler can never hold the store across an `.await` or take it twice,
//! and a networked backend (Redis) can serve the same calls.
//!
//! What a record is, is the resource engine's business (`resources`): here a
//! record is a JSON object of some kind (`contacts`, `contacts/{}/notes`, …)
//! that belongs to one location (or company) and has a creation time that
//! orders lists. Index keys (`email:ann@x.io`) let a kind look records up and
//! refuse duplicates without a scan.
//!
//! The domains, one narrow trait each: [`Records`] (resources), [`Worlds`]
//! (directory and credentials: companies, locations, private integrations,
//! OAuth apps, custom limits), [`Counters`] (rate windows, daily quotas,
//! injected 429s), [`Scenarios`] (answer rules with counts), [`Journals`]
//! (the request journal) and `auth::oauth::Grants` (OAuth codes, refresh
//! tokens, the signing key), and `clock::TimeSource` (the virtual offset and
//! frozen state; read on every request, so its calls never wait).
//!
//! Backends: [`memory::Memory`] (records and world; the embedded default,
//! made durable by [`log`] under `--state FILE`), and the limiter, rules,
//! journal ring and grants maps behind the other traits.

pub mod deliveries; // issue 13: the webhook outbox
pub mod log;
pub mod memory;
#[cfg(feature = "redis-store")]
pub mod redis; // issue 12: one world for several replicas
mod split;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::ApiError;

pub type Record = Map<String, Value>;

/// A stored record and what the store knows about it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub kind: Arc<str>,
    pub id: String,
    /// The location (or company) the record belongs to.
    pub location: String,
    /// When it was created (virtual clock, ms): the order of lists.
    pub created_ms: i64,
    /// The record as the store keeps it: its JSON text.
    pub body: Arc<Body>,
    /// The record read from the body: handed over by the call that built it
    /// (an insert, an update), else read on first use.
    parsed: OnceLock<Arc<Value>>,
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        (&self.kind, &self.id, &self.location, self.created_ms)
            == (&other.kind, &other.id, &other.location, other.created_ms)
            && self.body.text() == other.body.text()
    }
}

/// The fields of a stored record (a record is always an object; anything
/// else reads as no fields).
pub fn fields(record: &Value) -> &Record {
    static NONE: std::sync::LazyLock<Record> = std::sync::LazyLock::new(Record::new);
    record.as_object().unwrap_or(&NONE)
}

impl Stored {
    pub fn new(kind: Arc<str>, id: String, location: String, created_ms: i64, body: Arc<Body>) -> Self {
        Self { kind, id, location, created_ms, body, parsed: OnceLock::new() }
    }

    /// The same, with the record its body was written from (no second reading).
    pub fn with_record(self, record: Arc<Value>) -> Self {
        let parsed = OnceLock::new();
        let _ = parsed.set(record);
        Self { parsed, ..self }
    }

    /// The record.
    pub fn record(&self) -> &Value {
        self.parsed.get_or_init(|| Arc::new(self.body.value()))
    }

    /// The record's fields.
    pub fn fields(&self) -> &Record {
        fields(self.record())
    }

    /// Where this record sits in its list's order.
    pub fn cursor(&self) -> Cursor {
        Cursor { created_ms: self.created_ms, id: self.id.clone() }
    }
}

/// A record as a backend keeps it: its JSON text, written once (a change
/// writes a new body), and which direct answers it is known to fit.
///
/// A record kept as a [`Value`] took about 3.4 KB (a field of a table is 112
/// bytes, every string its own allocation); its text takes a seventh of that,
/// and is what an answer writes anyway. A call that needs the fields reads
/// them ([`Stored::record`]).
#[derive(Debug)]
pub struct Body {
    text: Box<RawValue>,
    /// Bit `n`: the record fits the schema of direct answer `n` (see
    /// `resources::direct`), checked once per body.
    fits: AtomicU64,
}

/// About how long the JSON text of these fields is (strings as if nothing
/// in them needed escaping, numbers as eight characters).
fn text_len<'a>(fields: impl Iterator<Item = (&'a String, &'a Value)>) -> usize {
    fn len(value: &Value) -> usize {
        match value {
            Value::Null | Value::Bool(_) => 5,
            Value::Number(_) => 8,
            Value::String(s) => s.len() + 2,
            Value::Array(items) => 2 + items.iter().map(|v| len(v) + 1).sum::<usize>(),
            Value::Object(map) => text_len(map.iter()),
        }
    }
    2 + fields.map(|(k, v)| k.len() + 4 + len(v)).sum::<usize>()
}

impl Body {
    /// The body of a record's fields, written into a buffer of about its
    /// size (written into a growing one, it was copied four times on its way
    /// to 400 bytes: a twelfth of the CPU of a create). The text is then
    /// read once more, as `RawValue` takes only text it has checked: cheaper
    /// than those copies, and no `unsafe`.
    pub fn of(record: &Record) -> Result<Body, RecordError> {
        let unavailable = |e: &dyn std::fmt::Display| RecordError::Unavailable(e.to_string());
        let mut text = Vec::with_capacity(text_len(record.iter()) + 16);
        serde_json::to_writer(&mut text, record).map_err(|e| unavailable(&e))?;
        let text = String::from_utf8(text).map_err(|e| unavailable(&e))?;
        Body::from_text(text).map_err(|e| unavailable(&e))
    }

    /// A body from JSON text a backend kept; refuses text that is not JSON.
    pub fn from_text(text: String) -> Result<Body, serde_json::Error> {
        Ok(Body { text: RawValue::from_string(text)?, fits: AtomicU64::new(0) })
    }

    pub fn text(&self) -> &str {
        self.text.get()
    }

    /// The text, to be written as it is inside a larger answer.
    pub fn raw(&self) -> &RawValue {
        &self.text
    }

    /// The record read from the text (text a backend wrote from a value
    /// always reads; anything else reads as no fields).
    pub fn value(&self) -> Value {
        Value::Object(self.fields())
    }

    /// The record's fields read from the text, to change or to test.
    pub fn fields(&self) -> Record {
        serde_json::from_str(self.text.get()).unwrap_or_default()
    }

    /// Whether the record is known to fit direct answer `slot`.
    pub fn fits(&self, slot: u32) -> bool {
        slot < 64 && self.fits.load(Ordering::Relaxed) & (1 << slot) != 0
    }

    /// Notes that the record fits direct answer `slot`.
    pub fn mark_fits(&self, slot: u32) {
        if slot < 64 {
            self.fits.fetch_or(1 << slot, Ordering::Relaxed);
        }
    }
}

/// A position in a list: strictly after this record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub created_ms: i64,
    pub id: String,
}

/// A record to insert. The id is the caller's (random, see
/// [`crate::resources::new_id`]); the store refuses to replace an existing one.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub kind: Arc<str>,
    pub id: String,
    pub location: String,
    pub created_ms: i64,
    pub record: Record,
}

/// How a kind indexes its records and whether an index key must be unique
/// within a location (contacts' email and phone, unless the location allows
/// duplicates).
#[derive(Clone, Copy)]
pub struct Indexing {
    pub keys: fn(&Record) -> Vec<String>,
    pub unique: bool,
}

impl Indexing {
    pub const NONE: Indexing = Indexing { keys: no_keys, unique: false };
}

fn no_keys(_: &Record) -> Vec<String> {
    Vec::new()
}

/// A change to one record: applied to a copy, which replaces the stored one
/// only when it returns `Ok`.
pub type Change<'a> = &'a (dyn Fn(&mut Record) -> Result<(), ApiError> + Send + Sync);

/// A predicate over records, for lists.
pub type Filter<'a> = &'a (dyn Fn(&Record) -> bool + Send + Sync);

/// A page of one kind's records of one location, oldest first (or newest
/// first), strictly after `after`, skipping `skip` of the matches.
pub struct Query<'a> {
    pub kind: &'a str,
    pub location: &'a str,
    pub filter: Filter<'a>,
    pub after: Option<Cursor>,
    pub skip: usize,
    pub limit: usize,
    pub newest_first: bool,
}

/// One page of a list's matches, in order: every match counts toward the
/// total; of those `in_range` (after the cursor), the first `skip` are passed
/// over and the next `limit` kept. Answers (page, total, more after it).
pub(crate) fn page<T>(
    matches: impl Iterator<Item = T>,
    in_range: impl Fn(&T) -> bool,
    skip: usize,
    limit: usize,
) -> (Vec<T>, usize, bool) {
    let (mut total, mut passed, mut more) = (0, 0, false);
    let mut items = Vec::new();
    for item in matches {
        total += 1;
        if !in_range(&item) {
            continue;
        }
        passed += 1;
        if passed <= skip {
            continue;
        }
        if items.len() < limit {
            items.push(item);
        } else {
            more = true;
        }
    }
    (items, total, more)
}

#[derive(Debug, Clone)]
pub struct Listed {
    pub items: Vec<Stored>,
    /// Every match of the filter, before paging.
    pub total: usize,
    /// Matches left after this page.
    pub more: bool,
}

/// Why the store refused.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordError {
    NotFound,
    /// An insert named an id that is taken; the caller draws another.
    IdTaken,
    /// Another record of the location holds a unique index key.
    Duplicate {
        id: String,
        key: String,
    },
    /// The location holds the most records (or bytes) of the kind it may.
    Full {
        location: String,
        kind: String,
        what: String,
    },
    /// The change itself refused (the closure's error).
    Refused(ApiError),
    /// The backend cannot be reached or could not make the write durable.
    Unavailable(String),
}

/// What a location may hold of one kind.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_records: usize,
    pub max_bytes: usize,
}

/// Resources: records of every inferred kind.
#[async_trait::async_trait]
pub trait Records: Send + Sync {
    /// Inserts a record; refuses a taken id or a duplicate unique key.
    async fn insert(&self, new: NewRecord, indexing: Indexing) -> Result<Stored, RecordError>;
    async fn get(&self, kind: &str, id: &str) -> Result<Stored, RecordError>;
    /// Applies `change` to a copy of the record; returns (before, after).
    async fn update(
        &self,
        kind: &str,
        id: &str,
        change: Change<'_>,
        indexing: Indexing,
    ) -> Result<(Stored, Stored), RecordError>;
    /// Finds the record holding one of `keys` (in that order of preference)
    /// and changes it, or inserts `new`. Returns (before, after); `before` is
    /// `None` when the record was inserted.
    async fn upsert(
        &self,
        new: NewRecord,
        keys: &[String],
        change: Change<'_>,
        indexing: Indexing,
    ) -> Result<(Option<Stored>, Stored), RecordError>;
    async fn remove(&self, kind: &str, id: &str) -> Result<Stored, RecordError>;
    /// Removes every record of `kind` in `location` that `filter` accepts
    /// (a parent's sub-resources); returns how many.
    async fn remove_where(&self, kind: &str, location: &str, filter: Filter<'_>) -> Result<usize, RecordError>;
    /// The record of `location` holding an index key.
    async fn find(&self, kind: &str, location: &str, key: &str) -> Result<Option<Stored>, RecordError>;
    async fn list(&self, query: Query<'_>) -> Result<Listed, RecordError>;
    /// Forgets every record (the control plane's reset).
    async fn clear(&self) -> Result<(), RecordError>;
    /// Every record, for a snapshot.
    async fn all(&self) -> Result<Vec<Stored>, RecordError>;
}

/// Rate counters and daily quotas, and injected 429s with counts: one call
/// per decision, atomic by itself (a networked backend runs it as one
/// script), so concurrent requests are counted exactly.
#[async_trait::async_trait]
pub trait Counters: Send + Sync {
    /// Counts one request and decides it.
    async fn hit(
        &self,
        key: &RateKey,
        profile: Profile,
        token_fingerprint: &str,
        path: &str,
        now_ms: i64,
    ) -> Result<Decision, StateError>;
    /// The headers as they stand, without counting.
    async fn peek(&self, key: &RateKey, profile: Profile, now_ms: i64) -> Result<RateHeaders, StateError>;
    async fn exhaust_daily(&self, key: &RateKey, profile: Profile, now_ms: i64) -> Result<(), StateError>;
    async fn set_burst_remaining(
        &self,
        key: &RateKey,
        profile: Profile,
        remaining: u32,
        now_ms: i64,
    ) -> Result<(), StateError>;
    /// Arms an injected 429 rule; returns its id.
    async fn inject(&self, rule: Injection) -> Result<u64, StateError>;
    async fn injections(&self) -> Result<Vec<ActiveInjection>, StateError>;
    async fn remove_injection(&self, id: u64) -> Result<bool, StateError>;
    /// Forgets every counter and injection (reset).
    async fn clear(&self) -> Result<(), StateError>;
}

/// Answer rules with counts: each use is consumed exactly once.
#[async_trait::async_trait]
pub trait Scenarios: Send + Sync {
    async fn add(&self, rule: Rule) -> Result<u64, StateError>;
    async fn list(&self) -> Result<Vec<Rule>, StateError>;
    async fn remove(&self, id: u64) -> Result<bool, StateError>;
    async fn clear(&self) -> Result<(), StateError>;
    /// The first rule matching a call, spending one of its uses.
    async fn take(&self, method: &str, path: &str) -> Result<Option<Rule>, StateError>;
}

/// The world: the directory (companies, locations) and the credentials
/// (private integrations as token digests, rotation deadlines, scope edits,
/// OAuth apps, custom limits). Reads hand out an owned snapshot; a change
/// is one closure applied atomically (it may run more than once on a
/// networked backend, so it must only touch the world it is given).
#[async_trait::async_trait]
pub trait Worlds: Send + Sync {
    async fn read(&self) -> Result<Arc<World>, StateError>;
    async fn change(&self, change: &mut (dyn for<'w> FnMut(&'w mut World) + Send)) -> Result<(), StateError>;
}

/// The request journal, bounded (the newest kept). Recording never waits
/// for the store (a networked backend queues it); reads are async.
#[async_trait::async_trait]
pub trait Journals: Send + Sync {
    fn is_enabled(&self) -> bool;
    fn record(&self, entry: Entry);
    async fn entries(&self, filter: &JournalFilter) -> Result<Vec<Entry>, StateError>;
    async fn newest(&self, filter: &JournalFilter, limit: usize) -> Result<Vec<Entry>, StateError>;
    async fn count(&self, filter: &JournalFilter) -> Result<usize, StateError>;
    async fn stats(&self) -> Result<JournalStats, StateError>;
    async fn clear(&self) -> Result<(), StateError>;
}

/// Changes to the clock, which every replica must see: a shared store
/// applies them atomically where the clock is kept (two replicas advancing
/// by 10 s each advance it by 20 s). Reading stays with `clock::TimeSource`.
#[async_trait::async_trait]
pub trait Clocks: Send + Sync {
    /// Moves the clock forward by `ms` (never back).
    async fn advance(&self, ms: i64) -> Result<(), StateError>;
    /// Freezes or unfreezes it (at the current time), then sets the time.
    async fn set(&self, frozen: Option<bool>, at_ms: Option<i64>) -> Result<(), StateError>;
}

/// The in-process clock: the changes are the clock's own.
pub struct LocalClocks(pub crate::Clock);

#[async_trait::async_trait]
impl Clocks for LocalClocks {
    async fn advance(&self, ms: i64) -> Result<(), StateError> {
        self.0.advance_ms(ms);
        Ok(())
    }

    async fn set(&self, frozen: Option<bool>, at_ms: Option<i64>) -> Result<(), StateError> {
        if let Some(frozen) = frozen {
            self.0.set_frozen(frozen);
        }
        if let Some(at) = at_ms {
            self.0.set_ms(at);
        }
        Ok(())
    }
}

/// The backend could not serve a call (a networked store is down, or a
/// write could not be made durable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StateError(pub String);

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        ApiError::Unavailable { message: e.0 }
    }
}

use crate::journal::{Entry, Filter as JournalFilter, Stats as JournalStats};
use crate::limits::{ActiveInjection, Decision, Injection, Profile, RateHeaders, RateKey};
use crate::respond::control::Rule;
use crate::world::World;
