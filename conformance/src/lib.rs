//! ghl-conformance: one suite that runs, unchanged, against ghl-mock and a
//! real HighLevel sandbox. Where the two disagree, the suite says so: that is
//! how the mock stays honest.
//!
//! The suite speaks HTTP to a base URL and nothing else. How the pieces fit:
//! a [`Target`] (in-process mock, or any base URL from the environment) owns
//! the [`client::Transport`], which counts and caps requests, and the
//! [`limiter::Limiter`], which keeps a run under the sandbox's rate limit.
//! Control-plane steps (mint, rotate, delete a token; move the clock; inject a
//! 429) go through [`control::ControlPlane`], which only a mock has: a test
//! that needs it asks for a [`Capability`] and is skipped, with the reason,
//! where it is missing. [`contract`] turns the operations of the mock's
//! embedded specs into requests, [`strategy`] turns their schemas into
//! proptest strategies, [`normalise`] makes answers comparable for the shared
//! snapshot files, and [`runner`] runs the tests and reports them as a table
//! and as JUnit XML. The tests themselves live in [`suite`], which the
//! `ghl-conformance` binary and the `suite` test target both run.

pub mod client;
pub mod contract;
pub mod control;
pub mod error;
pub mod limiter;
pub mod normalise;
pub mod runner;
pub mod strategy;
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub mod suite;
pub mod target;

pub use client::{Answer, Call};
pub use contract::Contract;
pub use error::Error;
pub use runner::{Report, Stop, Suite};
pub use target::{Capability, Kind, Target};

/// Command-line arguments of the suite binary. Unknown `--flags` (as
/// `cargo test` may pass libtest's) are ignored; other words filter tests by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Args {
    /// Where to write JUnit XML: `--junit PATH`, else `GHL_JUNIT`.
    pub junit: Option<std::path::PathBuf>,
    pub filters: Vec<String>,
    /// `--list`: print the test names and run nothing.
    pub list: bool,
}

impl Args {
    pub fn parse(args: impl IntoIterator<Item = String>, junit_env: Option<String>) -> Self {
        let mut out = Args { junit: junit_env.filter(|v| !v.is_empty()).map(Into::into), ..Args::default() };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--junit" {
                out.junit = args.next().map(Into::into);
            } else if let Some(path) = arg.strip_prefix("--junit=") {
                out.junit = Some(path.into());
            } else if arg == "--list" {
                out.list = true;
            } else if !arg.starts_with('-') {
                out.filters.push(arg);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_comes_from_the_flag_before_the_environment_and_libtest_flags_are_ignored() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = Args::parse(words(&["--nocapture", "--junit", "out.xml", "auth"]), Some("env.xml".into()));
        assert_eq!(a.junit.as_deref(), Some(std::path::Path::new("out.xml")));
        assert_eq!(a.filters, vec!["auth".to_string()]);
        let b = Args::parse(words(&["--test-threads=1"]), Some("env.xml".into()));
        assert_eq!(b.junit.as_deref(), Some(std::path::Path::new("env.xml")));
        assert!(b.filters.is_empty());
    }
}
