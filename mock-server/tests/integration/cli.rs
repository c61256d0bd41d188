//! The CLI verbs against a running mock, as a user types them.

use serde_json::Value;

use crate::support::start_binary;

/// `ghl-mock ARGS…` against `url` (given before the verb): exit code, stdout as JSON.
fn cli(url: &str, args: &[&str]) -> (i32, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ghl-mock"))
        .arg("--url")
        .arg(url)
        .args(args)
        .output()
        .expect("ghl-mock runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_clock_is_frozen_and_resumed_from_the_cli_and_set_leaves_it_running() {
    let mut server = start_binary(&[]);
    let url = server.url.clone();
    let (code, now, _) = cli(&url, &["clock", "get"]);
    assert_eq!((code, now["frozen"].as_bool()), (0, Some(true)), "started with --frozen-clock: {now}");
    let (code, resumed, _) = cli(&url, &["clock", "resume"]);
    assert_eq!((code, resumed["frozen"].as_bool()), (0, Some(false)), "{resumed}");
    std::thread::sleep(std::time::Duration::from_millis(30));
    let later = cli(&url, &["clock", "get"]).1;
    assert!(later["now_ms"].as_i64() > resumed["now_ms"].as_i64(), "a resumed clock runs: {resumed} {later}");
    let (_, set, _) = cli(&url, &["clock", "set", "1767225600000"]);
    assert_eq!(set["frozen"].as_bool(), Some(false), "set without --freeze leaves the clock running: {set}");
    let (_, frozen, _) = cli(&url, &["clock", "set", "1767225600000", "--freeze"]);
    assert_eq!((frozen["frozen"].as_bool(), frozen["now_ms"].as_i64()), (Some(true), Some(1_767_225_600_000)));
    let (_, frozen_again, _) = cli(&url, &["clock", "freeze"]);
    assert_eq!(frozen_again["now_ms"], frozen["now_ms"], "a frozen clock stays where it is");
    let (code, _, stderr) = cli(&url, &["clock", "advance", "7dayz"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("did you mean 'day"), "{stderr}");
    server.terminate_and_logs();
}

#[test]
fn rules_and_limits_verbs_drive_the_control_plane() {
    let mut server = start_binary(&[]);
    let url = server.url.clone();
    let (code, added, _) = cli(&url, &["rules", "add", "--path", "/contacts/**", "--count", "2", "--status", "503"]);
    assert_eq!(code, 0, "{added}");
    let id = added["id"].as_u64().expect("rule id").to_string();
    let listed = cli(&url, &["rules", "list"]).1;
    assert_eq!(listed["rules"][0]["status"], 503, "{listed}");
    assert_eq!(cli(&url, &["rules", "delete", &id]).0, 0);
    assert_eq!(cli(&url, &["rules", "list"]).1["rules"], serde_json::json!([]));
    let (code, _, stderr) = cli(&url, &["rules", "add", "--path", "/", "--body", "{not json"]);
    assert_eq!(code, 2, "a body that is not JSON is refused before any call");
    assert!(stderr.contains("--body is not JSON"), "{stderr}");

    let location = "ghlMockLocationA0001";
    let (code, injected, _) = cli(&url, &["limits", "inject", "--resource", location, "--count", "3"]);
    assert_eq!(code, 0, "{injected}");
    assert_eq!(injected["injections"][0]["remaining"], 3, "{injected}");
    let (code, exhausted, _) = cli(&url, &["limits", "exhaust-daily", location]);
    assert_eq!(code, 0, "{exhausted}");
    let shown = cli(&url, &["limits", "show", location]).1;
    assert_eq!(shown["headers"]["X-RateLimit-Daily-Remaining"], "0", "{shown}");
    let (code, set, _) =
        cli(&url, &["limits", "set", location, "--burst", "5", "--window-ms", "1000", "--daily", "50"]);
    assert_eq!((code, set["profile"]["burst"].as_u64()), (0, Some(5)), "{set}");
    assert_eq!(cli(&url, &["limits", "show", "nowhere"]).0, 1, "an unknown location is refused");
    server.terminate_and_logs();
}
