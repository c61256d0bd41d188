//! The resource engine: generic create, get, update, delete, list and search
//! for every resource of the inferred table (`spec::resources`), over the
//! records interface (`state::Records`). What a family does differently —
//! contact duplicates and upsert, tags as a set, opportunity stages,
//! appointments in a time range, messages filed into conversations — is a
//! hook in [`hooks`], called at fixed points, never a copy of the flow.
//!
//! Every record belongs to one location (or, for agency-level records, a
//! company): another location's record is refused as the location check
//! refuses it. Records are JSON objects: what the client sent, plus the
//! server's fields (id, location, dates, parents).

pub mod direct;
pub mod hooks;
pub mod seed;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use crate::auth::check::Principal;
use crate::auth::AuthError;
use crate::clock::iso8601;
use crate::error::ApiError;
use crate::spec::resources::{Action, Binding, Resource};
use crate::spec::Operation;
use crate::state::{Cursor, NewRecord, Query, Record, RecordError, Stored};
use crate::world::Owner;
use crate::Mock;

pub use hooks::Family;

/// A fresh HighLevel-shaped id (20 alphanumerics), from the process's own
/// random source: ids are never replayed from `--seed`, so a restart with
/// `--state` cannot hand out an id that is stored already.
pub fn new_id() -> String {
    crate::respond::generate::id(&mut fastrand::Rng::new())
}

/// What a bound operation may read of its request.
pub struct Call<'a> {
    pub mock: &'a Mock,
    pub op: &'a Operation,
    pub binding: &'a Binding,
    pub resource: &'a Resource,
    pub family: Family,
    pub who: Option<&'a Principal>,
    /// The world as this request found it.
    pub world: &'a crate::World,
    pub path_params: &'a [(String, String)],
    pub query: &'a [(String, String)],
    pub body: Option<&'a Value>,
    /// `Host` and path of the request, for `nextPageUrl`.
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub trace_id: &'a str,
}

pub type Answer = Result<(StatusCode, Value), ApiError>;

/// An answer's body: a value still to be fitted to the schema and written,
/// or bytes ready to send (a record written directly, see [`direct`]).
pub enum Reply {
    Value(Value),
    Ready(Vec<u8>),
}

/// A single record's answer: written directly where that is exact, else
/// framed as a value for the pipeline to fit and write.
fn reply_single(call: &Call<'_>, stored: &Stored) -> Reply {
    let direct = call.binding.direct.get_or_init(|| direct::prepare(call.op, call.binding));
    match direct.as_ref().and_then(|d| d.answer(call.binding, stored, call.trace_id)) {
        Some(bytes) => Reply::Ready(bytes),
        None => Reply::Value(single(call, stored.fields())),
    }
}

/// Fields a client may not set: the server owns them.
pub const SERVER_FIELDS: &[&str] = &["id", "_id", "locationId", "dateAdded", "dateUpdated", "createdAt", "updatedAt"];

/// Query parameters that page, name the location or search, never filters.
const NOT_FILTERS: &[&str] = &[
    "limit",
    "skip",
    "offset",
    "page",
    "pageLimit",
    "startAfter",
    "startAfterId",
    "locationId",
    "location_id",
    "altId",
    "altType",
    "query",
    "q",
    "sortBy",
    "sort",
    "order",
    "sortOrder",
    "order_by",
    "date",
    "endDate",
    "startDate",
    "startTime",
    "endTime",
    "companyId",
];

impl Call<'_> {
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    pub fn body_field(&self, name: &str) -> Option<&Value> {
        self.body.and_then(|b| b.get(name))
    }

    pub fn body_str(&self, name: &str) -> Option<&str> {
        self.body_field(name).and_then(Value::as_str)
    }

    pub fn now_ms(&self) -> i64 {
        self.mock.clock.now_ms()
    }

    pub fn kind(&self) -> &str {
        &self.resource.kind
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.op.success.status).unwrap_or(StatusCode::OK)
    }

    /// The caller may act on records of `location`.
    pub fn may_access(&self, location: &str) -> Result<(), ApiError> {
        let ok = match self.who.map(|w| &w.owner) {
            Some(Owner::Location(own)) => own == location,
            Some(Owner::Company(company)) => company == location || self.world.company_has_location(company, location),
            // Operations without security act in the location they name.
            None => true,
        };
        if ok {
            Ok(())
        } else {
            Err(AuthError::WrongLocation { location_id: location.to_string() }.into())
        }
    }

    /// The location the request names, if it names one.
    pub fn named_location(&self) -> Option<String> {
        crate::auth::check::named_locations(self.op, self.path_params, self.query, self.body).into_iter().next()
    }

    /// The caller's own location or company.
    fn caller_scope(&self) -> Option<String> {
        self.who.map(|w| match &w.owner {
            Owner::Location(id) | Owner::Company(id) => id.clone(),
        })
    }

    /// "Contact not found", as the family answers it.
    pub fn not_found(&self) -> ApiError {
        not_found(self.mock, self.family, &self.resource.noun())
    }

    fn error(&self, e: RecordError) -> ApiError {
        record_error(self.mock, self.family, &self.resource.noun(), e)
    }
}

