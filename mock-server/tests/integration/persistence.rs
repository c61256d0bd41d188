//! `serve --state FILE`: what was created survives a restart, after a clean
//! shutdown and after a kill.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

async fn admin(server: &Server, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, format!("{}/__admin{path}", server.url));
    if let Some(b) = body {
        r = r.json(&b);
    }
    read(r.send().await.unwrap()).await
}

async fn api(server: &Server, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method, format!("{}{path}", server.url))
        .bearer_auth(token)
        .header("Version", VERSION);
    if let Some(b) = body {
        r = r.json(&b);
    }
    read(r.send().await.unwrap()).await
}

/// A new private integration and a contact made with it.
async fn make_things(server: &Server) -> (String, String) {
    let (status, created) = admin(
        server,
        Method::POST,
        "/integrations",
        Some(json!({"name": "Saved", "owner": {"location": "ghlMockLocationA0001"}, "scopes": ["contacts.readonly", "contacts.write"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let (status, contact) = api(
        server,
        Method::POST,
        "/contacts/",
        &token,
        Some(json!({"locationId": "ghlMockLocationA0001", "email": "kept@example.com"})),
    )
    .await;
    assert_eq!(status, 201, "{contact}");
    (token, contact["contact"]["id"].as_str().unwrap().to_string())
}

async fn still_there(server: &Server, token: &str, contact: &str) {
    let (status, body) = api(server, Method::GET, &format!("/contacts/{contact}"), token, None).await;
    assert_eq!((status, body["contact"]["email"].as_str()), (200, Some("kept@example.com")), "{body}");
}

#[tokio::test]
async fn tokens_and_contacts_survive_a_clean_restart() {
    let dir = scratch_dir("state-clean");
    let state = dir.join("state.json");
    let server = start_binary(&["--state".as_ref(), state.as_os_str()]);
    let (token, contact) = make_things(&server).await;
    assert!(server.terminate().success(), "a clean shutdown");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(!text.contains(&token), "the state file holds no full token");

    let server = start_binary(&["--state".as_ref(), state.as_os_str()]);
    assert!(!server.first_lines.concat().contains("pit-"), "a restored world mints no new token");
    still_there(&server, &token, &contact).await;
    server.terminate();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn what_was_saved_before_a_kill_is_there_after_it() {
    let dir = scratch_dir("state-kill");
    let state = dir.join("state.json");
    let mut server = start_binary(&["--state".as_ref(), state.as_os_str()]);
    let (token, contact) = make_things(&server).await;
    // Wait (bounded) until the saver has written the contact, then kill without warning.
    let mut saved = false;
    for _ in 0..100 {
        if std::fs::read_to_string(&state).is_ok_and(|t| t.contains(&contact)) {
            saved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(saved, "the state was saved within five seconds of the change");
    server.child.kill().unwrap();
    let _ = server.child.wait();
    let parsed: Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).expect("the file is whole JSON");
    assert_eq!(parsed["format"], 1);

    let server = start_binary(&["--state".as_ref(), state.as_os_str()]);
    still_there(&server, &token, &contact).await;
    server.terminate();
    let _ = std::fs::remove_dir_all(dir);
}
