//! OpenAPI 3.0 schema objects → JSON Schema draft 4, and compiled validators.
//!
//! OpenAPI 3.0 schemas are a dialect of draft 4 (boolean `exclusiveMinimum`,
//! no `null` type). The differences that change what validates are handled
//! here: `nullable`, `readOnly`/`writeOnly` in `required`, and the non-standard
//! `type: any`. Annotations that do not validate are dropped, except `example`,
//! which the answer generator reads.

use serde_json::{Map, Value};

use super::{Warning, WarningKind};

/// Which side of the exchange a schema checks; `readOnly` properties are only
/// required in answers, `writeOnly` ones only in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

const TYPES: &[&str] = &["string", "number", "integer", "boolean", "array", "object", "null"];

/// Keywords copied as they are (their values hold no sub-schemas).
const PLAIN: &[&str] = &[
    "format",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "default",
    "example",
];

/// `{type: object, example: "2021-06-23T03:30:00+05:30"}`: an object of
/// nothing whose example is a string.
fn is_date_as_object(src: &Map<String, Value>) -> bool {
    src.get("type").and_then(Value::as_str) == Some("object")
        && !src.contains_key("properties")
        && !src.contains_key("additionalProperties")
        && src.get("example").is_some_and(Value::is_string)
}

/// Converts one (already reference-free) schema.
pub fn convert(schema: &Value, dir: Direction, file: &str, pointer: &str, warnings: &mut Vec<Warning>) -> Value {
    let mut ctx = Ctx { dir, file, warnings };
    ctx.convert(schema, pointer, 0)
}

struct Ctx<'a> {
    dir: Direction,
    file: &'a str,
    warnings: &'a mut Vec<Warning>,
}

/// Deeper schemas are cut to an open schema: no real spec nests this deep.
const MAX_DEPTH: usize = 96;

