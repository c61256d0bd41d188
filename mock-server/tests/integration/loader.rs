//! The spec loader under attack: mutated copies of the official corpus and
//! hand-made hostile files, written to a scratch directory (the shared corpus
//! is only read). For each, `spec::load` returns Ok (with warnings) or an
//! error naming the file; it never panics and never hangs; and when it loads,
//! a mock serving the result answers its operations without a 5xx.
//!
//! Loads run on a thread with the binary's main-thread stack (8 MiB) under a
//! hang detector, with panics caught. Inputs that could take the whole test
//! binary down with them (a stack overflow, exhausted memory) run
//! `ghl-mock check-specs` in a child process instead, its memory capped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ghl_mock::spec::{self, Operation, SpecSet, WarningKind};
use ghl_mock::Source;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};

use crate::support::*;

/// A hang detector: the whole official corpus loads in well under a second.
const LOAD_BOUND: Duration = Duration::from_secs(30);
const REQUEST_BOUND: Duration = Duration::from_secs(20);
/// The main thread's stack, where the binary loads its specs.
const LOADER_STACK: usize = 8 * 1024 * 1024;
/// Address space for `check-specs` in a child: ample for the whole corpus.
const CHILD_MEMORY_KIB: u64 = 1_500_000;
/// The loader's size limit for one file (`MAX_FILE_BYTES` in the private `spec::docs`).
const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Scratch directories

/// `ROOT/apps` (what is loaded) and `ROOT/common` (what `../common/…` refers to);
/// removed when dropped.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Self {
        let root = scratch_dir(name);
        std::fs::create_dir_all(root.join("apps")).expect("apps dir");
        std::fs::create_dir_all(root.join("common")).expect("common dir");
        if let Some(common) = corpus_common() {
            for entry in std::fs::read_dir(common).expect("read common").flatten() {
                std::fs::copy(entry.path(), root.join("common").join(entry.file_name())).expect("copy common");
            }
        }
        Self { root }
    }

    fn apps(&self) -> PathBuf {
        self.root.join("apps")
    }

    fn write(&self, relative: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent dir");
        }
        std::fs::write(&path, bytes).expect("write spec");
        path
    }

    fn write_json(&self, relative: &str, value: &Value) -> PathBuf {
        self.write(relative, serde_json::to_vec_pretty(value).expect("json"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn corpus_common() -> Option<PathBuf> {
    let apps = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/highlevel-openapi/apps");
    let common = apps.parent()?.join("common");
    common.is_dir().then_some(common)
}

/// The corpus files, smallest first.
fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).expect("read corpus").flatten().map(|e| e.path()).collect();
    files.sort_by_key(|p| (std::fs::metadata(p).map(|m| m.len()).unwrap_or(0), p.clone()));
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Loading, bounded

enum Loaded {
    Ok(Box<SpecSet>),
    Err(String),
    Panicked(String),
    Hung,
}

/// `spec::load` of `dir` on its own thread: a panic is caught, a hang detected.
fn load_bounded(dir: &Path) -> Loaded {
    load_within(dir, LOAD_BOUND)
}

fn load_within(dir: &Path, bound: Duration) -> Loaded {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::Builder::new()
        .name("hostile-loader".into())
        .stack_size(LOADER_STACK)
        .spawn(move || {
            let result = std::panic::catch_unwind(move || spec::load(Source::Dir(dir), 1));
            let _ = tx.send(result);
        })
        .expect("loader thread");
    match rx.recv_timeout(bound) {
        Ok(Ok(Ok(set))) => Loaded::Ok(Box::new(set)),
        Ok(Ok(Err(e))) => Loaded::Err(e.to_string()),
        Ok(Err(panic)) => Loaded::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".into()),
        ),
        Err(_) => Loaded::Hung,
    }
}

/// Ok (with warnings), or an error naming `file`; never a panic or a hang.
fn loads_or_names(dir: &Path, file: &str) -> Result<Option<SpecSet>, String> {
    match load_bounded(dir) {
        Loaded::Ok(set) => Ok(Some(*set)),
        Loaded::Err(message) if message.contains(file) => Ok(None),
        Loaded::Err(message) => Err(format!("the load failed without naming {file}: {message}")),
        Loaded::Panicked(message) => Err(format!("the loader panicked: {message}")),
        Loaded::Hung => Err(format!("the loader did not finish within {LOAD_BOUND:?}")),
    }
}

/// `file` is refused by name (in the set's errors or the load's error), or
/// was read as an OpenAPI file: never silently dropped.
fn accounted_for(dir: &Path, file: &str) -> Result<(), String> {
    match loads_or_names(dir, file)? {
        None => Ok(()),
        Some(set) if set.files.iter().any(|f| f.file.ends_with(file)) => Ok(()),
        Some(set) if set.errors.iter().any(|e| e.file.ends_with(file) && e.message.contains(file)) => Ok(()),
        Some(set) => Err(format!("{file} is neither loaded nor refused; errors: {:?}", set.errors)),
    }
}

/// `file` is refused by name: in the set's errors, or in the load's error.
fn refused_by_name(dir: &Path, file: &str) -> Result<Option<SpecSet>, String> {
    match loads_or_names(dir, file)? {
        None => Ok(None),
        Some(set) if set.errors.iter().any(|e| e.file.ends_with(file) && e.message.contains(file)) => Ok(Some(set)),
        Some(set) => Err(format!("{file} loaded without being refused; errors: {:?}", set.errors)),
    }
}

fn has_warning(set: &SpecSet, kind: WarningKind, file: &str) -> bool {
    set.warnings.iter().any(|w| w.kind == kind && w.file.ends_with(file))
}

// ---------------------------------------------------------------------------
// Serving what loaded

/// Which fixture token may call `op`, as the corpus test chooses it.
fn token_for(op: &Operation) -> &'static str {
    let agency = op.security.iter().flatten().any(|(s, _)| s.starts_with("Agency"));
    if agency {
        "Agency PIT"
    } else {
        "Location PIT"
    }
}

