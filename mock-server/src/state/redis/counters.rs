//! Rate counters, daily quotas and injected 429s on the shared store: one
//! script per decision, so that 200 requests at once through any number of
//! replicas admit exactly the burst.
//!
//! The script keeps the same counter as the in-memory limiter (the times of
//! the newest `burst` requests and a count for the day) and answers what the
//! pipeline needs to build the same `X-RateLimit-*` headers and `Retry-After`.
//! Injected rules are matched here against the replica's copy (fresh since
//! the request's sync) and spent in the script, oldest first, so a rule with a
//! count of 3 refuses exactly 3 requests in all.

use redis::Script;

use super::{down, Store};
use crate::limits::{
    ceil_secs, ActiveInjection, Decision, Injection, Profile, RateHeaders, RateKey, Refusal, Settings, Target,
    WindowKind,
};
use crate::state::{Counters, StateError};

/// Counters outlive any window and a day of real time after their last use.
const COUNTER_TTL_MS: i64 = 2 * 86_400_000;

/// The shared counters, decided with the limiter's settings.
pub struct SharedCounters {
    store: std::sync::Arc<Store>,
    settings: Settings,
    rate: Script,
    inject: Script,
}

impl SharedCounters {
    pub fn new(store: std::sync::Arc<Store>, settings: Settings) -> Self {
        Self { store, settings, rate: Script::new(RATE), inject: Script::new(INJECT) }
    }
}

fn key_text(key: &RateKey) -> String {
    match key {
        RateKey::Resource(id) => format!("res:{id}"),
        RateKey::App { client_id, resource } => format!("app:{client_id}:{resource}"),
    }
}

/// What the rate script answered: the reason (`''`, `daily`, `burst`,
/// `injected`), requests in the window, the day's count, and the time of the
/// request whose leaving frees a slot (or -1).
type Answered = (String, u32, u32, i64);

impl SharedCounters {
    async fn run(
        &self,
        mode: &str,
        key: &RateKey,
        profile: Profile,
        now_ms: i64,
        extra: u32,
        candidates: &[u64],
    ) -> Result<Answered, StateError> {
        let s = &self.store;
        let k = key_text(key);
        let mut call = self.rate.prepare_invoke();
        call.key(s.key(&format!("rl:{k}")))
            .key(s.key(&format!("rd:{k}")))
            .key(s.key("inj"))
            .key(s.key("inj:def"))
            .key(s.key("epoch"))
            .arg(mode)
            .arg(now_ms)
            .arg(profile.burst)
            .arg(profile.window_ms)
            .arg(profile.daily)
            .arg(if self.settings.window == WindowKind::Rolling { "1" } else { "0" })
            .arg(self.settings.day_of(now_ms))
            .arg(if self.settings.enabled { "1" } else { "0" })
            .arg(if self.settings.count_refused { "1" } else { "0" })
            .arg(COUNTER_TTL_MS)
            .arg(extra);
        for id in candidates {
            call.arg(*id);
        }
        call.invoke_async(&mut s.conn()).await.map_err(down)
    }
}

fn headers(profile: Profile, in_window: u32, day_count: u32) -> RateHeaders {
    RateHeaders {
        limit_daily: profile.daily,
        daily_remaining: profile.daily.saturating_sub(day_count),
        interval_ms: profile.window_ms,
        max: profile.burst,
        remaining: profile.burst.saturating_sub(in_window),
    }
}

/// Injected rules as `HGETALL inj:def` lists them (id, target JSON, …), oldest first.
pub(super) fn parse_injections(flat: &[String]) -> Vec<(u64, Target)> {
    let mut out: Vec<(u64, Target)> = flat
        .chunks(2)
        .filter_map(|pair| match pair {
            [id, target] => Some((id.parse().ok()?, serde_json::from_str(target).ok()?)),
            _ => None,
        })
        .collect();
    out.sort_by_key(|(id, _)| *id);
    out
}

