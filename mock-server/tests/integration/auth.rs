//! BEHAVIOUR.md §3 rows 2–11: each refusal with its exact status and body,
//! and the lifecycles of PITs (rotation, deletion, edits) and OAuth tokens.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

const FULL: &str = "Full";
const LOW: &str = "Low";
const AGENCY: &str = "Agency";

fn integrations() -> String {
    format!(
        "  - {{name: {FULL}, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly, contacts.write, locations.readonly]}}\n\
         \x20 - {{name: {LOW}, owner: {{location: {LOC_A}}}, scopes: [locations.readonly]}}\n\
         \x20 - {{name: {AGENCY}, owner: {{company: {COMPANY}}}, scopes: [locations.readonly, oauth.write, users.readonly]}}"
    )
}

async fn start() -> TestMock {
    TestMock::start(embedded(), fixture(&integrations())).await
}

fn contacts_of(location: &str) -> String {
    format!("/contacts/?locationId={location}")
}

fn refusal(status: u16, message: &str) -> (u16, Value) {
    (status, json!({"statusCode": status, "message": message}))
}

#[tokio::test]
async fn row_2_a_missing_authorization_header_is_an_invalid_jwt() {
    let m = start().await;
    let response =
        m.http.get(format!("{}{}", m.url, contacts_of(LOC_A))).header("Version", VERSION).send().await.unwrap();
    assert_eq!(read(response).await, refusal(401, "Invalid JWT"));
}

#[tokio::test]
async fn row_3_a_garbage_or_foreign_jwt_is_an_invalid_jwt() {
    let m = start().await;
    assert_eq!(m.get(&contacts_of(LOC_A), "not-a-token").await, refusal(401, "Invalid JWT"));
    let foreign = "eyJhbGciOiJSUzI1NiJ9.eyJhdXRoQ2xhc3MiOiJMb2NhdGlvbiJ9.c2lnbmF0dXJl";
    assert_eq!(m.get(&contacts_of(LOC_A), foreign).await, refusal(401, "Invalid JWT"));
}

#[tokio::test]
async fn row_4_an_expired_oauth_access_token_is_refused() {
    let m = start().await;
    let tokens = oauth_tokens(&m, json!({"location": LOC_A}), &["contacts.readonly"]).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(m.get(&contacts_of(LOC_A), access).await.0, 200);
    m.mock.clock.advance_ms(86_399_000);
    assert_eq!(m.get(&contacts_of(LOC_A), access).await, refusal(401, "Invalid JWT"));
}

#[tokio::test]
async fn row_5_an_unknown_pit_is_an_invalid_private_integration_token() {
    let m = start().await;
    let unknown = "pit-00000000-0000-4000-8000-000000000000";
    assert_eq!(m.get(&contacts_of(LOC_A), unknown).await, refusal(401, "Invalid Private Integration token"));
}

#[tokio::test]
async fn row_6_a_missing_version_header_is_refused_after_the_token() {
    let m = start().await;
    let response =
        m.http.get(format!("{}{}", m.url, contacts_of(LOC_A))).bearer_auth(m.token(FULL)).send().await.unwrap();
    assert_eq!(read(response).await, refusal(401, "version header was not found."));
}

#[tokio::test]
async fn row_7_an_unpublished_version_is_invalid_but_any_published_one_works() {
    let m = start().await;
    let call = |version: &'static str| {
        m.http
            .get(format!("{}{}", m.url, contacts_of(LOC_A)))
            .bearer_auth(m.token(FULL))
            .header("Version", version)
            .send()
    };
    assert_eq!(read(call("2020-01-01").await.unwrap()).await, refusal(401, "version header is invalid"));
    for published in ["2021-04-15", "2021-07-28", "2023-02-21", "v3"] {
        assert_eq!(read(call(published).await.unwrap()).await.0, 200, "Version {published}");
    }
}

#[tokio::test]
async fn row_8_a_pit_on_an_access_only_operation_is_refused() {
    let m = start().await;
    let response = m
        .http
        .post(format!("{}/oauth/locationToken", m.url))
        .bearer_auth(m.token(AGENCY))
        .header("Version", VERSION)
        .form(&[("companyId", COMPANY), ("locationId", LOC_A)])
        .send()
        .await
        .unwrap();
    assert_eq!(read(response).await, refusal(401, "This authClass type is not allowed to access this scope."));
}

#[tokio::test]
async fn row_9_an_agency_token_on_a_location_operation_is_a_user_type_mismatch() {
    let m = start().await;
    assert_eq!(m.get(&contacts_of(LOC_A), &m.token(AGENCY)).await, refusal(401, "Token's user type mismatch!"));
}

