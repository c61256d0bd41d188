//! Answers for requests that passed every check.
//!
//! The order of preference for a 2xx body is: an example from the spec that
//! validates against the operation's own schema; else a value generated from
//! the schema (using the property-level examples, then without them), checked
//! with the same validator. Bodies are computed once at load time, so serving
//! one is a copy of bytes.

pub mod control;
pub mod generate;
pub mod oauth;

use axum::body::Bytes;
use serde_json::Value;

use crate::spec::Success;

/// A default body, why it may not validate when no attempt did, and where
/// the generator cut it to stay bounded.
pub struct DefaultBody {
    pub bytes: Bytes,
    pub problem: Option<String>,
    pub clamped: Vec<generate::Clamp>,
}

pub fn success_without_schema(status: u16) -> Success {
    Success { status, schema: None, validator: None, examples: Vec::new(), body: Bytes::from_static(b"{}") }
}

/// Attempts at generation before giving up on a schema the generator cannot satisfy.
const ATTEMPTS: u64 = 6;

pub fn default_body(
    schema: &Value,
    validator: Option<&jsonschema::Validator>,
    examples: &[(String, Value)],
    seed: u64,
) -> DefaultBody {
    if let Some((_, example)) = examples.first() {
        return DefaultBody { bytes: to_bytes(example), problem: None, clamped: Vec::new() };
    }
    let generated = generate_checked(schema, validator, seed, true);
    DefaultBody { bytes: to_bytes(&generated.value), problem: generated.problem, clamped: generated.clamped }
}

/// A value generated from `schema` that `validator` accepts; else the first
/// attempt and why it fails. Attempts alternate between using property
/// examples and not, walk through the alternatives of `oneOf`s, and end with
/// minimal values (required properties only, fewest items).
pub fn generate_valid(
    schema: &Value,
    validator: Option<&jsonschema::Validator>,
    seed: u64,
) -> Result<Value, (Value, String)> {
    generate_valid_with(schema, validator, seed, true)
}

/// As [`generate_valid`]; without `examples`, the spec's examples are never
/// used (fresh values, for `Prefer: dynamic=true`).
pub fn generate_valid_with(
    schema: &Value,
    validator: Option<&jsonschema::Validator>,
    seed: u64,
    examples: bool,
) -> Result<Value, (Value, String)> {
    let generated = generate_checked(schema, validator, seed, examples);
    match generated.problem {
        None => Ok(generated.value),
        Some(problem) => Err((generated.value, problem)),
    }
}

/// The outcome of [`generate_checked`].
struct Generated {
    /// The first valid attempt, else the first attempt.
    value: Value,
    /// Why `value` does not validate, if it does not.
    problem: Option<String>,
    /// Where the generator cut `value` to stay bounded.
    clamped: Vec<generate::Clamp>,
}

fn generate_checked(schema: &Value, validator: Option<&jsonschema::Validator>, seed: u64, examples: bool) -> Generated {
    let mut first: Option<Generated> = None;
    for attempt in 0..ATTEMPTS {
        let mut generator = generate::Generator::new(seed.wrapping_add(attempt), examples && attempt % 2 == 0);
        generator.variant = (attempt / 2) as usize;
        generator.minimal = attempt + 2 >= ATTEMPTS;
        let value = generator.value(schema);
        let problem =
            validator.and_then(|v| v.iter_errors(&value).next().map(|e| format!("{e} at '{}'", e.instance_path())));
        let generated = Generated { value, problem, clamped: generator.clamped().to_vec() };
        if generated.problem.is_none() {
            return generated;
        }
        first.get_or_insert(generated);
    }
    first.unwrap_or_else(|| Generated {
        value: Value::Object(Default::default()),
        problem: Some("no attempt".into()),
        clamped: Vec::new(),
    })
}

fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
}

/// Echoes a request's own values into a spec-driven answer, so a client sees
/// its ids and fields come back: every object property (to a few levels deep)
/// named like a path parameter, a query id or a top-level body field, and of
/// the same JSON type, takes the request's value. A path parameter `fooId`
/// also sets the `id` of an object under `foo`.
pub fn echo(answer: &mut Value, values: &[(String, Value)]) {
    echo_at(answer, values, 0);
}

fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::String(_), Value::String(_)) | (Value::Number(_), Value::Number(_)) | (Value::Bool(_), Value::Bool(_))
    )
}

