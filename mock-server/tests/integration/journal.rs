//! The request journal and the client behaviour report over HTTP, and the
//! two example clients (`examples/good_client.rs`, `examples/bad_client.rs`)
//! run against an in-process mock with injected 429s, a 5xx and a token
//! deleted mid-run: the report must tell them apart.
//!
//! The clients wait through a hook; here it moves the mock's virtual clock
//! (the fixture starts it frozen), so a client that waits ten seconds takes
//! none, and every time in the journal is exact.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ghl_mock::auth::secret::fingerprint;
use ghl_mock::report::{Kind, Report};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

#[allow(dead_code)]
#[path = "../../examples/good_client.rs"]
mod good_client;

#[allow(dead_code)]
#[path = "../../examples/bad_client.rs"]
mod bad_client;

fn clients() -> String {
    format!(
        "  - {{name: Sandbox, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly, contacts.write]}}\n\
         \x20 - {{name: Production, owner: {{location: {LOC_C}}}, scopes: [contacts.readonly, contacts.write]}}\n"
    )
}

/// A request with or without a token and `Version`; the status.
async fn send(m: &TestMock, path: &str, token: Option<&str>, version: bool) -> u16 {
    let mut r = m.http.get(format!("{}{path}", m.url));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if version {
        r = r.header("Version", VERSION);
    }
    r.send().await.unwrap().status().as_u16()
}

