//! The webhook outbox on the shared store: every replica runs a sender, and
//! each attempt is claimed by one of them in one script, so an event is
//! delivered once, not once per replica. A claim holds a lease in real time;
//! a replica that died mid-attempt loses its claims when the lease runs out,
//! and another replica makes the attempt again (same `webhookId`, as
//! HighLevel's at-least-once delivery allows). Every replica signs with one
//! key, set by whichever replica asked first.
//!
//! Keys (under the world's prefix): `wh:d:{id}` hash (`d`: the delivery as
//! queued, JSON; `s` state, `n` next attempt ms, `f` in flight), `wh:a:{id}`
//! list of attempts (JSON), `wh:order` sorted set (arrival), `wh:due` sorted
//! set (pending and not held, by due time on the mock's clock), `wh:lease`
//! sorted set (held, by lease end in real time), `wh:seq`, `wh:dropped`,
//! `wh:key`, `wh:legacy-key`.

use std::sync::Arc;

use redis::Script;

use super::{bad_data, down, Store};
use crate::state::deliveries::{
    Attempt, Claim, Deliveries, Delivery, DeliveryFilter, DeliveryState, DeliveryStats, Outcome,
};
use crate::state::StateError;

pub struct SharedDeliveries {
    store: Arc<Store>,
    capacity: usize,
    /// How long a claim holds, in real time.
    lease_ms: u64,
    enqueue: Script,
    claim_due: Script,
    claim: Script,
    record: Script,
}

impl SharedDeliveries {
    /// An outbox of `capacity` deliveries whose claims hold `lease_ms` of real time.
    pub fn new(store: Arc<Store>, capacity: usize, lease_ms: u64) -> Self {
        Self {
            store,
            capacity: capacity.max(1),
            lease_ms,
            enqueue: Script::new(ENQUEUE),
            claim_due: Script::new(CLAIM_DUE),
            claim: Script::new(CLAIM),
            record: Script::new(RECORD),
        }
    }

    fn prefix(&self) -> String {
        self.store.key("wh:")
    }

    fn state_text(state: DeliveryState) -> &'static str {
        match state {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Abandoned => "abandoned",
        }
    }

    /// Deliveries by id, in the order given (those gone are left out).
    async fn fetch(&self, ids: &[String]) -> Result<Vec<Delivery>, StateError> {
        let mut out = Vec::with_capacity(ids.len());
        let prefix = self.prefix();
        for chunk in ids.chunks(256) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HMGET").arg(format!("{prefix}d:{id}")).arg("d").arg("s").arg("n").arg("f");
                pipe.cmd("LRANGE").arg(format!("{prefix}a:{id}")).arg(0).arg(-1);
            }
            type Row = ((Option<String>, Option<String>, Option<String>, Option<String>), Vec<String>);
            let rows: Vec<Row> = pipe.query_async(&mut self.store.conn()).await.map_err(down)?;
            for ((d, s, n, f), attempts) in rows {
                let (Some(d), Some(s)) = (d, s) else { continue };
                let mut delivery: Delivery = serde_json::from_str(&d).map_err(|e| bad_data("delivery", e))?;
                delivery.state = DeliveryState::parse(&s).unwrap_or(DeliveryState::Pending);
                delivery.next_attempt_at_ms = n.and_then(|n| n.parse().ok());
                delivery.in_flight = f.as_deref() == Some("1");
                delivery.attempts = attempts
                    .iter()
                    .map(|a| serde_json::from_str(a).map_err(|e| bad_data("attempt", e)))
                    .collect::<Result<_, _>>()?;
                out.push(delivery);
            }
        }
        Ok(out)
    }

    /// Every delivery, oldest first.
    async fn all(&self) -> Result<Vec<Delivery>, StateError> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.store.key("wh:order"))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.store.conn())
            .await
            .map_err(down)?;
        self.fetch(&ids).await
    }
}

#[async_trait::async_trait]
impl Deliveries for SharedDeliveries {
    async fn enqueue(&self, delivery: Delivery) -> Result<bool, StateError> {
        let json = serde_json::to_string(&Delivery { attempts: Vec::new(), ..delivery.clone() })
            .map_err(|e| StateError(e.to_string()))?;
        let due = match (delivery.state, delivery.next_attempt_at_ms, delivery.in_flight) {
            (DeliveryState::Pending, Some(due), false) => due.to_string(),
            _ => String::new(),
        };
        let answer: String = self
            .enqueue
            .key(self.store.key("wh:order"))
            .arg(self.prefix())
            .arg(&delivery.webhook_id)
            .arg(json)
            .arg(Self::state_text(delivery.state))
            .arg(delivery.next_attempt_at_ms.map(|n| n.to_string()).unwrap_or_default())
            .arg(due)
            .arg(self.capacity)
            .invoke_async(&mut self.store.conn())
            .await
            .map_err(down)?;
        match answer.as_str() {
            "ok" => Ok(true),
            "full" => Ok(false),
            _ => Err(StateError(format!("webhook {} is queued already", delivery.webhook_id))),
        }
    }