/// Starts a mock on `set` and calls up to `max` of its operations (spread
/// over the table) with tokens holding every scope: no 5xx, no broken connection.
fn serve_a_few(set: SpecSet, max: usize) -> Result<(), String> {
    let scopes: Vec<String> =
        set.scopes().into_iter().map(|s| serde_json::to_string(s).expect("scope as a YAML string")).collect();
    let scopes = scopes.join(", ");
    let fixture = unlimited_fixture(&format!(
        "  - {{name: Location PIT, owner: {{location: {LOC_A}}}, scopes: [{scopes}]}}\n  \
         - {{name: Agency PIT, owner: {{company: {COMPANY}}}, scopes: [{scopes}]}}"
    ));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mock = TestMock::start(set, fixture).await;
        let spec = mock.mock.spec.clone();
        let count = spec.operations.len();
        let picked: Vec<usize> =
            if count <= max { (0..count).collect() } else { (0..max).map(|i| i * count / max).collect() };
        let mut problems = Vec::new();
        for (n, i) in picked.into_iter().enumerate() {
            let op = &spec.operations[i];
            let seed = n as u64;
            let path = filled_path(op, |p| fill(p, seed));
            let query = required_query(op, seed);
            let mut request = mock
                .http
                .request(op.method.clone(), format!("{}{path}", mock.url))
                .query(&query)
                .bearer_auth(mock.token(token_for(op)))
                .header("Version", VERSION);
            if let Some(schema) = op.body.as_ref().and_then(|b| b.schema.as_ref()) {
                request = request.json(&valid(schema, op.body.as_ref().and_then(|b| b.validator.as_deref()), seed));
            }
            let label = format!("{} {} ({})", op.method, op.path, op.id);
            match tokio::time::timeout(REQUEST_BOUND, request.send()).await {
                Ok(Ok(response)) if response.status().as_u16() >= 500 => {
                    let status = response.status().as_u16();
                    problems.push(format!("{label}: {status} {}", response.text().await.unwrap_or_default()))
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => problems.push(format!("{label}: the request failed: {e}")),
                Err(_) => problems.push(format!("{label}: no answer within {REQUEST_BOUND:?}")),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("serving what loaded: {}", problems.join("; ")))
        }
    })
}

// ---------------------------------------------------------------------------
// `check-specs` in a child, for inputs that may overflow the stack or exhaust memory

#[derive(Debug)]
enum Checked {
    Exited { code: Option<i32>, stdout: String, stderr: String },
    Hung,
}

fn check_specs_in_child(dir: &Path) -> Checked {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {CHILD_MEMORY_KIB} && exec \"$0\" check-specs --all \"$1\""))
        .arg(env!("CARGO_BIN_EXE_ghl-mock"))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start check-specs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + LOAD_BOUND;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Checked::Exited {
                code: status.code(),
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Checked::Hung;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `check-specs` finished on its own: loaded (0) or refused (2), not killed by a signal.
fn finished_cleanly(checked: &Checked) -> Result<&str, String> {
    match checked {
        Checked::Exited { code: Some(0 | 2), stdout, .. } => Ok(stdout),
        Checked::Exited { code, stderr, .. } => {
            let tail: String = stderr.chars().rev().take(600).collect::<Vec<_>>().into_iter().rev().collect();
            Err(format!("check-specs died (exit code {code:?}): {tail}"))
        }
        Checked::Hung => Err(format!("check-specs did not finish within {LOAD_BOUND:?}")),
    }
}

// ---------------------------------------------------------------------------
// A small spec to plant hostile pieces in

/// An answer of `status` with a JSON body of `schema`.
fn answer(status: &str, schema: Value) -> Value {
    json!({status: {"description": "answer", "content": {"application/json": {"schema": schema}}}})
}

/// One operation whose answer and request body use `schema`, beside a healthy one.
fn spec_with(schema: Value, schemas: Value) -> Value {
    let thing_id = json!([{"name": "thingId", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let healthy = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}});
    json!({
        "openapi": "3.0.3",
        "info": {"title": "hostile", "version": "1"},
        "paths": {
            "/things/{thingId}": {
                "get": {
                    "operationId": "get-thing",
                    "security": [{"bearer": ["things.readonly"]}],
                    "parameters": thing_id.clone(),
                    "responses": answer("200", schema.clone())
                },
                "post": {
                    "operationId": "post-thing",
                    "security": [{"bearer": ["things.write"]}],
                    "parameters": thing_id,
                    "requestBody": {"content": {"application/json": {"schema": schema.clone()}}},
                    "responses": answer("201", schema)
                }
            },
            "/healthy": {
                "get": {
                    "operationId": "healthy",
                    "security": [{"bearer": ["things.readonly"]}],
                    "responses": answer("200", healthy)
                }
            }
        },
        "components": {"schemas": schemas}
    })
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

const HOSTILE: &str = "hostile.json";

// ---------------------------------------------------------------------------
// Properties over the corpus

fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, max_shrink_iters: 32, ..ProptestConfig::default() }
}

