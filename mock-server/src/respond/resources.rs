//! Stateful answers for the resources integrations touch most: contacts
//! (create, get, update, delete, upsert, search, list, tags, notes) and
//! opportunities (create, get, update, status, delete, search).
//!
//! Operations are recognised by method and path template, so the same
//! handlers serve the embedded specs and HighLevel's official files. The
//! success status comes from the spec. A record of another location is
//! refused as the location check would refuse it; an unknown id answers 400,
//! as the real API does for contacts.

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use crate::auth::check::Principal;
use crate::auth::AuthError;
use crate::clock::iso8601;
use crate::error::ApiError;
use crate::spec::Operation;
use crate::store::{Record, Store};
use crate::world::Owner;
use crate::Mock;

/// What a handler may read of a request.
pub struct Ctx<'a> {
    pub mock: &'a Mock,
    pub op: &'a Operation,
    pub who: Option<&'a Principal>,
    pub path_params: &'a [(String, String)],
    pub query: &'a [(String, String)],
    pub body: Option<&'a Value>,
    /// `Host` of the request, for `nextPageUrl`.
    pub host: Option<&'a str>,
    pub trace_id: &'a str,
}

impl Ctx<'_> {
    fn path(&self, name: &str) -> &str {
        self.path_params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn body_str(&self, name: &str) -> Option<&str> {
        self.body.and_then(|b| b.get(name)).and_then(Value::as_str)
    }

    fn success(&self, value: Value) -> Result<Option<(StatusCode, Value)>, ApiError> {
        Ok(Some((StatusCode::from_u16(self.op.success.status).unwrap_or(StatusCode::OK), value)))
    }

    /// The caller may act on records of `location`.
    fn may_access(&self, location: &str) -> Result<(), ApiError> {
        let ok = match self.who.map(|w| &w.owner) {
            Some(Owner::Location(own)) => own == location,
            Some(Owner::Company(company)) => self.mock.world().company_has_location(company, location),
            None => false,
        };
        if ok {
            Ok(())
        } else {
            Err(AuthError::WrongLocation { location_id: location.to_string() }.into())
        }
    }

    fn new_id(&self) -> String {
        self.mock.with_rng(super::generate::id)
    }
}

