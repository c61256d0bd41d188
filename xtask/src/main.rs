//! `cargo xtask <task>`: project chores that are more than one cargo command.
//!
//! Kept free of dependencies so that it compiles in a second.

mod readme;

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci     what CI runs: fmt --check, clippy -D warnings, the README's test command,
         with the shared spec corpus required (GHL_REQUIRE_SHARED=1)
  conformance [--target mock|remote] [--junit PATH] [FILTER...]
         the conformance suite against ghl-mock in process (mock, the default) or
         a base URL from the environment (remote: GHL_BASE_URL, GHL_PIT,
         GHL_LOCATION_ID, ...; see conformance/ and the README); prints the
         summary table and writes JUnit XML (default target/conformance-TARGET.xml)
  bench [--duration S] [--concurrency N] [--threads N] [--soak N] [--no-record] [--peers]
         release builds of ghl-mock and a minimal axum baseline under wrk (installed
         with apt-get when missing): five scenarios as ratios to the baseline,
         start-up, memory, a soak of N requests (default 1,000,000), floors
         printed PASS/FAIL, results appended to BENCHMARKS.md
  readme every shell example of README.md, in order, against the mock its own
         `serve` examples start (markers: <!-- readme: serve|allow N…|file NAME|skip WHY -->);
         fails on an example that exits non-zero or gets an answer it does not expect";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("conformance") => conformance(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("readme") => match std::env::current_dir() {
            Ok(root) => readme::main(&root, &|args| cargo(args)),
            Err(e) => {
                eprintln!("readme: {e}");
                ExitCode::FAILURE
            }
        },
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

/// Runs the suite binary of ghl-conformance with `GHL_TARGET` set; the
/// suite prints its own summary table and writes the JUnit file.
fn conformance(args: &[String]) -> ExitCode {
    let mut target = "mock".to_string();
    let mut junit: Option<String> = None;
    let mut filters: Vec<String> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--target" => target = rest.next().cloned().unwrap_or_default(),
            "--junit" => junit = rest.next().cloned(),
            other => match (other.strip_prefix("--target="), other.strip_prefix("--junit=")) {
                (Some(t), _) => target = t.to_string(),
                (_, Some(j)) => junit = Some(j.to_string()),
                _ => filters.push(other.to_string()),
            },
        }
    }
    if target != "mock" && target != "remote" {
        eprintln!("--target must be `mock` or `remote`, not {target:?}\n\n{USAGE}");
        return ExitCode::from(2);
    }
    // The suite runs with its package as working directory: make the path absolute.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap_or(root);
    let junit = match junit {
        Some(path) => std::env::current_dir().map(|d| d.join(path)).unwrap_or_default(),
        None => root.join("target").join(format!("conformance-{target}.xml")),
    };
    let mut cargo_args: Vec<String> =
        ["test", "-p", "ghl-conformance", "--test", "suite", "--", "--junit"].map(String::from).to_vec();
    cargo_args.push(junit.display().to_string());
    cargo_args.extend(filters);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("$ GHL_TARGET={target} cargo {}", cargo_args.join(" "));
    let ok = Command::new(cargo)
        .args(&cargo_args)
        .current_dir(&root)
        .env("GHL_TARGET", &target)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Builds the release binaries, then runs the benchmark driver from the
/// workspace root (it finds the other binaries beside itself).
fn bench(args: &[String]) -> ExitCode {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap_or(root);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = std::time::Instant::now();
    let built = Command::new(&cargo)
        .args(["build", "--release", "-p", "ghl-mock", "-p", "ghl-bench"])
        .current_dir(&root)
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        return ExitCode::FAILURE;
    }
    eprintln!("xtask: release build took {:.0} s", started.elapsed().as_secs_f64());
    let target =
        std::env::var("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let status = Command::new(target.join("release/ghl-bench"))
        .args(args)
        .env("GHL_BENCH_ROOT", &root)
        .current_dir(&root)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
