//! BEHAVIOUR.md §3 rows 2–5 and 9: missing, garbage, unknown, revoked,
//! rotated, expired and wrong-kind tokens, each refused with its exact body;
//! and the lifecycles that decide when a token stops working.

use crate::contract::{self, message, refusal, VERSION};
use crate::runner::ensure;
use crate::{Call, Capability, Stop, Suite};
use ghl_mock::spec::Operation;
use proptest::prelude::*;

use super::support::{add, answered, exactly, step, Ctx};

pub fn register(s: &mut Suite<Ctx>) {
    add!(s, "auth", a_request_without_a_token_is_refused_as_an_invalid_jwt);
    add!(s, "auth", a_garbage_bearer_token_is_refused_as_an_invalid_jwt);
    add!(s, "auth", an_unknown_private_integration_token_is_refused_as_invalid);
    add!(s, "auth", a_location_pit_on_an_agency_only_operation_is_refused_as_the_wrong_user_type);
    add!(s, "auth", a_deleted_pit_is_refused_at_once);
    add!(s, "auth", the_old_token_of_a_rotation_that_expired_now_is_refused);
    add!(s, "auth", a_rotated_pit_keeps_working_for_seven_days_and_then_stops);
    add!(s, "auth", an_oauth_refresh_token_is_no_bearer_token);
    add!(s, "auth", an_oauth_access_token_works_until_86399_seconds_have_passed);
}

/// Every operation that wants a token, and a seed for its request.
fn secured(ctx: &Ctx) -> BoxedStrategy<(usize, u64)> {
    let indexes: Vec<usize> =
        ctx.contract.operations().iter().enumerate().filter(|(_, o)| !o.security.is_empty()).map(|(i, _)| i).collect();
    (proptest::sample::select(indexes), any::<u64>()).boxed()
}

fn op(ctx: &Ctx, index: usize) -> &Operation {
    &ctx.contract.operations()[index]
}

fn a_request_without_a_token_is_refused_as_an_invalid_jwt(ctx: &Ctx) -> Result<(), Stop> {
    ctx.property(secured(ctx), |(index, seed)| {
        let call = contract::request(op(ctx, index), ctx.location(), &[], seed).version(VERSION);
        let answer = step(ctx.send(&call))?;
        answered(&call, &answer, 401, &refusal(401, message::INVALID_JWT))
    })
}

fn a_garbage_bearer_token_is_refused_as_an_invalid_jwt(ctx: &Ctx) -> Result<(), Stop> {
    let garbage = "[A-Za-z0-9._~+/=-]{1,120}".prop_filter("not shaped like a PIT", |t| !t.starts_with("pit-"));
    ctx.property((secured(ctx), garbage), |((index, seed), token)| {
        let call = contract::request(op(ctx, index), ctx.location(), &[], seed).bearer(&token).version(VERSION);
        let answer = step(ctx.send(&call))?;
        answered(&call, &answer, 401, &refusal(401, message::INVALID_JWT))
    })
}

fn an_unknown_private_integration_token_is_refused_as_invalid(ctx: &Ctx) -> Result<(), Stop> {
    let unknown = "pit-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";
    ctx.property((secured(ctx), unknown), |((index, seed), token)| {
        prop_assume!(token != ctx.pit());
        let call = contract::request(op(ctx, index), ctx.location(), &[], seed).bearer(&token).version(VERSION);
        let answer = step(ctx.send(&call))?;
        answered(&call, &answer, 401, &refusal(401, message::INVALID_PIT))
    })
}

/// Row 9: an `Agency-Access-Only` operation and a location's token.
fn a_location_pit_on_an_agency_only_operation_is_refused_as_the_wrong_user_type(ctx: &Ctx) -> Result<(), Stop> {
    let agency_only: Vec<&Operation> = ctx
        .contract
        .operations()
        .iter()
        .filter(|o| !o.security.is_empty() && o.security.iter().flatten().all(|(s, _)| s.starts_with("Agency-Access")))
        .collect();
    ensure(!agency_only.is_empty(), || "the default specs have no agency-only operation".into())?;
    for op in agency_only {
        let call = ctx.authed(contract::request(op, ctx.location(), &[], 1));
        let answer = ctx.send(&call)?;
        let words = if op.path.eq_ignore_ascii_case("/oauth/locationToken") {
            message::USER_TYPE_NOT_SUPPORTED
        } else {
            message::USER_TYPE_MISMATCH
        };
        exactly(&answer, 401, &refusal(401, words)).map_err(|e| format!("{} {}: {e}", op.method, op.path))?;
    }
    Ok(())
}

