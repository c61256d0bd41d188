//! The suite's own runner: runs tests one after the other (a real sandbox
//! has one rate limit for all of them), tells a skipped test from a passed
//! one, counts the API requests each test sent, and reports the run as a
//! table and as JUnit XML.
//!
//! A test is a function returning `Result<(), Stop>`. A panic (an `assert!`,
//! an insta snapshot mismatch) is a failure with the panic's message.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Why a test stopped before the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The target lacks what the test needs; the reason is reported.
    Skip(String),
    Fail(String),
}

impl From<String> for Stop {
    fn from(message: String) -> Self {
        Stop::Fail(message)
    }
}

/// Fails with `message` unless `condition` holds.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), Stop> {
    if condition {
        Ok(())
    } else {
        Err(Stop::Fail(message()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
    /// Left out by a name filter.
    Filtered,
}

type TestFn<C> = Box<dyn Fn(&C) -> Result<(), Stop>>;

pub struct Test<C> {
    pub group: String,
    pub name: String,
    run: TestFn<C>,
}

/// The tests of a run, in the order they run.
pub struct Suite<C> {
    tests: Vec<Test<C>>,
}

impl<C> Default for Suite<C> {
    fn default() -> Self {
        Self { tests: Vec::new() }
    }
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Row {
    pub group: String,
    pub name: String,
    pub outcome: Outcome,
    pub requests: u64,
    pub seconds: f64,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// `mock` or `remote`.
    pub target: String,
    /// The target described for people, tokens as fingerprints.
    pub description: String,
    pub rows: Vec<Row>,
    pub api_requests: u64,
    pub control_requests: u64,
    pub max_requests: u64,
    pub seconds: f64,
}

impl<C> Suite<C> {
    pub fn add(&mut self, group: &str, name: impl Into<String>, run: impl Fn(&C) -> Result<(), Stop> + 'static) {
        self.tests.push(Test { group: group.to_string(), name: name.into(), run: Box::new(run) });
    }

    pub fn names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tests.iter().map(|t| (t.group.as_str(), t.name.as_str()))
    }

    /// Runs every test whose `group::name` contains one of `filters` (all
    /// when there is none); `requests` reads the target's API request count.
    pub fn run(&self, ctx: &C, filters: &[String], requests: impl Fn() -> u64) -> Vec<Row> {
        let mut rows = Vec::new();
        for test in &self.tests {
            let full = format!("{}::{}", test.group, test.name);
            if !filters.is_empty() && !filters.iter().any(|f| full.contains(f.as_str())) {
                rows.push(Row {
                    group: test.group.clone(),
                    name: test.name.clone(),
                    outcome: Outcome::Filtered,
                    requests: 0,
                    seconds: 0.0,
                });
                continue;
            }
            eprintln!("conformance: {full} ...");
            let before = requests();
            let started = Instant::now();
            let outcome = match catch_unwind(AssertUnwindSafe(|| (test.run)(ctx))) {
                Ok(Ok(())) => Outcome::Passed,
                Ok(Err(Stop::Skip(why))) => Outcome::Skipped(why),
                Ok(Err(Stop::Fail(why))) => Outcome::Failed(why),
                Err(panic) => Outcome::Failed(panic_message(panic.as_ref())),
            };
            let row = Row {
                group: test.group.clone(),
                name: test.name.clone(),
                requests: requests().saturating_sub(before),
                seconds: started.elapsed().as_secs_f64(),
                outcome,
            };
            eprintln!("conformance: {full} {}", verdict(&row.outcome));
            rows.push(row);
        }
        rows
    }
}

fn verdict(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Passed => "passed".into(),
        Outcome::Failed(why) => format!("FAILED: {why}"),
        Outcome::Skipped(why) => format!("SKIPPED: {why}"),
        Outcome::Filtered => "filtered out".into(),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked".into()
    }
}

impl Report {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.rows.iter().filter(|r| f(&r.outcome)).count()
    }

    pub fn passed(&self) -> usize {
        self.count(|o| *o == Outcome::Passed)
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped(_)))
    }

    pub fn ran(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Passed | Outcome::Failed(_)))
    }

    /// The summary table: test / ran / passed / requests / skipped (why) or failure.
    pub fn table(&self) -> String {
        let width = self.rows.iter().map(|r| r.group.len() + 2 + r.name.chars().count()).max().unwrap_or(4).max(4);
        let mut out = String::new();
        let _ = writeln!(out, "\nghl-conformance against {}", self.description);
        let _ = writeln!(
            out,
            "{:<width$}  {:<3}  {:<6}  {:>8}  skipped (why) / failure",
            "test", "ran", "passed", "requests"
        );
        let _ = writeln!(out, "{}", "-".repeat(width + 48));
        for r in self.rows.iter().filter(|r| r.outcome != Outcome::Filtered) {
            let (ran, passed, note) = match &r.outcome {
                Outcome::Passed => ("yes", "yes", String::new()),
                Outcome::Failed(why) => ("yes", "NO", format!("FAILED: {}", first_line(why))),
                Outcome::Skipped(why) => ("no", "-", format!("SKIPPED: {why}")),
                Outcome::Filtered => ("no", "-", String::new()),
            };
            let name = format!("{}::{}", r.group, r.name);
            let _ = writeln!(out, "{name:<width$}  {ran:<3}  {passed:<6}  {:>8}  {note}", r.requests);
        }
        let _ = writeln!(out, "{}", "-".repeat(width + 48));
        let filtered = self.count(|o| *o == Outcome::Filtered);
        let _ = writeln!(
            out,
            "{} tests: {} ran, {} passed, {} failed, {} skipped{}",
            self.rows.len() - filtered,
            self.ran(),
            self.passed(),
            self.failed(),
            self.skipped(),
            if filtered > 0 { format!(", {filtered} filtered out") } else { String::new() }
        );
        let _ = writeln!(
            out,
            "requests: {} API (cap {}), {} control plane; {:.1} s",
            self.api_requests, self.max_requests, self.control_requests, self.seconds
        );
        out
    }

    /// The run as JUnit XML: one `testsuite`, a `testcase` per test, skipped
    /// ones with their reason, the request counts as properties.
    pub fn junit(&self) -> String {
        let rows: Vec<&Row> = self.rows.iter().filter(|r| r.outcome != Outcome::Filtered).collect();
        let suite = format!("ghl-conformance.{}", self.target);
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"ghl-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{:.3}\">",
            rows.len(),
            self.failed(),
            self.skipped(),
            self.seconds
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{:.3}\">",
            xml(&suite),
            rows.len(),
            self.failed(),
            self.skipped(),
            self.seconds
        );
        out.push_str("    <properties>\n");
        for (name, value) in [
            ("target", self.description.clone()),
            ("api_requests", self.api_requests.to_string()),
            ("control_plane_requests", self.control_requests.to_string()),
            ("max_requests", self.max_requests.to_string()),
        ] {
            let _ = writeln!(out, "      <property name=\"{}\" value=\"{}\"/>", xml(name), xml(&value));
        }
        out.push_str("    </properties>\n");
        for r in rows {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&format!("{suite}.{}", r.group)),
                xml(&r.name),
                r.seconds
            );
            match &r.outcome {
                Outcome::Passed | Outcome::Filtered => out.push_str("/>\n"),
                Outcome::Skipped(why) => {
                    let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", xml(why));
                }
                Outcome::Failed(why) => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"failure\">{}</failure>\n    </testcase>",
                        xml(first_line(why)),
                        xml(why)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

pub use ghl_mock::report::xml_escape as xml;

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut suite: Suite<()> = Suite::default();
        suite.add("auth", "passes", |_| Ok(()));
        suite.add("auth", "needs_a_clock", |_| Err(Stop::Skip("no clock <here> & \"there\"".into())));
        suite.add("auth", "breaks", |_| Err(Stop::Fail("401 != 403\nsecond line".into())));
        suite.add("auth", "panics", |_| panic!("boom"));
        let rows = suite.run(&(), &[], || 0);
        Report {
            target: "mock".into(),
            description: "mock at http://x".into(),
            rows,
            api_requests: 7,
            control_requests: 2,
            max_requests: 1000,
            seconds: 0.5,
        }
    }

    #[test]
    fn skipped_tests_are_counted_apart_from_passed_and_failed_ones() {
        let r = report();
        assert_eq!((r.ran(), r.passed(), r.failed(), r.skipped()), (3, 1, 2, 1));
        assert!(matches!(&r.rows[3].outcome, Outcome::Failed(why) if why == "boom"));
        let table = r.table();
        assert!(table.contains("SKIPPED: no clock <here>"), "{table}");
        assert!(table.contains("FAILED: 401 != 403\n"), "only the first line of a failure: {table}");
        assert!(table.contains("requests: 7 API (cap 1000), 2 control plane"), "{table}");
    }

    #[test]
    fn junit_escapes_what_xml_forbids_and_names_the_skip_reason() {
        let x = report().junit();
        assert!(x.contains("<skipped message=\"no clock &lt;here&gt; &amp; &quot;there&quot;\"/>"), "{x}");
        assert!(x.contains("tests=\"4\" failures=\"2\" skipped=\"1\""), "{x}");
        assert!(x.contains("<property name=\"api_requests\" value=\"7\"/>"), "{x}");
        assert!(x.contains("401 != 403&#10;second line</failure>"), "{x}");
        assert_eq!(xml("a\u{1b}[31mb"), "a\u{FFFD}[31mb");
    }

    #[test]
    fn a_filter_leaves_out_the_tests_it_does_not_name() {
        let mut suite: Suite<()> = Suite::default();
        suite.add("auth", "one", |_| Ok(()));
        suite.add("limits", "two", |_| Err(Stop::Fail("ran".into())));
        let rows = suite.run(&(), &["auth::".to_string()], || 0);
        assert_eq!(rows[0].outcome, Outcome::Passed);
        assert_eq!(rows[1].outcome, Outcome::Filtered);
    }
}
