//! The shared store (issue 12): every trait of the state interface on one
//! Redis, so that several ghl-mock processes behind one address act as one
//! HighLevel. `serve --store redis://HOST:PORT/DB [--world NAME]`.
//!
//! Each decision that must be exact across replicas is one Lua script, which
//! Redis runs atomically: a rate decision (and the injected 429 it may
//! spend), an insert that checks its unique keys and bounds, an update that
//! applies only to the version it was computed from, a single-use code or
//! refresh token, a rule's use, a clock change.
//!
//! What every request needs to be current (the world, the injected 429s, the
//! answer rules, the clock) is fetched by one script at the start of the
//! request ([`Store::sync`]), which sends a part back only when its version
//! moved: one round trip when nothing changed. A change made through any
//! replica is therefore seen by every other replica's next request.
//!
//! # Key layout
//!
//! Every key starts with `ghl-mock:{world}:` (`--world`, default `default`),
//! so that two teams, or two CI jobs, can share one Redis without meeting.
//!
//! | key | type | what |
//! |---|---|---|
//! | `epoch` | hash | versions `world`, `inj`, `rules`; the clock: `frozen` (`1`/`0`), `ms` (the time when frozen, else the offset from the system time) |
//! | `world` | string | the world as JSON: companies, locations, private integrations (token digests only), rotation deadlines, OAuth apps, installs, custom limits |
//! | `rl:{key}` / `rd:{key}` | sorted set / hash | a rate key's requests in the burst window (by time) / its day and count (`{key}` is `res:{id}` or `app:{client}:{id}`); expire 2 days after the last use |
//! | `inj`, `inj:def`, `inj:seq` | hash, hash, counter | injected 429s: uses left and target by id |
//! | `rules`, `rules:left`, `rules:seq` | hash, hash, counter | answer rules by id, and the uses left of those with a count |
//! | `code:{code}` | string | an OAuth code's grant; expires with the code (10 min of real time, checked on the mock's clock too) |
//! | `refresh:{jti}` | hash | a refresh token's grant and whether it was used; expires after a year |
//! | `jwt-key` | string | the RSA key every replica signs and verifies access tokens with |
//! | `rec:{kind}:{id}` | hash | a record (`r`, JSON), its location, creation time, index keys, bytes and version |
//! | `o:{kind}:{location}` | sorted set | the list order: creation time, then id |
//! | `i:{kind}:{location}:{key}` | set | the records holding an index key (duplicate email or phone) |
//! | `b:{kind}:{location}` | counter | bytes held, for `--max-record-bytes` |
//! | `kinds` | set | every kind that holds records |
//! | `journal`, `journal:seq`, `journal:bytes`, `journal:dropped` | stream, counters | the request journal of every replica, bounded in entries and bytes |
//!
//! | `wh:…` | hashes, lists, sorted sets | the webhook outbox and its signing keys (see [`deliveries`]) |
//!
//! Scripts name keys they derive (a record's location) themselves, so the
//! store needs one Redis, not a Redis Cluster.

pub mod counters;
pub mod deliveries;
pub mod grants;
mod journal;
pub mod records;
pub mod rules;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::{Clocks, StateError, Worlds};
use crate::clock::LocalTime;
use crate::limits::Target;
use crate::respond::control::Rule;
use crate::world::World;

pub use journal::JournalSink;

/// The state of one mock world on one Redis.
pub struct Store {
    conn: ConnectionManager,
    prefix: String,
    world_name: String,
    cache: Mutex<Cache>,
    time: Arc<LocalTime>,
    scripts: Scripts,
}

/// What a replica keeps of the shared state between requests, with the
/// version it was read at.
struct Cache {
    /// The store holds no world (Redis lost its data, or was flushed).
    world_missing: bool,
    world_version: String,
    world: Arc<World>,
    injections_version: String,
    injections: Arc<Vec<(u64, Target)>>,
    rules_version: String,
    rules: Arc<Vec<Rule>>,
}