#[tokio::test]
async fn row_10_a_missing_scope_is_a_401_not_a_403() {
    let m = start().await;
    assert_eq!(
        m.get(&contacts_of(LOC_A), &m.token(LOW)).await,
        refusal(401, "The token is not authorized for this scope.")
    );
}

#[tokio::test]
async fn row_11_a_token_for_location_a_naming_location_b_is_forbidden() {
    let m = start().await;
    assert_eq!(
        m.get(&contacts_of(LOC_B), &m.token(FULL)).await,
        refusal(403, "The token does not have access to this location.")
    );
    // Path and agency forms of the same rule.
    assert_eq!(m.get(&format!("/locations/{LOC_B}"), &m.token(FULL)).await.0, 403);
    assert_eq!(
        m.get(&format!("/locations/{LOC_B}"), &m.token(AGENCY)).await.0,
        200,
        "an agency reaches its own locations"
    );
    assert_eq!(m.get(&format!("/locations/{LOC_C}"), &m.token(AGENCY)).await.0, 403, "but not another agency's");
}

#[tokio::test]
async fn scope_is_checked_before_location() {
    let m = start().await;
    assert_eq!(m.get(&contacts_of(LOC_B), &m.token(LOW)).await.0, 401);
}

async fn pit_status(m: &TestMock, token: &str) -> u16 {
    m.get(&contacts_of(LOC_A), token).await.0
}

