//! Issue 14: validation as HighLevel's NestJS services do it, operations the
//! spec leaves unsecured, and agency tokens held to their own company.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

const FIDELITY_PITS: &str = "  - {name: Loc, owner: {location: LOC_A}, scopes: [contacts.readonly, contacts.write, users.readonly, conversations/message.readonly]}
  - {name: Agency, owner: {company: COMPANY}, scopes: [users.readonly, contacts.readonly]}";

fn fixture() -> ghl_mock::Fixture {
    unlimited_fixture(&FIDELITY_PITS.replace("LOC_A", LOC_A).replace("COMPANY", COMPANY))
}

async fn start(spec: ghl_mock::SpecSet, set: impl FnOnce(&mut ghl_mock::Fidelity)) -> TestMock {
    let mut config = ghl_mock::Config::default();
    set(&mut config.fidelity);
    TestMock::start_with(spec, fixture(), config, ghl_mock::Clock::frozen(1_767_225_600_000)).await
}

async fn call(m: &TestMock, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    call_as(m, method, path, VERSION, token, body).await
}

fn corpus() -> Option<ghl_mock::SpecSet> {
    corpus_dir().map(|dir| ghl_mock::spec::load(ghl_mock::Source::Dir(dir), 1).expect("corpus loads"))
}

fn unprocessable(messages: &[&str]) -> Value {
    json!({"statusCode": 422, "message": messages, "error": "Unprocessable Entity"})
}

#[tokio::test]
async fn body_properties_the_schema_does_not_name_are_refused_one_message_each_on_both_surfaces() {
    let mut surfaces = vec![("default", embedded())];
    surfaces.extend(corpus().map(|c| ("official", c)));
    for (name, spec) in surfaces {
        let m = start(spec, |_| {}).await;
        let body = json!({"locationId": LOC_A, "firstName": "Ann", "foo": 1, "bar": {"x": 1}});
        let (status, answer) = call(&m, Method::POST, "/contacts/", Some(&m.token("Loc")), Some(body)).await;
        assert_eq!(
            (status, answer),
            (422, unprocessable(&["property foo should not exist", "property bar should not exist"])),
            "{name}"
        );
        // Nested: under its dotted parent (the official file leaves custom field values open).
        if name == "default" {
            let body = json!({"locationId": LOC_A, "firstName": "Ann", "customFields": [{"id": "f1", "bogus": true}]});
            let (status, answer) = call(&m, Method::POST, "/contacts/", Some(&m.token("Loc")), Some(body)).await;
            assert_eq!((status, answer), (422, unprocessable(&["customFields.0.property bogus should not exist"])));
        }
        // An undocumented DTO (`properties: {}`) takes what it is given.
        let search = json!({"locationId": LOC_A, "query": "ann", "page": 1, "pageLimit": 10});
        let (status, answer) = call(&m, Method::POST, "/contacts/search", Some(&m.token("Loc")), Some(search)).await;
        assert_eq!(status, 200, "{name}: {answer}");
    }
}

