//! Per-request control of answers (Prefer and its query twins), control-plane
//! rules with delays and faults, and echoed request values.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

async fn start() -> TestMock {
    TestMock::start(
        embedded(),
        unlimited_fixture(&format!(
            "  - {{name: A, owner: {{location: {LOC_A}}}, scopes: [calendars.readonly, locations.readonly, contacts.readonly]}}"
        )),
    )
    .await
}

async fn get(m: &TestMock, path: &str, prefer: Option<&str>) -> (u16, Value) {
    let mut r = m.http.get(format!("{}{path}", m.url)).bearer_auth(m.token("A")).header("Version", VERSION);
    if let Some(p) = prefer {
        r = r.header("Prefer", p);
    }
    read(r.send().await.unwrap()).await
}

/// A mock whose fidelity profile `set` changes, with a contacts reader "A".
async fn start_with_fidelity(set: impl FnOnce(&mut ghl_mock::Fidelity)) -> TestMock {
    let mut config = ghl_mock::Config::default();
    set(&mut config.fidelity);
    let pit = format!("  - {{name: A, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly]}}");
    TestMock::start_with(embedded(), unlimited_fixture(&pit), config, ghl_mock::Clock::frozen(0)).await
}

fn calendars() -> String {
    format!("/calendars/?locationId={LOC_A}")
}

#[tokio::test]
async fn prefer_code_200_cannot_bypass_a_401_or_a_429() {
    let m = start().await;
    let response = m
        .http
        .get(format!("{}{}", m.url, calendars()))
        .header("Version", VERSION)
        .header("Prefer", "code=200")
        .send()
        .await
        .unwrap();
    assert_eq!(read(response).await.0, 401);
    m.admin(Method::POST, "/limits/injections", Some(json!({"target": {"resource": LOC_A}, "count": 1}))).await;
    assert_eq!(get(&m, &calendars(), Some("code=200")).await.0, 429);
    assert_eq!(get(&m, &format!("{}&__code=200", calendars()), None).await.0, 200);
}

#[tokio::test]
async fn prefer_code_serves_a_declared_response_and_the_api_shape_for_an_undeclared_one() {
    let m = start().await;
    let (status, body) = get(&m, &format!("/locations/{LOC_A}"), Some("code=400")).await;
    assert_eq!(status, 400);
    assert!(body["statusCode"].is_number() && body["message"].is_string(), "BadRequestDTO shape: {body}");
    let (status, body) = get(&m, &format!("{}&__code=503", calendars()), None).await;
    assert_eq!((status, body), (503, json!({"statusCode": 503, "message": "Service Unavailable"})));
}

#[tokio::test]
async fn prefer_example_picks_a_named_example_and_dynamic_generates_fresh_valid_bodies() {
    let m = start().await;
    let spec = m.mock.spec.clone();
    let op = spec.operations.iter().find(|o| o.id == "get-location").unwrap();
    let (name, example) = op.success.examples.first().expect("get-location has an example").clone();
    let (status, body) = get(&m, &format!("/locations/{LOC_A}"), Some(&format!("example={name}"))).await;
    assert_eq!((status, body), (200, example));

    let op = spec.operations.iter().find(|o| o.id == "get-calendars").unwrap();
    let (_, first) = get(&m, &calendars(), Some("dynamic=true")).await;
    let (_, second) = get(&m, &format!("{}&__dynamic=true", calendars()), None).await;
    assert_ne!(first, second, "two dynamic answers differ");
    for body in [&first, &second] {
        assert!(op.success.validator.as_ref().unwrap().is_valid(body), "dynamic bodies validate: {body}");
    }
}

#[tokio::test]
async fn a_rule_answers_the_next_calls_of_its_method_and_path_then_ends() {
    let m = start().await;
    let (status, _) = m
        .admin(
            Method::POST,
            "/rules",
            Some(json!({"method": "GET", "path": "/calendars/**", "count": 2, "status": 503, "body": {"down": true}})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(get(&m, &calendars(), None).await, (503, json!({"down": true})));
    assert_eq!(get(&m, &calendars(), None).await.0, 503);
    assert_eq!(get(&m, &calendars(), None).await.0, 200, "the rule is spent");
    assert_eq!(m.admin(Method::GET, "/rules", None).await.1, json!({"rules": []}));
}

#[tokio::test]
async fn a_delay_rule_makes_a_short_client_timeout_fire() {
    let m = start().await;
    m.admin(Method::POST, "/rules", Some(json!({"path": "/calendars/**", "count": 1, "latency_ms": 5000}))).await;
    let timed_out = m
        .http
        .get(format!("{}{}", m.url, calendars()))
        .bearer_auth(m.token("A"))
        .header("Version", VERSION)
        .timeout(std::time::Duration::from_millis(200))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()), "the client gave up before the delayed answer");
    assert_eq!(get(&m, &calendars(), None).await.0, 200, "the next call is not delayed");
}

#[tokio::test]
async fn fault_rules_reset_or_truncate_the_answer() {
    let m = start().await;
    for fault in ["reset", "truncate"] {
        m.admin(Method::POST, "/rules", Some(json!({"path": "/calendars/**", "count": 1, "fault": fault}))).await;
        let outcome = async {
            let response = m
                .http
                .get(format!("{}{}", m.url, calendars()))
                .bearer_auth(m.token("A"))
                .header("Version", VERSION)
                .send()
                .await?;
            response.bytes().await
        }
        .await;
        assert!(outcome.is_err(), "{fault}: the client sees a broken answer, got {outcome:?}");
    }
    assert_eq!(get(&m, &calendars(), None).await.0, 200);
}

