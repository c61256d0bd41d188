//! Golden answers, one file per request under the top-level `snapshots/`,
//! shared by every target: a difference between the mock and a sandbox shows
//! up as a snapshot diff. Normalised first (see `crate::normalise`).
//!
//! Snapshots change on purpose only: review with `cargo insta review`, or
//! rerun with `INSTA_UPDATE=always` and read the diff before committing. With
//! `CI=true` insta never writes them, so a mismatch fails the run.

use crate::contract::{self, VERSION};
use crate::normalise;
use crate::{Call, Stop, Suite};
use reqwest::Method;
use serde_json::json;

use super::support::Ctx;

type Build = fn(&Ctx) -> Result<Call, Stop>;

/// Where the snapshot files are, for this run (see `suite::Options`).
static DIR: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);

pub(super) fn set_dir(dir: std::path::PathBuf) {
    *DIR.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir);
}

fn dir() -> std::path::PathBuf {
    let chosen = DIR.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Absolute, so that insta does not read it relative to this source file.
    let dir = chosen.unwrap_or_else(|| "snapshots".into());
    std::path::absolute(&dir).unwrap_or(dir)
}

const CASES: &[(&str, &str, Build)] = &[
    ("auth_missing_token", "GET /contacts/ without Authorization", |ctx| Ok(contacts(ctx).version(VERSION))),
    ("auth_garbage_token", "GET /contacts/ with Bearer not-a-token", |ctx| {
        Ok(contacts(ctx).bearer("not-a-token").version(VERSION))
    }),
    ("auth_unknown_pit", "GET /contacts/ with a PIT no one issued", |ctx| {
        Ok(contacts(ctx).bearer("pit-00000000-0000-4000-8000-000000000000").version(VERSION))
    }),
    ("version_missing", "GET /contacts/ with the PIT and no Version", |ctx| Ok(contacts(ctx).bearer(ctx.pit()))),
    ("version_unpublished", "GET /contacts/ with Version: 2099-01-01", |ctx| {
        Ok(contacts(ctx).bearer(ctx.pit()).version("2099-01-01"))
    }),
    ("scope_refused", "GET /contacts/ with a PIT without contacts.readonly", |ctx| {
        Ok(contacts(ctx).bearer(ctx.target.low_scope_pit()?).version(VERSION))
    }),
    ("location_refused", "GET /contacts/ naming another location", |ctx| {
        let other = ctx.target.other_location()?;
        Ok(ctx.authed(Call::get("/contacts/").query("locationId", other)))
    }),
    ("route_unknown", "GET /nothing/here", |_| Ok(Call::get("/nothing/here"))),
    ("location_found", "GET /locations/{locationId} of the PIT's own location (shape only)", |ctx| {
        let op = ctx
            .contract
            .operation(&Method::GET, "/locations/{locationId}")
            .ok_or_else(|| Stop::Fail("no GET /locations/{locationId}".into()))?;
        Ok(ctx.authed(contract::request(op, ctx.location(), &[], 1)))
    }),
    ("contact_invalid_email", "POST /contacts/ with email \"not-an-email\"", |ctx| {
        Ok(ctx.authed(Call::post("/contacts/").json(json!({"locationId": ctx.location(), "email": "not-an-email"}))))
    }),
    // NestJS's ValidationPipe (whitelist + forbidNonWhitelisted): refused, so nothing is created.
    ("contact_unknown_property", "POST /contacts/ with a property no schema names", |ctx| {
        Ok(ctx.authed(
            Call::post("/contacts/")
                .json(json!({"locationId": ctx.location(), "firstName": "Ann", "ghlMockUnknown": 1})),
        ))
    }),
];

fn contacts(ctx: &Ctx) -> Call {
    Call::get("/contacts/").query("locationId", ctx.location())
}

pub fn register(s: &mut Suite<Ctx>) {
    for (name, description, build) in CASES {
        s.add("snapshots", format!("answers_match_their_snapshots[{name}]"), move |ctx: &Ctx| {
            let call = build(ctx)?;
            let answer = ctx.send(&call)?;
            let normalised = normalise::for_snapshot(&answer);
            insta::with_settings!({
                snapshot_path => dir(),
                prepend_module_to_snapshot => false,
                description => *description,
                omit_expression => true,
            }, {
                insta::assert_json_snapshot!(*name, normalised);
            });
            Ok(())
        });
    }
}
