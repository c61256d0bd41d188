//! What a target answers when all is well: every read of the default specs
//! that the PIT's scopes allow answers 2xx with a body its schema accepts;
//! invalid requests get 422 in HighLevel's validation shape.

use crate::contract::{self, VERSION};
use crate::runner::ensure;
use crate::{Call, Stop, Suite};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::Value;

use super::support::{add, case, step, Ctx};

pub fn register(s: &mut Suite<Ctx>, ctx: &Ctx) {
    let mut reads: Vec<(usize, String)> = ctx
        .contract
        .pit_operations()
        .filter(|o| o.method == Method::GET)
        .map(|o| (o.path.clone(), o.id.clone()))
        .filter_map(|(path, id)| ctx.contract.operations().iter().position(|o| o.id == id).map(|i| (i, path)))
        .collect();
    reads.sort_by(|a, b| a.1.cmp(&b.1));
    for (index, path) in reads {
        s.add("answers", format!("every_read_answers_what_its_schema_describes[GET {path}]"), move |ctx: &Ctx| {
            read_answers_what_its_schema_describes(ctx, index)
        });
    }
    add!(s, "validation", an_invalid_email_in_a_new_contact_is_refused_with_422_and_its_message);
    add!(s, "validation", a_contact_list_limit_over_100_is_refused_with_422);
    add!(s, "validation", a_body_property_the_schema_does_not_name_is_refused_with_422_one_message_each);
}

fn read_answers_what_its_schema_describes(ctx: &Ctx, index: usize) -> Result<(), Stop> {
    let op = &ctx.contract.operations()[index];
    let missing = contract::missing_scopes(op, ctx.scopes());
    if !missing.is_empty() {
        return Err(Stop::Skip(format!("the PIT does not hold {}", missing.join(", "))));
    }
    let call = ctx.request_with_ids(op, 1)?.bearer(ctx.pit()).version(VERSION);
    let answer = ctx.send(&call)?;
    ensure((200..300).contains(&answer.status), || format!("{} answered {}", call.describe(), answer.summary()))?;
    let body = answer
        .json()
        .ok_or_else(|| Stop::Fail(format!("{} answered no JSON: {}", call.describe(), answer.summary())))?;
    let Some(validator) = &op.success.validator else {
        return Ok(());
    };
    let problems: Vec<String> =
        validator.iter_errors(&body).take(5).map(|e| format!("{e} at '{}'", e.instance_path())).collect();
    ensure(problems.is_empty(), || {
        let shown: String = body.to_string().chars().take(600).collect();
        format!("{} answered a body its schema refuses: {}\nbody: {shown}", call.describe(), problems.join("; "))
    })
}

/// The operation of the default specs at `method path`, when the PIT may
/// call it (skipped when it lacks a scope).
fn callable<'c>(ctx: &'c Ctx, method: Method, path: &str) -> Result<&'c ghl_mock::spec::Operation, Stop> {
    let op = ctx
        .contract
        .operation(&method, path)
        .ok_or_else(|| Stop::Fail(format!("the default specs have no {method} {path}")))?;
    let missing = contract::missing_scopes(op, ctx.scopes());
    if !missing.is_empty() {
        return Err(Stop::Skip(format!("the PIT does not hold {}", missing.join(", "))));
    }
    Ok(op)
}

/// The 422 shape: `statusCode`, a list of messages, `error`, and a `traceId`.
fn validation_shape(body: &Value) -> Result<Vec<String>, String> {
    let object = body.as_object().ok_or_else(|| format!("not a JSON object: {body}"))?;
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["error", "message", "statusCode", "traceId"] {
        return Err(format!("keys {keys:?}, wanted error, message, statusCode, traceId: {body}"));
    }
    if object["statusCode"] != 422 || object["error"] != "Unprocessable Entity" || !object["traceId"].is_string() {
        return Err(format!("not HighLevel's 422: {body}"));
    }
    let messages = object["message"].as_array().ok_or_else(|| format!("message is not a list: {body}"))?;
    messages
        .iter()
        .map(|m| m.as_str().map(str::to_string).ok_or_else(|| format!("a message is not a string: {body}")))
        .collect()
}

