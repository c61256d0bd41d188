//! Issue 14, item 4: API versions. HighLevel's docs repo keeps the v2 files in
//! `apps/*.json` (their common file in `common/`) and the v3 files in
//! `apps/v3/*-v3.json` (their common file in `apps/v3/common/`, though they
//! refer to `../common/`). The v3 files here are the project's own, written
//! in that layout (`tests/fixtures/v3/`); the v2 files are the shared corpus.

use std::path::{Path, PathBuf};

use ghl_mock::spec::{self, Era, Source, WarningKind};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

const PITS: &str = "  - {name: Loc, owner: {location: LOC_A}, scopes: [contacts.readonly, contacts.write, opportunities.readonly, conversations.readonly, conversations.write]}
  - {name: Agency, owner: {company: COMPANY}, scopes: [oauth.readonly]}";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// HighLevel's repo layout in a scratch folder: `apps/` (v2, from the shared
/// corpus), `common/`, `apps/v3/` and `apps/v3/common/` (the project's v3
/// files); the folder to give `--specs`, or `None` without the corpus.
fn repo_layout() -> Option<PathBuf> {
    let apps = corpus_dir()?;
    let root = scratch_dir("versions");
    copy_dir(&apps, &root.join("apps"));
    copy_dir(&apps.join("../common"), &root.join("common"));
    copy_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v3"), &root.join("apps/v3"));
    Some(root.join("apps"))
}

/// Operations in the v3 fixture files, counted from the files themselves.
fn v3_operations_in_files() -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v3");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures").flatten().filter(|e| e.path().is_file()) {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(entry.path()).expect("read")).expect("JSON");
        count += doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .map(|item| item.as_object().map_or(0, |m| m.len()))
            .sum::<usize>();
    }
    count
}

async fn start() -> Option<TestMock> {
    let set = spec::load(Source::Dir(repo_layout()?), 1).expect("both generations load");
    Some(TestMock::start(set, unlimited_fixture(&PITS.replace("LOC_A", LOC_A).replace("COMPANY", COMPANY))).await)
}

#[tokio::test]
async fn the_v3_files_load_beside_the_v2_files_in_highlevels_layout_with_every_reference_resolved() {
    let Some(dir) = repo_layout() else { return };
    let set = spec::load(Source::Dir(dir), 1).expect("loads");
    let v3: Vec<_> = set.operations.iter().filter(|o| o.era == Era::V3).collect();
    assert_eq!(v3.len(), v3_operations_in_files(), "every v3 operation is in the table, none dropped as a duplicate");
    assert!(v3.iter().all(|o| o.file.ends_with("-v3.json")), "only the v3 files' operations are v3");
    let unresolved: Vec<_> =
        set.warnings.iter().filter(|w| w.kind == WarningKind::UnresolvedRef && w.file.contains("/v3/")).collect();
    assert!(unresolved.is_empty(), "`../common/` of a v3 file resolves to apps/v3/common/: {unresolved:?}");
    let duplicates: Vec<_> = set
        .warnings
        .iter()
        .filter(|w| matches!(w.kind, WarningKind::DuplicateRoute | WarningKind::DuplicateOperationId))
        .filter(|w| w.file.contains("/v3/"))
        .collect();
    assert!(duplicates.is_empty(), "a v3 route beside its v2 namesake is no duplicate: {duplicates:?}");
    // The v3 error bodies come from the v3 common file, not the v2 one.
    let search = v3.iter().find(|o| o.path == "/opportunities/search").expect("v3 search");
    let unauthorized = search.alternatives.iter().find(|a| a.status == 401).and_then(|a| a.schema.as_deref());
    assert_eq!(
        unauthorized.and_then(|s| s.pointer("/properties/message/example")),
        Some(&json!("Invalid token: access token is invalid"))
    );
}

