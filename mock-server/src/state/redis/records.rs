//! Records of every kind on the shared store. An insert checks the id, the
//! unique index keys and the location's bounds in one script; an update is
//! computed here from the version read and stored by a script only if that
//! version is still the stored one (else read again and retry), so two
//! replicas changing one contact never lose a change; a removal drops the
//! record, its place in the list order and its index keys at once.
//!
//! Lists read the location's order (a sorted set: creation time, then id),
//! then the records, and filter here: the filter is code, not a query.

use std::sync::Arc;

use redis::Script;
use serde_json::Value;

use super::{bad_data, down, Store};
use crate::state::memory::record_bytes;
use crate::state::{Body, Bounds, Change, Filter, Indexing, Listed, NewRecord, Query, RecordError, Records, Stored};

/// How often an update is tried again when another replica changed the
/// record in between.
const TRIES: usize = 64;

pub struct SharedRecords {
    store: Arc<Store>,
    bounds: Bounds,
    insert: Script,
    update: Script,
    remove: Script,
    find: Script,
}

impl SharedRecords {
    pub fn new(store: Arc<Store>, bounds: Bounds) -> Self {
        Self {
            store,
            bounds,
            insert: Script::new(INSERT),
            update: Script::new(UPDATE),
            remove: Script::new(REMOVE),
            find: Script::new(FIND),
        }
    }

    fn rec(&self, kind: &str, id: &str) -> String {
        self.store.key(&format!("rec:{kind}:{id}"))
    }

    fn order(&self, kind: &str, location: &str) -> String {
        self.store.key(&format!("o:{kind}:{location}"))
    }

    fn bytes(&self, kind: &str, location: &str) -> String {
        self.store.key(&format!("b:{kind}:{location}"))
    }

    /// The prefix of a location's index sets; a key's set is this plus the key.
    fn index(&self, kind: &str, location: &str) -> String {
        self.store.key(&format!("i:{kind}:{location}:"))
    }

    fn unavailable(e: super::StateError) -> RecordError {
        RecordError::Unavailable(e.0)
    }

    /// A record as stored: (version, record JSON, location, created ms).
    async fn read(&self, kind: &str, id: &str) -> Result<Option<(String, Stored)>, RecordError> {
        let got: (Option<String>, Option<String>, Option<String>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.rec(kind, id))
            .arg("v")
            .arg("r")
            .arg("l")
            .arg("c")
            .query_async(&mut self.store.conn())
            .await
            .map_err(|e| Self::unavailable(down(e)))?;
        match got {
            (Some(v), Some(r), Some(l), Some(c)) => Ok(Some((v, stored(kind, id, l, c, &r)?))),
            _ => Ok(None),
        }
    }

    async fn put_new(&self, new: NewRecord, indexing: Indexing) -> Result<Stored, RecordError> {
        let keys = (indexing.keys)(&new.record);
        let bytes = record_bytes(&new.record);
        let body = Body::of(&new.record)?;
        let answer: Vec<String> = self
            .insert
            .key(self.rec(&new.kind, &new.id))
            .key(self.order(&new.kind, &new.location))
            .key(self.bytes(&new.kind, &new.location))
            .key(self.store.key("kinds"))
            .arg(&new.id)
            .arg(&new.location)
            .arg(new.created_ms)
            .arg(body.text())
            .arg(bytes)
            .arg(if indexing.unique { "1" } else { "0" })
            .arg(self.bounds.max_records)
            .arg(self.bounds.max_bytes)
            .arg(&*new.kind)
            .arg(self.index(&new.kind, &new.location))
            .arg(keys_json(&keys))
            .invoke_async(&mut self.store.conn())
            .await
            .map_err(|e| Self::unavailable(down(e)))?;
        refused(&answer, &new.location, &new.kind, self.bounds)?;
        let stored = Stored::new(new.kind, new.id, new.location, new.created_ms, Arc::new(body));
        Ok(stored.with_record(Arc::new(Value::Object(new.record))))
    }

