//! Single-record answers written straight from the stored record.
//!
//! The general way to answer a record is to copy it into the operation's
//! default answer, check the whole answer against the response schema and
//! mend what does not fit ([`super::conform`]). For most operations the
//! check can be split: the default answer around the record is valid on its
//! own (checked once, the first time the operation answers), and the schema
//! between the answer's root and the record is plain objects and properties,
//! so the answer is valid exactly when the record is valid against the
//! record's own schema. Then the record is checked where it is stored and
//! written out with the frame around it, with no copy (a copy of the record
//! was a tenth of the CPU of a create). A record that does not fit takes the
//! general way, so the bytes are the same either way.

use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::spec::resources::Binding;
use crate::spec::Operation;
use crate::state::Stored;

/// What an operation needs to answer records directly.
pub struct Direct {
    /// The record's schema, at the binding's path in the response schema.
    item: jsonschema::Validator,
    /// Its bit in a body's record of the schemas it fits (see
    /// [`crate::state::Body::fits`]): a body is checked once per schema.
    slot: u32,
}

/// The next direct answer's slot (past 63, bodies keep no note and every
/// answer is checked).
static SLOTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Direct")
    }
}

/// Keywords that say nothing about the values under `properties`: a schema
/// on the way to the record with any other keyword (`allOf`, `not`,
/// `dependencies`, …) could judge the record as a whole, so it is not split.
const PLAIN: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "description",
    "title",
    "example",
    "examples",
    "nullable",
    "deprecated",
    "readOnly",
    "writeOnly",
    "default",
];

fn plain(schema: &Value) -> bool {
    schema.as_object().is_some_and(|map| {
        map.keys().all(|k| PLAIN.contains(&k.as_str()))
            && map.get("type").is_none_or(|t| t == "object")
            && map.get("properties").is_some_and(Value::is_object)
    })
}

/// The direct way for `binding` of `op`, if it is exact (see the module).
pub fn prepare(op: &Operation, binding: &Binding) -> Option<Arc<Direct>> {
    // An answer that is `[record]` or whose frame is not an object takes the general way.
    if binding.array || !binding.single.is_empty() && !binding.frame.is_object() {
        return None;
    }
    let (schema, full) = (op.success.schema.as_deref()?, op.success.validator.as_deref()?);
    let mut at = schema;
    for key in &binding.single {
        if !plain(at) {
            return None;
        }
        at = at.get("properties")?.get(key)?;
    }
    // The default answer, as an answer is sent, must be valid around any
    // valid record: checked with the default record in place.
    let mut sample = Vec::new();
    let frame = At::root(&binding.frame, &binding.single, None, SAMPLE_TRACE);
    serde_json::to_writer(&mut sample, &frame).ok()?;
    let sample: Value = serde_json::from_slice(&sample).ok()?;
    if !full.is_valid(&sample) {
        return None;
    }
    let (item, _) = crate::spec::compile_lenient(at).ok()?;
    let slot = SLOTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some(Arc::new(Direct { item, slot }))
}

/// A trace id of the form requests get, for the check of the default answer.
const SAMPLE_TRACE: &str = "00000000-0000-4000-8000-000000000000";

impl Direct {
    /// The answer's bytes, when the record fits its schema (then it holds
    /// every required field, so the general way would add none). Below the
    /// root the record is written as its body's text, with no copy.
    pub fn answer(&self, binding: &Binding, stored: &Stored, trace_id: &str) -> Option<Vec<u8>> {
        if !stored.body.fits(self.slot) {
            if !self.item.is_valid(stored.record()) {
                return None;
            }
            stored.body.mark_fits(self.slot);
        }
        // At the root the answer's own flags are set on the record itself.
        let record = match binding.single.is_empty() {
            true => Rec::Value(stored.record()),
            false => Rec::Raw(stored.body.raw()),
        };
        let view = At::root(&binding.frame, &binding.single, Some(record), trace_id);
        let mut out = Vec::with_capacity(stored.body.text().len() + FRAME_ROOM);
        serde_json::to_writer(&mut out, &view).ok()?;
        Some(out)
    }
}

/// Room for the frame around a record's text (`{"contact":…,"traceId":…}`).
const FRAME_ROOM: usize = 256;

/// A record to write: read, or as its stored text.
#[derive(Clone, Copy)]
enum Rec<'a> {
    Value(&'a Value),
    Raw(&'a RawValue),
}

/// `value` (at the root, the default answer) with `record` at the end of
/// `path`; at the root (`trace_id` given) the success flags set and the
/// trace id echoed, as [`super::framed`] does.
struct At<'a> {
    value: &'a Value,
    path: &'a [String],
    /// None: the default record stays.
    record: Option<Rec<'a>>,
    trace_id: Option<&'a str>,
}

impl<'a> At<'a> {
    fn root(frame: &'a Value, path: &'a [String], record: Option<Rec<'a>>, trace_id: &'a str) -> Self {
        At { value: frame, path, record, trace_id: Some(trace_id) }
    }
}

