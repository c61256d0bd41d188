//! For the create operations of the default specs: a body generated from the
//! operation's own schema is accepted, and the same body with one field of
//! the wrong type is refused with a 422 that names that field.

use ghl_mock::respond::generate_valid;
use ghl_mock::spec::{Operation, ParamIn};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::support::*;

/// POST operations with a JSON body of named properties that a location PIT may call.
fn creates(set: &ghl_mock::SpecSet) -> Vec<&Operation> {
    let ops = &set.operations;
    ops.iter()
        .enumerate()
        // Creating under a record (tags, notes of a contact) needs that record: not a create of its own.
        .filter(|(i, o)| {
            !(set.stateful(*i) && o.params.iter().any(|p| p.location == ParamIn::Path && p.name != "locationId"))
        })
        .map(|(_, o)| o)
        .filter(|o| o.method.as_str() == "POST")
        .filter(|o| o.security.iter().any(|r| r.iter().all(|(s, _)| s == "bearer" || s == "Location-Access")))
        .filter(|o| {
            o.body.as_ref().is_some_and(|b| {
                b.content_types.iter().any(|t| t.contains("json"))
                    && b.schema.as_ref().and_then(|s| s.get("properties")).is_some_and(|p| !typed_fields(p).is_empty())
            })
        })
        .collect()
}

/// Top-level properties with one plain JSON type, and that type.
fn typed_fields(properties: &Value) -> Vec<(String, String)> {
    properties
        .as_object()
        .map(|props| {
            props
                .iter()
                .filter_map(|(name, schema)| {
                    let ty = match schema.get("type") {
                        Some(Value::String(t)) => t.clone(),
                        Some(Value::Array(ts)) => {
                            ts.iter().filter_map(Value::as_str).find(|t| *t != "null")?.to_string()
                        }
                        _ => return None,
                    };
                    ["string", "number", "integer", "boolean", "array", "object"]
                        .contains(&ty.as_str())
                        .then_some((name.clone(), ty))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A value no schema of type `ty` accepts.
fn wrong_value(ty: &str) -> Value {
    match ty {
        "string" => json!(12345),
        "number" | "integer" => json!("not a number"),
        "boolean" => json!("yes"),
        "array" => json!("not a list"),
        _ => json!("not an object"),
    }
}

fn path_of(op: &Operation) -> String {
    filled_path(op, |p| fill(p, 1))
}

#[test]
fn generated_bodies_are_accepted_and_one_broken_field_is_named_in_a_422() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let scopes: Vec<String> = embedded().scopes().into_iter().map(|s| format!("\"{s}\"")).collect();
    let m = runtime.block_on(TestMock::start(
        embedded(),
        unlimited_fixture(&format!("  - {{name: All, owner: {{location: {LOC_A}}}, scopes: [{}]}}", scopes.join(", "))),
    ));
    let spec = m.mock.spec.clone();
    let ops = creates(&spec);
    assert!(ops.len() >= 5, "the default specs have create operations: {}", ops.len());
    let token = m.token("All");
    // Bodies that name a contact, pipeline or calendar name stored ones.
    let refs = runtime.block_on(references(&m, "val"));
    let send = |op: &Operation, body: &Value| {
        let request =
            m.http.post(format!("{}{}", m.url, path_of(op))).bearer_auth(&token).header("Version", VERSION).json(body);
        runtime.block_on(async { read(request.send().await.unwrap()).await })
    };
    let config = ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(pick in 0..ops.len(), field_pick in 0usize..64, seed in 0u64..1_000_000)| {
        let op = ops[pick];
        let spec_body = op.body.as_ref().unwrap();
        let schema = spec_body.schema.as_ref().unwrap();
        let mut body = generate_valid(schema, spec_body.validator.as_deref(), seed).unwrap_or_else(|(v, why)| panic!("{}: cannot generate a valid body: {why}: {v}", op.id));
        refer(&mut body, &refs);
        // The body names the caller's own location, as a real client's would; unique
        // contact details keep the duplicate rule out of the way.
        if let Some(map) = body.as_object_mut() {
            for (key, value) in [("locationId", json!(LOC_A)), ("companyId", json!(COMPANY)), ("email", json!(format!("p{seed}@example.com"))), ("phone", json!(format!("+1555{seed:07}")))] {
                if map.contains_key(key) {
                    map.insert(key.to_string(), value);
                }
            }
        }
        let (status, answer) = send(op, &body);
        prop_assert!(status < 300, "{} {}: a valid body was refused: {status} {answer}\n{body}", op.method, op.path);

        let fields = typed_fields(schema.get("properties").unwrap());
        let (field, ty) = &fields[field_pick % fields.len()];
        let mut broken = body.clone();
        broken.as_object_mut().unwrap().insert(field.clone(), wrong_value(ty));
        let (status, answer) = send(op, &broken);
        prop_assert_eq!(status, 422, "{} {}: {} as {} was not refused: {}", op.method, op.path, field, wrong_value(ty), answer);
        let messages: Vec<&str> = answer["message"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        prop_assert!(messages.iter().any(|m| m.starts_with(&format!("{field} "))), "{}: no message names {field}: {messages:?}", op.id);
    });
}
