//! Everyday integration flows, written once and run against the embedded
//! default surface and against HighLevel's official files: what a client
//! writes, it reads back, in the shapes the specs describe. Each runs in the
//! default world (its seeded sandbox: users, a pipeline with stages, a
//! calendar, custom fields, contacts).

use reqwest::Method;
use serde_json::{json, Value};

use ghl_mock::{Clock, Config, SpecSet};

use crate::support::*;

const LOC: &str = "ghlMockLocationA0001";
const COMPANY_ID: &str = "ghlMockCompany000001";
const CALENDAR: &str = "ghlMockCalendar00001";
const PIPELINE: &str = "ghlMockPipeline00001";
const ANN: &str = "ghlMockContactAnn001";

struct Flow {
    m: TestMock,
    token: String,
}

impl Flow {
    /// The default world, its PIT holding every scope of the served specs.
    async fn start(spec: SpecSet) -> Flow {
        let mut fixture =
            ghl_mock::fixture::parse("default.yaml", ghl_mock::fixture::DEFAULT).expect("default fixture");
        fixture.private_integrations[0].scopes = spec.scopes().into_iter().map(str::to_string).collect();
        let m = TestMock::start_with(spec, fixture, Config::default(), Clock::frozen(1_767_225_600_000)).await;
        let token = m.token("Default PIT");
        Flow { m, token }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        // A well-behaved client in a sandbox: 20 requests per 10 s, under its 25.
        self.m.mock.clock.advance_ms(500);
        let mut request = self
            .m
            .http
            .request(method, format!("{}{path}", self.m.url))
            .bearer_auth(&self.token)
            .header("Version", VERSION);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("request")).await
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method.clone(), path, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    async fn contact(&self, email: &str) -> String {
        let c = self
            .ok(Method::POST, "/contacts/", Some(json!({"locationId": LOC, "firstName": "Flo", "email": email})))
            .await;
        c["contact"]["id"].as_str().expect("contact id").to_string()
    }
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array().map(|a| a.iter().filter_map(|i| i["id"].as_str()).collect()).unwrap_or_default()
}

