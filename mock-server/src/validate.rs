//! Request validation against the operation, after the auth checks, the way
//! HighLevel's validation pipe reports it: one message per problem, worded as
//! class-validator words them (`email must be an email`, `property foo should
//! not exist`, `locationId should not be empty`).
//!
//! Query and path values arrive as text; they are read as the type their
//! schema asks for before they are checked. Bodies are checked as JSON (or, for
//! form-encoded operations, as an object of strings).

use axum::http::HeaderMap;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::{Map, Number, Value};

use crate::config::UnknownProperties;
use crate::error::ApiError;
use crate::spec::{Operation, Param, ParamIn};

/// Checks parameters and body; `Err` carries every problem found.
pub fn request(
    op: &Operation,
    path_params: &[(String, String)],
    query: &[(String, String)],
    headers: &HeaderMap,
    body: Option<&Value>,
    unknown: UnknownProperties,
) -> Result<(), ApiError> {
    let mut messages = Vec::new();
    for param in &op.params {
        let values: Vec<&str> = match param.location {
            ParamIn::Path => path_params.iter().filter(|(k, _)| *k == param.name).map(|(_, v)| v.as_str()).collect(),
            ParamIn::Query => query.iter().filter(|(k, _)| *k == param.name).map(|(_, v)| v.as_str()).collect(),
            ParamIn::Header => {
                // `Version` belongs to the auth layer; the rest only need to be present.
                if param.required
                    && !param.name.eq_ignore_ascii_case("version")
                    && headers.get(param.name.as_str()).is_none()
                {
                    messages.push(format!("{} header should not be empty", param.name));
                }
                continue;
            }
            ParamIn::Cookie => continue,
        };
        check_param(param, &values, &mut messages);
    }
    if let Some(spec_body) = &op.body {
        if let Some(validator) = &spec_body.validator {
            let empty = Value::Object(Map::new());
            let instance = match body {
                Some(b) => b,
                None if spec_body.required => &empty,
                None => return finish(messages),
            };
            if unknown == UnknownProperties::Reject {
                if let Some(schema) = &spec_body.schema {
                    unknown_properties(schema, instance, "", &mut messages);
                }
            }
            describe_errors(validator, instance, "", &mut messages);
        }
    }
    finish(messages)
}

/// The property maps an object schema names (its own, then its `allOf`
/// parts'), or None when it may hold any (no `properties`,
/// `additionalProperties` allowed, `patternProperties`, or `anyOf`/`oneOf`
/// whose choice is not known here). Borrowed: this runs on every body.
fn named_properties(schema: &Value) -> Option<Vec<&Map<String, Value>>> {
    let map = schema.as_object()?;
    if map.contains_key("anyOf") || map.contains_key("oneOf") || map.contains_key("patternProperties") {
        return None;
    }
    if map.get("additionalProperties").is_some_and(|a| a != &Value::Bool(false)) {
        return None;
    }
    let mut named: Vec<&Map<String, Value>> = map.get("properties").and_then(Value::as_object).into_iter().collect();
    for part in map.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        named.extend(named_properties(part)?);
    }
    // `properties: {}` is an undocumented DTO (the official files hold a few,
    // such as the contact search's), not one that takes nothing; only
    // `additionalProperties: false` says that.
    let closed = map.get("additionalProperties") == Some(&Value::Bool(false));
    (named.iter().any(|m| !m.is_empty()) || closed).then_some(named)
}

