//! Answer rules on the shared store: a rule with `count: 3` answers exactly
//! three calls in all, whichever replicas they reach. The replica matches
//! the call against its copy of the rules (fresh since the request's sync);
//! the script spends one use of the first candidate still there.

use redis::Script;

use super::{down, Store};
use crate::respond::control::Rule;
use crate::state::{Scenarios, StateError};

pub struct SharedRules {
    store: std::sync::Arc<Store>,
    add: Script,
    take: Script,
}

impl SharedRules {
    pub fn new(store: std::sync::Arc<Store>) -> Self {
        Self { store, add: Script::new(ADD), take: Script::new(TAKE) }
    }
}

/// Rules as `HGETALL rules` and `HGETALL rules:left` list them, oldest
/// first, each with the uses it has left.
pub(super) fn parse_rules(rules: &[String], left: &[String]) -> Vec<Rule> {
    let left = super::counts(left);
    let mut out: Vec<Rule> = rules
        .chunks(2)
        .filter_map(|pair| match pair {
            [id, json] => {
                let mut rule: Rule = serde_json::from_str(json).ok()?;
                rule.id = id.parse().ok()?;
                if rule.count.is_some() {
                    rule.count = Some(*left.get(id.as_str())?);
                }
                Some(rule)
            }
            _ => None,
        })
        .collect();
    out.sort_by_key(|r| r.id);
    out
}

#[async_trait::async_trait]
impl Scenarios for SharedRules {
    async fn add(&self, rule: Rule) -> Result<u64, StateError> {
        let s = &self.store;
        let json = serde_json::to_string(&rule).map_err(|e| StateError(e.to_string()))?;
        self.add
            .key(s.key("rules"))
            .key(s.key("rules:left"))
            .key(s.key("rules:seq"))
            .key(s.key("epoch"))
            .arg(json)
            .arg(rule.count.map(|c| c.to_string()).unwrap_or_default())
            .invoke_async(&mut s.conn())
            .await
            .map_err(down)
    }

    async fn list(&self) -> Result<Vec<Rule>, StateError> {
        let (rules, left) = self.store.two_hashes("rules", "rules:left").await?;
        Ok(parse_rules(&rules, &left))
    }

    async fn remove(&self, id: u64) -> Result<bool, StateError> {
        self.store.remove_by_id("rules:left", "rules", id, "rules").await
    }

    async fn clear(&self) -> Result<(), StateError> {
        self.store.drop_and_bump(&["rules", "rules:left"], "rules").await
    }

    async fn take(&self, method: &str, path: &str) -> Result<Option<Rule>, StateError> {
        let rules = self.store.cached_rules();
        let candidates: Vec<&Rule> = rules.iter().filter(|r| r.matches(method, path)).collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let s = &self.store;
        let mut call = self.take.prepare_invoke();
        call.key(s.key("rules")).key(s.key("rules:left")).key(s.key("epoch"));
        for rule in &candidates {
            call.arg(rule.id);
        }
        let taken: Option<(u64, i64)> = call.invoke_async(&mut s.conn()).await.map_err(down)?;
        Ok(taken.and_then(|(id, left)| {
            let mut rule = candidates.iter().find(|r| r.id == id).map(|r| (*r).clone())?;
            if rule.count.is_some() {
                rule.count = u32::try_from(left).ok();
            }
            Some(rule)
        }))
    }
}

/// KEYS: rules, rules:left, rules:seq, epoch. ARGV: the rule's JSON, its
/// count ('' for every call). Answers its id.
const ADD: &str = r#"
local id = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], id, ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], id, ARGV[2]) end
redis.call('HINCRBY', KEYS[4], 'rules', 1)
return id
"#;

/// KEYS: rules, rules:left, epoch. ARGV: candidate ids, oldest first.
/// Spends one use of the first still there; answers {id, uses it had}
/// (-1 for a rule without a count), or nil.
const TAKE: &str = r#"
for i = 1, #ARGV do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 1 then
    local left = redis.call('HGET', KEYS[2], id)
    if not left then return {id, -1} end
    left = tonumber(left)
    if left > 0 then
      if left == 1 then
        redis.call('HDEL', KEYS[1], id)
        redis.call('HDEL', KEYS[2], id)
        redis.call('HINCRBY', KEYS[3], 'rules', 1)
      else
        redis.call('HINCRBY', KEYS[2], id, -1)
      end
      return {id, left}
    end
  end
end
return false
"#;
