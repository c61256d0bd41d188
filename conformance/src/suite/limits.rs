//! BEHAVIOUR.md §4: the `X-RateLimit-*` headers on every answer after
//! authentication, the 429 body, and one deliberate burst past the limit.

use crate::contract::{self, message, refusal, PUBLISHED_VERSIONS};
use crate::runner::ensure;
use crate::{Capability, Stop, Suite};
use proptest::prelude::*;

use super::support::{add, exactly, rate_limit_problems, step, Ctx};

pub fn register(s: &mut Suite<Ctx>) {
    add!(s, "limits", every_answer_to_an_accepted_token_carries_consistent_rate_limit_headers);
    add!(s, "limits", an_injected_429_has_high_levels_body_and_is_spent_by_one_request);
    add!(s, "limits", a_burst_past_the_limit_is_refused_with_429_until_the_interval_has_passed);
}

/// Runs last: looks back at every answer of the run.
pub fn register_audit(s: &mut Suite<Ctx>) {
    add!(s, "limits", every_answer_of_this_run_to_an_accepted_token_carried_consistent_rate_limit_headers);
}

/// Any operation the PIT may call (whatever the answer: 2xx, 400, 401 for
/// `Version`, 403, 422), with any published `Version` or none.
fn every_answer_to_an_accepted_token_carries_consistent_rate_limit_headers(ctx: &Ctx) -> Result<(), Stop> {
    let ops: Vec<usize> = ctx
        .contract
        .operations()
        .iter()
        .enumerate()
        .filter(|(_, o)| o.method == reqwest::Method::GET && !contract::pit_requirements(o).is_empty())
        .map(|(i, _)| i)
        .collect();
    let versions = proptest::option::of(proptest::sample::select(PUBLISHED_VERSIONS.to_vec()));
    let other = ctx.target.credentials.other_location_id.clone();
    ctx.property((proptest::sample::select(ops), versions, any::<bool>(), any::<u64>()), |(i, v, elsewhere, seed)| {
        let op = &ctx.contract.operations()[i];
        let location = if elsewhere { other.as_deref().unwrap_or(ctx.location()) } else { ctx.location() };
        let mut call = contract::request(op, location, &[], seed).bearer(ctx.pit());
        if let Some(v) = v {
            call = call.version(v);
        }
        let answer = step(ctx.send(&call))?;
        if let Some(problem) = rate_limit_problems(&answer.headers) {
            return Err(TestCaseError::fail(format!("{}: {problem} (answer {})", call.describe(), answer.summary())));
        }
        Ok(())
    })
}

/// True when the target recognised the token of a logged answer: it carried
/// one, was routed, and was not refused as an unknown or invalid token.
fn accepted(log: &crate::client::Logged) -> bool {
    let token_refused =
        log.status == 401 && matches!(log.message.as_deref(), Some(message::INVALID_JWT | message::INVALID_PIT));
    log.had_bearer && !token_refused && log.status != 404 && log.status != 405
}

fn every_answer_of_this_run_to_an_accepted_token_carried_consistent_rate_limit_headers(ctx: &Ctx) -> Result<(), Stop> {
    let log = ctx.target.log();
    let checked: Vec<_> = log.iter().filter(|l| accepted(l)).collect();
    ensure(!checked.is_empty(), || "no answer of this run had an accepted token; nothing was checked".into())?;
    let bad: Vec<String> = checked
        .iter()
        .filter_map(|l| rate_limit_problems(&l.rate_limit).map(|p| format!("{} → {}: {p}", l.call, l.status)))
        .collect();
    ensure(bad.is_empty(), || {
        format!(
            "{} of {} answers: {}",
            bad.len(),
            checked.len(),
            bad.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        )
    })
}

fn an_injected_429_has_high_levels_body_and_is_spent_by_one_request(ctx: &Ctx) -> Result<(), Stop> {
    let control = ctx.target.control()?;
    let probe = ctx.probe()?;
    control.inject_429s(ctx.location(), 1)?;
    let refused = ctx.send(&probe)?;
    let next = ctx.send(&probe)?;
    exactly(&refused, 429, &refusal(429, message::TOO_MANY_REQUESTS))?;
    if let Some(problem) = rate_limit_problems(&refused.headers) {
        return Err(Stop::Fail(format!("the 429: {problem}")));
    }
    ensure((200..300).contains(&next.status), || format!("the request after the injected 429: {}", next.summary()))
}

/// Goes past the burst limit once, then waits `X-RateLimit-Interval-Milliseconds`
/// (on a mock: moves its clock that far) and is admitted again.
fn a_burst_past_the_limit_is_refused_with_429_until_the_interval_has_passed(ctx: &Ctx) -> Result<(), Stop> {
    ctx.target.require(Capability::DeliberateBurst)?;
    let probe = ctx.probe()?;
    if let Ok(control) = ctx.target.control() {
        // Three requests short of the limit: the burst costs four, not twenty-six.
        control.set_burst_remaining(ctx.location(), 3)?;
    }
    let first = ctx.target.send_unlimited(&probe)?;
    ensure((200..300).contains(&first.status), || format!("the first request: {}", first.summary()))?;
    let remaining =
        first.number("X-RateLimit-Remaining").ok_or_else(|| Stop::Fail("no X-RateLimit-Remaining".into()))?;
    let interval = first
        .number("X-RateLimit-Interval-Milliseconds")
        .ok_or_else(|| Stop::Fail("no X-RateLimit-Interval-Milliseconds".into()))?;
    let mut refused = None;
    for _ in 0..remaining + 3 {
        let answer = ctx.target.send_unlimited(&probe)?;
        if answer.status == 429 {
            refused = Some(answer);
            break;
        }
        ensure((200..300).contains(&answer.status), || format!("inside the burst: {}", answer.summary()))?;
    }
    let refused = refused.ok_or_else(|| {
        Stop::Fail(format!("{} requests after X-RateLimit-Remaining: {remaining}, none was refused", remaining + 3))
    })?;
    exactly(&refused, 429, &refusal(429, message::TOO_MANY_REQUESTS))?;
    ensure(refused.number("X-RateLimit-Remaining") == Some(0), || {
        format!("the 429 says X-RateLimit-Remaining {:?}, not 0", refused.header("X-RateLimit-Remaining"))
    })?;
    ctx.target.wait_ms(interval)?;
    let after = ctx.target.send_unlimited(&probe)?;
    ensure((200..300).contains(&after.status), || format!("after waiting {interval} ms: {}", after.summary()))?;
    ensure(after.number("X-RateLimit-Remaining").is_some_and(|r| r > 0), || {
        format!("after waiting {interval} ms X-RateLimit-Remaining is {:?}", after.header("X-RateLimit-Remaining"))
    })
}