#[tokio::test]
async fn under_v3_a_path_the_v3_files_removed_answers_400_naming_it_with_its_query() {
    let Some(m) = start().await else { return };
    let path = format!("/oauth/installedLocations?companyId={COMPANY}&appId=app1");
    let (status, body) = call_as(&m, Method::GET, &path, "v3", Some(&m.token("Agency")), None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({
            "message": format!("Endpoint {path} not available in API version v3. This endpoint was removed in version v3. Please use a version before v3."),
            "error": "Bad Request",
            "statusCode": 400,
        })
    );
    // The same call with a dated version reaches the v2 operation, which
    // takes only an agency OAuth token (`Agency-Access-Only`).
    let (status, body) = call_as(&m, Method::GET, &path, "2021-07-28", Some(&m.token("Agency")), None).await;
    let only_oauth = "This authClass type is not allowed to access this scope.";
    assert_eq!((status, body), (401, json!({"statusCode": 401, "message": only_oauth})));
}

#[tokio::test]
async fn a_v3_only_path_called_with_a_dated_version_is_not_found_as_express_words_it() {
    let Some(m) = start().await else { return };
    let body = json!({"companyId": COMPANY, "locationId": LOC_A});
    let (status, answer) = call_as(&m, Method::POST, "/oauth/location-token", "2021-07-28", None, Some(body)).await;
    assert_eq!(
        (status, answer),
        (404, json!({"statusCode": 404, "message": "Cannot POST /oauth/location-token", "error": "Not Found"}))
    );
}

#[tokio::test]
async fn where_both_generations_have_a_path_the_version_header_chooses_which_operation_answers() {
    let Some(m) = start().await else { return };
    let pit = m.token("Loc");
    // v3 names the location `locationId`; v2's search names it `location_id`.
    let v3 = format!("/opportunities/search?locationId={LOC_A}");
    let v2 = format!("/opportunities/search?location_id={LOC_A}");
    assert_eq!(call_as(&m, Method::GET, &v3, "v3", Some(&pit), None).await.0, 200);
    assert_eq!(call_as(&m, Method::GET, &v2, "2021-07-28", Some(&pit), None).await.0, 200);
    let (status, body) = call_as(&m, Method::GET, &v2, "v3", Some(&pit), None).await;
    assert_eq!((status, &body["message"][0]), (422, &json!("locationId should not be empty")), "{body}");
    // The v3 search reads the location where v3 names it: another one is refused.
    let foreign = format!("/opportunities/search?locationId={LOC_B}");
    let (status, body) = call_as(&m, Method::GET, &foreign, "v3", Some(&pit), None).await;
    assert_eq!(
        (status, body),
        (403, json!({"statusCode": 403, "message": "The token does not have access to this location."}))
    );
}

#[tokio::test]
async fn a_service_the_v3_files_do_not_cover_is_served_under_v3_as_under_a_dated_version() {
    let Some(m) = start().await else { return };
    let path = format!("/contacts/?locationId={LOC_A}");
    for version in ["2021-07-28", "2023-02-21", "v3"] {
        let (status, body) = call_as(&m, Method::GET, &path, version, Some(&m.token("Loc")), None).await;
        assert_eq!(status, 200, "Version {version}: {body}");
    }
}