#[tokio::test]
async fn rotated_token_works_until_the_grace_window_ends() {
    let m = start().await;
    let id = m.integration_id(FULL);
    let old = m.token(FULL);
    let (status, body) =
        m.admin(Method::POST, &format!("/integrations/{id}/rotate"), Some(json!({"expire": "later"}))).await;
    assert_eq!(status, 200, "{body}");
    let new = body["token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    m.mock.clock.advance_ms((6 * 24 + 23) * 3_600_000);
    assert_eq!((pit_status(&m, &old).await, pit_status(&m, &new).await), (200, 200), "both work at +6d23h");
    m.mock.clock.advance_ms(3_600_000 + 1_000);
    assert_eq!(m.get(&contacts_of(LOC_A), &old).await, refusal(401, "Invalid Private Integration token"));
    assert_eq!(pit_status(&m, &new).await, 200, "the new one works at +7d+1s");
}

#[tokio::test]
async fn cancelling_a_rotation_keeps_the_old_token_and_withdraws_the_new_one() {
    let m = start().await;
    let id = m.integration_id(FULL);
    let old = m.token(FULL);
    let (_, body) = m.admin(Method::POST, &format!("/integrations/{id}/rotate"), None).await;
    let new = body["token"].as_str().unwrap().to_string();
    let (status, _) = m.admin(Method::POST, &format!("/integrations/{id}/cancel-rotation"), None).await;
    assert_eq!(status, 200);
    assert_eq!(pit_status(&m, &new).await, 401);
    m.mock.clock.advance_ms(30 * 86_400_000);
    assert_eq!(pit_status(&m, &old).await, 200, "no deadline after a cancel");
}

#[tokio::test]
async fn expire_now_stops_the_old_token_at_once() {
    let m = start().await;
    let id = m.integration_id(FULL);
    let old = m.token(FULL);
    let (_, body) = m.admin(Method::POST, &format!("/integrations/{id}/rotate"), None).await;
    let new = body["token"].as_str().unwrap().to_string();
    assert_eq!(m.admin(Method::POST, &format!("/integrations/{id}/expire-now"), None).await.0, 200);
    assert_eq!((pit_status(&m, &old).await, pit_status(&m, &new).await), (401, 200));
}

#[tokio::test]
async fn rotate_and_expire_now_stops_the_old_token_at_once() {
    let m = start().await;
    let id = m.integration_id(FULL);
    let old = m.token(FULL);
    let (_, body) = m.admin(Method::POST, &format!("/integrations/{id}/rotate"), Some(json!({"expire": "now"}))).await;
    let new = body["token"].as_str().unwrap().to_string();
    assert_eq!((pit_status(&m, &old).await, pit_status(&m, &new).await), (401, 200));
}

#[tokio::test]
async fn a_deleted_integration_gets_401_on_the_very_next_request() {
    let m = start().await;
    let id = m.integration_id(FULL);
    let token = m.token(FULL);
    assert_eq!(pit_status(&m, &token).await, 200);
    assert_eq!(m.admin(Method::DELETE, &format!("/integrations/{id}"), None).await.0, 200);
    assert_eq!(m.get(&contacts_of(LOC_A), &token).await, refusal(401, "Invalid Private Integration token"));
}

#[tokio::test]
async fn a_scope_edit_changes_the_next_answer_without_changing_the_token() {
    let m = start().await;
    let id = m.integration_id(LOW);
    let token = m.token(LOW);
    assert_eq!(pit_status(&m, &token).await, 401);
    let (status, body) =
        m.admin(Method::PATCH, &format!("/integrations/{id}"), Some(json!({"scopes": ["contacts.readonly"]}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(pit_status(&m, &token).await, 200);
    let (_, listed) = m.admin(Method::GET, &format!("/integrations/{id}"), None).await;
    assert_eq!(listed["integration"]["token_fingerprint"], ghl_mock::auth::secret::fingerprint(&token));
}

async fn refresh(m: &TestMock, refresh_token: &str) -> (u16, Value) {
    let response = m
        .http
        .post(format!("{}/oauth/token", m.url))
        .form(&[
            ("client_id", "test-client"),
            ("client_secret", "test-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap();
    read(response).await
}

#[tokio::test]
async fn oauth_code_to_tokens_to_expiry_to_refresh_and_refresh_reuse_is_an_invalid_grant() {
    let m = start().await;
    let tokens = oauth_tokens(&m, json!({"location": LOC_A}), &["contacts.readonly"]).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 86_399);
    assert_eq!(tokens["userType"], "Location");
    assert_eq!(tokens["locationId"], LOC_A);
    // Every field oauth.json documents, with what an install of one location answers.
    assert_eq!(tokens["approvedLocations"], json!([LOC_A]), "{tokens}");
    assert_eq!(tokens["companyId"], COMPANY, "{tokens}");
    for flag in ["isBulkInstallation", "installToFutureLocations", "approveAllLocations"] {
        assert_eq!(tokens[flag], false, "{flag}: {tokens}");
    }
    assert!(tokens["userId"].is_string(), "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    // HighLevel's header byte for byte, and its claims.
    assert!(access.starts_with("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."), "{access}");
    use base64::Engine;
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["primaryAuthClassId"], LOC_A, "{claims}");
    assert_eq!(claims["sourceId"], "test-client", "{claims}");
    assert!(claims["oauthMeta"]["agencyPlan"].is_string(), "{claims}");
    assert_eq!(m.get(&contacts_of(LOC_A), access).await.0, 200);
    m.mock.clock.advance_ms(86_399_000);
    assert_eq!(m.get(&contacts_of(LOC_A), access).await.0, 401);
    let old_refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, renewed) = refresh(&m, old_refresh).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(m.get(&contacts_of(LOC_A), renewed["access_token"].as_str().unwrap()).await.0, 200);
    let (status, reused) = refresh(&m, old_refresh).await;
    assert_eq!((status, reused["error"].clone()), (400, json!("invalid_grant")));
}

#[tokio::test]
async fn an_agency_oauth_token_mints_location_tokens_for_its_own_locations_only() {
    let m = start().await;
    let agency = oauth_tokens(&m, json!({"company": COMPANY}), &["oauth.write", "contacts.readonly"]).await;
    let access = agency["access_token"].as_str().unwrap();
    let mint = |location: &'static str| {
        m.http
            .post(format!("{}/oauth/locationToken", m.url))
            .bearer_auth(access)
            .header("Version", VERSION)
            .form(&[("companyId", COMPANY), ("locationId", location)])
            .send()
    };
    let (status, minted) = read(mint(LOC_B).await.unwrap()).await;
    assert_eq!(status, 200, "{minted}");
    let location_token = minted["access_token"].as_str().unwrap();
    assert_eq!(m.get(&contacts_of(LOC_B), location_token).await.0, 200);
    assert_eq!(m.get(&contacts_of(LOC_A), location_token).await.0, 403);
    assert_eq!(read(mint(LOC_C).await.unwrap()).await.0, 403, "another agency's location");
    // As HighLevel answers it: a refresh token, the app's ids, and the oauth scopes gained.
    assert!(minted["refresh_token"].is_string(), "{minted}");
    assert_eq!((minted["appId"].clone(), minted["versionId"].clone()), (json!("test"), json!("test")), "{minted}");
    let scope = minted["scope"].as_str().unwrap_or_default();
    assert!(scope.contains("oauth.readonly") && scope.contains("oauth.write"), "{scope}");
    // A location token cannot mint location tokens, in HighLevel's words.
    let (status, refused) = read(
        m.http
            .post(format!("{}/oauth/locationToken", m.url))
            .bearer_auth(location_token)
            .header("Version", VERSION)
            .form(&[("companyId", COMPANY), ("locationId", LOC_B)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, refused["message"].clone()),
        (401, json!("This token's user type is not yet supported!")),
        "{refused}"
    );
}

#[tokio::test]
async fn control_plane_refuses_bad_input_with_a_clear_message_and_changes_nothing() {
    let m = start().await;
    let before = m.admin(Method::GET, "/integrations", None).await.1;
    let cases: Vec<(Method, String, Option<Value>, u16, &str)> = vec![
        (Method::POST, "/integrations/nope/rotate".into(), None, 404, "no private integration with id 'nope'"),
        (
            Method::POST,
            "/integrations".into(),
            Some(json!({"name": "x", "owner": {"location": LOC_A}, "scopes": ["contacts.rd"]})),
            400,
            "'contacts.rd' is not a scope",
        ),
        (
            Method::POST,
            "/integrations".into(),
            Some(json!({"name": "x", "owner": {"location": LOC_A}, "scopes": ["contact.readonly"]})),
            400,
            "'contact.readonly' is not a scope of the loaded specs (did you mean 'contacts.readonly'?)",
        ),
        (
            Method::POST,
            "/integrations".into(),
            Some(json!({"name": "x", "owner": {"location": "nowhere"}})),
            400,
            "no location with id 'nowhere'",
        ),
        (Method::POST, "/clock/advance".into(), Some(json!({"by": "-5s"})), 400, "negative"),
        (Method::POST, "/clock/advance".into(), Some(json!({"by": "5fortnights"})), 400, "unknown unit"),
        (
            Method::POST,
            format!("/integrations/{}/cancel-rotation", m.integration_id(FULL)),
            None,
            409,
            "not being rotated",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let (got, answer) = m.admin(method.clone(), &path, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert!(answer["message"].as_str().unwrap_or("").contains(needle), "{method} {path}: {answer}");
    }
    let malformed = m
        .http
        .post(format!("{}/__admin/integrations", m.url))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    let (status, answer) = read(malformed).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().starts_with("invalid JSON body"), "{answer}");
    assert_eq!(m.admin(Method::GET, "/integrations", None).await.1, before, "nothing changed");
    let clock = m.admin(Method::GET, "/clock", None).await.1;
    assert_eq!(clock["now_ms"], 1_767_225_600_000i64, "the clock did not move");
}

#[tokio::test]
async fn an_admin_token_guards_the_control_plane_but_not_the_api() {
    let config = ghl_mock::Config { admin_token: Some("admin-secret-for-tests".into()), ..ghl_mock::Config::default() };
    let m = TestMock::start_with(embedded(), fixture(&integrations()), config, ghl_mock::Clock::frozen(0)).await;
    let (status, body) = m.admin(Method::GET, "/integrations", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Bearer <admin token>"));
    let wrong = m.http.get(format!("{}/__admin/integrations", m.url)).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = m
        .http
        .get(format!("{}/__admin/integrations", m.url))
        .bearer_auth("admin-secret-for-tests")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
    assert_eq!(m.get(&contacts_of(LOC_A), &m.token(FULL)).await.0, 200, "the API does not want the admin token");
}

#[tokio::test]
async fn the_control_plane_refuses_other_hosts_unless_allowed() {
    use tower::ServiceExt;
    let request = |peer: [u8; 4]| {
        let mut r = axum::http::Request::get("/__admin/integrations").body(axum::body::Body::empty()).unwrap();
        r.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((peer, 40000))));
        r
    };
    for (admin_remote, peer, expected) in
        [(false, [192, 0, 2, 7], 403), (false, [127, 0, 0, 1], 200), (true, [192, 0, 2, 7], 200)]
    {
        let config = ghl_mock::Config { admin_remote, ..ghl_mock::Config::default() };
        let started = ghl_mock::Mock::start(embedded(), config, ghl_mock::Clock::frozen(0), None).unwrap();
        // In process: the peer address is what the server would have put there.
        let answer = ghl_mock::app(started.mock).oneshot(request(peer)).await.unwrap();
        assert_eq!(answer.status().as_u16(), expected, "admin_remote={admin_remote}, peer {peer:?}");
    }
}

#[tokio::test]
async fn the_control_plane_refuses_an_oversized_body_or_a_wrong_method_in_json() {
    let m = start().await;
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let response = m
        .http
        .post(format!("{}/__admin/integrations", m.url))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!((status, body["statusCode"].as_u64()), (413, Some(413)), "{body}");
    let (status, body) = m.admin(Method::PUT, "/clock/advance", Some(json!({"by": "1s"}))).await;
    assert_eq!(status, 405);
    assert!(body["message"].as_str().unwrap().contains("PUT is not a method of"), "{body}");
    assert_eq!(m.admin(Method::GET, "/integrations", None).await.0, 200, "still serving");
}
