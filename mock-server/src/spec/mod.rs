//! The loaded API surface: OpenAPI files → an operation table and a router.
//!
//! Everything per-endpoint the mock knows comes from here: security
//! requirements, parameters, where a request names its location, the request
//! body schema and the success answer. Loading never gives up on a whole file
//! for one bad object: each problem becomes a [`Warning`] naming the file and
//! JSON pointer, and the rest is served. Only a file that cannot be parsed, or
//! is not OpenAPI at all, is refused (a [`FileError`]).
//!
//! Nothing in this module looks at tokens, clocks or state.

mod docs;
pub mod resources;
mod router;
pub mod schema;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::Method;
use serde_json::{Map, Value};

pub use docs::Source;

/// Parses a JSON or YAML document (by the name's extension) into a value.
pub fn parse_document(name: &str, text: &str) -> Result<Value, String> {
    docs::parse(name, text)
}
pub use router::{Match, Router};
pub use schema::Direction;

/// The specs compiled into the binary: the project's own files under `specs/`.
pub static EMBEDDED: &[(&str, &str)] = &[
    ("specs/calendars.yaml", include_str!("../../../specs/calendars.yaml")),
    ("specs/common.yaml", include_str!("../../../specs/common.yaml")),
    ("specs/contacts.yaml", include_str!("../../../specs/contacts.yaml")),
    ("specs/conversations.yaml", include_str!("../../../specs/conversations.yaml")),
    ("specs/locations.yaml", include_str!("../../../specs/locations.yaml")),
    ("specs/oauth.yaml", include_str!("../../../specs/oauth.yaml")),
    ("specs/opportunities.yaml", include_str!("../../../specs/opportunities.yaml")),
    ("specs/users.yaml", include_str!("../../../specs/users.yaml")),
];

/// What kind of problem a warning reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WarningKind {
    UnresolvedRef,
    RefCycle,
    /// References that refer on and on without a cycle, past the depth bound.
    RefTooDeep,
    BadSchema,
    UndeclaredPathParam,
    BadParameter,
    DuplicateOperationId,
    DuplicateRoute,
    NotStrictOpenApi,
    InvalidExample,
    NoResponseSchema,
    HeaderWithoutSchema,
    /// The schema asks for more than the answer generator makes (a huge
    /// `minLength`, `minItems`, nesting or total size); the answer was cut.
    GeneratorClamped,
}

/// A problem in a spec file that the loader survived.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub file: String,
    pub pointer: String,
    pub kind: WarningKind,
    pub message: String,
}

impl Warning {
    pub fn new(file: &str, pointer: &str, kind: WarningKind, message: String) -> Self {
        Self { file: file.to_string(), pointer: pointer.to_string(), kind, message }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}: {:?}: {}", self.file, self.pointer, self.kind, self.message)
    }
}

/// A file the loader refused as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct FileError {
    pub file: String,
    pub message: String,
}

/// Per-file summary for `check-specs`.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub file: String,
    pub operations: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
    Header,
    Cookie,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: ParamIn,
    pub required: bool,
    /// JSON Schema (request direction) of the value (shared by every
    /// parameter with the same schema).
    pub schema: Arc<Value>,
    pub validator: Option<Arc<jsonschema::Validator>>,
}

#[derive(Debug, Clone)]
pub struct RequestBody {
    pub required: bool,
    /// Media types the operation accepts, as written in the spec.
    pub content_types: Vec<String>,
    /// JSON Schema (request direction) of a JSON, form or multipart body.
    pub schema: Option<Arc<Value>>,
    pub validator: Option<Arc<jsonschema::Validator>>,
}

/// Where a request names the location it acts on (BEHAVIOUR.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationSource {
    Path(String),
    Query(String),
    Body(String),
    /// `altId` with `altType=location`, in the query or the body.
    AltIdQuery,
    AltIdBody,
}

/// The answer an operation gives when all is well.
#[derive(Debug, Clone)]
pub struct Success {
    pub status: u16,
    /// JSON Schema (response direction) of the body, if the spec has one.
    pub schema: Option<Arc<Value>>,
    pub validator: Option<Arc<jsonschema::Validator>>,
    /// Named examples that validate, for `Prefer: example=NAME`.
    pub examples: Vec<(String, Value)>,
    /// The default body: a valid example, else a generated value.
    pub body: Bytes,
}

/// One security requirement object: every scheme in it, with its scopes,
/// must be satisfied. Several objects on an operation mean OR.
pub type Requirement = Vec<(String, Vec<String>)>;

#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub file: String,
    pub method: Method,
    pub path: String,
    /// Empty means the operation is public.
    pub security: Vec<Requirement>,
    pub params: Vec<Param>,
    pub body: Option<RequestBody>,
    pub success: Success,
    /// Every other declared response, for `Prefer: code=NNN`.
    pub alternatives: Vec<Alternative>,
    pub location: Vec<LocationSource>,
    /// The API generation the operation belongs to.
    pub era: Era,
    /// The last echoed answer (see the pipeline's `echoed`), by the values echoed.
    pub echo_memo: EchoMemo,
}

