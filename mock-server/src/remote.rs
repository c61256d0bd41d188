//! The CLI verbs that drive a running mock's control plane (`ghl-mock pit …`,
//! `ghl-mock clock …`, `ghl-mock oauth …`, `ghl-mock rules …`, `ghl-mock
//! limits …`, `ghl-mock reset`): each is one HTTP call to `/__admin/`,
//! printed as JSON for scripts.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Args, Clone)]
pub struct Remote {
    /// Base URL of the running mock.
    #[arg(long, env = "GHL_MOCK_URL", default_value = "http://127.0.0.1:4010", global = true)]
    pub url: String,
    /// The control plane's token: `serve` requires it on /__admin/, the
    /// other verbs send it.
    #[arg(long, env = "GHL_MOCK_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,
}

#[derive(Subcommand)]
pub enum Pit {
    /// List private integrations (token fingerprints only).
    List,
    /// Create a private integration; prints its token once.
    Create {
        /// The integration's name, as HighLevel's settings page shows it.
        #[arg(long)]
        name: String,
        /// Owner location id (a location-level PIT); or --company.
        #[arg(long, conflicts_with = "company", required_unless_present = "company")]
        location: Option<String>,
        /// Owner company id (an agency-level PIT); or --location.
        #[arg(long)]
        company: Option<String>,
        /// Scopes, comma-separated (contacts.readonly,contacts.write).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Free text kept with the integration.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Change name, description or scopes; the token stays the same.
    Edit {
        /// The integration's id (`ghl-mock pit list` shows them).
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// The new scopes, comma-separated: they replace the old ones.
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
    },
    /// Rotate the token: the old one keeps working for 7 days, or stops now with --now.
    Rotate {
        /// The integration's id.
        id: String,
        /// Stop the old token at once instead of after the 7-day grace window.
        #[arg(long)]
        now: bool,
    },
    /// Cancel a rotation: the old token keeps working, the new one is withdrawn.
    CancelRotation {
        /// The integration's id.
        id: String,
    },
    /// End a rotation's grace window now.
    ExpireNow {
        /// The integration's id.
        id: String,
    },
    /// Delete the integration: its token stops at once.
    Delete {
        /// The integration's id.
        id: String,
    },
}

#[derive(Subcommand)]
pub enum ClockCmd {
    /// Show the mock's time.
    Get,
    /// Move the clock forward.
    Advance {
        /// How far: 7d, 10s, 1h30m, 250ms, 2days, 90 (seconds).
        by: String,
    },
    /// Set the time; it goes on running from there unless --freeze.
    Set {
        /// Milliseconds since the Unix epoch.
        now_ms: i64,
        /// Stop the clock at that time (until `clock resume`).
        #[arg(long)]
        freeze: bool,
    },
    /// Stop the clock where it is: it moves only by `advance` and `set`.
    Freeze,
    /// Let a frozen clock run again from where it stands.
    Resume,
}

#[derive(Subcommand)]
pub enum OAuthCmd {
    /// Issue an authorization code, as if a user approved an install.
    Code {
        #[command(flatten)]
        approval: Approval,
    },
    /// Install an app on a location or company: sends INSTALL, prints the install and a code.
    Install {
        #[command(flatten)]
        approval: Approval,
        /// With --company: also install on these locations (a bulk install; one INSTALL each).
        #[arg(long, value_delimiter = ',')]
        locations: Vec<String>,
    },
    /// List the installs.
    Installs,
    /// Uninstall (sends UNINSTALL).
    Uninstall {
        /// The install's id (`ghl-mock oauth installs` shows them).
        id: String,
    },
}

/// Issue 13: `ghl-mock webhooks …`.
#[derive(Subcommand)]
pub enum WebhooksCmd {
    /// The deliveries journal: event, URL, state and every attempt with status, latency and error.
    List {
        /// Only this event type (ContactCreate, INSTALL, …).
        #[arg(long)]
        event: Option<String>,
        /// pending, delivered, failed or abandoned.
        #[arg(long)]
        state: Option<String>,
        /// Only deliveries of this OAuth app.
        #[arg(long)]
        client_id: Option<String>,
        /// Only events of this location.
        #[arg(long)]
        location: Option<String>,
        /// The newest N deliveries.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// One delivery, by its webhookId.
    Show {
        /// The delivery's webhookId (as its payload carries it).
        webhook_id: String,
    },
    /// Send a delivery again now (the Logs Dashboard's "Resend").
    Resend {
        /// The delivery's webhookId.
        webhook_id: String,
    },
    /// Send every delivery that is due now and wait for the answers.
    Flush,
    /// The public key to set as WEBHOOK_SIGNATURE_PUBLIC_KEY.
    PublicKey,
    /// Forget every delivery not in flight.
    Clear,
}

impl WebhooksCmd {
    fn request(self) -> (reqwest::Method, String, Option<Value>) {
        use reqwest::Method;
        match self {
            WebhooksCmd::List { event, state, client_id, location, limit } => {
                let query = query_string(&[
                    ("event", event),
                    ("state", state),
                    ("client_id", client_id),
                    ("location", location),
                    ("limit", limit.map(|l| l.to_string())),
                ]);
                (Method::GET, format!("/webhooks/deliveries{query}"), None)
            }
            WebhooksCmd::Show { webhook_id } => (Method::GET, format!("/webhooks/deliveries/{webhook_id}"), None),
            WebhooksCmd::Resend { webhook_id } => {
                (Method::POST, format!("/webhooks/deliveries/{webhook_id}/resend"), None)
            }
            WebhooksCmd::Flush => (Method::POST, "/webhooks/flush".into(), None),
            WebhooksCmd::PublicKey => (Method::GET, "/webhooks/public-key".into(), None),
            WebhooksCmd::Clear => (Method::DELETE, "/webhooks/deliveries".into(), None),
        }
    }
}

#[derive(Subcommand)]
pub enum RulesCmd {
    /// List the answer rules with how many calls each has left.
    List,
    /// Add a rule: the next calls matching --path (and --method) get its answer, delay or fault.
    Add {
        /// A path glob: `*` is one segment, `**` any number (/contacts/**).
        #[arg(long)]
        path: String,
        /// Only this method (GET, POST, …); any when absent.
        #[arg(long)]
        method: Option<String>,
        /// How many calls it applies to; every call when absent.
        #[arg(long)]
        count: Option<u32>,
        /// The status to answer.
        #[arg(long)]
        status: Option<u16>,
        /// The JSON body to answer.
        #[arg(long, value_name = "JSON")]
        body: Option<String>,
        /// Wait this long (real milliseconds) before answering.
        #[arg(long)]
        latency_ms: Option<u64>,
        /// With --latency-ms: a delay drawn between the two.
        #[arg(long)]
        latency_max_ms: Option<u64>,
        /// Break the answer off: `reset` after the headers, `truncate` after half the body.
        #[arg(long, value_parser = ["reset", "truncate"])]
        fault: Option<String>,
    },
    /// Delete a rule.
    Delete {
        /// The rule's id (`ghl-mock rules list` shows them).
        id: u64,
    },
}

#[derive(Subcommand)]
pub enum LimitsCmd {
    /// A location's or company's limits and counters, as the X-RateLimit-* headers would say.
    Show {
        /// A location or company id.
        resource: String,
    },
    /// Give a location or company its own limits.
    Set {
        /// A location or company id.
        resource: String,
        /// Requests admitted per window.
        #[arg(long)]
        burst: u32,
        /// The burst window, in milliseconds.
        #[arg(long)]
        window_ms: u64,
        /// Requests admitted per day (UTC).
        #[arg(long)]
        daily: u32,
    },
    /// Use up the day's quota: every request answers 429 until midnight UTC.
    ExhaustDaily {
        /// A location or company id.
        resource: String,
    },
    /// Set how many requests the current burst window still admits.
    BurstRemaining {
        /// A location or company id.
        resource: String,
        /// Requests still admitted in this window.
        remaining: u32,
    },
    /// Answer the next N matching requests with 429, whatever the counters say.
    Inject {
        /// All traffic counted against this location or company.
        #[arg(long, group = "target", required_unless_present_any = ["token", "path"])]
        resource: Option<String>,
        /// Requests carrying this token (its fingerprint is all that is sent).
        #[arg(long, group = "target")]
        token: Option<String>,
        /// Requests whose path matches this glob (/contacts/*).
        #[arg(long, group = "target")]
        path: Option<String>,
        /// How many requests to refuse.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// List the injected 429s still waiting for requests.
    Injections,
    /// Withdraw an injected 429.
    RemoveInjection {
        /// The injection's id (`ghl-mock limits injections` shows them).
        id: u64,
    },
}

/// Who approves an app's install, and what it grants (`oauth code` and `oauth install`).
#[derive(Args)]
pub struct Approval {
    /// The OAuth app's client id (from the fixture's `oauth_apps`).
    #[arg(long)]
    client_id: String,
    /// The location that approves the install; or --company.
    #[arg(long, conflicts_with = "company", required_unless_present = "company")]
    location: Option<String>,
    /// The company (agency) that approves the install; or --location.
    #[arg(long)]
    company: Option<String>,
    /// Scopes granted, comma-separated (default: all of the app's).
    #[arg(long, value_delimiter = ',')]
    scopes: Option<Vec<String>>,
}

fn owner(location: Option<String>, company: Option<String>) -> Value {
    match (location, company) {
        (Some(l), _) => json!({"location": l}),
        (None, Some(c)) => json!({"company": c}),
        (None, None) => Value::Null,
    }
}

impl Pit {
    fn request(self) -> (reqwest::Method, String, Option<Value>) {
        use reqwest::Method;
        match self {
            Pit::List => (Method::GET, "/integrations".into(), None),
            Pit::Create { name, location, company, scopes, description } => (
                Method::POST,
                "/integrations".into(),
                Some(
                    json!({"name": name, "owner": owner(location, company), "scopes": scopes, "description": description}),
                ),
            ),
            Pit::Edit { id, name, description, scopes } => {
                let mut body = serde_json::Map::new();
                if let Some(n) = name {
                    body.insert("name".into(), n.into());
                }
                if let Some(d) = description {
                    body.insert("description".into(), d.into());
                }
                if let Some(s) = scopes {
                    body.insert("scopes".into(), s.into());
                }
                (Method::PATCH, format!("/integrations/{id}"), Some(Value::Object(body)))
            }
            Pit::Rotate { id, now } => (
                Method::POST,
                format!("/integrations/{id}/rotate"),
                Some(json!({"expire": if now { "now" } else { "later" }})),
            ),
            Pit::CancelRotation { id } => (Method::POST, format!("/integrations/{id}/cancel-rotation"), None),
            Pit::ExpireNow { id } => (Method::POST, format!("/integrations/{id}/expire-now"), None),
            Pit::Delete { id } => (Method::DELETE, format!("/integrations/{id}"), None),
        }
    }
}

impl ClockCmd {
    fn request(self) -> (reqwest::Method, String, Option<Value>) {
        use reqwest::Method;
        match self {
            ClockCmd::Get => (Method::GET, "/clock".into(), None),
            ClockCmd::Advance { by } => (Method::POST, "/clock/advance".into(), Some(json!({"by": by}))),
            ClockCmd::Set { now_ms, freeze } => {
                (Method::POST, "/clock".into(), Some(json!({"now_ms": now_ms, "frozen": freeze})))
            }
            ClockCmd::Freeze => (Method::POST, "/clock".into(), Some(json!({"frozen": true}))),
            ClockCmd::Resume => (Method::POST, "/clock".into(), Some(json!({"frozen": false}))),
        }
    }
}

impl RulesCmd {
    fn request(self) -> Result<(reqwest::Method, String, Option<Value>), String> {
        use reqwest::Method;
        Ok(match self {
            RulesCmd::List => (Method::GET, "/rules".into(), None),
            RulesCmd::Add { path, method, count, status, body, latency_ms, latency_max_ms, fault } => {
                let body = match body {
                    Some(text) => {
                        Some(serde_json::from_str::<Value>(&text).map_err(|e| format!("--body is not JSON: {e}"))?)
                    }
                    None => None,
                };
                let mut rule = serde_json::Map::new();
                rule.insert("path".into(), path.into());
                let optional = [
                    ("method", method.map(Value::from)),
                    ("count", count.map(Value::from)),
                    ("status", status.map(Value::from)),
                    ("body", body),
                    ("latency_ms", latency_ms.map(Value::from)),
                    ("latency_max_ms", latency_max_ms.map(Value::from)),
                    ("fault", fault.map(Value::from)),
                ];
                for (key, value) in optional {
                    if let Some(v) = value {
                        rule.insert(key.into(), v);
                    }
                }
                (Method::POST, "/rules".into(), Some(Value::Object(rule)))
            }
            RulesCmd::Delete { id } => (Method::DELETE, format!("/rules/{id}"), None),
        })
    }
}

impl LimitsCmd {
    fn request(self) -> (reqwest::Method, String, Option<Value>) {
        use reqwest::Method;
        let at = |resource: &str| utf8_percent_encode(resource);
        match self {
            LimitsCmd::Show { resource } => (Method::GET, format!("/limits/{}", at(&resource)), None),
            LimitsCmd::Set { resource, burst, window_ms, daily } => (
                Method::PUT,
                format!("/limits/{}", at(&resource)),
                Some(json!({"burst": burst, "window_ms": window_ms, "daily": daily})),
            ),
            LimitsCmd::ExhaustDaily { resource } => {
                (Method::POST, format!("/limits/{}/exhaust-daily", at(&resource)), Some(json!({})))
            }
            LimitsCmd::BurstRemaining { resource, remaining } => (
                Method::POST,
                format!("/limits/{}/burst-remaining", at(&resource)),
                Some(json!({"remaining": remaining})),
            ),
            LimitsCmd::Inject { resource, token, path, count } => {
                let target = match (resource, token_fingerprint(token), path) {
                    (Some(r), _, _) => json!({"resource": r}),
                    (None, Some(t), _) => json!({"token": t}),
                    (None, None, p) => json!({"path": p.unwrap_or_default()}),
                };
                (Method::POST, "/limits/injections".into(), Some(json!({"target": target, "count": count})))
            }
            LimitsCmd::Injections => (Method::GET, "/limits/injections".into(), None),
            LimitsCmd::RemoveInjection { id } => (Method::DELETE, format!("/limits/injections/{id}"), None),
        }
    }
}

fn utf8_percent_encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl OAuthCmd {
    fn request(self) -> (reqwest::Method, String, Option<Value>) {
        match self {
            OAuthCmd::Code { approval: Approval { client_id, location, company, scopes } } => {
                let mut body = json!({"client_id": client_id, "owner": owner(location, company)});
                if let Some(s) = scopes {
                    body["scopes"] = s.into();
                }
                (reqwest::Method::POST, "/oauth/codes".into(), Some(body))
            }
            OAuthCmd::Install { approval: Approval { client_id, location, company, scopes }, locations } => {
                let mut body = json!({"client_id": client_id});
                if let Some(l) = location {
                    body["location"] = l.into();
                }
                if let Some(c) = company {
                    body["company"] = c.into();
                }
                if !locations.is_empty() {
                    body["locations"] = locations.into();
                }
                if let Some(s) = scopes {
                    body["scopes"] = s.into();
                }
                (reqwest::Method::POST, "/oauth/installs".into(), Some(body))
            }
            OAuthCmd::Installs => (reqwest::Method::GET, "/oauth/installs".into(), None),
            OAuthCmd::Uninstall { id } => (reqwest::Method::DELETE, format!("/oauth/installs/{id}"), None),
        }
    }
}

pub enum Call {
    Pit(Pit),
    Clock(ClockCmd),
    OAuth(OAuthCmd),
    Rules(RulesCmd),
    Limits(LimitsCmd),
    Webhooks(WebhooksCmd),
    Reset,
}

/// Runs one control-plane call and prints the answer; non-zero exit on refusal.
pub fn run(remote: Remote, call: Call) -> ExitCode {
    let (method, path, body) = match call {
        Call::Pit(p) => p.request(),
        Call::Clock(c) => c.request(),
        Call::OAuth(o) => o.request(),
        Call::Rules(r) => match r.request() {
            Ok(request) => request,
            Err(e) => {
                eprintln!("ghl-mock: {e}");
                return ExitCode::from(2);
            }
        },
        Call::Limits(l) => l.request(),
        Call::Webhooks(w) => w.request(),
        Call::Reset => (reqwest::Method::POST, "/reset".into(), None),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ghl-mock: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let url = format!("{}/__admin{path}", remote.url.trim_end_matches('/'));
    let result = runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = client.request(method, &url);
        if let Some(token) = &remote.admin_token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok::<_, reqwest::Error>((status, text))
    });
    match result {
        Ok((status, text)) => {
            let pretty = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or(text);
            if status.is_success() {
                say!("{pretty}");
                ExitCode::SUCCESS
            } else {
                eprintln!("{pretty}");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("ghl-mock: cannot reach {url}: {e}");
            ExitCode::from(1)
        }
    }
}

// Issue 8: `ghl-mock journal` and `ghl-mock report`.

/// A token given whole on the command line is turned into its fingerprint
/// here, so it never travels, not even to the control plane.
fn token_fingerprint(token: Option<String>) -> Option<String> {
    token.map(|t| {
        let t = t.trim();
        if t == "none" || t.contains(':') {
            t.to_string()
        } else {
            ghl_mock::auth::secret::fingerprint(t)
        }
    })
}

#[derive(Args)]
pub struct JournalArgs {
    /// Only requests with this token: its fingerprint (pit:3fa2c1d0), `none`,
    /// or the token itself (only its fingerprint is sent).
    #[arg(long)]
    token: Option<String>,
    /// Only this status (429) or class (4xx).
    #[arg(long)]
    status: Option<String>,
    /// Only paths matching this glob (`*` one segment, `**` any): /contacts/*
    #[arg(long)]
    path: Option<String>,
    /// Only this method (GET, POST, …).
    #[arg(long)]
    method: Option<String>,
    /// Only requests refused for this reason (scope, invalid_token, rate_limited_burst, …).
    #[arg(long)]
    refused: Option<String>,
    /// Only requests at or after this time (ms since the epoch, on the mock's clock).
    #[arg(long)]
    since: Option<i64>,
    /// The newest N matching requests (default 1000).
    #[arg(long)]
    limit: Option<usize>,
    /// `jsonl` for scripts, `table` for people.
    #[arg(long, value_enum, default_value_t = JournalFormat::Jsonl)]
    format: JournalFormat,
    /// Empty the journal instead of listing it.
    #[arg(long)]
    clear: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum JournalFormat {
    /// One JSON object a line.
    Jsonl,
    Table,
}

#[derive(Args)]
pub struct ReportArgs {
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Finding kinds that make the command exit 1: a comma list of ids
    /// (sent_during_backoff, retried_too_soon, used_dead_token, version_header,
    /// ignored_daily_quota, sandbox_burst, duplicate_risk, repeated_scope_refusal, webhook_non_2xx,
    /// webhook_slow, webhook_abandoned) or `all`.
    #[arg(long, value_name = "LIST", default_value = "")]
    fail_on: String,
    /// Judge only the requests of this token (fingerprint or token, as for `journal`).
    #[arg(long)]
    token: Option<String>,
    /// Judge only the requests counted against this location or company.
    #[arg(long)]
    location: Option<String>,
    /// Judge only requests at or after this time (ms on the mock's clock).
    #[arg(long)]
    since: Option<i64>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Junit,
}

/// One control-plane call: the status and the body as text.
fn admin_call(remote: &Remote, method: reqwest::Method, path: &str) -> Result<(reqwest::StatusCode, String), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let url = format!("{}/__admin{path}", remote.url.trim_end_matches('/'));
    runtime
        .block_on(async {
            let mut request = reqwest::Client::new().request(method, &url);
            if let Some(token) = &remote.admin_token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
        .map_err(|e| format!("cannot reach {url}: {e}"))
}

fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if let Some(v) = value {
            query.append_pair(key, v);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        query
    } else {
        format!("?{query}")
    }
}

/// Prints the journal (or clears it); exit 1 when the mock refuses or cannot be reached.
pub fn journal(remote: Remote, args: JournalArgs) -> ExitCode {
    if args.clear {
        return match admin_call(&remote, reqwest::Method::DELETE, "/journal") {
            Ok((status, text)) if status.is_success() => {
                say!("{text}");
                ExitCode::SUCCESS
            }
            Ok((_, text)) | Err(text) => {
                eprintln!("ghl-mock: {text}");
                ExitCode::from(1)
            }
        };
    }
    let query = query_string(&[
        ("token", token_fingerprint(args.token)),
        ("status", args.status),
        ("path", args.path),
        ("method", args.method),
        ("refused", args.refused),
        ("since", args.since.map(|s| s.to_string())),
        ("limit", args.limit.map(|l| l.to_string())),
    ]);
    let text = match admin_call(&remote, reqwest::Method::GET, &format!("/journal{query}")) {
        Ok((status, text)) if status.is_success() => text,
        Ok((_, text)) | Err(text) => {
            eprintln!("ghl-mock: {text}");
            return ExitCode::from(1);
        }
    };
    let answer: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ghl-mock: the journal answer is not JSON: {e}");
            return ExitCode::from(1);
        }
    };
    let entries = answer["entries"].as_array().map(Vec::as_slice).unwrap_or_default();
    match args.format {
        JournalFormat::Jsonl => {
            for e in entries {
                say!("{e}");
            }
        }
        JournalFormat::Table => say_raw!("{}", journal_table(entries)),
    }
    ExitCode::SUCCESS
}

fn journal_table(entries: &[Value]) -> String {
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = format!(
        "{:>7}  {:<24}  {:<6} {:<32} {:>6}  {:<22} {:<13} {:<21} {}\n",
        "index", "at", "method", "path", "status", "refused/broken", "token", "location", "version"
    );
    for e in entries {
        let why = if e["refused"].is_null() { text(&e["broken"]) } else { text(&e["refused"]) };
        out.push_str(&format!(
            "{:>7}  {:<24}  {:<6} {:<32} {:>6}  {:<22} {:<13} {:<21} {}\n",
            text(&e["index"]),
            text(&e["at"]),
            text(&e["method"]),
            text(&e["path"]),
            text(&e["status"]),
            why,
            text(&e["token"]),
            text(&e["location"]),
            text(&e["version"]),
        ));
    }
    out
}

/// Prints the client behaviour report; exit 1 when it has a finding of a
/// `--fail-on` kind, 2 when the report cannot be had or the arguments are wrong.
pub fn report(remote: Remote, args: ReportArgs) -> ExitCode {
    use ghl_mock::report::{Kind, Report};
    let fail_on = match Kind::parse_list(&args.fail_on) {
        Ok(kinds) => kinds,
        Err(e) => {
            eprintln!("ghl-mock: --fail-on: {e}");
            return ExitCode::from(2);
        }
    };
    let query = query_string(&[
        ("token", token_fingerprint(args.token)),
        ("location", args.location),
        ("since", args.since.map(|s| s.to_string())),
    ]);
    let text = match admin_call(&remote, reqwest::Method::GET, &format!("/report{query}")) {
        Ok((status, text)) if status.is_success() => text,
        Ok((_, text)) | Err(text) => {
            eprintln!("ghl-mock: {text}");
            return ExitCode::from(2);
        }
    };
    let report: Report = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ghl-mock: the report answer is not a report: {e}");
            return ExitCode::from(2);
        }
    };
    match args.format {
        ReportFormat::Text => say_raw!("{}", report.text()),
        ReportFormat::Junit => say_raw!("{}", report.junit()),
        ReportFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => say!("{json}"),
            Err(e) => {
                eprintln!("ghl-mock: {e}");
                return ExitCode::from(2);
            }
        },
    }
    let failing = report.failing(&fail_on);
    if failing.is_empty() {
        return ExitCode::SUCCESS;
    }
    let ids: Vec<&str> = failing.iter().map(|k| k.id()).collect();
    eprintln!("ghl-mock: the client shows {} (--fail-on)", ids.join(", "));
    ExitCode::from(1)
}
