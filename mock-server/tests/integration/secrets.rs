//! Secrets stay secret: the `ghl-mock` binary, run with every log line on,
//! goes through a full set of token scenarios; no full token appears in its
//! logs, and the only token on its standard output is the one it announces
//! at start-up.

use std::io::Read;

use reqwest::Method;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn no_full_token_appears_in_the_logs_of_a_full_run() {
    let dir = std::env::temp_dir().join(format!("ghl-mock-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture_path = dir.join("world.yaml");
    std::fs::write(
        &fixture_path,
        format!(
            "companies: [{{id: {COMPANY}, locations: [{{id: {LOC_A}}}]}}]\n\
             private_integrations: [{{name: Main, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly]}}]\n\
             oauth_apps: [{{client_id: test-client, client_secret: test-secret-value, scopes: [contacts.readonly]}}]\n"
        ),
    )
    .unwrap();
    let mut server = start_binary(&["--fixture".as_ref(), fixture_path.as_os_str()]);
    let announced = server
        .first_lines
        .iter()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("pit-")))
        .expect("minted PIT announced")
        .to_string();

    let http = reqwest::Client::new();
    let url = server.url.clone();
    let admin = |method: Method, path: &str, body: Option<serde_json::Value>| {
        let mut r = http.request(method, format!("{url}/__admin{path}"));
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move { read(r.send().await.unwrap()).await.1 }
    };
    let get = |token: String| {
        let r = http.get(format!("{url}/contacts/?locationId={LOC_A}")).bearer_auth(token).header("Version", VERSION);
        async move { read(r.send().await.unwrap()).await.0 }
    };

    let mut secrets = vec![announced.clone()];
    assert_eq!(get(announced.clone()).await, 200);
    let listed = admin(Method::GET, "/integrations", None).await;
    let id = listed["integrations"][0]["id"].as_str().unwrap().to_string();
    let rotated = admin(Method::POST, &format!("/integrations/{id}/rotate"), None).await;
    secrets.push(rotated["token"].as_str().unwrap().to_string());
    assert_eq!(get(secrets[1].clone()).await, 200);
    admin(Method::POST, "/clock/advance", Some(json!({"by": "8d"}))).await;
    assert_eq!(get(announced.clone()).await, 401);
    let created =
        admin(Method::POST, "/integrations", Some(json!({"name": "Extra", "owner": {"location": LOC_A}}))).await;
    secrets.push(created["token"].as_str().unwrap().to_string());
    assert_eq!(get(secrets[2].clone()).await, 401, "no scopes");
    admin(Method::DELETE, &format!("/integrations/{}", created["integration"]["id"].as_str().unwrap()), None).await;
    assert_eq!(get(secrets[2].clone()).await, 401);
    let code =
        admin(Method::POST, "/oauth/codes", Some(json!({"client_id": "test-client", "owner": {"location": LOC_A}})))
            .await;
    let response = http
        .post(format!("{url}/oauth/token"))
        .form(&[
            ("client_id", "test-client"),
            ("client_secret", "test-secret-value"),
            ("grant_type", "authorization_code"),
            ("code", code["code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let (_, tokens) = read(response).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(get(access.clone()).await, 200);
    assert_eq!(get(refresh.clone()).await, 401);
    secrets.extend([access, refresh, "test-secret-value".to_string()]);

    // SIGKILL is enough: everything logged so far is already written.
    server.child.kill().unwrap();
    let mut rest_of_stdout = String::new();
    server.child.stdout.take().unwrap().read_to_string(&mut rest_of_stdout).unwrap();
    let _ = server.child.wait();
    let logs = server.all_logs();
    let _ = std::fs::remove_dir_all(&dir);

    assert!(logs.contains("request"), "requests were logged at all:\n{logs}");
    assert!(logs.contains("pit:"), "tokens are named by fingerprint:\n{logs}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a full secret appears in the logs");
        assert!(!rest_of_stdout.contains(secret.as_str()), "a secret appears on stdout after the banner");
        if let Some(random) = secret.strip_prefix("pit-") {
            assert!(!logs.contains(random), "the random part of a PIT appears in the logs");
        }
    }
    let banner = server.first_lines.concat();
    assert_eq!(banner.matches("pit-").count(), 1, "the banner shows exactly the one minted PIT: {banner}");
}