/// The default answer with a request's values echoed in is a pure function
/// of those values: the last one is kept, so a client that repeats a call
/// (the usual case: the same location, the same ids) gets the bytes without
/// the parse, echo, check and write of the answer each time.
#[derive(Debug, Clone, Default)]
pub struct EchoMemo(Arc<std::sync::Mutex<Option<Echoed>>>);

/// Echoed values and the answer they make.
type Echoed = (Vec<(String, Value)>, Bytes);

impl EchoMemo {
    /// The answer kept for exactly these values.
    pub fn get(&self, values: &[(String, Value)]) -> Option<Bytes> {
        let held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.as_ref().filter(|(kept, _)| kept.as_slice() == values).map(|(_, bytes)| bytes.clone())
    }

    pub fn put(&self, values: Vec<(String, Value)>, bytes: Bytes) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((values, bytes));
    }
}

/// An API generation (BEHAVIOUR.md §8): the dated versions (`2021-04-15` …
/// `2023-02-21`) share one surface; `v3` has its own, in HighLevel's
/// `apps/v3/*-v3.json` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Era {
    V2,
    V3,
}

impl Era {
    /// The generation a `Version` header value asks for; `None` for no value
    /// or one that names neither (the version check refuses those).
    pub fn asked(version: Option<&str>) -> Option<Era> {
        let v = version?.trim();
        let dated = v.len() == 10
            && v.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        match v {
            "v3" => Some(Era::V3),
            _ if dated => Some(Era::V2),
            _ => None,
        }
    }

    /// The generation of an operation: by the values its `Version` header
    /// accepts (`["v3"]` in HighLevel's v3 files), else by where its file
    /// sits (`v3/` or a `-v3` name).
    fn of(params: &[Param], file: &str) -> Era {
        let accepted = params
            .iter()
            .find(|p| p.location == ParamIn::Header && p.name.eq_ignore_ascii_case("version"))
            .and_then(|p| p.schema.get("enum"))
            .and_then(Value::as_array)
            .map(|values| {
                values.iter().filter_map(Value::as_str).filter_map(|v| Era::asked(Some(v))).collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if !accepted.is_empty() {
            return if accepted.iter().all(|e| *e == Era::V3) { Era::V3 } else { Era::V2 };
        }
        let path = std::path::Path::new(file);
        let in_v3_folder = path.parent().is_some_and(|dir| dir.components().any(|c| c.as_os_str() == "v3"));
        let v3_name = path.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.ends_with("-v3"));
        if in_v3_folder || v3_name {
            Era::V3
        } else {
            Era::V2
        }
    }
}

/// A declared response other than the success one.
#[derive(Debug, Clone)]
pub struct Alternative {
    pub status: u16,
    /// JSON Schema (response direction), if the response has one.
    pub schema: Option<Arc<Value>>,
    pub examples: Vec<(String, Value)>,
}

impl Operation {
    pub fn param(&self, name: &str, location: ParamIn) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name && p.location == location)
    }

    /// Every scope named by any requirement of the operation.
    pub fn scopes(&self) -> BTreeSet<&str> {
        self.security.iter().flatten().flat_map(|(_, s)| s.iter().map(String::as_str)).collect()
    }
}

/// A loaded spec set.
#[derive(Debug)]
pub struct SpecSet {
    pub operations: Vec<Operation>,
    /// The operations of the dated versions.
    pub router: Router,
    /// The operations of `v3`, when any v3 file is loaded.
    pub router_v3: Router,
    /// First path segments (lowercased) that have v3 operations: there, a
    /// path the v3 files leave out was removed in v3.
    pub v3_services: BTreeSet<String>,
    pub warnings: Vec<Warning>,
    pub errors: Vec<FileError>,
    pub files: Vec<FileSummary>,
    /// The resources inferred from the operations, and each operation's binding.
    pub resources: resources::Table,
}

impl SpecSet {
    pub fn find(&self, method: &Method, path: &str) -> Match {
        self.router.find(method, path)
    }

    /// As [`SpecSet::find`], literal segments in any case when `any_case`.
    pub fn find_with(&self, method: &Method, path: &str, any_case: bool) -> Match {
        self.router.find_with(method, path, any_case)
    }

