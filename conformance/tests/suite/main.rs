//! The conformance suite, one binary under its own runner (`harness = false`).
//!
//! `cargo test -p ghl-conformance` runs it against ghl-mock in process;
//! `GHL_TARGET=remote` (with `GHL_PIT`, `GHL_LOCATION_ID`, …) against any base
//! URL. Words after `--` filter tests by name; `--junit PATH` (or `GHL_JUNIT`)
//! writes JUnit XML; `--list` lists the tests.
// Test code: a failed `unwrap` is a failed test, caught and reported by the runner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod answers;
mod auth;
mod limits;
mod snapshots;
mod support;

use std::process::ExitCode;
use std::time::Instant;

use ghl_conformance::{Args, Contract, Report, Suite, Target};

use crate::support::Ctx;

fn main() -> ExitCode {
    let args = Args::parse(std::env::args().skip(1), std::env::var("GHL_JUNIT").ok());
    let started = Instant::now();
    let setup = Target::from_env().and_then(|target| Ok(Ctx::new(target, Contract::embedded()?)));
    let ctx = match setup {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("ghl-conformance: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let mut suite: Suite<Ctx> = Suite::default();
    auth::register(&mut suite);
    access::register(&mut suite);
    answers::register(&mut suite, &ctx);
    limits::register(&mut suite);
    snapshots::register(&mut suite);
    limits::register_audit(&mut suite);
    if args.list {
        for (group, name) in suite.names() {
            println!("{group}::{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    eprintln!("ghl-conformance: {}", ctx.target.describe());
    let rows = suite.run(&ctx, &args.filters, || ctx.target.api_requests());
    let report = Report {
        target: ctx.target.kind.name().to_string(),
        description: ctx.target.describe(),
        rows,
        api_requests: ctx.target.api_requests(),
        control_requests: ctx.target.control_requests(),
        max_requests: ctx.target.max_requests(),
        seconds: started.elapsed().as_secs_f64(),
    };
    println!("{}", report.table());
    if let Some(path) = &args.junit {
        let written = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, report.junit()));
        match written {
            Ok(()) => println!("JUnit XML: {}", path.display()),
            Err(e) => {
                eprintln!("ghl-conformance: cannot write JUnit XML to {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if report.failed() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
