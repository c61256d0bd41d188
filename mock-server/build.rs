//! Says, in the output of every build, when the shared corpus of HighLevel's
//! official spec files is missing: the tests that need it then skip, and
//! libtest shows nothing of a test that passed, so this is where the skip
//! can be seen. (`GHL_REQUIRE_SHARED=1` makes those tests fail instead.)
//! The same for `redis-server`, which the shared-store tests start
//! (`CI=true` or `GHL_REQUIRE_REDIS=1` makes those fail instead).

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let corpus = std::path::Path::new(&manifest).join("../../shared/highlevel-openapi");
    println!("cargo:rerun-if-changed=build.rs");
    // A path that does not exist makes cargo run this again on every build,
    // so the notice stays until the corpus is there.
    println!("cargo:rerun-if-changed={}", corpus.display());
    if !corpus.is_dir() {
        println!(
            "cargo:warning=SKIPPED: the shared spec corpus is not at {}; the tests that read HighLevel's official files skip (set GHL_REQUIRE_SHARED=1 to make them fail)",
            corpus.display()
        );
    }
    redis_notice();
}

/// Without `redis-server` on PATH the tests of `--store` skip: say so.
fn redis_notice() {
    println!("cargo:rerun-if-env-changed=PATH");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).map(|dir| dir.join("redis-server")).find(|p| p.is_file());
    match found {
        // Built again when the server goes away.
        Some(server) => println!("cargo:rerun-if-changed={}", server.display()),
        None => {
            // A path that does not exist: the notice stays until one is installed.
            println!("cargo:rerun-if-changed=/usr/bin/redis-server");
            println!(
                "cargo:warning=SKIPPED: no redis-server on PATH; the shared-store (--store redis://) tests skip (apt-get install redis-server; CI=true or GHL_REQUIRE_REDIS=1 makes them fail)"
            );
        }
    }
}
