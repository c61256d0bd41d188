//! The documents a spec set is read from, and `$ref` resolution across them.
//!
//! Files come from a directory on disk or from the set embedded in the binary;
//! both are addressed by a normalised path string, so a reference such as
//! `../common/common-schemas.json#/components/schemas/X` resolves the same way
//! for either. Resolution inlines every reference into a self-contained value
//! (cycles are cut to `{}` with a warning) so validators and generators never
//! chase references at request time.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::{Warning, WarningKind};

/// Where documents come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A directory on disk; references may leave it (`../common/...`).
    Dir(PathBuf),
    /// Files compiled into the binary, by name.
    Embedded(&'static [(&'static str, &'static str)]),
}

/// Files larger than this are refused rather than read.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// References nested deeper than this are cut, whatever their shape.
const MAX_REF_DEPTH: usize = 64;
/// Values nested deeper than this (counting through references) are cut:
/// no real schema nests so deep, and the walk must not exhaust the stack.
const MAX_VALUE_DEPTH: usize = 256;
/// How many JSON nodes one `inline` call may produce. References that fan out
/// (A uses B ten times, B uses C ten times, …) grow exponentially when
/// inlined; past this the rest is cut to open schemas, with a warning. The
/// largest path item of the official corpus inlines to fewer than 5,000.
const INLINE_BUDGET: usize = 200_000;

/// Loaded documents, by key (a normalised path).
pub struct DocStore {
    source: Source,
    docs: HashMap<String, Result<Value, String>>,
    /// Inlined targets and their size in nodes.
    inlined: HashMap<(String, String), (Value, usize)>,
    reported: HashSet<(String, String)>,
    /// Nodes the current `inline` call may still produce.
    budget: usize,
    /// (folder, written file path) → the key it was resolved to, where the
    /// written path names no file (so the disk is asked once).
    resolved: HashMap<(String, String), String>,
}

impl DocStore {
    pub fn new(source: Source) -> Self {
        Self {
            source,
            docs: HashMap::new(),
            inlined: HashMap::new(),
            reported: HashSet::new(),
            budget: INLINE_BUDGET,
            resolved: HashMap::new(),
        }
    }

    /// The keys of the top-level spec files of the source, sorted.
    pub fn top_level_keys(&self) -> Result<Vec<String>, String> {
        match &self.source {
            Source::Embedded(files) => {
                let mut keys: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
                keys.sort();
                Ok(keys)
            }
            Source::Dir(dir) => {
                let mut keys = Vec::new();
                collect_spec_files(dir, 0, &mut keys)?;
                keys.sort();
                Ok(keys)
            }
        }
    }

