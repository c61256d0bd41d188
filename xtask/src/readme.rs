//! `cargo xtask readme`: every shell example of README.md, run in order
//! against the mock the README's own `serve` examples start, so that README
//! and behaviour cannot drift (issue 16).
//!
//! A block runs in bash from the project root (`set -e -o pipefail`), with
//! the variables earlier blocks set and `$PIT` the token the running mock
//! printed. `curl` reports each answer's status: every one must be 2xx,
//! unless the block's marker allows more. A comment on the line before a
//! fence says how the runner treats the block:
//!
//! - `<!-- readme: serve -->` — the block is a `serve` command: the runner
//!   stops the mock it runs and starts this one (it is what the reader runs
//!   in another terminal), waiting for its banner;
//! - `<!-- readme: allow 401 403 -->` — these statuses are part of the example;
//! - `<!-- readme: file NAME -->` (on a yaml block) — the reader saves the
//!   block as NAME: the runner writes it in the project root (and removes it
//!   at the end);
//! - `<!-- readme: skip REASON -->` — not run here, for the reason given.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Block {
    line: usize,
    lang: String,
    code: String,
    serve: bool,
    skip: Option<String>,
    file: Option<String>,
    allow: Vec<u16>,
}

/// The fenced blocks of `text`, each with the marker on the line before it.
fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```").filter(|l| !l.is_empty()) else {
            i += 1;
            continue;
        };
        let mut block = Block { line: i + 1, lang: lang.trim().to_string(), ..Block::default() };
        if let Some(marker) = i.checked_sub(1).and_then(|p| lines[p].trim().strip_prefix("<!-- readme:")) {
            let marker = marker.trim_end_matches("-->").trim();
            let mut words = marker.split_whitespace();
            while let Some(word) = words.next() {
                match word {
                    "serve" => block.serve = true,
                    "skip" => {
                        block.skip = Some(words.by_ref().collect::<Vec<_>>().join(" "));
                    }
                    "file" => block.file = words.next().map(str::to_string),
                    "allow" => block.allow.extend(words.by_ref().map_while(|w| w.parse::<u16>().ok())),
                    _ => {}
                }
            }
        }
        i += 1;
        while i < lines.len() && lines[i].trim_end() != "```" {
            block.code.push_str(lines[i]);
            block.code.push('\n');
            i += 1;
        }
        i += 1;
        out.push(block);
    }
    out
}

/// The mock a `serve` example started, in its own process group.
struct Mock {
    child: Child,
}

impl Drop for Mock {
    fn drop(&mut self) {
        // The whole group: `cargo run` starts ghl-mock as its child.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-s", "TERM", "--", &group]).status();
        let _ = self.child.wait();
        // Until the port is free again (the next `serve` takes it).
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && std::net::TcpStream::connect(("127.0.0.1", 4010)).is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts the `serve` command of `block` and waits for its banner; answers
/// the mock and the token it printed, if any.
fn serve(root: &Path, path: &str, block: &Block) -> Result<(Mock, Option<String>), String> {
    let command: Vec<&str> =
        block.code.lines().map(|l| l.split(" #").next().unwrap_or("").trim()).filter(|l| !l.is_empty()).collect();
    let [command] = command.as_slice() else {
        return Err(format!("README line {}: a serve block holds one command", block.line));
    };
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!("exec {command}"))
        .current_dir(root)
        .env("PATH", path)
        .env("GHL_MOCK_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {command}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mock = Mock { child };
    let mut pit = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("    | {line}");
        if line.contains("private integration") {
            pit = line.rsplit(": ").next().map(|t| t.trim().to_string());
        }
        if line.trim_start().starts_with("control plane:") {
            return Ok((mock, pit));
        }
    }
    Err(format!("README line {}: `{command}` ended before its banner", block.line))
}

/// Runs one example; answers the statuses its requests got.
fn run(root: &Path, path: &str, state: &Path, block: &Block) -> Result<Vec<u16>, String> {
    let script = format!(
        "set -e -o pipefail\nset -a\n. {state}\ncurl() {{ command curl -w '%{{stderr}}readme-status %{{http_code}}\\n' \"$@\"; }}\n{code}\nexport -p > {state}\n",
        state = state.display(),
        code = block.code
    );
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["300", "bash", "-c", &script])
        .current_dir(root)
        .env("PATH", path)
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut statuses = Vec::new();
    let mut other = String::new();
    for line in stderr.lines() {
        match line.strip_prefix("readme-status ") {
            Some(code) => statuses.push(code.trim().parse::<u16>().unwrap_or(0)),
            None => {
                other.push_str(line);
                other.push('\n');
            }
        }
    }
    let shown = |text: &str| text.lines().take(12).map(|l| format!("    > {l}\n")).collect::<String>();
    print!("{}", shown(&stdout));
    if !out.status.success() {
        return Err(format!(
            "README line {}: the example exited with {} after {:.1} s\n{}{}",
            block.line,
            out.status,
            started.elapsed().as_secs_f64(),
            shown(&stdout),
            shown(&other)
        ));
    }
    if let Some(bad) = statuses.iter().find(|s| !(200..300).contains(*s) && !block.allow.contains(s)) {
        let allowed = if block.allow.is_empty() { String::new() } else { format!(" or {:?}", block.allow) };
        return Err(format!(
            "README line {}: a request answered {bad} where the example expects 2xx{allowed} (all: {statuses:?})\n{}",
            block.line,
            shown(&stdout)
        ));
    }
    Ok(statuses)
}