pub fn not_found(mock: &Mock, family: Family, noun: &str) -> ApiError {
    let message = format!("{noun} not found");
    if family.known_not_found_is_400() {
        return ApiError::BadRequest { message, meta: None };
    }
    ApiError::RecordNotFound { status: mock.config.fidelity.unknown_record_status, message }
}

pub fn record_error(mock: &Mock, family: Family, noun: &str, e: RecordError) -> ApiError {
    match e {
        RecordError::NotFound => not_found(mock, family, noun),
        RecordError::Duplicate { id, key } => hooks::duplicate_refusal(family, id, &key),
        RecordError::Full { location, kind, what } => {
            let flag = if what.ends_with("bytes") { "--max-record-bytes" } else { "--max-records" };
            ApiError::BadRequest {
                message: format!(
                    "ghl-mock keeps at most {what} of {kind} per location and {location} holds that many \
                     (serve {flag} raises it)"
                ),
                meta: None,
            }
        }
        RecordError::Refused(e) => e,
        RecordError::Unavailable(message) => ApiError::Unavailable { message },
        RecordError::IdTaken => ApiError::Unavailable { message: "could not draw a free record id".into() },
    }
}

/// Answers a bound operation from state.
pub async fn answer(call: &Call<'_>) -> Result<(StatusCode, Reply), ApiError> {
    let value = |(status, v)| (status, Reply::Value(v));
    match call.binding.action {
        Action::Create => create(call).await,
        Action::Get => get(call).await,
        Action::Update => update(call).await,
        Action::Delete => delete(call).await.map(value),
        Action::List | Action::Search => list(call).await.map(value),
        Action::Upsert => hooks::upsert_contact(call).await.map(value),
        Action::AddTags => hooks::tags(call, true).await.map(value),
        Action::RemoveTags => hooks::tags(call, false).await.map(value),
    }
}

/// The parent records a path names (`contactId` of a note): each must exist
/// and be the caller's. Returns the location of the nearest parent.
async fn check_parents(call: &Call<'_>) -> Result<Option<String>, ApiError> {
    let mut location = None;
    for name in &call.binding.parents {
        let Some(value) = call.path_param(name) else { continue };
        let Some((family, parent)) = parent_resource(call, name) else { continue };
        let stored = call
            .mock
            .records
            .get(&parent.kind, value)
            .await
            .map_err(|e| record_error(call.mock, family, &parent.noun(), e))?;
        call.may_access(&stored.location)?;
        location = Some(stored.location);
    }
    Ok(location)
}

/// The resource a parent parameter names: the collection before `/{name}`.
fn parent_resource<'t>(call: &Call<'t>, name: &str) -> Option<(Family, &'t Resource)> {
    let marker = format!("/{{{name}}}");
    let path = [call.op.path.as_str(), call.resource.collection.as_str()]
        .into_iter()
        .find_map(|p| p.find(&marker).map(|i| &p[..i]))?;
    let kind = crate::spec::resources::kind_of(path);
    let (_, resource) = call.mock.spec.resources.by_kind(&kind)?;
    Some((Family::of(&resource.kind), resource))
}

/// The record's location on create: the one the request names, else its
/// parent's, else the caller's own.
async fn placement(call: &Call<'_>) -> Result<String, ApiError> {
    let parent = check_parents(call).await?;
    let location = match call.named_location().or(parent).or_else(|| call.caller_scope()) {
        Some(l) => l,
        None => return Err(ApiError::Unprocessable { messages: vec!["locationId should not be empty".into()] }),
    };
    call.may_access(&location)?;
    Ok(location)
}