    /// The document under `key`, read and parsed once.
    pub fn get(&mut self, key: &str) -> Result<&Value, String> {
        if !self.docs.contains_key(key) {
            let parsed = self.read(key).and_then(|text| parse(key, &text));
            self.docs.insert(key.to_string(), parsed);
        }
        match self.docs.get(key) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("{key}: not loaded")),
        }
    }

    /// Forgets a document and what was inlined from it (it is read again
    /// if a later file refers to it).
    pub fn forget(&mut self, key: &str) {
        self.docs.remove(key);
        self.inlined.retain(|(file, _), _| file != key);
    }

    fn read(&self, key: &str) -> Result<String, String> {
        match &self.source {
            Source::Embedded(files) => files
                .iter()
                .find(|(n, _)| *n == key)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| format!("{key}: no such embedded file")),
            Source::Dir(_) => {
                use std::io::Read;
                let meta = std::fs::metadata(key).map_err(|e| format!("{key}: cannot read: {e}"))?;
                // A device or a FIFO would never end, or never begin: only plain files are read.
                if !meta.is_file() {
                    return Err(format!("{key}: not a regular file"));
                }
                if meta.len() > MAX_FILE_BYTES {
                    return Err(format!("{key}: file is {} bytes, over the limit of {MAX_FILE_BYTES}", meta.len()));
                }
                // The file may grow between the check and the read: read no more than the limit.
                let mut bytes = Vec::new();
                std::fs::File::open(key)
                    .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
                    .map_err(|e| format!("{key}: cannot read: {e}"))?;
                if bytes.len() as u64 > MAX_FILE_BYTES {
                    return Err(format!("{key}: file is over the limit of {MAX_FILE_BYTES} bytes"));
                }
                String::from_utf8(bytes).map_err(|_| format!("{key}: not UTF-8 text"))
            }
        }
    }

    /// The key a reference's file part names, relative to the referring file.
    fn resolve_key(&mut self, from: &str, file_part: &str) -> String {
        if file_part.is_empty() {
            return from.to_string();
        }
        let base = Path::new(from).parent().unwrap_or(Path::new(""));
        let key = normalise(&base.join(file_part));
        let asked = (base.to_string_lossy().into_owned(), file_part.to_string());
        if let Some(known) = self.resolved.get(&asked) {
            return known.clone();
        }
        if self.exists(&key) {
            return key;
        }
        // Issue 14: HighLevel's v3 files (`apps/v3/x-v3.json`) refer to
        // `../common/common-schemas.json`, but their common file sits beside
        // them, in `apps/v3/common/`. Where the written path names nothing,
        // the same path without its leading `../` is tried.
        let inside = Path::new(file_part).components().skip_while(|c| matches!(c, Component::ParentDir));
        let beside = normalise(&base.join(inside.collect::<PathBuf>()));
        let key = if beside != key && self.exists(&beside) { beside } else { key };
        self.resolved.insert(asked, key.clone());
        key
    }

    fn exists(&self, key: &str) -> bool {
        if self.docs.contains_key(key) {
            return true;
        }
        match &self.source {
            Source::Embedded(files) => files.iter().any(|(n, _)| *n == key),
            Source::Dir(_) => Path::new(key).is_file(),
        }
    }

    /// `value` (found in `file` at `pointer`) with every `$ref` inside it replaced
    /// by what it points at.
    pub fn inline(&mut self, file: &str, value: &Value, pointer: &str, warnings: &mut Vec<Warning>) -> Value {
        let mut stack = Vec::new();
        self.budget = INLINE_BUDGET;
        self.inline_at(file, value, pointer, 0, &mut stack, warnings)
    }

    fn inline_at(
        &mut self,
        file: &str,
        value: &Value,
        pointer: &str,
        depth: usize,
        stack: &mut Vec<(String, String)>,
        warnings: &mut Vec<Warning>,
    ) -> Value {
        if depth > MAX_VALUE_DEPTH {
            self.warn_once(
                warnings,
                file,
                pointer,
                WarningKind::BadSchema,
                format!("nested deeper than {MAX_VALUE_DEPTH} levels (through references); cut to an open schema"),
            );
            return Value::Object(Default::default());
        }
        if self.budget == 0 {
            return self.over_budget(file, warnings);
        }
        self.budget -= 1;
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    return self.follow(file, reference, pointer, depth, stack, warnings);
                }
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, v) in map {
                    let child = format!("{pointer}/{}", escape(k));
                    out.insert(k.clone(), self.inline_at(file, v, &child, depth + 1, stack, warnings));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.inline_at(file, v, &format!("{pointer}/{i}"), depth + 1, stack, warnings))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn follow(
        &mut self,
        file: &str,
        reference: &str,
        pointer: &str,
        depth: usize,
        stack: &mut Vec<(String, String)>,
        warnings: &mut Vec<Warning>,
    ) -> Value {
        let (file_part, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let target_file = self.resolve_key(file, file_part);
        let target = (target_file.clone(), fragment.to_string());
        if stack.contains(&target) {
            self.warn_once(
                warnings,
                file,
                pointer,
                WarningKind::RefCycle,
                format!("$ref '{reference}' refers back to itself; cut to an open schema there"),
            );
            return Value::Object(Default::default());
        }
        if stack.len() >= MAX_REF_DEPTH && self.leads_back(target.clone(), stack) {
            self.warn_once(
                warnings,
                file,
                pointer,
                WarningKind::RefCycle,
                format!("$ref '{reference}' is part of a cycle of more than {MAX_REF_DEPTH} references; cut to an open schema there"),
            );
            return Value::Object(Default::default());
        }
        if stack.len() >= MAX_REF_DEPTH {
            self.warn_once(
                warnings,
                file,
                pointer,
                WarningKind::RefTooDeep,
                format!(
                    "$ref '{reference}' ends a chain of more than {MAX_REF_DEPTH} nested references; \
                     cut to an open schema there"
                ),
            );
            return Value::Object(Default::default());
        }
        if let Some((done, size)) = self.inlined.get(&target) {
            // A copy costs what the original did.
            if *size <= self.budget {
                self.budget -= size;
                return done.clone();
            }
            return self.over_budget(file, warnings);
        }
        let found = match self.get(&target_file) {
            Ok(doc) => lookup(doc, fragment).cloned(),
            Err(e) => {
                self.warn_once(
                    warnings,
                    file,
                    pointer,
                    WarningKind::UnresolvedRef,
                    format!("$ref '{reference}' names a file that cannot be loaded ({e}); treated as an open schema"),
                );
                return Value::Object(Default::default());
            }
        };
        let Some(found) = found else {
            self.warn_once(
                warnings,
                file,
                pointer,
                WarningKind::UnresolvedRef,
                format!("$ref '{reference}' resolves nowhere; treated as an open schema"),
            );
            return Value::Object(Default::default());
        };
        stack.push(target.clone());
        let fragment_pointer = if fragment.is_empty() { String::new() } else { fragment.to_string() };
        let before = self.budget;
        let resolved = self.inline_at(&target_file, &found, &fragment_pointer, depth, stack, warnings);
        stack.pop();
        self.inlined.insert(target, (resolved.clone(), before - self.budget));
        resolved
    }

    /// Whether following plain `$ref` hops from `at` (schemas that are only a
    /// reference) comes back to one already on `stack` or met on the way:
    /// a cycle longer than the depth bound, told from a merely long chain.
    fn leads_back(&mut self, mut at: (String, String), stack: &[(String, String)]) -> bool {
        const MAX_HOPS: usize = 100_000;
        let mut seen: std::collections::HashSet<(String, String)> = stack.iter().cloned().collect();
        for _ in 0..MAX_HOPS {
            if !seen.insert(at.clone()) {
                return true;
            }
            let next = match self.get(&at.0) {
                Ok(doc) => lookup(doc, &at.1).and_then(|v| v.get("$ref")).and_then(Value::as_str).map(str::to_string),
                Err(_) => None,
            };
            let Some(next) = next else { return false };
            let (file_part, fragment) = next.split_once('#').unwrap_or((&next, ""));
            at = (self.resolve_key(&at.0, file_part), fragment.to_string());
        }
        false
    }

    /// The inlining budget is spent: the rest is cut, with one warning per file.
    fn over_budget(&mut self, file: &str, warnings: &mut Vec<Warning>) -> Value {
        self.budget = 0;
        self.warn_once(
            warnings,
            file,
            "",
            WarningKind::BadSchema,
            format!("references expand to more than {INLINE_BUDGET} values; the rest is cut to open schemas"),
        );
        Value::Object(Default::default())
    }

    fn warn_once(
        &mut self,
        warnings: &mut Vec<Warning>,
        file: &str,
        pointer: &str,
        kind: WarningKind,
        message: String,
    ) {
        if self.reported.insert((file.to_string(), format!("{pointer}{message}"))) {
            warnings.push(Warning::new(file, pointer, kind, message));
        }
    }
}

