//! The CLI verbs that drive a running mock's control plane (`ghl-mock pit …`,
//! `ghl-mock clock …`, `ghl-mock oauth …`, `ghl-mock reset`): each is one
//! HTTP call to `/__admin/`, printed as JSON for scripts.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Args, Clone)]
pub struct Remote {
    /// Base URL of the running mock.
    #[arg(long, env = "GHL_MOCK_URL", default_value = "http://127.0.0.1:4010", global = true)]
    pub url: String,
    /// Admin token, when the mock was started with one.
    #[arg(long, env = "GHL_MOCK_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,
}

#[derive(Subcommand)]
pub enum Pit {
    /// List private integrations (token fingerprints only).
    List,
    /// Create a private integration; prints its token once.
    Create {
        #[arg(long)]
        name: String,
        /// Owner location id (or use --company).
        #[arg(long, conflicts_with = "company", required_unless_present = "company")]
        location: Option<String>,
        #[arg(long)]
        company: Option<String>,
        /// Scopes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Change name, description or scopes; the token stays the same.
    Edit {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
    },
    /// Rotate the token: the old one keeps working for 7 days, or stops now with --now.
    Rotate {
        id: String,
        #[arg(long)]
        now: bool,
    },
    /// Cancel a rotation: the old token keeps working, the new one is withdrawn.
    CancelRotation { id: String },
    /// End a rotation's grace window now.
    ExpireNow { id: String },
    /// Delete the integration: its token stops at once.
    Delete { id: String },
}

#[derive(Subcommand)]
pub enum ClockCmd {
    /// Show the mock's time.
    Get,
    /// Move the clock forward: 7d, 10s, 1h30m, 250ms.
    Advance { by: String },
    /// Set the time (milliseconds since the Unix epoch); --freeze stops it there.
    Set {
        now_ms: i64,
        #[arg(long)]
        freeze: bool,
    },
}

#[derive(Subcommand)]
pub enum OAuthCmd {
    /// Issue an authorization code, as if a user approved an install.
    Code {
        #[arg(long)]
        client_id: String,
        #[arg(long, conflicts_with = "company", required_unless_present = "company")]
        location: Option<String>,
        #[arg(long)]
        company: Option<String>,
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
    },
    /// Install an app on a location or company: sends INSTALL, prints the install and a code.
    Install {
        #[arg(long)]
        client_id: String,
        #[arg(long, conflicts_with = "company", required_unless_present = "company")]
        location: Option<String>,
        #[arg(long)]
        company: Option<String>,
        /// With --company: also install on these locations (a bulk install; one INSTALL each).
        #[arg(long, value_delimiter = ',')]
        locations: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
    },
    /// List the installs.
    Installs,
    /// Uninstall (sends UNINSTALL).
    Uninstall { id: String },
}

/// Issue 13: `ghl-mock webhooks …`.
#[derive(Subcommand)]
pub enum WebhooksCmd {
    /// The deliveries journal: event, URL, state and every attempt with status, latency and error.
    List {
        #[arg(long)]
        event: Option<String>,
        /// pending, delivered, failed or abandoned.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        client_id: Option<String>,
        #[arg(long)]
        location: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// One delivery, by its webhookId.
    Show { webhook_id: String },
    /// Send a delivery again now (the Logs Dashboard's "Resend").
    Resend { webhook_id: String },
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
                let mut body = json!({"now_ms": now_ms});
                if freeze {
                    body["frozen"] = Value::Bool(true);
                }
                (Method::POST, "/clock".into(), Some(body))
            }
        }
    }
}

impl OAuthCmd {
    fn request(self) -> (reqwest::Method, String, Option<Value>) {
        match self {
            OAuthCmd::Code { client_id, location, company, scopes } => {
                let mut body = json!({"client_id": client_id, "owner": owner(location, company)});
                if let Some(s) = scopes {
                    body["scopes"] = s.into();
                }
                (reqwest::Method::POST, "/oauth/codes".into(), Some(body))
            }
            OAuthCmd::Install { client_id, location, company, locations, scopes } => {
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
    Webhooks(WebhooksCmd),
    Reset,
}

/// Runs one control-plane call and prints the answer; non-zero exit on refusal.
pub fn run(remote: Remote, call: Call) -> ExitCode {
    let (method, path, body) = match call {
        Call::Pit(p) => p.request(),
        Call::Clock(c) => c.request(),
        Call::OAuth(o) => o.request(),
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