impl Ctx<'_> {
    fn warn(&mut self, pointer: &str, kind: WarningKind, message: impl Into<String>) {
        self.warnings.push(Warning::new(self.file, pointer, kind, message.into()));
    }

    fn convert(&mut self, schema: &Value, pointer: &str, depth: usize) -> Value {
        let Value::Object(src) = schema else {
            if !matches!(schema, Value::Bool(_)) {
                self.warn(pointer, WarningKind::BadSchema, "schema is not an object; treated as an open schema");
            }
            return Value::Object(Map::new());
        };
        if depth > MAX_DEPTH {
            self.warn(pointer, WarningKind::BadSchema, "schema nested too deeply; cut to an open schema");
            return Value::Object(Map::new());
        }
        if is_date_as_object(src) {
            // NestJS renders a `Date` field as `type: object`; the service
            // answers an ISO string, as the example shows.
            let mut out = Map::new();
            out.insert("type".into(), Value::String("string".into()));
            if let Some(example) = src.get("example") {
                out.insert("example".into(), example.clone());
            }
            return Value::Object(out);
        }
        let mut out = Map::new();
        for key in PLAIN {
            if let Some(v) = src.get(*key) {
                out.insert((*key).to_string(), v.clone());
            }
        }
        self.exclusive_bounds(src, &mut out);
        self.convert_type(src, &mut out, pointer);

        if let Some(props) = src.get("properties") {
            match props {
                Value::Object(props) => {
                    let mut converted = Map::new();
                    for (name, sub) in props {
                        let p = format!("{pointer}/properties/{name}");
                        converted.insert(name.clone(), self.convert(sub, &p, depth + 1));
                    }
                    out.insert("properties".into(), Value::Object(converted));
                }
                _ => self.warn(pointer, WarningKind::BadSchema, "`properties` is not an object; ignored"),
            }
        }
        if let Some(required) = src.get("required") {
            match required {
                Value::Array(names) => {
                    let kept: Vec<Value> =
                        names.iter().filter(|n| n.as_str().is_some_and(|n| !self.hidden(src, n))).cloned().collect();
                    if !kept.is_empty() {
                        out.insert("required".into(), Value::Array(kept));
                    }
                }
                // `required: true` on a property is a common slip; it has no meaning there.
                _ => self.warn(pointer, WarningKind::BadSchema, "`required` is not a list of names; ignored"),
            }
        }
        match src.get("items") {
            // NestJS writes a property typed `[Array]` as an array of arrays
            // of nothing (`items: {type: array}`), where the service answers
            // an array of objects (pipelines' `stages`): items of any shape.
            Some(Value::Object(items))
                if items.get("type").and_then(Value::as_str) == Some("array")
                    && !items.contains_key("items")
                    && items.len() == 1 =>
            {
                out.insert("items".into(), Value::Object(Default::default()));
            }
            Some(items @ Value::Object(_)) => {
                let p = format!("{pointer}/items");
                out.insert("items".into(), self.convert(items, &p, depth + 1));
            }
            Some(_) => self.warn(pointer, WarningKind::BadSchema, "`items` is not a schema; ignored"),
            None => {}
        }
        match src.get("additionalProperties") {
            Some(Value::Bool(b)) => {
                out.insert("additionalProperties".into(), Value::Bool(*b));
            }
            Some(sub @ Value::Object(_)) => {
                let p = format!("{pointer}/additionalProperties");
                out.insert("additionalProperties".into(), self.convert(sub, &p, depth + 1));
            }
            Some(_) => self.warn(
                pointer,
                WarningKind::BadSchema,
                "`additionalProperties` is neither a boolean nor a schema; ignored",
            ),
            None => {}
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            match src.get(key) {
                Some(Value::Array(subs)) if !subs.is_empty() => {
                    let converted = subs
                        .iter()
                        .enumerate()
                        .map(|(i, s)| self.convert(s, &format!("{pointer}/{key}/{i}"), depth + 1))
                        .collect();
                    out.insert(key.into(), Value::Array(converted));
                }
                Some(_) => {
                    self.warn(pointer, WarningKind::BadSchema, format!("`{key}` is not a non-empty list; ignored"))
                }
                None => {}
            }
        }
        if let Some(not) = src.get("not") {
            let p = format!("{pointer}/not");
            out.insert("not".into(), self.convert(not, &p, depth + 1));
        }
        if src.get("nullable") == Some(&Value::Bool(true)) {
            return make_nullable(out);
        }
        Value::Object(out)
    }

    /// True when a property is hidden on this side (readOnly in requests,
    /// writeOnly in answers), so it must not be required here.
    fn hidden(&self, src: &Map<String, Value>, name: &str) -> bool {
        let flag = match self.dir {
            Direction::Request => "readOnly",
            Direction::Response => "writeOnly",
        };
        src.get("properties").and_then(|p| p.get(name)).and_then(|p| p.get(flag)) == Some(&Value::Bool(true))
    }

    fn convert_type(&mut self, src: &Map<String, Value>, out: &mut Map<String, Value>, pointer: &str) {
        match src.get("type") {
            None => {}
            Some(Value::String(t)) if TYPES.contains(&t.as_str()) => {
                out.insert("type".into(), Value::String(t.clone()));
            }
            Some(Value::String(t)) if t == "any" => {
                self.warn(pointer, WarningKind::BadSchema, "`type: any` is not OpenAPI; treated as any type");
            }
            Some(Value::Array(ts)) => {
                let kept: Vec<Value> =
                    ts.iter().filter(|t| t.as_str().is_some_and(|t| TYPES.contains(&t))).cloned().collect();
                if !kept.is_empty() {
                    out.insert("type".into(), Value::Array(kept));
                }
            }
            Some(other) => {
                self.warn(pointer, WarningKind::BadSchema, format!("unknown type {other}; treated as any type"));
            }
        }
    }

    /// Draft 4 wants boolean exclusive bounds; a number (3.1 style) is moved
    /// into `minimum`/`maximum`.
    fn exclusive_bounds(&mut self, src: &Map<String, Value>, out: &mut Map<String, Value>) {
        for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
            match src.get(flag) {
                Some(Value::Bool(b)) if src.contains_key(bound) => {
                    out.insert(flag.into(), Value::Bool(*b));
                }
                Some(n @ Value::Number(_)) => {
                    out.insert(bound.into(), n.clone());
                    out.insert(flag.into(), Value::Bool(true));
                }
                _ => {}
            }
        }
    }
}