    /// Issue 14: the operation for a request, by the generation its
    /// `Version` header asks for (BEHAVIOUR.md §8). With no v3 file loaded,
    /// every version reaches the one surface (the live API serves its
    /// established paths under any published version). Otherwise `v3` reaches
    /// the v3 operations, and a dated path the v3 files leave out of a service
    /// they cover was removed in v3; a dated version never reaches a v3-only
    /// path. A request without a usable version tries both, so that the
    /// version check can say what is wrong.
    /// With `serve_removed`, a removed path is served by its dated operation.
    pub fn route(
        &self,
        method: &Method,
        path: &str,
        any_case: bool,
        version: Option<&str>,
        serve_removed: bool,
    ) -> Match {
        if self.v3_services.is_empty() {
            return self.router.find_with(method, path, any_case);
        }
        match Era::asked(version) {
            Some(Era::V2) => self.router.find_with(method, path, any_case),
            Some(Era::V3) => match self.router_v3.find_with(method, path, any_case) {
                found @ Match::Found(..) => found,
                in_v3 => match self.router.find_with(method, path, any_case) {
                    Match::Found(i, _) if !serve_removed && self.covered_by_v3(path) && !self.declares_v3(i) => {
                        Match::RemovedInV3
                    }
                    found @ Match::Found(..) => found,
                    in_v2 if matches!(in_v3, Match::NotFound) => in_v2,
                    _ => in_v3,
                },
            },
            None => match self.router.find_with(method, path, any_case) {
                found @ Match::Found(..) => found,
                in_v2 => match self.router_v3.find_with(method, path, any_case) {
                    found @ Match::Found(..) => found,
                    in_v3 if matches!(in_v2, Match::NotFound) => in_v3,
                    _ => in_v2,
                },
            },
        }
    }

    /// Whether operation `index` (of a dated file) lists `v3` in its `Version` enum.
    fn declares_v3(&self, index: usize) -> bool {
        self.operations
            .get(index)
            .and_then(|o| o.param("Version", ParamIn::Header))
            .and_then(|p| p.schema.get("enum"))
            .and_then(Value::as_array)
            .is_some_and(|values| values.iter().any(|v| v.as_str() == Some("v3")))
    }

    /// Whether the v3 files hold operations of the service `path` belongs to.
    fn covered_by_v3(&self, path: &str) -> bool {
        router::segments(path).next().is_some_and(|first| self.v3_services.contains(&first.to_ascii_lowercase()))
    }

    pub fn operation(&self, index: usize) -> Option<&Operation> {
        self.operations.get(index)
    }

    /// True when operation `index` answers from state (it is bound to a resource).
    pub fn stateful(&self, index: usize) -> bool {
        self.resources.binding(index).is_some()
    }

    /// Every scope any operation names, sorted.
    pub fn scopes(&self) -> BTreeSet<&str> {
        self.operations.iter().flat_map(|o| o.scopes()).collect()
    }
}

/// Why nothing could be served.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Source(String),
    #[error("no servable OpenAPI operations found{}", describe(.0))]
    NothingServable(Box<SpecSet>),
}

