//! For random scope sets and random operations of the official corpus, the
//! mock admits a location PIT exactly when one security requirement of the
//! operation accepts a location PIT and holds only scopes the token has, and
//! otherwise answers the 401 a model of BEHAVIOUR.md §2–3 predicts.

use std::collections::BTreeSet;

use ghl_mock::spec::{self, Operation, Source};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::json;

use crate::support::*;

/// What the model expects for a location PIT holding `scopes`.
fn expected(op: &Operation, scopes: &BTreeSet<String>) -> Result<(), &'static str> {
    // Per requirement: Ok, or how far it got (1 kind, 2 user type, 3 scope).
    let mut best: Option<(u8, &'static str)> = None;
    for requirement in &op.security {
        let mut failure = None;
        for (scheme, needed) in requirement {
            let f = match scheme.as_str() {
                "bearer" | "Location-Access" => None,
                "Location-Access-Only" => Some((1, "This authClass type is not allowed to access this scope.")),
                _ if scheme.starts_with("Agency-Access") => Some((2, "Token's user type mismatch!")),
                _ => None,
            }
            .or_else(|| {
                needed.iter().any(|s| !scopes.contains(s)).then_some((3, "The token is not authorized for this scope."))
            });
            if f.is_some() {
                failure = f;
                break;
            }
        }
        match failure {
            None => return Ok(()),
            Some(f) => {
                // Scope (3) beats user type (2) beats token kind (1).
                if best.is_none_or(|b| f.0 > b.0) {
                    best = Some(f);
                }
            }
        }
    }
    Err(best.map(|(_, m)| m).unwrap_or("Token's user type mismatch!"))
}

fn path_of(op: &Operation) -> String {
    let path = filled_path(op, |p| fill(p, 7));
    let query: Vec<String> =
        required_query(op, 7).into_iter().map(|(k, v)| format!("{k}={}", form_escape(&v))).collect();
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn form_escape(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[test]
fn a_pit_is_admitted_exactly_when_its_kind_and_scopes_satisfy_the_operation() {
    let Some(dir) = corpus_dir() else { return };
    let set = spec::load(Source::Dir(dir), 1).expect("corpus loads");
    let all_scopes: Vec<String> = set.scopes().into_iter().map(str::to_string).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let m = runtime.block_on(TestMock::start(set, unlimited_fixture("  []")));
    let secured: Vec<usize> = (0..m.mock.spec.operations.len())
        .filter(|i| !m.mock.spec.operations[*i].security.is_empty() && m.mock.spec.operations[*i].body.is_none())
        .collect();
    let config = ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(op_pick in 0..secured.len(), scope_bits in proptest::collection::vec(any::<bool>(), all_scopes.len()), bias in 0u8..3)| {
        let index = secured[op_pick];
        let op = &m.mock.spec.operations[index];
        // Bias one case in three towards holding the operation's own scopes, so both outcomes are common.
        let mut scopes: BTreeSet<String> = all_scopes.iter().zip(&scope_bits).filter(|(_, on)| **on).map(|(s, _)| s.clone()).collect();
        if bias == 0 {
            scopes.extend(op.scopes().into_iter().map(str::to_string));
        }
        let (status, answer) = runtime.block_on(async {
            let (_, created) = m.admin(Method::POST, "/integrations", Some(json!({"name": "p", "owner": {"location": LOC_A}, "scopes": scopes}))).await;
            let token = created["token"].as_str().unwrap().to_string();
            let response = m.http.request(op.method.clone(), format!("{}{}", m.url, path_of(op))).bearer_auth(&token).header("Version", VERSION).send().await.unwrap();
            let result = read(response).await;
            m.admin(Method::DELETE, &format!("/integrations/{}", created["integration"]["id"].as_str().unwrap()), None).await;
            result
        });
        match expected(op, &scopes) {
            // Stateful operations answer 400 or 404 for ids that do not exist: the request was admitted.
            Ok(()) => prop_assert!(
                (200..300).contains(&status) || m.mock.spec.stateful(index) && (status == 400 || status == 404) && answer["message"].as_str().is_some_and(|m| m.ends_with("not found")),
                "{} {}: expected 2xx, got {status} {answer}", op.method, op.path
            ),
            Err(message) => prop_assert_eq!((status, answer), (401, json!({"statusCode": 401, "message": message})), "{} {}", op.method, op.path),
        }
    });
}