impl Serialize for At<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        let split = self.path.split_first();
        let here = match (split, self.record) {
            (None, Some(Rec::Raw(text))) => return text.serialize(s),
            (None, Some(Rec::Value(record))) => record,
            _ => self.value,
        };
        let map = match here {
            Value::Object(map) if split.is_some() || self.trace_id.is_some() => map,
            // The end of the path, or a root that is no object: as it is.
            _ if split.is_none() || self.trace_id.is_some() => return here.serialize(s),
            // On the way to the record where the frame holds no object: one is made.
            _ => &EMPTY,
        };
        let (key, rest) = match split {
            Some((key, rest)) => (Some(key), rest),
            None => (None, self.path),
        };
        let below = |value| At { value, path: rest, record: self.record, trace_id: None };
        let mut out = s.serialize_map(Some(map.len() + 1))?;
        let mut placed = false;
        for (k, v) in map {
            if Some(k) == key {
                placed = true;
                out.serialize_entry(k, &below(v))?;
                continue;
            }
            match (self.trace_id, k.as_str(), v) {
                (Some(_), "succeded" | "succeeded" | "success", Value::Bool(_)) => out.serialize_entry(k, &true)?,
                (Some(trace_id), "traceId", Value::String(_)) => out.serialize_entry(k, trace_id)?,
                _ => out.serialize_entry(k, v)?,
            }
        }
        if let (Some(key), false) = (key, placed) {
            out.serialize_entry(key, &below(&Value::Null))?;
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::resources::Action;
    use crate::spec::{load, Source, SpecSet};

    /// For every single-record operation of `set` written directly: the
    /// bytes equal the general way's, for the default record and for that
    /// record with a field changed or added. Answers the operations written
    /// directly, and how many single-record operations there are.
    fn direct_answers_equal_the_general_ones(set: &SpecSet) -> (Vec<String>, usize) {
        let mut direct = Vec::new();
        let mut single = 0;
        for (i, op) in set.operations.iter().enumerate() {
            let Some(binding) = set.resources.binding(i) else { continue };
            if !matches!(binding.action, Action::Get | Action::Create | Action::Update) {
                continue;
            }
            single += 1;
            let Some(way) = prepare(op, binding) else { continue };
            direct.push(format!("{} {}", op.method, op.path));
            let mut default = &*binding.frame;
            for key in &binding.single {
                default = default.get(key).unwrap_or(&Value::Null);
            }
            let Value::Object(default) = default.clone() else { continue };
            let mut changed = default.clone();
            if let Some((k, _)) = default.iter().find(|(_, v)| v.is_string()) {
                changed.insert(k.clone(), Value::String("changed by the test".into()));
            }
            let mut added = default.clone();
            added.insert("ghlMockAdded".into(), Value::from(1));
            let trace = "5b2f6a4e-1c1d-4e0a-9d3b-7f8e9a0b1c2d";
            for record in [default, changed, added] {
                let body = Arc::new(crate::state::Body::of(&record).unwrap());
                let stored = Stored::new(Arc::from("test"), "id".into(), "location".into(), 0, body);
                let Some(bytes) = way.answer(binding, &stored, trace) else { continue };
                // The second answer, from the note that the body fits, is the same.
                assert_eq!(way.answer(binding, &stored, trace).as_deref(), Some(&bytes[..]));
                let general = crate::resources::framed_for(binding, trace, Some(&record), &[]);
                let validator = op.success.validator.as_deref().unwrap();
                assert!(
                    validator.is_valid(&general),
                    "{} {}: a direct answer the general way would mend",
                    op.method,
                    op.path
                );
                assert_eq!(
                    String::from_utf8_lossy(&bytes),
                    serde_json::to_string(&general).unwrap(),
                    "{} {}",
                    op.method,
                    op.path
                );
            }
        }
        (direct, single)
    }

    #[test]
    fn direct_answers_of_the_default_surface_are_byte_for_byte_the_general_ones() {
        let set = load(Source::Embedded(crate::spec::EMBEDDED), 1).unwrap();
        let (direct, _) = direct_answers_equal_the_general_ones(&set);
        for contact_op in ["POST /contacts/", "GET /contacts/{contactId}", "PUT /contacts/{contactId}"] {
            assert!(direct.iter().any(|d| d == contact_op), "{contact_op} is not written directly: {direct:?}");
        }
    }

    #[test]
    fn a_body_noted_to_fit_answers_directly_and_a_changed_record_that_does_not_fit_is_checked_again() {
        let set = load(Source::Embedded(crate::spec::EMBEDDED), 1).unwrap();
        let (i, op) = set
            .operations
            .iter()
            .enumerate()
            .find(|(_, op)| op.method == "GET" && op.path == "/contacts/{contactId}")
            .unwrap();
        let binding = set.resources.binding(i).unwrap();
        let way = prepare(op, binding).unwrap();
        // The default record (it holds every required field), with `dnd` set.
        let default = binding.single.iter().fold(&*binding.frame, |v, k| &v[k]).clone();
        let stored = |dnd: Value| {
            let mut record = default.as_object().unwrap().clone();
            record.insert("firstName".into(), "Ann".into());
            record.insert("dnd".into(), dnd);
            let body = Arc::new(crate::state::Body::of(&record).unwrap());
            Stored::new(Arc::from("contacts"), "c1".into(), "loc".into(), 0, body)
        };
        let fits = stored(Value::Bool(false));
        let trace = "5b2f6a4e-1c1d-4e0a-9d3b-7f8e9a0b1c2d";
        let first = way.answer(binding, &fits, trace).unwrap();
        assert!(fits.body.fits(way.slot), "the body was checked and noted to fit");
        assert!(String::from_utf8_lossy(&first).contains(r#""firstName":"Ann""#));
        // A change writes a new body, which carries no note: `dnd` is a boolean.
        let changed = stored(Value::String("yes".into()));
        assert_eq!(way.answer(binding, &changed, trace), None);
        assert!(!changed.body.fits(way.slot));
    }

    #[test]
    fn direct_answers_of_the_official_corpus_are_byte_for_byte_the_general_ones() {
        let Some(dir) = crate::spec::shared_corpus() else { return };
        let set = load(Source::Dir(dir), 1).unwrap();
        let (direct, single) = direct_answers_equal_the_general_ones(&set);
        assert!(direct.iter().any(|d| d == "GET /contacts/{contactId}"), "{direct:?}");
        eprintln!("{} of {single} single-record operations of the corpus are written directly", direct.len());
    }
}
