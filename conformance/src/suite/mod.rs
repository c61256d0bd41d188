//! The tests of the suite, and its command line (issue 16: the suite as a
//! tool). `ghl-conformance` (the binary) and `cargo test -p ghl-conformance`
//! (the test target) both run [`cli`]; a program of a user's own calls
//! [`run`].
//!
//! Test code: a failed `unwrap` is a failed test, caught and reported by the runner.

mod access;
mod answers;
mod auth;
mod limits;
mod snapshots;
mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

pub use support::Ctx;

use crate::{Contract, Error, Report, Suite, Target};

/// What a run does besides running every test.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Words a test's name must contain (any of them); empty: every test.
    pub filters: Vec<String>,
    /// Where the snapshot files are (default: the project's `snapshots/`
    /// when run from its tree, else `./snapshots`).
    pub snapshots: Option<PathBuf>,
}

/// Every test, registered against `ctx`.
pub fn suite(ctx: &Ctx) -> Suite<Ctx> {
    let mut suite: Suite<Ctx> = Suite::default();
    auth::register(&mut suite);
    access::register(&mut suite);
    answers::register(&mut suite, ctx);
    limits::register(&mut suite);
    snapshots::register(&mut suite);
    limits::register_audit(&mut suite);
    suite
}

/// Runs the suite against `target`; the report holds every test's outcome.
pub fn run(target: Target, options: &Options) -> Result<Report, Error> {
    let started = Instant::now();
    let ctx = Ctx::new(target, Contract::embedded()?);
    snapshots::set_dir(options.snapshots.clone().unwrap_or_else(default_snapshots));
    let suite = suite(&ctx);
    let rows = suite.run(&ctx, &options.filters, || ctx.target.api_requests());
    Ok(Report {
        target: ctx.target.kind.name().to_string(),
        description: ctx.target.describe(),
        rows,
        api_requests: ctx.target.api_requests(),
        control_requests: ctx.target.control_requests(),
        max_requests: ctx.target.max_requests(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The project's `snapshots/` when this build's source tree is still there
/// (a clone), else `snapshots/` in the current directory.
fn default_snapshots() -> PathBuf {
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots");
    if tree.is_dir() {
        return tree;
    }
    std::env::current_dir().unwrap_or_default().join("snapshots")
}

const USAGE: &str =
    "usage: ghl-conformance [--target mock|remote] [--snapshots DIR] [--junit PATH] [--list] [FILTER...]

Runs the conformance suite against ghl-mock in process (mock, the default) or
a base URL (remote) named by GHL_BASE_URL, with GHL_PIT, GHL_LOCATION_ID,
GHL_OTHER_LOCATION_ID, GHL_COMPANY_ID (see the README's Conformance section).
Prints the summary table; --junit writes JUnit XML; exits 1 when a test failed.";

/// The command line: arguments (without the program name) and `GHL_JUNIT`.
/// Unknown `--flags` (as `cargo test` passes libtest's) are ignored.
pub fn cli(args: impl IntoIterator<Item = String>, junit_env: Option<String>) -> ExitCode {
    let mut target_kind = None;
    let mut snapshots = None;
    let mut rest = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target" => target_kind = args.next(),
            "--snapshots" => snapshots = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => rest.push(arg),
        }
    }
    let parsed = crate::Args::parse(rest, junit_env);
    let target = match target_kind.as_deref() {
        None => Target::from_env(),
        Some(kind) => Target::named(Some(kind)),
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ghl-conformance: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    if parsed.list {
        let ctx = match Contract::embedded() {
            Ok(contract) => Ctx::new(target, contract),
            Err(e) => {
                eprintln!("ghl-conformance: cannot start: {e}");
                return ExitCode::from(2);
            }
        };
        for (group, name) in suite(&ctx).names() {
            println!("{group}::{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    eprintln!("ghl-conformance: {}", target.describe());
    let report = match run(target, &Options { filters: parsed.filters, snapshots }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ghl-conformance: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", report.table());
    if let Some(path) = &parsed.junit {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A user's own async test (the case that used to panic in `block_on`)
    /// makes a target, sends through it and drops it.
    #[tokio::test]
    async fn the_suite_runs_from_inside_an_async_test_and_reports_every_test() {
        let target = Target::mock(ghl_mock::Config { seed: 1, ..ghl_mock::Config::default() }).expect("a mock target");
        let report = run(target, &Options { filters: vec!["auth::".into()], snapshots: None }).expect("the suite runs");
        assert!(report.rows.len() >= 3, "the auth tests ran: {}", report.table());
        assert_eq!(report.failed(), 0, "{}", report.table());
    }
}
