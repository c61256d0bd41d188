//! The whole official surface: every operation of the shared corpus is
//! routable and answers, and every 2xx body validates against its schema.

use ghl_mock::spec::{self, Operation, Source};
use serde_json::Value;

use crate::support::*;

const ALL_SCOPES_LOCATION: &str = "Location PIT";
const ALL_SCOPES_AGENCY: &str = "Agency PIT";

fn operations_in_files(dir: &std::path::Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("read corpus dir").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("read spec");
        let doc: Value = serde_json::from_str(&text).expect("corpus file is JSON");
        for item in doc["paths"].as_object().expect("paths").values() {
            count += item
                .as_object()
                .map(|m| {
                    m.keys()
                        .filter(|k| {
                            ["get", "put", "post", "delete", "patch", "head", "options", "trace"].contains(&k.as_str())
                        })
                        .count()
                })
                .unwrap_or(0);
        }
    }
    count
}

/// Which fixture token a request for `op` should carry, if a PIT can call it.
fn token_for(op: &Operation) -> Option<&'static str> {
    let schemes: Vec<&str> = op.security.iter().flat_map(|r| r.iter().map(|(s, _)| s.as_str())).collect();
    if schemes.iter().any(|s| matches!(*s, "bearer" | "Location-Access")) {
        Some(ALL_SCOPES_LOCATION)
    } else if schemes.contains(&"Agency-Access") {
        Some(ALL_SCOPES_AGENCY)
    } else {
        None
    }
}

fn request_body(op: &Operation, seed: u64) -> Option<Value> {
    let spec_body = op.body.as_ref()?;
    let mut body = valid(spec_body.schema.as_ref()?, spec_body.validator.as_deref(), seed);
    if let Some(map) = body.as_object_mut() {
        for (key, value) in [("locationId", LOC_A), ("altId", LOC_A), ("altType", "location"), ("companyId", COMPANY)] {
            if map.contains_key(key) {
                map.insert(key.to_string(), Value::from(value));
            }
        }
        // Unique contact details keep the duplicate rule out of the way.
        for (key, value) in [("email", format!("corpus{seed}@example.com")), ("phone", format!("+1555{seed:07}"))] {
            if map.get(key).is_some_and(Value::is_string) {
                map.insert(key.to_string(), Value::from(value));
            }
        }
    }
    Some(body)
}

#[tokio::test]
async fn every_operation_of_the_official_corpus_is_routed_and_answers_with_a_valid_body() {
    let Some(dir) = corpus_dir() else { return };
    let set = spec::load(Source::Dir(dir.clone()), 1).expect("corpus loads");
    assert_eq!(set.operations.len(), operations_in_files(&dir), "every operation in the files is in the table");
    every_operation_answers(set, VERSION).await;
}

/// Issue 14: the official SDKs call every operation of the official files,
/// the Node SDK with `Version: 2023-02-21`, the Python SDK with `Version: v3`.
#[tokio::test]
async fn every_operation_of_the_official_corpus_answers_under_the_versions_the_official_sdks_send() {
    let Some(dir) = corpus_dir() else { return };
    for version in ["2023-02-21", "v3"] {
        every_operation_answers(spec::load(Source::Dir(dir.clone()), 1).expect("corpus loads"), version).await;
    }
}

#[tokio::test]
async fn every_operation_of_the_embedded_default_answers_under_the_versions_the_official_sdks_send() {
    for version in ["2023-02-21", "v3"] {
        every_operation_answers(embedded(), version).await;
    }
}

