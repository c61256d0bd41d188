//! Every inferred resource, walked over HTTP: create with a body generated
//! from the create schema → get shows what was sent plus the server's
//! fields → update → get shows the change → list includes it → delete →
//! get is not found. Over the embedded default and the official corpus.

use std::collections::BTreeMap;

use ghl_mock::spec::resources::{Action, Binding, Resource};
use ghl_mock::spec::{Operation, SpecSet};
use reqwest::Method;
use serde_json::Value;

use crate::support::*;

const LOCATION_PIT: &str = "Location PIT";
const AGENCY_PIT: &str = "Agency PIT";

/// Which kinds of token an operation takes: (location, agency) × (PIT ok).
fn accepts(op: &Operation) -> Vec<&'static str> {
    let schemes: Vec<&str> = op.security.iter().flat_map(|r| r.iter().map(|(s, _)| s.as_str())).collect();
    let mut out = Vec::new();
    if schemes.is_empty() || schemes.iter().any(|s| matches!(*s, "bearer" | "Location-Access")) {
        out.push(LOCATION_PIT);
    }
    if schemes.contains(&"Agency-Access") {
        out.push(AGENCY_PIT);
    }
    if schemes.contains(&"Location-Access-Only") {
        out.push(LOCATION_OAUTH);
    }
    if schemes.contains(&"Agency-Access-Only") {
        out.push(AGENCY_OAUTH);
    }
    out
}

const LOCATION_OAUTH: &str = "location OAuth token";
const AGENCY_OAUTH: &str = "agency OAuth token";

async fn start_all_scopes(set: SpecSet) -> TestMock {
    let scopes: Vec<String> = set.scopes().into_iter().map(|s| format!("\"{s}\"")).collect();
    let scopes = scopes.join(", ");
    TestMock::start(
        set,
        unlimited_fixture(&format!(
            "  - {{name: {LOCATION_PIT}, owner: {{location: {LOC_A}}}, scopes: [{scopes}]}}\n  - {{name: {AGENCY_PIT}, owner: {{company: {COMPANY}}}, scopes: [{scopes}]}}"
        )),
    )
    .await
}

fn at<'v>(value: &'v Value, path: &[String]) -> &'v Value {
    path.iter().fold(value, |v, k| v.get(k).unwrap_or(&Value::Null))
}

/// One step of a walk: the operation bound to `action`, if the resource has it.
fn step<'s>(set: &'s SpecSet, resource: &Resource, action: Action) -> Option<(usize, &'s Operation, &'s Binding)> {
    let (i, _) = resource.operations.iter().find(|(_, a)| *a == action)?;
    Some((*i, &set.operations[*i], set.resources.binding(*i)?))
}

struct Walker<'a> {
    m: &'a TestMock,
    refs: Vec<(&'static str, Value)>,
    /// OAuth access tokens for `*-Access-Only` operations.
    oauth: BTreeMap<&'static str, String>,
}

/// The record of an answer at `path` (the first, when the answer is a list).
fn record_at<'v>(value: &'v Value, path: &[String]) -> &'v Value {
    match at(value, path) {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    }
}

