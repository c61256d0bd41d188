//! What a family of resources does differently from plain CRUD, at the fixed
//! points of the generic flow: before and after create, update and delete,
//! the index keys of its records, extra list filters. A family with nothing
//! to add is `Generic` and every hook is a no-op for it.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::{fetch, merge, record_error, single, Answer, Call};
use crate::clock::{iso8601, parse_instant_ms};
use crate::error::ApiError;
use crate::spec::resources::Action;
use crate::state::{Indexing, NewRecord, Record, Stored};
use crate::Mock;

pub const CONTACTS: &str = "/contacts";
pub const PIPELINES: &str = "/opportunities/pipelines";
pub const CALENDARS: &str = "/calendars";
pub const CONVERSATIONS: &str = "/conversations";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Contacts,
    /// Notes and tasks of a contact.
    ContactChild,
    Opportunities,
    Appointments,
    Conversations,
    Messages,
    /// Sub-accounts: a created one joins the directory.
    Locations,
    Generic,
}

impl Family {
    pub fn of(kind: &str) -> Family {
        match kind {
            CONTACTS => Family::Contacts,
            k if k.starts_with("/contacts/{}/") => Family::ContactChild,
            "/opportunities" => Family::Opportunities,
            "/calendars/events" => Family::Appointments,
            CONVERSATIONS => Family::Conversations,
            "/conversations/messages" => Family::Messages,
            "/locations" => Family::Locations,
            _ => Family::Generic,
        }
    }

    /// Families whose unknown id HighLevel answers with 400 (seen).
    pub fn known_not_found_is_400(self) -> bool {
        matches!(self, Family::Contacts | Family::ContactChild | Family::Opportunities)
    }

    pub fn newest_first(self) -> bool {
        matches!(self, Family::ContactChild | Family::Messages)
    }
}

/// Index keys of a contact: its email (any case) and phone.
fn contact_keys(record: &Record) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(email) = record.get("email").and_then(Value::as_str).filter(|e| !e.is_empty()) {
        keys.push(format!("email:{}", email.to_lowercase()));
    }
    if let Some(phone) = record.get("phone").and_then(Value::as_str).filter(|p| !p.is_empty()) {
        keys.push(format!("phone:{phone}"));
    }
    keys
}

/// A conversation is found by its contact.
fn conversation_keys(record: &Record) -> Vec<String> {
    record.get("contactId").and_then(Value::as_str).map(|c| vec![format!("contact:{c}")]).unwrap_or_default()
}

pub fn indexing_of(mock: &Mock, family: Family, location: &str) -> Indexing {
    match family {
        Family::Contacts => Indexing { keys: contact_keys, unique: !mock.allows_duplicate_contacts(location) },
        Family::Conversations => Indexing { keys: conversation_keys, unique: false },
        _ => Indexing::NONE,
    }
}

pub fn indexing(call: &Call<'_>, location: &str) -> Indexing {
    indexing_of(call.mock, call.family, location)
}

pub fn duplicate_refusal(family: Family, id: String, key: &str) -> ApiError {
    let field = key.split(':').next().unwrap_or("email");
    match family {
        Family::Contacts => ApiError::BadRequest {
            message: "This location does not allow duplicated contacts.".into(),
            meta: Some(json!({"contactId": id, "matchingField": field})),
        },
        _ => ApiError::BadRequest { message: format!("A record with this {field} exists already."), meta: None },
    }
}

/// How a family stores a client's value: custom field inputs
/// (`{id | key, field_value}`) become `{id, value}` on contacts and
/// `{id, fieldValue}` on opportunities.
pub fn stored_value(family: Family, key: &str, value: &Value) -> Value {
    let value_key = match (family, key) {
        (Family::Contacts, "customFields") => "value",
        (Family::Opportunities, "customFields") => "fieldValue",
        _ => return value.clone(),
    };
    let Value::Array(items) = value else { return value.clone() };
    Value::Array(
        items
            .iter()
            .map(|item| {
                let id = item.get("id").or_else(|| item.get("key")).cloned().unwrap_or(Value::Null);
                // A null value is stored as empty: the answer's schema has no null.
                let v = item
                    .get("field_value")
                    .or_else(|| item.get(value_key))
                    .filter(|v| !v.is_null())
                    .cloned()
                    .unwrap_or(Value::String(String::new()));
                json!({"id": id, value_key: v})
            })
            .collect(),
    )
}