#[tokio::test]
async fn a_record_written_through_v2_is_read_back_through_v3() {
    let Some(m) = start().await else { return };
    let pit = m.token("Loc");
    let contact = json!({"locationId": LOC_A, "firstName": "Ver", "email": "versions@example.com"});
    let (status, created) = call_as(&m, Method::POST, "/contacts/", "2021-07-28", Some(&pit), Some(contact)).await;
    assert_eq!(status, 201, "{created}");
    let contact_id = created["contact"]["id"].as_str().expect("contact id").to_string();
    let body = json!({"locationId": LOC_A, "contactId": contact_id});
    let (status, made) = call_as(&m, Method::POST, "/conversations/", "2021-04-15", Some(&pit), Some(body)).await;
    assert_eq!(status, 201, "{made}");
    let id = made["conversation"]["id"].as_str().expect("conversation id");
    let (status, read) = call_as(&m, Method::GET, &format!("/conversations/{id}"), "v3", Some(&pit), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!((read["id"].as_str(), read["contactId"].as_str()), (Some(id), Some(contact_id.as_str())), "{read}");
}

#[tokio::test]
async fn v3_oauth_takes_and_answers_camel_case_and_mints_tokens_that_work() {
    let Some(m) = start().await else { return };
    let scopes = json!(["oauth.write", "oauth.readonly", "conversations.readonly"]);
    let issue = json!({"client_id": "test-client", "owner": {"company": COMPANY}, "scopes": scopes});
    let (status, code) = m.admin(Method::POST, "/oauth/codes", Some(issue)).await;
    assert_eq!(status, 201, "{code}");
    let exchange = json!({
        "clientId": "test-client",
        "clientSecret": "test-secret",
        "grantType": "authorization_code",
        "code": code["code"],
    });
    let (status, agency) = call_as(&m, Method::POST, "/oauth/token", "v3", None, Some(exchange)).await;
    assert_eq!(status, 200, "{agency}");
    for key in ["accessToken", "tokenType", "expiresIn", "refreshToken", "userType", "companyId", "approvedLocations"] {
        assert!(agency.get(key).is_some(), "v3 answers `{key}`: {agency}");
    }
    assert!(agency.get("access_token").is_none() && agency.get("refresh_token").is_none(), "{agency}");
    assert_eq!(agency["userType"], "Company");

    let token = agency["accessToken"].as_str().expect("access token");
    let body = json!({"companyId": COMPANY, "locationId": LOC_A});
    let (status, location) = call_as(&m, Method::POST, "/oauth/location-token", "v3", Some(token), Some(body)).await;
    assert_eq!(status, 200, "{location}");
    for key in ["accessToken", "refreshToken", "appId", "versionId", "locationId"] {
        assert!(location.get(key).is_some(), "v3 answers `{key}`: {location}");
    }
    assert_eq!(location["locationId"], LOC_A);
    let location_token = location["accessToken"].as_str().expect("location token");
    let search = format!("/conversations/search?locationId={LOC_A}");
    let (status, found) = call_as(&m, Method::GET, &search, "v3", Some(location_token), None).await;
    assert_eq!(status, 200, "the minted location token works under v3: {found}");

    // The refresh, in camelCase too; a location token cannot mint another.
    let refresh = json!({
        "clientId": "test-client",
        "clientSecret": "test-secret",
        "grantType": "refresh_token",
        "refreshToken": agency["refreshToken"],
    });
    let (status, refreshed) = call_as(&m, Method::POST, "/oauth/token", "v3", None, Some(refresh)).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_ne!(refreshed["accessToken"], agency["accessToken"]);
    let body = json!({"companyId": COMPANY, "locationId": LOC_A});
    let (status, refused) =
        call_as(&m, Method::POST, "/oauth/location-token", "v3", Some(location_token), Some(body)).await;
    assert_eq!(
        (status, refused),
        (401, json!({"statusCode": 401, "message": "This token's user type is not yet supported!"}))
    );
}

#[tokio::test]
async fn with_removed_in_v3_set_to_serve_a_removed_path_is_answered_by_its_dated_operation() {
    let Some(dir) = repo_layout() else { return };
    let set = spec::load(Source::Dir(dir), 1).expect("loads");
    let mut config = ghl_mock::Config::default();
    config.fidelity.removed_in_v3 = ghl_mock::config::RemovedInV3::Serve;
    let fixture = unlimited_fixture(&PITS.replace("LOC_A", LOC_A).replace("COMPANY", COMPANY));
    let m = TestMock::start_with(set, fixture, config, ghl_mock::Clock::frozen(1_767_225_600_000)).await;
    let path = format!("/oauth/installedLocations?companyId={COMPANY}&appId=app1");
    let (status, body) = call_as(&m, Method::GET, &path, "v3", Some(&m.token("Agency")), None).await;
    let only_oauth = "This authClass type is not allowed to access this scope.";
    assert_eq!(
        (status, body),
        (401, json!({"statusCode": 401, "message": only_oauth})),
        "the v2 operation's own refusal"
    );
}