fn run_property<S>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), String>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(proptest_config(cases));
    if let Err(e) = runner.run(&strategy, |value| test(value).map_err(TestCaseError::fail)) {
        panic!("{name}: {e}");
    }
}

/// Every node of a document, as JSON pointers.
fn pointers(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), value)];
    while let Some((pointer, v)) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    stack.push((format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")), child));
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    stack.push((format!("{pointer}/{i}"), child));
                }
            }
            _ => {}
        }
        out.push(pointer);
    }
    out.sort();
    out
}

const WRONG_TYPES: &[&str] = &[
    "42",
    "-1.5e300",
    "\"junk\"",
    "null",
    "true",
    "[]",
    "{}",
    "[null, \"x\", {}]",
    "{\"junk\": [1, {\"$ref\": 7}], \"type\": 9}",
    "{\"$ref\": \"#/nope\"}",
];

#[test]
fn corpus_files_truncated_anywhere_are_refused_by_name() {
    let Some(corpus) = corpus_dir() else { return };
    let files = corpus_files(&corpus);
    run_property("truncation", 48, (any::<Index>(), any::<Index>()), |(file, cut)| {
        let original = &files[file.index(files.len())];
        let name = file_name(original);
        let text = std::fs::read(original).expect("read corpus file");
        // Cut before the closing brace: what is left is never a whole document.
        let end = String::from_utf8_lossy(&text).trim_end().len();
        let cut = cut.index(end);
        let scratch = Scratch::new("truncated");
        scratch.write(&format!("apps/{name}"), &text[..cut]);
        let companion = if name == "campaigns.json" { "workflows.json" } else { "campaigns.json" };
        std::fs::copy(corpus.join(companion), scratch.apps().join(companion)).expect("copy companion");
        refused_by_name(&scratch.apps(), &name).map(drop).map_err(|e| format!("{name} cut at byte {cut}: {e}"))
    });
}

#[test]
fn corpus_files_with_values_of_the_wrong_type_load_with_warnings_or_are_refused_by_name() {
    let Some(corpus) = corpus_dir() else { return };
    let files: Vec<PathBuf> = corpus_files(&corpus).into_iter().take(16).collect();
    let wrong = prop::sample::select(WRONG_TYPES);
    run_property("wrong types", 64, (any::<Index>(), any::<Index>(), wrong), |(file, node, wrong)| {
        let original = &files[file.index(files.len())];
        let name = file_name(original);
        let mut doc: Value = serde_json::from_slice(&std::fs::read(original).expect("read")).expect("corpus JSON");
        let all = pointers(&doc);
        let pointer = all[node.index(all.len())].clone();
        let replacement: Value = serde_json::from_str(wrong).expect("replacement");
        match doc.pointer_mut(&pointer) {
            Some(slot) => *slot = replacement,
            None => return Err(format!("no node at {pointer}")),
        }
        let scratch = Scratch::new("wrong-type");
        scratch.write_json(&format!("apps/{name}"), &doc);
        let label = format!("{name} with {pointer} = {wrong}");
        match loads_or_names(&scratch.apps(), &name).map_err(|e| format!("{label}: {e}"))? {
            Some(set) => serve_a_few(set, 4).map_err(|e| format!("{label}: {e}")),
            None => Ok(()),
        }
    });
}

#[test]
fn reference_cycles_planted_anywhere_in_the_corpus_are_cut_and_nothing_hangs() {
    let Some(corpus) = corpus_dir() else { return };
    let files: Vec<PathBuf> = corpus_files(&corpus).into_iter().take(16).collect();
    run_property(
        "planted cycles",
        64,
        (any::<Index>(), any::<Index>(), any::<Index>(), any::<bool>()),
        |(file, node, ancestor, through_all_of)| {
            let original = &files[file.index(files.len())];
            let name = file_name(original);
            let mut doc: Value = serde_json::from_slice(&std::fs::read(original).expect("read")).expect("corpus JSON");
            let all = pointers(&doc);
            let pointer = all[node.index(all.len())].clone();
            // The node itself, the whole document, or anything on the way down to it.
            let mut ancestors = vec![String::new()];
            ancestors.extend(pointer.match_indices('/').skip(1).map(|(i, _)| pointer[..i].to_string()));
            ancestors.push(pointer.clone());
            let target = &ancestors[ancestor.index(ancestors.len())];
            let reference = json!({"$ref": format!("#{target}")});
            let planted = if through_all_of { json!({"allOf": [reference, {"type": "object"}]}) } else { reference };
            if let Some(slot) = doc.pointer_mut(&pointer) {
                *slot = planted;
            }
            let scratch = Scratch::new("cycle");
            scratch.write_json(&format!("apps/{name}"), &doc);
            let label = format!("{name} with {pointer} = $ref #{target}");
            match loads_or_names(&scratch.apps(), &name).map_err(|e| format!("{label}: {e}"))? {
                Some(set) => serve_a_few(set, 4).map_err(|e| format!("{label}: {e}")),
                None => Ok(()),
            }
        },
    );
}