    /// Changes record `id`, retrying while other replicas change it first.
    async fn change(
        &self,
        kind: &str,
        id: &str,
        change: Change<'_>,
        indexing: Indexing,
    ) -> Result<(Stored, Stored), RecordError> {
        for _ in 0..TRIES {
            let (version, before) = self.read(kind, id).await?.ok_or(RecordError::NotFound)?;
            let mut record = before.body.fields();
            change(&mut record).map_err(RecordError::Refused)?;
            let keys = (indexing.keys)(&record);
            let body = Body::of(&record)?;
            let answer: Vec<String> = self
                .update
                .key(self.rec(kind, id))
                .key(self.bytes(kind, &before.location))
                .arg(id)
                .arg(&version)
                .arg(body.text())
                .arg(record_bytes(&record))
                .arg(if indexing.unique { "1" } else { "0" })
                .arg(self.bounds.max_bytes)
                .arg(self.index(kind, &before.location))
                .arg(keys_json(&keys))
                .invoke_async(&mut self.store.conn())
                .await
                .map_err(|e| Self::unavailable(down(e)))?;
            match answer.first().map(String::as_str) {
                Some("retry") => continue,
                Some("gone") => return Err(RecordError::NotFound),
                _ => refused(&answer, &before.location, kind, self.bounds)?,
            }
            let after = Stored::new(
                before.kind.clone(),
                before.id.clone(),
                before.location.clone(),
                before.created_ms,
                Arc::new(body),
            )
            .with_record(Arc::new(Value::Object(record)));
            return Ok((before, after));
        }
        Err(RecordError::Unavailable(format!("{kind} {id} kept changing under this change ({TRIES} tries)")))
    }

    /// Every record of one kind and location, oldest first.
    async fn everything(&self, kind: &str, location: &str) -> Result<Vec<Stored>, RecordError> {
        let mut conn = self.store.conn();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.order(kind, location))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(|e| Self::unavailable(down(e)))?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(512) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HMGET").arg(self.rec(kind, id)).arg("r").arg("c");
            }
            let got: Vec<(Option<String>, Option<i64>)> =
                pipe.query_async(&mut conn).await.map_err(|e| Self::unavailable(down(e)))?;
            for (id, (r, c)) in chunk.iter().zip(got) {
                // Removed between the two reads: not listed.
                if let (Some(r), Some(c)) = (r, c) {
                    out.push(stored(kind, id, location.to_string(), c, &r)?);
                }
            }
        }
        Ok(out)
    }

    async fn remove_one(&self, kind: &str, id: &str) -> Result<Option<Stored>, RecordError> {
        let got: Option<(String, String, i64)> = self
            .remove
            .key(self.rec(kind, id))
            .arg(id)
            .arg(self.store.key(&format!("o:{kind}:")))
            .arg(self.store.key(&format!("b:{kind}:")))
            .arg(self.store.key(&format!("i:{kind}:")))
            .invoke_async(&mut self.store.conn())
            .await
            .map_err(|e| Self::unavailable(down(e)))?;
        match got {
            Some((r, l, c)) => Ok(Some(stored(kind, id, l, c, &r)?)),
            None => Ok(None),
        }
    }

    /// The record of `location` holding the first of `keys` any record holds.
    async fn holder(&self, kind: &str, location: &str, keys: &[String]) -> Result<Option<Stored>, RecordError> {
        let got: Option<(String, String, i64)> = self
            .find
            .key(self.store.key("kinds"))
            .arg(self.index(kind, location))
            .arg(self.store.key(&format!("rec:{kind}:")))
            .arg(keys)
            .invoke_async(&mut self.store.conn())
            .await
            .map_err(|e| Self::unavailable(down(e)))?;
        match got {
            Some((id, r, c)) => Ok(Some(stored(kind, &id, location.to_string(), c, &r)?)),
            None => Ok(None),
        }
    }
}

fn keys_json(keys: &[String]) -> String {
    serde_json::to_string(keys).unwrap_or_else(|_| "[]".into())
}

fn stored(kind: &str, id: &str, location: String, created_ms: i64, json: &str) -> Result<Stored, RecordError> {
    let body = Body::from_text(json.to_string()).map_err(|e| RecordError::Unavailable(bad_data("record", e).0))?;
    Ok(Stored::new(Arc::from(kind), id.to_string(), location, created_ms, Arc::new(body)))
}