/// Calls every operation of `set` once, with `Version: version`, a token
/// that may call it and a valid body: none is unrouted or a 5xx, every
/// operation a PIT may call answers 2xx, and every 2xx body fits its schema.
async fn every_operation_answers(set: spec::SpecSet, version: &str) {
    let all_scopes: Vec<String> = set.scopes().into_iter().map(|s| format!("\"{s}\"")).collect();
    let scopes = all_scopes.join(", ");
    let mock = TestMock::start(
        set,
        unlimited_fixture(&format!(
            "  - {{name: {ALL_SCOPES_LOCATION}, owner: {{location: {LOC_A}}}, scopes: [{scopes}]}}\n  - {{name: {ALL_SCOPES_AGENCY}, owner: {{company: {COMPANY}}}, scopes: [{scopes}]}}"
        )),
    )
    .await;
    let spec = mock.mock.spec.clone();
    let mut problems = Vec::new();
    let (mut succeeded, mut pit_callable) = (0, 0);
    for (i, op) in spec.operations.iter().enumerate() {
        let seed = i as u64;
        // Stateful operations get the records their path names, made fresh for each.
        let records = records_for(&mock, i).await;
        let refs = references(&mock, &format!("c{i}")).await;
        let path = filled_path(op, |p| records.get(&p.name).cloned().unwrap_or_else(|| fill(p, seed)));
        let query = required_query(op, seed);
        let mut request = mock
            .http
            .request(op.method.clone(), format!("{}{path}", mock.url))
            .query(&query)
            .header("Version", version);
        let token = token_for(op);
        if let Some(name) = token {
            request = request.bearer_auth(mock.token(name));
            pit_callable += 1;
        }
        if let Some(mut body) = request_body(op, seed) {
            refer(&mut body, &refs);
            request = with_body(request, op, &body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let label = format!("{} {} ({}, {}, Version {version})", op.method, op.path, op.id, op.file);
        if status == 404 || status == 405 || status >= 500 {
            problems.push(format!("{label}: answered {status} {body}"));
            continue;
        }
        if (200..300).contains(&status) {
            if token.is_some() {
                succeeded += 1;
            }
            if let Some(validator) = &op.success.validator {
                if let Some(error) = validator.iter_errors(&body).next() {
                    problems
                        .push(format!("{label}: body does not match its schema: {error} at {}", error.instance_path()));
                }
            }
        } else if token.is_some() {
            problems.push(format!("{label}: a request with a fitting token answered {status} {body}"));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    assert_eq!(succeeded, pit_callable, "every operation a PIT may call answered 2xx");
}

/// An answer made from the spec with the request's own values echoed in is
/// kept for the next identical call: a call with other values gets its own,
/// never the one kept for another.
#[tokio::test]
async fn an_echoed_answer_kept_for_a_repeated_call_never_answers_a_call_with_other_values() {
    let Some(dir) = corpus_dir() else { return };
    let set = spec::load(Source::Dir(dir), 1).expect("corpus loads");
    let scopes: Vec<String> = set.scopes().into_iter().map(|s| format!("\"{s}\"")).collect();
    let mock = TestMock::start(
        set,
        unlimited_fixture(&format!(
            "  - {{name: {ALL_SCOPES_LOCATION}, owner: {{location: {LOC_A}}}, scopes: [{}]}}",
            scopes.join(", ")
        )),
    )
    .await;
    let spec = mock.mock.spec.clone();
    let call = |op: &'static Operation, value: &'static str| {
        let path = filled_path(op, |_| value.to_string());
        let request = mock
            .http
            .get(format!("{}{path}", mock.url))
            .query(&required_query(op, 1))
            .header("Version", VERSION)
            .bearer_auth(mock.token(ALL_SCOPES_LOCATION));
        async move { request.send().await.expect("request").text().await.expect("body") }
    };
    let ops: &'static [Operation] = Box::leak(spec.operations.clone().into_boxed_slice());
    let mut tried = 0;
    for (i, op) in ops.iter().enumerate() {
        let has_path_param = op.params.iter().any(|p| p.location == ghl_mock::spec::ParamIn::Path);
        if op.method != reqwest::Method::GET || spec.stateful(i) || !has_path_param || token_for(op).is_none() {
            continue;
        }
        if !call(op, "echoOneAaaaaaaaaaaaa").await.contains("echoOneAaaaaaaaaaaaa") {
            continue;
        }
        tried += 1;
        let second = call(op, "echoTwoBbbbbbbbbbbbb").await;
        assert!(second.contains("echoTwoBbbbbbbbbbbbb") && !second.contains("echoOne"), "{}: {second}", op.id);
        let again = call(op, "echoOneAaaaaaaaaaaaa").await;
        assert!(again.contains("echoOneAaaaaaaaaaaaa") && !again.contains("echoTwo"), "{}: {again}", op.id);
    }
    assert!(tried > 0, "some stateless read of the corpus echoes its path parameter");
}
