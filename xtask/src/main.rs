//! `cargo xtask <task>`: project chores that are more than one cargo command.
//!
//! Kept free of dependencies so that it compiles in a second.

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci     what CI runs: fmt --check, clippy -D warnings, the README's test command,
         with the shared spec corpus required (GHL_REQUIRE_SHARED=1)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("unknown task {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn cargo(args: &[&str]) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("$ cargo {}", args.join(" "));
    Command::new(cargo).args(args).env("GHL_REQUIRE_SHARED", "1").status().is_ok_and(|s| s.success())
}

fn ci() -> ExitCode {
    let steps: [&[&str]; 3] = [
        &["fmt", "--all", "--check"],
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
        &["test", "--workspace"],
    ];
    for step in steps {
        if !cargo(step) {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
