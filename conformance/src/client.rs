//! HTTP to a base URL, and nothing else: a [`Call`] is what a test sends, an
//! [`Answer`] what it gets back. The [`Transport`] counts every request,
//! refuses API requests past the run's cap, and keeps a short record of each
//! API answer (status, refusal message, rate-limit headers) for checks that
//! look at a whole run.
//!
//! Tests are plain functions; the transport owns a tokio runtime and blocks
//! on it, so property tests can send requests from inside proptest's runner.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use reqwest::Method;
use serde_json::Value;

use crate::error::Error;

/// The `X-RateLimit-*` headers HighLevel sends, as it spells them.
pub const RATE_LIMIT_HEADERS: [&str; 5] = [
    "X-RateLimit-Limit-Daily",
    "X-RateLimit-Daily-Remaining",
    "X-RateLimit-Interval-Milliseconds",
    "X-RateLimit-Max",
    "X-RateLimit-Remaining",
];

#[derive(Clone)]
pub enum Body {
    Json(Value),
    Form(Vec<(String, String)>),
    /// Sent as is, with this content type.
    Raw {
        content_type: String,
        bytes: Vec<u8>,
    },
}

/// One request, relative to a base URL.
#[derive(Clone)]
pub struct Call {
    pub method: Method,
    /// The path as sent, parameters filled in.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), query: Vec::new(), headers: Vec::new(), body: None }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    pub fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_string(), value.into()));
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    pub fn version(self, version: &str) -> Self {
        self.header("Version", version)
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(Body::Json(body));
        self
    }

    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        self.body = Some(Body::Form(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()));
        self
    }

    /// Whether the request carries a bearer token at all.
    pub fn has_bearer(&self) -> bool {
        self.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("authorization") && v.starts_with("Bearer "))
    }

    /// The path and its query as they go on the wire (`/path?a=1&b=x+y`).
    pub fn path_and_query(&self) -> String {
        let Ok(mut url) = reqwest::Url::parse(&format!("http://target{}", self.path)) else {
            return self.path.clone();
        };
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(self.query.iter());
        }
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// `GET /path?query` with the token shown as its fingerprint: for messages.
    pub fn describe(&self) -> String {
        let mut out = format!("{} {}", self.method, self.path);
        if !self.query.is_empty() {
            let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push('?');
            out.push_str(&q.join("&"));
        }
        for (name, value) in &self.headers {
            let shown = if name.eq_ignore_ascii_case("authorization") {
                match value.strip_prefix("Bearer ") {
                    Some(token) => format!("Bearer {}", ghl_mock::auth::secret::fingerprint(token)),
                    None => "(not a bearer value)".to_string(),
                }
            } else {
                value.clone()
            };
            out.push_str(&format!(" [{name}: {shown}]"));
        }
        out
    }
}

/// Never prints a token: see [`Call::describe`].
impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as JSON, or as a string when it is not JSON.
    pub fn body_value(&self) -> Value {
        self.json().unwrap_or_else(|| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
    }

    /// A header read as a whole number.
    pub fn number(&self, name: &str) -> Option<u64> {
        self.header(name).and_then(|v| v.trim().parse().ok())
    }

    /// `401 {"statusCode":401,"message":"…"}`, for messages.
    pub fn summary(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(400).collect();
        format!("{} {body}", self.status)
    }

    /// The `message` of an error body, when it is one string.
    pub fn message(&self) -> Option<String> {
        self.json().and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
    }
}

/// What the run remembers of one API answer.
#[derive(Debug, Clone)]
pub struct Logged {
    pub call: String,
    pub had_bearer: bool,
    pub status: u16,
    pub message: Option<String>,
    /// The `X-RateLimit-*` headers present, as sent.
    pub rate_limit: Vec<(String, String)>,
}

/// Which budget a request is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// The API under test: capped and logged.
    Api,
    /// The mock's control plane: counted apart, never capped.
    Control,
}

/// The HTTP client of one run.
pub struct Transport {
    /// Owned for the transport's life; shut down in the background when it
    /// ends, so that a transport may be dropped inside an async test.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    http: reqwest::Client,
    api_requests: AtomicU64,
    control_requests: AtomicU64,
    cap: u64,
    log: Mutex<Vec<Logged>>,
}

impl Transport {
    pub fn new(cap: u64) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Transport(format!("cannot start a tokio runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Transport(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            http,
            api_requests: AtomicU64::new(0),
            control_requests: AtomicU64::new(0),
            cap,
            log: Mutex::new(Vec::new()),
        })
    }

    /// The transport's runtime, for work that must run on it.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    pub fn api_requests(&self) -> u64 {
        self.api_requests.load(Ordering::Relaxed)
    }

    pub fn control_requests(&self) -> u64 {
        self.control_requests.load(Ordering::Relaxed)
    }

    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// Every API answer of the run so far.
    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends `call` to `base_url`.
    pub fn send(&self, base_url: &str, call: &Call, plane: Plane) -> Result<Answer, Error> {
        match plane {
            Plane::Api => {
                let n = self.api_requests.fetch_add(1, Ordering::Relaxed);
                if n >= self.cap {
                    self.api_requests.fetch_sub(1, Ordering::Relaxed);
                    return Err(Error::RequestCap(self.cap));
                }
            }
            Plane::Control => {
                self.control_requests.fetch_add(1, Ordering::Relaxed);
            }
        }
        let url = format!("{}{}", base_url.trim_end_matches('/'), call.path);
        let mut request = self.http.request(call.method.clone(), url);
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        for (name, value) in &call.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request = match &call.body {
            None => request,
            Some(Body::Json(v)) => request.json(v),
            Some(Body::Form(pairs)) => request.form(pairs),
            Some(Body::Raw { content_type, bytes }) => {
                request.header("content-type", content_type.as_str()).body(bytes.clone())
            }
        };
        let exchange = async move {
            let response = request.send().await.map_err(|e| Error::Transport(e.without_url().to_string()))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body = response.bytes().await.map_err(|e| Error::Transport(e.without_url().to_string()))?.to_vec();
            Ok::<_, Error>(Answer { status, headers, body })
        };
        // Called from inside an async runtime (a user's `#[tokio::test]`),
        // blocking this thread on the transport's runtime would panic: the
        // exchange then waits on a thread of its own.
        let answer = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| self.handle.block_on(exchange))
                    .join()
                    .unwrap_or_else(|_| Err(Error::Transport("the request's thread panicked".into())))
            })?
        } else {
            self.handle.block_on(exchange)?
        };
        if plane == Plane::Api {
            let rate_limit = RATE_LIMIT_HEADERS
                .iter()
                .filter_map(|name| answer.header(name).map(|v| (name.to_string(), v.to_string())))
                .collect();
            let logged = Logged {
                call: call.describe(),
                had_bearer: call.has_bearer(),
                status: answer.status,
                message: answer.message(),
                rate_limit,
            };
            self.log.lock().unwrap_or_else(|p| p.into_inner()).push(logged);
        }
        Ok(answer)
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_described_call_shows_the_token_only_as_its_fingerprint() {
        let token = "pit-5b1c3c0e-8f2a-4d7e-9b1a-0c2d3e4f5a6b";
        let call = Call::get("/contacts/").query("locationId", "L").bearer(token).version("2021-07-28");
        let text = format!("{call:?}");
        assert!(!text.contains(&token[4..]), "{text}");
        assert!(text.contains(&ghl_mock::auth::secret::fingerprint(token)), "{text}");
        assert!(text.starts_with("GET /contacts/?locationId=L"), "{text}");
    }
}
