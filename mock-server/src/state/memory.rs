//! The in-memory backend of [`Records`]: one shard per kind, each behind its
//! own read-write lock (reads share it), taken once per call and never across
//! an `.await`.
//!
//! A shard keeps, per location, the list order (creation time, id), the index
//! keys and the bytes held, so that lists, duplicate checks and bounds need no
//! scan of other locations. With a [`Durable`] sink (`--state FILE`) every
//! change is handed to the sink while the shard is still locked, so the sink
//! sees changes in the order they happened, and the call returns only once
//! the sink says the change is on disk.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};

use compact_str::CompactString;
use serde_json::{json, Value};

use super::split::Split;
use super::{
    Body, Bounds, Change, Filter, Indexing, Listed, NewRecord, Query, Record, RecordError, Records, StateError, Stored,
    Worlds,
};
use crate::world::World;

/// A change's way to disk: `submit` queues the entry at once (in order) and
/// the future resolves when it is durable.
pub trait Durable: Send + Sync {
    fn submit(&self, entry: Value) -> Pending;
}

pub type Pending = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

struct Entry {
    location: CompactString,
    created_ms: i64,
    body: Arc<Body>,
    keys: Vec<String>,
    bytes: usize,
}

impl Entry {
    /// What a call answers and hands to the sink: the body shared, its
    /// index keys left behind with the stored entry.
    fn answer_copy(&self) -> Entry {
        Entry {
            location: self.location.clone(),
            created_ms: self.created_ms,
            body: self.body.clone(),
            keys: Vec::new(),
            bytes: self.bytes,
        }
    }

    /// Whether `filter` takes the record (read from its body).
    fn passes(&self, filter: Filter<'_>) -> bool {
        filter(&self.body.fields())
    }
}

/// The list order is a B-tree (it grows a node at a time and its keys start
/// with the creation time, compared in place); records and index keys are
/// [`Split`] maps (no rehash of everything at a doubling, one or two keys read
/// per lookup).
#[derive(Default)]
struct Place {
    order: BTreeSet<(i64, CompactString)>,
    index: Split<Ids>,
    bytes: usize,
}

#[derive(Default)]
struct Shard {
    records: Split<Entry>,
    places: HashMap<CompactString, Place>,
}

/// The records holding one index key: nearly always one, so one is kept
/// without a set around it.
enum Ids {
    One(CompactString),
    Many(BTreeSet<CompactString>),
}

impl Ids {
    /// The first id other than `except`.
    fn other_than(&self, except: Option<&str>) -> Option<&CompactString> {
        match self {
            Ids::One(id) => Some(id).filter(|id| Some(id.as_str()) != except),
            Ids::Many(ids) => ids.iter().find(|id| Some(id.as_str()) != except),
        }
    }

    fn add(&mut self, id: &str) {
        match self {
            Ids::One(one) if one == id => {}
            Ids::One(one) => *self = Ids::Many(BTreeSet::from([std::mem::take(one), CompactString::from(id)])),
            Ids::Many(ids) => {
                ids.insert(CompactString::from(id));
            }
        }
    }

    /// Drops `id`; answers whether none is left.
    fn drop_id(&mut self, id: &str) -> bool {
        match self {
            Ids::One(one) => one == id,
            Ids::Many(ids) => {
                ids.remove(id);
                if ids.len() == 1 {
                    if let Some(last) = ids.pop_first() {
                        *self = Ids::One(last);
                    }
                }
                matches!(self, Ids::Many(ids) if ids.is_empty())
            }
        }
    }
}

pub struct Memory {
    kinds: RwLock<HashMap<Arc<str>, Arc<RwLock<Shard>>>>,
    bounds: Bounds,
    durable: OnceLock<Arc<dyn Durable>>,
    /// Held shared by every change while it is handed to the sink, and
    /// exclusively by a snapshot, so that no change falls between a snapshot
    /// and the compaction that writes it.
    gate: RwLock<()>,
    /// The world, copied on write: a read is one `Arc` clone.
    world: RwLock<Arc<World>>,
}

/// About how many bytes a JSON value holds in memory.
pub fn approx_bytes(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 16,
        Value::String(s) => 24 + s.len(),
        Value::Array(items) => 24 + items.iter().map(approx_bytes).sum::<usize>(),
        Value::Object(map) => 48 + map.iter().map(|(k, v)| 24 + k.len() + approx_bytes(v)).sum::<usize>(),
    }
}

pub(crate) fn record_bytes(record: &Record) -> usize {
    48 + record.iter().map(|(k, v)| 24 + k.len() + approx_bytes(v)).sum::<usize>()
}

