//! Per-request control of answers, for client tests: the `Prefer` header and
//! its `__code` / `__example` / `__dynamic` query twins (as Prism users know
//! them), and control-plane rules ("the next N calls of this method and path
//! get this status, body, delay or fault").
//!
//! Both act only on requests that passed authentication, rate limits and
//! validation, so a `Prefer: code=200` can never turn a 401 into a success.

use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::spec::Operation;

/// Query parameters that steer the answer; they are not the API's own.
pub const CONTROL_PARAMS: &[&str] = &["__code", "__example", "__dynamic"];

/// What a request asks of its answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Preference {
    pub code: Option<u16>,
    pub example: Option<String>,
    pub dynamic: bool,
}

impl Preference {
    /// From `Prefer: code=404, example=empty, dynamic=true` and the `__` query twins.
    pub fn read(prefer: Option<&str>, query: &[(String, String)]) -> Self {
        let mut p = Preference::default();
        let pairs = prefer
            .into_iter()
            .flat_map(|h| h.split([',', ';']))
            .filter_map(|item| item.trim().split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string()))
            .chain(query.iter().filter_map(|(k, v)| k.strip_prefix("__").map(|k| (k.to_string(), v.clone()))));
        for (key, value) in pairs {
            match key.as_str() {
                "code" => p.code = value.parse().ok().filter(|c| (100..600).contains(c)),
                "example" => p.example = Some(value),
                "dynamic" => p.dynamic = value == "true",
                _ => {}
            }
        }
        p
    }

    pub fn is_empty(&self) -> bool {
        *self == Preference::default()
    }
}

/// The status and body a preference selects, or `None` to answer as usual.
pub fn preferred(op: &Operation, pref: &Preference) -> Option<(u16, Value)> {
    if pref.is_empty() {
        return None;
    }
    let status = pref.code.unwrap_or(op.success.status);
    let seed = if pref.dynamic { fastrand::u64(..) } else { crate::spec::fnv1a(op.id.as_bytes()) };
    if status == op.success.status {
        if let Some(name) = &pref.example {
            return op.success.examples.iter().find(|(n, _)| n == name).map(|(_, v)| (status, v.clone()));
        }
        if pref.dynamic {
            let body = match &op.success.schema {
                Some(schema) => {
                    crate::respond::generate_valid_with(schema, op.success.validator.as_deref(), seed, false)
                        .unwrap_or_else(|(closest, _)| closest)
                }
                None => json!({}),
            };
            return Some((status, body));
        }
        // Only `code` naming the usual status: answer as usual.
        return None;
    }
    let Some(alt) = op.alternatives.iter().find(|a| a.status == status) else {
        let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
        return Some((status, json!({"statusCode": status, "message": reason})));
    };
    let named = pref.example.as_ref().and_then(|n| alt.examples.iter().find(|(name, _)| name == n));
    let body = match (named, alt.examples.first(), &alt.schema) {
        (Some((_, v)), _, _) => v.clone(),
        (None, Some((_, v)), _) if !pref.dynamic => v.clone(),
        (None, _, Some(schema)) => crate::respond::generate::Generator::new(seed, !pref.dynamic).value(schema),
        _ => json!({}),
    };
    Some((status, body))
}

/// A fault instead of a well-formed answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The connection closes after the status line and headers, before any body.
    Reset,
    /// Half the body is sent, then the connection closes.
    Truncate,
}

/// "The next `count` calls matching `method` and `path` get this."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub id: u64,
    /// Any method when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// A path glob: `*` is one segment, `**` any number.
    pub path: String,
    /// How many calls it applies to; every call when absent.
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<Value>,
    /// Delay before answering, in milliseconds of real time.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// With `latency_ms`: a delay drawn uniformly from `latency_ms..=latency_max_ms`.
    #[serde(default)]
    pub latency_max_ms: Option<u64>,
    #[serde(default)]
    pub fault: Option<Fault>,
}

impl Rule {
    pub fn check(&self) -> Result<(), String> {
        if let Some(s) = self.status {
            if !(100..600).contains(&s) {
                return Err(format!("status {s} is not an HTTP status"));
            }
        }
        if let (Some(min), Some(max)) = (self.latency_ms, self.latency_max_ms) {
            if max < min {
                return Err("latency_max_ms must not be below latency_ms".into());
            }
        }
        if self.latency_ms.is_some_and(|l| l > 600_000) || self.latency_max_ms.is_some_and(|l| l > 600_000) {
            return Err("latency is capped at 600000 ms".into());
        }
        if self.count == Some(0) {
            return Err("count must be at least 1 (leave it out for every call)".into());
        }
        if !self.path.starts_with('/') {
            return Err("path must start with '/'".into());
        }
        Ok(())
    }

    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && crate::limits::path_matches(&self.path, path)
    }

    /// The delay this call waits.
    pub fn latency(&self) -> Option<Duration> {
        let min = self.latency_ms?;
        let ms = match self.latency_max_ms {
            Some(max) if max > min => fastrand::u64(min..=max),
            _ => min,
        };
        Some(Duration::from_millis(ms))
    }
}