/// Copies the client's fields onto a record, leaving the server's alone.
pub fn merge(record: &mut Record, body: Option<&Value>, family: Family) {
    let Some(Value::Object(fields)) = body else { return };
    for (key, value) in fields {
        if SERVER_FIELDS.contains(&key.as_str()) {
            continue;
        }
        record.insert(key.clone(), hooks::stored_value(family, key, value));
    }
}

fn set_times(record: &mut Record, resource: &Resource, now: i64, created: bool) {
    let stamp = Value::String(iso8601(now));
    let created_fields = ["dateAdded", "createdAt"];
    let updated_fields = ["dateUpdated", "updatedAt"];
    for field in updated_fields.iter().chain(if created { created_fields.iter() } else { [].iter() }) {
        if resource.fields.contains(*field) || resource.fields.is_empty() && *field == "createdAt" {
            record.insert((*field).to_string(), stamp.clone());
        }
    }
    if resource.fields.is_empty() && created {
        record.insert("updatedAt".into(), stamp);
    }
}

async fn create(call: &Call<'_>) -> Result<(StatusCode, Reply), ApiError> {
    let location = placement(call).await?;
    let now = call.now_ms();
    let resource = call.resource;
    // Room for the body, the required fields and what the server adds (ids,
    // times, a family's defaults), so the record never grows its table: a
    // record is kept for good, and growing leaves a third of it unused.
    let given = call.body.and_then(Value::as_object).map_or(0, Map::len);
    let mut record = Map::with_capacity(given + resource.required.len() + call.binding.parents.len() + 16);
    for (field, value) in &resource.required {
        if !SERVER_FIELDS.contains(&field.as_str()) && *field != resource.id_field {
            record.insert(field.clone(), value.clone());
        }
    }
    merge(&mut record, call.body, call.family);
    for name in &call.binding.parents {
        if let Some(v) = call.path_param(name) {
            record.insert(name.clone(), Value::String(v.to_string()));
        }
    }
    if resource.fields.contains("locationId") || call.named_location().is_some() {
        record.insert("locationId".into(), Value::String(location.clone()));
    }
    set_times(&mut record, resource, now, true);
    hooks::before_create(call, &location, &mut record).await?;
    let stored = insert(call, &location, now, record).await?;
    hooks::after_create(call, &stored).await?;
    crate::webhooks::record_changed(call, &stored.location, || crate::webhooks::Change::Created(stored.fields())).await;
    let answer = match hooks::created_answer(call, &stored) {
        Some(answer) => Reply::Value(answer),
        None => reply_single(call, &stored),
    };
    Ok((call.status(), answer))
}

/// Inserts under a fresh random id (62^20 of them: a draw that is taken
/// already is refused by the store, never a replacement).
pub async fn insert(call: &Call<'_>, location: &str, now: i64, mut record: Record) -> Result<Stored, ApiError> {
    let id = new_id();
    record.insert(call.resource.id_field.clone(), Value::String(id.clone()));
    let new =
        NewRecord { kind: call.resource.kind.clone(), id, location: location.to_string(), created_ms: now, record };
    call.mock.records.insert(new, hooks::indexing(call, location)).await.map_err(|e| call.error(e))
}

/// The record the item path names, if the caller may see it.
pub async fn fetch(call: &Call<'_>) -> Result<Stored, ApiError> {
    let id = call.binding.id_param.as_deref().and_then(|p| call.path_param(p)).unwrap_or("");
    let stored = call.mock.records.get(&call.resource.kind, id).await.map_err(|e| call.error(e))?;
    // A location's record is kept under its company, and answers to the location itself too.
    let own = if call.family == Family::Locations { &stored.id } else { &stored.location };
    call.may_access(own)?;
    // A sub-resource answers only under its own parent.
    for name in &call.binding.parents {
        if let (Some(given), Some(held)) = (call.path_param(name), stored.record().get(name).and_then(Value::as_str)) {
            if given != held {
                return Err(call.not_found());
            }
        }
    }
    Ok(stored)
}

async fn get(call: &Call<'_>) -> Result<(StatusCode, Reply), ApiError> {
    let stored = fetch(call).await?;
    Ok((call.status(), reply_single(call, &stored)))
}

