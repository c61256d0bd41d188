//! The resource table, inferred once from the loaded operations: which
//! operations form a resource (a collection path POST creates in, an item
//! path with the id, lists and searches), the key a list answers under, the
//! key a single record is wrapped in, the id field, the parent of a
//! sub-resource and where the location is named. Each operation is bound to
//! one action of one resource here, or listed as stateless with the reason.
//!
//! Irregular routes (appointments created at one path and deleted at
//! another, messages filed into conversations) are one entry each in
//! [`OVERRIDES`]; everything else follows from paths and schemas.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::{LocationSource, Operation};

/// What a bound operation does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Create,
    Get,
    Update,
    Delete,
    List,
    Search,
    /// Find by unique keys, then update or create (contacts).
    Upsert,
    /// Add to / remove from a set-valued field of the record (contact tags).
    AddTags,
    RemoveTags,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Get => "get",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::List => "list",
            Action::Search => "search",
            Action::Upsert => "upsert",
            Action::AddTags => "add-tags",
            Action::RemoveTags => "remove-tags",
        }
    }
}

/// One operation's part in a resource.
#[derive(Debug, Clone)]
pub struct Binding {
    pub resource: usize,
    pub action: Action,
    /// The path parameter holding the record's id (item operations).
    pub id_param: Option<String>,
    /// Path parameters naming the parent records (`contactId` of a note),
    /// stored on the record under the same name.
    pub parents: Vec<String>,
    /// Where in the answer a single record goes (`["contact"]`; empty: the
    /// answer is the record).
    pub single: Vec<String>,
    /// Where in the answer a list goes (`["contacts"]`, `["messages","messages"]`).
    pub list: Vec<String>,
    /// The operation's default answer, parsed once, the frame records are put in.
    pub frame: Arc<Value>,
    /// Fields the answer's record schema requires, with the default answer's
    /// value, for records that lack them.
    pub fill: Vec<(String, Value)>,
    /// The answer is an array of records (a create that answers `[record]`).
    pub array: bool,
    /// The way to write single records straight into the answer, prepared
    /// the first time the operation answers one (None: not exact here).
    pub direct: std::sync::OnceLock<Option<Arc<crate::resources::direct::Direct>>>,
}

/// Where the records of a resource say they belong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The request names the location (path, query or body).
    Named(Vec<String>),
    /// The parent record's location (a contact's notes).
    Parent,
    /// The caller's own location or company.
    Caller,
}

#[derive(Debug, Clone)]
pub struct Resource {
    /// The store's name of the kind: the collection path with `{}` for
    /// parameters (`/contacts/{}/notes`).
    pub kind: Arc<str>,
    /// The collection path as the spec writes it.
    pub collection: String,
    /// The item path, when there is one.
    pub item: Option<String>,
    /// The record's id field (`id`, or `_id` where the schema says so).
    pub id_field: String,
    /// The fields of a record as the item schema lists them.
    pub fields: BTreeSet<String>,
    /// Required fields of the item schema, with the default answer's value.
    pub required: Vec<(String, Value)>,
    pub placement: Placement,
    /// Operations bound to it, by index.
    pub operations: Vec<(usize, Action)>,
}