struct Scripts {
    sync: Script,
    init: Script,
    world_cas: Script,
    clock: Script,
}

/// Why `--store` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("--store {0}: {1}")]
    Url(String, String),
    #[error("--world {0:?}: use letters, digits, '-', '_' or '.' (at most 64)")]
    World(String),
    #[error("cannot reach the shared store at {0}: {1}")]
    Unreachable(String, String),
}

/// A store address fit for a message: without a password.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn down(e: redis::RedisError) -> StateError {
    StateError(format!("the shared store (Redis) did not answer: {e}"))
}

fn bad_data(what: &str, e: impl std::fmt::Display) -> StateError {
    StateError(format!("the shared store holds a malformed {what}: {e}"))
}

impl Store {
    /// Connects to `url`; fails at once (with a clear message) when Redis
    /// cannot be reached. `time` is this replica's clock, which the store
    /// keeps equal to the shared one.
    pub async fn open(url: &str, world: &str, time: Arc<LocalTime>) -> Result<Arc<Self>, OpenError> {
        let shown = redacted(url);
        if world.is_empty()
            || world.len() > 64
            || !world.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(OpenError::World(world.to_string()));
        }
        let client = redis::Client::open(url).map_err(|e| OpenError::Url(shown.clone(), e.to_string()))?;
        // Fail fast while Redis is away (each request answers 503 and the
        // manager reconnects in the background), and never wait long.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200));
        let mut conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|_| OpenError::Unreachable(shown.clone(), "no answer within 5 s".into()))?
            .map_err(|e| OpenError::Unreachable(shown.clone(), e.to_string()))?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| OpenError::Unreachable(shown.clone(), e.to_string()))?;
        if pong != "PONG" {
            return Err(OpenError::Unreachable(shown, format!("PING answered {pong:?}")));
        }
        Ok(Arc::new(Self {
            conn,
            prefix: format!("ghl-mock:{world}:"),
            world_name: world.to_string(),
            cache: Mutex::new(Cache {
                world_missing: false,
                world_version: String::new(),
                world: Arc::new(World::default()),
                injections_version: String::new(),
                injections: Arc::new(Vec::new()),
                rules_version: String::new(),
                rules: Arc::new(Vec::new()),
            }),
            time,
            scripts: Scripts {
                sync: Script::new(SYNC),
                init: Script::new(INIT),
                world_cas: Script::new(WORLD_CAS),
                clock: Script::new(CLOCK),
            },
        }))
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// A connection handle (cheap: the manager multiplexes one connection).
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `world` the shared world unless one is there already (another
    /// replica started first, or an earlier run), and this replica's clock
    /// the shared clock unless one is set. Answers whether this call made
    /// the world (so that the caller seeds the fixture's records).
    pub async fn init(&self, world: &World) -> Result<bool, StateError> {
        let json = serde_json::to_string(world).map_err(|e| StateError(e.to_string()))?;
        let (frozen, ms) = self.time.raw();
        let made: i64 = self
            .scripts
            .init
            .key(self.key("epoch"))
            .key(self.key("world"))
            .arg(json)
            .arg(if frozen { "1" } else { "0" })
            .arg(ms)
            .invoke_async(&mut self.conn())
            .await
            .map_err(down)?;
        self.sync().await?;
        Ok(made == 1)
    }

    /// Brings the world, the injected 429s, the rules and the clock up to
    /// date: one round trip, which carries a part only when it changed.
    pub async fn sync(&self) -> Result<(), StateError> {
        let (wv, iv, rv) = {
            let c = self.cache();
            (c.world_version.clone(), c.injections_version.clone(), c.rules_version.clone())
        };
        // Nearly always nothing moved but the clock: one plain read, no script.
        type Epoch = (Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);
        let (world_v, inj_v, rules_v, frozen, ms): Epoch = redis::cmd("HMGET")
            .arg(self.key("epoch"))
            .arg(&["world", "inj", "rules", "frozen", "ms"])
            .query_async(&mut self.conn())
            .await
            .map_err(down)?;
        let version = |v: Option<String>| v.unwrap_or_else(|| "0".into());
        let (world_v, inj_v, rules_v) = (version(world_v), version(inj_v), version(rules_v));
        if world_v == wv && inj_v == iv && rules_v == rv {
            if let (Some(ms), Some(frozen)) = (ms.and_then(|m| m.parse::<i64>().ok()), frozen) {
                self.time.load(frozen == "1", ms);
            }
            self.cache().world_missing = world_v == "0";
            return Ok(());
        }
        type Synced = (String, String, String, String, String, Option<String>, Vec<String>, Vec<String>, Vec<String>);
        let (world_v, inj_v, rules_v, frozen, ms, world, inj, rules, rules_left): Synced = self
            .scripts
            .sync
            .key(self.key("epoch"))
            .key(self.key("world"))
            .key(self.key("inj:def"))
            .key(self.key("rules"))
            .key(self.key("rules:left"))
            .arg(&wv)
            .arg(&iv)
            .arg(&rv)
            .invoke_async(&mut self.conn())
            .await
            .map_err(down)?;
        if let Ok(ms) = ms.parse::<i64>() {
            self.time.load(frozen == "1", ms);
        }
        let world = match (world_v != wv, world) {
            (true, Some(json)) => {
                let mut w: World = serde_json::from_str(&json).map_err(|e| bad_data("world", e))?;
                w.reindex();
                Some(Arc::new(w))
            }
            (true, None) => Some(Arc::new(World::default())),
            (false, _) => None,
        };
        let injections = (inj_v != iv).then(|| Arc::new(counters::parse_injections(&inj)));
        let rules = (rules_v != rv).then(|| Arc::new(rules::parse_rules(&rules, &rules_left)));
        let mut c = self.cache();
        c.world_missing = world_v == "0";
        if let Some(world) = world {
            c.world = world;
            c.world_version = world_v;
        }
        if let Some(injections) = injections {
            c.injections = injections;
            c.injections_version = inj_v;
        }
        if let Some(rules) = rules {
            c.rules = rules;
            c.rules_version = rules_v;
        }
        Ok(())
    }

    /// The world as this replica last read it (start-up, the tokens file).
    pub fn world_now(&self) -> Arc<World> {
        self.cache().world.clone()
    }

    fn cached_injections(&self) -> Arc<Vec<(u64, Target)>> {
        self.cache().injections.clone()
    }

    fn cached_rules(&self) -> Arc<Vec<Rule>> {
        self.cache().rules.clone()
    }
}