/// Says, file by file, why nothing could be served.
fn describe(set: &SpecSet) -> String {
    if set.errors.is_empty() && set.files.is_empty() {
        return String::from(" (no .json, .yaml or .yml file found)");
    }
    // Error messages already start with their file's name.
    let mut lines: Vec<String> = set.errors.iter().map(|e| format!("\n  {}", e.message)).collect();
    for file in set.files.iter().filter(|f| f.operations == 0) {
        let warned: Vec<&Warning> = set.warnings.iter().filter(|w| w.file == file.file).collect();
        match warned.first() {
            Some(w) => lines.push(format!(
                "\n  {}: no operation could be served ({} warnings; the first: {w})",
                file.file,
                warned.len()
            )),
            None => lines.push(format!("\n  {}: holds no operations (only shared components?)", file.file)),
        }
    }
    format!(":{}", lines.concat())
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Loads every spec file of a source. `seed` makes generated answers repeatable.
pub fn load(source: Source, seed: u64) -> Result<SpecSet, LoadError> {
    let mut store = docs::DocStore::new(source);
    let keys = store.top_level_keys().map_err(LoadError::Source)?;
    let mut set = SpecSet {
        operations: Vec::new(),
        router: Router::default(),
        router_v3: Router::default(),
        v3_services: BTreeSet::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
        files: Vec::new(),
        resources: resources::Table::default(),
    };
    // Operation ids are unique within a generation: v3 files reuse v2's.
    let mut seen_ids: std::collections::HashMap<(Era, String), String> = Default::default();
    let mut shared = Shared::default();
    for key in keys {
        let doc = match store.get(&key) {
            Ok(doc) => doc.clone(),
            Err(message) => {
                set.errors.push(FileError { file: key.clone(), message });
                continue;
            }
        };
        let Some(version) = doc.get("openapi").and_then(Value::as_str) else {
            set.errors.push(FileError {
                file: key.clone(),
                message: format!("{key}: not an OpenAPI document (no `openapi` field)"),
            });
            continue;
        };
        if !version.starts_with("3.") {
            set.errors.push(FileError {
                file: key.clone(),
                message: format!("{key}: OpenAPI {version} is not supported (3.0.x is)"),
            });
            continue;
        }
        if let Err(e) = <openapiv3::OpenAPI as serde::Deserialize>::deserialize(&doc) {
            set.warnings.push(Warning::new(
                &key,
                "",
                WarningKind::NotStrictOpenApi,
                format!("a strict OpenAPI 3.0 reader rejects this file ({e}); serving it leniently"),
            ));
        }
        let before = set.operations.len();
        load_file(&mut store, &mut shared, &key, &doc, seed, &mut set, &mut seen_ids);
        // Done with it: what it inlined is in the operations now (a later
        // file that refers to it reads it again).
        drop(doc);
        store.forget(&key);
        set.files.push(FileSummary { file: key, operations: set.operations.len() - before });
    }
    if set.operations.is_empty() {
        return Err(LoadError::NothingServable(Box::new(set)));
    }
    set.resources = resources::infer(&set.operations);
    Ok(set)
}

fn load_file(
    store: &mut docs::DocStore,
    shared: &mut Shared,
    key: &str,
    doc: &Value,
    seed: u64,
    set: &mut SpecSet,
    seen_ids: &mut std::collections::HashMap<(Era, String), String>,
) {
    let paths = match doc.get("paths") {
        Some(Value::Object(paths)) => paths,
        // A file of shared components only.
        None => return,
        Some(other) => {
            let kind = match other {
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            };
            set.errors.push(FileError {
                file: key.to_string(),
                message: format!("{key}: `paths` is {kind}, not an object of paths"),
            });
            return;
        }
    };
    let global_security = doc.get("security");
    for (path, item) in paths {
        let item_pointer = format!("/paths/{}", path.replace('~', "~0").replace('/', "~1"));
        let Value::Object(item) = store.inline(key, item, &item_pointer, &mut set.warnings) else {
            set.warnings.push(Warning::new(
                key,
                &item_pointer,
                WarningKind::BadSchema,
                "path item is not an object; skipped".into(),
            ));
            continue;
        };
        let shared_params = item.get("parameters").cloned().unwrap_or(Value::Null);
        for method_name in METHODS {
            let Some(Value::Object(op)) = item.get(*method_name) else {
                continue;
            };
            let Ok(method) = Method::from_bytes(method_name.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            let pointer = format!("{item_pointer}/{method_name}");
            let mut ctx = OpCtx { key, pointer: &pointer, warnings: &mut set.warnings, shared: &mut *shared };
            let mut operation = ctx.operation(op, method.clone(), path, &shared_params, global_security, seed);
            operation.era = Era::of(&operation.params, key);
            let id_key = (operation.era, operation.id.clone());
            if let Some(first) = seen_ids.get(&id_key) {
                ctx.warn(
                    WarningKind::DuplicateOperationId,
                    format!("operationId '{}' is also used in {first}", operation.id),
                );
            } else {
                seen_ids.insert(id_key, key.to_string());
            }
            let index = set.operations.len();
            let router = match operation.era {
                Era::V2 => &mut set.router,
                Era::V3 => &mut set.router_v3,
            };
            match router.insert(method.clone(), path, index) {
                Ok(()) => {
                    operation.file = key.rsplit('/').next().unwrap_or(key).to_string();
                    if operation.era == Era::V3 {
                        if let Some(first) = router::segments(path).next() {
                            set.v3_services.insert(first.to_ascii_lowercase());
                        }
                    }
                    set.operations.push(operation);
                }
                Err(existing) => {
                    let other =
                        set.operations.get(existing).map(|o| format!("{} in {}", o.id, o.file)).unwrap_or_default();
                    ctx.warn(
                        WarningKind::DuplicateRoute,
                        format!("{method} {path} is already served by {other}; this one is ignored"),
                    );
                }
            }
        }
    }
}

struct OpCtx<'a> {
    key: &'a str,
    pointer: &'a str,
    warnings: &'a mut Vec<Warning>,
    shared: &'a mut Shared,
}

/// Issue 17: schemas and validators that repeat across operations and files
/// (a `{"type": "string"}` parameter, the 401 and 422 bodies, the
/// `common-schemas.json` types inlined everywhere), kept once and shared.
#[derive(Default)]
struct Shared {
    schemas: std::collections::HashMap<String, Arc<Value>>,
    /// By schema: the validator and whether patterns had to be left out, or why it failed.
    validators: std::collections::HashMap<String, Result<(Arc<jsonschema::Validator>, bool), String>>,
}

impl Shared {
    /// The one copy of `schema`.
    fn schema(&mut self, schema: Value) -> Arc<Value> {
        let text = serde_json::to_string(&schema).unwrap_or_default();
        self.schemas.entry(text).or_insert_with(|| Arc::new(schema)).clone()
    }

    /// The one validator of `schema`.
    fn validator(&mut self, schema: &Value) -> Result<(Arc<jsonschema::Validator>, bool), String> {
        let text = serde_json::to_string(schema).unwrap_or_default();
        self.validators
            .entry(text)
            .or_insert_with(|| compile_lenient(schema).map(|(v, stripped)| (Arc::new(v), stripped)))
            .clone()
    }
}

impl OpCtx<'_> {
    fn warn(&mut self, kind: WarningKind, message: String) {
        self.warnings.push(Warning::new(self.key, self.pointer, kind, message));
    }

    fn operation(
        &mut self,
        op: &Map<String, Value>,
        method: Method,
        path: &str,
        shared_params: &Value,
        global_security: Option<&Value>,
        seed: u64,
    ) -> Operation {
        let id = op
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{method} {path}"));
        let params = self.params(shared_params, op.get("parameters"), path);
        let body = self.request_body(op.get("requestBody"));
        let security = self.security(op.get("security").or(global_security));
        let location = location_sources(&params, body.as_ref());
        let success = self.success(op.get("responses"), &id, seed);
        let alternatives = self.alternatives(op.get("responses"), success.status);
        Operation {
            id,
            file: String::new(),
            method,
            path: path.to_string(),
            security,
            params,
            body,
            success,
            alternatives,
            location,
            era: Era::V2,
            echo_memo: EchoMemo::default(),
        }
    }

    fn security(&mut self, security: Option<&Value>) -> Vec<Requirement> {
        let Some(Value::Array(reqs)) = security else {
            return Vec::new();
        };
        reqs.iter()
            .filter_map(|req| match serde_json::from_value::<openapiv3::SecurityRequirement>(req.clone()) {
                Ok(r) => Some(r.into_iter().collect()),
                Err(e) => {
                    self.warn(WarningKind::BadSchema, format!("security requirement is malformed ({e}); ignored"));
                    None
                }
            })
            .collect()
    }

    fn params(&mut self, shared: &Value, own: Option<&Value>, path: &str) -> Vec<Param> {
        let mut out: Vec<Param> = Vec::new();
        for (list, pointer) in [(Some(shared), "parameters (path item)"), (own, "parameters")] {
            let Some(Value::Array(list)) = list else { continue };
            for (i, raw) in list.iter().enumerate() {
                let Some(param) = self.param(raw, &format!("{pointer}/{i}")) else {
                    continue;
                };
                // Operation-level parameters override path-level ones.
                out.retain(|p| !(p.name == param.name && p.location == param.location));
                out.push(param);
            }
        }
        for seg in router::segments(path) {
            let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                continue;
            };
            if out.iter().any(|p| p.location == ParamIn::Path && p.name == name) {
                continue;
            }
            self.warn(
                WarningKind::UndeclaredPathParam,
                format!("path parameter '{name}' is used in the path but not declared; taken as a required string"),
            );
            let schema = self.shared.schema(serde_json::json!({"type": "string"}));
            let validator = self.validator(&schema, "path parameter");
            out.push(Param { name: name.to_string(), location: ParamIn::Path, required: true, schema, validator });
        }
        out
    }

    fn param(&mut self, raw: &Value, pointer: &str) -> Option<Param> {
        let (location, data) = match serde_json::from_value::<openapiv3::Parameter>(raw.clone()) {
            Ok(openapiv3::Parameter::Path { parameter_data, .. }) => (ParamIn::Path, parameter_data),
            Ok(openapiv3::Parameter::Query { parameter_data, .. }) => (ParamIn::Query, parameter_data),
            Ok(openapiv3::Parameter::Header { parameter_data, .. }) => (ParamIn::Header, parameter_data),
            Ok(openapiv3::Parameter::Cookie { parameter_data, .. }) => (ParamIn::Cookie, parameter_data),
            Err(e) => {
                self.warn(WarningKind::BadParameter, format!("parameter at {pointer} is malformed ({e}); ignored"));
                return None;
            }
        };
        let schema = match raw.get("schema") {
            Some(s) => schema::convert(
                s,
                Direction::Request,
                self.key,
                &format!("{}/{pointer}/schema", self.pointer),
                self.warnings,
            ),
            None => Value::Object(Map::new()),
        };
        let schema = self.shared.schema(schema);
        let validator = self.validator(&schema, &format!("parameter '{}'", data.name));
        Some(Param {
            name: data.name,
            location,
            required: data.required || location == ParamIn::Path,
            schema,
            validator,
        })
    }

    /// A compiled request-side validator, or a warning and none.
    fn validator(&mut self, schema: &Value, what: &str) -> Option<Arc<jsonschema::Validator>> {
        match self.shared.validator(schema) {
            Ok((v, stripped)) => {
                if stripped {
                    self.warn(
                        WarningKind::BadSchema,
                        format!("{what}: patterns the validator cannot compile are not checked"),
                    );
                }
                Some(v)
            }
            Err(e) => {
                self.warn(WarningKind::BadSchema, format!("{what}: schema cannot be compiled ({e}); not validated"));
                None
            }
        }
    }

    fn request_body(&mut self, body: Option<&Value>) -> Option<RequestBody> {
        let body = body?;
        let content = body.get("content").and_then(Value::as_object);
        let content_types: Vec<String> = content.map(|c| c.keys().cloned().collect()).unwrap_or_default();
        let schema = content.and_then(|c| {
            c.iter()
                .find(|(t, _)| {
                    t.contains("json") || t.contains("x-www-form-urlencoded") || t.contains("multipart/form-data")
                })
                .and_then(|(_, media)| media.get("schema"))
        });
        let schema = schema.map(|s| {
            let converted = schema::convert(
                s,
                Direction::Request,
                self.key,
                &format!("{}/requestBody", self.pointer),
                self.warnings,
            );
            self.shared.schema(converted)
        });
        let validator = schema.as_ref().and_then(|s| self.validator(s, "request body"));
        Some(RequestBody {
            required: body.get("required") == Some(&Value::Bool(true)),
            content_types,
            schema,
            validator,
        })
    }

    fn alternatives(&mut self, responses: Option<&Value>, success: u16) -> Vec<Alternative> {
        let Some(responses) = responses.and_then(Value::as_object) else { return Vec::new() };
        let mut out = Vec::new();
        for (code, response) in responses {
            let Some(status) = code.parse::<u16>().ok().filter(|c| *c != success && (100..600).contains(c)) else {
                continue;
            };
            let media = json_media(response);
            // Problems of these schemas were not asked about; they stay quiet.
            let mut quiet = Vec::new();
            let schema = media
                .and_then(|m| m.get("schema"))
                .map(|raw| schema::convert(raw, Direction::Response, self.key, self.pointer, &mut quiet))
                .map(|converted| self.shared.schema(converted));
            out.push(Alternative { status, examples: examples_of(media, None), schema });
        }
        out.sort_by_key(|a| a.status);
        out
    }

    fn success(&mut self, responses: Option<&Value>, id: &str, seed: u64) -> Success {
        let chosen = responses.and_then(Value::as_object).and_then(|r| {
            let mut codes: Vec<(u16, &Value)> = r
                .iter()
                .filter_map(|(code, v)| code.parse::<u16>().ok().filter(|c| (200..300).contains(c)).map(|c| (c, v)))
                .collect();
            codes.sort_by_key(|(c, _)| *c);
            codes.into_iter().next()
        });
        let Some((status, response)) = chosen else {
            self.warn(
                WarningKind::NoResponseSchema,
                "no 2xx response declared; answering 200 with an empty object".into(),
            );
            return crate::respond::success_without_schema(200);
        };
        if let Some(Value::Object(headers)) = response.get("headers") {
            for (name, header) in headers {
                if header.get("schema").is_none() && header.get("content").is_none() {
                    self.warn(
                        WarningKind::HeaderWithoutSchema,
                        format!("response header '{name}' has no schema; ignored"),
                    );
                }
            }
        }
        let media = json_media(response);
        let Some(raw_schema) = media.and_then(|m| m.get("schema")) else {
            self.warn(
                WarningKind::NoResponseSchema,
                format!("{status} response has no schema; answering an empty object"),
            );
            return crate::respond::success_without_schema(status);
        };
        let pointer = format!("{}/responses/{status}", self.pointer);
        let converted = schema::convert(raw_schema, Direction::Response, self.key, &pointer, self.warnings);
        let validator = match self.shared.validator(&converted) {
            Ok((v, stripped)) => {
                if stripped {
                    self.warn(
                        WarningKind::BadSchema,
                        "response schema has patterns the validator cannot compile; checked without them".into(),
                    );
                }
                Some(v)
            }
            Err(e) => {
                self.warn(
                    WarningKind::BadSchema,
                    format!("response schema cannot be compiled ({e}); answers are not checked"),
                );
                None
            }
        };
        let candidates = examples_of(media, Some(raw_schema));
        let mut examples = Vec::new();
        for (name, value) in candidates {
            match &validator {
                Some(v) if !v.is_valid(&value) => {
                    let why = v
                        .iter_errors(&value)
                        .next()
                        .map(|e| format!("{} at '{}'", e, e.instance_path()))
                        .unwrap_or_default();
                    self.warn(
                        WarningKind::InvalidExample,
                        format!("example '{name}' does not match its own schema ({why}); never served"),
                    );
                }
                _ => examples.push((name, value)),
            }
        }
        let schema = self.shared.schema(converted);
        let rng_seed = seed ^ fnv1a(id.as_bytes());
        let body = crate::respond::default_body(&schema, validator.as_deref(), &examples, rng_seed);
        if !body.clamped.is_empty() {
            let cuts: Vec<String> = body.clamped.iter().map(ToString::to_string).collect();
            self.warn(WarningKind::GeneratorClamped, format!("the generated answer was cut: {}", cuts.join("; ")));
        }
        if let Some(problem) = body.problem {
            self.warn(
                WarningKind::BadSchema,
                format!("no generated answer satisfies the response schema ({problem}); serving the closest one"),
            );
        }
        Success { status, schema: Some(schema), validator, examples, body: body.bytes }
    }
}