fn stored(kind: &Arc<str>, id: &str, entry: &Entry) -> Stored {
    Stored::new(kind.clone(), id.to_string(), entry.location.to_string(), entry.created_ms, entry.body.clone())
}

fn put_entry(kind: &str, id: &str, entry: &Entry) -> Value {
    let mut put = json!({"put": kind, "id": id, "location": entry.location.as_str(), "created_ms": entry.created_ms});
    put["record"] = entry.body.value();
    put
}

impl Shard {
    /// The first other record of `location` holding one of `keys`.
    fn holder(&self, location: &str, keys: &[String], except: Option<&str>) -> Option<(String, String)> {
        let place = self.places.get(location)?;
        keys.iter().find_map(|key| {
            let ids = place.index.get(key)?;
            ids.other_than(except).map(|id| (id.to_string(), key.clone()))
        })
    }

    fn room(&self, location: &str, kind: &str, adding: usize, bounds: Bounds) -> Result<(), RecordError> {
        let place = self.places.get(location);
        let held = place.map_or(0, |p| p.order.len());
        let bytes = place.map_or(0, |p| p.bytes);
        let full = |what: String| RecordError::Full { location: location.to_string(), kind: kind.to_string(), what };
        if held >= bounds.max_records {
            return Err(full(format!("{} records", bounds.max_records)));
        }
        if bytes + adding > bounds.max_bytes {
            return Err(full(format!("{} bytes", bounds.max_bytes)));
        }
        Ok(())
    }

    fn add(&mut self, id: CompactString, entry: Entry) {
        // Looked up first: the location is copied only for its first record.
        if !self.places.contains_key(&entry.location) {
            self.places.insert(entry.location.clone(), Place::default());
        }
        if let Some(place) = self.places.get_mut(&entry.location) {
            place.order.insert((entry.created_ms, id.clone()));
            for key in &entry.keys {
                place.index.get_or_insert_with(key, || Ids::One(id.clone())).add(&id);
            }
            place.bytes += entry.bytes;
        }
        self.records.insert(id, entry);
    }

    fn take(&mut self, id: &str) -> Option<Entry> {
        let entry = self.records.remove(id)?;
        if let Some(place) = self.places.get_mut(&entry.location) {
            place.order.remove(&(entry.created_ms, CompactString::from(id)));
            for key in &entry.keys {
                if place.index.get_mut(key).is_some_and(|ids| ids.drop_id(id)) {
                    place.index.remove(key);
                }
            }
            place.bytes = place.bytes.saturating_sub(entry.bytes);
            if place.order.is_empty() {
                self.places.remove(&entry.location);
            }
        }
        Some(entry)
    }

    /// Applies `change` to a copy of record `id` and stores it, keeping the
    /// index and the byte count true.
    fn change(
        &mut self,
        kind: &str,
        id: &str,
        change: Change<'_>,
        indexing: Indexing,
        bounds: Bounds,
    ) -> Result<(Entry, Entry, Arc<Value>), RecordError> {
        let old = self.records.get(id).ok_or(RecordError::NotFound)?;
        let mut record = old.body.fields();
        change(&mut record).map_err(RecordError::Refused)?;
        let keys = (indexing.keys)(&record);
        let location = old.location.clone();
        if indexing.unique {
            if let Some((holder, key)) = self.holder(&location, &keys, Some(id)) {
                return Err(RecordError::Duplicate { id: holder, key });
            }
        }
        let bytes = record_bytes(&record);
        let old_bytes = old.bytes;
        if bytes > old_bytes {
            let held = self.places.get(&location).map_or(0, |p| p.bytes);
            if held - old_bytes.min(held) + bytes > bounds.max_bytes {
                return Err(RecordError::Full {
                    location: location.to_string(),
                    kind: kind.to_string(),
                    what: format!("{} bytes", bounds.max_bytes),
                });
            }
        }
        let created_ms = old.created_ms;
        let body = Arc::new(Body::of(&record)?);
        let before = self.take(id).ok_or(RecordError::NotFound)?;
        let after = Entry { location, created_ms, body, keys, bytes };
        let copy = after.answer_copy();
        self.add(CompactString::from(id), after);
        Ok((before, copy, Arc::new(Value::Object(record))))
    }

    fn insert(&mut self, kind: &str, new: Prepared, bounds: Bounds) -> Result<Entry, RecordError> {
        let Prepared { id, entry, unique } = new;
        if self.records.contains_key(&id) {
            return Err(RecordError::IdTaken);
        }
        if unique {
            if let Some((holder, key)) = self.holder(&entry.location, &entry.keys, None) {
                return Err(RecordError::Duplicate { id: holder, key });
            }
        }
        self.room(&entry.location, kind, entry.bytes, bounds)?;
        let copy = entry.answer_copy();
        self.add(id, entry);
        Ok(copy)
    }
}

