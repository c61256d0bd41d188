//! Answers for requests that passed every check.
//!
//! The order of preference for a 2xx body is: an example from the spec that
//! validates against the operation's own schema; else a value generated from
//! the schema (using the property-level examples, then without them), checked
//! with the same validator. Bodies are computed once at load time, so serving
//! one is a copy of bytes.

pub mod generate;
pub mod oauth;

use axum::body::Bytes;
use serde_json::Value;

use crate::spec::Success;

/// A default body, and why it may not validate when no attempt did.
pub struct DefaultBody {
    pub bytes: Bytes,
    pub problem: Option<String>,
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
        return DefaultBody { bytes: to_bytes(example), problem: None };
    }
    match generate_valid(schema, validator, seed) {
        Ok(value) => DefaultBody { bytes: to_bytes(&value), problem: None },
        Err((closest, problem)) => DefaultBody { bytes: to_bytes(&closest), problem: Some(problem) },
    }
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
    let mut first: Option<(Value, String)> = None;
    for attempt in 0..ATTEMPTS {
        let mut generator = generate::Generator::new(seed.wrapping_add(attempt), attempt % 2 == 0);
        generator.variant = (attempt / 2) as usize;
        generator.minimal = attempt + 2 >= ATTEMPTS;
        let value = generator.value(schema);
        let problem =
            validator.and_then(|v| v.iter_errors(&value).next().map(|e| format!("{e} at '{}'", e.instance_path())));
        match problem {
            None => return Ok(value),
            Some(p) => {
                first.get_or_insert((value, p));
            }
        }
    }
    Err(first.unwrap_or_else(|| (Value::Object(Default::default()), "no attempt".into())))
}

fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
}
