//! The conformance suite as a test target (`harness = false`): the same
//! command line as the `ghl-conformance` binary.
//!
//! `cargo test -p ghl-conformance` runs it against ghl-mock in process;
//! `GHL_TARGET=remote` (with `GHL_PIT`, `GHL_LOCATION_ID`, …) against any base
//! URL. Words after `--` filter tests by name; `--junit PATH` (or `GHL_JUNIT`)
//! writes JUnit XML; `--list` lists the tests.

fn main() -> std::process::ExitCode {
    ghl_conformance::suite::cli(std::env::args().skip(1), std::env::var("GHL_JUNIT").ok())
}