async fn update(call: &Call<'_>) -> Result<(StatusCode, Reply), ApiError> {
    let found = fetch(call).await?;
    let prepared = hooks::before_update(call, &found).await?;
    let resource = call.resource;
    let now = call.now_ms();
    let family = call.family;
    let change = |record: &mut Record| {
        merge(record, call.body, family);
        set_times(record, resource, now, false);
        hooks::on_change(family, &prepared, record, now)
    };
    let (before, after) = call
        .mock
        .records
        .update(&resource.kind, &found.id, &change, hooks::indexing(call, &found.location))
        .await
        .map_err(|e| call.error(e))?;
    let changed = || crate::webhooks::Change::Updated { before: before.fields(), after: after.fields() };
    crate::webhooks::record_changed(call, &after.location, changed).await;
    Ok((call.status(), reply_single(call, &after)))
}

async fn delete(call: &Call<'_>) -> Answer {
    let found = fetch(call).await?;
    let removed = call.mock.records.remove(&call.resource.kind, &found.id).await.map_err(|e| call.error(e))?;
    hooks::after_delete(call, &removed).await?;
    crate::webhooks::record_changed(call, &removed.location, || crate::webhooks::Change::Deleted(removed.fields()))
        .await;
    Ok((call.status(), framed(call, None, &[])))
}

/// Paging as the operation declares it: `limit`/`skip`, `page`/`pageLimit`,
/// or a cursor (`startAfterId`, `startAfter`), in the query or the body.
struct Paging {
    limit: usize,
    skip: usize,
    page: usize,
    after: Option<Cursor>,
}

fn number(call: &Call<'_>, name: &str) -> Option<i64> {
    call.query_param(name).and_then(|v| v.parse().ok()).or_else(|| call.body_field(name).and_then(Value::as_i64))
}

async fn paging(call: &Call<'_>, location: &str) -> Paging {
    let declared_max = call
        .op
        .params
        .iter()
        .find(|p| p.name == "limit" || p.name == "pageLimit")
        .and_then(|p| p.schema.get("maximum"))
        .and_then(Value::as_u64);
    let max = declared_max.unwrap_or(500).clamp(1, 1000) as usize;
    let limit = number(call, "limit").or_else(|| number(call, "pageLimit")).unwrap_or(20).clamp(1, max as i64) as usize;
    let page = number(call, "page").unwrap_or(1).max(1) as usize;
    let mut skip = number(call, "skip").or_else(|| number(call, "offset")).unwrap_or(0).max(0) as usize;
    if number(call, "page").is_some() {
        skip = (page - 1) * limit;
    }
    let after_id = call.query_param("startAfterId").map(str::to_string);
    let after_ms = number(call, "startAfter");
    let after = match (after_ms, after_id) {
        (Some(ms), Some(id)) => Some(Cursor { created_ms: ms, id }),
        (Some(ms), None) => Some(Cursor { created_ms: ms, id: "\u{10FFFF}".into() }),
        (None, Some(id)) => match call.mock.records.get(&call.resource.kind, &id).await {
            Ok(s) if s.location == location => Some(s.cursor()),
            _ => None,
        },
        (None, None) => None,
    };
    Paging { limit, skip, page, after }
}

/// Filters a list by: the parents the path names, query parameters that
/// name stored fields (`calendarId`, `pipeline_id` → `pipelineId`), a
/// free-text `query`/`q`, search `filters`, and the family's own.
fn filter_for(call: &Call<'_>) -> impl Fn(&Record) -> bool + Send + Sync {
    let mut equal: Vec<(String, String)> = Vec::new();
    for name in &call.binding.parents {
        if let Some(v) = call.path_param(name) {
            equal.push((name.clone(), v.to_string()));
        }
    }
    for (k, v) in call.query {
        if v.is_empty() || NOT_FILTERS.contains(&k.as_str()) || k.starts_with("__") {
            continue;
        }
        let field = camel(k);
        if call.resource.fields.contains(&field) || call.resource.fields.contains(k) || call.resource.fields.is_empty()
        {
            let field = if call.resource.fields.contains(k) { k.clone() } else { field };
            if !(field == "status" && v == "all") {
                equal.push((field, v.clone()));
            }
        }
    }
    let text = call.query_param("query").or(call.query_param("q")).or(call.body_str("query")).map(str::to_lowercase);
    let filters = call.body_field("filters").and_then(Value::as_array).cloned().unwrap_or_default();
    let extra = hooks::list_filter(call);
    move |r: &Record| {
        equal.iter().all(|(k, v)| field_is(r.get(k), v))
            && text.as_ref().is_none_or(|q| hooks::matches_text(r, q))
            && filters.iter().all(|f| hooks::filter_matches(r, f))
            && extra(r)
    }
}

