//! Contacts and opportunities as a per-location store, and request validation.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

fn pits() -> String {
    format!(
        "  - {{name: A, owner: {{location: {LOC_A}}}, scopes: [contacts.readonly, contacts.write, opportunities.readonly, opportunities.write]}}\n\
         \x20 - {{name: B, owner: {{location: {LOC_B}}}, scopes: [contacts.readonly, contacts.write, opportunities.readonly, opportunities.write]}}\n"
    )
}

async fn start() -> TestMock {
    TestMock::start(embedded(), unlimited_fixture(&pits())).await
}

/// Sends a request and checks a 2xx body against the operation's response schema.
async fn call(m: &TestMock, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request =
        m.http.request(method.clone(), format!("{}{path}", m.url)).bearer_auth(token).header("Version", VERSION);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let (status, answer) = read(request.send().await.unwrap()).await;
    if (200..300).contains(&status) {
        let bare = path.split('?').next().unwrap_or(path);
        let axum_method = axum::http::Method::from_bytes(method.as_str().as_bytes()).unwrap();
        if let ghl_mock::spec::Match::Found(i, _) = m.mock.spec.find(&axum_method, bare) {
            if let Some(v) = &m.mock.spec.operations[i].success.validator {
                let errors: Vec<String> =
                    v.iter_errors(&answer).map(|e| format!("{e} at {}", e.instance_path())).collect();
                assert!(errors.is_empty(), "{method} {path}: answer breaks the spec: {errors:?}\n{answer}");
            }
        }
    }
    (status, answer)
}

#[tokio::test]
async fn a_contact_lives_through_create_get_update_search_list_and_delete() {
    let m = start().await;
    let a = m.token("A");
    let sent = json!({"locationId": LOC_A, "firstName": "Ada", "lastName": "Lovelace", "email": "Ada@Example.com", "phone": "+14155550132", "tags": ["vip"], "source": "ci"});
    let (status, created) = call(&m, Method::POST, "/contacts/", &a, Some(sent.clone())).await;
    assert_eq!(status, 201, "{created}");
    let contact = &created["contact"];
    let id = contact["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 20);
    for (k, v) in sent.as_object().unwrap() {
        assert_eq!(&contact[k], v, "field {k} comes back as sent");
    }
    assert_eq!(contact["emailLowerCase"], "ada@example.com");
    assert_eq!(contact["dateAdded"], "2026-01-01T00:00:00.000Z");

    let (status, got) = call(&m, Method::GET, &format!("/contacts/{id}"), &a, None).await;
    assert_eq!((status, &got["contact"]), (200, contact), "get returns what was stored");

    let (status, updated) =
        call(&m, Method::PUT, &format!("/contacts/{id}"), &a, Some(json!({"city": "London", "firstName": "Augusta"})))
            .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["contact"]["city"].as_str(), updated["contact"]["contactName"].as_str()),
        (Some("London"), Some("augusta lovelace"))
    );

    let (status, found) = call(
        &m,
        Method::POST,
        "/contacts/search",
        &a,
        Some(json!({"locationId": LOC_A, "page": 1, "pageLimit": 10, "query": "augusta"})),
    )
    .await;
    assert_eq!(
        (status, found["total"].as_u64(), found["contacts"][0]["id"].as_str()),
        (200, Some(1), Some(id.as_str()))
    );

    let (status, deleted) = call(&m, Method::DELETE, &format!("/contacts/{id}"), &a, None).await;
    assert_eq!((status, deleted), (200, json!({"succeded": true})));
    let (status, gone) = call(&m, Method::GET, &format!("/contacts/{id}"), &a, None).await;
    assert_eq!((status, gone), (400, json!({"statusCode": 400, "message": "Contact not found"})));
}