async fn journal(m: &TestMock, query: &str) -> Value {
    let (status, body) = m.admin(Method::GET, &format!("/journal{query}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn entries(answer: &Value) -> &Vec<Value> {
    answer["entries"].as_array().unwrap()
}

async fn count(m: &TestMock, pattern: Value) -> u64 {
    let (status, body) = m.admin(Method::POST, "/journal/count", Some(pattern)).await;
    assert_eq!(status, 200, "{body}");
    body["count"].as_u64().unwrap()
}

async fn report(m: &TestMock) -> Report {
    let (status, body) = m.admin(Method::GET, "/report", None).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn report_as(m: &TestMock, format: &str) -> String {
    let response = m.http.get(format!("{}/__admin/report?format={format}", m.url)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

fn kinds(report: &Report) -> Vec<Kind> {
    report.findings.iter().map(|f| f.kind).collect()
}

/// The sequence the first tests share: one request of each outcome.
async fn one_of_each(m: &TestMock, token: &str) {
    let contacts = format!("/contacts/?locationId={LOC_A}");
    assert_eq!(send(m, &contacts, Some(token), true).await, 200);
    assert_eq!(send(m, &contacts, Some(token), false).await, 401);
    assert_eq!(send(m, &format!("/locations/{LOC_A}"), Some(token), true).await, 401);
    assert_eq!(send(m, &format!("/contacts/?locationId={LOC_B}"), Some(token), true).await, 403);
    assert_eq!(send(m, &contacts, Some("pit-00000000-0000-4000-8000-000000000000"), true).await, 401);
    assert_eq!(send(m, &contacts, None, true).await, 401);
    assert_eq!(send(m, "/nothing/here", Some(token), true).await, 404);
    let (status, _) =
        m.admin(Method::POST, "/limits/injections", Some(json!({"target": {"resource": LOC_A}, "count": 1}))).await;
    assert_eq!(status, 201);
    assert_eq!(send(m, &contacts, Some(token), true).await, 429);
    m.mock.clock.advance_ms(1_000);
    assert_eq!(send(m, &format!("{contacts}&limit=1000"), Some(token), true).await, 422);
}

async fn reader() -> (TestMock, String) {
    let m = TestMock::start(
        embedded(),
        fixture(&format!("  - {{name: A, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly]}}")),
    )
    .await;
    let token = m.token("A");
    (m, token)
}

#[tokio::test]
async fn the_journal_records_each_api_request_with_why_it_was_refused_and_not_the_control_plane() {
    let (m, token) = reader().await;
    one_of_each(&m, &token).await;
    let answer = journal(&m, "").await;
    let got: Vec<(u64, Value)> =
        entries(&answer).iter().map(|e| (e["status"].as_u64().unwrap(), e["refused"].clone())).collect();
    assert_eq!(
        got,
        vec![
            (200, Value::Null),
            (401, json!("version_missing")),
            (401, json!("scope")),
            (403, json!("location")),
            (401, json!("invalid_token")),
            (401, json!("missing_token")),
            (404, json!("not_found")),
            (429, json!("rate_limited_injected")),
            (422, json!("validation")),
        ],
        "nine API requests; the injection and this listing are not among them"
    );
    let list = entries(&answer);
    let first = &list[0];
    assert_eq!(
        (&first["method"], &first["path"], &first["operation"], &first["location"]),
        (&json!("GET"), &json!("/contacts/"), &json!("get-contacts"), &json!(LOC_A))
    );
    assert_eq!(first["token"], json!(fingerprint(&token)));
    assert_eq!(first["rate"], json!({"remaining": 24, "daily_remaining": 9_999, "interval_ms": 10_000}));
    assert_eq!((&first["version_sent"], &first["version"]), (&json!(true), &json!(VERSION)));
    assert_eq!((&first["idempotent"], &first["at_ms"]), (&json!(true), &json!(1_767_225_600_000_i64)));
    assert_eq!((&list[1]["version_sent"], &list[1]["version"]), (&json!(false), &Value::Null));
    assert_eq!(list[4]["location"], json!(LOC_A), "an unknown token: the location the request named");
    assert_eq!(list[4]["rate"], Value::Null, "no rate-limit state before the token is known");
    assert_eq!(list[5]["token"], json!("none"));
    assert_eq!(list[6]["operation"], Value::Null);
    assert_eq!(list[8]["at_ms"], json!(1_767_225_601_000_i64), "times are the mock's clock");
    let indices: Vec<u64> = list.iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert!(indices.windows(2).all(|w| w[1] == w[0] + 1), "indices count up: {indices:?}");
}

#[tokio::test]
async fn journal_filters_and_the_count_pattern_select_the_same_requests() {
    let (m, token) = reader().await;
    one_of_each(&m, &token).await;
    let fp = fingerprint(&token);
    let statuses = |answer: &Value| entries(answer).iter().map(|e| e["status"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(statuses(&journal(&m, "?status=429").await), vec![429]);
    assert_eq!(statuses(&journal(&m, "?status=4xx").await).len(), 8);
    assert_eq!(statuses(&journal(&m, "?path=/locations/*").await), vec![401]);
    assert_eq!(statuses(&journal(&m, "?refused=scope").await), vec![401]);
    assert_eq!(statuses(&journal(&m, "?since=1767225601000").await), vec![422]);
    let newest = journal(&m, "?limit=2").await;
    assert_eq!(statuses(&newest), vec![429, 422], "the newest two, oldest first");
    assert_eq!(newest["matched"], 9);
    assert_eq!(newest["journal"]["held"], 9);

    let by_token = entries(&journal(&m, &format!("?token={fp}")).await).len() as u64;
    assert_eq!(by_token, 7, "every request carrying the token, refused or not");
    assert_eq!(count(&m, json!({"token": fp})).await, by_token);
    assert_eq!(count(&m, json!({"token": token})).await, by_token, "a whole token counts as its fingerprint");
    assert_eq!(count(&m, json!({"method": "GET", "path": "/contacts/**", "status": 401})).await, 3);
    assert_eq!(count(&m, json!({"path": "/contacts/**", "status": "2xx", "token": fp})).await, 1);
    assert_eq!(count(&m, json!({"token": "none"})).await, 1);

    let (status, _) = m.admin(Method::GET, "/journal?status=abc", None).await;
    assert_eq!(status, 400);
    let (status, _) = m.admin(Method::POST, "/journal/count", Some(json!({"colour": "red"}))).await;
    assert_eq!(status, 400, "a misspelt field is refused, not ignored");
}

#[tokio::test]
async fn the_journal_keeps_the_newest_requests_within_its_byte_bound_and_answers_them_whole() {
    let config =
        ghl_mock::Config { journal_capacity: 10_000, journal_max_bytes: 8 * 1024, ..ghl_mock::Config::default() };
    let world = fixture(&format!("  - {{name: A, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly]}}"));
    let m = TestMock::start_with(embedded(), world, config, ghl_mock::Clock::frozen(1_767_225_600_000)).await;
    let long = "x".repeat(700);
    for i in 0..60 {
        send(&m, &format!("/nothing/{i}/{long}"), None, false).await;
    }
    let answer = journal(&m, "").await;
    let stats = &answer["journal"];
    let (held, bytes) = (stats["held"].as_u64().unwrap(), stats["bytes"].as_u64().unwrap());
    assert!(held > 0 && held < 60 && bytes <= 8 * 1024, "held {held} entries in {bytes} bytes: {stats}");
    assert_eq!(stats["dropped"].as_u64(), Some(60 - held), "{stats}");
    // The newest are the ones kept, and the streamed answer is one whole JSON document.
    let paths: Vec<&str> = entries(&answer).iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths.len() as u64, held);
    assert!(paths.last().is_some_and(|p| p.starts_with("/nothing/59/")), "{paths:?}");
}

#[tokio::test]
async fn the_journal_keeps_the_newest_requests_up_to_its_capacity_and_can_be_cleared() {
    let config = ghl_mock::Config { journal_capacity: 3, ..ghl_mock::Config::default() };
    let world = fixture(&format!("  - {{name: A, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly]}}"));
    let m = TestMock::start_with(embedded(), world, config, ghl_mock::Clock::frozen(1_767_225_600_000)).await;
    for _ in 0..5 {
        send(&m, &format!("/contacts/?locationId={LOC_A}"), Some(&m.token("A")), true).await;
    }
    let answer = journal(&m, "").await;
    let indices: Vec<u64> = entries(&answer).iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert_eq!(indices, vec![3, 4, 5]);
    let stats = &answer["journal"];
    assert_eq!(
        (&stats["capacity"], &stats["held"], &stats["dropped"], &stats["recorded"]),
        (&json!(3), &json!(3), &json!(2), &json!(5))
    );
    assert!(stats["bytes"].as_u64().is_some_and(|b| b > 0 && b <= stats["max_bytes"].as_u64().unwrap_or(0)), "{stats}");
    assert_eq!(report(&m).await.dropped, 2, "the report says what it could not see");

    let (status, body) = m.admin(Method::DELETE, "/journal", None).await;
    assert_eq!((status, body), (200, json!({"cleared": 3})));
    assert!(entries(&journal(&m, "").await).is_empty());
    assert_eq!(report(&m).await.requests, 0);
}

#[tokio::test]
async fn a_post_repeated_after_a_reset_connection_is_journaled_broken_and_reported_as_a_duplicate_risk() {
    let m = TestMock::start(embedded(), fixture(&clients())).await;
    let token = m.token("Sandbox");
    let rule = json!({"method": "POST", "path": "/contacts/", "count": 1, "fault": "reset"});
    assert_eq!(m.admin(Method::POST, "/rules", Some(rule)).await.0, 201);
    let body = json!({"locationId": LOC_A, "email": "once@example.com"});
    let post = || {
        m.http.post(format!("{}/contacts/", m.url)).bearer_auth(&token).header("Version", VERSION).json(&body).send()
    };
    let first = match post().await {
        Ok(response) => response.bytes().await.is_err(),
        Err(_) => true,
    };
    assert!(first, "the first answer breaks off");
    assert_eq!(post().await.unwrap().status().as_u16(), 201);
    let list = journal(&m, "").await;
    let broken: Vec<&Value> = entries(&list).iter().map(|e| &e["broken"]).collect();
    assert_eq!(broken, vec![&json!("reset"), &Value::Null]);

    let found = report(&m).await;
    let duplicate = found.finding(Kind::DuplicateRisk).expect("the repeat is reported");
    assert_eq!((duplicate.evidence[0].request, duplicate.evidence[0].after), (2, Some(1)));
    assert_eq!(kinds(&found), vec![Kind::DuplicateRisk]);
}

/// The hook both example clients wait through: it moves the mock's clock by
/// the wait, and deletes an integration once `delete_at` requests were made.
fn virtual_time(
    m: &TestMock,
    delete_at: Option<(usize, String)>,
) -> impl FnMut(usize, Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    let (mock, http, url) = (m.mock.clone(), m.http.clone(), m.url.clone());
    move |requests, wait| {
        let (mock, http, url, delete_at) = (mock.clone(), http.clone(), url.clone(), delete_at.clone());
        Box::pin(async move {
            if let Some((at, id)) = delete_at {
                if requests == at {
                    let response = http.delete(format!("{url}/__admin/integrations/{id}")).send().await.unwrap();
                    assert_eq!(response.status().as_u16(), 200);
                }
            }
            mock.clock.advance_ms(i64::try_from(wait.as_millis()).unwrap());
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum Client {
    Good,
    Bad,
}

async fn run_client(
    client: Client,
    m: &TestMock,
    token: &str,
    location: &str,
    delete_at: Option<(usize, String)>,
) -> String {
    let hook = virtual_time(m, delete_at);
    match client {
        Client::Good => format!("{:?}", good_client::run_with(&m.url, token, location, hook).await),
        Client::Bad => format!("{:?}", bad_client::run_with(&m.url, token, location, hook).await),
    }
}

/// A sandbox location; the first three requests get an injected 429, the
/// first create a 500, and the token is deleted after the 36th request.
async fn sandbox_run(client: Client) -> (TestMock, Report) {
    let m = TestMock::start(embedded(), fixture(&clients())).await;
    let injection = json!({"target": {"resource": LOC_A}, "count": 3});
    assert_eq!(m.admin(Method::POST, "/limits/injections", Some(injection)).await.0, 201);
    let rule = json!({"method": "POST", "path": "/contacts/", "count": 1, "status": 500});
    assert_eq!(m.admin(Method::POST, "/rules", Some(rule)).await.0, 201);
    let summary = run_client(client, &m, &m.token("Sandbox"), LOC_A, Some((36, m.integration_id("Sandbox")))).await;
    let found = report(&m).await;
    println!("--- {client:?} client, sandbox run: {summary}\n{}", report_as(&m, "text").await);
    // The run met what it was meant to meet.
    assert_eq!(count(&m, json!({"refused": "rate_limited_injected"})).await, 3, "{client:?}");
    assert_eq!(count(&m, json!({"method": "POST", "status": 500})).await, 1, "{client:?}");
    assert!(count(&m, json!({"refused": "invalid_token"})).await >= 1, "{client:?} met the deleted token");
    (m, found)
}

#[tokio::test]
async fn a_good_client_gets_a_clean_report_through_injected_429s_a_5xx_and_a_deleted_token() {
    let (m, found) = sandbox_run(Client::Good).await;
    assert_eq!(kinds(&found), vec![], "{}", found.text());
    assert_eq!(found.passed, Kind::ALL.to_vec());
    assert_eq!(count(&m, json!({"refused": "invalid_token"})).await, 1, "it stopped at the first 401");
    assert_eq!(count(&m, json!({"refused": "scope"})).await, 1, "it called the refused operation once");
}

#[tokio::test]
async fn a_bad_client_is_reported_for_each_of_its_habits_in_the_same_run() {
    let (_m, found) = sandbox_run(Client::Bad).await;
    assert_eq!(
        kinds(&found),
        vec![
            Kind::SentDuringBackoff,
            Kind::RetriedTooSoon,
            Kind::UsedDeadToken,
            Kind::VersionHeader,
            Kind::SandboxBurst,
            Kind::DuplicateRisk,
            Kind::RepeatedScopeRefusal,
        ],
        "{}",
        found.text()
    );
    let journal_passed: Vec<Kind> = found.passed.iter().copied().filter(|k| Kind::JOURNAL.contains(k)).collect();
    assert_eq!(journal_passed, vec![Kind::IgnoredDailyQuota], "its daily quota was never near 0");
    assert!(Kind::WEBHOOKS.iter().all(|k| found.passed.contains(k)), "no webhooks were sent, none failed");
    let duplicate = found.finding(Kind::DuplicateRisk).unwrap();
    assert_eq!(duplicate.count, 1, "one POST got a 500 and was sent again");
}

/// A production location (100 / 10 s) with a daily quota of 12.
async fn production_run(client: Client) -> (TestMock, Report, String) {
    let m = TestMock::start(embedded(), fixture(&clients())).await;
    let limits = json!({"burst": 100, "window_ms": 10_000, "daily": 12});
    assert_eq!(m.admin(Method::PUT, &format!("/limits/{LOC_C}"), Some(limits)).await.0, 200);
    let summary = run_client(client, &m, &m.token("Production"), LOC_C, None).await;
    let found = report(&m).await;
    println!("--- {client:?} client, production run: {summary}\n{}", report_as(&m, "text").await);
    assert_eq!(
        count(&m, json!({"refused": "rate_limited_burst"})).await,
        0,
        "{client:?}: production never refused a burst"
    );
    (m, found, summary)
}

#[tokio::test]
async fn at_a_small_daily_quota_the_good_client_stops_and_the_bad_one_is_reported_for_going_on() {
    let (_, good, summary) = production_run(Client::Good).await;
    assert_eq!(kinds(&good), vec![], "{}", good.text());
    assert!(summary.contains("the daily quota is used up"), "{summary}");

    let (m, bad, _) = production_run(Client::Bad).await;
    let found = kinds(&bad);
    assert!(found.contains(&Kind::IgnoredDailyQuota), "{}", bad.text());
    assert!(found.contains(&Kind::SandboxBurst), "works in production, fails in a sandbox:\n{}", bad.text());
    assert!(!found.contains(&Kind::UsedDeadToken), "{}", bad.text());
    assert!(count(&m, json!({"refused": "rate_limited_daily"})).await > 0);
}

#[tokio::test]
async fn tokens_never_appear_in_the_journal_or_in_any_report_format() {
    let m = TestMock::start(embedded(), fixture(&clients())).await;
    let mut secrets = vec![m.token("Sandbox"), m.token("Production"), "test-secret".to_string()];
    let bogus = "pit-11111111-2222-4333-8444-555555555555".to_string();
    secrets.push(bogus.clone());
    let created = m
        .admin(
            Method::POST,
            "/integrations",
            Some(json!({"name": "Doomed", "owner": {"location": LOC_A}, "scopes": ["contacts.readonly"]})),
        )
        .await
        .1;
    let doomed = created["token"].as_str().unwrap().to_string();
    secrets.push(doomed.clone());
    let tokens = oauth_tokens(&m, json!({"location": LOC_A}), &[]).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    secrets.push(access.clone());
    secrets.push(tokens["refresh_token"].as_str().unwrap().to_string());

    let contacts = format!("/contacts/?locationId={LOC_A}");
    for token in [&secrets[0], &secrets[1], &bogus, &doomed, &access, &secrets[6]] {
        send(&m, &contacts, Some(token), true).await;
        send(&m, &contacts, Some(token), false).await;
    }
    m.admin(Method::DELETE, &format!("/integrations/{}", created["integration"]["id"].as_str().unwrap()), None).await;
    send(&m, &contacts, Some(&doomed), true).await;
    send(&m, &contacts, Some(&doomed), true).await;
    // A token pasted into the wrong header is not kept either.
    let r = m.http.get(format!("{}{contacts}", m.url)).bearer_auth(&secrets[0]).header("Version", &secrets[0]);
    r.send().await.unwrap();
    // Filters given a whole token keep only its fingerprint.
    assert!(count(&m, json!({"token": doomed})).await >= 4);

    let mut seen = vec![
        journal(&m, "?limit=10000").await.to_string(),
        journal(&m, &format!("?token={doomed}")).await.to_string(),
        report_as(&m, "json").await,
        report_as(&m, "text").await,
        report_as(&m, "junit").await,
    ];
    seen.push(report(&m).await.text());
    assert!(seen[0].contains(&fingerprint(&doomed)), "tokens are named by fingerprint");
    assert!(seen[3].contains("used_dead_token"), "the report saw the requests:\n{}", seen[3]);
    for text in &seen {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret appears in:\n{text}");
            if let Some(random) = secret.strip_prefix("pit-") {
                assert!(!text.contains(random), "the random part of a PIT appears in:\n{text}");
            }
        }
    }
}

fn ghl_mock_cli(args: Vec<String>) -> tokio::task::JoinHandle<std::process::Output> {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ghl-mock")).args(args).output().unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_command_exits_non_zero_only_for_a_fail_on_kind_it_finds() {
    let m = TestMock::start(embedded(), fixture(&clients())).await;
    let token = m.token("Sandbox");
    m.admin(Method::POST, "/limits/injections", Some(json!({"target": {"resource": LOC_A}, "count": 1}))).await;
    let contacts = format!("/contacts/?locationId={LOC_A}");
    assert_eq!(send(&m, &contacts, Some(&token), true).await, 429);
    assert_eq!(send(&m, &contacts, Some(&token), true).await, 200, "retried at once");

    let run = |args: &[&str]| {
        let mut all = args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        all.extend(["--url".to_string(), m.url.clone()]);
        ghl_mock_cli(all)
    };
    let junit = run(&["report", "--fail-on", "retried_too_soon", "--format", "junit"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&junit.stdout);
    assert_eq!(junit.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("<testcase classname=\"ghl-mock.client\" name=\"retried_too_soon\">\n      <failure"));
    assert!(stdout.contains("<testcase classname=\"ghl-mock.client\" name=\"used_dead_token\"/>"), "{stdout}");

    let text = run(&["report", "--fail-on", "used_dead_token,version_header"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("FAIL retried_too_soon"), "{stdout}");

    let json = run(&["report", "--fail-on", "all", "--format", "json"]).await.unwrap();
    assert_eq!(json.status.code(), Some(1));
    let parsed: Report = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed.finding(Kind::RetriedTooSoon).map(|f| f.count), Some(1));

    let other_token = run(&["report", "--fail-on", "all", "--token", &m.token("Production")]).await.unwrap();
    assert_eq!(other_token.status.code(), Some(0), "another client's report is clean");

    let wrong = run(&["report", "--fail-on", "retried_too_son"]).await.unwrap();
    assert_eq!(wrong.status.code(), Some(2));

    let lines = run(&["journal", "--status", "429"]).await.unwrap();
    assert_eq!(lines.status.code(), Some(0));
    let lines: Vec<Value> =
        String::from_utf8_lossy(&lines.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["refused"], "rate_limited_injected");
    let table = run(&["journal", "--format", "table", "--token", &token]).await.unwrap();
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert_eq!(table.lines().count(), 3, "a header and two rows:\n{table}");
    assert!(table.contains("rate_limited_injected") && table.contains(&fingerprint(&token)), "{table}");
    assert!(!table.contains(&token));
}

/// Creates a contact with a client that gives up after `timeout_ms`, while a
/// rule holds the answer back `latency_ms`; the first journal entry, once
/// there is one (the server notices on its own time: a bounded wait, not a
/// timing assertion).
async fn impatient_create(m: &TestMock, latency_ms: u64, timeout_ms: u64, email: &str) -> Value {
    let rule = json!({"method": "POST", "path": "/contacts/", "count": 1, "latency_ms": latency_ms});
    assert_eq!(m.admin(Method::POST, "/rules", Some(rule)).await.0, 201);
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(timeout_ms)).build().unwrap();
    let sent = impatient
        .post(format!("{}/contacts/", m.url))
        .bearer_auth(m.token("Sandbox"))
        .header("Version", VERSION)
        .json(&json!({"locationId": LOC_A, "email": email}))
        .send()
        .await;
    assert!(sent.is_err(), "the client timed out");
    for _ in 0..200 {
        let list = journal(m, "").await;
        if let Some(first) = entries(&list).first() {
            return first.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the request was never journaled");
}

/// With `limits.half_close: hang_up`, the end of the client's side means it
/// has gone: the request is dropped at once.
#[tokio::test]
async fn with_half_close_set_to_hang_up_a_request_whose_client_gave_up_waiting_is_journaled_as_abandoned() {
    let mut config = ghl_mock::Config::default();
    config.limits.half_close = ghl_mock::config::HalfClose::HangUp;
    let m =
        TestMock::start_with(embedded(), fixture(&clients()), config, ghl_mock::Clock::frozen(1_767_225_600_000)).await;
    let entry = impatient_create(&m, 600_000, 200, "slow@example.com").await;
    assert_eq!(
        (&entry["broken"], &entry["status"], &entry["operation"]),
        (&json!("abandoned"), &json!(0), &json!("create-contact"))
    );
    assert_eq!(entry["location"], json!(LOC_A));
}

/// By default (`limits.half_close: answer`) the request goes on when the
/// client's side ends, as it may only have half-closed; its answer is sent,
/// and the journal says the client closed first.
#[tokio::test]
async fn a_request_whose_client_closed_its_side_first_is_answered_and_journaled_as_closed_early() {
    let m = TestMock::start(embedded(), fixture(&clients())).await;
    let entry = impatient_create(&m, 400, 100, "closed-early@example.com").await;
    assert_eq!((&entry["broken"], &entry["status"]), (&json!("closed_early"), &json!(201)), "{entry}");
    // The create went through: the contact is there.
    let (status, found) =
        m.get(&format!("/contacts/?locationId={LOC_A}&query=closed-early"), &m.token("Sandbox")).await;
    assert_eq!(status, 200);
    assert_eq!(found["contacts"].as_array().map(Vec::len), Some(1), "{found}");
}

/// Issue 16, item 5: `ghl-mock journal | head -1` ends quietly, and logs
/// written to a pipe or a file carry no colour codes.
#[tokio::test]
async fn the_cli_ends_quietly_when_its_reader_goes_away_and_logs_to_a_pipe_have_no_colour_codes() {
    use std::io::{BufRead, BufReader};
    let mut server = start_binary(&[]);
    let client = reqwest::Client::new();
    // More than a pipe holds (64 KiB), so the command meets the closed pipe.
    for n in 0..400 {
        let _ = client.get(format!("{}/nothing/here/{n}/{}", server.url, "x".repeat(200))).send().await.unwrap();
    }
    let mut journal = std::process::Command::new(env!("CARGO_BIN_EXE_ghl-mock"))
        .args(["journal", "--url", &server.url, "--format", "jsonl"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ghl-mock journal runs");
    let mut first = String::new();
    BufReader::new(journal.stdout.take().unwrap()).read_line(&mut first).unwrap();
    // The reader is gone (as `head -1` goes) before the command has written all.
    let out = journal.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(first.starts_with('{'), "{first}");
    assert!(out.status.success(), "a closed pipe is no failure: {:?} {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (_, logs) = server.terminate_and_logs();
    assert!(
        !logs.is_empty() && !logs.contains('\u{1b}'),
        "no ANSI escapes in logs to a pipe: {}",
        &logs[..logs.len().min(300)]
    );
}