fn echo_at(value: &mut Value, values: &[(String, Value)], depth: usize) {
    if depth > 4 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (name, given) in values {
                if let Some(slot) = map.get_mut(name) {
                    if same_kind(slot, given) {
                        *slot = given.clone();
                    }
                }
                if let Some(owner) = name.strip_suffix("Id") {
                    if let Some(Value::String(id)) = map.get_mut(owner).and_then(|o| o.get_mut("id")) {
                        if let Value::String(given) = given {
                            *id = given.clone();
                        }
                    }
                }
            }
            for child in map.values_mut() {
                echo_at(child, values, depth + 1);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| echo_at(i, values, depth + 1)),
        _ => {}
    }
}

/// Makes a stateful answer fit the operation's response schema: a stored
/// record echoes what clients sent, and a value the schema cannot represent
/// (a client's object where the schema says string) is left out of the
/// answer rather than served invalid. Each pass removes what the validator
/// names: the offending property or array item, or an object that misses a
/// required property. It stops when the answer validates or nothing changes.
pub fn conform(answer: &mut Value, validator: &jsonschema::Validator) {
    if validator.is_valid(answer) {
        return;
    }
    for _ in 0..16 {
        let mut paths: Vec<String> =
            validator.iter_errors(answer).map(|e| e.instance_path().as_str().to_string()).collect();
        if paths.is_empty() {
            return;
        }
        // Deepest first, and later array items before earlier ones, so that
        // removing one never moves another.
        paths.sort_by(|a, b| {
            let key = |p: &str| (p.matches('/').count(), p.rsplit('/').next().and_then(|i| i.parse::<usize>().ok()));
            key(b).cmp(&key(a))
        });
        paths.dedup();
        let before = answer.clone();
        for path in paths {
            remove_at(answer, &path);
        }
        if *answer == before {
            return;
        }
    }
}

/// Removes the object property or array item at `pointer` (not the root).
pub(crate) fn remove_at(value: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else { return };
    let last = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Some(i) = last.parse::<usize>().ok().filter(|i| *i < items.len()) {
                items.remove(i);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::schema::compile;
    use serde_json::json;

    #[test]
    fn conform_drops_only_the_fields_the_schema_cannot_represent() {
        let schema = json!({"type": "object", "properties": {"contact": {"type": "object", "properties": {
            "dateOfBirth": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "name": {"type": "string"}}}}});
        let validator = compile(&schema).unwrap();
        let mut answer = json!({"contact": {"dateOfBirth": {}, "tags": ["a", 5, "b", 6], "name": "Ada", "extra": 1}});
        conform(&mut answer, &validator);
        assert_eq!(answer, json!({"contact": {"tags": ["a", "b"], "name": "Ada", "extra": 1}}));
    }

    #[test]
    fn conform_drops_an_array_item_that_misses_a_required_property() {
        let schema = json!({"type": "object", "properties": {"customFields": {"type": "array", "items": {
            "type": "object", "required": ["id", "fieldValue"], "properties": {"fieldValue": {"type": "string"}}}}}});
        let validator = compile(&schema).unwrap();
        let mut answer =
            json!({"customFields": [{"id": "a", "fieldValue": "x"}, {"id": "b", "fieldValue": [1]}, {"id": "c"}]});
        conform(&mut answer, &validator);
        assert_eq!(answer, json!({"customFields": [{"id": "a", "fieldValue": "x"}]}));
    }

    #[test]
    fn echo_puts_the_requests_ids_and_fields_where_the_answer_has_them() {
        let mut answer =
            json!({"calendar": {"id": "x", "name": "n", "slots": 3}, "locationId": "y", "items": [{"name": "m"}]});
        let values = vec![
            ("calendarId".to_string(), json!("cal00000000000000001")),
            ("locationId".to_string(), json!("loc00000000000000001")),
            ("name".to_string(), json!("Mine")),
            ("slots".to_string(), json!("not a number")),
        ];
        echo(&mut answer, &values);
        assert_eq!(
            answer,
            json!({"calendar": {"id": "cal00000000000000001", "name": "Mine", "slots": 3}, "locationId": "loc00000000000000001", "items": [{"name": "Mine"}]})
        );
    }

    #[test]
    fn conform_leaves_a_valid_answer_alone() {
        let validator = compile(&json!({"type": "object"})).unwrap();
        let mut answer = json!({"a": [1, {"b": null}]});
        conform(&mut answer, &validator);
        assert_eq!(answer, json!({"a": [1, {"b": null}]}));
    }
}