/// The media type object of a response that carries JSON (or its only one).
fn json_media(response: &Value) -> Option<&Value> {
    response
        .get("content")
        .and_then(Value::as_object)
        .and_then(|c| c.iter().find(|(t, _)| t.contains("json")).or_else(|| c.iter().next()))
        .map(|(_, m)| m)
}

/// Examples of a response, by name: the media type's `example` ("default"),
/// its named `examples`, and the schema's own `example` ("schema").
fn examples_of(media: Option<&Value>, schema: Option<&Value>) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    if let Some(m) = media {
        if let Some(example) = m.get("example") {
            out.push(("default".into(), example.clone()));
        }
        if let Some(Value::Object(named)) = m.get("examples") {
            for (name, ex) in named {
                if let Some(value) = ex.get("value") {
                    out.push((name.clone(), value.clone()));
                }
            }
        }
    }
    if let Some(example) = schema.or_else(|| media.and_then(|m| m.get("schema"))).and_then(|s| s.get("example")) {
        out.push(("schema".into(), example.clone()));
    }
    out
}

/// The shared corpus of official files, for unit tests: None (said loudly)
/// when it is absent, a failure when `GHL_REQUIRE_SHARED=1` asks for it.
#[cfg(test)]
pub(crate) fn shared_corpus() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/highlevel-openapi/apps");
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var("GHL_REQUIRE_SHARED").is_ok_and(|v| v == "1");
    assert!(!required, "GHL_REQUIRE_SHARED=1 but the shared corpus is missing at {}", dir.display());
    eprintln!("\n!!! SKIPPED: the shared spec corpus is not at {} !!!\n", dir.display());
    None
}