/// `pipeline_stage_id` → `pipelineStageId`.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn field_is(value: Option<&Value>, wanted: &str) -> bool {
    match value {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Array(items)) => items.iter().any(|i| field_is(Some(i), wanted)),
        Some(Value::Bool(b)) => wanted.parse::<bool>().ok() == Some(*b),
        Some(Value::Number(n)) => n.to_string() == wanted,
        _ => false,
    }
}

async fn list(call: &Call<'_>) -> Answer {
    let parent = check_parents(call).await?;
    let location = match call.named_location().or(parent).or_else(|| call.caller_scope()) {
        Some(l) => l,
        None => return Err(ApiError::Unprocessable { messages: vec!["locationId should not be empty".into()] }),
    };
    call.may_access(&location)?;
    let paging = paging(call, &location).await;
    let filter = filter_for(call);
    let listed = call
        .mock
        .records
        .list(Query {
            kind: &call.resource.kind,
            location: &location,
            filter: &filter,
            after: paging.after.clone(),
            skip: paging.skip,
            limit: paging.limit,
            newest_first: call.family.newest_first(),
        })
        .await
        .map_err(|e| call.error(e))?;
    let items: Vec<Value> = listed.items.iter().map(|s| s.record().clone()).collect();
    let mut answer = framed(call, None, &items);
    fill_list_meta(call, &mut answer, &listed, &paging, &location);
    Ok((call.status(), answer))
}

/// `total`, `count` and a `meta` block, where the answer has them.
fn fill_list_meta(call: &Call<'_>, answer: &mut Value, listed: &crate::state::Listed, paging: &Paging, location: &str) {
    // The object holding the list: its cursor fields (messages' `lastMessageId`, `nextPage`).
    let holder = call.binding.list.split_last().map(|(_, parents)| parents).unwrap_or_default();
    if let Some(Value::Object(h)) = holder.iter().try_fold(&mut *answer, |v, k| v.get_mut(k)) {
        if h.get("nextPage").is_some_and(Value::is_boolean) {
            h.insert("nextPage".into(), Value::Bool(listed.more));
        }
        if h.contains_key("lastMessageId") {
            h.insert("lastMessageId".into(), listed.items.last().map(|s| json!(s.id)).unwrap_or(Value::Null));
        }
    }
    let Value::Object(map) = answer else { return };
    if call.op.success.schema.is_none() {
        map.insert("total".into(), json!(listed.total));
    }
    for key in ["total", "count", "totalCount"] {
        if map.get(key).is_some_and(Value::is_number) {
            map.insert(key.into(), json!(listed.total));
        }
    }
    if let Some(Value::Object(meta)) = map.get_mut("meta") {
        let current = if paging.page > 1 { paging.page } else { paging.skip / paging.limit.max(1) + 1 };
        let next = listed.more.then(|| listed.items.last()).flatten();
        let next_url = next.map(|last| {
            json!(format!(
                "http://{}{}?locationId={location}&limit={}&startAfter={}&startAfterId={}",
                call.host.unwrap_or("127.0.0.1"),
                call.path,
                paging.limit,
                last.created_ms,
                last.id
            ))
        });
        meta.insert("total".into(), json!(listed.total));
        meta.insert("currentPage".into(), json!(current));
        meta.insert("nextPage".into(), if listed.more { json!(current + 1) } else { Value::Null });
        meta.insert("prevPage".into(), if current > 1 { json!(current - 1) } else { Value::Null });
        meta.insert("startAfterId".into(), next.map(|l| json!(l.id)).unwrap_or(Value::Null));
        meta.insert("startAfter".into(), next.map(|l| json!(l.created_ms)).unwrap_or(Value::Null));
        meta.insert("nextPageUrl".into(), next_url.unwrap_or(Value::Null));
    }
}

