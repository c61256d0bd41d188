//! The `ghl-mock` command line: serve the mock, check spec files, and drive a
//! running mock's control plane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

/// Issue 17: jemalloc for the server (see the workspace's Cargo.toml); the
/// library keeps the host program's allocator.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use ghl_mock::{spec, Clock, Config, Mock, Source};

/// `println!` for command output, but a reader that went away (`| head -1`)
/// ends the command quietly with success instead of a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        crate::out::write_line(&format!($($arg)*))
    };
}

/// `print!`, with the same care for a closed pipe.
macro_rules! say_raw {
    ($($arg:tt)*) => {
        crate::out::write(&format!($($arg)*))
    };
}

/// Command output to stdout; a closed pipe ends the process quietly.
mod out {
    use std::io::Write;

    pub fn write(text: &str) {
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }

    pub fn write_line(text: &str) {
        write(&format!("{text}\n"));
    }
}

mod remote;

#[derive(Parser)]
#[command(name = "ghl-mock", version, about = "A contract-testing mock of the HighLevel (LeadConnector) API v2", long_about = None)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,

    /// Where the verbs that drive a running mock find it (before or after the verb).
    #[command(flatten)]
    remote: remote::Remote,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API on HOST:PORT until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Load OpenAPI files (DIR, or the embedded default specs) and report files,
    /// operations, scopes, warnings and the resource table.
    CheckSpecs {
        /// Directory of OpenAPI 3.0 files (JSON or YAML); without it, the embedded default specs.
        dir: Option<PathBuf>,
        /// Print every warning (the default prints a summary per kind and the first few).
        #[arg(long)]
        all: bool,
    },
    /// Manage private integrations of a running mock.
    Pit {
        #[command(subcommand)]
        command: remote::Pit,
    },
    /// Read, set, advance, freeze or resume a running mock's clock.
    Clock {
        #[command(subcommand)]
        command: remote::ClockCmd,
    },
    /// OAuth helpers for a running mock.
    Oauth {
        #[command(subcommand)]
        command: remote::OAuthCmd,
    },
    /// Answer rules of a running mock: canned answers, delays and faults for matching requests.
    Rules {
        #[command(subcommand)]
        command: remote::RulesCmd,
    },
    /// Webhook deliveries of a running mock: list, show, resend, flush, the public key.
    Webhooks {
        #[command(subcommand)]
        command: remote::WebhooksCmd,
    },
    /// Rate limits of a running mock: read the counters, inject 429s, use up a quota.
    Limits {
        #[command(subcommand)]
        command: remote::LimitsCmd,
    },
    /// Rebuild a running mock's world from its fixture.
    Reset,
    /// List a running mock's request journal (JSON lines or a table); --clear empties it.
    Journal {
        #[command(flatten)]
        args: remote::JournalArgs,
    },
    /// The client behaviour report of a running mock; exits 1 when a --fail-on kind is found.
    Report {
        #[command(flatten)]
        args: remote::ReportArgs,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Directory of OpenAPI files to serve instead of the embedded default specs.
    #[arg(long)]
    specs: Option<PathBuf>,
    /// Address to listen on (0.0.0.0 for every interface; the control plane
    /// still answers loopback clients only, unless --admin-remote).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port, named in the banner).
    #[arg(long, default_value_t = 4010)]
    port: u16,
    /// Seed for generated answers and ids.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// World to start with (JSON or YAML): companies, locations, private
    /// integrations with their tokens, OAuth apps. Default: one sandbox
    /// agency, two locations and one freshly minted PIT.
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// Start with a frozen virtual clock that moves only through the control plane.
    #[arg(long)]
    frozen_clock: bool,
    /// Let non-loopback clients reach the control plane.
    #[arg(long)]
    admin_remote: bool,
    /// Keep the world and the resources in FILE: saved atomically on change
    /// and at shutdown, restored at start (default: in memory only).
    #[arg(long, value_name = "FILE", conflicts_with = "store")]
    state: Option<PathBuf>,
    /// Keep all state on a Redis shared with other ghl-mock processes, so
    /// that several replicas behind one address act as one HighLevel
    /// (redis://HOST:PORT/DB; see README "Several replicas").
    #[arg(long, value_name = "URL", env = "GHL_MOCK_STORE")]
    store: Option<String>,
    /// The world to use on the shared store: mocks with the same --store and
    /// --world share everything, another name shares nothing.
    #[arg(long, value_name = "NAME", default_value = "default", requires = "store")]
    world: String,
    /// Write the current token of every private integration to FILE (mode
    /// 0600, `GHL_PIT_<NAME>=token` lines to `source`), at start, after a
    /// reset and whenever a token is created, rotated or deleted.
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<PathBuf>,
    /// Fidelity profile (JSON or YAML): the settings where HighLevel's real
    /// behaviour is a guess or has a lenient variant; unnamed ones keep
    /// their defaults. See README "Fidelity".
    #[arg(long, value_name = "FILE")]
    fidelity: Option<PathBuf>,
    /// Turn the rate limiter off entirely: no counting, no 429, no
    /// X-RateLimit-* headers (for measuring its cost; not HighLevel's behaviour).
    #[arg(long)]
    no_rate_limits: bool,
    /// Connections served at once; more are closed at once.
    #[arg(long, default_value_t = ghl_mock::config::Limits::default().max_connections)]
    max_connections: usize,
    /// Largest request body, in bytes (larger: 413).
    #[arg(long, default_value_t = ghl_mock::config::Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Time a client has to send its headers, in milliseconds.
    #[arg(long, default_value_t = ghl_mock::config::Limits::default().header_timeout_ms)]
    header_timeout_ms: u64,
    /// Records of one kind one location may hold; past it creation answers
    /// 400, so memory stays bounded.
    #[arg(long, default_value_t = ghl_mock::config::Limits::default().max_records)]
    max_records: usize,
    /// Bytes (about) of records of one kind one location may hold.
    #[arg(long, default_value_t = ghl_mock::config::Limits::default().max_record_bytes)]
    max_record_bytes: usize,
    /// Tags one contact may hold.
    #[arg(long, default_value_t = ghl_mock::config::Limits::default().max_tags)]
    max_tags: usize,
    /// A client that shuts its side of the connection while its request is in
    /// flight: `answer` (it may have only half-closed: the answer is sent, the
    /// journal says `closed_early`) or `hang-up` (it is taken to have gone: the
    /// request is dropped and journaled `abandoned`).
    #[arg(long, value_name = "answer|hang-up", default_value = "answer", value_parser = half_close)]
    half_close: ghl_mock::config::HalfClose,
    /// Time a client has to send its body after the headers, in milliseconds (then 408).
    #[arg(long, default_value_t = ghl_mock::config::Limits::default().body_timeout_ms)]
    body_timeout_ms: u64,
    /// How many API requests the journal keeps for `ghl-mock journal` and
    /// `ghl-mock report` (the newest; 0 turns it off).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    journal_capacity: usize,
    /// About how many bytes of memory the journal may hold (the oldest
    /// requests are dropped first).
    #[arg(long, value_name = "BYTES", default_value_t = ghl_mock::journal::DEFAULT_MAX_BYTES)]
    journal_max_bytes: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let remote = cli.remote;
    match cli.command {
        Command::Serve(args) => serve(args, remote.admin_token),
        Command::CheckSpecs { dir, all } => check_specs(dir, all),
        Command::Pit { command } => remote::run(remote, remote::Call::Pit(command)),
        Command::Clock { command } => remote::run(remote, remote::Call::Clock(command)),
        Command::Oauth { command } => remote::run(remote, remote::Call::OAuth(command)),
        Command::Webhooks { command } => remote::run(remote, remote::Call::Webhooks(command)),
        Command::Rules { command } => remote::run(remote, remote::Call::Rules(command)),
        Command::Limits { command } => remote::run(remote, remote::Call::Limits(command)),
        Command::Reset => remote::run(remote, remote::Call::Reset),
        Command::Journal { args } => remote::journal(remote, args),
        Command::Report { args } => remote::report(remote, args),
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GHL_MOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, and never under NO_COLOR.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn source(specs: Option<PathBuf>) -> Source {
    match specs {
        Some(dir) => Source::Dir(dir),
        None => Source::Embedded(spec::EMBEDDED),
    }
}

fn serve(args: ServeArgs, admin_token: Option<String>) -> ExitCode {
    let started = Instant::now();
    let set = match spec::load(source(args.specs.clone()), args.seed) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("ghl-mock: cannot serve: {e}");
            return ExitCode::from(2);
        }
    };
    for e in &set.errors {
        tracing::warn!(file = %e.file, "file skipped: {}", e.message);
    }
    let check = match &args.specs {
        Some(dir) => format!("ghl-mock check-specs {}", dir.display()),
        None => "ghl-mock check-specs".to_string(),
    };
    let summary = format!(
        "{} files, {} operations, {} warnings (run `{check}` to list them)",
        set.files.len(),
        set.operations.len(),
        set.warnings.len()
    );
    let fixture = match &args.fixture {
        None => None,
        Some(path) => {
            let name = path.display().to_string();
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| format!("{name}: cannot read: {e}"))
                .and_then(|text| ghl_mock::fixture::parse(&name, &text).map_err(|e| e.to_string()));
            match parsed {
                Ok(f) => Some((name, f)),
                Err(e) => {
                    eprintln!("ghl-mock: bad fixture: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let fidelity = match &args.fidelity {
        None => ghl_mock::Fidelity::default(),
        Some(path) => {
            let name = path.display().to_string();
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| format!("{name}: cannot read: {e}"))
                .and_then(|text| ghl_mock::spec::parse_document(&name, &text))
                .and_then(|value| serde_json::from_value(value).map_err(|e| format!("{name}: {e}")));
            match parsed {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("ghl-mock: bad fidelity profile: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let config = Config {
        fidelity,
        rate_limits: !args.no_rate_limits,
        limits: ghl_mock::config::Limits {
            max_connections: args.max_connections,
            max_body_bytes: args.max_body_bytes,
            header_timeout_ms: args.header_timeout_ms,
            body_timeout_ms: args.body_timeout_ms,
            max_records: args.max_records,
            max_record_bytes: args.max_record_bytes,
            max_tags: args.max_tags,
            half_close: args.half_close,
            ..Default::default()
        },
        seed: args.seed,
        admin_token: admin_token.clone(),
        admin_remote: args.admin_remote,
        state_file: args.state.clone(),
        tokens_file: args.tokens_file.clone(),
        journal_capacity: args.journal_capacity,
        journal_max_bytes: args.journal_max_bytes,
    };
    if config.admin_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        eprintln!(
            "ghl-mock: cannot start: the admin token (--admin-token or GHL_MOCK_ADMIN_TOKEN) is empty, \
             which would lock the control plane; give a token or unset it"
        );
        return ExitCode::from(2);
    }
    if config.admin_remote && config.admin_token.is_none() {
        eprintln!(
            "ghl-mock: warning: --admin-remote without --admin-token lets any host that reaches this port \
             change tokens, limits and the clock"
        );
    }
    let time = if args.frozen_clock {
        ghl_mock::clock::LocalTime::new(true, ghl_mock::clock::system_now_ms())
    } else {
        ghl_mock::clock::LocalTime::new(false, 0)
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ghl-mock: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let started_mock = match &args.store {
            #[cfg(feature = "redis-store")]
            Some(url) => Mock::start_shared(set, config, time, fixture, url, &args.world).await,
            #[cfg(not(feature = "redis-store"))]
            Some(_) => {
                eprintln!("ghl-mock: cannot start: this build has no shared store (cargo feature redis-store)");
                return ExitCode::from(2);
            }
            None => Mock::start(set, config, Clock::from_source(time), fixture),
        };
        let started_mock = match started_mock {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ghl-mock: cannot start: {e}");
                return ExitCode::from(2);
            }
        };
        let mock = started_mock.mock;
        let joined = started_mock.joined;
        let minted: Vec<_> = started_mock.tokens.into_iter().filter(|t| t.minted).collect();
        let addr = format!("{}:{}", args.host, args.port);
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("ghl-mock: cannot listen on {addr}: {e}");
                return ExitCode::from(1);
            }
        };
        let local: SocketAddr = listener.local_addr().unwrap_or_else(|_| ([127, 0, 0, 1], args.port).into());
        say!("ghl-mock listening on http://{local}");
        say!("  specs: {summary}");
        for t in &minted {
            let owner = match &t.owner {
                ghl_mock::world::Owner::Location(l) => format!("locationId {l}"),
                ghl_mock::world::Owner::Company(c) => format!("companyId {c}"),
            };
            // Printed once, to stdout, so a newcomer can curl at once; never logged.
            say!("  private integration \"{}\" ({owner}): {}", t.name, t.token);
        }
        if let Some(url) = &args.store {
            #[cfg(feature = "redis-store")]
            let shown = ghl_mock::state::redis::redacted(url);
            #[cfg(not(feature = "redis-store"))]
            let shown = url;
            say!("  store: shared, world \"{}\" on {shown}", args.world);
            if joined {
                say!(
                    "  world: found on the store, made by another replica or an earlier run (its tokens were printed there; \
                     --tokens-file or `ghl-mock pit create` give you one)"
                );
            }
        }
        if let Some(path) = &args.tokens_file {
            say!("  tokens: the current token of each private integration is in {}", path.display());
        }
        // Issue 13: what a webhook handler needs to verify the mock's signatures.
        match mock.webhooks.public_key().await {
            Ok((_, raw)) => say!(
                "  webhooks: signed with Ed25519; set WEBHOOK_SIGNATURE_PUBLIC_KEY={raw} (PEM: GET /__admin/webhooks/public-key)"
            ),
            Err(e) => eprintln!("ghl-mock: warning: no webhook signing key: {e}"),
        }
        // Always the banner's last line: scripts may wait for it.
        say!("  control plane: http://{local}/__admin/ (see README)");
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "ready");
        match ghl_mock::serve(listener, mock, shutdown_signal()).await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ghl-mock: server error: {e}");
                ExitCode::from(1)
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn half_close(value: &str) -> Result<ghl_mock::config::HalfClose, String> {
    match value {
        "answer" => Ok(ghl_mock::config::HalfClose::Answer),
        "hang-up" | "hang_up" => Ok(ghl_mock::config::HalfClose::HangUp),
        other => Err(format!("'{other}' is neither answer nor hang-up")),
    }
}

fn check_specs(dir: Option<PathBuf>, all: bool) -> ExitCode {
    let (source, name) = match dir {
        Some(dir) => (Source::Dir(dir.clone()), dir.display().to_string()),
        None => (Source::Embedded(spec::EMBEDDED), "the embedded default specs".to_string()),
    };
    let set = match spec::load(source, 1) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("ghl-mock: {name}: {e}");
            return ExitCode::from(2);
        }
    };
    say!("files:");
    for f in &set.files {
        say!("  {:>4} operations  {}", f.operations, f.file);
    }
    for e in &set.errors {
        say!("  refused: {}", e.message);
    }
    let scopes = set.scopes();
    let v3 = set.operations.iter().filter(|o| o.era == spec::Era::V3).count();
    if v3 == 0 {
        say!("operations: {} (every published Version reaches them)", set.operations.len());
    } else {
        let services = set.v3_services.iter().map(|s| format!("/{s}")).collect::<Vec<_>>().join(" ");
        say!(
            "operations: {} ({} of the dated versions, {v3} of v3; under Version v3 a dated path of {services} \
             answers 400 as removed in v3)",
            set.operations.len(),
            set.operations.len() - v3
        );
    }
    say!("scopes ({}): {}", scopes.len(), scopes.into_iter().collect::<Vec<_>>().join(" "));
    let mut by_kind: std::collections::BTreeMap<String, usize> = Default::default();
    for w in &set.warnings {
        *by_kind.entry(format!("{:?}", w.kind)).or_default() += 1;
    }
    say!("warnings: {}", set.warnings.len());
    for (kind, n) in &by_kind {
        say!("  {n:>5}  {kind}");
    }
    let shown = if all { set.warnings.len() } else { 3 };
    let mut per_kind: std::collections::BTreeMap<String, usize> = Default::default();
    for w in &set.warnings {
        let n = per_kind.entry(format!("{:?}", w.kind)).or_default();
        *n += 1;
        if *n <= shown {
            say!("warning: {w}");
        }
    }
    if !all && !set.warnings.is_empty() {
        say!("(the first {shown} of each kind are shown; --all lists every one)");
    }
    say_raw!("{}", set.resources.render(&set.operations));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument of `command` and its subcommands without help text, by path.
    fn without_help(command: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} {id}"));
            }
        }
        for sub in command.get_subcommands() {
            without_help(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_argument_of_every_verb_has_help_text() {
        let cli = Cli::command();
        cli.clone().debug_assert();
        let mut missing = Vec::new();
        without_help(&cli, "ghl-mock", &mut missing);
        assert!(missing.is_empty(), "arguments without help text:\n{}", missing.join("\n"));
        let verbs: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
        for verb in [
            "serve",
            "check-specs",
            "pit",
            "clock",
            "oauth",
            "rules",
            "limits",
            "webhooks",
            "reset",
            "journal",
            "report",
        ] {
            assert!(verbs.contains(&verb), "no `{verb}` verb: {verbs:?}");
        }
    }

    #[test]
    fn the_mock_url_may_come_before_or_after_the_verb() {
        for args in [
            &["ghl-mock", "--url", "http://127.0.0.1:9", "clock", "get"][..],
            &["ghl-mock", "clock", "--url", "http://127.0.0.1:9", "get"][..],
            &["ghl-mock", "clock", "get", "--url", "http://127.0.0.1:9"][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(cli.remote.url, "http://127.0.0.1:9", "{args:?}");
        }
    }
}
