//! A HighLevel API client with every habit that hurts in production: point
//! it at ghl-mock, then read `ghl-mock report` to see each one named.
//!
//! ```sh
//! cargo run -p ghl-mock --example bad_client -- http://127.0.0.1:4010 "$PIT" ghlMockLocationA0001
//! # or GHL_BASE_URL, GHL_PIT and GHL_LOCATION_ID in the environment
//! ```
//!
//! It makes about 40 calls (list and create contacts, read one, read the
//! location), as fast as it can, and:
//! - forgets the `Version` header when it reads a contact;
//! - retries a 429 at once, and keeps firing through a back-off;
//! - ignores `X-RateLimit-Daily-Remaining` (a daily 429 is just retried);
//! - retries a POST at once after a 5xx or a broken answer (duplicates!);
//! - keeps using its token after a 401;
//! - calls an operation refused for its scope again and again.
//!
//! The client logic is [`run_with`]; `pause` is only a hook for tests (this
//! client never waits).

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

const VERSION: &str = "2021-07-28";
const CALLS: usize = 40;
/// Tries per call: one, and two immediate retries.
const TRIES: usize = 3;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub requests: usize,
    /// Answers by status (0: no whole answer).
    pub statuses: std::collections::BTreeMap<u16, usize>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some((url, pit, location)) = target() else {
        eprintln!("usage: bad_client URL PIT LOCATION_ID (or GHL_BASE_URL, GHL_PIT, GHL_LOCATION_ID)");
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

pub async fn run(base_url: &str, pit: &str, location: &str) -> Summary {
    run_with(base_url, pit, location, |_, _| std::future::ready(())).await
}

/// The client logic. `pause(requests_so_far, Duration::ZERO)` is awaited
/// before every request: this client never waits, but a test may act there.
pub async fn run_with<P, F>(base_url: &str, pit: &str, location: &str, mut pause: P) -> Summary
where
    P: FnMut(usize, Duration) -> F,
    F: Future<Output = ()>,
{
    let base_url = base_url.trim_end_matches('/');
    let http = reqwest::Client::new();
    let mut summary = Summary::default();
    let mut contact_id = "aaaaaaaaaaaaaaaaaaaa".to_string();
    for i in 0..CALLS {
        let (method, path, body, version) = match i % 8 {
            1 | 5 => (
                Method::POST,
                "/contacts/".to_string(),
                Some(json!({
                    "locationId": location,
                    "firstName": "Bad",
                    "lastName": format!("Client {i}"),
                    "email": format!("bad.client.{i}@example.com"),
                })),
                true,
            ),
            3 => (Method::GET, format!("/locations/{location}"), None, true),
            // "It worked without it on my machine."
            7 => (Method::GET, format!("/contacts/{contact_id}"), None, false),
            _ => (Method::GET, format!("/contacts/?locationId={location}&limit=10"), None, true),
        };
        for _ in 0..TRIES {
            pause(summary.requests, Duration::ZERO).await;
            summary.requests += 1;
            let mut request = http.request(method.clone(), format!("{base_url}{path}")).bearer_auth(pit);
            if version {
                request = request.header("Version", VERSION);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let answer = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    response.bytes().await.ok().map(|bytes| (status, bytes))
                }
                Err(_) => None,
            };
            let Some((status, bytes)) = answer else {
                *summary.statuses.entry(0).or_default() += 1;
                continue;
            };
            *summary.statuses.entry(status).or_default() += 1;
            if let Some(id) = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["contact"]["id"].as_str().map(str::to_string))
            {
                contact_id = id;
            }
            // Whatever went wrong, trying again straight away will surely fix it.
            if status != 429 && status < 500 {
                break;
            }
        }
    }
    summary
}