type Answer = Result<Option<(StatusCode, Value)>, ApiError>;
type Handler = fn(&Ctx<'_>) -> Answer;

/// The handler of an operation the mock keeps state for, by method and path.
fn route(op: &Operation) -> Option<Handler> {
    let path = op.path.trim_end_matches('/');
    let handler: Handler = match (op.method.as_str(), path) {
        ("POST", "/contacts") => create_contact,
        ("GET", "/contacts") => list_contacts,
        ("POST", "/contacts/upsert") => upsert_contact,
        ("POST", "/contacts/search") => search_contacts,
        ("GET", "/contacts/{contactId}") => get_contact,
        ("PUT", "/contacts/{contactId}") => update_contact,
        ("DELETE", "/contacts/{contactId}") => delete_contact,
        ("POST", "/contacts/{contactId}/tags") => add_tags,
        ("DELETE", "/contacts/{contactId}/tags") => remove_tags,
        ("GET", "/contacts/{contactId}/notes") => list_notes,
        ("POST", "/contacts/{contactId}/notes") => create_note,
        ("GET" | "PUT" | "DELETE", "/contacts/{contactId}/notes/{id}") => note,
        ("POST", "/opportunities") => create_opportunity,
        ("GET", "/opportunities/search") => search_opportunities,
        ("GET", "/opportunities/{id}") => get_opportunity,
        ("PUT", "/opportunities/{id}" | "/opportunities/{id}/status") => update_opportunity,
        ("DELETE", "/opportunities/{id}") => delete_opportunity,
        _ => return None,
    };
    Some(handler)
}

/// True when the mock answers this operation from its store.
pub fn owns(op: &Operation) -> bool {
    route(op).is_some()
}

/// Answers the operation if the mock keeps state for it.
pub fn answer(ctx: &Ctx<'_>) -> Answer {
    match route(ctx.op) {
        Some(handler) => handler(ctx),
        None => Ok(None),
    }
}

fn get_contact(ctx: &Ctx<'_>) -> Answer {
    with_contact(ctx, |_, c| ctx.success(json!({"contact": c})))
}

fn get_opportunity(ctx: &Ctx<'_>) -> Answer {
    with_opportunity(ctx, |_, o| ctx.success(json!({"opportunity": o})))
}

fn add_tags(ctx: &Ctx<'_>) -> Answer {
    tags(ctx, true)
}

fn remove_tags(ctx: &Ctx<'_>) -> Answer {
    tags(ctx, false)
}

fn full(f: crate::store::Full) -> ApiError {
    ApiError::BadRequest {
        message: format!(
            "ghl-mock keeps at most {} {} per location and {} holds that many (serve --max-records raises it)",
            f.max, f.kind, f.location
        ),
        meta: None,
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError::BadRequest { message: format!("{what} not found"), meta: None }
}

/// Fields a client may not set: the server owns them.
const SERVER_FIELDS: &[&str] = &["id", "locationId", "dateAdded", "dateUpdated", "createdAt", "updatedAt"];

/// How a resource stores a custom field's value: contacts answer
/// `{id, value}`, opportunities `{id, fieldValue}`.
#[derive(Clone, Copy)]
enum ValueKey {
    Contact,
    Opportunity,
}

/// Copies client fields onto a record, turning `customFields` inputs
/// (`{id | key, field_value}`) into the resource's stored shape.
fn merge(record: &mut Record, body: Option<&Value>, kind: ValueKey) {
    let Some(Value::Object(fields)) = body else { return };
    for (key, value) in fields {
        if SERVER_FIELDS.contains(&key.as_str()) {
            continue;
        }
        let value = if key == "customFields" { custom_fields(value, kind) } else { value.clone() };
        record.insert(key.clone(), value);
    }
}

fn custom_fields(value: &Value, kind: ValueKey) -> Value {
    let Value::Array(items) = value else { return value.clone() };
    let value_key = match kind {
        ValueKey::Contact => "value",
        ValueKey::Opportunity => "fieldValue",
    };
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

/// Recomputes the fields HighLevel derives from names and email.
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

fn duplicate_refusal(contact_id: String, field: &str) -> ApiError {
    ApiError::BadRequest {
        message: "This location does not allow duplicated contacts.".into(),
        meta: Some(json!({"contactId": contact_id, "matchingField": field})),
    }
}

fn check_duplicates(store: &Store, location: &str, record: &Record, except: Option<&str>) -> Result<(), ApiError> {
    if store.allow_duplicate_contacts.contains(location) {
        return Ok(());
    }
    let email = record.get("email").and_then(Value::as_str);
    let phone = record.get("phone").and_then(Value::as_str);
    match store.duplicate_of(location, email, phone, except) {
        Some((id, field)) => Err(duplicate_refusal(id, field)),
        None => Ok(()),
    }
}

fn new_contact(ctx: &Ctx<'_>, location: &str, now: i64) -> (String, Record) {
    let id = ctx.new_id();
    let mut c = Map::new();
    c.insert("id".into(), Value::String(id.clone()));
    c.insert("locationId".into(), Value::String(location.to_string()));
    c.insert("type".into(), Value::String("lead".into()));
    c.insert("tags".into(), json!([]));
    c.insert("customFields".into(), json!([]));
    c.insert("additionalEmails".into(), json!([]));
    c.insert("followers".into(), json!([]));
    c.insert("dnd".into(), Value::Bool(false));
    merge(&mut c, ctx.body, ValueKey::Contact);
    c.insert("dateAdded".into(), Value::String(iso8601(now)));
    c.insert("dateUpdated".into(), Value::String(iso8601(now)));
    derive_contact_fields(&mut c);
    (id, c)
}

fn body_location(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    ctx.body_str("locationId")
        .map(str::to_string)
        .ok_or_else(|| ApiError::Unprocessable { messages: vec!["locationId should not be empty".into()] })
}

fn create_contact(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let location = body_location(ctx)?;
    ctx.may_access(&location)?;
    let now = ctx.mock.clock.now_ms();
    let (id, record) = new_contact(ctx, &location, now);
    let mut store = ctx.mock.store_mut();
    store.room_for(&location, "contacts").map_err(full)?;
    check_duplicates(&store, &location, &record, None)?;
    store.insert_contact(&location, &id, now, record.clone());
    ctx.success(json!({"contact": record}))
}

fn upsert_contact(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let location = body_location(ctx)?;
    ctx.may_access(&location)?;
    let now = ctx.mock.clock.now_ms();
    let mut store = ctx.mock.store_mut();
    let existing = store.duplicate_of(&location, ctx.body_str("email"), ctx.body_str("phone"), None).map(|(id, _)| id);
    let found = existing.and_then(|id| store.contact(&id).cloned().map(|c| (id, c)));
    let (new, record) = match found {
        Some((id, mut c)) => {
            merge(&mut c, ctx.body, ValueKey::Contact);
            c.insert("dateUpdated".into(), Value::String(iso8601(now)));
            derive_contact_fields(&mut c);
            store.replace_contact(&id, c.clone());
            (false, c)
        }
        None => {
            store.room_for(&location, "contacts").map_err(full)?;
            let (id, record) = new_contact(ctx, &location, now);
            store.insert_contact(&location, &id, now, record.clone());
            (true, record)
        }
    };
    ctx.success(json!({"new": new, "contact": record, "traceId": ctx.trace_id}))
}

/// Runs `f` on a contact the caller may see.
fn with_contact(
    ctx: &Ctx<'_>,
    f: impl FnOnce(&str, &Record) -> Result<Option<(StatusCode, Value)>, ApiError>,
) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let id = ctx.path("contactId");
    let store = ctx.mock.store();
    let contact = store.contact(id).ok_or_else(|| not_found("Contact"))?;
    let location = store.owner_of(id).unwrap_or_default().to_string();
    ctx.may_access(&location)?;
    f(&location, contact)
}

fn update_contact(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let id = ctx.path("contactId");
    let now = ctx.mock.clock.now_ms();
    let mut store = ctx.mock.store_mut();
    let location = store.owner_of(id).ok_or_else(|| not_found("Contact"))?.to_string();
    ctx.may_access(&location)?;
    let mut updated = store.contact(id).cloned().ok_or_else(|| not_found("Contact"))?;
    merge(&mut updated, ctx.body, ValueKey::Contact);
    updated.insert("dateUpdated".into(), Value::String(iso8601(now)));
    derive_contact_fields(&mut updated);
    check_duplicates(&store, &location, &updated, Some(id))?;
    store.replace_contact(id, updated.clone());
    ctx.success(json!({"succeded": true, "contact": updated}))
}

fn delete_contact(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let id = ctx.path("contactId");
    let mut store = ctx.mock.store_mut();
    let location = store.owner_of(id).ok_or_else(|| not_found("Contact"))?.to_string();
    ctx.may_access(&location)?;
    store.remove_contact(id);
    ctx.success(json!({"succeded": true}))
}

fn tags(ctx: &Ctx<'_>, add: bool) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let id = ctx.path("contactId");
    let mut store = ctx.mock.store_mut();
    let location = store.owner_of(id).ok_or_else(|| not_found("Contact"))?.to_string();
    ctx.may_access(&location)?;
    let given: Vec<String> = ctx
        .body
        .and_then(|b| b.get("tags"))
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let contact = store.contact_mut(id).ok_or_else(|| not_found("Contact"))?;
    let mut current: Vec<String> = contact
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if add {
        for tag in given {
            if !current.contains(&tag) {
                current.push(tag);
            }
        }
    } else {
        current.retain(|t| !given.contains(t));
    }
    contact.insert("tags".into(), json!(current));
    ctx.success(json!({"tags": current}))
}

fn list_notes(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    with_contact(ctx, |location, _| {
        let id = ctx.path("contactId");
        let store = ctx.mock.store();
        let mut notes: Vec<&Record> = store
            .locations
            .get(location)
            .map(|l| l.notes.values().filter(|n| n.get("contactId").and_then(Value::as_str) == Some(id)).collect())
            .unwrap_or_default();
        notes.sort_by(|a, b| {
            let key = |n: &Record| {
                (
                    n.get("dateAdded").and_then(Value::as_str).map(str::to_string),
                    n.get("id").and_then(Value::as_str).map(str::to_string),
                )
            };
            key(b).cmp(&key(a))
        });
        ctx.success(json!({"notes": notes}))
    })
}

fn create_note(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let contact_id = ctx.path("contactId").to_string();
    let mut store = ctx.mock.store_mut();
    let location = store.owner_of(&contact_id).ok_or_else(|| not_found("Contact"))?.to_string();
    ctx.may_access(&location)?;
    store.room_for(&location, "notes").map_err(full)?;
    let id = ctx.new_id();
    let mut note = Map::new();
    note.insert("id".into(), Value::String(id.clone()));
    note.insert("body".into(), ctx.body.and_then(|b| b.get("body")).cloned().unwrap_or(Value::String(String::new())));
    if let Some(user) = ctx.body.and_then(|b| b.get("userId")).filter(|u| u.is_string()) {
        note.insert("userId".into(), user.clone());
    }
    note.insert("dateAdded".into(), Value::String(iso8601(ctx.mock.clock.now_ms())));
    note.insert("contactId".into(), Value::String(contact_id));
    store.location(&location).notes.insert(id.clone(), note.clone());
    store.owners.insert(id, location);
    ctx.success(json!({"note": note}))
}

fn note(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let contact_id = ctx.path("contactId");
    let note_id = ctx.path("id");
    let mut store = ctx.mock.store_mut();
    let location = store.owner_of(contact_id).ok_or_else(|| not_found("Contact"))?.to_string();
    ctx.may_access(&location)?;
    let notes = &mut store.location(&location).notes;
    let belongs = notes.get(note_id).is_some_and(|n| n.get("contactId").and_then(Value::as_str) == Some(contact_id));
    if !belongs {
        return Err(not_found("Note"));
    }
    match ctx.op.method.as_str() {
        "DELETE" => {
            notes.remove(note_id);
            store.owners.remove(note_id);
            ctx.success(json!({"succeded": true}))
        }
        "PUT" => {
            let note = notes.get_mut(note_id).ok_or_else(|| not_found("Note"))?;
            for key in ["body", "userId"] {
                if let Some(v) = ctx.body.and_then(|b| b.get(key)) {
                    note.insert(key.into(), v.clone());
                }
            }
            ctx.success(json!({"note": note}))
        }
        _ => ctx.success(json!({"note": notes.get(note_id)})),
    }
}

/// Case-insensitive match of a free-text query against a contact's names,
/// email, phone and company.
fn matches_query(c: &Record, query: Option<&str>) -> bool {
    let Some(q) = query.map(str::to_lowercase) else { return true };
    ["firstName", "lastName", "name", "email", "phone", "companyName", "contactName"]
        .iter()
        .any(|k| c.get(*k).and_then(Value::as_str).is_some_and(|v| v.to_lowercase().contains(&q)))
}

fn list_contacts(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let location = ctx.query("locationId").unwrap_or_default().to_string();
    ctx.may_access(&location)?;
    let limit = ctx.query("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(20).clamp(1, 100);
    let query = ctx.query("query");
    let store = ctx.mock.store();
    let empty = Default::default();
    let loc = store.locations.get(&location).unwrap_or(&empty);
    // The cursor: strictly after (dateAdded, id) in the list's order.
    let after = match (ctx.query("startAfter").and_then(|s| s.parse::<i64>().ok()), ctx.query("startAfterId")) {
        (Some(ms), Some(id)) => Some((ms, id.to_string())),
        (Some(ms), None) => Some((ms, String::from("\u{10FFFF}"))),
        (None, Some(id)) => loc.contact_order.iter().find(|(_, i)| i == id).cloned(),
        (None, None) => None,
    };
    let matching: Vec<&(i64, String)> = loc
        .contact_order
        .iter()
        .filter(|(_, id)| loc.contacts.get(id).is_some_and(|c| matches_query(c, query)))
        .collect();
    let start = after.as_ref().map(|a| matching.partition_point(|k| *k <= a)).unwrap_or(0);
    let page: Vec<&Record> = matching[start..].iter().take(limit).filter_map(|(_, id)| loc.contacts.get(id)).collect();
    let more = start + page.len() < matching.len();
    let current = start / limit + 1;
    // More to come: the cursor is the last contact of this page.
    let cursor = if more { matching.get(start + page.len() - 1) } else { None };
    let (next_after, next_id) = match cursor {
        Some((ms, id)) => (json!(ms), json!(id)),
        None => (Value::Null, Value::Null),
    };
    let next_url = match (&next_after, &next_id) {
        (Value::Number(ms), Value::String(id)) => json!(format!(
            "http://{}/contacts/?locationId={location}&limit={limit}&startAfter={ms}&startAfterId={id}",
            ctx.host.unwrap_or("127.0.0.1")
        )),
        _ => Value::Null,
    };
    let meta = json!({
        "total": matching.len(),
        "nextPageUrl": next_url,
        "startAfterId": next_id,
        "startAfter": next_after,
        "currentPage": current,
        "nextPage": if more { json!(current + 1) } else { Value::Null },
        "prevPage": if current > 1 { json!(current - 1) } else { Value::Null },
    });
    ctx.success(json!({"contacts": page, "meta": meta}))
}

fn search_contacts(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let location = body_location(ctx)?;
    ctx.may_access(&location)?;
    let number = |k: &str, d: u64| ctx.body.and_then(|b| b.get(k)).and_then(Value::as_u64).unwrap_or(d);
    let page = number("page", 1).max(1) as usize;
    let page_limit = number("pageLimit", 20).clamp(1, 500) as usize;
    let query = ctx.body_str("query");
    let filters = ctx.body.and_then(|b| b.get("filters")).and_then(Value::as_array).cloned().unwrap_or_default();
    let store = ctx.mock.store();
    let empty = Default::default();
    let loc = store.locations.get(&location).unwrap_or(&empty);
    let matching: Vec<&Record> = loc
        .contact_order
        .iter()
        .filter_map(|(_, id)| loc.contacts.get(id))
        .filter(|c| matches_query(c, query) && filters.iter().all(|f| filter_matches(c, f)))
        .collect();
    let total = matching.len();
    let contacts: Vec<&&Record> = matching.iter().skip((page - 1) * page_limit).take(page_limit).collect();
    ctx.success(json!({"contacts": contacts, "total": total}))
}

/// One search filter: `{field, operator, value}`, or a group
/// `{group: "AND"|"OR", filters: [...]}`. Operators: `eq`, `not_eq`,
/// `contains`, `not_contains`, `exists`, `not_exists`; unknown ones match all.
fn filter_matches(c: &Record, filter: &Value) -> bool {
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

fn create_opportunity(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let location = body_location(ctx)?;
    ctx.may_access(&location)?;
    let now = ctx.mock.clock.now_ms();
    let id = ctx.new_id();
    let mut o = Map::new();
    o.insert("id".into(), Value::String(id.clone()));
    o.insert("locationId".into(), Value::String(location.clone()));
    o.insert("status".into(), Value::String("open".into()));
    o.insert("monetaryValue".into(), json!(0));
    for key in ["notes", "tasks", "calendarEvents", "followers", "customFields"] {
        o.insert(key.into(), json!([]));
    }
    merge(&mut o, ctx.body, ValueKey::Opportunity);
    for key in ["createdAt", "updatedAt", "lastStatusChangeAt", "lastStageChangeAt"] {
        o.insert(key.into(), Value::String(iso8601(now)));
    }
    let mut store = ctx.mock.store_mut();
    store.room_for(&location, "opportunities").map_err(full)?;
    if let Some(contact) = o.get("contactId").and_then(Value::as_str).and_then(|cid| store.contact(cid)) {
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
        o.insert("contact".into(), Value::Object(summary));
    }
    store.insert_opportunity(&location, &id, now, o.clone());
    ctx.success(json!({"opportunity": o}))
}

fn with_opportunity(
    ctx: &Ctx<'_>,
    f: impl FnOnce(&str, &Record) -> Result<Option<(StatusCode, Value)>, ApiError>,
) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let id = ctx.path("id");
    let store = ctx.mock.store();
    let location = store.owner_of(id).ok_or_else(|| not_found("Opportunity"))?.to_string();
    let record =
        store.locations.get(&location).and_then(|l| l.opportunities.get(id)).ok_or_else(|| not_found("Opportunity"))?;
    ctx.may_access(&location)?;
    f(&location, record)
}

fn update_opportunity(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let id = ctx.path("id");
    let now = iso8601(ctx.mock.clock.now_ms());
    let mut store = ctx.mock.store_mut();
    let location = store.owner_of(id).ok_or_else(|| not_found("Opportunity"))?.to_string();
    ctx.may_access(&location)?;
    let record = store.location(&location).opportunities.get_mut(id).ok_or_else(|| not_found("Opportunity"))?;
    let status_before = record.get("status").cloned();
    let stage_before = record.get("pipelineStageId").cloned();
    merge(record, ctx.body, ValueKey::Opportunity);
    record.insert("updatedAt".into(), Value::String(now.clone()));
    if record.get("status").cloned() != status_before {
        record.insert("lastStatusChangeAt".into(), Value::String(now.clone()));
    }
    if record.get("pipelineStageId").cloned() != stage_before {
        record.insert("lastStageChangeAt".into(), Value::String(now));
    }
    let answer =
        if ctx.op.path.ends_with("/status") { json!({"succeded": true}) } else { json!({"opportunity": record}) };
    ctx.success(answer)
}

fn delete_opportunity(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let id = ctx.path("id");
    let mut store = ctx.mock.store_mut();
    let location = store.owner_of(id).ok_or_else(|| not_found("Opportunity"))?.to_string();
    ctx.may_access(&location)?;
    store.remove_opportunity(id);
    ctx.success(json!({"succeded": true}))
}

fn search_opportunities(ctx: &Ctx<'_>) -> Result<Option<(StatusCode, Value)>, ApiError> {
    let location = ctx.query("location_id").unwrap_or_default().to_string();
    ctx.may_access(&location)?;
    let limit = ctx.query("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(20).clamp(1, 100);
    let page = ctx.query("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    let q = ctx.query("q").map(str::to_lowercase);
    let filters = [
        ("status", "status"),
        ("pipeline_id", "pipelineId"),
        ("pipeline_stage_id", "pipelineStageId"),
        ("contact_id", "contactId"),
        ("assigned_to", "assignedTo"),
    ];
    let store = ctx.mock.store();
    let empty = Default::default();
    let loc = store.locations.get(&location).unwrap_or(&empty);
    let matching: Vec<&Record> = loc
        .opportunity_order
        .iter()
        .filter_map(|(_, id)| loc.opportunities.get(id))
        .filter(|o| {
            let name_ok = q
                .as_ref()
                .is_none_or(|q| o.get("name").and_then(Value::as_str).is_some_and(|n| n.to_lowercase().contains(q)));
            let status_all = ctx.query("status") == Some("all");
            name_ok
                && filters.iter().all(|(param, field)| match ctx.query(param) {
                    Some(_) if *param == "status" && status_all => true,
                    Some(v) => o.get(*field).and_then(Value::as_str) == Some(v),
                    None => true,
                })
        })
        .collect();
    let total = matching.len();
    let items: Vec<&&Record> = matching.iter().skip((page - 1) * limit).take(limit).collect();
    let more = page * limit < total;
    let meta = json!({
        "total": total,
        "currentPage": page,
        "nextPage": if more { json!(page + 1) } else { Value::Null },
        "prevPage": if page > 1 { json!(page - 1) } else { Value::Null },
        "startAfter": Value::Null,
        "startAfterId": Value::Null,
        "nextPageUrl": Value::Null,
    });
    ctx.success(json!({"opportunities": items, "meta": meta}))
}