impl Resource {
    /// The record's name in messages: `contact` → `Contact`.
    pub fn noun(&self) -> String {
        let last = self.kind.rsplit('/').find(|s| !s.is_empty() && *s != "{}").unwrap_or("record");
        let singular = singular(last);
        let mut chars = singular.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => "Record".into(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub resources: Vec<Resource>,
    /// By operation index.
    pub bindings: Vec<Option<Binding>>,
    /// Operations left stateless, with the reason.
    pub stateless: Vec<(usize, String)>,
}

impl Table {
    pub fn binding(&self, op: usize) -> Option<&Binding> {
        self.bindings.get(op).and_then(Option::as_ref)
    }

    pub fn resource(&self, index: usize) -> Option<&Resource> {
        self.resources.get(index)
    }

    pub fn by_kind(&self, kind: &str) -> Option<(usize, &Resource)> {
        self.resources.iter().enumerate().find(|(_, r)| &*r.kind == kind)
    }

    pub fn bound(&self) -> usize {
        self.bindings.iter().flatten().count()
    }
}

/// Routes the paths and schemas alone would not bind: (method, path, the
/// resource's collection path, action).
pub const OVERRIDES: &[(&str, &str, &str, Action)] = &[
    // Appointments: created and read under /appointments, deleted and listed as events.
    ("POST", "/calendars/events/appointments", "/calendars/events", Action::Create),
    ("GET", "/calendars/events/appointments/{eventId}", "/calendars/events", Action::Get),
    ("PUT", "/calendars/events/appointments/{eventId}", "/calendars/events", Action::Update),
    ("DELETE", "/calendars/events/{eventId}", "/calendars/events", Action::Delete),
    ("GET", "/calendars/events", "/calendars/events", Action::List),
    // Messages are sent at one path and read per conversation.
    ("POST", "/conversations/messages", "/conversations/messages", Action::Create),
    ("GET", "/conversations/messages/{id}", "/conversations/messages", Action::Get),
    ("GET", "/conversations/{conversationId}/messages", "/conversations/messages", Action::List),
    ("POST", "/contacts/upsert", "/contacts", Action::Upsert),
    ("POST", "/contacts/{contactId}/tags", "/contacts", Action::AddTags),
    ("DELETE", "/contacts/{contactId}/tags", "/contacts", Action::RemoveTags),
    ("PUT", "/contacts/{contactId}/tasks/{taskId}/completed", "/contacts/{contactId}/tasks", Action::Update),
    ("PUT", "/opportunities/{id}/status", "/opportunities", Action::Update),
    ("GET", "/opportunities/pipelines", "/opportunities/pipelines", Action::List),
    ("GET", "/contacts/{contactId}/appointments", "/calendars/events", Action::List),
    // The location itself, where no collection of locations is served.
    ("GET", "/locations/{locationId}", "/locations", Action::Get),
    ("PUT", "/locations/{locationId}", "/locations", Action::Update),
    ("GET", "/links/id/{linkId}", "/links", Action::Get),
];

fn trim(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        "/"
    } else {
        t
    }
}

/// An item path ends in an id parameter; `{locationId}` names the location,
/// not a record, except under `/locations` itself.
fn is_item(path: &str) -> bool {
    let last = last_segment(path);
    is_param(last) && (param_name(last) != "locationId" || parent_path(path) == Some("/locations"))
}

fn is_param(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

fn param_name(segment: &str) -> &str {
    segment.trim_start_matches('{').trim_end_matches('}')
}

/// `/contacts/{contactId}/notes` → `/contacts/{}/notes`.
pub fn kind_of(collection: &str) -> String {
    trim(collection).split('/').map(|s| if is_param(s) { "{}" } else { s }).collect::<Vec<_>>().join("/")
}

fn parent_path(path: &str) -> Option<&str> {
    let (parent, last) = path.rsplit_once('/')?;
    (!last.is_empty()).then_some(if parent.is_empty() { "/" } else { parent })
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// Parameters of a collection path that name parents (all but the location).
fn parents_of(collection: &str) -> Vec<String> {
    collection
        .split('/')
        .filter(|s| is_param(s))
        .map(param_name)
        .filter(|n| *n != "locationId")
        .map(str::to_string)
        .collect()
}

/// Infers the table from the loaded operations.
pub fn infer(operations: &[Operation]) -> Table {
    let mut by_path: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, op) in operations.iter().enumerate() {
        by_path.entry(trim(&op.path).to_string()).or_default().push(i);
    }
    let methods_at = |path: &str| -> BTreeSet<String> {
        by_path.get(path).map(|ops| ops.iter().map(|i| operations[*i].method.to_string()).collect()).unwrap_or_default()
    };
    // Collections: a path with POST or GET whose `{param}` child is read,
    // changed or deleted; or a path both created in and listed.
    let mut collections: BTreeMap<String, Option<String>> = BTreeMap::new();
    for path in by_path.keys() {
        let Some(parent) = parent_path(path) else { continue };
        if !is_item(path) {
            continue;
        }
        let item_methods = methods_at(path);
        let parent_methods = methods_at(parent);
        let item_ok = ["GET", "PUT", "PATCH", "DELETE"].iter().any(|m| item_methods.contains(*m));
        let parent_ok = parent_methods.contains("POST") || parent_methods.contains("GET");
        if item_ok && parent_ok {
            collections.entry(parent.to_string()).or_insert_with(|| Some(path.clone()));
        }
    }
    for path in by_path.keys() {
        let m = methods_at(path);
        if m.contains("POST") && m.contains("GET") && !collections.contains_key(path) && !is_action(path) {
            collections.insert(path.clone(), None);
        }
    }
    for (_, _, collection, _) in OVERRIDES {
        collections.entry(collection.to_string()).or_insert(None);
    }

    let mut table = Table { bindings: vec![None; operations.len()], ..Table::default() };
    let mut resource_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut bound: Vec<(usize, String, Action, Option<String>)> = Vec::new();
    for (i, op) in operations.iter().enumerate() {
        let path = trim(&op.path);
        let method = op.method.as_str();
        let overridden = OVERRIDES.iter().find(|(m, p, _, _)| *m == method && *p == path);
        let choice = match overridden {
            Some((_, _, collection, action)) => {
                let id = is_param(last_segment(path)).then(|| param_name(last_segment(path)).to_string());
                let id = match action {
                    Action::AddTags | Action::RemoveTags => {
                        path.split('/').rev().find(|s| is_param(s)).map(|s| param_name(s).to_string())
                    }
                    Action::Update if !is_param(last_segment(path)) => {
                        path.split('/').rev().find(|s| is_param(s)).map(|s| param_name(s).to_string())
                    }
                    _ => id,
                };
                Ok((collection.to_string(), *action, id))
            }
            None => bind_by_path(path, method, &collections),
        };
        match choice {
            Ok((collection, action, id)) => bound.push((i, collection, action, id)),
            Err(reason) => table.stateless.push((i, reason)),
        }
    }
    for (i, collection, action, id_param) in bound {
        let index = *resource_of.entry(collection.clone()).or_insert_with(|| {
            table.resources.push(Resource {
                kind: Arc::from(kind_of(&collection)),
                item: collections.get(&collection).cloned().flatten(),
                collection: collection.clone(),
                id_field: "id".into(),
                fields: BTreeSet::new(),
                required: Vec::new(),
                placement: Placement::Caller,
                operations: Vec::new(),
            });
            table.resources.len() - 1
        });
        let op = &operations[i];
        let single = single_key(op, &collection);
        let list = match action {
            Action::List | Action::Search => list_key(op, &collection),
            _ => Vec::new(),
        };
        let frame = Arc::new(serde_json::from_slice(&op.success.body).unwrap_or(Value::Null));
        let mut parents = parents_of(&collection);
        // An override's own path may name parents its collection does not (messages of a conversation).
        for p in parents_of(trim(&op.path)) {
            if Some(&p) != id_param.as_ref() && !parents.contains(&p) {
                parents.push(p);
            }
        }
        parents.retain(|p| Some(p) != id_param.as_ref());
        table.resources[index].operations.push((i, action));
        let (fill, array) = record_shape(op, if list.is_empty() { &single } else { &list }, &frame, !list.is_empty());
        table.bindings[i] = Some(Binding {
            resource: index,
            action,
            id_param,
            parents,
            single,
            list,
            frame,
            fill,
            array,
            direct: Default::default(),
        });
    }
    for resource in &mut table.resources {
        describe(resource, operations, &table.bindings);
    }
    table
}

/// Paths that act rather than name a collection.
fn is_action(path: &str) -> bool {
    matches!(last_segment(path), "search" | "upsert" | "bulk" | "upload" | "validate-slug" | "export")
}

fn bind_by_path(
    path: &str,
    method: &str,
    collections: &BTreeMap<String, Option<String>>,
) -> Result<(String, Action, Option<String>), String> {
    let last = last_segment(path);
    let parent = parent_path(path).unwrap_or("/");
    if is_item(path) && collections.contains_key(parent) {
        let action = match method {
            "GET" => Action::Get,
            "PUT" | "PATCH" => Action::Update,
            "DELETE" => Action::Delete,
            _ => return Err(format!("{method} on an item path")),
        };
        return Ok((parent.to_string(), action, Some(param_name(last).to_string())));
    }
    if collections.contains_key(path) {
        return match method {
            "POST" => Ok((path.to_string(), Action::Create, None)),
            "GET" => Ok((path.to_string(), Action::List, None)),
            _ => Err(format!("{method} on a collection path")),
        };
    }
    if last == "search" && collections.contains_key(parent) && (method == "GET" || method == "POST") {
        return Ok((parent.to_string(), Action::Search, None));
    }
    // `PUT /calendars/groups/{groupId}/status`: a change to one record.
    if let Some(grand) = parent_path(parent) {
        if is_param(last_segment(parent)) && collections.contains_key(grand) && matches!(method, "PUT" | "PATCH") {
            return Ok((grand.to_string(), Action::Update, Some(param_name(last_segment(parent)).to_string())));
        }
    }
    Err(if is_param(last) {
        "no collection path creates or lists these records".into()
    } else if is_action(path) {
        format!("'{last}' acts on records of no inferred resource")
    } else {
        "no item path reads these records back".into()
    })
}

fn properties(schema: &Value) -> Option<&serde_json::Map<String, Value>> {
    if let Some(Value::Object(p)) = schema.get("properties") {
        return Some(p);
    }
    // `allOf` of objects: the first with properties.
    schema.get("allOf").and_then(Value::as_array).and_then(|parts| parts.iter().find_map(properties))
}

/// Every required field of an object schema, `allOf` parts included.
fn required_of(schema: &Value) -> Vec<String> {
    let mut out: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        out.extend(required_of(part));
    }
    out
}

/// A property's schema, looked for in every `allOf` part.
pub(crate) fn property<'s>(schema: &'s Value, name: &str) -> Option<&'s Value> {
    if let Some(p) = schema.get("properties").and_then(|p| p.get(name)) {
        return Some(p);
    }
    schema.get("allOf").and_then(Value::as_array)?.iter().find_map(|part| property(part, name))
}

