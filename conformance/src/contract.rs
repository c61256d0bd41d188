//! The contract both targets are held to: the operations of ghl-mock's
//! embedded default specs (security, parameters, bodies, success schemas),
//! and the facts of BEHAVIOUR.md the suite checks word for word.
//!
//! This module builds requests from an operation; it never looks at a
//! target's answers.

use std::collections::BTreeSet;

use ghl_mock::spec::{LocationSource, Operation, Param, ParamIn, SpecSet};
use reqwest::Method;
use serde_json::Value;

use crate::client::Call;
use crate::error::Error;
use crate::strategy;

/// The `Version` the suite sends unless a test is about `Version`.
pub const VERSION: &str = "2021-07-28";
/// Every published `Version` value; the live API accepts each on any path (BEHAVIOUR.md §3).
pub const PUBLISHED_VERSIONS: [&str; 4] = ["2021-04-15", "2021-07-28", "2023-02-21", "v3"];

/// The exact refusals of BEHAVIOUR.md §3.
pub mod message {
    pub const INVALID_JWT: &str = "Invalid JWT";
    pub const INVALID_PIT: &str = "Invalid Private Integration token";
    pub const VERSION_MISSING: &str = "version header was not found.";
    pub const VERSION_INVALID: &str = "version header is invalid";
    pub const USER_TYPE_MISMATCH: &str = "Token's user type mismatch!";
    /// The location-token exchange's own words for a location token [seen].
    pub const USER_TYPE_NOT_SUPPORTED: &str = "This token's user type is not yet supported!";
    pub const SCOPE: &str = "The token is not authorized for this scope.";
    pub const LOCATION: &str = "The token does not have access to this location.";
    pub const TOO_MANY_REQUESTS: &str = "Too Many Requests";
}

/// HighLevel's 400 for a path that v3 removed, called with `Version: v3`;
/// `endpoint` is the path and query as sent [doc: issue 304 of HighLevel's docs repo].
pub fn removed_in_v3(endpoint: &str) -> Value {
    serde_json::json!({
        "message": format!(
            "Endpoint {endpoint} not available in API version v3. This endpoint was removed in version v3. \
             Please use a version before v3."
        ),
        "error": "Bad Request",
        "statusCode": 400,
    })
}

/// The body of an auth-layer refusal: `statusCode` and `message`, nothing else.
pub fn refusal(status: u16, message: &str) -> Value {
    serde_json::json!({"statusCode": status, "message": message})
}

pub struct Contract {
    pub spec: SpecSet,
}

/// Security schemes that admit a location's private integration token.
fn admits_location_pit(scheme: &str) -> bool {
    matches!(scheme, "bearer" | "Location-Access")
}

impl Contract {
    pub fn embedded() -> Result<Self, Error> {
        let spec = ghl_mock::spec::load(ghl_mock::spec::Source::Embedded(ghl_mock::spec::EMBEDDED), 1)
            .map_err(|e| Error::Settings(format!("the embedded specs do not load: {e}")))?;
        Ok(Self { spec })
    }

    pub fn operations(&self) -> &[Operation] {
        &self.spec.operations
    }

    /// The operation with this method and path template.
    pub fn operation(&self, method: &Method, path: &str) -> Option<&Operation> {
        self.spec.operations.iter().find(|o| o.method == method && o.path == path)
    }

    /// Every scope a location PIT may need for the default specs.
    pub fn location_scopes(&self) -> BTreeSet<String> {
        self.spec.operations.iter().flat_map(pit_requirements).flatten().collect()
    }

    /// Operations a location PIT may call at all (some requirement admits it).
    pub fn pit_operations(&self) -> impl Iterator<Item = &Operation> {
        self.spec.operations.iter().filter(|o| !pit_requirements(o).is_empty())
    }

    /// The list an id of `param` in `op`'s path can be read from, e.g.
    /// `GET /contacts/` for `/contacts/{contactId}`.
    pub fn collection_of(&self, op: &Operation, param: &str) -> Option<&Operation> {
        self.near(op, param, &Method::GET, &["", "/", "/search"])
    }

    /// The operation that creates what `param` names, e.g. `POST /contacts/`.
    pub fn creator_of(&self, op: &Operation, param: &str) -> Option<&Operation> {
        self.near(op, param, &Method::POST, &["", "/"])
    }

    fn near(&self, op: &Operation, param: &str, method: &Method, suffixes: &[&str]) -> Option<&Operation> {
        let marker = format!("/{{{param}}}");
        let prefix = &op.path[..op.path.find(&marker)?];
        suffixes.iter().find_map(|s| {
            let path = format!("{prefix}{s}");
            self.spec.operations.iter().find(|o| o.method == *method && o.path == path && o.id != op.id)
        })
    }
}