/// `property X should not exist`, one message per body property the schema
/// does not name, nested ones under their dotted parent (NestJS
/// `ValidationPipe` with `whitelist` and `forbidNonWhitelisted`).
pub fn unknown_properties(schema: &Value, instance: &Value, prefix: &str, out: &mut Vec<String>) {
    let at = |name: &str| if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
    match instance {
        Value::Object(fields) => {
            let Some(named) = named_properties(schema) else { return };
            for (key, value) in fields {
                // The last part naming it decides, as one merged map would.
                match named.iter().rev().find_map(|m| m.get(key)) {
                    Some(inner) => unknown_properties(inner, value, &at(key), out),
                    None if prefix.is_empty() => out.push(format!("property {key} should not exist")),
                    None => out.push(format!("{prefix}.property {key} should not exist")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, value) in items.iter().enumerate() {
                    unknown_properties(item, value, &at(&i.to_string()), out);
                }
            }
        }
        _ => {}
    }
}

fn finish(mut messages: Vec<String>) -> Result<(), ApiError> {
    if messages.is_empty() {
        return Ok(());
    }
    messages.dedup();
    Err(ApiError::Unprocessable { messages })
}

fn check_param(param: &Param, values: &[&str], messages: &mut Vec<String>) {
    // An empty value (`?limit=`) is present, not absent: only a required
    // parameter reads it as missing; an optional one is checked as given.
    let empty = values.iter().all(|v| v.is_empty());
    if values.is_empty() || empty && param.required {
        if param.required {
            messages.push(format!("{} should not be empty", param.name));
        }
        return;
    }
    let Some(validator) = &param.validator else { return };
    let value = match typed(&param.schema, values) {
        Ok(v) => v,
        Err(kind) => {
            messages.push(type_message(&param.name, kind));
            return;
        }
    };
    describe_errors(validator, &value, &param.name, messages);
}

/// Reads text values as the schema's type.
/// Issue 14: the fields of a `multipart/form-data` body as an object, each
/// read as the type its property's schema asks for (as query values are);
/// a field the schema does not name stays text (and is then refused as
/// unknown), a value that is not of its type stays text (and is refused for
/// its type). A field sent twice is a list.
pub fn form_fields(schema: Option<&Value>, fields: Vec<(String, String)>) -> Value {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in fields {
        // `attachmentUrls[]` is the usual spelling of a list field.
        let name = name.strip_suffix("[]").map(str::to_string).unwrap_or(name);
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    let properties = schema.and_then(|s| s.get("properties"));
    let mut out = Map::new();
    for (name, values) in grouped {
        let texts: Vec<&str> = values.iter().map(String::as_str).collect();
        let value = match properties.and_then(|p| p.get(&name)) {
            Some(property) => typed(property, &texts).unwrap_or_else(|_| text_value(&values)),
            None => text_value(&values),
        };
        out.insert(name, value);
    }
    Value::Object(out)
}

fn text_value(values: &[String]) -> Value {
    match values {
        [one] => Value::String(one.clone()),
        many => Value::Array(many.iter().cloned().map(Value::String).collect()),
    }
}

fn typed(schema: &Value, values: &[&str]) -> Result<Value, &'static str> {
    let ty = schema_type(schema);
    if ty == Some("array") {
        let items = schema.get("items").cloned().unwrap_or(Value::Object(Map::new()));
        let split: Vec<&str> = values.iter().flat_map(|v| v.split(',')).collect();
        return split.iter().map(|v| scalar(&items, v)).collect::<Result<Vec<_>, _>>().map(Value::Array);
    }
    scalar(schema, values.last().copied().unwrap_or(""))
}

fn schema_type(schema: &Value) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn scalar(schema: &Value, text: &str) -> Result<Value, &'static str> {
    match schema_type(schema) {
        Some("integer") => text.trim().parse::<i64>().map(Value::from).map_err(|_| "integer"),
        Some("number") => text.trim().parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).ok_or("number"),
        Some("boolean") => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err("boolean"),
        },
        Some("object") => serde_json::from_str(text).map_err(|_| "object"),
        _ => Ok(Value::String(text.to_string())),
    }
}

fn type_message(name: &str, kind: &str) -> String {
    match kind {
        "integer" => format!("{name} must be an integer number"),
        "number" => format!("{name} must be a number conforming to the specified constraints"),
        "boolean" => format!("{name} must be a boolean value"),
        "array" => format!("{name} must be an array"),
        "object" => format!("{name} must be an object"),
        "null" => format!("{name} must be null"),
        _ => format!("{name} must be a string"),
    }
}

/// A dotted name for an instance path: `/address/city` → `address.city`.
fn dotted(prefix: &str, pointer: &str) -> String {
    let mut parts: Vec<String> = if prefix.is_empty() { Vec::new() } else { vec![prefix.to_string()] };
    parts.extend(pointer.split('/').filter(|s| !s.is_empty()).map(|s| s.replace("~1", "/").replace("~0", "~")));
    parts.join(".")
}