/// A new record made ready to keep (its body written, its index keys and
/// size worked out) before the shard is locked, so that the lock is held
/// only for the checks and the insert.
struct Prepared {
    id: CompactString,
    entry: Entry,
    /// Its index keys must be free in its location.
    unique: bool,
}

impl Prepared {
    /// The record made ready, and the record itself for the answer.
    fn new(new: NewRecord, indexing: Indexing) -> Result<(Self, Arc<Value>), RecordError> {
        let keys = (indexing.keys)(&new.record);
        let bytes = record_bytes(&new.record);
        let body = Arc::new(Body::of(&new.record)?);
        let location = CompactString::from(new.location);
        let entry = Entry { location, created_ms: new.created_ms, body, keys, bytes };
        Ok((
            Self { id: CompactString::from(new.id), entry, unique: indexing.unique },
            Arc::new(Value::Object(new.record)),
        ))
    }
}

impl Memory {
    pub fn new(bounds: Bounds, world: World) -> Self {
        Self {
            kinds: RwLock::new(HashMap::new()),
            bounds,
            durable: OnceLock::new(),
            gate: RwLock::new(()),
            world: RwLock::new(Arc::new(world)),
        }
    }

    /// Sets the world at start-up, before anything is served (no sink).
    pub fn replace_world(&self, world: World) {
        *self.world.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(world);
    }

    /// The world as it stands, for callers outside a request (start-up, snapshots).
    pub fn world_now(&self) -> Arc<World> {
        self.world.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// From now on every change is handed to `durable` (set once, before
    /// anything is served).
    pub fn set_durable(&self, durable: Arc<dyn Durable>) {
        let _ = self.durable.set(durable);
    }

    /// Runs `f` while no change can reach the sink (for a snapshot).
    pub fn exclusive<T>(&self, f: impl FnOnce() -> T) -> T {
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        f()
    }

    /// Inserts a record at start-up, before anything is served (no sink).
    pub fn seed(&self, new: NewRecord, indexing: Indexing) -> Result<Stored, RecordError> {
        let (kind, shard) = self.shard(&new.kind);
        let id = new.id.clone();
        let (new, record) = Prepared::new(new, indexing)?;
        let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
        let entry = shard.insert(&kind, new, self.bounds)?;
        Ok(stored(&kind, &id, &entry).with_record(record))
    }

    fn shard(&self, kind: &str) -> (Arc<str>, Arc<RwLock<Shard>>) {
        {
            let kinds = self.kinds.read().unwrap_or_else(|p| p.into_inner());
            if let Some((k, shard)) = kinds.get_key_value(kind) {
                return (k.clone(), shard.clone());
            }
        }
        let mut kinds = self.kinds.write().unwrap_or_else(|p| p.into_inner());
        let key: Arc<str> = Arc::from(kind);
        let shard = kinds.entry(key.clone()).or_default().clone();
        (key, shard)
    }

    /// The shard of an existing kind, without creating one.
    fn existing(&self, kind: &str) -> Option<(Arc<str>, Arc<RwLock<Shard>>)> {
        let kinds = self.kinds.read().unwrap_or_else(|p| p.into_inner());
        kinds.get_key_value(kind).map(|(k, s)| (k.clone(), s.clone()))
    }

    fn submit(&self, entry: impl FnOnce() -> Value) -> Option<Pending> {
        self.durable.get().map(|d| d.submit(entry()))
    }

    /// Applies one entry of a log being replayed at start-up. Entries are
    /// trusted to be the store's own; a malformed one is an error.
    pub fn replay(&self, entry: &Value) -> Result<(), String> {
        let text = |k: &str| entry.get(k).and_then(Value::as_str).ok_or_else(|| format!("log entry without '{k}'"));
        if let Some(kind) = entry.get("put").and_then(Value::as_str) {
            let id = text("id")?.to_string();
            let location = text("location")?.to_string();
            let created_ms = entry.get("created_ms").and_then(Value::as_i64).unwrap_or(0);
            let Some(Value::Object(record)) = entry.get("record") else {
                return Err("log entry 'put' without a record".into());
            };
            let (_, shard) = self.shard(kind);
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            shard.take(&id);
            let bytes = record_bytes(record);
            let body = Arc::new(Body::of(record).map_err(|e| format!("log entry 'put' {id}: {e:?}"))?);
            // Index keys are recomputed by `reindex` once the kinds' indexing is known.
            let entry = Entry { location: location.into(), created_ms, body, keys: Vec::new(), bytes };
            shard.add(id.into(), entry);
            return Ok(());
        }
        if let Some(kind) = entry.get("del").and_then(Value::as_str) {
            if let Some((_, shard)) = self.existing(kind) {
                shard.write().unwrap_or_else(|p| p.into_inner()).take(text("id")?);
            }
            return Ok(());
        }
        if entry.get("clear").is_some() {
            self.kinds.write().unwrap_or_else(|p| p.into_inner()).clear();
            return Ok(());
        }
        Err(format!("unknown log entry {}", entry.to_string().chars().take(80).collect::<String>()))
    }

    /// Recomputes a kind's index keys (after a replay, which stores none).
    pub fn reindex(&self, kind: &str, indexing: Indexing) {
        let Some((_, shard)) = self.existing(kind) else { return };
        let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
        let ids: Vec<CompactString> = shard.records.keys().cloned().collect();
        for id in ids {
            if let Some(mut entry) = shard.take(&id) {
                entry.keys = (indexing.keys)(&entry.body.fields());
                shard.add(id, entry);
            }
        }
    }

    /// Every entry a snapshot of the store needs, for compacting the log.
    pub fn snapshot_entries(&self) -> Vec<Value> {
        self.every_record(|kind, id, e| put_entry(kind, id, e))
    }

    /// `f` of every record of every kind, one shard locked at a time.
    fn every_record<T>(&self, f: impl Fn(&Arc<str>, &str, &Entry) -> T) -> Vec<T> {
        let kinds: Vec<(Arc<str>, Arc<RwLock<Shard>>)> = {
            let kinds = self.kinds.read().unwrap_or_else(|p| p.into_inner());
            kinds.iter().map(|(k, s)| (k.clone(), s.clone())).collect()
        };
        let mut out = Vec::new();
        for (kind, shard) in kinds {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            out.extend(shard.records.iter().map(|(id, e)| f(&kind, id, e)));
        }
        out
    }
}

async fn durable(pending: Option<Pending>) -> Result<(), RecordError> {
    match pending {
        Some(p) => p.await.map_err(RecordError::Unavailable),
        None => Ok(()),
    }
}

#[async_trait::async_trait]
impl Records for Memory {
    async fn insert(&self, new: NewRecord, indexing: Indexing) -> Result<Stored, RecordError> {
        let (kind, shard) = self.shard(&new.kind);
        let id = new.id.clone();
        let (new, record) = Prepared::new(new, indexing)?;
        let (result, pending) = {
            let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            let entry = shard.insert(&kind, new, self.bounds)?;
            let pending = self.submit(|| put_entry(&kind, &id, &entry));
            (stored(&kind, &id, &entry).with_record(record), pending)
        };
        durable(pending).await?;
        Ok(result)
    }

