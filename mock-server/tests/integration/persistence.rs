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
async fn after_a_restart_new_records_and_tokens_never_replace_stored_ones() {
    let dir = scratch_dir("state-restart");
    let state = dir.join("state.log");
    let server = start_binary(&["--state".as_ref(), state.as_os_str()]);
    let (token, contact) = make_things(&server).await;
    server.terminate();
    for round in 0..3 {
        let server = start_binary(&["--state".as_ref(), state.as_os_str()]);
        // What the first run made is there, and what this run makes is new.
        let (new_token, new_contact) = {
            let (status, created) = admin(
                &server,
                Method::POST,
                "/integrations",
                Some(json!({"name": format!("Round {round}"), "owner": {"location": "ghlMockLocationA0001"}, "scopes": ["contacts.readonly", "contacts.write"]})),
            )
            .await;
            assert_eq!(status, 201, "{created}");
            let t = created["token"].as_str().unwrap().to_string();
            let (status, c) = api(
                &server,
                Method::POST,
                "/contacts/",
                &t,
                Some(json!({"locationId": "ghlMockLocationA0001", "email": format!("round{round}@example.com")})),
            )
            .await;
            assert_eq!(status, 201, "{c}");
            (t, c["contact"]["id"].as_str().unwrap().to_string())
        };
        assert_ne!(new_contact, contact);
        still_there(&server, &token, &contact).await;
        let (status, _) = api(&server, Method::GET, &format!("/contacts/{new_contact}"), &new_token, None).await;
        assert_eq!(status, 200);
        let (_, integrations) = admin(&server, Method::GET, "/integrations", None).await;
        assert_eq!(
            integrations["integrations"].as_array().map(Vec::len),
            Some(3 + round),
            "the default PIT, Saved and one per round: {integrations}"
        );
        server.terminate();
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Every contact of the default location A, paged through the list.
async fn all_contacts(server: &Server, token: &str) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    let mut path = "/contacts/?locationId=ghlMockLocationA0001&limit=100".to_string();
    loop {
        let (status, page) = api(server, Method::GET, &path, token, None).await;
        assert_eq!(status, 200, "{page}");
        ids.extend(page["contacts"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).map(str::to_string));
        match (page["meta"]["startAfter"].as_i64(), page["meta"]["startAfterId"].as_str()) {
            (Some(ms), Some(id)) => {
                path = format!("/contacts/?locationId=ghlMockLocationA0001&limit=100&startAfter={ms}&startAfterId={id}")
            }
            _ => return ids,
        }
    }
}

/// Creates contacts as fast as four clients can and kills the server at a
/// random moment; every create that was answered 2xx must be there after a
/// restart, and the file must always load. Twenty kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_create_survives_sigkill_at_random_moments() {
    let dir = scratch_dir("state-kill");
    let state = dir.join("state.log");
    let mut acknowledged: Vec<String> = Vec::new();
    let mut token = String::new();
    let mut rng = fastrand::Rng::with_seed(20261201);
    // The sandbox's 25 per 10 s would stop the writers long before a kill.
    for kill in 0..20 {
        let mut server = start_binary(&["--state".as_ref(), state.as_os_str(), "--no-rate-limits".as_ref()]);
        if kill == 0 {
            token = make_things(&server).await.0;
        }
        // Everything acknowledged before this restart is still there.
        let stored = all_contacts(&server, &token).await;
        let lost: Vec<&String> = acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
        assert!(lost.is_empty(), "kill {kill}: {} acknowledged contacts were lost: {lost:?}", lost.len());
        // Four clients at once, so group commit has company.
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let url = server.url.clone();
                let token = token.clone();
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut made = Vec::new();
                    for n in 0.. {
                        let sent = client
                            .post(format!("{url}/contacts/"))
                            .bearer_auth(&token)
                            .header("Version", VERSION)
                            .json(
                                &json!({"locationId": "ghlMockLocationA0001", "firstName": format!("k{kill}w{w}n{n}")}),
                            )
                            .send()
                            .await;
                        let Ok(response) = sent else { break };
                        if response.status().as_u16() != 201 {
                            break;
                        }
                        let Ok(body) = response.json::<Value>().await else { break };
                        match body["contact"]["id"].as_str() {
                            Some(id) => made.push(id.to_string()),
                            None => break,
                        }
                    }
                    made
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(rng.u64(30..250))).await;
        server.child.kill().unwrap();
        let _ = server.child.wait();
        for writer in writers {
            acknowledged.extend(writer.await.unwrap());
        }
    }
    let server = start_binary(&["--state".as_ref(), state.as_os_str(), "--no-rate-limits".as_ref()]);
    let stored = all_contacts(&server, &token).await;
    let lost = acknowledged.iter().filter(|id| !stored.contains(*id)).count();
    assert_eq!(lost, 0, "of {} acknowledged creates, {lost} were lost", acknowledged.len());
    assert!(acknowledged.len() >= 200, "the writers got creates through: {}", acknowledged.len());
    eprintln!("kill test: {} acknowledged creates over 20 kills, none lost", acknowledged.len());
    server.terminate();
    let _ = std::fs::remove_dir_all(dir);
}

