//! A HighLevel API client that behaves: point it at ghl-mock, then read
//! `ghl-mock report` (it should find nothing).
//!
//! ```sh
//! cargo run -p ghl-mock --example good_client -- http://127.0.0.1:4010 "$PIT" ghlMockLocationA0001
//! # or GHL_BASE_URL, GHL_PIT and GHL_LOCATION_ID in the environment
//! ```
//!
//! It makes about 40 calls (list, create and read contacts, read the
//! location) and:
//! - sends `Version` on every call;
//! - paces itself to one call every 500 ms: under a sandbox's 25 per 10 s
//!   even when the account it runs against is a production one;
//! - after a 429 waits `X-RateLimit-Interval-Milliseconds` (or `Retry-After`,
//!   whichever is longer) before calling again, and stops when
//!   `X-RateLimit-Daily-Remaining` is 0;
//! - stops using its token after a 401 `Invalid Private Integration token`
//!   (or `Invalid JWT`);
//! - never retries a POST after a 5xx or a broken answer: it may have taken
//!   effect, and a second create would be a duplicate contact;
//! - calls an operation refused for its scope once, not again.
//!
//! The client logic is [`run_with`], which takes the way it waits as an
//! argument: real sleeps here, the mock's virtual clock in ghl-mock's tests.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const VERSION: &str = "2021-07-28";
const CALLS: usize = 40;
/// One call every 500 ms: at most 20 in any 10 s, under a sandbox's 25.
const PACE: Duration = Duration::from_millis(500);
const MAX_RATE_LIMIT_RETRIES: u32 = 5;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub requests: usize,
    pub listed: usize,
    pub created: usize,
    pub read: usize,
    /// Calls that failed and were given up (not retried).
    pub failed: usize,
    /// Why the client stopped before its last call, if it did.
    pub stopped: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some((url, pit, location)) = target() else {
        eprintln!("usage: good_client URL PIT LOCATION_ID (or GHL_BASE_URL, GHL_PIT, GHL_LOCATION_ID)");
        return ExitCode::from(2);
    };
    let summary = run(&url, &pit, &location).await;
    println!("{summary:?}");
    ExitCode::SUCCESS
}

/// The mock's URL, a PIT and a location id, from the arguments or the environment.
fn target() -> Option<(String, String, String)> {
    let mut args = std::env::args().skip(1);
    let mut next = |env: &str| args.next().or_else(|| std::env::var(env).ok()).filter(|v| !v.is_empty());
    Some((next("GHL_BASE_URL")?, next("GHL_PIT")?, next("GHL_LOCATION_ID")?))
}

/// Runs against `base_url`, sleeping for real.
pub async fn run(base_url: &str, pit: &str, location: &str) -> Summary {
    run_with(base_url, pit, location, |_, wait| tokio::time::sleep(wait)).await
}

/// What one call got back.
enum Outcome {
    Answer {
        status: StatusCode,
        body: Value,
        daily_remaining: Option<u64>,
    },
    /// No whole answer: refused connection, reset, broken body, timeout.
    Broken,
}

/// One client, one token.
struct Client<'a, P> {
    http: reqwest::Client,
    base_url: &'a str,
    pit: &'a str,
    pause: P,
    summary: Summary,
    /// How long to wait before the next request.
    wait: Duration,
}

impl<P, F> Client<'_, P>
where
    P: FnMut(usize, Duration) -> F,
    F: Future<Output = ()>,
{
    /// One call, waiting out 429s as the answer asks.
    async fn call(&mut self, method: Method, path: &str, body: Option<&Value>) -> Outcome {
        let mut attempts = 0;
        loop {
            (self.pause)(self.summary.requests, self.wait).await;
            self.summary.requests += 1;
            self.wait = PACE;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base_url))
                .bearer_auth(self.pit)
                .header("Version", VERSION);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(_) => return Outcome::Broken,
            };
            let status = response.status();
            let header = |name: &str| {
                response.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
            };
            let daily_remaining = header("x-ratelimit-daily-remaining");
            let interval = header("x-ratelimit-interval-milliseconds").map(Duration::from_millis);
            let retry_after = header("retry-after").map(Duration::from_secs);
            if header("x-ratelimit-remaining") == Some(0) {
                self.wait = self.wait.max(interval.unwrap_or(PACE));
            }
            let body = match response.bytes().await {
                Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                Err(_) => return Outcome::Broken,
            };
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                && daily_remaining != Some(0)
                && attempts < MAX_RATE_LIMIT_RETRIES;
            if !retryable {
                return Outcome::Answer { status, body, daily_remaining };
            }
            // A 429 was refused before anything happened: safe to send again, after the wait it asks for.
            attempts += 1;
            let asked = interval.unwrap_or(Duration::from_secs(10)).max(retry_after.unwrap_or_default());
            self.wait = self.wait.max(asked);
        }
    }
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or("")
}

/// The client logic. `pause(requests_so_far, wait)` is awaited before every
/// request; [`run`] sleeps `wait`, a test moves a virtual clock instead.
pub async fn run_with<P, F>(base_url: &str, pit: &str, location: &str, pause: P) -> Summary
where
    P: FnMut(usize, Duration) -> F,
    F: Future<Output = ()>,
{
    let base_url = base_url.trim_end_matches('/');
    let mut client = Client {
        http: reqwest::Client::new(),
        base_url,
        pit,
        pause,
        summary: Summary::default(),
        wait: Duration::ZERO,
    };
    let mut location_refused = false;
    let mut contact_id: Option<String> = None;
    for i in 0..CALLS {
        let (method, path, body) = match (i % 4, &contact_id) {
            (2, _) if !location_refused => (Method::GET, format!("/locations/{location}"), None),
            (1, _) => (
                Method::POST,
                "/contacts/".to_string(),
                Some(json!({
                    "locationId": location,
                    "firstName": "Good",
                    "lastName": format!("Client {i}"),
                    "email": format!("good.client.{i}@example.com"),
                })),
            ),
            (3, Some(id)) => (Method::GET, format!("/contacts/{id}"), None),
            _ => (Method::GET, format!("/contacts/?locationId={location}&limit=10"), None),
        };
        let (status, answer, daily_remaining) = match client.call(method.clone(), &path, body.as_ref()).await {
            Outcome::Answer { status, body, daily_remaining } => (status, body, daily_remaining),
            Outcome::Broken => {
                // Not retried, a POST least of all: it may have taken effect.
                client.summary.failed += 1;
                continue;
            }
        };
        if status == StatusCode::UNAUTHORIZED
            && matches!(message(&answer), "Invalid Private Integration token" | "Invalid JWT")
        {
            client.summary.stopped = Some(format!("the token was refused: {}", message(&answer)));
            break;
        }
        if status == StatusCode::UNAUTHORIZED && message(&answer) == "The token is not authorized for this scope." {
            location_refused = true;
            continue;
        }
        if daily_remaining == Some(0) {
            if status.is_success() {
                count(&mut client.summary, &method, &path);
            }
            client.summary.stopped = Some("the daily quota is used up".to_string());
            break;
        }
        if !status.is_success() {
            client.summary.failed += 1;
            continue;
        }
        count(&mut client.summary, &method, &path);
        if let Some(id) = answer["contact"]["id"].as_str() {
            contact_id = Some(id.to_string());
        }
    }
    client.summary
}

fn count(summary: &mut Summary, method: &Method, path: &str) {
    match (method.as_str(), path.starts_with("/contacts/?")) {
        ("POST", _) => summary.created += 1,
        (_, true) => summary.listed += 1,
        _ => summary.read += 1,
    }
}