#[tokio::test]
async fn listing_pages_through_250_contacts_with_start_after_id_without_loss_or_duplicates() {
    let m = start().await;
    let a = m.token("A");
    let mut made = std::collections::BTreeSet::new();
    for i in 0..250 {
        if i % 50 == 0 {
            m.mock.clock.advance_ms(1_000); // several contacts share each dateAdded
        }
        let (status, c) = call(
            &m,
            Method::POST,
            "/contacts/",
            &a,
            Some(json!({"locationId": LOC_A, "email": format!("c{i}@example.com")})),
        )
        .await;
        assert_eq!(status, 201, "{c}");
        made.insert(c["contact"]["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = format!("/contacts/?locationId={LOC_A}&limit=100");
    loop {
        let (status, page) = call(&m, Method::GET, &path, &a, None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["meta"]["total"], 250);
        seen.extend(page["contacts"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()));
        let Some(next) = page["meta"]["startAfterId"].as_str() else { break };
        let after = page["meta"]["startAfter"].as_i64().unwrap();
        assert!(page["meta"]["nextPageUrl"].as_str().unwrap().contains(&format!("startAfterId={next}")));
        path = format!("/contacts/?locationId={LOC_A}&limit=100&startAfter={after}&startAfterId={next}");
    }
    assert_eq!(seen.len(), 250, "no contact lost or repeated");
    assert_eq!(seen.iter().cloned().collect::<std::collections::BTreeSet<_>>(), made);
}

#[tokio::test]
async fn locations_are_isolated_both_ways() {
    let m = start().await;
    let (a, b) = (m.token("A"), m.token("B"));
    let (_, in_a) =
        call(&m, Method::POST, "/contacts/", &a, Some(json!({"locationId": LOC_A, "email": "a@example.com"}))).await;
    let (_, in_b) =
        call(&m, Method::POST, "/contacts/", &b, Some(json!({"locationId": LOC_B, "email": "b@example.com"}))).await;
    let (id_a, id_b) = (in_a["contact"]["id"].as_str().unwrap(), in_b["contact"]["id"].as_str().unwrap());
    let forbidden = json!({"statusCode": 403, "message": "The token does not have access to this location."});
    assert_eq!(call(&m, Method::GET, &format!("/contacts/{id_b}"), &a, None).await, (403, forbidden.clone()));
    assert_eq!(call(&m, Method::GET, &format!("/contacts/{id_a}"), &b, None).await, (403, forbidden.clone()));
    assert_eq!(call(&m, Method::DELETE, &format!("/contacts/{id_a}"), &b, None).await.0, 403);
    let (_, list_a) = call(&m, Method::GET, &format!("/contacts/?locationId={LOC_A}"), &a, None).await;
    assert_eq!(list_a["meta"]["total"], 1, "each location lists only its own contacts");
    assert_eq!(call(&m, Method::GET, &format!("/contacts/{id_a}"), &a, None).await.0, 200, "still there");
}

#[tokio::test]
async fn a_duplicate_email_or_phone_is_refused_with_the_existing_contact_id() {
    let m = start().await;
    let a = m.token("A");
    let (_, first) = call(
        &m,
        Method::POST,
        "/contacts/",
        &a,
        Some(json!({"locationId": LOC_A, "email": "dup@example.com", "phone": "+15550001"})),
    )
    .await;
    let id = first["contact"]["id"].clone();
    for body in
        [json!({"locationId": LOC_A, "email": "DUP@example.com"}), json!({"locationId": LOC_A, "phone": "+15550001"})]
    {
        let (status, refused) = call(&m, Method::POST, "/contacts/", &a, Some(body)).await;
        assert_eq!(status, 400);
        assert_eq!(refused["message"], "This location does not allow duplicated contacts.");
        assert_eq!(refused["meta"]["contactId"], id);
    }
    // Upsert finds the same contact instead of refusing.
    let (status, upserted) = call(
        &m,
        Method::POST,
        "/contacts/upsert",
        &a,
        Some(json!({"locationId": LOC_A, "email": "dup@example.com", "city": "Paris"})),
    )
    .await;
    assert_eq!((status, upserted["new"].clone(), upserted["contact"]["id"].clone()), (200, json!(false), id));
    assert_eq!(upserted["contact"]["city"], "Paris");
}

#[tokio::test]
async fn a_location_that_allows_duplicates_accepts_them() {
    let mut world = unlimited_fixture(&pits());
    world.companies[0].locations[0].allow_duplicate_contacts = true;
    let m = TestMock::start(embedded(), world).await;
    let a = m.token("A");
    for _ in 0..2 {
        assert_eq!(
            call(&m, Method::POST, "/contacts/", &a, Some(json!({"locationId": LOC_A, "email": "same@example.com"})))
                .await
                .0,
            201
        );
    }
}

#[tokio::test]
async fn tags_and_notes_belong_to_their_contact() {
    let m = start().await;
    let a = m.token("A");
    let (_, c) = call(&m, Method::POST, "/contacts/", &a, Some(json!({"locationId": LOC_A, "tags": ["one"]}))).await;
    let id = c["contact"]["id"].as_str().unwrap().to_string();
    let (status, tags) =
        call(&m, Method::POST, &format!("/contacts/{id}/tags"), &a, Some(json!({"tags": ["two", "one"]}))).await;
    assert_eq!((status, tags), (201, json!({"tags": ["one", "two"]})));
    let (_, left) = call(&m, Method::DELETE, &format!("/contacts/{id}/tags"), &a, Some(json!({"tags": ["one"]}))).await;
    assert_eq!(left, json!({"tags": ["two"]}));
    let (status, note) =
        call(&m, Method::POST, &format!("/contacts/{id}/notes"), &a, Some(json!({"body": "Called back"}))).await;
    assert_eq!(status, 201, "{note}");
    let note_id = note["note"]["id"].as_str().unwrap().to_string();
    let (_, notes) = call(&m, Method::GET, &format!("/contacts/{id}/notes"), &a, None).await;
    assert_eq!(notes["notes"][0]["body"], "Called back");
    let (_, edited) =
        call(&m, Method::PUT, &format!("/contacts/{id}/notes/{note_id}"), &a, Some(json!({"body": "Quoted"}))).await;
    assert_eq!(edited["note"]["body"], "Quoted");
    assert_eq!(call(&m, Method::DELETE, &format!("/contacts/{id}/notes/{note_id}"), &a, None).await.0, 200);
    assert_eq!(call(&m, Method::GET, &format!("/contacts/{id}/notes/{note_id}"), &a, None).await.0, 400);
}

#[tokio::test]
async fn an_opportunity_lives_through_create_get_update_search_and_delete() {
    let m = start().await;
    let a = m.token("A");
    let refs = references(&m, "opp").await;
    let pipeline = refs[0].1.clone();
    let (status, created) = call(&m, Method::POST, "/opportunities/", &a, Some(json!({"locationId": LOC_A, "pipelineId": pipeline, "name": "Annual plan", "status": "open", "monetaryValue": 1200, "contactId": "nobody00000000000001"}))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["opportunity"]["id"].as_str().unwrap().to_string();
    let (_, got) = call(&m, Method::GET, &format!("/opportunities/{id}"), &a, None).await;
    assert_eq!(got["opportunity"], created["opportunity"]);
    let (_, updated) = call(&m, Method::PUT, &format!("/opportunities/{id}"), &a, Some(json!({"status": "won"}))).await;
    assert_eq!(updated["opportunity"]["status"], "won");
    let (_, won) =
        call(&m, Method::GET, &format!("/opportunities/search?location_id={LOC_A}&status=won"), &a, None).await;
    assert_eq!(won["meta"]["total"], 1);
    let (_, open) =
        call(&m, Method::GET, &format!("/opportunities/search?location_id={LOC_A}&status=open"), &a, None).await;
    assert_eq!(open["meta"]["total"], 0);
    assert_eq!(call(&m, Method::GET, &format!("/opportunities/{id}"), &m.token("B"), None).await.0, 403);
    assert_eq!(call(&m, Method::DELETE, &format!("/opportunities/{id}"), &a, None).await.0, 200);
    assert_eq!(call(&m, Method::GET, &format!("/opportunities/{id}"), &a, None).await.0, 400);
}

async fn raw(m: &TestMock, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = m
        .http
        .post(format!("{}/contacts/", m.url))
        .bearer_auth(m.token("A"))
        .header("Version", VERSION)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    read(response).await
}

#[tokio::test]
async fn each_kind_of_bad_request_gets_its_own_clear_answer() {
    let m = start().await;
    let (status, body) = raw(&m, "application/json", b"{\"locationId\": ".to_vec()).await;
    assert_eq!((status, &body["error"]), (400, &json!("Bad Request")));
    assert!(body["message"].as_str().unwrap().starts_with("Unexpected JSON"), "{body}");
    let (status, body) = raw(&m, "application/json", vec![b'"', 0xff, 0xfe, b'"']).await;
    assert_eq!(status, 400, "non-UTF-8: {body}");
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let (status, body) = raw(&m, "application/json", deep.into_bytes()).await;
    assert_eq!((status, body["message"].as_str()), (400, Some("JSON is nested deeper than 64 levels")));
    let (status, body) = raw(&m, "text/plain", b"hello".to_vec()).await;
    assert_eq!((status, body["statusCode"].as_u64()), (415, Some(415)));
    let (status, body) = raw(&m, "application/json", vec![b' '; 2 * 1024 * 1024]).await;
    assert_eq!((status, body["statusCode"].as_u64()), (413, Some(413)));

    let (status, body) = raw(&m, "application/json", br#"{"email": "not-an-email", "dnd": "yes"}"#.to_vec()).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"], "Unprocessable Entity");
    assert_eq!(body["statusCode"], 422);
    assert!(uuid::Uuid::parse_str(body["traceId"].as_str().unwrap()).is_ok());
    let messages: Vec<&str> = body["message"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for expected in ["locationId should not be empty", "email must be an email", "dnd must be a boolean value"] {
        assert!(messages.contains(&expected), "missing {expected:?} in {messages:?}");
    }
}

#[tokio::test]
async fn query_parameters_are_checked_as_their_schema_types() {
    let m = start().await;
    let a = m.token("A");
    let (status, body) = call(&m, Method::GET, &format!("/contacts/?locationId={LOC_A}&limit=101"), &a, None).await;
    assert_eq!((status, body["message"].clone()), (422, json!(["limit must not be greater than 100"])));
    let (status, body) = call(&m, Method::GET, &format!("/contacts/?locationId={LOC_A}&limit=ten"), &a, None).await;
    assert_eq!(
        (status, body["message"].clone()),
        (422, json!(["limit must be a number conforming to the specified constraints"]))
    );
}

#[tokio::test]
async fn a_location_holds_at_most_its_record_limit_and_says_so() {
    let mut config = ghl_mock::Config::default();
    config.limits.max_records = 3;
    let m = TestMock::start_with(embedded(), unlimited_fixture(&pits()), config, ghl_mock::Clock::frozen(0)).await;
    let a = m.token("A");
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, c) = call(
            &m,
            Method::POST,
            "/contacts/",
            &a,
            Some(json!({"locationId": LOC_A, "email": format!("cap{i}@example.com")})),
        )
        .await;
        assert_eq!(status, 201);
        ids.push(c["contact"]["id"].as_str().unwrap().to_string());
    }
    let (status, refused) =
        call(&m, Method::POST, "/contacts/", &a, Some(json!({"locationId": LOC_A, "email": "cap3@example.com"}))).await;
    assert_eq!(status, 400);
    assert!(refused["message"].as_str().unwrap().contains("at most 3 records of /contacts per location"), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("serve --max-records raises it"), "{refused}");
    assert_eq!(
        call(&m, Method::POST, "/contacts/", &m.token("B"), Some(json!({"locationId": LOC_B}))).await.0,
        201,
        "other locations have their own room"
    );
    assert_eq!(call(&m, Method::DELETE, &format!("/contacts/{}", ids[0]), &a, None).await.0, 200);
    assert_eq!(
        call(&m, Method::POST, "/contacts/", &a, Some(json!({"locationId": LOC_A, "email": "cap3@example.com"})))
            .await
            .0,
        201,
        "room again after a delete"
    );
}

#[tokio::test]
async fn a_location_holds_at_most_its_record_bytes_and_names_the_setting_that_raises_it() {
    let mut config = ghl_mock::Config::default();
    config.limits.max_record_bytes = 300_000;
    let m = TestMock::start_with(embedded(), unlimited_fixture(&pits()), config, ghl_mock::Clock::frozen(0)).await;
    let big = "x".repeat(100_000);
    let mut statuses = Vec::new();
    let mut last = Value::Null;
    for i in 0..4 {
        let body = json!({"locationId": LOC_A, "email": format!("big{i}@example.com"), "companyName": big});
        let (status, answer) = call(&m, Method::POST, "/contacts/", &m.token("A"), Some(body)).await;
        statuses.push(status);
        last = answer;
    }
    // The location already holds a seeded contact or two; two big ones fit, the fourth never does.
    assert!(statuses.iter().filter(|s| **s == 201).count() >= 2, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&400), "{statuses:?} {last}");
    let message = last["message"].as_str().unwrap_or_default();
    assert!(message.contains("bytes of /contacts per location") && message.contains("--max-record-bytes"), "{message}");
}

#[tokio::test]
async fn a_contact_holds_at_most_its_tag_limit_and_repeated_tags_are_kept_once() {
    let mut config = ghl_mock::Config::default();
    config.limits.max_tags = 4;
    let m = TestMock::start_with(embedded(), unlimited_fixture(&pits()), config, ghl_mock::Clock::frozen(0)).await;
    let a = m.token("A");
    let (_, c) =
        call(&m, Method::POST, "/contacts/", &a, Some(json!({"locationId": LOC_A, "email": "tags@example.com"}))).await;
    let id = c["contact"]["id"].as_str().unwrap();
    let path = format!("/contacts/{id}/tags");
    let (status, tags) = call(&m, Method::POST, &path, &a, Some(json!({"tags": ["a", "b", "a", "c"]}))).await;
    assert_eq!((status, tags["tags"].clone()), (201, json!(["a", "b", "c"])));
    let (status, _) = call(&m, Method::POST, &path, &a, Some(json!({"tags": ["c", "d"]}))).await;
    assert_eq!(status, 201, "four distinct tags fit");
    let (status, refused) = call(&m, Method::POST, &path, &a, Some(json!({"tags": ["e"]}))).await;
    assert_eq!(status, 400);
    assert!(refused["message"].as_str().unwrap().contains("at most 4 tags"), "{refused}");
    let (_, got) = call(&m, Method::GET, &format!("/contacts/{id}"), &a, None).await;
    assert_eq!(got["contact"]["tags"], json!(["a", "b", "c", "d"]), "a refused change changes nothing");
}