#[test]
fn random_bytes_as_a_spec_file_are_refused_by_name_or_read_as_openapi() {
    let extension = prop::sample::select(&["json", "yaml", "yml"][..]);
    let bytes = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4_096),
            "\\PC{0,400}".prop_map(String::into_bytes),
            prop::collection::vec(
                prop::sample::select(
                    &[
                        "{", "}", "[", "]", ":", ",", "-", "openapi", "paths", "\"", "&a", "*a", "!!", "\n", "  ",
                        "3.0.0"
                    ][..]
                ),
                0..200
            )
            .prop_map(|t| t.concat().into_bytes()),
        ];
    run_property("random bytes", 64, (extension, bytes), |(extension, bytes)| {
        let scratch = Scratch::new("garbage");
        let name = format!("garbage.{extension}");
        scratch.write(&format!("apps/{name}"), &bytes);
        scratch.write_json(&format!("apps/{HOSTILE}"), &spec_with(json!({"type": "object"}), json!({})));
        accounted_for(&scratch.apps(), &name)
    });
}

// ---------------------------------------------------------------------------
// Named hostile files

/// Writes `doc` as the only spec file, loads it, checks `expect`, serves it.
fn plant(
    label: &str,
    doc: &Value,
    extra: &[(&str, Value)],
    expect: impl Fn(&SpecSet) -> Result<(), String>,
) -> Result<(), String> {
    let scratch = Scratch::new("planted");
    scratch.write_json(&format!("apps/{HOSTILE}"), doc);
    for (path, value) in extra {
        scratch.write_json(path, value);
    }
    let set = loads_or_names(&scratch.apps(), HOSTILE)
        .and_then(|set| set.ok_or_else(|| "nothing loaded".to_string()))
        .map_err(|e| format!("{label}: {e}"))?;
    expect(&set).map_err(|e| format!("{label}: {e}"))?;
    serve_a_few(set, 8).map_err(|e| format!("{label}: {e}"))
}

fn all_pass(results: Vec<Result<(), String>>) {
    let total = results.len();
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{} of {total} cases failed:\n{}", failures.len(), failures.join("\n"));
}

fn warned(kind: WarningKind) -> impl Fn(&SpecSet) -> Result<(), String> {
    warned_in(kind, HOSTILE)
}

/// A warning of `kind` naming `file` (the file where the bad reference is).
fn warned_in(kind: WarningKind, file: &'static str) -> impl Fn(&SpecSet) -> Result<(), String> {
    move |set| {
        if has_warning(set, kind, file) {
            Ok(())
        } else {
            Err(format!("no {kind:?} warning naming {file}; warnings: {:?}", set.warnings))
        }
    }
}

#[test]
fn reference_cycles_are_cut_with_a_warning_naming_the_file() {
    let long_cycle: serde_json::Map<String, Value> =
        (0..100).map(|i| (format!("C{i}"), schema_ref(&format!("C{}", (i + 1) % 100)))).collect();
    let mut path_item_loop = spec_with(json!({"type": "object"}), json!({}));
    path_item_loop["paths"]["/loop"] = json!({"$ref": "#/paths/~1loop"});
    let mut parameter_loop = spec_with(json!({"type": "object"}), json!({}));
    parameter_loop["paths"]["/healthy"]["get"]["parameters"] = json!([{"$ref": "#/components/parameters/P"}]);
    parameter_loop["components"]["parameters"] = json!({"P": {"$ref": "#/components/parameters/P"}});
    let mut response_loop = spec_with(json!({"type": "object"}), json!({}));
    response_loop["paths"]["/healthy"]["get"]["responses"]["200"] = json!({"$ref": "#/components/responses/R"});
    response_loop["components"]["responses"] = json!({"R": {"$ref": "#/components/responses/R"}});
    let a_to_b_to_a = spec_with(schema_ref("A"), json!({"A": schema_ref("B"), "B": schema_ref("A")}));
    let tree = json!({"type": "object", "properties": {"id": {"type": "string"}, "child": schema_ref("Node")}});
    let cases = [
        ("A → B → A", a_to_b_to_a, vec![], HOSTILE),
        ("A → A", spec_with(schema_ref("A"), json!({"A": schema_ref("A")})), vec![], HOSTILE),
        (
            "a cycle through allOf",
            spec_with(
                schema_ref("A"),
                json!({"A": {"allOf": [schema_ref("B")]}, "B": {"allOf": [schema_ref("A"), {"type": "object"}]}}),
            ),
            vec![],
            HOSTILE,
        ),
        ("a tree through properties", spec_with(schema_ref("Node"), json!({"Node": tree})), vec![], HOSTILE),
        (
            "a list of itself",
            spec_with(schema_ref("List"), json!({"List": {"type": "array", "items": schema_ref("List")}})),
            vec![],
            HOSTILE,
        ),
        ("a 100-schema cycle", spec_with(schema_ref("C0"), Value::Object(long_cycle)), vec![], HOSTILE),
        ("the whole document", spec_with(json!({"$ref": "#"}), json!({})), vec![], HOSTILE),
        ("an empty $ref", spec_with(json!({"$ref": ""}), json!({})), vec![], HOSTILE),
        ("a path item that is itself", path_item_loop, vec![], HOSTILE),
        ("a parameter that is itself", parameter_loop, vec![], HOSTILE),
        ("a response that is itself", response_loop, vec![], HOSTILE),
        (
            "a cycle across two files",
            spec_with(json!({"$ref": "../defs/b.json#/B"}), json!({})),
            vec![
                ("defs/b.json", json!({"B": {"$ref": "c.json#/C"}})),
                ("defs/c.json", json!({"C": {"allOf": [{"$ref": "b.json#/B"}]}})),
            ],
            // The warning names the file where the cycle closes.
            "c.json",
        ),
    ];
    all_pass(
        cases
            .into_iter()
            .map(|(label, doc, extra, file)| plant(label, &doc, &extra, warned_in(WarningKind::RefCycle, file)))
            .collect(),
    );
}