fn is_object_schema(schema: &Value) -> bool {
    properties(schema).is_some_and(|p| !p.is_empty())
}

/// The key a single record is wrapped in: a property whose schema is an
/// object named like the record (`contact` of `/contacts`) or holding an id,
/// when the answer itself has no `id`.
fn single_key(op: &Operation, collection: &str) -> Vec<String> {
    let Some(schema) = op.success.schema.as_deref() else { return Vec::new() };
    let Some(props) = properties(schema) else { return Vec::new() };
    if props.contains_key("id") || props.contains_key("_id") {
        return Vec::new();
    }
    let noun = singular(last_segment(collection)).to_ascii_lowercase();
    let objects: Vec<(&String, &Value)> = props.iter().filter(|(_, s)| is_object_schema(s)).collect();
    let named = objects.iter().find(|(k, _)| {
        let k = k.to_ascii_lowercase();
        k == noun || noun.ends_with(&k) || k.ends_with(&noun)
    });
    let with_id = || {
        objects.iter().find(|(k, s)| {
            !matches!(k.as_str(), "meta" | "pagination" | "error")
                && properties(s).is_some_and(|p| p.contains_key("id") || p.contains_key("_id"))
        })
    };
    named.or_else(with_id).map(|(k, _)| vec![(*k).clone()]).unwrap_or_default()
}