    async fn claim_due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StateError> {
        let ids: Vec<String> = self
            .claim_due
            .key(self.store.key("wh:due"))
            .arg(self.prefix())
            .arg(now_ms)
            .arg(limit)
            .arg(crate::clock::system_now_ms())
            .arg(self.lease_ms)
            .invoke_async(&mut self.store.conn())
            .await
            .map_err(down)?;
        self.fetch(&ids).await
    }

    async fn claim(&self, webhook_id: &str) -> Result<Claim, StateError> {
        let answer: String = self
            .claim
            .key(self.store.key("wh:due"))
            .arg(self.prefix())
            .arg(webhook_id)
            .arg(crate::clock::system_now_ms())
            .arg(self.lease_ms)
            .invoke_async(&mut self.store.conn())
            .await
            .map_err(down)?;
        Ok(match answer.as_str() {
            "claimed" => match self.fetch(&[webhook_id.to_string()]).await?.pop() {
                Some(d) => Claim::Claimed(d),
                None => Claim::Unknown,
            },
            "delivered" => Claim::AlreadyDelivered,
            "in_flight" => Claim::InFlight,
            _ => Claim::Unknown,
        })
    }

    async fn record(&self, webhook_id: &str, attempt: Attempt, outcome: Outcome) -> Result<(), StateError> {
        let (state, next) = match outcome {
            Outcome::Delivered => ("delivered", String::new()),
            Outcome::Failed => ("failed", String::new()),
            Outcome::Abandoned => ("abandoned", String::new()),
            Outcome::RetryAt(due) => ("pending", due.to_string()),
            Outcome::Unchanged => ("", String::new()),
        };
        let attempt = serde_json::to_string(&attempt).map_err(|e| StateError(e.to_string()))?;
        self.record
            .key(self.store.key("wh:due"))
            .arg(self.prefix())
            .arg(webhook_id)
            .arg(attempt)
            .arg(state)
            .arg(next)
            .invoke_async::<()>(&mut self.store.conn())
            .await
            .map_err(down)
    }

    async fn get(&self, webhook_id: &str) -> Result<Option<Delivery>, StateError> {
        Ok(self.fetch(&[webhook_id.to_string()]).await?.pop())
    }

    async fn list(&self, filter: &DeliveryFilter, limit: usize) -> Result<Vec<Delivery>, StateError> {
        let mut out: Vec<Delivery> =
            self.all().await?.into_iter().rev().filter(|d| filter.matches(d)).take(limit).collect();
        out.reverse();
        Ok(out)
    }

