//! Secrets stay secret: a full run of token scenarios, with every log line
//! captured at the most verbose level, never shows a full token.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::json;

use crate::support::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// current_thread: the server's tasks run on this thread, under this subscriber.
#[tokio::test(flavor = "current_thread")]
async fn no_full_token_appears_in_the_logs_of_a_full_run() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let m = TestMock::start(
        embedded(),
        fixture(&format!(
            "  - {{name: Main, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly]}}"
        )),
    )
    .await;
    let mut secrets = vec![m.token("Main")];
    let id = m.integration_id("Main");
    let path = format!("/contacts/?locationId={LOC_A}");

    m.get(&path, &secrets[0]).await;
    let (_, rotated) = m.admin(Method::POST, &format!("/integrations/{id}/rotate"), None).await;
    secrets.push(rotated["token"].as_str().unwrap().to_string());
    m.get(&path, &secrets[1]).await;
    m.mock.clock.advance_ms(8 * 86_400_000);
    m.get(&path, &secrets[0]).await;
    let (_, created) = m
        .admin(
            Method::POST,
            "/integrations",
            Some(json!({"name": "Extra", "owner": {"location": LOC_A}, "scopes": []})),
        )
        .await;
    secrets.push(created["token"].as_str().unwrap().to_string());
    m.get(&path, &secrets[2]).await;
    m.admin(
        Method::DELETE,
        &format!("/integrations/{}", created["integration"]["id"].as_str().unwrap()),
        None,
    )
    .await;
    m.get(&path, &secrets[2]).await;

    let (_, code) = m
        .admin(
            Method::POST,
            "/oauth/codes",
            Some(json!({"client_id": "test-client", "owner": {"location": LOC_A}, "scopes": ["contacts.readonly"]})),
        )
        .await;
    let response = m
        .http
        .post(format!("{}/oauth/token", m.url))
        .form(&[
            ("client_id", "test-client"),
            ("client_secret", "test-secret"),
            ("grant_type", "authorization_code"),
            ("code", code["code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let (_, tokens) = read(response).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    m.get(&path, &access).await;
    m.get(&path, &refresh).await;
    secrets.extend([access, refresh, "test-secret".to_string()]);

    drop(_guard);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("request"), "requests were logged at all:\n{logs}");
    assert!(logs.contains("pit:"), "tokens are named by fingerprint:\n{logs}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a full secret appears in the logs");
        // Not even the random part of a PIT.
        if let Some(random) = secret.strip_prefix("pit-") {
            assert!(!logs.contains(random), "the random part of a PIT appears in the logs");
        }
    }
}