/// `NAME=token` lines of a tokens file.
fn tokens_in(path: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).expect("the tokens file is there");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn the_tokens_file_holds_each_current_token_for_the_owner_only_through_rotation_reset_and_restart() {
    let dir = scratch_dir("tokens-file");
    let (state, tokens) = (dir.join("state.json"), dir.join("tokens.env"));
    let args = ["--state".as_ref(), state.as_os_str(), "--tokens-file".as_ref(), tokens.as_os_str()];
    let server = start_binary(&args);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "readable by its owner only");
    }
    let first = tokens_in(&tokens);
    assert_eq!(first.len(), 1, "the default fixture's one PIT: {first:?}");
    let (name, default_token) = first.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
    assert!(name.starts_with("GHL_PIT_") && server.first_lines.concat().contains(&default_token), "{name}");

    let (status, created) = admin(
        &server,
        Method::POST,
        "/integrations",
        Some(json!({"name": "CI job", "owner": {"location": "ghlMockLocationA0001"}, "scopes": ["contacts.readonly"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (id, token) = (created["integration"]["id"].as_str().unwrap(), created["token"].as_str().unwrap());
    assert_eq!(tokens_in(&tokens).get("GHL_PIT_CI_JOB").map(String::as_str), Some(token));

    let (_, rotated) = admin(&server, Method::POST, &format!("/integrations/{id}/rotate"), Some(json!({}))).await;
    let new_token = rotated["token"].as_str().unwrap();
    assert_eq!(tokens_in(&tokens).get("GHL_PIT_CI_JOB").map(String::as_str), Some(new_token), "the rotated token");
    admin(&server, Method::POST, &format!("/integrations/{id}/cancel-rotation"), None).await;
    assert_eq!(tokens_in(&tokens).get("GHL_PIT_CI_JOB").map(String::as_str), Some(token), "a cancel brings it back");

    // A restart mints nothing: the file keeps every token that still works.
    assert!(server.terminate().success());
    let server = start_binary(&args);
    assert!(!server.first_lines.concat().contains("pit-"), "a restored world prints no token");
    let kept = tokens_in(&tokens);
    assert_eq!(kept.get(&name), Some(&default_token), "{kept:?}");
    assert_eq!(kept.get("GHL_PIT_CI_JOB").map(String::as_str), Some(token), "{kept:?}");
    let (status, _) = api(&server, Method::GET, "/contacts/?locationId=ghlMockLocationA0001", token, None).await;
    assert_eq!(status, 200, "the token from the file works");

    admin(&server, Method::DELETE, &format!("/integrations/{id}"), None).await;
    assert!(!tokens_in(&tokens).contains_key("GHL_PIT_CI_JOB"), "a deleted integration leaves the file");
    let (_, reset) = admin(&server, Method::POST, "/reset", None).await;
    let fresh = reset["tokens"][0]["token"].as_str().unwrap();
    assert_eq!(tokens_in(&tokens).get(&name).map(String::as_str), Some(fresh), "a reset's tokens");
    server.terminate();
    let _ = std::fs::remove_dir_all(dir);
}