fn a_deleted_pit_is_refused_at_once(ctx: &Ctx) -> Result<(), Stop> {
    let revoked = ctx.target.revoked_pit()?;
    let answer = ctx.send(&ctx.probe()?.bearer(&revoked))?;
    Ok(exactly(&answer, 401, &refusal(401, message::INVALID_PIT))?)
}

fn the_old_token_of_a_rotation_that_expired_now_is_refused(ctx: &Ctx) -> Result<(), Stop> {
    let old = ctx.target.rotated_old_pit()?;
    let answer = ctx.send(&ctx.probe()?.bearer(&old))?;
    Ok(exactly(&answer, 401, &refusal(401, message::INVALID_PIT))?)
}

fn status_with(ctx: &Ctx, probe: &Call, token: &str) -> Result<u16, Stop> {
    Ok(ctx.send(&probe.clone().bearer(token))?.status)
}

fn a_rotated_pit_keeps_working_for_seven_days_and_then_stops(ctx: &Ctx) -> Result<(), Stop> {
    ctx.target.require(Capability::Clock)?;
    let control = ctx.target.control()?;
    let probe = ctx.probe()?;
    // The test sets the clock to the millisecond: it must not move by itself meanwhile.
    let was_frozen = control.freeze_clock()?;
    let result = rotation_window(ctx, &probe);
    if !was_frozen {
        control.unfreeze_clock()?;
    }
    result
}

fn rotation_window(ctx: &Ctx, probe: &Call) -> Result<(), Stop> {
    let control = ctx.target.control()?;
    let minted = ctx.target.mint("Conformance rotation", &[])?;
    let rotated_at = control.now_ms()?;
    let (new, deadline) = control.rotate(&minted.integration_id, true)?;
    let deadline = deadline.ok_or_else(|| Stop::Fail("a rotation with grace answered no deadline".into()))?;
    ensure(deadline - rotated_at == 7 * 86_400_000, || {
        format!("the grace window is {} ms, not seven days", deadline - rotated_at)
    })?;
    // The clock is set by hand below; the limiter must not move it in between.
    ctx.target.reserve(5)?;
    let mut seen = vec![("old, at once", status_with(ctx, probe, &minted.token)?)];
    seen.push(("new, at once", status_with(ctx, probe, &new)?));
    control.set_clock_ms(deadline - 1)?;
    seen.push(("old, 1 ms before the end", status_with(ctx, probe, &minted.token)?));
    control.set_clock_ms(deadline)?;
    let after = ctx.send(&probe.clone().bearer(&minted.token))?;
    seen.push(("new, after the end", status_with(ctx, probe, &new)?));
    control.delete_integration(&minted.integration_id)?;
    let ok = |s: u16| (200..300).contains(&s);
    ensure(seen.iter().all(|(_, s)| ok(*s)), || format!("wanted 2xx for each of {seen:?}"))?;
    Ok(exactly(&after, 401, &refusal(401, message::INVALID_PIT)).map_err(|e| format!("old, at the end: {e}"))?)
}

fn an_oauth_refresh_token_is_no_bearer_token(ctx: &Ctx) -> Result<(), Stop> {
    let scopes: Vec<String> = ctx.scopes().iter().cloned().collect();
    let (_, refresh) = ctx.target.oauth_tokens(&scopes)?;
    let answer = ctx.send(&ctx.probe()?.bearer(&refresh))?;
    Ok(exactly(&answer, 401, &refusal(401, message::INVALID_JWT))?)
}

fn an_oauth_access_token_works_until_86399_seconds_have_passed(ctx: &Ctx) -> Result<(), Stop> {
    ctx.target.require(Capability::Clock)?;
    let control = ctx.target.control()?;
    let scopes: Vec<String> = ctx.scopes().iter().cloned().collect();
    let probe = ctx.probe()?;
    ctx.target.reserve(4)?;
    let (access, _) = ctx.target.oauth_tokens(&scopes)?;
    let issued = status_with(ctx, &probe, &access)?;
    control.advance_clock_ms(86_339_000)?;
    let a_minute_before = status_with(ctx, &probe, &access)?;
    control.advance_clock_ms(60_000)?;
    let expired = ctx.send(&probe.clone().bearer(&access))?;
    ensure((200..300).contains(&issued) && (200..300).contains(&a_minute_before), || {
        format!("wanted 2xx when issued and a minute before expiry, got {issued} and {a_minute_before}")
    })?;
    Ok(exactly(&expired, 401, &refusal(401, message::INVALID_JWT)).map_err(|e| format!("after 86399 s: {e}"))?)
}