/// The names of the plain files in the project root.
fn root_files(root: &Path) -> std::collections::BTreeSet<std::ffi::OsString> {
    std::fs::read_dir(root)
        .map(|entries| entries.flatten().filter(|e| e.path().is_file()).map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

pub fn main(root: &Path, cargo: &dyn Fn(&[&str]) -> bool) -> ExitCode {
    // The binaries the examples call: `ghl-mock` on PATH (as README's
    // Install section puts it there) and the example clients.
    if !cargo(&["build", "-q", "-p", "ghl-mock", "--bins", "--examples"]) {
        return ExitCode::FAILURE;
    }
    let text = match std::fs::read_to_string(root.join("README.md")) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("readme: cannot read README.md: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bin = root.join("target/debug");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let work = root.join("target/readme");
    let _ = std::fs::create_dir_all(&work);
    let state = work.join("state.sh");
    let _ = std::fs::write(&state, "");
    let mut written: Vec<PathBuf> = Vec::new();
    // What the examples leave in the project root (`> report.xml`) goes at the end.
    let before = root_files(root);
    let mut mock: Option<Mock> = None;
    let (mut ran, mut skipped, mut failed) = (0, 0, Vec::new());
    for block in blocks(&text) {
        if let Some(name) = &block.file {
            let target = root.join(name);
            if let Err(e) = std::fs::write(&target, &block.code) {
                failed.push(format!("README line {}: cannot write {name}: {e}", block.line));
            }
            println!("README line {}: saved as {name}", block.line);
            written.push(target);
            continue;
        }
        if !matches!(block.lang.as_str(), "sh" | "bash") {
            continue;
        }
        if let Some(reason) = &block.skip {
            println!("README line {}: skipped ({reason})", block.line);
            skipped += 1;
            continue;
        }
        if block.serve {
            drop(mock.take());
            println!("README line {}: serving `{}`", block.line, block.code.trim());
            match serve(root, &path, &block) {
                Ok((started, pit)) => {
                    mock = Some(started);
                    if let Some(pit) = pit {
                        let _ = std::fs::OpenOptions::new().append(true).open(&state).and_then(|mut f| {
                            std::io::Write::write_all(&mut f, format!("export PIT={pit}\n").as_bytes())
                        });
                    }
                    ran += 1;
                }
                Err(e) => {
                    failed.push(e);
                    break;
                }
            }
            continue;
        }
        println!("README line {}: running", block.line);
        match run(root, &path, &state, &block) {
            Ok(statuses) => {
                println!("    ok ({} requests: {statuses:?})", statuses.len());
                ran += 1;
            }
            Err(e) => {
                println!("    FAILED");
                failed.push(e);
            }
        }
    }
    drop(mock);
    for file in written {
        let _ = std::fs::remove_file(file);
    }
    for file in root_files(root).difference(&before) {
        let _ = std::fs::remove_file(root.join(file));
    }
    println!("\nreadme: {ran} examples ran, {skipped} skipped, {} failed", failed.len());
    for f in &failed {
        eprintln!("{f}");
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::{blocks, run, Block};

    fn example(code: &str, allow: Vec<u16>) -> Result<Vec<u16>, String> {
        let dir = std::env::temp_dir().join(format!("xtask-readme-{}-{}", std::process::id(), code.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state.sh");
        std::fs::write(&state, "").unwrap();
        let block = Block { line: 7, lang: "sh".into(), code: code.into(), allow, ..Block::default() };
        let path = std::env::var("PATH").unwrap_or_default();
        let answer = run(&dir, &path, &state, &block);
        let _ = std::fs::remove_dir_all(dir);
        answer
    }

    #[test]
    fn an_example_that_exits_non_zero_fails_naming_its_line() {
        let e = example("echo before\nfalse\necho never\n", vec![]).unwrap_err();
        assert!(e.starts_with("README line 7: the example exited with"), "{e}");
    }

    #[test]
    fn an_answer_the_example_does_not_expect_fails_it_and_an_allowed_one_does_not() {
        // Nothing listens on port 1: curl reports status 000.
        let e = example("curl -s http://127.0.0.1:1/ || true\n", vec![]).unwrap_err();
        assert!(e.contains("a request answered 0 where the example expects 2xx"), "{e}");
        assert_eq!(example("curl -s http://127.0.0.1:1/ || true\n", vec![0]), Ok(vec![0]));
    }

    #[test]
    fn variables_an_example_sets_reach_the_next_one() {
        let dir = std::env::temp_dir().join(format!("xtask-readme-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state.sh");
        std::fs::write(&state, "").unwrap();
        let path = std::env::var("PATH").unwrap_or_default();
        let first = Block { line: 1, code: "CONTACT=abc\n".into(), ..Block::default() };
        let second = Block { line: 2, code: "test \"$CONTACT\" = abc\n".into(), ..Block::default() };
        assert!(run(&dir, &path, &state, &first).is_ok());
        assert!(run(&dir, &path, &state, &second).is_ok(), "CONTACT is still set");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_marker_on_the_line_before_a_fence_says_how_the_block_is_run() {
        let text = "intro\n<!-- readme: allow 401 403 -->\n```sh\ncurl x\n```\n\n```sh\necho hi\n```\n<!-- readme: skip needs a sandbox -->\n```sh\nexit 1\n```\n<!-- readme: file w.yaml -->\n```yaml\na: 1\n```\n";
        let b = blocks(text);
        assert_eq!(b.len(), 4);
        assert_eq!((b[0].allow.clone(), b[0].code.as_str(), b[0].line), (vec![401, 403], "curl x\n", 3));
        assert!(b[1].allow.is_empty() && b[1].skip.is_none() && !b[1].serve);
        assert_eq!(b[2].skip.as_deref(), Some("needs a sandbox"));
        assert_eq!((b[3].file.as_deref(), b[3].lang.as_str()), (Some("w.yaml"), "yaml"));
    }
}
