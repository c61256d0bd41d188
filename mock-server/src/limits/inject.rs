//! Injected limits: "the next N requests matching this get 429", so a client
//! test can meet a refusal without sending hundreds of requests first.

use serde::{Deserialize, Serialize};

use super::RateKey;

/// The next `count` requests matching `target` are refused with 429.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Injection {
    pub target: Target,
    pub count: u32,
}

/// What an injected rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// All traffic counted against a location or company (PIT and OAuth app alike).
    Resource(String),
    /// Requests carrying the token with this fingerprint.
    Token(String),
    /// Requests whose path matches this glob: `*` is one segment, `**` any
    /// number of segments (none included), e.g. `/contacts/*`.
    Path(String),
}

/// An injected rule still waiting for requests, as the control plane shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveInjection {
    pub id: u64,
    pub target: Target,
    /// How many more matching requests it will refuse.
    pub remaining: u32,
}

#[derive(Debug, Default)]
pub(super) struct Injections {
    /// In the order they were injected: the oldest matching rule is spent first.
    rules: Vec<ActiveInjection>,
    next_id: u64,
}

impl Injections {
    pub(super) fn add(&mut self, injection: Injection) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        // A rule for no request would never match and never leave.
        if injection.count > 0 {
            self.rules.push(ActiveInjection { id, target: injection.target, remaining: injection.count });
        }
        id
    }

    pub(super) fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.id != id);
        self.rules.len() != before
    }

    pub(super) fn list(&self) -> Vec<ActiveInjection> {
        self.rules.clone()
    }

    pub(super) fn len(&self) -> usize {
        self.rules.len()
    }

    pub(super) fn clear(&mut self) {
        self.rules.clear();
    }

    /// Spends one request of the first rule matching, if any; true when one matched.
    pub(super) fn take(&mut self, key: &RateKey, token_fingerprint: &str, path: &str) -> bool {
        let Some(i) = self.rules.iter().position(|r| r.target.matches(key, token_fingerprint, path)) else {
            return false;
        };
        let rule = &mut self.rules[i];
        rule.remaining -= 1;
        if rule.remaining == 0 {
            self.rules.remove(i);
        }
        true
    }
}

impl Target {
    pub(crate) fn matches(&self, key: &RateKey, token_fingerprint: &str, path: &str) -> bool {
        match self {
            Target::Resource(r) => r == key.resource(),
            Target::Token(fp) => fp == token_fingerprint,
            Target::Path(glob) => path_matches(glob, path),
        }
    }
}

fn segments(path: &str) -> Vec<&str> {
    // Empty segments are ignored, so `/contacts` and `/contacts/` are one path.
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Matches a path (a query string, if any, is ignored) against a glob.
pub fn path_matches(glob: &str, path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    glob_matches(&segments(glob), &segments(path))
}

fn glob_matches(glob: &[&str], path: &[&str]) -> bool {
    match glob.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| glob_matches(rest, &path[skip..])),
        Some((&"*", rest)) => path.split_first().is_some_and(|(_, tail)| glob_matches(rest, tail)),
        Some((literal, rest)) => {
            path.split_first().is_some_and(|(segment, tail)| segment == literal && glob_matches(rest, tail))
        }
    }
}