/// Compiles a schema; if a `pattern` is beyond the regex engine, retries
/// without patterns (and says so) rather than leaving the operation unchecked.
pub fn compile_lenient(schema: &Value) -> Result<(jsonschema::Validator, bool), String> {
    match schema::compile(schema) {
        Ok(v) => Ok((v, false)),
        Err(first) => {
            let mut stripped = schema.clone();
            strip_key(&mut stripped, "pattern");
            schema::compile(&stripped).map(|v| (v, true)).map_err(|_| first)
        }
    }
}

fn strip_key(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            if map.get(key).is_some_and(Value::is_string) {
                map.remove(key);
            }
            map.values_mut().for_each(|v| strip_key(v, key));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip_key(v, key)),
        _ => {}
    }
}

fn location_sources(params: &[Param], body: Option<&RequestBody>) -> Vec<LocationSource> {
    let mut out = Vec::new();
    for p in params {
        match (p.location, p.name.as_str()) {
            (ParamIn::Path, "locationId") => out.push(LocationSource::Path(p.name.clone())),
            (ParamIn::Query, "locationId" | "location_id") => out.push(LocationSource::Query(p.name.clone())),
            (ParamIn::Query, "altId") if params.iter().any(|q| q.name == "altType") => {
                out.push(LocationSource::AltIdQuery)
            }
            _ => {}
        }
    }
    if let Some(props) = body.and_then(|b| b.schema.as_ref()).and_then(|s| s.get("properties")) {
        if props.get("locationId").is_some() {
            out.push(LocationSource::Body("locationId".into()));
        }
        if props.get("altId").is_some() && props.get("altType").is_some() {
            out.push(LocationSource::AltIdBody);
        }
    }
    out
}