/// Recomputes the fields HighLevel derives from a contact's names and email.
fn derive_contact_fields(c: &mut Record) {
    let lower = |c: &Record, k: &str| c.get(k).and_then(Value::as_str).map(str::to_lowercase);
    let first = lower(c, "firstName");
    let last = lower(c, "lastName");
    let full = match (&first, &last) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(f), None) => Some(f.clone()),
        (None, Some(l)) => Some(l.clone()),
        (None, None) => lower(c, "name"),
    };
    let email = lower(c, "email");
    for (key, value) in [
        ("firstNameLowerCase", first),
        ("lastNameLowerCase", last),
        ("fullNameLowerCase", full.clone()),
        ("contactName", full),
        ("emailLowerCase", email),
    ] {
        // Unknown derived fields are left out rather than null, as HighLevel does.
        match value {
            Some(v) => c.insert(key.into(), Value::String(v)),
            None => c.remove(key),
        };
    }
}

fn defaults(record: &mut Record, values: &[(&str, Value)]) {
    for (key, value) in values {
        if !record.contains_key(*key) {
            record.insert((*key).to_string(), value.clone());
        }
    }
}

fn contact_defaults(record: &mut Record) {
    defaults(
        record,
        &[
            ("type", json!("lead")),
            ("tags", json!([])),
            ("customFields", json!([])),
            ("additionalEmails", json!([])),
            ("followers", json!([])),
            ("dnd", json!(false)),
        ],
    );
    derive_contact_fields(record);
}

/// The family's additions to a record about to be created.
pub async fn before_create(call: &Call<'_>, location: &str, record: &mut Record) -> Result<(), ApiError> {
    let now = iso8601(call.now_ms());
    match call.family {
        Family::Contacts => contact_defaults(record),
        Family::Opportunities => {
            defaults(
                record,
                &[
                    ("status", json!("open")),
                    ("monetaryValue", json!(0)),
                    ("notes", json!([])),
                    ("tasks", json!([])),
                    ("calendarEvents", json!([])),
                    ("followers", json!([])),
                    ("customFields", json!([])),
                ],
            );
            for key in ["createdAt", "updatedAt", "lastStatusChangeAt", "lastStageChangeAt"] {
                record.insert(key.into(), Value::String(now.clone()));
            }
            let stages = pipeline_stages(call, location, record.get("pipelineId")).await?;
            check_stage(&stages, record)?;
            if let Some(contact) = contact_of(call, record).await {
                record.insert("contact".into(), contact_summary(contact.fields()));
            }
        }
        Family::Appointments => {
            if let Some(calendar) = record.get("calendarId").and_then(Value::as_str) {
                if call.mock.spec.resources.by_kind(CALENDARS).is_some() {
                    let found = call.mock.records.get(CALENDARS, calendar).await;
                    if !found.is_ok_and(|c| c.location == location) {
                        return Err(super::not_found(call.mock, Family::Generic, "Calendar"));
                    }
                }
            }
            defaults(record, &[("appointmentStatus", json!("confirmed"))]);
            record.insert("dateAdded".into(), Value::String(now.clone()));
            record.insert("dateUpdated".into(), Value::String(now));
        }
        Family::Messages => file_message(call, location, record).await?,
        Family::ContactChild => {
            record.insert("dateAdded".into(), Value::String(now));
        }
        Family::Conversations | Family::Locations | Family::Generic => {}
    }
    Ok(())
}

async fn contact_of(call: &Call<'_>, record: &Record) -> Option<Stored> {
    let id = record.get("contactId").and_then(Value::as_str)?;
    call.mock.records.get(CONTACTS, id).await.ok()
}