/// `customFields` → `customField`, `categories` → `category` (the
/// generator's rule, which also keeps `status` and `businesses` whole).
fn singular(name: &str) -> String {
    crate::respond::generate::words::singular(name.trim_matches(|c| c == '{' || c == '}'))
}

fn is_list_of_objects(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("array") || schema.get("items").is_some()
}

/// The key a list answers under: the array property (one level down if
/// need be), preferring the one named like the collection.
fn list_key(op: &Operation, collection: &str) -> Vec<String> {
    // No schema: HighLevel answers lists under the collection's name.
    let Some(schema) = op.success.schema.as_deref() else { return vec![last_segment(collection).to_string()] };
    if is_list_of_objects(schema) && properties(schema).is_none() {
        return Vec::new();
    }
    let name = last_segment(collection).to_ascii_lowercase();
    let Some(props) = properties(schema) else { return vec![] };
    let arrays: Vec<&String> = props.iter().filter(|(_, s)| is_list_of_objects(s)).map(|(k, _)| k).collect();
    if let Some(k) = arrays.iter().find(|k| k.to_ascii_lowercase() == name).or(arrays.first()) {
        return vec![(*k).clone()];
    }
    for (key, sub) in props {
        if let Some(inner) = properties(sub) {
            if let Some((k, _)) = inner.iter().find(|(_, s)| is_list_of_objects(s)) {
                return vec![key.clone(), k.clone()];
            }
        }
    }
    vec!["items".into()]
}

/// What the answer's schema wants of each record at `path`: its required
/// fields (with the default answer's values) and whether the answer is an
/// array of records.
fn record_shape(op: &Operation, path: &[String], frame: &Value, is_list: bool) -> (Vec<(String, Value)>, bool) {
    let Some(mut schema) = op.success.schema.as_deref() else { return (Vec::new(), false) };
    let mut frame = frame;
    for key in path {
        schema = properties(schema).and_then(|p| p.get(key)).unwrap_or(&Value::Null);
        frame = frame.get(key).unwrap_or(&Value::Null);
    }
    let array = !is_list && path.is_empty() && is_list_of_objects(schema) && properties(schema).is_none();
    if is_list || array {
        schema = schema.get("items").unwrap_or(&Value::Null);
        frame = frame.get(0).unwrap_or(&Value::Null);
    }
    let fill = required_of(schema)
        .iter()
        .filter_map(|k| {
            let value = frame.get(k).cloned().or_else(|| {
                // Not in the default answer: generated from the field's own schema.
                let field = property(schema, k)?;
                let validator = super::compile_lenient(field).ok().map(|(v, _)| v);
                Some(crate::respond::generate_valid(field, validator.as_ref(), 7).unwrap_or_else(|(v, _)| v))
            })?;
            Some((k.to_string(), value))
        })
        .collect();
    (fill, array)
}