impl Walker<'_> {
    /// Sends `op` with `ids` in its path (the same value for the same
    /// parameter throughout a walk), its required query (a field of the
    /// walked `record` where one is named so), and the token `prefer` when
    /// the operation takes it.
    async fn send(
        &self,
        op: &Operation,
        ids: &BTreeMap<String, String>,
        record: &Value,
        prefer: Option<&'static str>,
        body: Option<Value>,
    ) -> (u16, Value, &'static str) {
        let named = |name: &str| {
            ids.get(name).cloned().or_else(|| record.get(name).and_then(Value::as_str).map(str::to_string))
        };
        let path = filled_path(op, |p| named(&p.name).unwrap_or_else(|| fill(p, 0)));
        // The first page, of everything the record's own fields name.
        let query: Vec<(String, String)> = required_query(op, 0)
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "skip" | "offset" => (k, "0".into()),
                "page" => (k, "1".into()),
                "limit" | "pageLimit" => (k, "20".into()),
                _ => match record.get(&k).and_then(Value::as_str) {
                    Some(field) => (k, field.to_string()),
                    None => (k, v),
                },
            })
            .collect();
        let mut request = self
            .m
            .http
            .request(op.method.clone(), format!("{}{path}", self.m.url))
            .query(&query)
            .header("Version", VERSION);
        let kinds = accepts(op);
        let kind = prefer.filter(|p| kinds.contains(p)).or(kinds.first().copied()).unwrap_or(LOCATION_PIT);
        let token = match self.oauth.get(kind) {
            Some(t) => t.clone(),
            None => self.m.token(kind),
        };
        request = request.bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, answer) = read(request.send().await.expect("request")).await;
        (status, answer, kind)
    }

    fn body(&self, op: &Operation, seed: u64) -> Option<Value> {
        let spec_body = op.body.as_ref()?;
        let mut body = valid(spec_body.schema.as_ref()?, spec_body.validator.as_deref(), seed);
        refer(&mut body, &self.refs);
        if let Some(map) = body.as_object_mut() {
            for (key, value) in
                [("locationId", LOC_A), ("altId", LOC_A), ("altType", "location"), ("companyId", COMPANY)]
            {
                if map.contains_key(key) {
                    map.insert(key.to_string(), Value::from(value));
                }
            }
        }
        Some(body)
    }

    /// Walks one resource; `Err` says which step failed and how.
    async fn walk(&self, set: &SpecSet, resource: &Resource) -> Result<Vec<&'static str>, String> {
        let mut done = Vec::new();
        let Some((ci, create, cb)) = step(set, resource, Action::Create) else { return Ok(done) };
        let Some((_, get, gb)) = step(set, resource, Action::Get) else { return Ok(done) };
        // Parents the path names exist first.
        let mut ids = records_for(self.m, ci).await;
        let sent = self.body(create, ci as u64);
        let (status, created, token) = self.send(create, &ids, &Value::Null, None, sent.clone()).await;
        let token = Some(token);
        if !(200..300).contains(&status) {
            return Err(format!("create {} {}: {status} {created}", create.method, create.path));
        }
        let record = record_at(&created, &cb.single);
        let id = record
            .get(&resource.id_field)
            .or_else(|| created.get("messageId"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("create {}: no id in {created}", create.path))?
            .to_string();
        done.push("create");
        if let Some(id_param) = &gb.id_param {
            ids.insert(id_param.clone(), id.clone());
        }
        let (status, got, _) = self.send(get, &ids, record, token, None).await;
        if status != 200 {
            return Err(format!("get {}: {status} {got}", get.path));
        }
        let stored = record_at(&got, &gb.single);
        if stored.get(&resource.id_field).and_then(Value::as_str) != Some(id.as_str()) {
            return Err(format!("get {}: another record: {got}", get.path));
        }
        // What was sent (and answered back by the create) reads back the same.
        if let (Some(Value::Object(sent)), Value::Object(answered)) = (&sent, record) {
            for (k, v) in sent {
                if answered.get(k) == Some(v) && stored.get(k) != Some(v) {
                    return Err(format!("get {}: {k} was {v} when created, reads {:?}", get.path, stored.get(k)));
                }
            }
        }
        done.push("get");
        if let Some((ui, update, ub)) = step(set, resource, Action::Update) {
            let change = self.body(update, ui as u64 + 1000);
            if let Some(id_param) = &ub.id_param {
                ids.insert(id_param.clone(), id.clone());
            }
            let (status, updated, _) = self.send(update, &ids, record, token, change.clone()).await;
            if !(200..300).contains(&status) {
                return Err(format!("update {} {}: {status} {updated}", update.method, update.path));
            }
            let (_, got, _) = self.send(get, &ids, record, token, None).await;
            let stored = record_at(&got, &gb.single);
            let answered = record_at(&updated, &ub.single);
            if let Some(Value::Object(change)) = &change {
                for (k, v) in change {
                    if ["locationId", "altId", "altType", "companyId"].contains(&k.as_str()) {
                        continue;
                    }
                    if answered.get(k) == Some(v) && stored.get(k).is_some() && stored.get(k) != Some(v) {
                        return Err(format!("update {}: {k} set to {v}, reads {:?}", update.path, stored.get(k)));
                    }
                }
            }
            done.push("update");
        }
        for action in [Action::List, Action::Search] {
            let Some((li, list, lb)) = step(set, resource, action) else { continue };
            // A search that names the record: its id as the query text, no filters.
            let body = if list.method == Method::POST { self.body(list, li as u64) } else { None };
            let body = body.map(|mut b| {
                if let Some(map) = b.as_object_mut() {
                    if map.contains_key("query") {
                        map.insert("query".into(), Value::from(id.clone()));
                    }
                    if map.get("filters").is_some_and(Value::is_array) {
                        map.insert("filters".into(), Value::Array(Vec::new()));
                    }
                    for key in ["page", "skip", "offset"] {
                        if map.get(key).is_some_and(Value::is_number) {
                            map.insert(key.into(), Value::from(u64::from(key == "page")));
                        }
                    }
                    for key in ["limit", "pageLimit"] {
                        if map.get(key).is_some_and(Value::is_number) {
                            map.insert(key.into(), Value::from(20));
                        }
                    }
                }
                b
            });
            let (status, listed, _) = self.send(list, &ids, record, token, body).await;
            if !(200..300).contains(&status) {
                return Err(format!(
                    "{} {} {}: {status} {listed} (created {created})",
                    action.name(),
                    list.method,
                    list.path
                ));
            }
            let items = at(&listed, &lb.list).as_array().cloned().unwrap_or_default();
            if !items.iter().any(|i| i.get(&resource.id_field).and_then(Value::as_str) == Some(id.as_str())) {
                return Err(format!("{} {}: {id} not among {listed}", action.name(), list.path));
            }
            done.push(action.name());
        }
        if let Some((_, delete, db)) = step(set, resource, Action::Delete) {
            if let Some(id_param) = &db.id_param {
                ids.insert(id_param.clone(), id.clone());
            }
            let (status, deleted, _) = self.send(delete, &ids, record, token, None).await;
            if !(200..300).contains(&status) {
                return Err(format!("delete {}: {status} {deleted}", delete.path));
            }
            let (status, gone, _) = self.send(get, &ids, record, token, None).await;
            let not_found =
                matches!(status, 400 | 404) && gone["message"].as_str().is_some_and(|m| m.ends_with("not found"));
            if !not_found {
                return Err(format!("get after delete {}: {status} {gone}", get.path));
            }
            done.push("delete");
        }
        Ok(done)
    }
}

