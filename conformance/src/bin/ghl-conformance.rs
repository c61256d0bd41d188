//! `ghl-conformance`: the conformance suite as a tool, for a user's own
//! sandbox (`--target remote`) or ghl-mock in process (`--target mock`).
//! `ghl-conformance --help` says how.

fn main() -> std::process::ExitCode {
    ghl_conformance::suite::cli(std::env::args().skip(1), std::env::var("GHL_JUNIT").ok())
}