fn make_nullable(mut out: Map<String, Value>) -> Value {
    if let Some(t) = out.get_mut("type") {
        let mut types = match t.take() {
            Value::Array(ts) => ts,
            single => vec![single],
        };
        if !types.contains(&Value::from("null")) {
            types.push(Value::from("null"));
        }
        *t = Value::Array(types);
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            if !values.contains(&Value::Null) {
                values.push(Value::Null);
            }
        }
        return Value::Object(out);
    }
    if let Some(Value::Array(values)) = out.get_mut("enum") {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
        return Value::Object(out);
    }
    if out.keys().any(|k| k != "example" && k != "default") {
        let example = out.remove("example");
        let mut wrapped = Map::new();
        wrapped.insert("anyOf".into(), Value::Array(vec![Value::Object(out), serde_json::json!({"type": "null"})]));
        if let Some(example) = example {
            wrapped.insert("example".into(), example);
        }
        return Value::Object(wrapped);
    }
    Value::Object(out)
}

/// A compiled draft 4 validator, formats checked.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft4::options().should_validate_formats(true).build(schema).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv(schema: Value, dir: Direction) -> Value {
        let mut w = Vec::new();
        convert(&schema, dir, "t.json", "", &mut w)
    }

    #[test]
    fn nullable_string_admits_null_and_still_refuses_numbers() {
        let s = conv(json!({"type": "string", "nullable": true}), Direction::Response);
        let v = compile(&s).unwrap();
        assert!(v.is_valid(&json!(null)));
        assert!(v.is_valid(&json!("x")));
        assert!(!v.is_valid(&json!(3)));
    }

    #[test]
    fn nullable_enum_gains_null_in_its_values() {
        let s = conv(json!({"type": "string", "enum": ["a"], "nullable": true}), Direction::Response);
        let v = compile(&s).unwrap();
        assert!(v.is_valid(&json!(null)));
        assert!(!v.is_valid(&json!("b")));
    }

    #[test]
    fn nullable_composition_without_type_is_wrapped_in_any_of() {
        let s = conv(json!({"allOf": [{"type": "object", "required": ["a"]}], "nullable": true}), Direction::Response);
        let v = compile(&s).unwrap();
        assert!(v.is_valid(&json!(null)));
        assert!(!v.is_valid(&json!({})));
    }

    #[test]
    fn read_only_properties_are_not_required_in_requests_but_are_in_answers() {
        let schema = json!({"type": "object", "required": ["id", "name"],
            "properties": {"id": {"type": "string", "readOnly": true}, "name": {"type": "string"}}});
        let request = compile(&conv(schema.clone(), Direction::Request)).unwrap();
        let response = compile(&conv(schema, Direction::Response)).unwrap();
        assert!(request.is_valid(&json!({"name": "n"})));
        assert!(!response.is_valid(&json!({"name": "n"})));
    }

    #[test]
    fn write_only_properties_are_not_required_in_answers() {
        let schema = json!({"type": "object", "required": ["secret"],
            "properties": {"secret": {"type": "string", "writeOnly": true}}});
        assert!(compile(&conv(schema.clone(), Direction::Response)).unwrap().is_valid(&json!({})));
        assert!(!compile(&conv(schema, Direction::Request)).unwrap().is_valid(&json!({})));
    }

    #[test]
    fn type_any_and_arrays_without_items_accept_anything_with_a_warning() {
        let mut w = Vec::new();
        let s = convert(
            &json!({"type": "object", "properties": {"x": {"type": "any"}, "l": {"type": "array"}}}),
            Direction::Response,
            "f.json",
            "/p",
            &mut w,
        );
        let v = compile(&s).unwrap();
        assert!(v.is_valid(&json!({"x": [1, {"a": null}], "l": [1, "two"]})));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].pointer, "/p/properties/x");
    }

    #[test]
    fn email_format_is_enforced() {
        let v = compile(&conv(json!({"type": "string", "format": "email"}), Direction::Request)).unwrap();
        assert!(v.is_valid(&json!("a@b.co")));
        assert!(!v.is_valid(&json!("not an email")));
    }
}