/// The scope sets of `op`'s requirement objects that a location PIT can meet
/// (every scheme in it admits one); empty when none can.
pub fn pit_requirements(op: &Operation) -> Vec<BTreeSet<String>> {
    op.security
        .iter()
        .filter(|req| !req.is_empty() && req.iter().all(|(scheme, _)| admits_location_pit(scheme)))
        .map(|req| req.iter().flat_map(|(_, scopes)| scopes.iter().cloned()).collect())
        .collect()
}

/// True when a location PIT holding `held` may call `op`.
pub fn pit_may_call(op: &Operation, held: &BTreeSet<String>) -> bool {
    pit_requirements(op).iter().any(|needed| needed.is_subset(held))
}

/// The scopes `held` lacks for `op`'s first PIT requirement; empty when it may call it.
pub fn missing_scopes(op: &Operation, held: &BTreeSet<String>) -> Vec<String> {
    if pit_may_call(op, held) {
        return Vec::new();
    }
    pit_requirements(op).first().map(|needed| needed.difference(held).cloned().collect()).unwrap_or_default()
}

pub fn declares_version(op: &Operation) -> bool {
    op.param("Version", ParamIn::Header).is_some()
}

/// True when a request to `op` names the location it acts on.
pub fn names_location(op: &Operation) -> bool {
    !op.location.is_empty()
}

/// Path parameters other than `locationId`: ids of resources that must exist.
pub fn resource_params(op: &Operation) -> Vec<&str> {
    op.params
        .iter()
        .filter(|p| p.location == ParamIn::Path && p.name != "locationId")
        .map(|p| p.name.as_str())
        .collect()
}

/// A request to `op` that a target should accept from a PIT of `location`:
/// the location wherever the operation takes one, `ids` for the other path
/// parameters, every other required parameter from its example, default,
/// first enum value or a generated value, and a generated valid body. No
/// token and no `Version`: tests add what they are about.
pub fn request(op: &Operation, location: &str, ids: &[(String, String)], seed: u64) -> Call {
    let mut path = op.path.clone();
    for p in op.params.iter().filter(|p| p.location == ParamIn::Path) {
        let value = ids
            .iter()
            .find(|(name, _)| *name == p.name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| param_value(p, location, seed));
        path = path.replace(&format!("{{{}}}", p.name), &value);
    }
    let mut call = Call::new(op.method.clone(), path);
    // An optional query parameter that names the location is sent too: the
    // request acts on `location` wherever the operation lets it say so.
    for p in op.params.iter().filter(|p| p.location == ParamIn::Query && (p.required || names_location_in_query(op, p)))
    {
        call = call.query(&p.name, param_value(p, location, seed));
    }
    if let Some(body) = body_sample(op, location, seed) {
        call = with_body(call, op, body);
    }
    call
}

/// True when `p` is a query parameter through which `op` names its location.
fn names_location_in_query(op: &Operation, p: &Param) -> bool {
    op.location.iter().any(|s| matches!(s, LocationSource::Query(name) if *name == p.name))
}

/// Attaches `body` as the operation takes it: form-encoded when that is the
/// only media type it names, JSON otherwise.
pub fn with_body(call: Call, op: &Operation, body: Value) -> Call {
    let form_only = op.body.as_ref().is_some_and(|b| {
        !b.content_types.is_empty() && b.content_types.iter().all(|t| t.contains("x-www-form-urlencoded"))
    });
    if !form_only {
        return call.json(body);
    }
    let pairs: Vec<(String, String)> =
        body.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), text_of(v))).collect()).unwrap_or_default();
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    call.form(&borrowed)
}

/// A valid body for `op` naming `location`, the same for the same seed.
pub fn body_sample(op: &Operation, location: &str, seed: u64) -> Option<Value> {
    let strategy = body_strategy(op, location)?;
    strategy::sample(&strategy, seed)
}

/// Valid bodies for `op` that name `location` where the body takes one.
pub fn body_strategy(op: &Operation, location: &str) -> Option<proptest::strategy::BoxedStrategy<Value>> {
    use proptest::strategy::Strategy;
    let schema = op.body.as_ref()?.schema.clone()?;
    let location = location.to_string();
    let valid = strategy::valid(&schema).ok()?;
    Some(valid.prop_map(move |body| with_location(body, &schema, &location)).boxed())
}

/// The company of the run's location, once the target knows it: a request
/// that names a `companyId` names this one (a real API, and the mock, refuse
/// a token acting on another company). One target per process, so one value.
static COMPANY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the run's company (the first call wins).
pub fn use_company(id: &str) {
    let _ = COMPANY.set(id.to_string());
}

fn company() -> Option<&'static str> {
    COMPANY.get().map(String::as_str)
}

/// Points the location fields of a body at `location` (and `companyId` at the run's company).
pub fn with_location(mut body: Value, schema: &Value, location: &str) -> Value {
    let props = schema.get("properties");
    let has = |name: &str| props.and_then(|p| p.get(name)).is_some();
    if let Value::Object(map) = &mut body {
        if has("locationId") {
            map.insert("locationId".into(), Value::String(location.into()));
        }
        if let (true, Some(company)) = (has("companyId"), company()) {
            map.insert("companyId".into(), Value::String(company.into()));
        }
        if has("altId") && has("altType") {
            map.insert("altId".into(), Value::String(location.into()));
            map.insert("altType".into(), Value::String("location".into()));
        }
    }
    body
}