/// A script's refusal as the store's error; `Ok` for `ok`.
fn refused(answer: &[String], location: &str, kind: &str, bounds: Bounds) -> Result<(), RecordError> {
    match answer {
        [ok] if ok == "ok" => Ok(()),
        [taken] if taken == "taken" => Err(RecordError::IdTaken),
        [dup, id, key] if dup == "dup" => Err(RecordError::Duplicate { id: id.clone(), key: key.clone() }),
        [full, what] if full == "full" => Err(RecordError::Full {
            location: location.to_string(),
            kind: kind.to_string(),
            what: if what == "records" {
                format!("{} records", bounds.max_records)
            } else {
                format!("{} bytes", bounds.max_bytes)
            },
        }),
        other => Err(RecordError::Unavailable(format!("unexpected answer from the shared store: {other:?}"))),
    }
}

#[async_trait::async_trait]
impl Records for SharedRecords {
    async fn insert(&self, new: NewRecord, indexing: Indexing) -> Result<Stored, RecordError> {
        self.put_new(new, indexing).await
    }

    async fn get(&self, kind: &str, id: &str) -> Result<Stored, RecordError> {
        self.read(kind, id).await?.map(|(_, s)| s).ok_or(RecordError::NotFound)
    }

    async fn update(
        &self,
        kind: &str,
        id: &str,
        change: Change<'_>,
        indexing: Indexing,
    ) -> Result<(Stored, Stored), RecordError> {
        self.change(kind, id, change, indexing).await
    }

    async fn upsert(
        &self,
        new: NewRecord,
        keys: &[String],
        change: Change<'_>,
        indexing: Indexing,
    ) -> Result<(Option<Stored>, Stored), RecordError> {
        for _ in 0..TRIES {
            if let Some(holder) = self.holder(&new.kind, &new.location, keys).await? {
                match self.change(&new.kind, &holder.id, change, indexing).await {
                    // Removed in between: look again.
                    Err(RecordError::NotFound) => continue,
                    other => return other.map(|(before, after)| (Some(before), after)),
                }
            }
            match self.put_new(new.clone(), indexing).await {
                // Another replica inserted a holder in between: change it instead.
                Err(RecordError::Duplicate { .. }) if !keys.is_empty() => continue,
                other => return other.map(|after| (None, after)),
            }
        }
        Err(RecordError::Unavailable(format!("{} kept changing under this upsert ({TRIES} tries)", new.kind)))
    }

    async fn remove(&self, kind: &str, id: &str) -> Result<Stored, RecordError> {
        self.remove_one(kind, id).await?.ok_or(RecordError::NotFound)
    }