#[async_trait::async_trait]
impl Worlds for Store {
    async fn read(&self) -> Result<Arc<World>, StateError> {
        self.sync().await?;
        if self.cache().world_missing {
            return Err(StateError(format!(
                "the shared store holds no world \"{}\": Redis lost its data or was flushed (give Redis \
                 persistence, or POST /__admin/reset to build the world again from the fixture)",
                self.world_name
            )));
        }
        Ok(self.world_now())
    }

    async fn change(&self, change: &mut (dyn for<'w> FnMut(&'w mut World) + Send)) -> Result<(), StateError> {
        // Optimistic: apply the change to the world as read, and store it only
        // if no replica stored another in between; else read again and retry.
        for _ in 0..64 {
            self.sync().await?;
            let (version, world) = {
                let c = self.cache();
                (c.world_version.clone(), c.world.clone())
            };
            let mut next = (*world).clone();
            change(&mut next);
            let json = serde_json::to_string(&next).map_err(|e| StateError(e.to_string()))?;
            let stored: i64 = self
                .scripts
                .world_cas
                .key(self.key("epoch"))
                .key(self.key("world"))
                .arg(&version)
                .arg(json)
                .invoke_async(&mut self.conn())
                .await
                .map_err(down)?;
            if stored > 0 {
                let mut c = self.cache();
                c.world = Arc::new(next);
                c.world_version = stored.to_string();
                return Ok(());
            }
        }
        Err(StateError("the world kept changing under this change (64 tries); try again".into()))
    }
}