#[tokio::test]
async fn with_unknown_properties_accepted_they_are_stored_and_read_back() {
    let m = start(embedded(), |f| f.unknown_properties = ghl_mock::config::UnknownProperties::Accept).await;
    let body = json!({"locationId": LOC_A, "firstName": "Ann", "foo": 1});
    let (status, created) = call(&m, Method::POST, "/contacts/", Some(&m.token("Loc")), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["contact"]["id"].as_str().expect("id");
    let (_, read) = call(&m, Method::GET, &format!("/contacts/{id}"), Some(&m.token("Loc")), None).await;
    assert_eq!(read["contact"]["foo"], 1, "{read}");
}

#[tokio::test]
async fn an_empty_query_value_is_checked_as_given_and_a_required_one_reads_as_missing() {
    let m = start(embedded(), |_| {}).await;
    let token = m.token("Loc");
    let (status, answer) =
        call(&m, Method::GET, &format!("/contacts/?locationId={LOC_A}&limit="), Some(&token), None).await;
    assert_eq!(
        (status, answer),
        (422, unprocessable(&["limit must be a number conforming to the specified constraints"]))
    );
    let (status, answer) = call(&m, Method::GET, "/contacts/?locationId=", Some(&token), None).await;
    assert_eq!((status, answer), (422, unprocessable(&["locationId should not be empty"])));
}

#[tokio::test]
async fn an_operation_the_spec_leaves_unsecured_still_needs_a_token_except_the_token_exchange() {
    let Some(spec) = corpus() else { return };
    let unsecured = "/conversations/messages/email/someEmailMessage01";
    let op = spec.operations.iter().find(|o| o.path == "/conversations/messages/email/{id}").expect("in the corpus");
    assert!(op.security.is_empty(), "the official file leaves it without security");
    let m = start(spec, |_| {}).await;
    let (status, answer) = call(&m, Method::GET, unsecured, None, None).await;
    assert_eq!(
        (status, answer),
        (401, json!({"statusCode": 401, "message": "Invalid JWT"})),
        "no token on an operation the spec forgot to secure"
    );
    let (status, answer) = call(&m, Method::GET, unsecured, Some(&m.token("Loc")), None).await;
    assert!(status < 300 || status == 404, "a location token with no particular scope passes: {status} {answer}");
    let (status, _) = call(&m, Method::POST, "/oauth/token", None, None).await;
    assert_ne!(status, 401, "the token exchange needs no bearer token");
    let Some(spec) = corpus() else { return };
    let lenient = start(spec, |f| f.secure_unsecured_operations = false).await;
    let (status, answer) = call(&lenient, Method::GET, unsecured, None, None).await;
    assert!(status < 300 || status == 404, "with the setting off, no token is asked for: {status} {answer}");
}

#[tokio::test]
async fn a_token_naming_another_company_is_refused_and_its_own_company_is_served() {
    let m = start(embedded(), |_| {}).await;
    let forbidden = json!({"statusCode": 403, "message": "The token does not have access to this company."});
    for token in [m.token("Loc"), m.token("Agency")] {
        let (status, answer) = call(
            &m,
            Method::GET,
            &format!("/users/search?companyId={OTHER_COMPANY}&locationId={LOC_A}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(
            (status, answer["statusCode"].clone(), answer["message"].clone()),
            (403, forbidden["statusCode"].clone(), forbidden["message"].clone())
        );
        let (status, answer) =
            call(&m, Method::GET, &format!("/users/search?companyId={COMPANY}&locationId={LOC_A}"), Some(&token), None)
                .await;
        assert_eq!(status, 200, "{answer}");
    }
    let lenient = start(embedded(), |f| f.foreign_company_message = String::new()).await;
    let (status, answer) = call(
        &lenient,
        Method::GET,
        &format!("/users/search?companyId={OTHER_COMPANY}&locationId={LOC_A}"),
        Some(&lenient.token("Agency")),
        None,
    )
    .await;
    assert_eq!(status, 200, "with the check off: {answer}");
}

/// A `multipart/form-data` body: text fields, then one file part.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str)>) -> (String, String) {
    let boundary = "ghlMockBoundary7MA4YWxkTrZu0gW";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    }
    if let Some((name, file)) = file {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: image/png\r\n\r\n\u{1}PNG-bytes\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A PIT of location A that may upload (the scopes only the official files name).
async fn uploader(m: &TestMock) -> String {
    let (status, made) = m
        .admin(
            Method::POST,
            "/integrations",
            Some(json!({"name": "Uploader", "owner": {"location": LOC_A}, "scopes": ["conversations/message.write", "medias.write"]})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    made["token"].as_str().expect("a token").to_string()
}

async fn upload(m: &TestMock, token: &str, path: &str, (content_type, body): (String, String)) -> (u16, Value) {
    let r = m
        .http
        .post(format!("{}{path}", m.url))
        .header("Version", VERSION)
        .bearer_auth(token)
        .header("Content-Type", content_type)
        .body(body);
    read_untraced(r.send().await.expect("upload")).await
}

#[tokio::test]
async fn a_multipart_upload_is_validated_field_by_field_as_a_json_body_is() {
    let Some(spec) = corpus() else { return };
    let m = start(spec, |_| {}).await;
    let token = uploader(&m).await;
    let path = "/conversations/messages/upload";
    let fields = [
        ("conversationId", "conv1"),
        ("contactId", "contact1"),
        ("locationId", LOC_A),
        ("attachmentUrls", "https://files.example/a.png"),
    ];
    // The file part is the upload's, not the body's (NestJS's file interceptor takes it out).
    let (status, answer) = upload(&m, &token, path, multipart(&fields, Some(("fileAttachment", "a.png")))).await;
    assert!((200..300).contains(&status), "a well-formed upload is taken: {status} {answer}");
    let (status, answer) = upload(&m, &token, path, multipart(&fields[..3], Some(("fileAttachment", "a.png")))).await;
    assert_eq!((status, answer), (422, unprocessable(&["attachmentUrls should not be empty"])));

    let mut with_unknown = fields.to_vec();
    with_unknown.push(("foo", "1"));
    let (status, answer) = upload(&m, &token, path, multipart(&with_unknown, Some(("fileAttachment", "a.png")))).await;
    assert_eq!((status, answer), (422, unprocessable(&["property foo should not exist"])));

    // Typed by the schema as query values are: `hosted` is a boolean.
    let (status, answer) = upload(
        &m,
        &token,
        "/medias/upload-file",
        multipart(&[("hosted", "true"), ("name", "logo")], Some(("file", "logo.png"))),
    )
    .await;
    assert!((200..300).contains(&status), "`hosted=true` is a boolean: {status} {answer}");
    let (status, answer) =
        upload(&m, &token, "/medias/upload-file", multipart(&[("hosted", "maybe")], Some(("file", "logo.png")))).await;
    assert_eq!((status, answer), (422, unprocessable(&["hosted must be a boolean value"])));

    let (status, answer) =
        upload(&m, &token, path, ("multipart/form-data; boundary=nope".into(), "garbage".into())).await;
    assert_eq!(status, 400, "a body that is not multipart is refused: {answer}");
}

#[tokio::test]
async fn a_multipart_upload_naming_another_location_is_refused_as_a_json_body_is() {
    let Some(spec) = corpus() else { return };
    let m = start(spec, |_| {}).await;
    let token = uploader(&m).await;
    let fields = [("conversationId", "conv1"), ("contactId", "contact1"), ("locationId", LOC_B)];
    let (status, answer) =
        upload(&m, &token, "/conversations/messages/upload", multipart(&fields, Some(("fileAttachment", "a.png"))))
            .await;
    let (json_status, json_answer) = call(
        &m,
        Method::POST,
        "/contacts/",
        Some(&m.token("Loc")),
        Some(json!({"firstName": "Ann", "locationId": LOC_B})),
    )
    .await;
    assert_eq!((status, json_status), (403, 403), "{answer} {json_answer}");
    assert_eq!(answer["message"], json_answer["message"], "the same refusal as a JSON body naming another location");
}