#[tokio::test]
async fn bad_rules_are_refused_and_change_nothing() {
    let m = start().await;
    for rule in [
        json!({"path": "no-slash"}),
        json!({"path": "/x", "status": 99}),
        json!({"path": "/x", "count": 0}),
        json!({"path": "/x", "latency_ms": 10, "latency_max_ms": 5}),
    ] {
        let (status, body) = m.admin(Method::POST, "/rules", Some(rule.clone())).await;
        assert_eq!(status, 400, "{rule}: {body}");
    }
    assert_eq!(m.admin(Method::GET, "/rules", None).await.1, json!({"rules": []}));
}

/// A spec of one operation the mock keeps no state for (nothing creates or
/// lists its records), answered from its schema.
const STATELESS: &str = r#"
openapi: 3.0.0
info: {title: stateless, version: "1"}
paths:
  /reports/{reportId}:
    get:
      operationId: get-report
      security: [{bearer: [locations.readonly]}]
      parameters:
        - {name: reportId, in: path, required: true, schema: {type: string}}
        - {name: locationId, in: query, required: true, schema: {type: string}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                properties:
                  report:
                    type: object
                    properties: {id: {type: string}, locationId: {type: string}, title: {type: string}}
"#;

#[tokio::test]
async fn spec_driven_answers_echo_the_requests_ids() {
    let dir = scratch_dir("stateless-spec");
    std::fs::write(dir.join("reports.yaml"), STATELESS).unwrap();
    let set = ghl_mock::spec::load(ghl_mock::Source::Dir(dir.clone()), 1).expect("loads");
    assert!(!set.stateful(0), "nothing keeps reports");
    let m = TestMock::start(
        set,
        unlimited_fixture(&format!("  - {{name: A, owner: {{location: {LOC_A}}}, scopes: [locations.readonly]}}")),
    )
    .await;
    let (status, body) = get(&m, &format!("/reports/rep00000000000000042?locationId={LOC_A}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["report"]["id"].as_str(), Some("rep00000000000000042"), "the path's id: {body}");
    assert_eq!(body["report"]["locationId"].as_str(), Some(LOC_A), "the query's location: {body}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_wrong_method_answers_expresss_404_by_default_and_405_with_allow_as_a_setting() {
    let m = start().await;
    let token = m.token("A");
    let patch = |m: &TestMock| {
        m.http
            .patch(format!("{}/contacts/?locationId={LOC_A}", m.url))
            .bearer_auth(&token)
            .header("Version", VERSION)
            .send()
    };
    let response = patch(&m).await.unwrap();
    assert!(response.headers().get("allow").is_none());
    assert_eq!(
        read(response).await,
        (404, json!({"statusCode": 404, "message": "Cannot PATCH /contacts/", "error": "Not Found"}))
    );
    let strict = start_with_fidelity(|f| f.wrong_method = ghl_mock::config::WrongMethod::MethodNotAllowed).await;
    let response = patch(&strict).await.unwrap();
    let allow = response.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(response.status().as_u16(), 405);
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[tokio::test]
async fn paths_route_in_any_case_as_express_does_unless_the_setting_says_otherwise() {
    let m = start().await;
    let token = m.token("A");
    let get = |m: &TestMock, path: &str| {
        m.http.get(format!("{}{path}", m.url)).bearer_auth(&token).header("Version", VERSION).send()
    };
    let (status, body) = read(get(&m, &format!("/Contacts/?locationId={LOC_A}")).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["contacts"].is_array(), "the contacts list: {body}");
    let strict = start_with_fidelity(|f| f.case_insensitive_paths = false).await;
    let (status, body) = read(get(&strict, &format!("/Contacts/?locationId={LOC_A}")).await.unwrap()).await;
    assert_eq!((status, body["message"].as_str()), (404, Some("Cannot GET /Contacts/")));
}

#[test]
fn a_sandbox_company_holds_at_most_two_locations_unless_the_setting_says_otherwise() {
    let three = "companies: [{id: sandboxCo, environment: sandbox, locations: [{id: l1}, {id: l2}, {id: l3}]}]";
    let fixture = ghl_mock::fixture::parse("three.yaml", three).unwrap();
    let refused = ghl_mock::Mock::start(
        embedded(),
        ghl_mock::Config::default(),
        ghl_mock::Clock::frozen(0),
        Some(("three.yaml".into(), fixture.clone())),
    );
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("sandboxCo holds 3 locations") && message.contains("at most 2"), "{message}");
    let mut config = ghl_mock::Config::default();
    config.fidelity.sandbox_max_locations = 0;
    assert!(ghl_mock::Mock::start(
        embedded(),
        config,
        ghl_mock::Clock::frozen(0),
        Some(("three.yaml".into(), fixture))
    )
    .is_ok());
    let production = three.replace("sandbox, locations", "production, locations");
    let fixture = ghl_mock::fixture::parse("prod.yaml", &production).unwrap();
    assert!(
        ghl_mock::Mock::start(
            embedded(),
            ghl_mock::Config::default(),
            ghl_mock::Clock::frozen(0),
            Some(("prod.yaml".into(), fixture))
        )
        .is_ok(),
        "a production agency holds any number"
    );
}
