//! Answers made comparable across targets, for the snapshot files that the
//! mock and a real sandbox share: the status, the headers that matter
//! (`content-type`; which `X-RateLimit-*` are present, not their values), and
//! the body — refusals with their dynamic values redacted (ids, trace ids,
//! timestamps), success bodies reduced to their shape (keys and JSON types).

use serde_json::{Map, Value};

use crate::client::{Answer, RATE_LIMIT_HEADERS};

/// The normalised answer a snapshot holds.
pub fn for_snapshot(answer: &Answer) -> Value {
    let body = match answer.json() {
        Some(json) if (200..300).contains(&answer.status) => shape(&json),
        Some(json) => redact(&json),
        None if answer.body.is_empty() => Value::Null,
        None => Value::String(format!("[not JSON: {} bytes]", answer.body.len())),
    };
    let mut out = Map::new();
    out.insert("status".into(), Value::from(answer.status));
    out.insert("headers".into(), headers(answer));
    out.insert("body".into(), body);
    Value::Object(out)
}

fn headers(answer: &Answer) -> Value {
    let mut out = Map::new();
    let content_type = answer.header("content-type").map(|v| v.to_ascii_lowercase().replace(' ', ""));
    out.insert("content-type".into(), content_type.map(Value::String).unwrap_or(Value::Null));
    for name in RATE_LIMIT_HEADERS {
        if answer.header(name).is_some() {
            out.insert(name.to_ascii_lowercase(), Value::String("[redacted]".into()));
        }
    }
    Value::Object(out)
}

/// Keys and JSON types; a list shows each distinct element shape once.
pub fn shape(value: &Value) -> Value {
    match value {
        Value::Null => Value::String("null".into()),
        Value::Bool(_) => Value::String("boolean".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::String(_) => Value::String("string".into()),
        Value::Array(items) => {
            let mut shapes: Vec<Value> = Vec::new();
            for item in items {
                let s = shape(item);
                if !shapes.contains(&s) {
                    shapes.push(s);
                }
            }
            shapes.sort_by_key(|s| s.to_string());
            Value::Array(shapes)
        }
        Value::Object(map) => sorted(map, shape),
    }
}

/// A refusal with what changes from request to request replaced.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let v = &map[key];
                let redacted = match (key.as_str(), v) {
                    ("traceId", _) => Value::String("[trace id]".into()),
                    (k, Value::String(_)) if is_id_key(k) => Value::String("[id]".into()),
                    (_, Value::String(s)) if looks_like_timestamp(s) => Value::String("[timestamp]".into()),
                    _ => redact(v),
                };
                out.insert(key.clone(), redacted);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) if looks_like_timestamp(s) => Value::String("[timestamp]".into()),
        other => other.clone(),
    }
}

fn sorted(map: &Map<String, Value>, f: fn(&Value) -> Value) -> Value {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    Value::Object(keys.into_iter().map(|k| (k.clone(), f(&map[k]))).collect())
}

fn is_id_key(key: &str) -> bool {
    key == "id" || key.ends_with("Id") || key.ends_with("_id")
}

/// `2026-01-01T00:00:00Z`, with or without fractions or an offset.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: u16, headers: &[(&str, &str)], body: Value) -> Answer {
        Answer {
            status,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    #[test]
    fn a_refusal_keeps_its_words_and_loses_its_trace_id_and_ids() {
        let a = answer(
            422,
            &[("content-type", "application/json; charset=utf-8"), ("x-ratelimit-remaining", "24")],
            json!({"statusCode": 422, "message": ["email must be an email"], "error": "Unprocessable Entity",
                   "traceId": "6b1f…", "meta": {"contactId": "abc", "at": "2026-01-01T00:00:00.000Z"}}),
        );
        assert_eq!(
            for_snapshot(&a),
            json!({
                "status": 422,
                "headers": {"content-type": "application/json;charset=utf-8", "x-ratelimit-remaining": "[redacted]"},
                "body": {"error": "Unprocessable Entity", "message": ["email must be an email"],
                         "meta": {"at": "[timestamp]", "contactId": "[id]"}, "statusCode": 422, "traceId": "[trace id]"}
            })
        );
    }

    #[test]
    fn a_success_body_is_reduced_to_its_shape() {
        let a = answer(
            200,
            &[],
            json!({"location": {"id": "x", "name": "n", "tags": ["a", "b"], "n": 1, "ok": true, "z": null}}),
        );
        assert_eq!(
            for_snapshot(&a)["body"],
            json!({"location": {"id": "string", "n": "number", "name": "string", "ok": "boolean", "tags": ["string"], "z": "null"}})
        );
        assert_eq!(for_snapshot(&a)["headers"], json!({"content-type": null}));
    }
}
