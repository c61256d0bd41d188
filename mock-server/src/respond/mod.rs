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
    Success {
        status,
        schema: None,
        validator: None,
        examples: Vec::new(),
        body: Bytes::from_static(b"{}"),
    }
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
        return DefaultBody {
            bytes: to_bytes(example),
            problem: None,
        };
    }
    let mut first_problem = None;
    let mut first_value = None;
    for attempt in 0..ATTEMPTS {
        // Attempts alternate between using property examples and not, and
        // walk through the alternatives of `oneOf`s.
        let mut generator = generate::Generator::new(seed.wrapping_add(attempt), attempt % 2 == 0);
        generator.variant = (attempt / 2) as usize;
        generator.minimal = attempt + 2 >= ATTEMPTS;
        let value = generator.value(schema);
        let problem = validator.and_then(|v| {
            v.iter_errors(&value)
                .next()
                .map(|e| format!("{e} at '{}'", e.instance_path()))
        });
        match problem {
            None => {
                return DefaultBody {
                    bytes: to_bytes(&value),
                    problem: None,
                }
            }
            Some(p) => {
                first_problem.get_or_insert(p);
                first_value.get_or_insert(value);
            }
        }
    }
    DefaultBody {
        bytes: to_bytes(&first_value.unwrap_or(Value::Object(Default::default()))),
        problem: first_problem,
    }
}

fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
}