    async fn get(&self, kind: &str, id: &str) -> Result<Stored, RecordError> {
        let (kind, shard) = self.existing(kind).ok_or(RecordError::NotFound)?;
        let shard = shard.read().unwrap_or_else(|p| p.into_inner());
        shard.records.get(id).map(|e| stored(&kind, id, e)).ok_or(RecordError::NotFound)
    }

    async fn update(
        &self,
        kind: &str,
        id: &str,
        change: Change<'_>,
        indexing: Indexing,
    ) -> Result<(Stored, Stored), RecordError> {
        let (kind, shard) = self.existing(kind).ok_or(RecordError::NotFound)?;
        let (result, pending) = {
            let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            let (before, after, record) = shard.change(&kind, id, change, indexing, self.bounds)?;
            let pending = self.submit(|| put_entry(&kind, id, &after));
            ((stored(&kind, id, &before), stored(&kind, id, &after).with_record(record)), pending)
        };
        durable(pending).await?;
        Ok(result)
    }

    async fn upsert(
        &self,
        new: NewRecord,
        keys: &[String],
        change: Change<'_>,
        indexing: Indexing,
    ) -> Result<(Option<Stored>, Stored), RecordError> {
        let (kind, shard) = self.shard(&new.kind);
        let (result, pending) = {
            let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            match shard.holder(&new.location, keys, None).map(|(id, _)| id) {
                Some(id) => {
                    let (before, after, record) = shard.change(&kind, &id, change, indexing, self.bounds)?;
                    let pending = self.submit(|| put_entry(&kind, &id, &after));
                    ((Some(stored(&kind, &id, &before)), stored(&kind, &id, &after).with_record(record)), pending)
                }
                None => {
                    let id = new.id.clone();
                    let (new, record) = Prepared::new(new, indexing)?;
                    let entry = shard.insert(&kind, new, self.bounds)?;
                    let pending = self.submit(|| put_entry(&kind, &id, &entry));
                    ((None, stored(&kind, &id, &entry).with_record(record)), pending)
                }
            }
        };
        durable(pending).await?;
        Ok(result)
    }

