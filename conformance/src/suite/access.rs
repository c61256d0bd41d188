//! BEHAVIOUR.md §3 rows 6, 7, 10 and 11, once the token is accepted: the
//! `Version` header, the operation's scope (401, not 403, and before the
//! location), and the location a request names (403).

use crate::contract::{self, message, refusal, PUBLISHED_VERSIONS, VERSION};
use crate::runner::ensure;
use crate::target::WITHHELD_SCOPE;
use crate::{Capability, Stop, Suite};
use ghl_mock::spec::Operation;
use proptest::prelude::*;
use reqwest::Method;

use super::support::{add, answered, step, Ctx};

pub fn register(s: &mut Suite<Ctx>) {
    add!(s, "version", a_request_without_a_version_header_is_refused_once_its_token_is_accepted);
    add!(s, "version", an_unpublished_version_is_refused_as_invalid);
    add!(s, "version", every_published_version_is_accepted_on_any_read);
    add!(s, "version", a_path_only_v3_serves_is_not_found_under_a_dated_version);
    add!(s, "scope", a_token_without_the_operations_scope_is_refused_with_401_before_its_location_is_checked);
    add!(s, "location", a_pit_naming_another_location_is_refused_with_403);
}

fn indexes_of(ctx: &Ctx, keep: impl Fn(&Operation) -> bool) -> Vec<usize> {
    ctx.contract.operations().iter().enumerate().filter(|(_, o)| keep(o)).map(|(i, _)| i).collect()
}

fn op(ctx: &Ctx, index: usize) -> &Operation {
    &ctx.contract.operations()[index]
}

/// The tokens this target has that it accepts: the PIT, and the low-scope PIT when there is one.
fn accepted_tokens(ctx: &Ctx) -> Vec<String> {
    let mut tokens = vec![ctx.pit().to_string()];
    tokens.extend(ctx.target.credentials.low_scope_pit.clone());
    tokens
}

fn a_request_without_a_version_header_is_refused_once_its_token_is_accepted(ctx: &Ctx) -> Result<(), Stop> {
    let ops = indexes_of(ctx, |o| contract::declares_version(o) && !contract::pit_requirements(o).is_empty());
    // Tokens are picked by index, so that a failing case never prints one.
    let tokens = accepted_tokens(ctx);
    ctx.property((proptest::sample::select(ops), 0..tokens.len(), any::<u64>()), |(i, t, seed)| {
        let call = contract::request(op(ctx, i), ctx.location(), &[], seed).bearer(&tokens[t]);
        let answer = step(ctx.send(&call))?;
        answered(&call, &answer, 401, &refusal(401, message::VERSION_MISSING))
    })
}

fn an_unpublished_version_is_refused_as_invalid(ctx: &Ctx) -> Result<(), Stop> {
    let ops = indexes_of(ctx, |o| contract::declares_version(o) && !contract::pit_requirements(o).is_empty());
    let versions = "(20[0-9]{2}-[01][0-9]-[0-3][0-9]|v[0-9]{1,2}|[A-Za-z0-9._-]{1,12})"
        .prop_filter("not a published version", |v| !PUBLISHED_VERSIONS.contains(&v.as_str()));
    ctx.property((proptest::sample::select(ops), versions, any::<u64>()), |(i, version, seed)| {
        let call = contract::request(op(ctx, i), ctx.location(), &[], seed).bearer(ctx.pit()).version(&version);
        let answer = step(ctx.send(&call))?;
        answered(&call, &answer, 401, &refusal(401, message::VERSION_INVALID))
    })
}

