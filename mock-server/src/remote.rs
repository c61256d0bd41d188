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
        }
    }
}

pub enum Call {
    Pit(Pit),
    Clock(ClockCmd),
    OAuth(OAuthCmd),
    Reset,
}

/// Runs one control-plane call and prints the answer; non-zero exit on refusal.
pub fn run(remote: Remote, call: Call) -> ExitCode {
    let (method, path, body) = match call {
        Call::Pit(p) => p.request(),
        Call::Clock(c) => c.request(),
        Call::OAuth(o) => o.request(),
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
                println!("{pretty}");
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