async fn contact_lifecycle(f: &Flow) {
    let id = f.contact("life@example.com").await;
    let got = f.ok(Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(got["contact"]["email"], "life@example.com");
    f.ok(Method::PUT, &format!("/contacts/{id}"), Some(json!({"lastName": "Lane"}))).await;
    let got = f.ok(Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(
        (got["contact"]["lastName"].as_str(), got["contact"]["firstName"].as_str()),
        (Some("Lane"), Some("Flo"))
    );
    let found = f
        .ok(
            Method::POST,
            "/contacts/search",
            Some(json!({"locationId": LOC, "query": "life@example.com", "page": 1, "pageLimit": 10})),
        )
        .await;
    assert_eq!(ids(&found["contacts"]), vec![id.as_str()]);
    f.ok(Method::DELETE, &format!("/contacts/{id}"), None).await;
    assert_eq!(f.call(Method::GET, &format!("/contacts/{id}"), None).await.0, 400);
}

async fn contact_notes(f: &Flow) {
    let note =
        f.ok(Method::POST, &format!("/contacts/{ANN}/notes"), Some(json!({"body": "Called, wants a quote"}))).await;
    let note_id = note["note"]["id"].as_str().expect("note id").to_string();
    let notes = f.ok(Method::GET, &format!("/contacts/{ANN}/notes"), None).await;
    assert!(ids(&notes["notes"]).contains(&note_id.as_str()), "{notes}");
    let got = f.ok(Method::GET, &format!("/contacts/{ANN}/notes/{note_id}"), None).await;
    assert_eq!(got["note"]["body"], "Called, wants a quote");
}

async fn booking_then_listing_events(f: &Flow) {
    let book = |start: &str, end: &str| json!({"calendarId": CALENDAR, "locationId": LOC, "contactId": ANN, "startTime": start, "endTime": end, "title": "Discovery"});
    let one = f
        .ok(Method::POST, "/calendars/events/appointments", Some(book("2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z")))
        .await;
    let two = f
        .ok(Method::POST, "/calendars/events/appointments", Some(book("2026-03-03T10:00:00Z", "2026-03-03T10:30:00Z")))
        .await;
    let (one, two) = (one["id"].as_str().expect("appointment id"), two["id"].as_str().expect("appointment id"));
    assert_ne!(one, two, "every booking has its own id");
    let march = "startTime=1772323200000&endTime=1775001599000"; // all of March 2026, epoch ms
    let events =
        f.ok(Method::GET, &format!("/calendars/events?locationId={LOC}&calendarId={CALENDAR}&{march}"), None).await;
    let listed = ids(&events["events"]);
    assert!(listed.contains(&one) && listed.contains(&two), "{events}");
    let second_day = "startTime=1772496000000&endTime=1772582399000"; // 2026-03-03 only
    let events = f
        .ok(Method::GET, &format!("/calendars/events?locationId={LOC}&calendarId={CALENDAR}&{second_day}"), None)
        .await;
    assert_eq!(ids(&events["events"]), vec![two], "the time range filters");
    let got = f.ok(Method::GET, &format!("/calendars/events/appointments/{one}"), None).await;
    assert_eq!(got["event"]["title"], "Discovery", "{got}");
    f.ok(Method::DELETE, &format!("/calendars/events/{one}"), None).await;
    let events =
        f.ok(Method::GET, &format!("/calendars/events?locationId={LOC}&calendarId={CALENDAR}&{march}"), None).await;
    assert_eq!(ids(&events["events"]), vec![two]);
}

async fn sending_a_message_then_reading_the_conversation(f: &Flow) {
    let contact = f.contact("talk@example.com").await;
    let body = json!({"type": "SMS", "subType": "SMS", "status": "pending", "contactId": contact, "message": "Your quote is ready"});
    let sent = f.ok(Method::POST, "/conversations/messages", Some(body.clone())).await;
    let conversation = sent["conversationId"].as_str().expect("conversation id").to_string();
    let message = sent["messageId"].as_str().expect("message id").to_string();
    let again = f.ok(Method::POST, "/conversations/messages", Some(body)).await;
    assert_eq!(again["conversationId"], conversation.as_str(), "one conversation per contact");
    let got = f.ok(Method::GET, &format!("/conversations/{conversation}"), None).await;
    let got = if got["conversation"].is_object() { &got["conversation"] } else { &got };
    assert_eq!(got["contactId"], contact.as_str(), "{got}");
    assert_eq!(got["lastMessageBody"], "Your quote is ready");
    let messages = f.ok(Method::GET, &format!("/conversations/{conversation}/messages"), None).await;
    // Official files answer `{messages: [...]}` under `messages` or at the top.
    let listed =
        if messages["messages"].is_array() { &messages["messages"] } else { &messages["messages"]["messages"] };
    assert!(ids(listed).contains(&message.as_str()), "{messages}");
    assert!(
        listed.as_array().unwrap().iter().all(|m| m["body"] == "Your quote is ready"),
        "ours, not generated: {messages}"
    );
}

async fn custom_fields_are_listed_after_create(f: &Flow) {
    let path = format!("/locations/{LOC}/customFields");
    let one = f.ok(Method::POST, &path, Some(json!({"name": "Renewal date", "dataType": "DATE"}))).await;
    let two = f.ok(Method::POST, &path, Some(json!({"name": "Plan", "dataType": "TEXT"}))).await;
    let (one, two) = (one["customField"]["id"].as_str().unwrap(), two["customField"]["id"].as_str().unwrap());
    assert_ne!(one, two);
    let list = f.ok(Method::GET, &path, None).await;
    let listed = ids(&list["customFields"]);
    assert!(listed.contains(&one) && listed.contains(&two) && listed.contains(&"ghlMockFieldBudget01"), "{list}");
    let got = f.ok(Method::GET, &format!("{path}/{one}"), None).await;
    assert_eq!(got["customField"]["name"], "Renewal date");
}

async fn the_location_is_the_fixtures(f: &Flow) {
    let got = f.ok(Method::GET, &format!("/locations/{LOC}"), None).await;
    assert_eq!(got["location"]["name"], "Sandbox Location A", "{got}");
    assert_eq!(got["location"]["companyId"], COMPANY_ID);
    assert_eq!(got["location"]["timezone"], "America/New_York");
}

async fn users_are_the_fixtures(f: &Flow) {
    let users = f.ok(Method::GET, &format!("/users/?locationId={LOC}"), None).await;
    let listed = ids(&users["users"]);
    assert!(listed.contains(&"ghlMockUserAlice0001") && listed.contains(&"ghlMockUserBob000002"), "{users}");
    let alice = f.ok(Method::GET, "/users/ghlMockUserAlice0001", None).await;
    let alice = if alice["user"].is_object() { &alice["user"] } else { &alice };
    assert_eq!(alice["email"], "alice@sandbox-a.example");
}

async fn contact_tasks(f: &Flow) {
    let contact = f.contact("tasks@example.com").await;
    let path = format!("/contacts/{contact}/tasks");
    let task = f
        .ok(
            Method::POST,
            &path,
            Some(json!({"title": "Send contract", "dueDate": "2026-03-05T12:00:00Z", "completed": false})),
        )
        .await;
    let task_id = task["task"]["id"].as_str().expect("task id").to_string();
    let list = f.ok(Method::GET, &path, None).await;
    assert_eq!(ids(&list["tasks"]), vec![task_id.as_str()]);
    f.ok(Method::PUT, &format!("{path}/{task_id}/completed"), Some(json!({"completed": true}))).await;
    let got = f.ok(Method::GET, &format!("{path}/{task_id}"), None).await;
    assert_eq!(
        (got["task"]["completed"].as_bool(), got["task"]["title"].as_str()),
        (Some(true), Some("Send contract"))
    );
}

async fn location_tags(f: &Flow) {
    let path = format!("/locations/{LOC}/tags");
    let tag = f.ok(Method::POST, &path, Some(json!({"name": "hot lead"}))).await;
    let tag_id = tag["tag"]["id"].as_str().expect("tag id").to_string();
    let list = f.ok(Method::GET, &path, None).await;
    assert!(ids(&list["tags"]).contains(&tag_id.as_str()), "{list}");
    let got = f.ok(Method::GET, &format!("{path}/{tag_id}"), None).await;
    assert_eq!(got["tag"]["name"], "hot lead");
}

async fn moving_an_opportunity_through_the_pipelines_stages(f: &Flow) {
    let pipelines = f.ok(Method::GET, &format!("/opportunities/pipelines?locationId={LOC}"), None).await;
    let pipeline = pipelines["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == PIPELINE)
        .expect("the seeded pipeline")
        .clone();
    let stages: Vec<String> =
        pipeline["stages"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(stages.len(), 3, "stages are objects with ids: {pipeline}");
    let created = f
        .ok(Method::POST, "/opportunities/", Some(json!({"pipelineId": PIPELINE, "pipelineStageId": stages[0], "locationId": LOC, "name": "Annual plan", "status": "open", "contactId": ANN})))
        .await;
    let id = created["opportunity"]["id"].as_str().unwrap().to_string();
    f.ok(Method::PUT, &format!("/opportunities/{id}"), Some(json!({"pipelineStageId": stages[1]}))).await;
    let got = f.ok(Method::GET, &format!("/opportunities/{id}"), None).await;
    assert_eq!(got["opportunity"]["pipelineStageId"], stages[1].as_str());
    let (status, refused) = f
        .call(Method::PUT, &format!("/opportunities/{id}"), Some(json!({"pipelineStageId": "noSuchStage000000001"})))
        .await;
    assert_eq!((status, refused["message"].as_str()), (400, Some("Pipeline stage not found")));
    let found =
        f.ok(Method::GET, &format!("/opportunities/search?location_id={LOC}&pipeline_id={PIPELINE}"), None).await;
    assert!(ids(&found["opportunities"]).contains(&id.as_str()), "{found}");
}

async fn contact_tags_are_a_set(f: &Flow) {
    let id = f.contact("tagged@example.com").await;
    f.ok(Method::POST, &format!("/contacts/{id}/tags"), Some(json!({"tags": ["a", "b"]}))).await;
    let tags = f.ok(Method::POST, &format!("/contacts/{id}/tags"), Some(json!({"tags": ["b", "c"]}))).await;
    assert_eq!(tags["tags"], json!(["a", "b", "c"]));
    f.ok(Method::DELETE, &format!("/contacts/{id}/tags"), Some(json!({"tags": ["a"]}))).await;
    let got = f.ok(Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(got["contact"]["tags"], json!(["b", "c"]));
}

async fn custom_values(f: &Flow) {
    let path = format!("/locations/{LOC}/customValues");
    let made = f.ok(Method::POST, &path, Some(json!({"name": "Support phone", "value": "+14155550199"}))).await;
    let id = made["customValue"]["id"].as_str().expect("custom value id").to_string();
    f.ok(Method::PUT, &format!("{path}/{id}"), Some(json!({"name": "Support phone", "value": "+14155550100"}))).await;
    let list = f.ok(Method::GET, &path, None).await;
    let item =
        list["customValues"].as_array().unwrap().iter().find(|v| v["id"] == id.as_str()).expect("listed").clone();
    assert_eq!(item["value"], "+14155550100");
}

async fn all_flows(spec: SpecSet) {
    let f = Flow::start(spec).await;
    contact_lifecycle(&f).await;
    contact_notes(&f).await;
    booking_then_listing_events(&f).await;
    sending_a_message_then_reading_the_conversation(&f).await;
    custom_fields_are_listed_after_create(&f).await;
    the_location_is_the_fixtures(&f).await;
    users_are_the_fixtures(&f).await;
    contact_tasks(&f).await;
    location_tags(&f).await;
    moving_an_opportunity_through_the_pipelines_stages(&f).await;
    contact_tags_are_a_set(&f).await;
    custom_values(&f).await;
}

#[tokio::test]
async fn twelve_everyday_flows_read_back_what_they_wrote_on_the_default_surface() {
    all_flows(embedded()).await;
}

#[tokio::test]
async fn twelve_everyday_flows_read_back_what_they_wrote_on_the_official_files() {
    let Some(dir) = corpus_dir() else { return };
    all_flows(ghl_mock::spec::load(ghl_mock::Source::Dir(dir), 1).expect("corpus loads")).await;
}