/// Lua numbers are doubles: times and offsets stay exact below 2^52 ms.
const CLOCK_MAX_MS: i64 = 1 << 52;

#[async_trait::async_trait]
impl Clocks for Store {
    async fn advance(&self, ms: i64) -> Result<(), StateError> {
        self.clock_script("advance", ms.clamp(0, CLOCK_MAX_MS).to_string(), "").await
    }

    async fn set(&self, frozen: Option<bool>, at_ms: Option<i64>) -> Result<(), StateError> {
        let at = at_ms.map(|a| a.clamp(-CLOCK_MAX_MS, CLOCK_MAX_MS).to_string()).unwrap_or_default();
        let frozen = match frozen {
            Some(true) => "1",
            Some(false) => "0",
            None => "",
        };
        self.clock_script("set", at, frozen).await
    }
}

/// `HGETALL` of a hash of counts (id, n, …) as a map; malformed pairs are left out.
fn counts(flat: &[String]) -> std::collections::HashMap<&str, u32> {
    flat.chunks(2)
        .filter_map(|pair| match pair {
            [id, n] => Some((id.as_str(), n.parse().ok()?)),
            _ => None,
        })
        .collect()
}

impl Store {
    async fn clock_script(&self, op: &str, ms: String, frozen: &str) -> Result<(), StateError> {
        let local = self.time.raw();
        let (frozen, ms): (String, String) = self
            .scripts
            .clock
            .key(self.key("epoch"))
            .arg(op)
            .arg(ms)
            .arg(frozen)
            .arg(crate::clock::system_now_ms())
            .arg(u8::from(local.0))
            .arg(local.1)
            .invoke_async(&mut self.conn())
            .await
            .map_err(down)?;
        let ms = ms.parse::<i64>().map_err(|e| bad_data("clock", e))?;
        self.time.load(frozen == "1", ms);
        Ok(())
    }

    /// Deletes `keys` (suffixes) and moves the epoch's `version`, so that
    /// every replica reads that part again.
    async fn drop_and_bump(&self, keys: &[&str], version: &str) -> Result<(), StateError> {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL");
        for k in keys {
            pipe.arg(self.key(k));
        }
        pipe.ignore().cmd("HINCRBY").arg(self.key("epoch")).arg(version).arg(1).ignore();
        pipe.query_async::<()>(&mut self.conn()).await.map_err(down)
    }

    /// Removes entry `id` of a hash of definitions and of its hash of uses
    /// left (suffixes), moving the epoch's `version` if it was there.
    async fn remove_by_id(&self, left: &str, defs: &str, id: u64, version: &str) -> Result<bool, StateError> {
        let removed: i64 = Script::new(counters::REMOVE)
            .key(self.key(left))
            .key(self.key(defs))
            .key(self.key("epoch"))
            .arg(id)
            .arg(version)
            .invoke_async(&mut self.conn())
            .await
            .map_err(down)?;
        Ok(removed == 1)
    }