/// Subfolders are read this deep (`apps/v3/common/` is two below `apps/`).
const MAX_DIR_DEPTH: usize = 4;

/// The spec files of `dir` and of its subfolders (HighLevel's repo keeps the
/// v3 files in `apps/v3/`), skipping hidden folders and `node_modules`.
fn collect_spec_files(dir: &Path, depth: usize, keys: &mut Vec<String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // `file_type` does not follow links: a linked folder is not walked (no loops).
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if depth < MAX_DIR_DEPTH && !name.starts_with('.') && name != "node_modules" {
                // A subfolder that cannot be read is skipped; only the top one must be.
                let _ = collect_spec_files(&path, depth + 1, keys);
            }
            continue;
        }
        let is_spec = matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "yaml" | "yml"));
        if is_spec && path.is_file() {
            keys.push(normalise(&path));
        }
    }
    Ok(())
}

/// A JSON pointer lookup that accepts the `#` fragment forms specs use.
fn lookup<'a>(doc: &'a Value, fragment: &str) -> Option<&'a Value> {
    if fragment.is_empty() || fragment == "/" {
        return Some(doc);
    }
    let decoded = percent_encoding::percent_decode_str(fragment).decode_utf8().ok()?;
    doc.pointer(&decoded)
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A lexical normalisation of a path (`a/b/../c` → `a/c`); files need not exist.
pub fn normalise(path: &Path) -> String {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out.to_string_lossy().into_owned()
}