/// Fills what the bound operations say of the records: id field, fields,
/// required fields and where the location is named.
fn describe(resource: &mut Resource, operations: &[Operation], bindings: &[Option<Binding>]) {
    let preference = [Action::Get, Action::Create, Action::Update, Action::List, Action::Search];
    let mut item: Option<(Value, Value)> = None;
    'find: for wanted in preference {
        for (i, action) in &resource.operations {
            if *action != wanted {
                continue;
            }
            let (Some(op), Some(Some(b))) = (operations.get(*i), bindings.get(*i)) else { continue };
            let Some(schema) = op.success.schema.as_deref() else { continue };
            let path = if matches!(wanted, Action::List | Action::Search) { &b.list } else { &b.single };
            let mut s = schema;
            let mut frame = &*b.frame;
            for key in path {
                s = properties(s).and_then(|p| p.get(key)).unwrap_or(&Value::Null);
                frame = frame.get(key).unwrap_or(&Value::Null);
            }
            if matches!(wanted, Action::List | Action::Search) {
                s = s.get("items").unwrap_or(&Value::Null);
                frame = frame.get(0).unwrap_or(&Value::Null);
            }
            if is_object_schema(s) {
                item = Some((s.clone(), frame.clone()));
                break 'find;
            }
        }
    }
    if let Some((schema, frame)) = item {
        if let Some(props) = properties(&schema) {
            resource.fields = props.keys().cloned().collect();
            if !props.contains_key("id") && props.contains_key("_id") {
                resource.id_field = "_id".into();
            }
        }
        resource.required =
            required_of(&schema).iter().filter_map(|k| frame.get(k).map(|v| (k.clone(), v.clone()))).collect();
    }
    let mut named = Vec::new();
    for (i, _) in &resource.operations {
        for source in operations.get(*i).map(|o| o.location.as_slice()).unwrap_or_default() {
            let name = match source {
                LocationSource::Path(n) | LocationSource::Query(n) | LocationSource::Body(n) => n.clone(),
                LocationSource::AltIdQuery | LocationSource::AltIdBody => "altId".into(),
            };
            if !named.contains(&name) {
                named.push(name);
            }
        }
    }
    resource.placement = if !named.is_empty() {
        Placement::Named(named)
    } else if !parents_of(&resource.collection).is_empty() {
        Placement::Parent
    } else {
        Placement::Caller
    };
}

impl Table {
    /// The table as `check-specs` prints it: one line per resource, then the
    /// operations left stateless with the reason.
    pub fn render(&self, operations: &[Operation]) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "resources: {} ({} of {} operations answer from state; {} stateless)",
            self.resources.len(),
            self.bound(),
            operations.len(),
            self.stateless.len()
        );
        let _ = writeln!(out, "  {:<42} {:<44} {:<18} operations", "collection", "item", "location");
        for r in &self.resources {
            let placement = match &r.placement {
                Placement::Named(names) => names.join(","),
                Placement::Parent => "parent".into(),
                Placement::Caller => "caller".into(),
            };
            let mut ops: Vec<String> = r
                .operations
                .iter()
                .filter_map(|(i, a)| operations.get(*i).map(|o| format!("{}:{} {}", a.name(), o.method, o.path)))
                .collect();
            ops.sort();
            let _ = writeln!(
                out,
                "  {:<42} {:<44} {:<18} {}",
                r.collection,
                r.item.as_deref().unwrap_or("-"),
                placement,
                ops.len()
            );
            for op in ops {
                let _ = writeln!(out, "      {op}");
            }
        }
        let _ = writeln!(out, "stateless: {}", self.stateless.len());
        for (i, reason) in &self.stateless {
            if let Some(op) = operations.get(*i) {
                let _ = writeln!(out, "  {} {}: {reason}", op.method, op.path);
            }
        }
        out
    }
}