/// The rules of one mock, oldest first.
#[derive(Debug, Default)]
pub struct Rules {
    rules: Mutex<(u64, Vec<Rule>)>,
    /// How many rules there are, so that a call with none takes no lock.
    count: std::sync::atomic::AtomicUsize,
}

impl Rules {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Rule>)> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, mut rule: Rule) -> u64 {
        let mut guard = self.lock();
        guard.0 += 1;
        rule.id = guard.0;
        guard.1.push(rule);
        self.count.store(guard.1.len(), std::sync::atomic::Ordering::Release);
        guard.0
    }

    pub fn list(&self) -> Vec<Rule> {
        self.lock().1.clone()
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut guard = self.lock();
        let before = guard.1.len();
        guard.1.retain(|r| r.id != id);
        self.count.store(guard.1.len(), std::sync::atomic::Ordering::Release);
        guard.1.len() != before
    }

    pub fn clear(&self) {
        let mut guard = self.lock();
        guard.1.clear();
        self.count.store(0, std::sync::atomic::Ordering::Release);
    }

    /// The first rule matching this call, spending one of its uses.
    pub fn take(&self, method: &str, path: &str) -> Option<Rule> {
        if self.count.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return None;
        }
        let mut guard = self.lock();
        let index = guard.1.iter().position(|r| r.matches(method, path))?;
        let rule = guard.1[index].clone();
        if let Some(count) = &mut guard.1[index].count {
            *count -= 1;
            if *count == 0 {
                guard.1.remove(index);
                self.count.store(guard.1.len(), std::sync::atomic::Ordering::Release);
            }
        }
        Some(rule)
    }
}

/// A response whose body breaks off: nothing after the headers (`Reset`), or
/// half of `body` under a `Content-Length` of all of it (`Truncate`).
pub fn faulty(fault: Fault, status: StatusCode, body: Bytes) -> Response {
    // What goes out before the break: nothing of the body (`Reset`), or its
    // first half (`Truncate`). The stream then waits a moment, so that the
    // server flushes the headers (and the half) to the socket, and fails,
    // which makes the server drop the connection mid-answer.
    let first = match fault {
        Fault::Reset => None,
        Fault::Truncate => Some(body.slice(..body.len() / 2)),
    };
    let stream = futures_util::stream::unfold(Some(first), |step| async move {
        match step? {
            Some(part) => Some((Ok(part), Some(None))),
            None => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let broken =
                    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fault injected by a ghl-mock rule");
                Some((Err(broken), None))
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    if fault == Fault::Truncate {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    response
}

/// The in-memory backend of the scenarios.
#[async_trait::async_trait]
impl crate::state::Scenarios for Rules {
    async fn add(&self, rule: Rule) -> Result<u64, crate::state::StateError> {
        Ok(Rules::add(self, rule))
    }

    async fn list(&self) -> Result<Vec<Rule>, crate::state::StateError> {
        Ok(Rules::list(self))
    }

    async fn remove(&self, id: u64) -> Result<bool, crate::state::StateError> {
        Ok(Rules::remove(self, id))
    }

    async fn clear(&self) -> Result<(), crate::state::StateError> {
        Rules::clear(self);
        Ok(())
    }

    async fn take(&self, method: &str, path: &str) -> Result<Option<Rule>, crate::state::StateError> {
        Ok(Rules::take(self, method, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_header_and_query_twins_read_alike() {
        let from_header = Preference::read(Some("code=404, example=empty; dynamic=true"), &[]);
        let from_query = Preference::read(
            None,
            &[
                ("__code".into(), "404".into()),
                ("__example".into(), "empty".into()),
                ("__dynamic".into(), "true".into()),
            ],
        );
        assert_eq!(from_header, Preference { code: Some(404), example: Some("empty".into()), dynamic: true });
        assert_eq!(from_header, from_query);
        assert!(Preference::read(Some("return=minimal"), &[]).is_empty());
        assert_eq!(Preference::read(Some("code=999"), &[]).code, None);
    }

    #[test]
    fn a_counted_rule_is_spent_and_then_gone() {
        let rules = Rules::default();
        rules.add(Rule {
            id: 0,
            method: Some("GET".into()),
            path: "/contacts/*".into(),
            count: Some(2),
            status: Some(500),
            body: None,
            latency_ms: None,
            latency_max_ms: None,
            fault: None,
        });
        assert!(rules.take("POST", "/contacts/x").is_none(), "another method");
        assert!(rules.take("GET", "/contacts/x").is_some());
        assert!(rules.take("GET", "/contacts/y").is_some());
        assert!(rules.take("GET", "/contacts/z").is_none());
        assert!(rules.list().is_empty());
    }
}