/// Appends one message per validation error of `instance`.
pub fn describe_errors(validator: &jsonschema::Validator, instance: &Value, prefix: &str, out: &mut Vec<String>) {
    // Most requests are valid: the boolean check is much cheaper than collecting errors.
    if validator.is_valid(instance) {
        return;
    }
    for error in validator.iter_errors(instance) {
        let at = dotted(prefix, error.instance_path().as_str());
        let subject = if at.is_empty() { "body".to_string() } else { at.clone() };
        let message = match error.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().map(str::to_string).unwrap_or_else(|| property.to_string());
                let full = if at.is_empty() { name } else { format!("{at}.{name}") };
                format!("{full} should not be empty")
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    let full = if at.is_empty() { name.clone() } else { format!("{at}.{name}") };
                    out.push(format!("property {full} should not exist"));
                }
                continue;
            }
            ValidationErrorKind::Type { kind } => {
                let wanted = match kind {
                    TypeKind::Single(t) => t.to_string(),
                    TypeKind::Multiple(ts) => {
                        ts.iter().map(|t| t.to_string()).find(|t| t != "null").unwrap_or_default()
                    }
                };
                type_message(&subject, &wanted)
            }
            ValidationErrorKind::Format { format } => match format.as_str() {
                "email" => format!("{subject} must be an email"),
                "date-time" | "date" => format!("{subject} must be a valid ISO 8601 date string"),
                "uri" | "url" => format!("{subject} must be a URL address"),
                "uuid" => format!("{subject} must be a UUID"),
                other => format!("{subject} must be a valid {other}"),
            },
            ValidationErrorKind::Enum { options } => {
                let list: Vec<String> = options
                    .as_array()
                    .map(|o| {
                        o.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect()
                    })
                    .unwrap_or_default();
                format!("{subject} must be one of the following values: {}", list.join(", "))
            }
            ValidationErrorKind::Maximum { limit } => format!("{subject} must not be greater than {limit}"),
            ValidationErrorKind::Minimum { limit } => format!("{subject} must not be less than {limit}"),
            ValidationErrorKind::MaxLength { limit } => {
                format!("{subject} must be shorter than or equal to {limit} characters")
            }
            ValidationErrorKind::MinLength { limit } => {
                format!("{subject} must be longer than or equal to {limit} characters")
            }
            ValidationErrorKind::MaxItems { limit } => format!("{subject} must contain no more than {limit} elements"),
            ValidationErrorKind::MinItems { limit } => format!("{subject} must contain at least {limit} elements"),
            _ => format!("{subject}: {error}"),
        };
        out.push(message);
    }
}

/// The nesting depth of a JSON value, counted without recursion.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::schema::{compile, convert, Direction};
    use serde_json::json;

    fn messages(schema: Value, instance: Value) -> Vec<String> {
        let converted = convert(&schema, Direction::Request, "t", "", &mut Vec::new());
        let validator = compile(&converted).unwrap();
        let mut out = Vec::new();
        describe_errors(&validator, &instance, "", &mut out);
        out
    }

    #[test]
    fn messages_read_like_high_levels_validation_pipe() {
        let schema = json!({"type": "object", "additionalProperties": false, "required": ["locationId"],
            "properties": {"locationId": {"type": "string"}, "email": {"type": "string", "format": "email"},
                           "limit": {"type": "integer", "maximum": 100}, "type": {"type": "string", "enum": ["lead", "customer"]}}});
        let got = messages(schema, json!({"email": "nope", "limit": 101, "type": "x", "foo": 1}));
        for expected in [
            "locationId should not be empty",
            "email must be an email",
            "limit must not be greater than 100",
            "type must be one of the following values: lead, customer",
            "property foo should not exist",
        ] {
            assert!(got.iter().any(|m| m == expected), "missing '{expected}' in {got:?}");
        }
    }

    #[test]
    fn nested_problems_name_the_dotted_path() {
        let schema = json!({"type": "object", "properties": {"address": {"type": "object", "properties": {"city": {"type": "string"}}}}});
        assert_eq!(messages(schema, json!({"address": {"city": 5}})), vec!["address.city must be a string"]);
    }

    #[test]
    fn text_values_are_read_as_their_schema_type() {
        assert_eq!(typed(&json!({"type": "integer"}), &["42"]), Ok(json!(42)));
        assert_eq!(typed(&json!({"type": "integer"}), &["4x"]), Err("integer"));
        assert_eq!(typed(&json!({"type": "boolean"}), &["true"]), Ok(json!(true)));
        assert_eq!(
            typed(&json!({"type": "array", "items": {"type": "string"}}), &["a,b", "c"]),
            Ok(json!(["a", "b", "c"]))
        );
    }

    #[test]
    fn depth_is_counted_without_recursion() {
        let mut deep = json!(1);
        for _ in 0..1000 {
            deep = json!([deep]);
        }
        assert_eq!(depth(&deep), 1001);
    }
}