/// A value for one parameter: the location where it names one, else the
/// spec's own example, default or first enum value, else a generated one.
pub fn param_value(p: &Param, location: &str, seed: u64) -> String {
    match p.name.as_str() {
        "locationId" | "location_id" | "altId" => return location.to_string(),
        "altType" => return "location".to_string(),
        "companyId" if company().is_some() => return company().unwrap_or_default().to_string(),
        _ => {}
    }
    let given = p
        .schema
        .get("example")
        .or_else(|| p.schema.get("default"))
        .or_else(|| p.schema.get("enum").and_then(|e| e.get(0)))
        .cloned();
    let value = given
        .or_else(|| strategy::valid(&p.schema).ok().and_then(|s| strategy::sample(&s, seed)))
        .unwrap_or(Value::Null);
    text_of(&value)
}

/// How a JSON value is written in a path or query string.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(","),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The first id in a list answer: the first array of objects with a string
/// `id`, at the top of the body or one level down.
pub fn first_id(body: &Value) -> Option<String> {
    fn in_array(v: &Value) -> Option<String> {
        v.as_array()?.iter().find_map(|item| item.get("id").and_then(Value::as_str).map(str::to_string))
    }
    let map = body.as_object()?;
    map.values()
        .find_map(in_array)
        .or_else(|| map.values().filter_map(Value::as_object).flat_map(|m| m.values()).find_map(in_array))
}

/// The id of what a create answered: `id` at the top or in the first object member.
pub fn created_id(body: &Value) -> Option<String> {
    let map = body.as_object()?;
    map.get("id").and_then(Value::as_str).map(str::to_string).or_else(|| {
        map.values().filter_map(Value::as_object).find_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_and_a_create_are_found_for_each_resource_id_of_the_default_specs() {
        let c = Contract::embedded().unwrap();
        let get = |path: &str| c.operation(&Method::GET, path).unwrap();
        let collection = |path: &str, param: &str| c.collection_of(get(path), param).map(|o| o.path.clone());
        assert_eq!(collection("/contacts/{contactId}", "contactId").as_deref(), Some("/contacts/"));
        assert_eq!(
            collection("/contacts/{contactId}/notes/{id}", "id").as_deref(),
            Some("/contacts/{contactId}/notes")
        );
        assert_eq!(collection("/opportunities/{id}", "id").as_deref(), Some("/opportunities/search"));
        assert_eq!(collection("/users/{userId}", "userId").as_deref(), Some("/users/"));
        let creator = c.creator_of(get("/contacts/{contactId}"), "contactId").map(|o| o.path.clone());
        assert_eq!(creator.as_deref(), Some("/contacts/"));
    }

    #[test]
    fn requests_name_the_location_where_the_operation_takes_one() {
        let c = Contract::embedded().unwrap();
        let op = c.operation(&Method::GET, "/opportunities/search").unwrap();
        let call = request(op, "LOC", &[], 1);
        assert!(call.query.contains(&("location_id".to_string(), "LOC".to_string())), "{call:?}");
        let op = c.operation(&Method::GET, "/locations/{locationId}").unwrap();
        assert_eq!(request(op, "LOC", &[], 1).path, "/locations/LOC");
        let op = c.operation(&Method::POST, "/contacts/").unwrap();
        let Some(crate::client::Body::Json(body)) = request(op, "LOC", &[], 1).body else { panic!("no body") };
        assert_eq!(body["locationId"], json!("LOC"));
        assert!(op.body.as_ref().unwrap().validator.as_ref().unwrap().is_valid(&body), "{body}");
    }

    #[test]
    fn a_location_pit_is_admitted_by_bearer_and_location_access_only() {
        let c = Contract::embedded().unwrap();
        let all = c.location_scopes();
        let token = c.operation(&Method::POST, "/oauth/locationToken").unwrap();
        assert!(pit_requirements(token).is_empty(), "agency-only operations take no location PIT");
        let users = c.operation(&Method::GET, "/users/{userId}").unwrap();
        assert!(pit_may_call(users, &all));
        let mut low = all.clone();
        low.remove("users.readonly");
        assert_eq!(missing_scopes(users, &low), vec!["users.readonly".to_string()]);
    }

    #[test]
    fn ids_are_read_from_the_first_list_of_records() {
        assert_eq!(first_id(&json!({"contacts": [{"id": "a"}, {"id": "b"}], "meta": {}})).as_deref(), Some("a"));
        assert_eq!(first_id(&json!({"data": {"items": [{"id": "x"}]}})).as_deref(), Some("x"));
        assert_eq!(first_id(&json!({"contacts": []})), None);
        assert_eq!(created_id(&json!({"contact": {"id": "c"}})).as_deref(), Some("c"));
    }
}
