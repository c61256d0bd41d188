//! Many clients at once on the records interface: nothing is lost, nothing
//! is doubled, and no mix of readers and writers can stall the mock (the
//! store is never held across an await or taken twice by one request).

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

async fn call(m: &TestMock, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = m.http.request(method, format!("{}{path}", m.url)).bearer_auth(token).header("Version", VERSION);
    if let Some(b) = body {
        request = request.json(&b);
    }
    read(request.send().await.expect("request")).await
}

/// One client's life: create contacts, read them, tag them, note them, list
/// their notes, and delete every other one. Returns the ids it kept.
async fn client(m: &TestMock, token: String, location: &'static str, n: usize) -> Result<Vec<String>, String> {
    let mut kept = Vec::new();
    for i in 0..25 {
        let email = format!("c{n}-{i}@{location}.example");
        let (status, created) = call(
            m,
            Method::POST,
            "/contacts/",
            &token,
            Some(json!({"locationId": location, "email": email, "firstName": format!("Client{n}")})),
        )
        .await;
        if status != 201 {
            return Err(format!("create: {status} {created}"));
        }
        let id = created["contact"]["id"].as_str().unwrap_or_default().to_string();
        let tags = json!({"tags": [format!("t{}", i % 3), "shared"]});
        let (status, tagged) = call(m, Method::POST, &format!("/contacts/{id}/tags"), &token, Some(tags)).await;
        if status != 201 && status != 200 {
            return Err(format!("tag: {status} {tagged}"));
        }
        let (status, note) =
            call(m, Method::POST, &format!("/contacts/{id}/notes"), &token, Some(json!({"body": "hello"}))).await;
        if !(200..300).contains(&status) {
            return Err(format!("note: {status} {note}"));
        }
        // The read that once took the store twice.
        let (status, notes) = call(m, Method::GET, &format!("/contacts/{id}/notes"), &token, None).await;
        if status != 200 || notes["notes"].as_array().map(Vec::len) != Some(1) {
            return Err(format!("notes: {status} {notes}"));
        }
        let (status, got) = call(m, Method::GET, &format!("/contacts/{id}"), &token, None).await;
        if status != 200 || got["contact"]["email"] != email.as_str() {
            return Err(format!("get: {status} {got}"));
        }
        if i % 2 == 0 {
            let (status, gone) = call(m, Method::DELETE, &format!("/contacts/{id}"), &token, None).await;
            if status != 200 {
                return Err(format!("delete: {status} {gone}"));
            }
        } else {
            kept.push(id);
        }
    }
    Ok(kept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_clients_creating_tagging_and_deleting_across_locations_lose_nothing() {
    let scopes = "[contacts.readonly, contacts.write]";
    let m = TestMock::start(
        embedded(),
        unlimited_fixture(&format!(
            "  - {{name: A, owner: {{location: {LOC_A}}}, scopes: {scopes}}}\n  - {{name: B, owner: {{location: {LOC_B}}}, scopes: {scopes}}}"
        )),
    )
    .await;
    let m = std::sync::Arc::new(m);
    let mut tasks = Vec::new();
    for n in 0..16 {
        let m = m.clone();
        let (name, location) = if n % 2 == 0 { ("A", LOC_A) } else { ("B", LOC_B) };
        let token = m.token(name);
        tasks.push(tokio::spawn(async move { (location, client(&m, token, location, n).await) }));
    }
    let everything = async {
        let mut kept: Vec<(&str, String)> = Vec::new();
        for task in tasks {
            let (location, result) = task.await.expect("client task");
            kept.extend(result.expect("every request of every client succeeded").into_iter().map(|id| (location, id)));
        }
        kept
    };
    let kept = tokio::time::timeout(Duration::from_secs(120), everything)
        .await
        .expect("16 clients × 25 contacts finish well within two minutes: no stall");
    for (location, name) in [(LOC_A, "A"), (LOC_B, "B")] {
        let wanted: BTreeSet<String> = kept.iter().filter(|(l, _)| *l == location).map(|(_, id)| id.clone()).collect();
        let (status, listed) =
            call(&m, Method::GET, &format!("/contacts/?locationId={location}&limit=100"), &m.token(name), None).await;
        assert_eq!(status, 200);
        let got: BTreeSet<String> =
            listed["contacts"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(listed["meta"]["total"], wanted.len(), "{location}: every kept contact and no other");
        assert_eq!(got, wanted, "{location}: the listed contacts are exactly the kept ones");
        for c in listed["contacts"].as_array().unwrap() {
            let tags: Vec<&str> = c["tags"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            assert_eq!(tags.iter().filter(|t| **t == "shared").count(), 1, "tags are a set: {c}");
        }
    }
    assert_eq!(kept.len(), 16 * 12, "each client kept its odd contacts");
}