    /// The value under `suffix`, made by `make` and stored by the first
    /// replica that asks (set-if-absent), the same for every replica after.
    async fn set_once(
        &self,
        suffix: &str,
        make: &(dyn Fn() -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<Vec<u8>, StateError> {
        let key = self.key(suffix);
        let mut conn = self.conn();
        let found: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.map_err(down)?;
        if let Some(value) = found {
            return Ok(value);
        }
        // Two replicas starting at once both make one; the first stored wins.
        let mine = make().map_err(StateError)?;
        let _: Option<String> =
            redis::cmd("SET").arg(&key).arg(&mine).arg("NX").query_async(&mut conn).await.map_err(down)?;
        let stored: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.map_err(down)?;
        stored.ok_or_else(|| StateError(format!("the shared {suffix} vanished while it was stored")))
    }

    /// Two hashes (suffixes), each as `HGETALL` flattens it, in one round trip.
    async fn two_hashes(&self, first: &str, second: &str) -> Result<(Vec<String>, Vec<String>), StateError> {
        redis::pipe()
            .cmd("HGETALL")
            .arg(self.key(first))
            .cmd("HGETALL")
            .arg(self.key(second))
            .query_async(&mut self.conn())
            .await
            .map_err(down)
    }

    /// Deletes every key matching `pattern` (under this world's prefix).
    async fn delete_matching(&self, pattern: &str) -> Result<(), StateError> {
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}{pattern}", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(down)?;
            if !keys.is_empty() {
                redis::cmd("UNLINK").arg(&keys).query_async::<()>(&mut conn).await.map_err(down)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// KEYS: epoch, world, inj:def, rules, rules:left. ARGV: the cached
/// versions of the world, the injections and the rules. Answers the
/// versions, the clock, and each part whose version moved.
const SYNC: &str = r#"
local e = redis.call('HMGET', KEYS[1], 'world', 'inj', 'rules', 'frozen', 'ms')
local wv, iv, rv = e[1] or '0', e[2] or '0', e[3] or '0'
local world, inj, rules, left = false, {}, {}, {}
if wv ~= ARGV[1] then world = redis.call('GET', KEYS[2]) end
if iv ~= ARGV[2] then inj = redis.call('HGETALL', KEYS[3]) end
if rv ~= ARGV[3] then
  rules = redis.call('HGETALL', KEYS[4])
  left = redis.call('HGETALL', KEYS[5])
end
return {wv, iv, rv, e[4] or '', e[5] or '', world, inj, rules, left}
"#;

/// KEYS: epoch, world. ARGV: world JSON, frozen, ms. Sets the clock and the
/// world where none is set; answers 1 when the world was made.
const INIT: &str = r#"
redis.call('HSETNX', KEYS[1], 'frozen', ARGV[2])
redis.call('HSETNX', KEYS[1], 'ms', ARGV[3])
if redis.call('HEXISTS', KEYS[1], 'world') == 1 and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'world', 1)
return 1
"#;

/// KEYS: epoch, world. ARGV: the version the change was computed from, the
/// new world. Answers the new version, or 0 when another change came first.
const WORLD_CAS: &str = r#"
if (redis.call('HGET', KEYS[1], 'world') or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return redis.call('HINCRBY', KEYS[1], 'world', 1)
"#;

/// KEYS: epoch. ARGV: op (`advance` | `set`), ms (a duration or a time, or
/// ''), frozen (`1`, `0` or ''), the system time, this replica's clock
/// (frozen, ms) for a store that has none yet. Answers the clock.
const CLOCK: &str = r#"
local f = redis.call('HGET', KEYS[1], 'frozen')
local m = redis.call('HGET', KEYS[1], 'ms')
if not f or not m then f, m = ARGV[5], ARGV[6] end
f = (f == '1')
m = tonumber(m)
local sys = tonumber(ARGV[4])
local function now() if f then return m else return sys + m end end
if ARGV[1] == 'advance' then
  m = m + tonumber(ARGV[2])
else
  if ARGV[3] ~= '' then
    local t = now()
    f = (ARGV[3] == '1')
    if f then m = t else m = t - sys end
  end
  if ARGV[2] ~= '' then
    local at = tonumber(ARGV[2])
    if f then m = at else m = at - sys end
  end
end
local ms = string.format('%d', m)
redis.call('HSET', KEYS[1], 'frozen', f and '1' or '0', 'ms', ms)
return {f and '1' or '0', ms}
"#;

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_store_address_is_shown_without_its_password() {
        assert_eq!(redacted("redis://:s3cret@127.0.0.1:6379/0"), "redis://…@127.0.0.1:6379/0");
        assert_eq!(redacted("redis://user:pw@host/1"), "redis://…@host/1");
        assert_eq!(redacted("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
    }
}