/// JSON or YAML by the file's extension; YAML is also tried for anything else.
pub fn parse(key: &str, text: &str) -> Result<Value, String> {
    if key.ends_with(".json") {
        serde_json::from_str(text).map_err(|e| format!("{key}: invalid JSON: {e}"))
    } else {
        serde_yaml_ng::from_str::<Value>(text).map_err(|e| format!("{key}: invalid YAML: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalise_folds_parent_segments() {
        assert_eq!(normalise(Path::new("a/apps/../common/x.json")), "a/common/x.json");
        assert_eq!(normalise(Path::new("./x.yaml")), "x.yaml");
    }

    #[test]
    fn references_resolve_across_embedded_files() {
        static FILES: &[(&str, &str)] = &[
            ("apps/a.json", r#"{"s": {"$ref": "../common/c.json#/components/schemas/Id"}}"#),
            ("common/c.json", r#"{"components": {"schemas": {"Id": {"type": "string", "minLength": 20}}}}"#),
        ];
        let mut store = DocStore::new(Source::Embedded(FILES));
        let mut warnings = Vec::new();
        let doc = store.get("apps/a.json").cloned().unwrap();
        let out = store.inline("apps/a.json", &doc, "", &mut warnings);
        assert_eq!(out, json!({"s": {"type": "string", "minLength": 20}}));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_v3_file_finds_its_common_file_beside_it_when_the_written_path_names_nothing() {
        static FILES: &[(&str, &str)] = &[
            ("apps/v3/a-v3.json", r#"{"s": {"$ref": "../common/c.json#/components/schemas/Id"}}"#),
            ("apps/v3/common/c.json", r#"{"components": {"schemas": {"Id": {"type": "integer"}}}}"#),
            ("apps/b.json", r#"{"s": {"$ref": "../common/c.json#/components/schemas/Id"}}"#),
            ("common/c.json", r#"{"components": {"schemas": {"Id": {"type": "string"}}}}"#),
        ];
        let mut store = DocStore::new(Source::Embedded(FILES));
        let mut warnings = Vec::new();
        let v3 = store.get("apps/v3/a-v3.json").cloned().unwrap();
        assert_eq!(store.inline("apps/v3/a-v3.json", &v3, "", &mut warnings), json!({"s": {"type": "integer"}}));
        // The written path wins where it names a file.
        let v2 = store.get("apps/b.json").cloned().unwrap();
        assert_eq!(store.inline("apps/b.json", &v2, "", &mut warnings), json!({"s": {"type": "string"}}));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_reference_cycle_is_cut_with_a_warning_naming_the_file() {
        static FILES: &[(&str, &str)] = &[(
            "loop.json",
            r##"{"components": {"schemas": {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}}, "root": {"$ref": "#/components/schemas/A"}}"##,
        )];
        let mut store = DocStore::new(Source::Embedded(FILES));
        let mut warnings = Vec::new();
        let doc = store.get("loop.json").cloned().unwrap();
        let out = store.inline("loop.json", &doc["root"], "/root", &mut warnings);
        assert_eq!(out, json!({}));
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].file, "loop.json");
        assert_eq!(warnings[0].kind, WarningKind::RefCycle);
    }

    #[test]
    fn a_long_chain_of_references_without_a_cycle_is_cut_as_too_deep_not_as_a_cycle() {
        let schemas: Vec<String> =
            (0..10_000).map(|i| format!(r##""S{i}": {{"$ref": "#/components/schemas/S{}"}}"##, i + 1)).collect();
        let text = format!(
            r##"{{"components": {{"schemas": {{{}, "S10000": {{"type": "string"}}}}}}, "root": {{"$ref": "#/components/schemas/S0"}}}}"##,
            schemas.join(", ")
        );
        let files: &'static [(&'static str, &'static str)] =
            Box::leak(vec![("chain.json", &*Box::leak(text.into_boxed_str()))].into_boxed_slice());
        let mut store = DocStore::new(Source::Embedded(files));
        let mut warnings = Vec::new();
        let doc = store.get("chain.json").cloned().unwrap();
        store.inline("chain.json", &doc["root"], "/root", &mut warnings);
        let kinds: Vec<WarningKind> = warnings.iter().map(|w| w.kind).collect();
        assert!(kinds.contains(&WarningKind::RefTooDeep), "{warnings:?}");
        assert!(!kinds.contains(&WarningKind::RefCycle), "no cycle is reported where there is none: {warnings:?}");
    }

    #[test]
    fn an_unresolvable_reference_becomes_an_open_schema_with_a_warning() {
        static FILES: &[(&str, &str)] = &[("x.json", r##"{"s": {"$ref": "#/components/schemas/Missing"}}"##)];
        let mut store = DocStore::new(Source::Embedded(FILES));
        let mut warnings = Vec::new();
        let doc = store.get("x.json").cloned().unwrap();
        let out = store.inline("x.json", &doc, "", &mut warnings);
        assert_eq!(out, json!({"s": {}}));
        assert_eq!(warnings[0].pointer, "/s");
        assert_eq!(warnings[0].kind, WarningKind::UnresolvedRef);
    }

    #[test]
    fn yaml_and_json_both_parse_and_garbage_names_the_file() {
        assert_eq!(parse("a.yaml", "a: 1").unwrap(), json!({"a": 1}));
        let err = parse("bad.json", "{not json").unwrap_err();
        assert!(err.starts_with("bad.json: invalid JSON"), "{err}");
    }
}
