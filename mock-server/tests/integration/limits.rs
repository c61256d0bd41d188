//! Rate limits over HTTP, as HighLevel counts them (BEHAVIOUR.md §4).

use reqwest::Method;
use serde_json::json;

use crate::support::*;

fn five_pits() -> String {
    (1..=5)
        .map(|i| format!("  - {{name: P{i}, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly]}}\n"))
        .chain([format!("  - {{name: B, owner: {{location: {LOC_B}}}, scopes: [contacts.readonly]}}\n")])
        .collect()
}

fn contacts_of(location: &str) -> String {
    format!("/contacts/?locationId={location}")
}

async fn get_with_headers(m: &TestMock, path: &str, token: &str) -> (u16, reqwest::header::HeaderMap) {
    let response =
        m.http.get(format!("{}{path}", m.url)).bearer_auth(token).header("Version", VERSION).send().await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> i64 {
    h.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_requests_from_five_pits_of_one_sandbox_location_admit_exactly_twenty_five() {
    let m = TestMock::start(embedded(), fixture(&five_pits())).await;
    let tokens: Vec<String> = (1..=5).map(|i| m.token(&format!("P{i}"))).collect();
    let path = contacts_of(LOC_A);
    let calls = (0..200).map(|i| {
        let http = m.http.clone();
        let url = format!("{}{path}", m.url);
        let token = tokens[i % 5].clone();
        tokio::spawn(async move {
            http.get(url).bearer_auth(token).header("Version", VERSION).send().await.unwrap().status().as_u16()
        })
    });
    let mut statuses = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        statuses.push(call.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 25);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 175);

    let (status, h) = get_with_headers(&m, &contacts_of(LOC_B), &m.token("B")).await;
    assert_eq!((status, header(&h, "x-ratelimit-remaining")), (200, 24), "another location is unaffected");

    m.mock.clock.advance_ms(10_000);
    let mut admitted = 0;
    for i in 0..30 {
        if get_with_headers(&m, &path, &tokens[i % 5]).await.0 == 200 {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 25, "the next window admits 25 again");
}

#[tokio::test]
async fn every_answer_after_authentication_carries_true_rate_limit_headers() {
    let m = TestMock::start(embedded(), fixture(&five_pits())).await;
    let token = m.token("P1");
    let (status, h) = get_with_headers(&m, &contacts_of(LOC_A), &token).await;
    assert_eq!(status, 200);
    assert_eq!(
        [
            "x-ratelimit-limit-daily",
            "x-ratelimit-daily-remaining",
            "x-ratelimit-interval-milliseconds",
            "x-ratelimit-max",
            "x-ratelimit-remaining"
        ]
        .map(|n| header(&h, n)),
        [10_000, 9_999, 10_000, 25, 24]
    );
    // A refusal after authentication shows the state, without counting.
    let (status, h) = get_with_headers(&m, &format!("/locations/{LOC_A}"), &token).await;
    assert_eq!((status, header(&h, "x-ratelimit-remaining")), (401, 24), "scope refusal");
    let (status, h) = get_with_headers(&m, &contacts_of(LOC_B), &token).await;
    assert_eq!((status, header(&h, "x-ratelimit-remaining")), (403, 24), "location refusal");
    // Before authentication there is no one to count against.
    let (status, h) = get_with_headers(&m, &contacts_of(LOC_A), "pit-00000000-0000-4000-8000-000000000000").await;
    assert_eq!((status, h.get("x-ratelimit-remaining").is_none()), (401, true));
}

#[tokio::test]
async fn the_request_after_a_small_daily_quota_gets_429_until_midnight_utc() {
    let m = TestMock::start(embedded(), fixture(&five_pits())).await;
    let (status, _) = m
        .admin(Method::PUT, &format!("/limits/{LOC_A}"), Some(json!({"burst": 100, "window_ms": 10000, "daily": 3})))
        .await;
    assert_eq!(status, 200);
    let token = m.token("P1");
    for expected_left in [2, 1, 0] {
        let (status, h) = get_with_headers(&m, &contacts_of(LOC_A), &token).await;
        assert_eq!((status, header(&h, "x-ratelimit-daily-remaining")), (200, expected_left));
    }
    let (status, h) = get_with_headers(&m, &contacts_of(LOC_A), &token).await;
    assert_eq!((status, header(&h, "x-ratelimit-daily-remaining")), (429, 0));
    // The mock starts at 2026-01-01T00:00:00Z; the next day starts 24 h later.
    m.mock.clock.advance_ms(86_400_000);
    let (status, h) = get_with_headers(&m, &contacts_of(LOC_A), &token).await;
    assert_eq!((status, header(&h, "x-ratelimit-daily-remaining")), (200, 2));
}

#[tokio::test]
async fn a_429_body_is_high_levels_and_retry_after_is_off_by_default() {
    let m = TestMock::start(embedded(), fixture(&five_pits())).await;
    m.admin(Method::POST, "/limits/injections", Some(json!({"target": {"resource": LOC_A}, "count": 1}))).await;
    let response = m
        .http
        .get(format!("{}{}", m.url, contacts_of(LOC_A)))
        .bearer_auth(m.token("P1"))
        .header("Version", VERSION)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(read(response).await, (429, json!({"statusCode": 429, "message": "Too Many Requests"})));
}

#[tokio::test]
async fn injected_429s_for_a_location_a_token_or_a_path_end_after_their_count() {
    let m = TestMock::start(embedded(), fixture(&five_pits())).await;
    let (p1, p2) = (m.token("P1"), m.token("P2"));
    let injections = [
        (json!({"resource": LOC_A}), p1.clone(), contacts_of(LOC_A)),
        (json!({"token": p2.clone()}), p2.clone(), contacts_of(LOC_A)),
        (json!({"path": "/contacts/*"}), p1.clone(), "/contacts/abc".to_string()),
    ];
    for (target, token, path) in injections {
        let (status, _) =
            m.admin(Method::POST, "/limits/injections", Some(json!({"target": target, "count": 2}))).await;
        assert_eq!(status, 201);
        let (status, headers) = get_with_headers(&m, &path, &token).await;
        assert_eq!(status, 429, "{target}");
        assert_eq!(header(&headers, "x-ratelimit-remaining"), 0, "{target}: a 429 shows nothing left in the window");
        assert_eq!(get_with_headers(&m, &path, &token).await.0, 429, "{target}");
        assert_ne!(get_with_headers(&m, &path, &token).await.0, 429, "{target}: the rule is spent");
    }
    // A token rule does not touch the other PITs of the location.
    m.admin(Method::POST, "/limits/injections", Some(json!({"target": {"token": p2}, "count": 5}))).await;
    assert_eq!(get_with_headers(&m, &contacts_of(LOC_A), &p1).await.0, 200);
}

#[tokio::test]
async fn exhausting_the_daily_quota_and_setting_the_burst_show_in_the_headers() {
    let m = TestMock::start(embedded(), fixture(&five_pits())).await;
    let token = m.token("P1");
    let (status, view) =
        m.admin(Method::POST, &format!("/limits/{LOC_A}/burst-remaining"), Some(json!({"remaining": 2}))).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["headers"]["X-RateLimit-Remaining"], "2");
    assert_eq!(get_with_headers(&m, &contacts_of(LOC_A), &token).await.0, 200);
    assert_eq!(get_with_headers(&m, &contacts_of(LOC_A), &token).await.0, 200);
    assert_eq!(get_with_headers(&m, &contacts_of(LOC_A), &token).await.0, 429);
    m.mock.clock.advance_ms(10_000);
    m.admin(Method::POST, &format!("/limits/{LOC_A}/exhaust-daily"), None).await;
    let (status, h) = get_with_headers(&m, &contacts_of(LOC_A), &token).await;
    assert_eq!((status, header(&h, "x-ratelimit-daily-remaining")), (429, 0));
}

#[tokio::test]
async fn fixture_injections_are_armed_at_start() {
    let mut world = fixture(&five_pits());
    world.rate_limit_injections =
        vec![serde_json::from_value(json!({"target": {"resource": LOC_A}, "count": 1})).unwrap()];
    let m = TestMock::start(embedded(), world).await;
    assert_eq!(get_with_headers(&m, &contacts_of(LOC_A), &m.token("P1")).await.0, 429);
    assert_eq!(get_with_headers(&m, &contacts_of(LOC_A), &m.token("P1")).await.0, 200);
}