#[test]
fn unresolvable_and_malformed_references_become_open_schemas_with_a_warning() {
    let unresolvable = [
        "#/nope",
        "../missing.json#/x",
        "missing.json",
        "http://example.com/x.json",
        "https://example.com/x.json#/components/schemas/X",
        "#/components/schemas/%zz",
        "#/components/schemas/%ff",
        "#/components/schemas/%",
        "#components",
        "#/paths/~2",
        "/nonexistent/absolute.json#/x",
        "./",
        "..",
        "#/components/schemas/A/properties/0/../..",
    ];
    let long = format!("#{}", "/a".repeat(5_000));
    let mut results: Vec<Result<(), String>> = unresolvable
        .iter()
        .copied()
        .chain([long.as_str()])
        .map(|reference| {
            let doc = spec_with(json!({"$ref": reference}), json!({"A": {"type": "object"}}));
            plant(&format!("$ref {reference:?}"), &doc, &[], warned(WarningKind::UnresolvedRef))
        })
        .collect();
    // Not references at all, whatever `$ref` says: they load and serve.
    for odd in [json!(42), json!(null), json!({"$ref": "#/nope"}), json!(["#/components/schemas/A"]), json!(true)] {
        let doc = spec_with(json!({"$ref": odd.clone(), "type": "object"}), json!({"A": {"type": "object"}}));
        results.push(plant(&format!("$ref {odd}"), &doc, &[], |_| Ok(())));
    }
    let siblings = spec_with(
        json!({"$ref": "#/components/schemas/A", "type": "string", "maxLength": 1}),
        json!({"A": {"type": "object"}}),
    );
    results.push(plant("a $ref with siblings", &siblings, &[], |_| Ok(())));
    all_pass(results);
}

/// `levels` of `{"type": "object", "properties": {"a": …}}` around a string schema.
fn deep_schema(levels: usize) -> String {
    format!(
        "{}{{\"type\":\"string\"}}{}",
        "{\"type\":\"object\",\"properties\":{\"a\":".repeat(levels),
        "}}".repeat(levels)
    )
}

#[test]
fn schemas_nested_too_deep_to_parse_are_refused_by_name() {
    let deep = deep_schema(10_000);
    let json_doc = format!(
        "{{\"openapi\":\"3.0.3\",\"info\":{{\"title\":\"t\",\"version\":\"1\"}},\"paths\":{{}},\
         \"components\":{{\"schemas\":{{\"Deep\":{deep}}}}}}}"
    );
    let yaml_doc = format!(
        "openapi: 3.0.3\ninfo: {{title: t, version: '1'}}\npaths: {{}}\ncomponents:\n  schemas:\n    Deep: {deep}\n"
    );
    let block: String = (0..10_000).map(|i| format!("{}a:\n", "  ".repeat(i))).collect();
    let yaml_block = format!("openapi: 3.0.3\nx:\n{block}");
    let items = format!("{{\"openapi\":\"3.0.3\",\"x\":{}1{}}}", "{\"items\":".repeat(10_000), "}".repeat(10_000));
    let arrays = format!("{{\"openapi\":\"3.0.3\",\"x\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let cases = [
        ("deep.json", json_doc),
        ("deep.yaml", yaml_doc),
        ("deep-block.yaml", yaml_block),
        ("deep-items.json", items),
        ("deep-arrays.json", arrays),
    ];
    let mut results = Vec::new();
    for (name, text) in &cases {
        // Alone: the load fails and names it. Beside a good file: it is refused by name.
        let alone = Scratch::new("deep");
        alone.write(&format!("apps/{name}"), text);
        results.push(match load_bounded(&alone.apps()) {
            Loaded::Err(message) if message.contains(name) => Ok(()),
            Loaded::Err(message) => Err(format!("{name} alone: the error does not name it: {message}")),
            Loaded::Ok(_) => Err(format!("{name} alone: loaded")),
            Loaded::Panicked(message) => Err(format!("{name} alone: the loader panicked: {message}")),
            Loaded::Hung => Err(format!("{name} alone: the loader hung")),
        });
        let beside = Scratch::new("deep");
        beside.write(&format!("apps/{name}"), text);
        beside.write_json(&format!("apps/{HOSTILE}"), &spec_with(json!({"type": "object"}), json!({})));
        results.push(
            refused_by_name(&beside.apps(), name).map(drop).map_err(|e| format!("{name} beside a good file: {e}")),
        );
    }
    all_pass(results);
}