/// Makes an answer fit the operation's schema (a stored record holds what
/// clients sent, which the answer's schema may not allow): what does not fit
/// is left out, required fields left out come back from the default answer,
/// and an answer that still cannot fit is the operation's default answer.
pub fn conform(call: &Call<'_>, answer: &mut Value, validator: &jsonschema::Validator) {
    if validator.is_valid(answer) {
        return;
    }
    let binding = call.binding;
    let is_list = matches!(binding.action, Action::List | Action::Search);
    let path = if is_list { &binding.list } else { &binding.single };
    let at = format!("/{}", path.join("/"));
    let at = if path.is_empty() { String::new() } else { at };
    // A record itself is never dropped: what does not fit inside it is, and
    // required fields come back from the default answer.
    let is_record = |p: &str| {
        p == at
            || is_list
                && p.strip_prefix(&at).and_then(|r| r.strip_prefix('/')).is_some_and(|i| i.parse::<usize>().is_ok())
    };
    for _ in 0..8 {
        let mut paths: Vec<String> = validator
            .iter_errors(answer)
            .map(|e| e.instance_path().as_str().to_string())
            .filter(|p| !is_record(p))
            .collect();
        paths.sort_by(|a, b| b.matches('/').count().cmp(&a.matches('/').count()).then(b.cmp(a)));
        paths.dedup();
        for p in &paths {
            crate::respond::remove_at(answer, p);
        }
        refill(answer, path, binding);
        if validator.is_valid(answer) || paths.is_empty() {
            break;
        }
    }
    if validator.is_valid(answer) {
        return;
    }
    crate::respond::conform(answer, validator);
    if !validator.is_valid(answer) {
        tracing::debug!(op = %call.op.id, "a stored record cannot fit the answer's schema; answering the default");
        *answer = (*binding.frame).clone();
    }
}

/// Puts back the required fields a record lacks.
fn refill(answer: &mut Value, path: &[String], binding: &Binding) {
    let mut slot = Some(&mut *answer);
    for key in path {
        slot = slot.and_then(|s| s.get_mut(key));
    }
    let fill = |v: &mut Value| {
        if let Value::Object(r) = v {
            for (k, d) in &binding.fill {
                r.entry(k.clone()).or_insert_with(|| d.clone());
            }
        }
    };
    match slot {
        Some(Value::Array(items)) => items.iter_mut().for_each(fill),
        Some(v) => fill(v),
        None => {}
    }
}

/// A single record in the operation's answer frame.
pub fn single(call: &Call<'_>, record: &Record) -> Value {
    framed(call, Some(record), &[])
}

/// The operation's default answer with the record (or the list) put where
/// the binding says, success flags set and the trace id echoed.
fn framed(call: &Call<'_>, record: Option<&Record>, items: &[Value]) -> Value {
    framed_for(call.binding, call.trace_id, record, items)
}

/// [`framed`], from the binding and the trace id alone.
pub(crate) fn framed_for(binding: &Binding, trace_id: &str, record: Option<&Record>, items: &[Value]) -> Value {
    let is_list = matches!(binding.action, Action::List | Action::Search);
    let path = if is_list { &binding.list } else { &binding.single };
    let filled = |r: &Record| {
        let mut r = r.clone();
        for (k, v) in &binding.fill {
            r.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(r)
    };
    let content = match (is_list, record) {
        (true, _) => {
            Some(Value::Array(items.iter().map(|i| i.as_object().map(filled).unwrap_or_else(|| i.clone())).collect()))
        }
        (false, Some(r)) if binding.array => Some(Value::Array(vec![filled(r)])),
        (false, Some(r)) => Some(filled(r)),
        (false, None) => None,
    };
    let mut answer = match (&*binding.frame, path.is_empty(), content) {
        (_, true, Some(content)) => content,
        (frame @ Value::Object(_), false, Some(content)) => framed_with(frame, path, content),
        (frame, _, _) => frame.clone(),
    };
    if let Value::Object(map) = &mut answer {
        for key in ["succeded", "succeeded", "success"] {
            if map.get(key).is_some_and(Value::is_boolean) {
                map.insert(key.into(), Value::Bool(true));
            }
        }
        if map.get("traceId").is_some_and(Value::is_string) {
            map.insert("traceId".into(), Value::String(trace_id.to_string()));
        }
    }
    answer
}

/// A copy of `frame` with `content` at `path`, copying only what stays (the
/// default record the content replaces is never cloned).
fn framed_with(frame: &Value, path: &[String], content: Value) -> Value {
    let Some((key, rest)) = path.split_first() else { return content };
    let Value::Object(map) = frame else { return framed_with(&Value::Object(Map::new()), path, content) };
    let mut out = Map::with_capacity(map.len() + 1);
    let mut placed = Some(content);
    for (k, v) in map {
        if k == key {
            if let Some(c) = placed.take() {
                out.insert(k.clone(), framed_with(v, rest, c));
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    if let Some(c) = placed {
        out.insert(key.clone(), framed_with(&Value::Null, rest, c));
    }
    Value::Object(out)
}