async fn walk_all(set: SpecSet) -> (usize, usize, Vec<String>) {
    let m = start_all_scopes(set).await;
    let spec = m.mock.spec.clone();
    let all: Vec<String> = spec.scopes().into_iter().map(str::to_string).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut oauth = BTreeMap::new();
    for (name, owner) in [
        (LOCATION_OAUTH, serde_json::json!({"location": LOC_A})),
        (AGENCY_OAUTH, serde_json::json!({"company": COMPANY})),
    ] {
        let tokens = oauth_tokens(&m, owner, &all).await;
        oauth.insert(name, tokens["access_token"].as_str().unwrap_or_default().to_string());
    }
    let walker = Walker { refs: references(&m, "walk").await, m: &m, oauth };
    let (mut walked, mut steps, mut problems) = (0, 0, Vec::new());
    for resource in &spec.resources.resources {
        let walkable = [Action::Create, Action::Get].iter().all(|a| resource.operations.iter().any(|(_, b)| b == a));
        if !walkable {
            continue;
        }
        match walker.walk(&spec, resource).await {
            Ok(done) => {
                walked += 1;
                steps += done.len();
            }
            Err(e) => problems.push(format!("{}: {e}", resource.collection)),
        }
    }
    (walked, steps, problems)
}

/// Resources that can be walked: created and read back.
fn walkable(set: &SpecSet) -> usize {
    set.resources
        .resources
        .iter()
        .filter(|r| [Action::Create, Action::Get].iter().all(|a| r.operations.iter().any(|(_, b)| b == a)))
        .count()
}

#[tokio::test]
async fn every_resource_of_the_official_corpus_reads_back_what_was_written() {
    let Some(dir) = corpus_dir() else { return };
    let set = ghl_mock::spec::load(ghl_mock::Source::Dir(dir), 1).expect("corpus loads");
    let expected = walkable(&set);
    let (resources, bound) = (set.resources.resources.len(), set.resources.bound());
    let (walked, steps, problems) = walk_all(set).await;
    assert!(problems.is_empty(), "{} of {expected} resources failed:\n{}", problems.len(), problems.join("\n"));
    assert_eq!(walked, expected, "every resource with a create and a get was walked");
    eprintln!("walked {walked} of {resources} resources ({bound} bound operations), {steps} steps");
}

#[tokio::test]
async fn every_resource_of_the_default_surface_reads_back_what_was_written() {
    let set = embedded();
    let expected = walkable(&set);
    let (walked, _, problems) = walk_all(set).await;
    assert!(problems.is_empty(), "{} of {expected} resources failed:\n{}", problems.len(), problems.join("\n"));
    assert_eq!(walked, expected);
    assert!(walked >= 3, "the default surface keeps contacts, notes and opportunities at least: {walked}");
}

#[test]
fn check_specs_prints_the_resource_table_and_every_stateless_operation_with_its_reason() {
    let Some(dir) = corpus_dir() else { return };
    let set = ghl_mock::spec::load(ghl_mock::Source::Dir(dir.clone()), 1).expect("corpus loads");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ghl-mock"))
        .arg("check-specs")
        .arg(&dir)
        .output()
        .expect("check-specs runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let table = &set.resources;
    let header = format!(
        "resources: {} ({} of {} operations answer from state; {} stateless)",
        table.resources.len(),
        table.bound(),
        set.operations.len(),
        table.stateless.len()
    );
    assert!(text.contains(&header), "no '{header}' in:\n{text}");
    assert_eq!(table.bound() + table.stateless.len(), set.operations.len(), "every operation is bound or explained");
    for resource in &table.resources {
        assert!(
            text.contains(&format!("  {:<42} ", resource.collection)),
            "{} is not in the table",
            resource.collection
        );
    }
    for (i, reason) in &table.stateless {
        let op = &set.operations[*i];
        assert!(
            text.contains(&format!("  {} {}: {reason}", op.method, op.path)),
            "{} {} is not explained",
            op.method,
            op.path
        );
    }
    let contacts = table.by_kind("/contacts").expect("contacts are a resource").1;
    assert_eq!(contacts.item.as_deref(), Some("/contacts/{contactId}"));
    assert!(text.contains("      upsert:POST /contacts/upsert"), "the contact upsert is bound");
}
