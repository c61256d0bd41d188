//! Issue 13: webhooks reach a handler the test runs on loopback, signed,
//! routed, filtered by scope and location, and retried on the mock's clock.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::support::*;

/// A client id in HighLevel's shape; `appId` in payloads is the part before the dash.
const APP: &str = "665c6bb13d4e5364bdec0e2f-mawqjyjd";
const APP_ID: &str = "665c6bb13d4e5364bdec0e2f";
const OTHER_APP: &str = "6878cec452e7c8d29d4dd3d9-k2xq7pla";

/// One request the handler received.
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A webhook handler on loopback that answers the scripted statuses in turn
/// (then the last one forever) and hands every request to the test.
struct Handler {
    url: String,
    got: mpsc::UnboundedReceiver<Received>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Handler {
    async fn start(answers: &[u16]) -> Handler {
        let (tx, got) = mpsc::unbounded_channel();
        let answers = std::sync::Arc::new(std::sync::Mutex::new(answers.to_vec()));
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let answers = answers.clone();
            async move {
                let status = {
                    let mut a = answers.lock().unwrap();
                    if a.len() > 1 {
                        a.remove(0)
                    } else {
                        a[0]
                    }
                };
                let _ = tx.send(Received { path: uri.path().to_string(), headers, body });
                StatusCode::from_u16(status).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Handler { url, got, _stop: stop }
    }

    /// The next request; a deadline only so that a broken mock fails instead of hanging.
    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(20), self.got.recv())
            .await
            .expect("the handler got a webhook in time")
            .expect("the handler is running")
    }

    /// Nothing more arrived (call after a flush: every due attempt was made by then).
    fn nothing_more(&mut self) -> bool {
        self.got.try_recv().is_err()
    }
}

/// Two locations of one agency, a PIT for each, and the given apps and installs.
fn world(apps_yaml: &str, installs_yaml: &str) -> ghl_mock::Fixture {
    let installs_yaml = if installs_yaml.trim().is_empty() { "  []" } else { installs_yaml };
    let text = format!(
        r#"
companies:
  - id: {COMPANY}
    name: Test Agency
    environment: sandbox
    rate_limits: {{burst: 100000, window_ms: 10000, daily: 10000000}}
    locations:
      - id: {LOC_A}
        records:
          pipelines: [{{id: testPipeline00000001, name: Sales, stages: [{{id: testStageNew00000001, name: New}}]}}]
          calendars: [{{id: testCalendar00000001, name: Intro Call}}]
      - {{id: {LOC_B}}}
private_integrations:
  - name: a
    owner: {{location: {LOC_A}}}
    scopes: [contacts.readonly, contacts.write, opportunities.readonly, opportunities.write, conversations/message.write, calendars/events.write]
  - {{name: b, owner: {{location: {LOC_B}}}, scopes: [contacts.readonly, contacts.write]}}
oauth_apps:
{apps_yaml}
oauth_installs:
{installs_yaml}
"#
    );
    ghl_mock::fixture::parse("webhooks.yaml", &text).expect("fixture parses")
}

async fn start(apps_yaml: &str, installs_yaml: &str) -> TestMock {
    TestMock::start(embedded(), world(apps_yaml, installs_yaml)).await
}

fn app(client_id: &str, scopes: &str, webhooks: &str) -> String {
    format!("  - {{client_id: {client_id}, client_secret: s3cret, scopes: [{scopes}], webhooks: {webhooks}}}\n")
}

async fn create_contact(m: &TestMock, pit: &str, location: &str, email: &str) -> String {
    let response = m
        .http
        .post(format!("{}/contacts/", m.url))
        .bearer_auth(m.token(pit))
        .header("Version", VERSION)
        .json(&json!({"locationId": location, "firstName": "Ada", "email": email}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, 201, "{body}");
    body["contact"]["id"].as_str().unwrap().to_string()
}

async fn contact_call(m: &TestMock, method: Method, id: &str, body: Option<Value>) {
    let mut request =
        m.http.request(method, format!("{}/contacts/{id}", m.url)).bearer_auth(m.token("a")).header("Version", VERSION);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, answer) = read(request.send().await.unwrap()).await;
    assert!((200..300).contains(&status), "{status} {answer}");
}

async fn flush(m: &TestMock) {
    let (status, body) = m.admin(Method::POST, "/webhooks/flush", None).await;
    assert_eq!(status, 200, "{body}");
}