/// The live API accepts every published value on any established path,
/// whatever the operation's own `Version` enum says; under `v3`, a path v3
/// removed answers HighLevel's 400 instead, exactly (BEHAVIOUR.md §8).
fn every_published_version_is_accepted_on_any_read(ctx: &Ctx) -> Result<(), Stop> {
    let reads: Vec<usize> = indexes_of(ctx, |o| {
        o.method == Method::GET
            && contract::names_location(o)
            && contract::resource_params(o).is_empty()
            && contract::pit_may_call(o, ctx.scopes())
    });
    ensure(!reads.is_empty(), || "the PIT may call no read that names its location".into())?;
    ctx.property(
        (proptest::sample::select(reads), proptest::sample::select(PUBLISHED_VERSIONS.to_vec())),
        |(i, v)| {
            let call = contract::request(op(ctx, i), ctx.location(), &[], 1).bearer(ctx.pit()).version(v);
            let answer = step(ctx.send(&call))?;
            if v == "v3" && answer.status == 400 {
                let endpoint = call.path_and_query();
                return answered(&call, &answer, 400, &contract::removed_in_v3(&endpoint));
            }
            prop_assert!((200..300).contains(&answer.status), "Version {v}: {}", answer.summary());
            Ok(())
        },
    )?;
    // Each value once, whatever the sampling above picked.
    let probe = ctx.probe()?;
    for v in PUBLISHED_VERSIONS {
        let answer = ctx.send(&probe.clone().version(v))?;
        ensure((200..300).contains(&answer.status), || format!("Version {v}: {}", answer.summary()))?;
    }
    Ok(())
}

/// Issue 14: `/oauth/location-token` is v3's name for the location-token
/// exchange; asked with a dated version, that path does not exist, and
/// Express answers it as any unknown route (BEHAVIOUR.md §8).
fn a_path_only_v3_serves_is_not_found_under_a_dated_version(ctx: &Ctx) -> Result<(), Stop> {
    let body = serde_json::json!({"companyId": "ghlMockNoCompany0001", "locationId": ctx.location()});
    for v in PUBLISHED_VERSIONS.iter().filter(|v| **v != "v3") {
        let call = crate::Call::post("/oauth/location-token").bearer(ctx.pit()).version(v).json(body.clone());
        let answer = ctx.send(&call)?;
        let wanted = serde_json::json!({"statusCode": 404, "message": "Cannot POST /oauth/location-token", "error": "Not Found"});
        super::support::exactly(&answer, 404, &wanted).map_err(|e| Stop::Fail(format!("Version {v}: {e}")))?;
    }
    Ok(())
}

/// Row 10 before row 11: the low-scope PIT lacks `contacts.readonly`; every
/// operation that needs it refuses with 401, also when the request names
/// another location (a 403 would mean the scope was held).
fn a_token_without_the_operations_scope_is_refused_with_401_before_its_location_is_checked(
    ctx: &Ctx,
) -> Result<(), Stop> {
    let low = ctx.target.low_scope_pit()?.to_string();
    let low_scopes = ctx.low_scopes();
    let ops = indexes_of(ctx, |o| contract::missing_scopes(o, &low_scopes).iter().any(|s| s == WITHHELD_SCOPE));
    ensure(!ops.is_empty(), || format!("no operation of the default specs needs {WITHHELD_SCOPE}"))?;
    let other = ctx.target.credentials.other_location_id.clone();
    let name_other = if other.is_some() { any::<bool>().boxed() } else { Just(false).boxed() };
    ctx.property((proptest::sample::select(ops), name_other, any::<u64>()), |(i, elsewhere, seed)| {
        let location = if elsewhere { other.as_deref().unwrap_or(ctx.location()) } else { ctx.location() };
        let call = contract::request(op(ctx, i), location, &[], seed).bearer(&low).version(VERSION);
        let answer = step(ctx.send(&call))?;
        answered(&call, &answer, 401, &refusal(401, message::SCOPE))
    })
}

/// Row 11, on every read (and search) that names a location.
fn a_pit_naming_another_location_is_refused_with_403(ctx: &Ctx) -> Result<(), Stop> {
    ctx.target.require(Capability::OtherLocation)?;
    let other = ctx.target.other_location()?.to_string();
    let ops = indexes_of(ctx, |o| {
        let read = o.method == Method::GET || (o.method == Method::POST && o.path.ends_with("/search"));
        read && contract::names_location(o) && contract::pit_may_call(o, ctx.scopes())
    });
    ensure(!ops.is_empty(), || "the PIT may call no read that names a location".into())?;
    ctx.property((proptest::sample::select(ops), any::<u64>()), |(i, seed)| {
        let call = ctx.authed(contract::request(op(ctx, i), &other, &[], seed));
        let answer = step(ctx.send(&call))?;
        answered(&call, &answer, 403, &refusal(403, message::LOCATION))
    })
}