    async fn remove(&self, kind: &str, id: &str) -> Result<Stored, RecordError> {
        let (kind, shard) = self.existing(kind).ok_or(RecordError::NotFound)?;
        let (result, pending) = {
            let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            let entry = shard.take(id).ok_or(RecordError::NotFound)?;
            let pending = self.submit(|| json!({"del": &*kind, "id": id}));
            (stored(&kind, id, &entry), pending)
        };
        durable(pending).await?;
        Ok(result)
    }

    async fn remove_where(&self, kind: &str, location: &str, filter: Filter<'_>) -> Result<usize, RecordError> {
        let Some((kind, shard)) = self.existing(kind) else { return Ok(0) };
        let (count, pending) = {
            let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            let doomed: Vec<CompactString> = match shard.places.get(location) {
                Some(place) => place
                    .order
                    .iter()
                    .filter(|(_, id)| shard.records.get(id).is_some_and(|e| e.passes(filter)))
                    .map(|(_, id)| id.clone())
                    .collect(),
                None => Vec::new(),
            };
            let mut pending = Vec::new();
            for id in &doomed {
                shard.take(id);
                pending.extend(self.submit(|| json!({"del": &*kind, "id": id.as_str()})));
            }
            (doomed.len(), pending)
        };
        for p in pending {
            durable(Some(p)).await?;
        }
        Ok(count)
    }

    async fn find(&self, kind: &str, location: &str, key: &str) -> Result<Option<Stored>, RecordError> {
        let Some((kind, shard)) = self.existing(kind) else { return Ok(None) };
        let shard = shard.read().unwrap_or_else(|p| p.into_inner());
        let found = shard.holder(location, std::slice::from_ref(&key.to_string()), None);
        Ok(found.and_then(|(id, _)| shard.records.get(&id).map(|e| stored(&kind, &id, e))))
    }

    async fn list(&self, query: Query<'_>) -> Result<Listed, RecordError> {
        let empty = Listed { items: Vec::new(), total: 0, more: false };
        let Some((kind, shard)) = self.existing(query.kind) else { return Ok(empty) };
        let shard = shard.read().unwrap_or_else(|p| p.into_inner());
        let Some(place) = shard.places.get(query.location) else { return Ok(empty) };
        let after = query.after.map(|c| (c.created_ms, CompactString::from(c.id)));
        let in_range = |key: &&(i64, CompactString)| match &after {
            Some(a) if query.newest_first => *key < a,
            Some(a) => *key > a,
            None => true,
        };
        let matches = |key: &&(i64, CompactString)| shard.records.get(&key.1).is_some_and(|e| e.passes(query.filter));
        let ordered: Box<dyn Iterator<Item = &(i64, CompactString)>> =
            if query.newest_first { Box::new(place.order.iter().rev()) } else { Box::new(place.order.iter()) };
        let (items, total, more) = super::page(ordered.filter(matches), in_range, query.skip, query.limit);
        let items: Vec<Stored> =
            items.into_iter().filter_map(|(_, id)| shard.records.get(id).map(|e| stored(&kind, id, e))).collect();
        Ok(Listed { items, total, more })
    }

    async fn clear(&self) -> Result<(), RecordError> {
        let pending = {
            let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
            let mut kinds = self.kinds.write().unwrap_or_else(|p| p.into_inner());
            kinds.clear();
            self.submit(|| json!({"clear": true}))
        };
        durable(pending).await
    }

    async fn all(&self) -> Result<Vec<Stored>, RecordError> {
        Ok(self.every_record(stored))
    }
}

#[async_trait::async_trait]
impl Worlds for Memory {
    async fn read(&self) -> Result<Arc<World>, StateError> {
        Ok(self.world_now())
    }

    async fn change(&self, change: &mut (dyn for<'w> FnMut(&'w mut World) + Send)) -> Result<(), StateError> {
        let pending = {
            let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
            let mut slot = self.world.write().unwrap_or_else(|p| p.into_inner());
            let mut next = (**slot).clone();
            change(&mut next);
            let pending = self.submit(|| json!({"world": next}));
            *slot = Arc::new(next);
            pending
        };
        durable(pending).await.map_err(|e| match e {
            RecordError::Unavailable(message) => StateError(message),
            other => StateError(format!("{other:?}")),
        })
    }
}