    async fn next_due_ms(&self) -> Result<Option<i64>, StateError> {
        // The sender asks before each wait: the shared clock comes along,
        // so a replica that serves no requests still sees the clock move.
        self.store.sync().await?;
        let first: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(self.store.key("wh:due"))
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut self.store.conn())
            .await
            .map_err(down)?;
        Ok(first.first().map(|(_, due)| *due as i64))
    }

    async fn stats(&self) -> Result<DeliveryStats, StateError> {
        let all = self.all().await?;
        let dropped: Option<u64> = redis::cmd("GET")
            .arg(self.store.key("wh:dropped"))
            .query_async(&mut self.store.conn())
            .await
            .map_err(down)?;
        let mut stats = DeliveryStats {
            capacity: self.capacity,
            held: all.len(),
            dropped: dropped.unwrap_or(0),
            ..Default::default()
        };
        all.iter().for_each(|d| stats.count(d));
        Ok(stats)
    }

    async fn clear(&self) -> Result<usize, StateError> {
        let mut cleared = 0;
        let prefix = self.prefix();
        for d in self.all().await? {
            if d.in_flight {
                continue;
            }
            let id = &d.webhook_id;
            redis::pipe()
                .cmd("DEL")
                .arg(format!("{prefix}d:{id}"))
                .arg(format!("{prefix}a:{id}"))
                .ignore()
                .cmd("ZREM")
                .arg(format!("{prefix}order"))
                .arg(id)
                .ignore()
                .cmd("ZREM")
                .arg(format!("{prefix}due"))
                .arg(id)
                .ignore()
                .query_async::<()>(&mut self.store.conn())
                .await
                .map_err(down)?;
            cleared += 1;
        }
        Ok(cleared)
    }

    async fn signing_key(
        &self,
        make: &(dyn Fn() -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<Vec<u8>, StateError> {
        self.store.set_once("wh:key", make).await
    }

    async fn legacy_signing_key(
        &self,
        make: &(dyn Fn() -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<Vec<u8>, StateError> {
        self.store.set_once("wh:legacy-key", make).await
    }
}

/// KEYS: wh:order. ARGV: the `wh:` prefix, id, delivery JSON, state, next
/// ms, due ms ('' when not due), capacity. Makes room by forgetting the
/// oldest finished delivery; answers `ok`, `full` or `taken`.
const ENQUEUE: &str = r#"
local p, id = ARGV[1], ARGV[2]
if redis.call('EXISTS', p .. 'd:' .. id) == 1 then return 'taken' end
local cap = tonumber(ARGV[7])
while redis.call('ZCARD', KEYS[1]) >= cap do
  local gone = false
  for _, old in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local st = redis.call('HMGET', p .. 'd:' .. old, 's', 'f')
    if (not st[1]) or (st[1] ~= 'pending' and st[2] ~= '1') then
      redis.call('DEL', p .. 'd:' .. old, p .. 'a:' .. old)
      redis.call('ZREM', KEYS[1], old)
      gone = true
      break
    end
  end
  if not gone then
    redis.call('INCR', p .. 'dropped')
    return 'full'
  end
end
redis.call('HSET', p .. 'd:' .. id, 'd', ARGV[3], 's', ARGV[4], 'n', ARGV[5], 'f', '0')
redis.call('ZADD', KEYS[1], redis.call('INCR', p .. 'seq'), id)
if ARGV[6] ~= '' then redis.call('ZADD', p .. 'due', ARGV[6], id) end
return 'ok'
"#;

/// KEYS: wh:due. ARGV: prefix, now (mock's clock), limit, now (real time),
/// lease ms. Takes back claims whose lease ran out, then claims up to
/// `limit` due deliveries; answers their ids.
const CLAIM_DUE: &str = r#"
local p = ARGV[1]
local real = tonumber(ARGV[4])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'lease', '-inf', real)) do
  redis.call('ZREM', p .. 'lease', id)
  local st = redis.call('HMGET', p .. 'd:' .. id, 's', 'n')
  if st[1] then
    redis.call('HSET', p .. 'd:' .. id, 'f', '0')
    if st[1] == 'pending' then redis.call('ZADD', KEYS[1], tonumber(st[2]) or ARGV[2], id) end
  end
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HSET', p .. 'd:' .. id, 'f', '1')
  redis.call('ZADD', p .. 'lease', real + tonumber(ARGV[5]), id)
end
return ids
"#;

/// KEYS: wh:due. ARGV: prefix, id, now (real time), lease ms. A manual
/// resend's claim: `claimed`, `delivered`, `in_flight` or `unknown`.
const CLAIM: &str = r#"
local p, id = ARGV[1], ARGV[2]
local st = redis.call('HMGET', p .. 'd:' .. id, 's', 'f')
if not st[1] then return 'unknown' end
if st[1] == 'delivered' then return 'delivered' end
if st[2] == '1' then return 'in_flight' end
redis.call('HSET', p .. 'd:' .. id, 'f', '1')
redis.call('ZREM', KEYS[1], id)
redis.call('ZADD', p .. 'lease', tonumber(ARGV[3]) + tonumber(ARGV[4]), id)
return 'claimed'
"#;

/// KEYS: wh:due. ARGV: prefix, id, attempt JSON, new state ('' to keep it),
/// next ms. Records the attempt and releases the claim; a pending delivery
/// is due again at its next attempt.
const RECORD: &str = r#"
local p, id = ARGV[1], ARGV[2]
if redis.call('EXISTS', p .. 'd:' .. id) == 0 then return true end
redis.call('ZREM', p .. 'lease', id)
redis.call('RPUSH', p .. 'a:' .. id, ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', p .. 'd:' .. id, 's', ARGV[4], 'n', ARGV[5]) end
redis.call('HSET', p .. 'd:' .. id, 'f', '0')
local st = redis.call('HMGET', p .. 'd:' .. id, 's', 'n')
if st[1] == 'pending' and st[2] ~= '' then redis.call('ZADD', KEYS[1], st[2], id) end
return true
"#;