#[async_trait::async_trait]
impl Counters for SharedCounters {
    async fn hit(
        &self,
        key: &RateKey,
        profile: Profile,
        token_fingerprint: &str,
        path: &str,
        now_ms: i64,
    ) -> Result<Decision, StateError> {
        let candidates: Vec<u64> = self
            .store
            .cached_injections()
            .iter()
            .filter(|(_, target)| target.matches(key, token_fingerprint, path))
            .map(|(id, _)| *id)
            .collect();
        let (reason, in_window, day_count, frees_at) = self.run("hit", key, profile, now_ms, 0, &candidates).await?;
        let window = i64::try_from(profile.window_ms).unwrap_or(i64::MAX).max(1);
        let headers = headers(profile, in_window, day_count);
        Ok(match reason.as_str() {
            "injected" => Decision {
                allowed: false,
                headers: RateHeaders { remaining: 0, ..headers },
                retry_after_secs: ceil_secs(i64::try_from(profile.window_ms).unwrap_or(i64::MAX)),
                reason: Some(Refusal::Injected),
            },
            "daily" => Decision {
                allowed: false,
                headers,
                retry_after_secs: ceil_secs(self.settings.until_next_day_ms(now_ms)),
                reason: Some(Refusal::Daily),
            },
            "burst" => {
                let retry_ms = match self.settings.window {
                    WindowKind::Fixed => window - now_ms.rem_euclid(window),
                    WindowKind::Rolling if frees_at >= 0 => frees_at.saturating_add(window) - now_ms,
                    WindowKind::Rolling => window,
                };
                Decision {
                    allowed: false,
                    headers,
                    retry_after_secs: ceil_secs(retry_ms),
                    reason: Some(Refusal::Burst),
                }
            }
            _ => Decision { allowed: true, headers, retry_after_secs: 0, reason: None },
        })
    }

    async fn peek(&self, key: &RateKey, profile: Profile, now_ms: i64) -> Result<RateHeaders, StateError> {
        let (_, in_window, day_count, _) = self.run("peek", key, profile, now_ms, 0, &[]).await?;
        Ok(headers(profile, in_window, day_count))
    }

    async fn exhaust_daily(&self, key: &RateKey, profile: Profile, now_ms: i64) -> Result<(), StateError> {
        self.run("exhaust", key, profile, now_ms, 0, &[]).await.map(drop)
    }

    async fn set_burst_remaining(
        &self,
        key: &RateKey,
        profile: Profile,
        remaining: u32,
        now_ms: i64,
    ) -> Result<(), StateError> {
        self.run("set", key, profile, now_ms, profile.burst.saturating_sub(remaining), &[]).await.map(drop)
    }

    async fn inject(&self, rule: Injection) -> Result<u64, StateError> {
        let s = &self.store;
        let target = serde_json::to_string(&rule.target).map_err(|e| StateError(e.to_string()))?;
        self.inject
            .key(s.key("inj"))
            .key(s.key("inj:def"))
            .key(s.key("inj:seq"))
            .key(s.key("epoch"))
            .arg(rule.count)
            .arg(target)
            .invoke_async(&mut s.conn())
            .await
            .map_err(down)
    }

    async fn injections(&self) -> Result<Vec<ActiveInjection>, StateError> {
        let (left, defs) = self.store.two_hashes("inj", "inj:def").await?;
        let left = super::counts(&left);
        Ok(parse_injections(&defs)
            .into_iter()
            .filter_map(|(id, target)| {
                let remaining = *left.get(id.to_string().as_str())?;
                Some(ActiveInjection { id, target, remaining })
            })
            .collect())
    }

    async fn remove_injection(&self, id: u64) -> Result<bool, StateError> {
        self.store.remove_by_id("inj", "inj:def", id, "inj").await
    }

    async fn clear(&self) -> Result<(), StateError> {
        let s = &self.store;
        s.delete_matching("rl:*").await?;
        s.delete_matching("rd:*").await?;
        s.drop_and_bump(&["inj", "inj:def"], "inj").await
    }
}

