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
    let op = ctx
        .contract
        .operation(&Method::POST, "/contacts/")
        .ok_or_else(|| Stop::Fail("the default specs have no POST /contacts/".into()))?;
    let missing = contract::missing_scopes(op, ctx.scopes());
    if !missing.is_empty() {
        return Err(Stop::Skip(format!("the PIT does not hold {}", missing.join(", "))));
    }
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

fn a_contact_list_limit_over_100_is_refused_with_422(ctx: &Ctx) -> Result<(), Stop> {
    let op = ctx
        .contract
        .operation(&Method::GET, "/contacts/")
        .ok_or_else(|| Stop::Fail("the default specs have no GET /contacts/".into()))?;
    let missing = contract::missing_scopes(op, ctx.scopes());
    if !missing.is_empty() {
        return Err(Stop::Skip(format!("the PIT does not hold {}", missing.join(", "))));
    }
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