async fn deliveries(m: &TestMock, query: &str) -> Vec<Value> {
    let (status, body) = m.admin(Method::GET, &format!("/webhooks/deliveries{query}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

async fn advance(m: &TestMock, ms: i64) {
    let (status, body) = m.admin(Method::POST, "/clock/advance", Some(json!({"by": format!("{ms}ms")}))).await;
    assert_eq!(status, 200, "{body}");
}

fn now(m: &TestMock) -> i64 {
    m.mock.clock.now_ms()
}

#[tokio::test]
async fn a_created_contact_reaches_the_handler_signed_over_the_exact_bytes_it_received() {
    let mut handler = Handler::start(&[200]).await;
    let hooks = format!("{{url: '{}/hook'}}", handler.url);
    let m =
        start(&app(APP, "contacts.readonly", &hooks), &format!("  - {{client_id: {APP}, location: {LOC_A}}}")).await;
    let id = create_contact(&m, "a", LOC_A, "ada@example.com").await;
    let got = handler.next().await;

    let (status, key) = m.admin(Method::GET, "/webhooks/public-key", None).await;
    assert_eq!(status, 200, "{key}");
    let public = VerifyingKey::from_public_key_pem(key["pem"].as_str().unwrap()).expect("an SPKI PEM Ed25519 key");
    let raw = base64::engine::general_purpose::STANDARD.decode(key["raw_base64"].as_str().unwrap()).unwrap();
    assert_eq!(raw, public.to_bytes(), "the raw key is the PEM's key");
    let header = got.headers.get("x-ghl-signature").expect("x-ghl-signature").to_str().unwrap();
    let signature = base64::engine::general_purpose::STANDARD.decode(header).unwrap();
    let signature = Signature::from_slice(&signature).expect("64 bytes");
    assert!(public.verify(&got.body, &signature).is_ok(), "the signature verifies over the received bytes");
    let mut changed = got.body.to_vec();
    changed[10] ^= 1;
    assert!(public.verify(&changed, &signature).is_err(), "a one-byte change fails it");

    let payload = got.json();
    assert_eq!(got.path, "/hook");
    assert_eq!(got.headers.get("content-type").unwrap(), "application/json");
    assert!(got.headers.get("x-wh-signature").is_none(), "the legacy RSA header is off, as HighLevel since 2026-09-01");
    assert_eq!(payload["type"], "ContactCreate");
    assert_eq!(payload["locationId"], LOC_A);
    assert_eq!((payload["appId"].as_str(), payload["versionId"].as_str()), (Some(APP_ID), Some(APP_ID)));
    assert_eq!((payload["id"].as_str(), payload["email"].as_str()), (Some(id.as_str()), Some("ada@example.com")));
    assert!(uuid::Uuid::parse_str(payload["webhookId"].as_str().unwrap()).is_ok());
    assert_eq!(payload["timestamp"], ghl_mock::clock::iso8601(now(&m)));
    let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
    assert_eq!((keys[0].as_str(), keys[1].as_str()), ("type", "locationId"));
    assert_eq!(keys.last().unwrap().as_str(), "webhookId");
    assert_eq!(serde_json::to_vec(&payload).unwrap(), got.body.to_vec(), "compact JSON, as JSON.stringify writes it");
}

#[tokio::test]
async fn a_handler_failing_twice_gets_three_attempts_with_one_webhook_id_at_backoff_intervals_on_the_virtual_clock() {
    let mut handler = Handler::start(&[500, 500, 200]).await;
    let hooks = format!("{{url: '{}/hook'}}", handler.url);
    let m =
        start(&app(APP, "contacts.readonly", &hooks), &format!("  - {{client_id: {APP}, location: {LOC_A}}}")).await;
    create_contact(&m, "a", LOC_A, "retry@example.com").await;
    let first = handler.next().await;
    flush(&m).await;
    let d = &deliveries(&m, "").await[0];
    let (at1, due1) = (d["attempts"][0]["at_ms"].as_i64().unwrap(), d["next_attempt_at_ms"].as_i64().unwrap());
    assert_eq!(d["attempts"][0]["status"], 500);
    assert!(
        (10_000..=15_000).contains(&(due1 - at1)),
        "the first retry is 10 s plus up to 50% jitter later: {}",
        due1 - at1
    );

    advance(&m, due1 - now(&m) - 1).await;
    flush(&m).await;
    assert!(handler.nothing_more(), "not sent a millisecond before it is due");
    advance(&m, 1).await;
    let second = handler.next().await;
    flush(&m).await;
    let d = &deliveries(&m, "").await[0];
    let (at2, due2) = (d["attempts"][1]["at_ms"].as_i64().unwrap(), d["next_attempt_at_ms"].as_i64().unwrap());
    assert_eq!(at2, due1, "sent when it fell due on the mock's clock");
    assert!((20_000..=30_000).contains(&(due2 - at2)), "the second retry waits twice as long: {}", due2 - at2);

    advance(&m, due2 - now(&m)).await;
    let third = handler.next().await;
    flush(&m).await;
    let d = &deliveries(&m, "").await[0];
    assert_eq!(d["state"], "delivered");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(d["attempts"][2]["at_ms"].as_i64(), Some(due2));
    assert_eq!(d["next_attempt_at_ms"], Value::Null);
    assert_eq!(
        (first.body.clone(), second.body.clone()),
        (third.body.clone(), third.body.clone()),
        "the same bytes each time"
    );
    assert_eq!(first.json()["webhookId"], d["webhook_id"]);
    assert!(handler.nothing_more());
}

#[tokio::test]
async fn a_handler_that_never_succeeds_gets_thirteen_attempts_and_a_report_finding() {
    let mut handler = Handler::start(&[503]).await;
    let hooks = format!("{{url: '{}/hook'}}", handler.url);
    let m =
        start(&app(APP, "contacts.readonly", &hooks), &format!("  - {{client_id: {APP}, location: {LOC_A}}}")).await;
    create_contact(&m, "a", LOC_A, "never@example.com").await;
    let mut ids = vec![handler.next().await.json()["webhookId"].clone()];
    for _ in 0..12 {
        flush(&m).await;
        let due = deliveries(&m, "").await[0]["next_attempt_at_ms"].as_i64().expect("a retry is scheduled");
        advance(&m, due - now(&m)).await;
        ids.push(handler.next().await.json()["webhookId"].clone());
    }
    flush(&m).await;
    let d = &deliveries(&m, "").await[0];
    assert_eq!(d["attempts"].as_array().unwrap().len(), 13);
    assert_eq!((d["state"].as_str(), &d["next_attempt_at_ms"]), (Some("abandoned"), &Value::Null));
    assert!(ids.iter().all(|id| *id == ids[0]), "one webhookId on every attempt");
    advance(&m, 86_400_000).await;
    flush(&m).await;
    assert!(handler.nothing_more(), "no 14th attempt");

    let (status, report) = m.admin(Method::GET, "/report?format=json", None).await;
    assert_eq!(status, 200, "{report}");
    let finding = |kind: &str| report["findings"].as_array().unwrap().iter().find(|f| f["kind"] == kind).cloned();
    assert_eq!(finding("webhook_abandoned").expect("abandoned finding")["count"], 1);
    assert_eq!(finding("webhook_non_2xx").expect("non-2xx finding")["count"], 13);
}

#[tokio::test]
async fn install_and_uninstall_on_the_control_plane_send_install_and_uninstall_to_the_default_url() {
    let mut handler = Handler::start(&[200]).await;
    let hooks = format!("{{url: '{0}/default', urls: {{ContactCreate: '{0}/contacts'}}}}", handler.url);
    let m = start(&app(APP, "contacts.readonly", &hooks), "").await;
    let (status, installed) =
        m.admin(Method::POST, "/oauth/installs", Some(json!({"client_id": APP, "location": LOC_A}))).await;
    assert_eq!(status, 201, "{installed}");
    let got = handler.next().await;
    let install = got.json();
    assert_eq!(got.path, "/default", "INSTALL goes to the default URL, whatever the per-event URLs");
    assert_eq!(install["type"], "INSTALL");
    assert_eq!((install["appId"].as_str(), install["installType"].as_str()), (Some(APP_ID), Some("Location")));
    assert_eq!((install["locationId"].as_str(), install["companyId"].as_str()), (Some(LOC_A), Some(COMPANY)));
    assert_eq!(install["companyName"], "Test Agency");

    // The install is real: its code gives a location token.
    let (status, tokens) = exchange_code(&m, APP, "s3cret", installed["code"].as_str().unwrap()).await;
    assert_eq!((status, tokens["locationId"].as_str()), (200, Some(LOC_A)), "{tokens}");

    create_contact(&m, "a", LOC_A, "before@example.com").await;
    assert_eq!(handler.next().await.path, "/contacts", "a per-event URL routes its event");

    let id = installed["install"]["id"].as_str().unwrap();
    let (status, body) = m.admin(Method::DELETE, &format!("/oauth/installs/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    let got = handler.next().await;
    assert_eq!((got.path.as_str(), got.json()["type"].as_str()), ("/default", Some("UNINSTALL")));
    assert_eq!(got.json()["locationId"], LOC_A);

    create_contact(&m, "a", LOC_A, "after@example.com").await;
    flush(&m).await;
    assert!(handler.nothing_more(), "an uninstalled app gets no more events");
    assert_eq!(deliveries(&m, "?event=ContactCreate").await.len(), 1);
}

#[tokio::test]
async fn per_event_urls_route_each_event_and_events_turned_off_are_not_sent() {
    let mut handler = Handler::start(&[200]).await;
    let hooks = format!(
        "{{url: '{0}/default', events: [ContactCreate, ContactDelete], urls: {{ContactCreate: '{0}/created'}}}}",
        handler.url
    );
    let m =
        start(&app(APP, "contacts.readonly", &hooks), &format!("  - {{client_id: {APP}, location: {LOC_A}}}")).await;
    let id = create_contact(&m, "a", LOC_A, "route@example.com").await;
    contact_call(&m, Method::PUT, &id, Some(json!({"lastName": "Lovelace"}))).await;
    contact_call(&m, Method::DELETE, &id, None).await;
    flush(&m).await;
    let sent: Vec<(String, String)> = deliveries(&m, "")
        .await
        .iter()
        .map(|d| (d["event"].as_str().unwrap().to_string(), d["url"].as_str().unwrap().to_string()))
        .collect();
    let url = |p: &str| format!("{}{p}", handler.url);
    assert_eq!(
        sent,
        vec![("ContactCreate".to_string(), url("/created")), ("ContactDelete".to_string(), url("/default"))],
        "ContactUpdate is off"
    );
    let mut paths = [handler.next().await.path, handler.next().await.path];
    paths.sort();
    assert_eq!(paths, ["/created", "/default"], "the handler got them where the journal says");
}

#[tokio::test]
async fn an_app_without_contacts_readonly_gets_no_contact_events() {
    let handler = Handler::start(&[200]).await;
    let hooks = format!("{{url: '{}/hook'}}", handler.url);
    let apps = app(APP, "contacts.readonly", &hooks) + &app(OTHER_APP, "opportunities.readonly", &hooks);
    let installs =
        format!("  - {{client_id: {APP}, location: {LOC_A}}}\n  - {{client_id: {OTHER_APP}, location: {LOC_A}}}\n");
    let m = start(&apps, &installs).await;
    create_contact(&m, "a", LOC_A, "scoped@example.com").await;
    flush(&m).await;
    let with = deliveries(&m, &format!("?client_id={APP}")).await;
    let without = deliveries(&m, &format!("?client_id={OTHER_APP}")).await;
    assert_eq!(with.iter().map(|d| d["event"].as_str().unwrap()).collect::<Vec<_>>(), ["ContactCreate"]);
    assert!(without.is_empty(), "no contacts.readonly, no contact events: {without:?}");
}

#[tokio::test]
async fn events_of_a_location_are_not_sent_to_installs_of_another_location() {
    let mut handler = Handler::start(&[200]).await;
    let hooks = format!("{{url: '{}/hook'}}", handler.url);
    let m =
        start(&app(APP, "contacts.readonly", &hooks), &format!("  - {{client_id: {APP}, location: {LOC_B}}}")).await;
    create_contact(&m, "a", LOC_A, "a@example.com").await;
    flush(&m).await;
    assert!(handler.nothing_more(), "the app is installed on B only");
    assert!(deliveries(&m, "").await.is_empty());
    create_contact(&m, "b", LOC_B, "b@example.com").await;
    assert_eq!(handler.next().await.json()["locationId"], LOC_B);
}

#[tokio::test]
async fn a_customer_reply_on_the_control_plane_sends_inbound_message_and_files_it() {
    let mut handler = Handler::start(&[200]).await;
    let hooks = format!("{{url: '{}/hook'}}", handler.url);
    let m = start(
        &app(APP, "contacts.readonly, conversations/message.readonly", &hooks),
        &format!("  - {{client_id: {APP}, location: {LOC_A}}}"),
    )
    .await;
    let contact = create_contact(&m, "a", LOC_A, "reply@example.com").await;
    assert_eq!(handler.next().await.json()["type"], "ContactCreate");
    let (status, body) = m
        .admin(
            Method::POST,
            "/webhooks/inbound-message",
            Some(json!({"locationId": LOC_A, "contactId": contact, "body": "Yes, Tuesday works"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let inbound = handler.next().await.json();
    assert_eq!(inbound["type"], "InboundMessage");
    assert_eq!(
        (inbound["body"].as_str(), inbound["contactId"].as_str()),
        (Some("Yes, Tuesday works"), Some(contact.as_str()))
    );
    assert_eq!((inbound["direction"].as_str(), inbound["messageType"].as_str()), (Some("inbound"), Some("SMS")));
    assert_eq!(inbound["conversationId"], body["message"]["conversationId"]);
    let (status, _) = m
        .admin(
            Method::POST,
            "/webhooks/inbound-message",
            Some(json!({"locationId": LOC_A, "contactId": "nobody", "body": "x"})),
        )
        .await;
    assert_eq!(status, 404, "an unknown contact is refused");
}

#[tokio::test]
async fn a_manual_resend_that_succeeds_delivers_a_failing_webhook_and_cancels_its_retries() {
    let mut handler = Handler::start(&[500, 200]).await;
    let hooks = format!("{{url: '{}/hook'}}", handler.url);
    let m =
        start(&app(APP, "contacts.readonly", &hooks), &format!("  - {{client_id: {APP}, location: {LOC_A}}}")).await;
    create_contact(&m, "a", LOC_A, "resend@example.com").await;
    handler.next().await;
    flush(&m).await;
    let id = deliveries(&m, "").await[0]["webhook_id"].as_str().unwrap().to_string();
    let (status, body) = m.admin(Method::POST, &format!("/webhooks/deliveries/{id}/resend"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["attempt"]["status"].as_u64(), body["delivery"]["state"].as_str()),
        (Some(200), Some("delivered"))
    );
    assert!(body["delivery"]["attempts"][1]["manual"].as_bool().unwrap());
    assert_eq!(body["delivery"]["next_attempt_at_ms"], Value::Null, "no retry is left");
    let (status, _) = m.admin(Method::POST, &format!("/webhooks/deliveries/{id}/resend"), None).await;
    assert_eq!(status, 409, "a delivered webhook is not resent");
    let (status, _) = m.admin(Method::POST, "/webhooks/deliveries/nope/resend", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_webhook_settings_are_refused_with_the_reason() {
    let m = start(&app(APP, "contacts.readonly", "{url: 'http://127.0.0.1:9/'}"), "").await;
    let (status, body) = m
        .admin(Method::PUT, &format!("/oauth/apps/{APP}/webhooks"), Some(json!({"url": "ftp://x/", "events": []})))
        .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("http or https"), "{body}");
    let (status, body) =
        m.admin(Method::PUT, &format!("/oauth/apps/{APP}/webhooks"), Some(json!({"events": ["ContactCreat"]}))).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("ContactCreat"), "{body}");
    let (status, _) = m.admin(Method::POST, "/oauth/installs", Some(json!({"client_id": APP}))).await;
    assert_eq!(status, 400, "an install names a location or a company");
    let (status, _) =
        m.admin(Method::POST, "/oauth/installs", Some(json!({"client_id": APP, "location": "nowhere"}))).await;
    assert_eq!(status, 400);
    let bad = ghl_mock::fixture::parse(
        "bad.yaml",
        &format!("oauth_apps:\n  - {{client_id: x, client_secret: y, webhooks: {{url: 'not a url'}}}}\ncompanies: [{{id: {COMPANY}}}]"),
    )
    .unwrap();
    let refused = ghl_mock::Mock::start(
        embedded(),
        ghl_mock::Config::default(),
        ghl_mock::Clock::frozen(0),
        Some(("bad.yaml".into(), bad)),
    );
    assert!(refused.err().map(|e| e.to_string()).unwrap_or_default().contains("not a URL"));
}

#[tokio::test]
async fn an_opportunity_status_change_sends_update_and_status_update_as_real_deliveries_do() {
    let handler = Handler::start(&[200]).await;
    let hooks = format!(
        "{{url: '{}/hook', events: [OpportunityCreate, OpportunityUpdate, OpportunityStatusUpdate]}}",
        handler.url
    );
    let m = start(&app(APP, "opportunities.readonly", &hooks), &format!("  - {{client_id: {APP}, location: {LOC_A}}}"))
        .await;
    let contact = create_contact(&m, "a", LOC_A, "deal@example.com").await;
    let call = |method: Method, path: String, body: Value| {
        m.http
            .request(method, format!("{}{path}", m.url))
            .bearer_auth(m.token("a"))
            .header("Version", VERSION)
            .json(&body)
            .send()
    };
    let body = json!({"locationId": LOC_A, "name": "Deal", "status": "open", "contactId": contact,
        "pipelineId": "testPipeline00000001", "pipelineStageId": "testStageNew00000001", "monetaryValue": 100});
    let (status, created) = read(call(Method::POST, "/opportunities/".into(), body).await.unwrap()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["opportunity"]["id"].as_str().unwrap().to_string();
    flush(&m).await;
    let (status, answer) =
        read(call(Method::PUT, format!("/opportunities/{id}"), json!({"status": "won"})).await.unwrap()).await;
    assert_eq!(status, 200, "{answer}");
    flush(&m).await;
    let sent = deliveries(&m, "").await;
    let events: Vec<&str> = sent.iter().map(|d| d["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["OpportunityCreate", "OpportunityUpdate", "OpportunityUpdate", "OpportunityStatusUpdate"]);
    let status_update = &sent[3]["payload"];
    assert_eq!((status_update["id"].as_str(), status_update["status"].as_str()), (Some(id.as_str()), Some("won")));
    assert_eq!(status_update["assignedTo"], Value::Null, "an unset assignee is sent as null");
    let ids: std::collections::HashSet<&str> = sent.iter().map(|d| d["webhook_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "each event of a fan-out has its own webhookId");
}

#[tokio::test]
async fn a_handler_that_does_not_answer_in_time_is_a_failed_attempt_named_as_a_timeout() {
    // Accepts the connection and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let mut config = ghl_mock::Config::default();
    config.fidelity.webhooks.timeout_ms = 300;
    config.fidelity.webhooks.slow_ms = 200;
    let fixture = world(
        &app(APP, "contacts.readonly", &format!("{{url: '{url}'}}")),
        &format!("  - {{client_id: {APP}, location: {LOC_A}}}"),
    );
    let m = TestMock::start_with(embedded(), fixture, config, ghl_mock::Clock::frozen(1_767_225_600_000)).await;
    create_contact(&m, "a", LOC_A, "slow@example.com").await;
    flush(&m).await;
    let d = &deliveries(&m, "").await[0];
    assert_eq!((d["state"].as_str(), &d["attempts"][0]["status"]), (Some("pending"), &Value::Null));
    assert_eq!(d["attempts"][0]["error"], "no answer within 300 ms");
    assert!(d["next_attempt_at_ms"].is_i64(), "no answer is retried");
    let (_, report) = m.admin(Method::GET, "/report?format=json", None).await;
    assert!(report["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "webhook_slow"), "{report}");
    held.abort();
}

#[tokio::test]
async fn the_legacy_rsa_signature_is_sent_when_the_fidelity_setting_asks_for_it() {
    use rsa::pkcs8::DecodePublicKey as _;
    use sha2::Digest;
    let mut handler = Handler::start(&[200]).await;
    let mut config = ghl_mock::Config::default();
    config.fidelity.webhooks.legacy_signature = true;
    let fixture = world(
        &app(APP, "contacts.readonly", &format!("{{url: '{}/hook'}}", handler.url)),
        &format!("  - {{client_id: {APP}, location: {LOC_A}}}"),
    );
    let m = TestMock::start_with(embedded(), fixture, config, ghl_mock::Clock::frozen(1_767_225_600_000)).await;
    create_contact(&m, "a", LOC_A, "legacy@example.com").await;
    let got = handler.next().await;
    let (_, key) = m.admin(Method::GET, "/webhooks/public-key", None).await;
    let public = rsa::RsaPublicKey::from_public_key_pem(key["legacy"]["pem"].as_str().unwrap()).unwrap();
    let header = got.headers.get("x-wh-signature").expect("x-wh-signature").to_str().unwrap();
    let signature = base64::engine::general_purpose::STANDARD.decode(header).unwrap();
    assert_eq!(signature.len(), 512, "RSA-4096, as HighLevel's key");
    let scheme = || rsa::Pkcs1v15Sign::new::<sha2::Sha256>();
    assert!(public.verify(scheme(), &sha2::Sha256::digest(&got.body), &signature).is_ok());
    let mut changed = got.body.to_vec();
    changed[3] ^= 1;
    assert!(public.verify(scheme(), &sha2::Sha256::digest(&changed), &signature).is_err());
    assert!(got.headers.get("x-ghl-signature").is_some(), "both headers, as during the transition");
}

#[tokio::test]
async fn a_location_created_with_an_agency_token_sends_location_create_to_the_agency_install() {
    let Some(dir) = corpus_dir() else { return };
    let spec = ghl_mock::spec::load(ghl_mock::Source::Dir(dir), 1).expect("corpus loads");
    let mut handler = Handler::start(&[200]).await;
    let text = format!(
        r#"
companies:
  - id: {COMPANY}
    environment: production
    locations: [{{id: {LOC_A}}}]
private_integrations:
  - {{name: agency, owner: {{company: {COMPANY}}}, scopes: [locations.write, locations.readonly]}}
oauth_apps:
  - {{client_id: {APP}, client_secret: s, scopes: [locations.readonly], webhooks: {{url: '{}/hook'}}}}
  - {{client_id: {OTHER_APP}, client_secret: s, scopes: [locations.readonly], webhooks: {{url: '{}/other'}}}}
oauth_installs:
  - {{client_id: {APP}, company: {COMPANY}}}
  - {{client_id: {OTHER_APP}, location: {LOC_A}}}
"#,
        handler.url, handler.url
    );
    let fixture = ghl_mock::fixture::parse("agency.yaml", &text).unwrap();
    let m = TestMock::start(spec, fixture).await;
    let response = m
        .http
        .post(format!("{}/locations/", m.url))
        .bearer_auth(m.token("agency"))
        .header("Version", VERSION)
        .json(&json!({"name": "New Branch", "companyId": COMPANY}))
        .send()
        .await
        .unwrap();
    let (status, created) = read(response).await;
    assert!((200..300).contains(&status), "{status} {created}");
    let got = handler.next().await;
    let event = got.json();
    assert_eq!((got.path.as_str(), event["type"].as_str()), ("/hook", Some("LocationCreate")));
    assert_eq!((event["companyId"].as_str(), event["name"].as_str()), (Some(COMPANY), Some("New Branch")));
    assert!(event.get("locationId").is_none(), "LocationCreate names the new location in `id`, not `locationId`");
    assert!(event["id"].is_string());
    flush(&m).await;
    assert!(handler.nothing_more(), "a location-level install gets no agency event");
}

#[test]
fn the_banner_prints_the_public_key_that_the_control_plane_and_the_cli_publish() {
    let server = start_binary(&[]);
    let line = server
        .first_lines
        .iter()
        .find(|l| l.contains("WEBHOOK_SIGNATURE_PUBLIC_KEY="))
        .cloned()
        .expect("the banner names the key setting");
    let raw = line.split("WEBHOOK_SIGNATURE_PUBLIC_KEY=").nth(1).and_then(|r| r.split_whitespace().next()).unwrap();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(raw).unwrap().len(), 32, "a raw Ed25519 key");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ghl-mock"))
        .args(["webhooks", "public-key", "--url", &server.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["raw_base64"], raw);
    assert!(server.terminate().success());
}

#[tokio::test]
async fn a_bulk_install_sends_one_install_per_location_and_its_agency_token_mints_their_location_tokens() {
    let mut handler = Handler::start(&[200]).await;
    let hooks = format!("{{url: '{}/hook'}}", handler.url);
    let m = start(&app(APP, "contacts.readonly, oauth.write", &hooks), "").await;
    let (status, installed) = m
        .admin(
            Method::POST,
            "/oauth/installs",
            Some(json!({"client_id": APP, "company": COMPANY, "locations": [LOC_A, LOC_B]})),
        )
        .await;
    assert_eq!(status, 201, "{installed}");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(handler.next().await.json());
    }
    // Sent at once, so they may arrive in any order (HighLevel promises no order either).
    let mut kinds: Vec<(&str, Option<&str>)> =
        got.iter().map(|g| (g["installType"].as_str().unwrap(), g["locationId"].as_str())).collect();
    kinds.sort();
    assert_eq!(kinds, [("Company", None), ("Location", Some(LOC_A)), ("Location", Some(LOC_B))]);
    assert!(got.iter().all(|g| g["type"] == "INSTALL" && g["companyId"] == COMPANY));

    // What the official SDKs do with a location INSTALL: the agency token mints the location's token.
    let (status, agency) = exchange_code(&m, APP, "s3cret", installed["code"].as_str().unwrap()).await;
    assert_eq!((status, agency["userType"].as_str()), (200, Some("Company")), "{agency}");
    let response = m
        .http
        .post(format!("{}/oauth/locationToken", m.url))
        .bearer_auth(agency["access_token"].as_str().unwrap())
        .header("Version", VERSION)
        .form(&[("companyId", COMPANY), ("locationId", LOC_B)])
        .send()
        .await
        .unwrap();
    let (status, location) = read(response).await;
    assert_eq!((status, location["locationId"].as_str()), (200, Some(LOC_B)), "{location}");

    create_contact(&m, "b", LOC_B, "bulk@example.com").await;
    assert_eq!(handler.next().await.json()["locationId"], LOC_B, "a location of the bulk install gets its events");
    let (status, _) =
        m.admin(Method::POST, "/oauth/installs", Some(json!({"client_id": APP, "location": LOC_A}))).await;
    assert_eq!(status, 409, "installed there already");
}

#[tokio::test]
async fn no_token_secret_or_private_key_appears_in_deliveries_payloads_or_logs() {
    let mut handler = Handler::start(&[500, 200]).await;
    let seed = [7u8; 32];
    let seed_text = base64::engine::general_purpose::STANDARD.encode(seed);
    let pit = "pit-2b0c5a4e-3f7d-4c1e-9a6b-8d2e1f0a7c35";
    let dir = scratch_dir("webhook-secrets");
    let path = dir.join("world.yaml");
    std::fs::write(
        &path,
        format!(
            "companies: [{{id: {COMPANY}, locations: [{{id: {LOC_A}}}]}}]\n\
             private_integrations: [{{name: Main, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly, contacts.write], token: {pit}}}]\n\
             oauth_apps: [{{client_id: {APP}, client_secret: the-app-secret-value, scopes: [contacts.readonly], webhooks: {{url: '{}/hook'}}}}]\n\
             webhooks: {{signing_key: '{seed_text}'}}\n",
            handler.url
        ),
    )
    .unwrap();
    let mut server = start_binary(&["--fixture".as_ref(), path.as_os_str()]);
    let http = reqwest::Client::new();
    let admin = |method: Method, p: &str, body: Option<Value>| {
        let mut r = http.request(method, format!("{}/__admin{p}", server.url));
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move { read(r.send().await.unwrap()).await.1 }
    };
    let installed = admin(Method::POST, "/oauth/installs", Some(json!({"client_id": APP, "location": LOC_A}))).await;
    let code = installed["code"].as_str().unwrap().to_string();
    let created = http
        .post(format!("{}/contacts/", server.url))
        .bearer_auth(pit)
        .header("Version", VERSION)
        .json(&json!({"locationId": LOC_A, "firstName": "Sec", "email": "sec@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mut received = String::new();
    for _ in 0..2 {
        received.push_str(&String::from_utf8_lossy(&handler.next().await.body));
    }
    assert!(received.contains("INSTALL") && received.contains("ContactCreate"), "{received}");
    admin(Method::POST, "/webhooks/flush", None).await;
    let key = admin(Method::GET, "/webhooks/public-key", None).await;
    let expected = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    assert_eq!(
        base64::engine::general_purpose::STANDARD.decode(key["raw_base64"].as_str().unwrap()).unwrap(),
        expected,
        "the fixture's key signs"
    );
    let journal = admin(Method::GET, "/webhooks/deliveries", None).await.to_string();
    assert!(journal.contains("ContactCreate") && journal.contains("INSTALL"), "{journal}");
    let (status, logs) = server.terminate_and_logs();
    assert!(status.success());
    for secret in [pit, "the-app-secret-value", code.as_str(), seed_text.as_str()] {
        assert!(!journal.contains(secret), "the deliveries journal holds a secret");
        assert!(!logs.contains(secret), "the logs hold a secret");
        assert!(!received.contains(secret), "a payload holds a secret");
    }
    assert!(logs.contains("webhook attempt"), "the attempts were logged, at trace level");
}

#[tokio::test]
async fn two_senders_sharing_one_outbox_deliver_each_event_once() {
    use ghl_mock::state::deliveries::{Deliveries, MemoryDeliveries};
    use ghl_mock::webhooks::{Event, Install, Target, Webhooks};
    use ghl_mock::world::{Company, Environment, Location, OAuthApp, Owner, World};
    let mut handler = Handler::start(&[200]).await;
    let clock = ghl_mock::Clock::frozen(1_767_225_600_000);
    let store: std::sync::Arc<dyn Deliveries> = std::sync::Arc::new(MemoryDeliveries::new(100));
    let replicas: Vec<Webhooks> =
        (0..2).map(|_| Webhooks::new(Default::default(), clock.clone(), store.clone(), None)).collect();
    let mut world = World::default();
    world.add_company(Company { id: COMPANY.into(), name: "A".into(), environment: Environment::Sandbox });
    world.add_location(Location { id: LOC_A.into(), name: "A".into(), company_id: COMPANY.into() }).unwrap();
    world.apps.insert(
        APP.into(),
        OAuthApp {
            client_id: APP.into(),
            client_secret: "s".into(),
            name: String::new(),
            scopes: vec![],
            webhooks: Some(ghl_mock::webhooks::AppWebhooks {
                url: Some(format!("{}/hook", handler.url)),
                ..Default::default()
            }),
        },
    );
    let install = Install {
        id: "i1".into(),
        client_id: APP.into(),
        owner: Owner::Location(LOC_A.into()),
        company_id: COMPANY.into(),
        scopes: vec!["contacts.readonly".into()],
        user_id: "u".into(),
        installed_at_ms: 0,
    };
    world.installs.insert(install.id.clone(), install);
    let event = |n: usize| Event {
        kind: "ContactCreate".into(),
        scope: Some("contacts.readonly"),
        target: Target::Location(LOC_A.into()),
        fields: json!({"id": format!("contact{n}")}).as_object().cloned().unwrap(),
    };
    for replica in &replicas {
        replica.start();
    }
    // Each replica queues the events of its own requests; both send.
    replicas[0].emit(&world, (0..10).map(event).collect()).await;
    replicas[1].emit(&world, (10..20).map(event).collect()).await;
    for replica in &replicas {
        replica.wake();
        replica.flush().await;
    }
    let mut ids = std::collections::HashMap::new();
    for _ in 0..20 {
        *ids.entry(handler.next().await.json()["webhookId"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    for replica in &replicas {
        replica.flush().await;
    }
    assert!(handler.nothing_more(), "nothing was sent twice");
    assert_eq!(ids.len(), 20);
    assert!(ids.values().all(|n| *n == 1));
    assert_eq!(replicas[0].public_key().await.unwrap(), replicas[1].public_key().await.unwrap(), "one key for both");
}

#[tokio::test]
async fn a_note_a_sent_message_and_an_appointment_each_send_their_event_with_its_shape() {
    let handler = Handler::start(&[200]).await;
    let hooks = format!("{{url: '{}/hook'}}", handler.url);
    let m = start(
        &app(APP, "contacts.readonly, conversations/message.readonly, calendars/events.readonly", &hooks),
        &format!("  - {{client_id: {APP}, location: {LOC_A}}}"),
    )
    .await;
    let contact = create_contact(&m, "a", LOC_A, "shapes@example.com").await;
    let post = |path: &str, body: Value| {
        m.http.post(format!("{}{path}", m.url)).bearer_auth(m.token("a")).header("Version", VERSION).json(&body).send()
    };
    let (status, note) =
        read(post(&format!("/contacts/{contact}/notes"), json!({"body": "Called", "title": "t"})).await.unwrap()).await;
    assert_eq!(status, 201, "{note}");
    let (status, sent) = read(
        post("/conversations/messages", json!({"type": "SMS", "contactId": contact, "message": "Hi"})).await.unwrap(),
    )
    .await;
    assert!((200..300).contains(&status), "{sent}");
    let booking = json!({"calendarId": "testCalendar00000001", "locationId": LOC_A, "contactId": contact,
        "startTime": "2026-01-02T10:00:00.000Z", "title": "Intro"});
    let (status, booked) = read(post("/calendars/events/appointments", booking).await.unwrap()).await;
    assert!((200..300).contains(&status), "{booked}");
    flush(&m).await;
    let sent_events = deliveries(&m, "").await;
    let kinds: Vec<&str> = sent_events.iter().map(|d| d["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ContactCreate", "NoteCreate", "OutboundMessage", "AppointmentCreate"]);
    let note = sent_events[1]["payload"].as_object().unwrap();
    let keys: Vec<&str> = note.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["type", "locationId", "versionId", "appId", "id", "body", "contactId", "dateAdded", "timestamp", "webhookId"],
        "notes are built from a fixed allowlist"
    );
    let message = &sent_events[2]["payload"];
    assert_eq!((message["direction"].as_str(), message["body"].as_str()), (Some("outbound"), Some("Hi")));
    assert_eq!((message["messageType"].as_str(), message["messageTypeId"].as_u64()), (Some("SMS"), Some(2)));
    assert_eq!(message["contactId"], contact.as_str());
    let appointment = &sent_events[3]["payload"]["appointment"];
    assert_eq!(
        (appointment["calendarId"].as_str(), appointment["title"].as_str()),
        (Some("testCalendar00000001"), Some("Intro"))
    );
    assert_eq!(appointment["contactId"], contact.as_str());
}