#[test]
fn deep_schemas_the_parser_accepts_load_and_serve() {
    let deep: Value = serde_json::from_str(&deep_schema(58)).expect("deep schema parses");
    let mut items = json!({"type": "string"});
    for _ in 0..115 {
        items = json!({"type": "array", "items": items});
    }
    all_pass(vec![
        plant("58 levels of properties", &spec_with(schema_ref("Deep"), json!({"Deep": deep})), &[], |_| Ok(())),
        plant("115 levels of items", &spec_with(schema_ref("Deep"), json!({"Deep": items})), &[], |_| Ok(())),
    ]);
}

/// A chain of `links` schemas, each `levels` arrays deep around a `$ref` to
/// the next: every file parses, but inlined they nest `links × levels` deep.
fn ref_chain(links: usize, levels: usize) -> Value {
    let mut schemas = serde_json::Map::new();
    for i in 0..links {
        let mut inner = schema_ref(&format!("L{}", i + 1));
        for _ in 0..levels {
            inner = json!({"type": "array", "items": inner});
        }
        schemas.insert(format!("L{i}"), inner);
    }
    schemas.insert(format!("L{links}"), json!({"type": "string"}));
    spec_with(schema_ref("L0"), Value::Object(schemas))
}

#[test]
fn reference_chains_that_nest_deeper_than_any_file_are_cut_not_a_stack_overflow() {
    // 64 links of 120 levels: about 7,700 levels once inlined. Run in a
    // child: a stack overflow would abort the whole test binary.
    let scratch = Scratch::new("ref-chain");
    scratch.write_json(&format!("apps/{HOSTILE}"), &ref_chain(64, 120));
    let checked = check_specs_in_child(&scratch.apps());
    let stdout = finished_cleanly(&checked).unwrap_or_else(|e| panic!("{e}"));
    assert!(stdout.contains("operations: 3"), "the chain's operations are served: {stdout}");
}

#[test]
fn a_reference_fan_out_bomb_is_bounded_in_memory_and_time() {
    // Each schema refers to the next one twice: 30 levels are 2^30 copies
    // once inlined. Run in a child with its memory capped.
    let schemas: serde_json::Map<String, Value> = (0..30)
        .map(|i| {
            let next = schema_ref(&format!("B{}", i + 1));
            (format!("B{i}"), json!({"type": "object", "properties": {"l": next.clone(), "r": next}}))
        })
        .chain([("B30".to_string(), json!({"type": "string"}))])
        .collect();
    let scratch = Scratch::new("fan-out");
    scratch.write_json(&format!("apps/{HOSTILE}"), &spec_with(schema_ref("B0"), Value::Object(schemas)));
    let checked = check_specs_in_child(&scratch.apps());
    finished_cleanly(&checked).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_reference_to_a_fifo_does_not_hang_the_loader() {
    let scratch = Scratch::new("fifo");
    let fifo = scratch.root.join("apps-fifo.json");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("\n!!! SKIPPED: mkfifo is not available — this test did not run !!!\n");
        return;
    }
    let doc = spec_with(json!({"$ref": "../apps-fifo.json#/x"}), json!({}));
    scratch.write_json(&format!("apps/{HOSTILE}"), &doc);
    // Ten seconds is a thousand times what this load takes.
    let bound = Duration::from_secs(10);
    let loaded = load_within(&scratch.apps(), bound);
    if matches!(loaded, Loaded::Hung) {
        // Free the loader thread: a writer that opens and closes gives it EOF.
        let release = fifo.clone();
        std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(release)));
        panic!("a $ref to a FIFO hung the loader for {bound:?}");
    }
    match loaded {
        Loaded::Ok(set) => assert!(has_warning(&set, WarningKind::UnresolvedRef, HOSTILE), "{:?}", set.warnings),
        Loaded::Err(e) => panic!("a bad $ref failed the whole load: {e}"),
        Loaded::Panicked(m) => panic!("the loader panicked: {m}"),
        Loaded::Hung => unreachable!(),
    }
}