fn an_invalid_email_in_a_new_contact_is_refused_with_422_and_its_message(ctx: &Ctx) -> Result<(), Stop> {
    let op = callable(ctx, Method::POST, "/contacts/")?;
    let validator = op.body.as_ref().and_then(|b| b.validator.clone());
    let bodies = contract::body_strategy(op, ctx.location())
        .ok_or_else(|| Stop::Fail("POST /contacts/ has no body schema".into()))?;
    let not_emails = "[A-Za-z0-9 ._+-]{1,24}";
    ctx.property((bodies, not_emails), |(mut body, bad)| {
        // The body is valid but for the email: with a real address the spec accepts it.
        body["email"] = Value::String("ada@example.com".into());
        prop_assert!(
            validator.as_ref().is_none_or(|v| v.is_valid(&body)),
            "the generator made an invalid body: {body}"
        );
        body["email"] = Value::String(bad);
        let call = ctx.authed(Call::post("/contacts/").json(body));
        let answer = step(ctx.send(&call))?;
        prop_assert_eq!(answer.status, 422, "{}", answer.summary());
        let messages = case(validation_shape(&answer.body_value()))?;
        prop_assert!(messages.iter().any(|m| m == "email must be an email"), "messages: {:?}", messages);
        Ok(())
    })
}

/// Issue 14: HighLevel validates bodies with NestJS's `ValidationPipe`
/// (`whitelist` + `forbidNonWhitelisted`): a property the DTO does not name
/// is refused, `property X should not exist`, one message per property.
fn a_body_property_the_schema_does_not_name_is_refused_with_422_one_message_each(ctx: &Ctx) -> Result<(), Stop> {
    let op = callable(ctx, Method::POST, "/contacts/")?;
    let bodies = contract::body_strategy(op, ctx.location())
        .ok_or_else(|| Stop::Fail("POST /contacts/ has no body schema".into()))?;
    let schema = op.body.as_ref().and_then(|b| b.schema.clone());
    let named =
        move |name: &str| schema.as_deref().and_then(|s| s.get("properties")).and_then(|p| p.get(name)).is_some();
    // Names no contact DTO has: a `ghlMock` prefix and a few letters.
    let unknown = proptest::collection::btree_set("ghlMock[A-Z][a-z]{2,8}", 1..=3);
    ctx.property((bodies, unknown), |(mut body, extra)| {
        prop_assert!(extra.iter().all(|name| !named(name)), "the generator picked a named property: {extra:?}");
        for name in &extra {
            body[name.as_str()] = Value::from(1);
        }
        let call = ctx.authed(Call::post("/contacts/").json(body));
        let answer = step(ctx.send(&call))?;
        prop_assert_eq!(answer.status, 422, "{}", answer.summary());
        let messages = case(validation_shape(&answer.body_value()))?;
        for name in &extra {
            let wanted = format!("property {name} should not exist");
            prop_assert_eq!(messages.iter().filter(|m| **m == wanted).count(), 1, "{:?}", messages);
        }
        Ok(())
    })
}

fn a_contact_list_limit_over_100_is_refused_with_422(ctx: &Ctx) -> Result<(), Stop> {
    callable(ctx, Method::GET, "/contacts/")?;
    ctx.property(101u32..=10_000, |limit| {
        let call =
            ctx.authed(Call::get("/contacts/").query("locationId", ctx.location()).query("limit", limit.to_string()));
        let answer = step(ctx.send(&call))?;
        prop_assert_eq!(answer.status, 422, "{}", answer.summary());
        let messages = case(validation_shape(&answer.body_value()))?;
        prop_assert!(messages.iter().any(|m| m.starts_with("limit ")), "no message about limit: {:?}", messages);
        Ok(())
    })
}