    async fn remove_where(&self, kind: &str, location: &str, filter: Filter<'_>) -> Result<usize, RecordError> {
        let mut removed = 0;
        for record in self.everything(kind, location).await? {
            if filter(record.fields()) && self.remove_one(kind, &record.id).await?.is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn find(&self, kind: &str, location: &str, key: &str) -> Result<Option<Stored>, RecordError> {
        self.holder(kind, location, std::slice::from_ref(&key.to_string())).await
    }

    async fn list(&self, query: Query<'_>) -> Result<Listed, RecordError> {
        let mut all = self.everything(query.kind, query.location).await?;
        if query.newest_first {
            all.reverse();
        }
        let after = query.after.clone();
        let in_range = |s: &Stored| match &after {
            Some(a) if query.newest_first => s.cursor() < *a,
            Some(a) => s.cursor() > *a,
            None => true,
        };
        let matches = all.into_iter().filter(|s| (query.filter)(s.fields()));
        let (items, total, more) = crate::state::page(matches, in_range, query.skip, query.limit);
        Ok(Listed { items, total, more })
    }

    async fn clear(&self) -> Result<(), RecordError> {
        for pattern in ["rec:*", "o:*", "i:*", "b:*", "kinds"] {
            self.store.delete_matching(pattern).await.map_err(Self::unavailable)?;
        }
        Ok(())
    }

    async fn all(&self) -> Result<Vec<Stored>, RecordError> {
        let mut conn = self.store.conn();
        let kinds: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.store.key("kinds"))
            .query_async(&mut conn)
            .await
            .map_err(|e| Self::unavailable(down(e)))?;
        let mut out = Vec::new();
        for kind in kinds {
            let mut cursor: u64 = 0;
            let pattern = format!("{}*", self.store.key(&format!("o:{}:", glob_escape(&kind))));
            loop {
                let (next, orders): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| Self::unavailable(down(e)))?;
                let prefix = self.order(&kind, "");
                for order in orders {
                    if let Some(location) = order.strip_prefix(&prefix) {
                        out.extend(self.everything(&kind, location).await?);
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(out)
    }
}

/// A kind as a literal inside a SCAN pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// KEYS: the record, the location's order, its bytes, kinds. ARGV: id,
/// location, created ms, record JSON, bytes, unique, max records, max bytes,
/// kind, the location's index prefix, index keys (JSON).
const INSERT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {'taken'} end
local keys = cjson.decode(ARGV[11])
if ARGV[6] == '1' then
  for _, k in ipairs(keys) do
    local ids = redis.call('SMEMBERS', ARGV[10] .. k)
    if #ids > 0 then
      table.sort(ids)
      return {'dup', ids[1], k}
    end
  end
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[7]) then return {'full', 'records'} end
local held = tonumber(redis.call('GET', KEYS[3]) or '0')
if held + tonumber(ARGV[5]) > tonumber(ARGV[8]) then return {'full', 'bytes'} end
redis.call('HSET', KEYS[1], 'r', ARGV[4], 'l', ARGV[2], 'c', ARGV[3], 'b', ARGV[5], 'k', ARGV[11], 'v', '1')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
for _, k in ipairs(keys) do redis.call('SADD', ARGV[10] .. k, ARGV[1]) end
redis.call('INCRBY', KEYS[3], ARGV[5])
redis.call('SADD', KEYS[4], ARGV[9])
return {'ok'}
"#;

/// KEYS: the record, its location's bytes. ARGV: id, the version the change
/// was computed from, record JSON, bytes, unique, max bytes, the location's
/// index prefix, index keys (JSON).
const UPDATE: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'v', 'k', 'b')
if not cur[1] then return {'gone'} end
if cur[1] ~= ARGV[2] then return {'retry'} end
local keys = cjson.decode(ARGV[8])
if ARGV[5] == '1' then
  for _, k in ipairs(keys) do
    local ids = redis.call('SMEMBERS', ARGV[7] .. k)
    table.sort(ids)
    for _, other in ipairs(ids) do
      if other ~= ARGV[1] then return {'dup', other, k} end
    end
  end
end
local old_b, new_b = tonumber(cur[3]), tonumber(ARGV[4])
if new_b > old_b then
  local held = tonumber(redis.call('GET', KEYS[2]) or '0')
  if held - math.min(old_b, held) + new_b > tonumber(ARGV[6]) then return {'full', 'bytes'} end
end
for _, k in ipairs(cjson.decode(cur[2])) do redis.call('SREM', ARGV[7] .. k, ARGV[1]) end
for _, k in ipairs(keys) do redis.call('SADD', ARGV[7] .. k, ARGV[1]) end
redis.call('HSET', KEYS[1], 'r', ARGV[3], 'b', ARGV[4], 'k', ARGV[8], 'v', string.format('%d', tonumber(cur[1]) + 1))
redis.call('INCRBY', KEYS[2], new_b - old_b)
return {'ok'}
"#;

/// KEYS: the record. ARGV: id, then the kind's prefixes of orders, bytes and
/// index sets (the location is read from the record). Answers {record JSON,
/// location, created ms}, or nil.
const REMOVE: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'r', 'l', 'c', 'k', 'b')
if not cur[1] then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[2] .. cur[2], ARGV[1])
redis.call('DECRBY', ARGV[3] .. cur[2], cur[5])
for _, k in ipairs(cjson.decode(cur[4])) do redis.call('SREM', ARGV[4] .. cur[2] .. ':' .. k, ARGV[1]) end
return {cur[1], cur[2], tonumber(cur[3])}
"#;

/// KEYS: kinds (unused; a script names one key). ARGV: the location's index
/// prefix, the kind's record prefix, then index keys in order of
/// preference. Answers {id, record JSON, created ms} of the first holder
/// (the smallest id of the first key held), or nil.
const FIND: &str = r#"
for i = 3, #ARGV do
  local ids = redis.call('SMEMBERS', ARGV[1] .. ARGV[i])
  if #ids > 0 then
    table.sort(ids)
    local got = redis.call('HMGET', ARGV[2] .. ids[1], 'r', 'c')
    if got[1] then return {ids[1], got[1], tonumber(got[2])} end
  end
end
return false
"#;