fn contact_summary(contact: &Record) -> Value {
    let mut summary = Map::new();
    for (to, from) in [
        ("id", "id"),
        ("name", "contactName"),
        ("companyName", "companyName"),
        ("email", "email"),
        ("phone", "phone"),
        ("tags", "tags"),
    ] {
        if let Some(v) = contact.get(from).filter(|v| !v.is_null()) {
            summary.insert(to.into(), v.clone());
        }
    }
    Value::Object(summary)
}

/// The stage ids of a stored pipeline; `None` when stages are not checked.
async fn pipeline_stages(
    call: &Call<'_>,
    location: &str,
    pipeline: Option<&Value>,
) -> Result<Option<(String, Vec<String>)>, ApiError> {
    let (Some(pipeline), true) = (pipeline.and_then(Value::as_str), call.mock.config.fidelity.check_pipeline_stages)
    else {
        return Ok(None);
    };
    if call.mock.spec.resources.by_kind(PIPELINES).is_none() {
        return Ok(None);
    }
    let found = call.mock.records.get(PIPELINES, pipeline).await.ok().filter(|p| p.location == location);
    let Some(found) = found else {
        return Err(ApiError::BadRequest { message: "Pipeline not found".into(), meta: None });
    };
    let stages = found
        .record()
        .get("stages")
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(|s| s.get("id").and_then(Value::as_str)).map(str::to_string).collect())
        .unwrap_or_default();
    Ok(Some((pipeline.to_string(), stages)))
}

fn check_stage(stages: &Option<(String, Vec<String>)>, record: &Record) -> Result<(), ApiError> {
    let Some((pipeline, ids)) = stages else { return Ok(()) };
    if record.get("pipelineId").and_then(Value::as_str) != Some(pipeline.as_str()) {
        return Ok(());
    }
    match record.get("pipelineStageId").and_then(Value::as_str) {
        Some(stage) if !ids.iter().any(|i| i == stage) => {
            Err(ApiError::BadRequest { message: "Pipeline stage not found".into(), meta: None })
        }
        _ => Ok(()),
    }
}

/// Files a sent message into its contact's conversation, which is created on
/// first use; the conversation shows the newest message.
async fn file_message(call: &Call<'_>, location: &str, record: &mut Record) -> Result<(), ApiError> {
    let Some(contact_id) = record.get("contactId").and_then(Value::as_str).map(str::to_string) else {
        return Err(ApiError::Unprocessable { messages: vec!["contactId should not be empty".into()] });
    };
    let contact = call
        .mock
        .records
        .get(CONTACTS, &contact_id)
        .await
        .map_err(|e| record_error(call.mock, Family::Contacts, "Contact", e))?;
    call.may_access(&contact.location)?;
    let now = call.now_ms();
    let stamp = iso8601(now);
    let kind_of_message = record.get("type").and_then(Value::as_str).unwrap_or("SMS").to_string();
    let text = record.get("message").or_else(|| record.get("html")).cloned().unwrap_or(json!(""));
    let conversation = NewRecord {
        kind: std::sync::Arc::from(CONVERSATIONS),
        id: super::new_id(),
        location: location.to_string(),
        created_ms: now,
        record: Map::new(),
    };
    let mut fresh = Map::new();
    fresh.insert("id".into(), json!(conversation.id));
    fresh.insert("contactId".into(), json!(contact_id));
    fresh.insert("locationId".into(), json!(location));
    for (to, from) in [("fullName", "contactName"), ("email", "email"), ("phone", "phone")] {
        if let Some(v) = contact.record().get(from) {
            fresh.insert(to.into(), v.clone());
        }
    }
    fresh.insert("dateAdded".into(), json!(now));
    fresh.insert("type".into(), json!(format!("TYPE_{}", kind_of_message.to_uppercase())));
    fresh.insert("unreadCount".into(), json!(0));
    let last = |c: &mut Record| {
        c.insert("lastMessageBody".into(), text.clone());
        c.insert("lastMessageType".into(), json!(format!("TYPE_{}", kind_of_message.to_uppercase())));
        c.insert("lastMessageDirection".into(), json!("outbound"));
        c.insert("lastMessageDate".into(), json!(now));
        c.insert("dateUpdated".into(), json!(now));
    };
    let mut conversation = conversation;
    conversation.record = fresh;
    last(&mut conversation.record);
    let change = |c: &mut Record| {
        last(c);
        Ok(())
    };
    let keys = vec![format!("contact:{contact_id}")];
    let (_, filed) = call
        .mock
        .records
        .upsert(conversation, &keys, &change, indexing_of(call.mock, Family::Conversations, location))
        .await
        .map_err(|e| record_error(call.mock, Family::Conversations, "Conversation", e))?;
    record.insert("conversationId".into(), json!(filed.id));
    record.insert("body".into(), text);
    record.insert("direction".into(), json!("outbound"));
    record.insert("status".into(), json!("delivered"));
    record.insert("messageType".into(), json!(format!("TYPE_{}", kind_of_message.to_uppercase())));
    let number = MESSAGE_TYPES.iter().find(|(n, _)| n.eq_ignore_ascii_case(&kind_of_message)).map_or(2, |(_, t)| *t);
    record.insert("type".into(), json!(number));
    record.insert("locationId".into(), json!(location));
    record.insert("dateAdded".into(), json!(stamp));
    Ok(())
}