/// KEYS: window (a sorted set of request times), day hash (day, count, a
/// numbering of requests), inj, inj:def, epoch. ARGV: mode (`hit`,
/// `peek`, `exhaust`, `set`), now, burst, window ms, daily, rolling, day,
/// enabled, count refused, ttl, extra (requests `set` puts in the window),
/// then the ids of the injected rules matching the request, oldest first.
const RATE: &str = r#"
local mode = ARGV[1]
local now = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local w = math.max(1, tonumber(ARGV[4]))
local daily = tonumber(ARGV[5])
local day = ARGV[7]
-- Forget the requests that left the window.
if ARGV[6] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - w))
else
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', math.floor(now / w) * w))
end
local d = redis.call('HMGET', KEYS[2], 'day', 'n')
local count = 0
if d[1] == day then
  count = tonumber(d[2] or '0')
elseif mode ~= 'peek' then
  redis.call('HSET', KEYS[2], 'day', day, 'n', '0')
end
local function touch()
  redis.call('PEXPIRE', KEYS[1], ARGV[10])
  redis.call('PEXPIRE', KEYS[2], ARGV[10])
end
-- A request at `now` (members are numbered: several share a time).
local function add()
  redis.call('ZADD', KEYS[1], ARGV[2], redis.call('HINCRBY', KEYS[2], 'seq', 1))
end
local function trim()
  local len = redis.call('ZCARD', KEYS[1])
  if len > burst then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, len - burst - 1) end
end
if mode == 'peek' then
  return {'', redis.call('ZCARD', KEYS[1]), count, -1}
end
if mode == 'exhaust' then
  count = math.max(count, daily)
  redis.call('HSET', KEYS[2], 'day', day, 'n', string.format('%d', count))
  touch()
  return {'', redis.call('ZCARD', KEYS[1]), count, -1}
end
if mode == 'set' then
  redis.call('DEL', KEYS[1])
  for _ = 1, tonumber(ARGV[11]) do add() end
  touch()
  return {'', redis.call('ZCARD', KEYS[1]), count, -1}
end
for i = 12, #ARGV do
  local id = ARGV[i]
  local left = tonumber(redis.call('HGET', KEYS[3], id) or '0')
  if left > 0 then
    left = redis.call('HINCRBY', KEYS[3], id, -1)
    if left <= 0 then
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[4], id)
      redis.call('HINCRBY', KEYS[5], 'inj', 1)
    end
    return {'injected', redis.call('ZCARD', KEYS[1]), count, -1}
  end
end
local len = redis.call('ZCARD', KEYS[1])
local reason = ''
if count >= daily then reason = 'daily' elseif len >= burst then reason = 'burst' end
if ARGV[8] ~= '1' then reason = '' end
if reason == '' or ARGV[9] == '1' then
  add()
  trim()
  count = count + 1
  redis.call('HSET', KEYS[2], 'day', day, 'n', string.format('%d', count))
  touch()
  len = redis.call('ZCARD', KEYS[1])
end
local frees = -1
if reason == 'burst' and burst > 0 and len >= burst then
  frees = tonumber(redis.call('ZRANGE', KEYS[1], len - burst, len - burst, 'WITHSCORES')[2])
end
return {reason, len, count, frees}
"#;

/// KEYS: inj, inj:def, inj:seq, epoch. ARGV: count, target JSON. Answers the
/// rule's id (a rule for no request is numbered but not kept).
const INJECT: &str = r#"
local id = redis.call('INCR', KEYS[3])
if tonumber(ARGV[1]) > 0 then
  redis.call('HSET', KEYS[1], id, ARGV[1])
  redis.call('HSET', KEYS[2], id, ARGV[2])
  redis.call('HINCRBY', KEYS[4], 'inj', 1)
end
return id
"#;

/// KEYS: a hash of uses left, a hash of definitions, epoch. ARGV: id, the
/// epoch field to move. Answers 1 when the id was there.
pub(super) const REMOVE: &str = r#"
local gone = redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if gone == 1 then redis.call('HINCRBY', KEYS[3], ARGV[2], 1) end
return gone
"#;