#[test]
fn a_reference_to_an_endless_device_is_refused_within_the_size_limit() {
    if !Path::new("/dev/zero").exists() {
        eprintln!("\n!!! SKIPPED: no /dev/zero — this test did not run !!!\n");
        return;
    }
    // In a child with capped memory: a loader that reads on would take all of this machine's.
    let scratch = Scratch::new("dev-zero");
    scratch.write_json(&format!("apps/{HOSTILE}"), &spec_with(json!({"$ref": "/dev/zero#/x"}), json!({})));
    let checked = check_specs_in_child(&scratch.apps());
    let stdout = finished_cleanly(&checked).unwrap_or_else(|e| panic!("{e}"));
    let warning = stdout
        .lines()
        .find(|l| l.contains("/dev/zero"))
        .unwrap_or_else(|| panic!("no warning names /dev/zero: {stdout}"));
    assert!(
        !warning.contains("out of memory"),
        "the loader read /dev/zero until its memory ran out instead of stopping at its size limit: {warning}"
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused_by_name_without_being_read() {
    let scratch = Scratch::new("oversized");
    let big = scratch.apps().join("big.json");
    std::fs::File::create(&big).and_then(|f| f.set_len(MAX_FILE_BYTES + 1)).expect("sparse file");
    scratch.write_json(&format!("apps/{HOSTILE}"), &spec_with(json!({"$ref": "big.json#/x"}), json!({})));
    let set =
        refused_by_name(&scratch.apps(), "big.json").unwrap_or_else(|e| panic!("{e}")).expect("the good file loads");
    assert!(has_warning(&set, WarningKind::UnresolvedRef, HOSTILE), "{:?}", set.warnings);
}

#[test]
fn files_that_are_not_openapi_are_refused_by_name() {
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    png.extend((0..2_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let utf16: Vec<u8> = "{\"openapi\": \"3.0.3\"}".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("hello.json", br#"{"hello": "world"}"#.to_vec()),
        ("swagger.json", br#"{"swagger": "2.0", "paths": {"/x": {"get": {"responses": {"200": {}}}}}}"#.to_vec()),
        ("openapi-2.json", br#"{"openapi": "2.0", "paths": {"/x": {"get": {}}}}"#.to_vec()),
        ("openapi-4.json", br#"{"openapi": "4.0.0", "paths": {"/x": {"get": {}}}}"#.to_vec()),
        ("openapi-number.json", br#"{"openapi": 3, "paths": {"/x": {"get": {}}}}"#.to_vec()),
        ("openapi-null.yaml", b"openapi: null\npaths: {/x: {get: {}}}\n".to_vec()),
        ("array.json", b"[1, 2, 3]".to_vec()),
        ("string.json", b"\"openapi\"".to_vec()),
        ("number.yaml", b"42\n".to_vec()),
        ("null.json", b"null".to_vec()),
        ("empty.json", Vec::new()),
        ("empty.yaml", Vec::new()),
        ("empty.yml", Vec::new()),
        ("blank.yaml", b"   \n\n\t\n".to_vec()),
        ("comment.yaml", b"# nothing but a comment\n".to_vec()),
        ("truncated.json", br#"{"openapi": "3.0.3", "paths": {"#.to_vec()),
        ("trailing-comma.json", br#"{"openapi": "3.0.3", "paths": {},}"#.to_vec()),
        ("comments.json", b"// a comment\n{\"openapi\": \"3.0.3\", \"paths\": {}}".to_vec()),
        ("lone-surrogate.json", br#"{"openapi": "3.0.3", "info": {"title": "\ud800"}, "paths": {}}"#.to_vec()),
        ("huge-number.json", br#"{"openapi": "3.0.3", "x": 1e400, "paths": {}}"#.to_vec()),
        ("utf16.json", utf16),
        ("garbage.json", (0..4_096u32).map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8).collect()),
        ("garbage.yaml", (0..4_096u32).map(|i| (i.wrapping_mul(3_266_489_917) >> 7) as u8).collect()),
        ("image.json", png.clone()),
        ("image.yaml", png),
        ("tabs.yaml", b"openapi: 3.0.3\npaths:\n\t/x: {}\n".to_vec()),
        ("alias-bomb.yaml", {
            let mut lines = vec!["openapi: 3.0.3".to_string(), "a0: &a0 [x, x, x, x, x, x, x, x, x, x]".to_string()];
            lines.extend((1..12).map(|i| format!("a{i}: &a{i} [{}]", vec![format!("*a{}", i - 1); 10].join(", "))));
            lines.join("\n").into_bytes()
        }),
        ("undefined-alias.yaml", b"openapi: 3.0.3\npaths: *nowhere\n".to_vec()),
        ("binary-tag.yaml", b"openapi: !!binary aGVsbG8=\npaths: {}\n".to_vec()),
    ];
    let results = cases
        .iter()
        .map(|(name, bytes)| {
            let scratch = Scratch::new("not-openapi");
            scratch.write(&format!("apps/{name}"), bytes);
            scratch.write_json(&format!("apps/{HOSTILE}"), &spec_with(json!({"type": "object"}), json!({})));
            refused_by_name(&scratch.apps(), name).map(drop).map_err(|e| format!("{name}: {e}"))
        })
        .collect();
    all_pass(results);
}

#[test]
fn files_with_quirks_a_reader_may_forgive_load_or_are_refused_by_name() {
    let valid = serde_json::to_string(&spec_with(json!({"type": "object"}), json!({}))).expect("json");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bom.json", [&b"\xef\xbb\xbf"[..], valid.as_bytes()].concat()),
        (
            "duplicate-keys.json",
            valid.replacen(r#"{"openapi":"3.0.3""#, r#"{"openapi":"3.0.3","openapi":"9""#, 1).into_bytes(),
        ),
        ("two-documents.yaml", format!("{valid}\n---\nopenapi: 3.0.3\n").into_bytes()),
        (
            "crlf.yaml",
            "openapi: 3.0.3\r\npaths:\r\n  /x:\r\n    get:\r\n      responses: {'200': {description: ok}}\r\n".into(),
        ),
        ("nul-in-string.json", valid.replacen("\"hostile\"", "\"host\\u0000ile\"", 1).into_bytes()),
        ("openapi-3.1.json", valid.replacen("3.0.3", "3.1.0", 1).into_bytes()),
    ];
    let results = cases
        .iter()
        .map(|(name, bytes)| {
            let scratch = Scratch::new("quirks");
            scratch.write(&format!("apps/{name}"), bytes);
            match loads_or_names(&scratch.apps(), name) {
                Ok(Some(set)) => serve_a_few(set, 4).map_err(|e| format!("{name}: {e}")),
                Ok(None) => Ok(()),
                Err(e) => Err(format!("{name}: {e}")),
            }
        })
        .collect();
    all_pass(results);
}

#[test]
fn top_level_fields_of_the_wrong_type_load_with_warnings_or_are_refused_by_name() {
    let mut results = Vec::new();
    for key in ["openapi", "info", "paths", "components", "security", "servers", "tags", "x-extension"] {
        for wrong in WRONG_TYPES {
            // An empty `paths` is a legitimate spec with nothing to serve.
            if key == "paths" && *wrong == "{}" {
                continue;
            }
            let mut doc = spec_with(json!({"type": "object"}), json!({"A": {"type": "object"}}));
            doc[key] = serde_json::from_str(wrong).expect("replacement");
            let scratch = Scratch::new("top-level");
            scratch.write_json(&format!("apps/{HOSTILE}"), &doc);
            let label = format!("{key} = {wrong}");
            results.push(match loads_or_names(&scratch.apps(), HOSTILE) {
                Ok(Some(set)) => serve_a_few(set, 4).map_err(|e| format!("{label}: {e}")),
                Ok(None) => Ok(()),
                Err(e) => Err(format!("{label}: {e}")),
            });
        }
    }
    all_pass(results);
}

#[test]
fn operation_fields_of_the_wrong_type_leave_the_other_operations_served() {
    let places = [
        "/paths/~1things~1{thingId}",
        "/paths/~1things~1{thingId}/get",
        "/paths/~1things~1{thingId}/get/parameters",
        "/paths/~1things~1{thingId}/get/parameters/0",
        "/paths/~1things~1{thingId}/get/parameters/0/schema",
        "/paths/~1things~1{thingId}/get/parameters/0/in",
        "/paths/~1things~1{thingId}/get/security",
        "/paths/~1things~1{thingId}/get/security/0",
        "/paths/~1things~1{thingId}/get/security/0/bearer",
        "/paths/~1things~1{thingId}/get/responses",
        "/paths/~1things~1{thingId}/get/responses/200",
        "/paths/~1things~1{thingId}/get/responses/200/content",
        "/paths/~1things~1{thingId}/get/responses/200/content/application~1json",
        "/paths/~1things~1{thingId}/get/responses/200/content/application~1json/schema",
        "/paths/~1things~1{thingId}/get/operationId",
        "/paths/~1things~1{thingId}/post/requestBody",
        "/paths/~1things~1{thingId}/post/requestBody/content",
        "/paths/~1things~1{thingId}/post/requestBody/content/application~1json/schema",
    ];
    let mut results = Vec::new();
    for place in places {
        for wrong in WRONG_TYPES {
            let mut doc = spec_with(json!({"type": "object", "properties": {"id": {"type": "string"}}}), json!({}));
            *doc.pointer_mut(place).expect("the place exists") = serde_json::from_str(wrong).expect("replacement");
            let label = format!("{place} = {wrong}");
            results.push(plant(&label, &doc, &[], |set| {
                if set.operations.iter().any(|o| o.id == "healthy") {
                    Ok(())
                } else {
                    Err("the untouched operation is no longer served".into())
                }
            }));
        }
    }
    all_pass(results);
}

/// Issue 15, item 3: a response property of `minLength: 1e9` (or a billion
/// items) cannot hang start-up: generation is bounded and the cut is a warning.
#[test]
fn a_spec_asking_for_a_billion_characters_loads_with_the_cut_reported() {
    let scratch = Scratch::new("huge-min-length");
    scratch.write(
        "apps/huge.yaml",
        r#"
openapi: 3.0.0
info: {title: huge, version: "1"}
paths:
  /huge:
    get:
      operationId: get-huge
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                required: [name, items]
                properties:
                  name: {type: string, minLength: 1000000000}
                  items: {type: array, minItems: 1000000000, items: {type: string, minLength: 1000000}}
"#,
    );
    match load_bounded(&scratch.root.join("apps")) {
        Loaded::Ok(set) => {
            let cuts: Vec<&str> = set
                .warnings
                .iter()
                .filter(|w| w.kind == WarningKind::GeneratorClamped)
                .map(|w| w.message.as_str())
                .collect();
            assert!(cuts.iter().any(|m| m.contains("minLength 1000000000")), "{cuts:?}");
            assert_eq!(set.operations.len(), 1);
            assert!(set.operations[0].success.body.len() < 2 * 1024 * 1024, "the default body stays small");
        }
        Loaded::Hung => panic!("loading hung"),
        Loaded::Panicked(p) => panic!("loading panicked: {p}"),
        Loaded::Err(e) => panic!("refused: {e}"),
    }
}