/// A created location joins the caller's company in the directory, so its
/// tokens and the agency's reach it.
pub async fn after_create(call: &Call<'_>, stored: &Stored) -> Result<(), ApiError> {
    if call.family != Family::Locations {
        return Ok(());
    }
    let company = match call.who.map(|w| &w.owner) {
        Some(crate::world::Owner::Company(c)) => c.clone(),
        _ => call.body_str("companyId").unwrap_or_default().to_string(),
    };
    let name = stored.record().get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let location = crate::world::Location { id: stored.id.clone(), name, company_id: company };
    call.mock
        .change_world(|w| w.add_location(location.clone()))
        .await?
        .map_err(|e| ApiError::BadRequest { message: e.to_string(), meta: None })
}

/// HighLevel's numeric message types (`type` of a stored message) and their
/// names (`messageType`). [guess for all but SMS, Email and Call]
const MESSAGE_TYPES: &[(&str, u64)] = &[
    ("Call", 1),
    ("SMS", 2),
    ("Email", 3),
    ("WebChat", 5),
    ("FB", 11),
    ("GMB", 15),
    ("IG", 18),
    ("WhatsApp", 19),
    ("Custom", 20),
    ("Live_Chat", 29),
];

/// Answers whose shape is not "the record under a key".
pub fn created_answer(call: &Call<'_>, stored: &Stored) -> Option<Value> {
    if call.family != Family::Messages {
        return None;
    }
    let mut frame = match &*call.binding.frame {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    frame.insert("conversationId".into(), stored.record().get("conversationId").cloned().unwrap_or(Value::Null));
    frame.insert("messageId".into(), json!(stored.id));
    if frame.contains_key("messageIds") {
        frame.insert("messageIds".into(), json!([stored.id]));
    }
    if frame.contains_key("msg") {
        frame.insert("msg".into(), json!("Message queued successfully."));
    }
    Some(Value::Object(frame))
}

/// What an update's closure needs that must be read first.
pub struct Prepared {
    status: Option<Value>,
    stage: Option<Value>,
    stages: Option<(String, Vec<String>)>,
}

pub async fn before_update(call: &Call<'_>, found: &Stored) -> Result<Prepared, ApiError> {
    let mut prepared = Prepared { status: None, stage: None, stages: None };
    if call.family == Family::Opportunities {
        prepared.status = found.record().get("status").cloned();
        prepared.stage = found.record().get("pipelineStageId").cloned();
        let pipeline = call.body_field("pipelineId").or_else(|| found.record().get("pipelineId")).cloned();
        prepared.stages = pipeline_stages(call, &found.location, pipeline.as_ref()).await?;
    }
    Ok(prepared)
}

/// Runs inside the store's update, on the changed copy.
pub fn on_change(family: Family, prepared: &Prepared, record: &mut Record, now: i64) -> Result<(), ApiError> {
    match family {
        Family::Contacts => derive_contact_fields(record),
        Family::Opportunities => {
            check_stage(&prepared.stages, record)?;
            let stamp = Value::String(iso8601(now));
            record.insert("updatedAt".into(), stamp.clone());
            if record.get("status") != prepared.status.as_ref() {
                record.insert("lastStatusChangeAt".into(), stamp.clone());
            }
            if record.get("pipelineStageId") != prepared.stage.as_ref() {
                record.insert("lastStageChangeAt".into(), stamp);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A contact takes its notes and tasks with it.
pub async fn after_delete(call: &Call<'_>, removed: &Stored) -> Result<(), ApiError> {
    if call.family != Family::Contacts {
        return Ok(());
    }
    let id = removed.id.clone();
    let of_contact = move |r: &Record| r.get("contactId").and_then(Value::as_str) == Some(id.as_str());
    for resource in &call.mock.spec.resources.resources {
        if Family::of(&resource.kind) == Family::ContactChild {
            call.mock
                .records
                .remove_where(&resource.kind, &removed.location, &of_contact)
                .await
                .map_err(|e| record_error(call.mock, Family::ContactChild, "Note", e))?;
        }
    }
    Ok(())
}

/// Extra filters of a family's lists: appointments in a time range.
pub fn list_filter(call: &Call<'_>) -> Box<dyn Fn(&Record) -> bool + Send + Sync> {
    if call.family != Family::Appointments {
        return Box::new(|_| true);
    }
    let from = call.query_param("startTime").and_then(parse_instant_ms);
    let to = call.query_param("endTime").and_then(parse_instant_ms);
    let user = call.query_param("userId").map(str::to_string);
    Box::new(move |r: &Record| {
        let at = |k: &str| {
            r.get(k).and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_i64().map(|n| n.to_string())))
        };
        let start = at("startTime").and_then(|s| parse_instant_ms(&s));
        let end = at("endTime").and_then(|s| parse_instant_ms(&s)).or(start);
        let in_range = match (start, end) {
            (Some(s), Some(e)) => from.is_none_or(|f| e >= f) && to.is_none_or(|t| s <= t),
            _ => from.is_none() && to.is_none(),
        };
        let by_user = user.as_ref().is_none_or(|u| r.get("assignedUserId").and_then(Value::as_str) == Some(u.as_str()));
        in_range && by_user
    })
}

/// Case-insensitive match of free text against a record's text fields.
pub fn matches_text(record: &Record, query: &str) -> bool {
    record.values().any(|v| v.as_str().is_some_and(|s| s.to_lowercase().contains(query)))
}

/// One search filter: `{field, operator, value}`, or a group
/// `{group: "AND"|"OR", filters: [...]}`. Operators: `eq`, `not_eq`,
/// `contains`, `not_contains`, `exists`, `not_exists`; unknown ones match all.
pub fn filter_matches(c: &Record, filter: &Value) -> bool {
    if let Some(group) = filter.get("filters").and_then(Value::as_array) {
        let or = filter.get("group").and_then(Value::as_str).is_some_and(|g| g.eq_ignore_ascii_case("or"));
        return if or {
            group.iter().any(|f| filter_matches(c, f))
        } else {
            group.iter().all(|f| filter_matches(c, f))
        };
    }
    let field = filter.get("field").and_then(Value::as_str).unwrap_or("");
    let operator = filter.get("operator").and_then(Value::as_str).unwrap_or("eq");
    let wanted = filter.get("value");
    let actual = c.get(field).filter(|v| !v.is_null());
    let text = |v: &Value| v.as_str().map(str::to_lowercase).unwrap_or_else(|| v.to_string());
    let contains = |a: &Value, w: &Value| match a {
        Value::Array(items) => items.iter().any(|i| text(i) == text(w)),
        other => text(other).contains(&text(w)),
    };
    match (operator, actual, wanted) {
        ("exists", a, _) => a.is_some(),
        ("not_exists", a, _) => a.is_none(),
        ("eq", Some(a), Some(w)) => text(a) == text(w) || matches!(a, Value::Array(_)) && contains(a, w),
        ("not_eq", Some(a), Some(w)) => text(a) != text(w),
        ("not_eq", None, _) => true,
        ("contains", Some(a), Some(w)) => contains(a, w),
        ("not_contains", Some(a), Some(w)) => !contains(a, w),
        ("not_contains", None, _) => true,
        ("eq" | "contains", _, _) => false,
        _ => true,
    }
}

/// `POST /contacts/upsert`: the contact with the body's email or phone is
/// updated, else one is created; one atomic call of the store.
pub async fn upsert_contact(call: &Call<'_>) -> Answer {
    let location = super::placement(call).await?;
    let now = call.now_ms();
    let mut record = Map::new();
    merge(&mut record, call.body, Family::Contacts);
    record.insert("locationId".into(), json!(location));
    record.insert("dateAdded".into(), json!(iso8601(now)));
    record.insert("dateUpdated".into(), json!(iso8601(now)));
    contact_defaults(&mut record);
    let id = super::new_id();
    record.insert("id".into(), json!(id));
    let keys = contact_keys(&record);
    let new = NewRecord { kind: call.resource.kind.clone(), id, location: location.clone(), created_ms: now, record };
    let change = |c: &mut Record| {
        merge(c, call.body, Family::Contacts);
        c.insert("dateUpdated".into(), json!(iso8601(now)));
        derive_contact_fields(c);
        Ok(())
    };
    let (before, after) = call
        .mock
        .records
        .upsert(new, &keys, &change, indexing(call, &location))
        .await
        .map_err(|e| record_error(call.mock, Family::Contacts, "Contact", e))?;
    let changed = || match &before {
        Some(b) => crate::webhooks::Change::Updated { before: b.fields(), after: after.fields() },
        None => crate::webhooks::Change::Created(after.fields()),
    };
    crate::webhooks::record_changed(call, &after.location, changed).await;
    let mut answer = single(call, after.fields());
    if let Value::Object(map) = &mut answer {
        map.insert("new".into(), json!(before.is_none()));
        map.insert("traceId".into(), json!(call.trace_id));
    }
    Ok((super::Call::status(call), answer))
}

/// Adds or removes a contact's tags, kept as a set (first-seen order) of at
/// most `--max-tags`.
pub async fn tags(call: &Call<'_>, add: bool) -> Answer {
    let found = fetch(call).await?;
    let given: Vec<String> = call
        .body_field("tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let max = call.mock.config.limits.max_tags;
    let change = |c: &mut Record| {
        let current: Vec<String> = c
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        let next: Vec<String> = if add {
            let mut seen: HashSet<String> = current.iter().cloned().collect();
            let mut next = current;
            next.extend(given.iter().filter(|t| seen.insert((*t).clone())).cloned());
            next
        } else {
            let gone: HashSet<&String> = given.iter().collect();
            current.into_iter().filter(|t| !gone.contains(t)).collect()
        };
        if next.len() > max {
            return Err(ApiError::BadRequest {
                message: format!("a contact holds at most {max} tags in ghl-mock (serve --max-tags raises it)"),
                meta: None,
            });
        }
        c.insert("tags".into(), json!(next));
        Ok(())
    };
    let (before, after) = call
        .mock
        .records
        .update(&call.resource.kind, &found.id, &change, indexing(call, &found.location))
        .await
        .map_err(|e| record_error(call.mock, Family::Contacts, "Contact", e))?;
    let tagged = || crate::webhooks::Change::Tagged { before: before.fields(), after: after.fields() };
    crate::webhooks::record_changed(call, &after.location, tagged).await;
    let mut answer = match &*call.binding.frame {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({}),
    };
    answer["tags"] = after.record().get("tags").cloned().unwrap_or(json!([]));
    debug_assert!(matches!(call.binding.action, Action::AddTags | Action::RemoveTags));
    Ok((super::Call::status(call), answer))
}
