//! `--state FILE`: the world (companies, locations, private integrations and
//! their token digests, OAuth apps, custom limits) and every record, kept in
//! an append-only log ([`crate::state::log`]) that is fsync'd before an
//! answer says a write happened (group commit: one fsync for every write
//! waiting at that moment).
//!
//! Why a log and not an embedded database: the mock keeps its state in
//! memory anyway, so all it needs on disk is the order of changes; a log of
//! JSON lines replays into the memory backend, stays readable with `jq`, and
//! a kill mid-write leaves at most a torn last line, which is dropped.
//!
//! Entries: `{"world": …}` (the whole world after a change; the last one
//! wins), `{"put": KIND, "id", "location", "created_ms", "record"}`,
//! `{"del": KIND, "id"}` and `{"clear": true}`. At start the log is
//! replayed and rewritten as one snapshot (world + a `put` per record).
//! Full tokens are never written: the world holds only their digests.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::state::log::{self, Log, Opened};
use crate::state::memory::{Durable, Pending};
use crate::world::World;

/// What a state file held.
pub struct Restored {
    pub world: Option<World>,
    /// Record entries, oldest first, for [`crate::state::memory::Memory::replay`].
    pub entries: Vec<Value>,
}

/// Opens (or creates) the log at `path`; an old single-snapshot state file
/// is migrated into a log in place.
pub fn open(path: &Path) -> Result<(Log, Restored), String> {
    match log::open_blocking(path).map_err(|e| e.to_string())? {
        Opened::Log { log, entries } => {
            let mut world = None;
            let mut records = Vec::new();
            for entry in entries {
                match entry.get("world") {
                    Some(w) => {
                        let mut w: World = serde_json::from_value(w.clone())
                            .map_err(|e| format!("{}: a world entry does not read back: {e}", path.display()))?;
                        w.reindex();
                        world = Some(w);
                    }
                    None => records.push(entry),
                }
            }
            Ok((log, Restored { world, entries: records }))
        }
        Opened::Legacy { snapshot } => {
            let restored = from_legacy(path, &snapshot)?;
            let mut entries: Vec<Value> = restored.world.iter().map(world_entry).collect();
            entries.extend(restored.entries.iter().cloned());
            let log = log::create_blocking(path, entries).map_err(|e| e.to_string())?;
            Ok((log, restored))
        }
    }
}

pub fn world_entry(world: &World) -> Value {
    json!({"world": world})
}

/// Turns the old snapshot format (`{"format":1, world, store}`) into entries.
fn from_legacy(path: &Path, snapshot: &Value) -> Result<Restored, String> {
    let mut world: World = serde_json::from_value(snapshot.get("world").cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("{}: the old state file's world does not read back: {e}", path.display()))?;
    world.reindex();
    let mut entries = Vec::new();
    let locations = snapshot.pointer("/store/locations").and_then(Value::as_object);
    for (location, held) in locations.into_iter().flatten() {
        let order = |key: &str| -> std::collections::HashMap<String, i64> {
            held.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|pair| Some((pair.get(1)?.as_str()?.to_string(), pair.get(0)?.as_i64()?)))
                .collect()
        };
        for (field, kind, order_key) in [
            ("contacts", "/contacts", "contact_order"),
            ("opportunities", "/opportunities", "opportunity_order"),
            ("notes", "/contacts/{}/notes", ""),
        ] {
            let times = order(order_key);
            for (id, record) in held.get(field).and_then(Value::as_object).into_iter().flatten() {
                entries.push(json!({
                    "put": kind, "id": id, "location": location,
                    "created_ms": times.get(id).copied().unwrap_or(0), "record": record,
                }));
            }
        }
    }
    Ok(Restored { world: Some(world), entries })
}

/// The log as the memory backend's way to disk.
pub struct LogSink(pub Arc<Log>);

impl Durable for LogSink {
    fn submit(&self, entry: Value) -> Pending {
        let done = self.0.append(vec![entry]);
        Box::pin(async move { done.await.map_err(|e| e.to_string()) })
    }
}