/// FNV-1a: a stable, dependency-free hash for per-operation seeds.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static MINI: &[(&str, &str)] = &[(
        "mini.yaml",
        r#"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /things/{thingId}:
    get:
      operationId: get-thing
      security: [{bearer: [things.readonly]}, {Agency-Access: [things.readonly, agency.x]}]
      parameters:
        - {name: Version, in: header, required: true, schema: {type: string, enum: ["2021-07-28"]}}
        - {name: locationId, in: query, required: true, schema: {type: string}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {type: object, required: [id], properties: {id: {type: string}}}
              example: {id: 42}
  /things/{thingId}/parts/{partId}:
    post:
      operationId: add-part
      responses: {"201": {description: created}}
"#,
    )];

    static TWO_ERAS: &[(&str, &str)] = &[
        (
            "apps/things.yaml",
            r#"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /things/{id}/old:
    get:
      parameters: [{name: Version, in: header, required: true, schema: {type: string, enum: ["2021-07-28"]}}]
      responses: {"200": {description: ok}}
  /things/{id}/both:
    get:
      parameters: [{name: Version, in: header, required: true, schema: {type: string, enum: ["2021-07-28", "v3"]}}]
      responses: {"200": {description: ok}}
  /things/{id}:
    get:
      operationId: get-thing
      responses: {"200": {description: ok}}
  /others/:
    get:
      responses: {"200": {description: ok}}
"#,
        ),
        (
            "apps/v3/things-v3.yaml",
            r#"
openapi: 3.0.3
info: {title: t, version: "3"}
paths:
  /things/{id}:
    get:
      operationId: get-thing
      parameters: [{name: Version, in: header, required: true, schema: {type: string, enum: ["v3"]}}]
      responses: {"200": {description: ok}}
  /things/new:
    post:
      responses: {"201": {description: created}}
"#,
        ),
    ];

    #[test]
    fn the_version_header_chooses_between_the_dated_and_the_v3_operations() {
        let set = load(Source::Embedded(TWO_ERAS), 1).unwrap();
        let era = |m: Match| match m {
            Match::Found(i, _) => Some(set.operations[i].era),
            _ => None,
        };
        let get = Method::GET;
        assert_eq!(era(set.route(&get, "/things/x", false, Some("v3"), false)), Some(Era::V3));
        assert_eq!(era(set.route(&get, "/things/x", false, Some("2021-07-28"), false)), Some(Era::V2));
        // Removed in v3: a dated path of a service the v3 files cover, unless it lists v3 itself.
        assert_eq!(set.route(&get, "/things/x/old", false, Some("v3"), false), Match::RemovedInV3);
        assert_eq!(era(set.route(&get, "/things/x/old", false, Some("v3"), true)), Some(Era::V2));
        assert_eq!(era(set.route(&get, "/things/x/both", false, Some("v3"), false)), Some(Era::V2));
        // Within v3, v3's own routes decide: its `{id}` takes what a dated literal would.
        assert_eq!(era(set.route(&get, "/things/new", false, Some("v3"), false)), Some(Era::V3));
        // A service the v3 files do not cover is served under v3 as before.
        assert_eq!(era(set.route(&get, "/others/", false, Some("v3"), false)), Some(Era::V2));
        // A v3-only path: not found with a dated version; reached without one (the version check refuses it).
        assert_eq!(era(set.route(&Method::POST, "/things/new", false, Some("2023-02-21"), false)), None);
        assert_eq!(era(set.route(&Method::POST, "/things/new", false, None, false)), Some(Era::V3));
        assert!(set.warnings.iter().all(|w| w.kind != WarningKind::DuplicateOperationId), "{:?}", set.warnings);
    }

    #[test]
    fn with_no_v3_file_every_version_reaches_the_one_surface() {
        let set = load(Source::Embedded(&TWO_ERAS[..1]), 1).unwrap();
        assert!(matches!(set.route(&Method::GET, "/things/x/old", false, Some("v3"), false), Match::Found(..)));
    }

    #[test]
    fn operations_carry_security_params_and_location_sources() {
        let set = load(Source::Embedded(MINI), 1).unwrap();
        let Match::Found(i, params) = set.find(&Method::GET, "/things/abc") else { panic!("not routed") };
        let op = &set.operations[i];
        assert_eq!(op.id, "get-thing");
        assert_eq!(params, vec![("thingId".to_string(), "abc".to_string())]);
        assert_eq!(op.security.len(), 2);
        assert_eq!(
            op.security[1],
            vec![("Agency-Access".to_string(), vec!["things.readonly".to_string(), "agency.x".to_string()])]
        );
        assert_eq!(op.location, vec![LocationSource::Query("locationId".into())]);
        assert!(op.param("Version", ParamIn::Header).is_some_and(|p| p.required));
    }

    #[test]
    fn an_example_that_breaks_its_schema_is_never_served() {
        let set = load(Source::Embedded(MINI), 1).unwrap();
        let op = set.operations.iter().find(|o| o.id == "get-thing").unwrap();
        let body: Value = serde_json::from_slice(&op.success.body).unwrap();
        assert_ne!(body, json!({"id": 42}));
        assert!(body["id"].is_string(), "{body}");
        assert!(set.warnings.iter().any(|w| w.kind == WarningKind::InvalidExample));
    }

    #[test]
    fn undeclared_path_params_are_warned_and_still_routed() {
        let set = load(Source::Embedded(MINI), 1).unwrap();
        let undeclared: Vec<_> = set.warnings.iter().filter(|w| w.kind == WarningKind::UndeclaredPathParam).collect();
        assert_eq!(undeclared.len(), 3, "{undeclared:?}");
        assert!(matches!(set.find(&Method::POST, "/things/a/parts/b"), Match::Found(..)));
    }

    #[test]
    fn an_operation_without_a_response_schema_answers_an_empty_object() {
        let set = load(Source::Embedded(MINI), 1).unwrap();
        let op = set.operations.iter().find(|o| o.id == "add-part").unwrap();
        assert_eq!(op.success.status, 201);
        assert_eq!(&op.success.body[..], b"{}");
    }

    #[test]
    fn a_file_that_is_not_openapi_is_refused_by_name() {
        static FILES: &[(&str, &str)] = &[("notes.json", r#"{"hello": "world"}"#), ("broken.json", "{")];
        let err = load(Source::Embedded(FILES), 1).unwrap_err().to_string();
        assert!(err.contains("notes.json: not an OpenAPI document"), "{err}");
        assert!(err.contains("broken.json: invalid JSON"), "{err}");
    }

    #[test]
    fn a_response_asking_for_a_huge_string_loads_at_once_with_a_clamp_warning() {
        static HUGE: &[(&str, &str)] = &[(
            "huge.yaml",
            r#"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /x:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {type: object, required: [name], properties: {name: {type: string, minLength: 1000000000}}}
"#,
        )];
        // That it does not hang is the loader suite's to show (bounded, on a thread).
        let set = load(Source::Embedded(HUGE), 1).unwrap();
        let cut: Vec<_> = set.warnings.iter().filter(|w| w.kind == WarningKind::GeneratorClamped).collect();
        assert_eq!(cut.len(), 1, "{:?}", set.warnings);
        assert_eq!(cut[0].pointer, "/paths/~1x/get");
        assert!(cut[0].message.contains("minLength 1000000000 at '/name' cut to 4096"), "{}", cut[0].message);
    }

    #[test]
    fn the_embedded_default_specs_load_without_errors() {
        let set = load(Source::Embedded(EMBEDDED), 1).unwrap();
        assert!(set.errors.is_empty(), "{:?}", set.errors);
        assert!(set.operations.len() >= 30, "{}", set.operations.len());
    }
}
