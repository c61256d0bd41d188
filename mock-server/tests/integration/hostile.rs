//! Hostile clients: whatever bytes arrive, the mock answers a status below
//! 500 — with HighLevel's `statusCode` + `message` when the body is JSON — or
//! closes the connection, and it keeps serving everyone else. Then the limits
//! a server facing such clients needs: a deadline for headers, a bound on
//! connections, and a shutdown that finishes what is in flight.
//!
//! Requests are written by hand on raw TCP, so that nothing a polite client
//! library would refuse (`%zz`, `..`, non-UTF-8 header bytes, duplicated
//! headers, broken framing) is filtered out before the server sees it. Each
//! test runs its own in-process mock on a runtime whose threads carry the
//! test's name, so a panic in a handler is caught and pinned on the input
//! that caused it. After every hostile request a normal, authorised
//! `GET /contacts/` must still answer 200.

use std::fmt;
use std::process::Command;
use std::sync::{Mutex, Once};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use ghl_mock::config::Limits;
use ghl_mock::{Clock, Config};

use crate::support::*;

/// The fixture gives this token, so a `POST /__admin/reset` keeps it working.
const TOKEN: &str = "pit-2b0c5a4e-3f7d-4c1e-9a6b-8d2e1f0a7c35";
/// A hang detector, not a performance bound: a healthy mock answers in milliseconds.
const HANG: Duration = Duration::from_secs(20);
const ONE_MIB: usize = 1024 * 1024;

fn normal_path() -> String {
    format!("/contacts/?locationId={LOC_A}")
}

fn hostile_fixture() -> ghl_mock::Fixture {
    unlimited_fixture(&format!(
        "  - {{name: Hostile, owner: {{location: {LOC_A}}}, token: {TOKEN},\n     \
         scopes: [contacts.readonly, contacts.write]}}"
    ))
}

// ---------------------------------------------------------------------------
// Panics on the server's threads

const SERVER_THREADS: &str = "hostile-server-";
static SERVER_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records panics on threads named `hostile-server-…` (and lets the usual hook print them).
fn record_server_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = std::thread::current().name().filter(|n| n.starts_with(SERVER_THREADS)) {
                SERVER_PANICS.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{name}: {info}"));
            }
            previous(info);
        }));
    });
}

// ---------------------------------------------------------------------------
// Requests written by hand

/// A request as bytes on the wire.
#[derive(Clone)]
struct Raw(Vec<u8>);

type Headers = Vec<(Vec<u8>, Vec<u8>)>;

impl Raw {
    /// `METHOD TARGET HTTP/1.1`, a `Host`, the headers, `Connection: close`,
    /// a `Content-Length` unless the headers frame the body themselves, and the body.
    fn build(method: &[u8], target: &[u8], headers: &[(Vec<u8>, Vec<u8>)], body: &[u8]) -> Self {
        let mut out = Vec::with_capacity(target.len() + body.len() + 256);
        out.extend_from_slice(method);
        out.push(b' ');
        out.extend_from_slice(target);
        out.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\n");
        for (name, value) in headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        let framed = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(b"content-length") || n.eq_ignore_ascii_case(b"transfer-encoding"));
        if !body.is_empty() && !framed {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(body);
        Raw(out)
    }

    fn get(target: &str, headers: &[(Vec<u8>, Vec<u8>)]) -> Self {
        Self::build(b"GET", target.as_bytes(), headers, b"")
    }

    /// Whether the request line names the OAuth token endpoints, which answer in OAuth's shape.
    fn is_oauth(&self) -> bool {
        let line = self.0.split(|b| *b == b'\n').next().unwrap_or_default();
        line.windows(7).any(|w| w == b" /oauth")
    }
}

impl fmt::Debug for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes: {}", self.0.len(), shown(&self.0))
    }
}

/// Bytes as escaped text, long ones cut in the middle.
fn shown(bytes: &[u8]) -> String {
    const KEEP: usize = 400;
    if bytes.len() <= 2 * KEEP {
        return format!("{:?}", String::from_utf8_lossy(bytes));
    }
    format!(
        "{:?} …({} bytes)… {:?}",
        String::from_utf8_lossy(&bytes[..KEEP]),
        bytes.len() - 2 * KEEP,
        String::from_utf8_lossy(&bytes[bytes.len() - KEEP..])
    )
}

fn header(name: &str, value: impl Into<Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    (name.as_bytes().to_vec(), value.into())
}

/// `Authorization` with the fixture's PIT and the usual `Version`.
fn authorised() -> Headers {
    vec![header("Authorization", format!("Bearer {TOKEN}")), header("Version", VERSION)]
}

fn json_headers() -> Headers {
    let mut h = authorised();
    h.push(header("Content-Type", "application/json"));
    h
}

// ---------------------------------------------------------------------------
// What came back

#[derive(Debug)]
enum Outcome {
    Answered {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// The connection closed (or was reset) before a whole status line and headers arrived.
    Closed(String),
    /// Bytes that are not an HTTP answer.
    Garbled(String),
}

impl Outcome {
    fn read(bytes: &[u8], error: Option<std::io::Error>) -> Self {
        let mut rest = bytes;
        loop {
            let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
                let why = error.map(|e| e.to_string()).unwrap_or_else(|| "closed".into());
                return if rest.is_empty() {
                    Outcome::Closed(why)
                } else {
                    Outcome::Closed(format!("{why} after a partial answer {}", shown(rest)))
                };
            };
            let head = String::from_utf8_lossy(&rest[..end]).into_owned();
            let body = &rest[end + 4..];
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            let Some(status) =
                status_line.strip_prefix("HTTP/1.").and_then(|s| s.get(2..5)).and_then(|s| s.parse::<u16>().ok())
            else {
                return Outcome::Garbled(shown(bytes));
            };
            if (100..200).contains(&status) {
                rest = body;
                continue;
            }
            let fields: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            let chunked = field("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
            let body = if chunked { dechunk(body) } else { body.to_vec() };
            return Outcome::Answered { status, content_type: field("content-type").unwrap_or_default(), body };
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            Outcome::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answered { status, content_type, body } => {
                write!(f, "{status} ({content_type}) {}", shown(body))
            }
            Outcome::Closed(why) => write!(f, "connection closed: {why}"),
            Outcome::Garbled(text) => write!(f, "not HTTP: {text}"),
        }
    }
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = bytes.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&bytes[..line_end]);
        let Ok(size) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else { break };
        let start = line_end + 2;
        if size == 0 || start + size > bytes.len() {
            break;
        }
        out.extend_from_slice(&bytes[start..start + size]);
        bytes = &bytes[(start + size + 2).min(bytes.len())..];
    }
    out
}

/// Writes `request` while reading the answer to the end; the server may
/// answer (and close) before it has read everything.
async fn exchange(addr: &str, request: &[u8]) -> Result<Outcome, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect: {e}"))?;
    let (mut reader, mut writer) = stream.into_split();
    let write = async {
        let _ = writer.write_all(request).await;
    };
    let mut received = Vec::new();
    let read = reader.read_to_end(&mut received);
    let ((), read) = tokio::join!(write, read);
    Ok(Outcome::read(&received, read.err()))
}

/// Below 500, and a JSON error body in HighLevel's shape (OAuth's on `/oauth/*`).
fn judge(outcome: &Outcome, request: &Raw) -> Result<(), String> {
    let (status, content_type, body) = match outcome {
        Outcome::Closed(_) => return Ok(()),
        Outcome::Garbled(text) => return Err(format!("the answer is not HTTP: {text}")),
        Outcome::Answered { status, content_type, body } => (*status, content_type, body),
    };
    if status >= 500 {
        return Err(format!("answered {status}: {}", shown(body)));
    }
    if status < 400 || body.is_empty() || !content_type.contains("json") {
        return Ok(());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("{status} says JSON but is not ({e}): {}", shown(body)))?;
    if request.is_oauth() && value["error"].is_string() {
        return Ok(());
    }
    let message_ok = match &value["message"] {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => false,
    };
    if value["statusCode"].as_u64() != Some(u64::from(status)) || !message_ok {
        return Err(format!("{status} body is not in HighLevel's shape: {value}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// One mock per test

struct Harness {
    name: &'static str,
    mock: TestMock,
    addr: String,
    /// No connection pool: every normal request is a new client.
    http: reqwest::Client,
    client: tokio::runtime::Runtime,
    _server: tokio::runtime::Runtime,
}

impl Harness {
    fn start(name: &'static str) -> Self {
        Self::start_with(name, Limits::default())
    }

    fn start_with(name: &'static str, limits: Limits) -> Self {
        record_server_panics();
        let server = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("{SERVER_THREADS}{name}"))
            .enable_all()
            .build()
            .expect("server runtime");
        let client = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("client runtime");
        let config = Config { limits, ..Config::default() };
        let clock = Clock::frozen(1_767_225_600_000);
        let mock = server.block_on(TestMock::start_with(embedded(), hostile_fixture(), config, clock));
        let addr = mock.url.trim_start_matches("http://").to_string();
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("http client");
        Self { name, mock, addr, http, client, _server: server }
    }

    /// Panics on this harness's server threads since the last call.
    fn panics(&self) -> Vec<String> {
        let prefix = format!("{SERVER_THREADS}{}:", self.name);
        let mut recorded = SERVER_PANICS.lock().unwrap_or_else(|p| p.into_inner());
        let (mine, others) = recorded.drain(..).partition(|p| p.starts_with(&prefix));
        *recorded = others;
        mine
    }

    fn send(&self, request: &Raw) -> Result<Outcome, String> {
        self.client.block_on(async {
            tokio::time::timeout(HANG, exchange(&self.addr, &request.0))
                .await
                .map_err(|_| format!("neither answered nor closed within {HANG:?}"))?
        })
    }

    /// The request gets a fitting answer (or a closed connection), and then a
    /// normal client is still served.
    fn survives(&self, request: &Raw) -> Result<Outcome, String> {
        let outcome = self.send(request)?;
        judge(&outcome, request)?;
        self.still_serving()?;
        Ok(outcome)
    }

    fn still_serving(&self) -> Result<(), String> {
        let panics = self.panics();
        if !panics.is_empty() {
            return Err(format!("a handler panicked:\n{}", panics.join("\n")));
        }
        let url = format!("{}{}", self.mock.url, normal_path());
        let answer = self.client.block_on(async {
            let request = self.http.get(url).bearer_auth(TOKEN).header("Version", VERSION).send();
            match tokio::time::timeout(HANG, request).await {
                Ok(Ok(response)) => Ok(response.status().as_u16()),
                Ok(Err(e)) => Err(format!("a normal request then failed: {e}")),
                Err(_) => Err("a normal request then went unanswered".to_string()),
            }
        })?;
        if answer != 200 {
            return Err(format!("a normal request then answered {answer}"));
        }
        Ok(())
    }

    /// Every case survives; the failures are listed together.
    fn all_survive(&self, cases: &[(&str, Raw)], expect: impl Fn(&Outcome) -> Result<(), String>) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(label, request)| {
                self.survives(request)
                    .and_then(|o| expect(&o).map_err(|e| format!("{e} ({o})")))
                    .err()
                    .map(|e| format!("{label}: {e}\n    request: {request:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    }

    /// A property over `cases` random inputs; each must survive `test`.
    fn property<S>(&self, cases: u32, strategy: S, test: impl Fn(&Self, S::Value) -> Result<(), String>)
    where
        S: Strategy,
        S::Value: fmt::Debug,
    {
        let config =
            ProptestConfig { cases, failure_persistence: None, max_shrink_iters: 64, ..ProptestConfig::default() };
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, |value| test(self, value).map_err(TestCaseError::fail)) {
            panic!("{}: {e}", self.name);
        }
    }
}

fn any_status(_: &Outcome) -> Result<(), String> {
    Ok(())
}

fn status_or_closed(expected: u16) -> impl Fn(&Outcome) -> Result<(), String> {
    move |o| match o.status() {
        None => Ok(()),
        Some(s) if s == expected => Ok(()),
        Some(s) => Err(format!("expected {expected} (or a closed connection), got {s}")),
    }
}

// ---------------------------------------------------------------------------
// Strategies

const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "FOO", "get", "PRI", "M-SEARCH",
    "PROPFIND", "QUERY",
];

fn method() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(KNOWN_METHODS).prop_map(|m| m.as_bytes().to_vec()),
        3 => "[A-Z]{1,24}".prop_map(String::into_bytes),
        2 => "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,40}".prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>().prop_filter("no line ends", |b| *b != b'\r' && *b != b'\n'), 1..24),
    ]
}

fn route() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "/contacts/".to_string(),
        normal_path(),
        "/contacts/abc123".to_string(),
        "/contacts/search".to_string(),
        format!("/locations/{LOC_A}"),
        "/oauth/token".to_string(),
        "/__admin/health".to_string(),
        "/__admin/rules".to_string(),
        "/".to_string(),
        "*".to_string(),
        "/no/such/route".to_string(),
    ])
}

const SEGMENT_WORDS: &[&str] = &[
    "contacts",
    "locations",
    "calendars",
    "opportunities",
    "search",
    "notes",
    "oauth",
    "token",
    "users",
    "__admin",
    "health",
    "rules",
    "world",
    "testLocationA0000001",
    "abc123",
];

const SEGMENT_TRICKS: &[&str] = &[
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "%2f",
    "%2F..%2F",
    "%5c",
    "..\\..",
    "%00",
    "%zz",
    "%ff",
    "%",
    "%e2%82",
    "%c3%28",
    "%%",
    "%u2215",
    ";",
    ";a=b",
    "@",
    ":",
    "~",
    "%20",
    " ",
    "#frag",
    "?",
    "{contactId}",
    "*",
    "**",
];

/// Segments of about 10 KB.
fn long_segments() -> Vec<String> {
    vec!["a".repeat(10_240), "%2e".repeat(3_414), "é".repeat(5_120), "%".repeat(10_240)]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(SEGMENT_WORDS).prop_map(str::to_string),
        4 => prop::sample::select(SEGMENT_TRICKS).prop_map(str::to_string),
        2 => "\\PC{1,12}",
        2 => "[a-zA-Z0-9._~%-]{1,40}",
        1 => prop::sample::select(long_segments()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let pair = prop_oneof![
        Just(format!("locationId={LOC_A}")),
        Just("locationId=".to_string()),
        Just("locationId=%zz".to_string()),
        Just("limit=-1".to_string()),
        Just("limit=99999999999999999999".to_string()),
        "[a-zA-Z%=&+;]{0,30}",
        "\\PC{0,20}",
    ];
    prop::collection::vec(pair, 0..4).prop_map(|pairs| pairs.join("&"))
}

/// `/seg/seg…[/][?query]`, sometimes without the leading slash or with doubled ones.
fn random_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..6),
        prop::sample::select(&["/", "", "//", "/./"][..]),
        any::<bool>(),
        prop::option::of(query()),
    )
        .prop_map(|(segments, lead, trailing, query)| {
            let mut p = format!("{lead}{}", segments.join("/"));
            if trailing {
                p.push('/');
            }
            if let Some(q) = query {
                p.push('?');
                p.push_str(&q);
            }
            p
        })
}

/// Routes the mock serves, `{}` standing for a path parameter.
const TEMPLATES: &[&str] = &[
    "/contacts/{}",
    "/contacts/{}/notes",
    "/contacts/{}/notes/{}",
    "/contacts/{}/tags",
    "/locations/{}",
    "/locations/{}/customFields",
    "/opportunities/{}",
    "/users/{}",
];

/// A served route with hostile path parameters, so requests reach the stages past routing.
fn route_with_hostile_params() -> impl Strategy<Value = String> {
    (prop::sample::select(TEMPLATES), segment(), segment(), prop::option::of(query())).prop_map(
        |(template, first, second, query)| {
            let path = template.replacen("{}", &first, 1).replacen("{}", &second, 1);
            match query {
                Some(q) => format!("{path}?{q}"),
                None => path,
            }
        },
    )
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![random_path(), route_with_hostile_params()]
}

/// Bytes a header value may carry on the wire: visible ASCII, tab, and obs-text.
fn header_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![4 => 0x20u8..=0x7e, 1 => 0x80u8..=0xff, 1 => Just(b'\t')];
    prop::collection::vec(byte, 0..max)
}

fn base64url(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9_-]{{1,{max}}}")).expect("regex")
}

fn garbage_authorization() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(
            &[
                "Bearer",
                "Bearer ",
                "bearer",
                "Bearer  ",
                "Bearer pit-",
                "Basic dXNlcjpwYXNz",
                "Token abc",
                "",
                "pit-2b0c5a4e-3f7d-4c1e-9a6b-8d2e1f0a7c35",
                "Bearer pit-2b0c5a4e-3f7d-4c1e-9a6b-8d2e1f0a7c3",
                "Bearer pit-2b0c5a4e-3f7d-4c1e-9a6b-8d2e1f0a7c35x",
                "Bearer\tpit-2b0c5a4e-3f7d-4c1e-9a6b-8d2e1f0a7c35",
                "Bearer eyJ.eyJ.",
                "Bearer ...",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        header_bytes(200),
        "Bearer pit-[ -~]{0,80}".prop_map(String::into_bytes),
        (base64url(3_000), base64url(3_000), base64url(2_000))
            .prop_map(|(h, p, s)| format!("Bearer {h}.{p}.{s}").into_bytes()),
        ("eyJ[A-Za-z0-9_-]{10,200}", "eyJ[A-Za-z0-9_-]{10,400}", "[A-Za-z0-9_-]{0,400}")
            .prop_map(|(h, p, s)| format!("Bearer {h}.{p}.{s}").into_bytes()),
        prop::collection::vec(0x80u8..=0xff, 1..64).prop_map(|b| [&b"Bearer "[..], &b].concat()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
        Just(Value::from(LOC_A)),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        let key = prop_oneof![
            prop::sample::select(
                &["locationId", "email", "firstName", "tags", "customFields", "phone", "name", "__proto__"][..]
            )
            .prop_map(str::to_string),
            "\\PC{0,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"a\"",
    "\"locationId\"",
    "1",
    "-",
    "1e999",
    "0x10",
    "NaN",
    "null",
    "true",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"",
    "\\",
    " ",
    "\u{feff}",
    "/*",
    "//",
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2_048),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        prop::collection::vec(prop::sample::select(JSON_TOKENS), 0..200).prop_map(|t| t.concat().into_bytes()),
    ]
}

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/json; charset=utf-16",
    "application/vnd.api+json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
];

// ---------------------------------------------------------------------------
// Properties

#[test]
fn random_methods_never_get_a_5xx_and_the_server_keeps_serving() {
    let h = Harness::start("methods");
    h.property(256, (method(), route(), any::<bool>(), any::<bool>()), |h, (method, target, auth, body)| {
        let headers = if auth { json_headers() } else { Vec::new() };
        let body: &[u8] = if body { b"{}" } else { b"" };
        h.survives(&Raw::build(&method, target.as_bytes(), &headers, body)).map(drop)
    });
}

#[test]
fn random_paths_never_get_a_5xx_and_the_server_keeps_serving() {
    let h = Harness::start("paths");
    let methods = prop::sample::select(&["GET", "POST", "DELETE", "PUT"][..]);
    h.property(256, (methods, path(), any::<bool>()), |h, (method, path, auth)| {
        let headers = if auth { authorised() } else { Vec::new() };
        h.survives(&Raw::build(method.as_bytes(), path.as_bytes(), &headers, b"")).map(drop)
    });
}

#[test]
fn garbage_authorization_values_are_refused_with_a_401_and_the_server_keeps_serving() {
    let h = Harness::start("authorization");
    h.property(256, garbage_authorization(), |h, value| {
        let request = Raw::get(&normal_path(), &[header("Authorization", value), header("Version", VERSION)]);
        match h.survives(&request)? {
            Outcome::Answered { status: 401, .. } => Ok(()),
            other => Err(format!("expected a 401, got {other}")),
        }
    });
}

#[test]
fn random_bodies_never_get_a_5xx_and_the_server_keeps_serving() {
    let h = Harness::start("bodies");
    let targets = prop::sample::select(
        &[
            "POST /contacts/",
            "PUT /contacts/abc123",
            "POST /contacts/search",
            "POST /oauth/token",
            "POST /__admin/rules",
        ][..],
    );
    let content_type = prop::sample::select(CONTENT_TYPES);
    h.property(256, (targets, content_type, body()), |h, (target, content_type, body)| {
        let (method, path) = target.split_once(' ').unwrap_or(("POST", target));
        let mut headers = authorised();
        if !content_type.is_empty() {
            headers.push(header("Content-Type", content_type));
        }
        h.survives(&Raw::build(method.as_bytes(), path.as_bytes(), &headers, &body)).map(drop)
    });
}

#[test]
fn random_extra_headers_never_get_a_5xx_and_the_server_keeps_serving() {
    let h = Harness::start("headers");
    let name = prop_oneof![
        prop::sample::select(
            &[
                "Authorization",
                "Version",
                "Content-Type",
                "Accept",
                "Accept-Encoding",
                "Expect",
                "Host",
                "Connection",
                "Upgrade",
                "Origin",
                "Cookie",
                "X-Forwarded-For",
                "x-a",
                "Range",
                "If-None-Match",
            ][..]
        )
        .prop_map(str::to_string),
        "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,30}",
    ];
    let headers = prop::collection::vec((name, header_bytes(300)), 0..40);
    h.property(128, (headers, any::<bool>()), |h, (extra, auth)| {
        let mut headers = if auth { authorised() } else { Vec::new() };
        headers.extend(extra.into_iter().map(|(n, v)| (n.into_bytes(), v)));
        h.survives(&Raw::get(&normal_path(), &headers)).map(drop)
    });
}

// ---------------------------------------------------------------------------
// Named hostile cases

#[test]
fn headers_over_the_documented_64_kib_are_refused_with_431_even_when_sent_in_one_write() {
    let h = Harness::start("header-bound");
    let sized = |n: usize| {
        let mut headers = authorised();
        headers.push(header("X-Big", "v".repeat(n)));
        Raw::get(&normal_path(), &headers)
    };
    let outcomes = h.client.block_on(async {
        let over = tokio::time::timeout(HANG, exchange(&h.addr, &sized(100 * 1024).0)).await;
        let under = tokio::time::timeout(HANG, exchange(&h.addr, &sized(60 * 1024).0)).await;
        (over, under)
    });
    match outcomes.0 {
        Ok(Ok(Outcome::Answered { status: 431, body, .. })) => {
            let body: Value = serde_json::from_slice(&body).expect("a JSON body");
            assert_eq!(body["message"], "request headers too large (limit 65536 bytes)", "{body}");
        }
        other => panic!("a 100 KB header in one write: {other:?}"),
    }
    assert!(
        matches!(outcomes.1, Ok(Ok(Outcome::Answered { status: 200, .. }))),
        "a 60 KB header is within the bound: {:?}",
        outcomes.1
    );
    h.still_serving().unwrap();
}

#[test]
fn huge_and_repeated_headers_never_get_a_5xx_and_the_server_keeps_serving() {
    let h = Harness::start("huge-headers");
    let big = "v".repeat(100 * 1024);
    let with = |extra: Headers| {
        let mut headers = authorised();
        headers.extend(extra);
        Raw::get(&normal_path(), &headers)
    };
    let repeated = |name: &str, value: &str, n: usize| (0..n).map(|_| header(name, value)).collect::<Headers>();
    let cases = [
        ("a 100 KB header value", with(vec![header("X-Big", big.clone())])),
        ("a 100 KB cookie", with(vec![header("Cookie", format!("a={big}"))])),
        (
            "a 100 KB Version",
            Raw::get(
                &normal_path(),
                &[header("Authorization", format!("Bearer {TOKEN}")), header("Version", big.clone())],
            ),
        ),
        (
            "a 100 KB bearer token",
            Raw::get(&normal_path(), &[header("Authorization", format!("Bearer {big}")), header("Version", VERSION)]),
        ),
        ("a 10 KB header name", with(vec![header(&"n".repeat(10 * 1024), "1")])),
        ("1,000 x-a headers", with(repeated("x-a", "1", 1_000))),
        (
            "1,000 Authorization headers",
            Raw::get(&normal_path(), &repeated("Authorization", &format!("Bearer {TOKEN}"), 1_000)),
        ),
        (
            "ten 100 KB headers (1 MB of headers)",
            with((0..10).map(|i| header(&format!("X-Big-{i}"), big.clone())).collect()),
        ),
    ];
    h.all_survive(&cases, any_status);
}

#[test]
fn duplicated_authorization_and_version_headers_never_get_a_5xx_and_the_server_keeps_serving() {
    let h = Harness::start("duplicates");
    let good = format!("Bearer {TOKEN}");
    let auth = |values: &[&str]| values.iter().map(|v| header("Authorization", *v)).collect::<Headers>();
    let version = |values: &[&str]| values.iter().map(|v| header("Version", *v)).collect::<Headers>();
    let request = |a: Headers, v: Headers| Raw::get(&normal_path(), &[a, v].concat());
    let cases = [
        ("good then garbage token", request(auth(&[&good, "Bearer garbage"]), version(&[VERSION]))),
        ("garbage then good token", request(auth(&["Bearer garbage", &good]), version(&[VERSION]))),
        ("the good token twice", request(auth(&[&good, &good]), version(&[VERSION]))),
        ("an empty then the good token", request(auth(&["", &good]), version(&[VERSION]))),
        ("Version twice", request(auth(&[&good]), version(&[VERSION, VERSION]))),
        ("a valid then an invalid Version", request(auth(&[&good]), version(&[VERSION, "1999-01-01"]))),
        ("an invalid then a valid Version", request(auth(&[&good]), version(&["1999-01-01", VERSION]))),
        ("two Versions in one value", request(auth(&[&good]), version(&["2021-07-28, 2021-04-15"]))),
        ("an empty Version", request(auth(&[&good]), version(&[""]))),
    ];
    h.all_survive(&cases, any_status);
}

#[test]
fn malformed_request_lines_and_framing_never_get_a_5xx_and_the_server_keeps_serving() {
    // Some of these leave the server waiting for a request that never
    // comes; a short header deadline ends that wait sooner.
    let h = Harness::start_with("framing", Limits { header_timeout_ms: 2_000, ..Limits::default() });
    let auth = format!("Authorization: Bearer {TOKEN}\r\nVersion: {VERSION}\r\n");
    let contacts = normal_path();
    let raw = |text: String| Raw(text.into_bytes());
    // A request line, `Host`, the token and `Version`, more header lines, `Connection: close`, a body.
    let request = |line: &str, headers: &str, body: &str| {
        raw(format!("{line}\r\nHost: x\r\n{auth}{headers}Connection: close\r\n\r\n{body}"))
    };
    let get = |headers: &str| request(&format!("GET {contacts} HTTP/1.1"), headers, "");
    let post = |headers: &str, body: &str| {
        request("POST /contacts/ HTTP/1.1", &format!("Content-Type: application/json\r\n{headers}"), body)
    };
    let chunks = "2\r\n{}\r\n0\r\n\r\n";
    let mut garbage = vec![0u8; 4096];
    fastrand::Rng::with_seed(7).fill(&mut garbage);
    let mut tls_hello = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
    tls_hello.extend(std::iter::repeat_n(0u8, 64));
    let websocket = "Connection: Upgrade, close\r\nUpgrade: websocket\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let h2c = "Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n";
    let cases = [
        ("an HTTP/2 preface", raw("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".into())),
        ("HTTP/9.9", raw("GET / HTTP/9.9\r\nHost: x\r\n\r\n".into())),
        ("HTTP/1.0 without Host", raw(format!("GET {contacts} HTTP/1.0\r\n{auth}\r\n"))),
        ("HTTP/1.1 without Host", raw(format!("GET {contacts} HTTP/1.1\r\n{auth}Connection: close\r\n\r\n"))),
        ("CONNECT", request("CONNECT example.com:443 HTTP/1.1", "", "")),
        ("OPTIONS *", request("OPTIONS * HTTP/1.1", "", "")),
        ("an absolute-form target", request(&format!("GET http://evil.example{contacts} HTTP/1.1"), "", "")),
        ("an authority-form GET", request("GET evil.example:80 HTTP/1.1", "", "")),
        ("a NUL in the target", request("GET /contacts/\0 HTTP/1.1", "", "")),
        ("bare LF line ends", raw(format!("GET {contacts} HTTP/1.1\nHost: x\n{}\n", auth.replace("\r\n", "\n")))),
        ("a header without a colon", get("NoColonHere\r\n")),
        ("a space before the colon", get("X-Spaced : x\r\n")),
        ("an obs-fold continuation", get("X-Folded: a\r\n b\r\n")),
        ("a NUL in a header value", get("X-Nul: a\0b\r\n")),
        ("a lone CR in a header value", get("X-Cr: 2021\r-07-28\r\n")),
        ("only a blank line", raw("\r\n\r\n".into())),
        ("4 KB of random bytes", Raw(garbage)),
        ("a TLS ClientHello", Raw(tls_hello)),
        ("tabs between request-line parts", raw("GET\t/\tHTTP/1.1\r\nHost: x\r\n\r\n".into())),
        ("three spaces in the request line", raw("GET / / HTTP/1.1\r\nHost: x\r\n\r\n".into())),
        ("a 10 KB method", request(&format!("{} / HTTP/1.1", "G".repeat(10 * 1024)), "", "")),
        ("Content-Length and Transfer-Encoding", post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", chunks)),
        ("a negative Content-Length", post("Content-Length: -1\r\n", "{}")),
        ("a non-numeric Content-Length", post("Content-Length: abc\r\n", "{}")),
        ("two different Content-Lengths", post("Content-Length: 2\r\nContent-Length: 3\r\n", "{}x")),
        ("a Content-Length list", post("Content-Length: 2, 2\r\n", "{}")),
        ("Transfer-Encoding gzip, chunked", post("Transfer-Encoding: gzip, chunked\r\n", chunks)),
        ("Transfer-Encoding identity", post("Transfer-Encoding: identity\r\n", "{}")),
        ("a chunk size that is not hex", post("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n")),
        ("a chunk size beyond u64", post("Transfer-Encoding: chunked\r\n", "ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n")),
        (
            "a 10 KB chunk extension",
            post("Transfer-Encoding: chunked\r\n", &format!("2;{}\r\n{{}}\r\n0\r\n\r\n", "e".repeat(10 * 1024))),
        ),
        ("Expect: 100-continue", post("Expect: 100-continue\r\nContent-Length: 2\r\n", "{}")),
        ("an unknown Expect", get("Expect: the-unexpected\r\n")),
        ("an h2c upgrade", raw(format!("GET {contacts} HTTP/1.1\r\nHost: x\r\n{auth}{h2c}\r\n"))),
        ("a websocket upgrade", raw(format!("GET {contacts} HTTP/1.1\r\nHost: x\r\n{auth}{websocket}\r\n"))),
        (
            "two pipelined requests",
            raw(format!(
                "GET {contacts} HTTP/1.1\r\nHost: x\r\n{auth}\r\n\
                 GET /%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )),
        ),
        ("a 1 MB path", Raw::get(&format!("/{}", "a".repeat(ONE_MIB)), &authorised())),
        ("a 1 MB query", Raw::get(&format!("{contacts}&q={}", "a".repeat(ONE_MIB)), &authorised())),
    ];
    h.all_survive(&cases, any_status);
}

fn nested(open: &str, close: &str, levels: usize) -> Vec<u8> {
    format!("{}1{}", open.repeat(levels), close.repeat(levels)).into_bytes()
}

#[test]
fn bodies_nested_deeper_than_the_limit_are_refused_with_a_400() {
    let h = Harness::start("nesting");
    let post = |body: Vec<u8>| Raw::build(b"POST", b"/contacts/", &json_headers(), &body);
    let cases = [
        ("10,000 levels of [", post(b"[".repeat(10_000))),
        ("10,000 balanced levels of [", post(nested("[", "]", 10_000))),
        ("10,000 levels of {\"a\":", post(nested("{\"a\":", "}", 10_000))),
        ("1,000,000 levels of [ (just under 1 MiB)", post(b"[".repeat(1_000_000))),
        ("65 levels (over the mock's 64, under the parser's 128)", post(nested("{\"a\":", "}", 65))),
        (
            "100 levels of arrays in a field",
            post(
                format!("{{\"locationId\":\"{LOC_A}\",\"tags\":{}}}", String::from_utf8_lossy(&nested("[", "]", 100)))
                    .into_bytes(),
            ),
        ),
    ];
    h.all_survive(&cases, |o| match o {
        Outcome::Answered { status: 400, .. } => Ok(()),
        other => Err(format!("expected a 400, got {other}")),
    });
}

#[test]
fn bodies_over_the_size_limit_are_refused_with_a_413_or_a_closed_connection() {
    let h = Harness::start("big-bodies");
    let over = vec![b' '; ONE_MIB + 1];
    let mut chunked = Vec::new();
    for _ in 0..32 {
        chunked.extend_from_slice(format!("{:x}\r\n", 64 * 1024).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 64 * 1024));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let with = |extra: Headers| [json_headers(), extra].concat();
    let cases = [
        ("1 MiB + 1 byte", Raw::build(b"POST", b"/contacts/", &json_headers(), &over)),
        (
            "2 MiB chunked",
            Raw::build(b"POST", b"/contacts/", &with(vec![header("Transfer-Encoding", "chunked")]), &chunked),
        ),
        (
            "a claimed 10 GB with 2 MiB sent",
            Raw::build(
                b"POST",
                b"/contacts/",
                &with(vec![header("Content-Length", "10000000000")]),
                &vec![b' '; 2 * ONE_MIB],
            ),
        ),
        (
            "1 MiB + 1 byte with Expect: 100-continue",
            Raw::build(b"POST", b"/contacts/", &with(vec![header("Expect", "100-continue")]), &over),
        ),
    ];
    h.all_survive(&cases, status_or_closed(413));
    let unauthorised = [(
        "2 MiB without a token",
        Raw::build(b"POST", b"/contacts/", &[header("Content-Type", "application/json")], &vec![b' '; 2 * ONE_MIB]),
    )];
    h.all_survive(&unauthorised, status_or_closed(401));
    let admin = [(
        "3 MiB to the control plane",
        Raw::build(b"POST", b"/__admin/rules", &[header("Content-Type", "application/json")], &vec![b' '; 3 * ONE_MIB]),
    )];
    h.all_survive(&admin, status_or_closed(413));
}

/// Sends `request` a byte at a time with `pause` between bytes.
async fn trickle(addr: &str, request: &[u8], pause: Duration) -> Result<Outcome, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    for byte in request {
        stream.write_all(std::slice::from_ref(byte)).await.map_err(|e| format!("write failed: {e}"))?;
        tokio::time::sleep(pause).await;
    }
    let mut received = Vec::new();
    let read = stream.read_to_end(&mut received).await;
    Ok(Outcome::read(&received, read.err()))
}

#[test]
fn clients_trickling_their_requests_byte_by_byte_are_answered_and_do_not_hold_up_others() {
    let h = Harness::start("trickle");
    let get = Raw::get(&normal_path(), &authorised());
    let post = Raw::build(
        b"POST",
        b"/contacts/",
        &json_headers(),
        format!("{{\"locationId\":\"{LOC_A}\",\"email\":\"slow@example.com\"}}").as_bytes(),
    );
    // About a second each: headers (and the body) a byte every ~5 ms.
    let slow = [(get.clone(), 200), (get.clone(), 200), (get, 200), (post, 201)];
    let outcomes = h.client.block_on(async {
        let mut tricklers = tokio::task::JoinSet::new();
        for (i, (request, expected)) in slow.iter().cloned().enumerate() {
            let addr = h.addr.clone();
            let pause = Duration::from_millis(1_000 / request.0.len() as u64 + 1);
            tricklers.spawn(async move {
                (i, expected, tokio::time::timeout(HANG * 2, trickle(&addr, &request.0, pause)).await)
            });
        }
        // Meanwhile, normal clients come and go.
        let mut normal = Vec::new();
        for _ in 0..20 {
            let request = h
                .http
                .get(format!("{}{}", h.mock.url, normal_path()))
                .bearer_auth(TOKEN)
                .header("Version", VERSION)
                .send();
            normal.push(match tokio::time::timeout(HANG, request).await {
                Ok(Ok(response)) => response.status().as_u16(),
                _ => 0,
            });
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        let mut slow_results = Vec::new();
        while let Some(done) = tricklers.join_next().await {
            slow_results.push(done.expect("trickler task"));
        }
        (normal, slow_results)
    });
    let (normal, slow_results) = outcomes;
    assert!(normal.iter().all(|s| *s == 200), "normal clients while others trickled: {normal:?}");
    for (i, expected, result) in slow_results {
        match result {
            Ok(Ok(Outcome::Answered { status, .. })) if status == expected => {}
            other => panic!("trickled request {i}: expected {expected}, got {other:?}"),
        }
    }
    h.still_serving().unwrap();
}

#[test]
fn clients_that_send_half_a_request_and_vanish_do_not_disturb_the_server() {
    let h = Harness::start("vanish");
    let full =
        Raw::build(b"POST", b"/contacts/", &json_headers(), format!("{{\"locationId\":\"{LOC_A}\"}}").as_bytes()).0;
    h.client.block_on(async {
        for cut in (0..full.len()).step_by(7) {
            let mut stream = TcpStream::connect(&h.addr).await.expect("connect");
            stream.write_all(&full[..cut]).await.expect("write");
            drop(stream);
        }
        // And some that claim a body they never send.
        for _ in 0..50 {
            let mut stream = TcpStream::connect(&h.addr).await.expect("connect");
            let head = format!(
                "POST /contacts/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nVersion: {VERSION}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
            );
            stream.write_all(head.as_bytes()).await.expect("write");
        }
    });
    h.still_serving().unwrap();
}

#[test]
fn extreme_clock_values_from_the_control_plane_never_break_the_api() {
    let h = Harness::start("clock");
    let admin = |method: &str, path: &str, body: Value| {
        Raw::build(
            method.as_bytes(),
            format!("/__admin{path}").as_bytes(),
            &[header("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    };
    let oauth_code = admin("POST", "/oauth/codes", json!({"client_id": "test-client", "owner": {"location": LOC_A}}));
    let mut failures = Vec::new();
    for (label, setting) in [
        ("the clock at i64::MAX", admin("POST", "/clock", json!({"now_ms": i64::MAX}))),
        ("the clock at 0", admin("POST", "/clock", json!({"now_ms": 0}))),
        ("the clock a year before i64::MAX", admin("POST", "/clock", json!({"now_ms": i64::MAX - 31_536_000_000}))),
        ("a running clock at i64::MAX", admin("POST", "/clock", json!({"now_ms": i64::MAX, "frozen": false}))),
        ("a clock advanced by 106,751,991,167 days", admin("POST", "/clock/advance", json!({"by": "106751991167d"}))),
    ] {
        let steps = [
            ("set", setting),
            ("read the clock", Raw::get("/__admin/clock", &[])),
            ("a normal request", Raw::get(&normal_path(), &authorised())),
            (
                "create a contact",
                Raw::build(
                    b"POST",
                    b"/contacts/",
                    &json_headers(),
                    format!("{{\"locationId\":\"{LOC_A}\",\"email\":\"t{}@example.com\"}}", failures.len()).as_bytes(),
                ),
            ),
            ("issue an OAuth code", oauth_code.clone()),
            ("the limits of a location", Raw::get(&format!("/__admin/limits/{LOC_A}"), &[])),
        ];
        for (step, request) in steps {
            if let Err(e) = h.send(&request).and_then(|o| judge(&o, &request).map(|()| o)) {
                failures.push(format!("{label}, {step}: {e}"));
            }
        }
        if let Err(e) = h.still_serving() {
            failures.push(format!("{label}: {e}"));
        }
        let _ = h.send(&admin("POST", "/clock", json!({"now_ms": 1_767_225_600_000_i64, "frozen": true})));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn advancing_the_clock_never_moves_it_backwards() {
    let m = TestMock::start(embedded(), hostile_fixture()).await;
    let mut failures = Vec::new();
    for steps in [&["106751991167d"][..], &["100000000000d", "100000000000d"], &["9223372036854775s"]] {
        m.admin(reqwest::Method::POST, "/clock", Some(json!({"now_ms": 1_767_225_600_000_i64, "frozen": true}))).await;
        for by in steps {
            let (_, before) = m.admin(reqwest::Method::GET, "/clock", None).await;
            let (status, answer) = m.admin(reqwest::Method::POST, "/clock/advance", Some(json!({"by": by}))).await;
            let (_, after) = m.admin(reqwest::Method::GET, "/clock", None).await;
            let (before, after) = (before["now_ms"].as_i64(), after["now_ms"].as_i64());
            if status == 200 && after < before {
                failures
                    .push(format!("advance by {by}: {status} {answer}, the clock went from {before:?} to {after:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "an advance is refused or moves time forward:\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Server limits

#[test]
fn a_request_whose_headers_or_body_never_complete_is_answered_408_or_closed_by_the_server() {
    let limits = Limits { header_timeout_ms: 1_000, body_timeout_ms: 1_000, ..Limits::default() };
    let h = Harness::start_with("deadline", limits);
    let unfinished = [
        (
            "headers that never end",
            format!("GET {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n", normal_path()),
        ),
        (
            "headers trickled past the deadline",
            format!("GET {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nX-Slow: ", normal_path()),
        ),
        (
            "a body that never comes",
            format!(
                "POST /contacts/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nVersion: {VERSION}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
            ),
        ),
    ];
    let results = h.client.block_on(async {
        let mut waiting = tokio::task::JoinSet::new();
        for (label, text) in unfinished {
            let addr = h.addr.clone();
            waiting.spawn(async move {
                let mut stream = TcpStream::connect(&addr).await.expect("connect");
                stream.write_all(text.as_bytes()).await.expect("write");
                let trickle = label.contains("trickled");
                let mut received = Vec::new();
                let outcome = tokio::time::timeout(HANG, async {
                    // A byte every 200 ms keeps the connection busy, never done.
                    while trickle && stream.write_all(b"a").await.is_ok() {
                        match tokio::time::timeout(Duration::from_millis(200), stream.read_buf(&mut received)).await {
                            Ok(Ok(0)) | Ok(Err(_)) => break,
                            _ => {}
                        }
                    }
                    stream.read_to_end(&mut received).await
                })
                .await
                .map(|read| Outcome::read(&received, read.err()));
                (label, outcome)
            });
        }
        let mut results = Vec::new();
        while let Some(done) = waiting.join_next().await {
            results.push(done.expect("task"));
        }
        results
    });
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(label, outcome)| match outcome {
            Ok(Outcome::Closed(_)) | Ok(Outcome::Answered { status: 408, .. }) => None,
            Ok(other) => Some(format!("{label}: expected 408 or a close, got {other}")),
            Err(_) => Some(format!("{label}: with 1 s deadlines, the server still held the connection after {HANG:?}")),
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    h.still_serving().unwrap();
}

#[test]
fn new_clients_are_served_while_silent_and_trickling_connections_keep_filling_the_cap() {
    // The attack of issue 15: idle sockets fill the cap, and are reopened as
    // fast as they are closed. Each good client must still be served.
    let limits = Limits { max_connections: 8, header_timeout_ms: 60_000, ..Limits::default() };
    let h = Harness::start_with("cap", limits);
    let (served, attackers_closed) = h.client.block_on(async {
        let open_attacker = || async {
            let mut stream = TcpStream::connect(&h.addr).await.expect("connect");
            let _ = stream.write_all(b"GET /contacts/ HTTP/1.1\r\nHost: x\r\n").await;
            stream
        };
        let mut attackers = Vec::new();
        for _ in 0..20 {
            attackers.push(open_attacker().await);
        }
        let mut served = Vec::new();
        for _ in 0..30 {
            // The attacker refills the cap before every good request.
            for _ in 0..8 {
                attackers.push(open_attacker().await);
            }
            let request = Raw::get(&normal_path(), &authorised()).0;
            served.push(tokio::time::timeout(HANG, exchange(&h.addr, &request)).await);
        }
        // Every attacker connection beyond the cap was closed by the server.
        let mut closed = 0;
        for mut stream in attackers {
            let mut byte = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await {
                closed += 1;
            }
        }
        (served, closed)
    });
    let failed: Vec<String> = served
        .iter()
        .enumerate()
        .filter(|(_, o)| !matches!(o, Ok(Ok(Outcome::Answered { status: 200, .. }))))
        .map(|(i, o)| format!("good client {i}: {o:?}"))
        .collect();
    assert!(failed.is_empty(), "with the cap kept full of silent connections:\n{}", failed.join("\n"));
    assert!(attackers_closed >= 20 + 30 * 8 - 8, "silent connections were closed to make room: {attackers_closed}");
    h.still_serving().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_connection_has_a_request_in_flight_a_newcomer_is_refused_and_no_answer_is_cut() {
    let config = Config { limits: Limits { max_connections: 4, ..Limits::default() }, ..Config::default() };
    let fixture = Some(("hostile.yaml".to_string(), hostile_fixture()));
    let started = ghl_mock::Mock::start(embedded(), config, Clock::frozen(1_767_225_600_000), fixture).expect("starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let url = format!("http://{addr}");
    let server = tokio::spawn(ghl_mock::serve(listener, started.mock, std::future::pending()));
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let rule = json!({"path": "/contacts/**", "count": 4, "latency_ms": 1_500});
    let added = http.post(format!("{url}/__admin/rules")).json(&rule).send().await.expect("add rule");
    assert_eq!(added.status().as_u16(), 201);
    let request = Raw::get(&normal_path(), &authorised()).0;
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let (addr, request) = (addr.clone(), request.clone());
            tokio::spawn(async move { exchange(&addr, &request).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // All four slots have a request in flight: the newcomer is closed at once.
    let newcomer =
        tokio::time::timeout(Duration::from_secs(1), exchange(&addr, &Raw::get("/__admin/health", &[]).0)).await;
    assert!(matches!(newcomer, Ok(Ok(Outcome::Closed(_)))), "with every slot busy, a newcomer got {newcomer:?}");
    for answer in slow {
        let answer = tokio::time::timeout(HANG, answer).await.expect("slow answer in time").expect("task");
        match answer {
            Ok(Outcome::Answered { status: 200, body, .. }) => {
                let body: Value = serde_json::from_slice(&body).expect("a whole JSON body");
                assert!(body.is_object(), "{body}");
            }
            other => panic!("a request in flight was cut to make room: {other:?}"),
        }
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_waiting_for_a_request_slower_than_its_grace_period() {
    let config = Config { limits: Limits { shutdown_grace_ms: 1_000, ..Limits::default() }, ..Config::default() };
    let fixture = Some(("hostile.yaml".to_string(), hostile_fixture()));
    let started = ghl_mock::Mock::start(embedded(), config, Clock::frozen(1_767_225_600_000), fixture).expect("starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ghl_mock::serve(listener, started.mock, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let rule = json!({"path": "/contacts/**", "count": 1, "latency_ms": 600_000});
    let added = http.post(format!("{url}/__admin/rules")).json(&rule).send().await.expect("add rule");
    assert_eq!(added.status().as_u16(), 201);
    let slow =
        tokio::spawn(http.get(format!("{url}{}", normal_path())).bearer_auth(TOKEN).header("Version", VERSION).send());
    assert!(rule_taken(&http, &url).await, "the slow request reached its ten-minute delay");
    let _ = stop.send(());
    let finished = tokio::time::timeout(HANG, server).await;
    slow.abort();
    assert!(
        matches!(finished, Ok(Ok(Ok(())))),
        "with a 1 s grace period, serve returned within {HANG:?} despite a request due in ten minutes: {finished:?}"
    );
}

/// Polls the control plane until the rules are spent (a delayed request has started its delay).
async fn rule_taken(http: &reqwest::Client, url: &str) -> bool {
    for _ in 0..200 {
        let (_, rules) = read(http.get(format!("{url}/__admin/rules")).send().await.expect("rules")).await;
        if rules["rules"].as_array().is_some_and(Vec::is_empty) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[test]
fn many_idle_connections_do_not_stop_a_new_client_from_being_served() {
    let h = Harness::start("idle");
    let idle = h.client.block_on(async {
        let mut idle = Vec::new();
        for i in 0..500 {
            let mut stream = TcpStream::connect(&h.addr).await.expect("connect");
            if i % 2 == 0 {
                stream.write_all(b"GET /contacts/ HTTP/1.1\r\nHost: x\r\n").await.expect("write");
            }
            idle.push(stream);
        }
        idle
    });
    for _ in 0..10 {
        h.still_serving().unwrap();
    }
    drop(idle);
}

/// `ghl-mock serve` with at most `nofile` open files.
fn start_limited_binary(nofile: Option<u32>) -> Server {
    let binary = env!("CARGO_BIN_EXE_ghl-mock");
    let limit = nofile.map(|n| format!("ulimit -n {n} && ")).unwrap_or_default();
    let mut command = Command::new("sh");
    command.arg("-c").arg(format!("{limit}exec \"$0\" serve --port 0 --frozen-clock")).arg(binary);
    start_command(command)
}

/// The PIT the binary minted for its default location, from its banner.
fn banner_token(server: &Server) -> String {
    server
        .first_lines
        .iter()
        .find_map(|l| l.contains("private integration").then(|| l.rsplit(": ").next().map(|t| t.trim().to_string())))
        .flatten()
        .expect("a minted PIT in the banner")
}

const BINARY_LOCATION: &str = "ghlMockLocationA0001";

/// SIGTERM, then up to `bound` for the process to exit; killed if it has not.
fn stop_within(mut server: Server, bound: Duration) -> Option<std::process::ExitStatus> {
    let _ = Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status();
    let deadline = std::time::Instant::now() + bound;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
    None
}

#[tokio::test]
async fn a_client_beyond_the_servers_connection_capacity_is_served_or_refused_never_left_hanging() {
    // 64 open files: the server runs out of descriptors long before its
    // connection cap (4096 by default, not settable from the command line).
    let server = start_limited_binary(Some(64));
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for i in 0..100 {
        let mut stream = TcpStream::connect(&addr).await.expect("connect (the kernel's backlog takes it)");
        // Half stop mid-headers, half finish a request and keep the connection open.
        let bytes: &[u8] = if i % 2 == 0 {
            b"GET /__admin/health HTTP/1.1\r\nHost: x\r\n"
        } else {
            b"GET /__admin/health HTTP/1.1\r\nHost: x\r\n\r\n"
        };
        let _ = stream.write_all(bytes).await;
        idle.push(stream);
    }
    let outcome = tokio::time::timeout(HANG, exchange(&addr, &Raw::get("/__admin/health", &[]).0))
        .await
        .map(|r| r.expect("exchange"));
    drop(idle);
    let recovered = tokio::time::timeout(HANG, exchange(&addr, &Raw::get("/__admin/health", &[]).0)).await;
    let stopped = tokio::task::spawn_blocking(move || stop_within(server, HANG)).await.expect("stop");
    match outcome {
        Ok(Outcome::Answered { status: 200, .. }) | Ok(Outcome::Closed(_)) => {}
        Ok(other) => panic!("the new client got {other}"),
        Err(_) => panic!("with 100 idle connections open, a new client was neither served nor refused within {HANG:?}"),
    }
    assert!(
        matches!(recovered, Ok(Ok(Outcome::Answered { status: 200, .. }))),
        "once the idle clients left, a new client is served: {recovered:?}"
    );
    assert!(stopped.is_some(), "the server stopped on SIGTERM");
}

#[tokio::test]
async fn graceful_shutdown_lets_a_request_in_flight_finish_with_its_full_answer() {
    let server = start_limited_binary(None);
    let token = banner_token(&server);
    let http = reqwest::Client::new();
    let rule = http
        .post(format!("{}/__admin/rules", server.url))
        .json(&json!({"path": "/contacts/**", "count": 1, "latency_ms": 1500}))
        .send()
        .await
        .expect("add rule");
    assert_eq!(rule.status().as_u16(), 201);
    let slow = tokio::spawn(
        http.get(format!("{}/contacts/?locationId={BINARY_LOCATION}", server.url))
            .bearer_auth(&token)
            .header("Version", VERSION)
            .send(),
    );
    // The rule is spent the moment the request starts its delay.
    assert!(rule_taken(&http, &server.url).await, "the slow request reached its delay");
    let stopped = tokio::task::spawn_blocking(move || stop_within(server, HANG));
    let response = tokio::time::timeout(HANG, slow)
        .await
        .expect("answered")
        .expect("task")
        .expect("the in-flight request gets an answer");
    let (status, body) = read(response).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["contacts"].is_array(), "the full answer: {body}");
    let exit = stopped.await.expect("stop").expect("the server exits after finishing the request");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_a_client_that_never_finishes_its_headers() {
    let server = start_limited_binary(None);
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut stuck = TcpStream::connect(&addr).await.expect("connect");
    stuck.write_all(b"GET /__admin/health HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    // Accepted in order: once a later client is answered, the stuck one is in the server's hands.
    let later = tokio::time::timeout(HANG, exchange(&addr, &Raw::get("/__admin/health", &[]).0)).await;
    assert!(matches!(later, Ok(Ok(Outcome::Answered { status: 200, .. }))), "{later:?}");
    let stopped = tokio::task::spawn_blocking(move || stop_within(server, HANG)).await.expect("stop");
    drop(stuck);
    assert!(
        stopped.is_some(),
        "the server exited within {HANG:?} of SIGTERM although a client never finished its headers"
    );
}

/// Issue 15, item 2: a web page (CSRF) or a rebound DNS name must not drive
/// the control plane. Each refusal leaves the world as it was.
#[tokio::test]
async fn the_control_plane_refuses_foreign_hosts_foreign_origins_and_bodies_that_are_not_json() {
    let m = TestMock::start(embedded(), hostile_fixture()).await;
    let create = r#"{"name":"csrf","owner":{"location":"testLocationA0000001"},"scopes":[]}"#;
    let post = |host: Option<&str>, origin: Option<&str>, content_type: &str| {
        let mut r =
            m.http.post(format!("{}/__admin/integrations", m.url)).header("Content-Type", content_type).body(create);
        if let Some(h) = host {
            r = r.header("Host", h);
        }
        if let Some(o) = origin {
            r = r.header("Origin", o);
        }
        async move { read(r.send().await.expect("admin request")).await }
    };
    let count = || async {
        m.admin(reqwest::Method::GET, "/integrations", None).await.1["integrations"].as_array().map(Vec::len)
    };
    let before = count().await;
    let (status, body) = post(Some("evil.example"), None, "application/json").await;
    assert_eq!(status, 403, "a foreign Host: {body}");
    assert!(body["message"].as_str().unwrap().contains("evil.example"), "{body}");
    let (status, body) = post(None, Some("http://evil.example"), "application/json").await;
    assert_eq!(status, 403, "a foreign Origin: {body}");
    let (status, body) = post(None, Some("null"), "application/json").await;
    assert_eq!(status, 403, "a sandboxed page's Origin: {body}");
    let (status, body) = post(None, None, "text/plain").await;
    assert_eq!(status, 415, "JSON sent as text/plain, as a form post can: {body}");
    let (status, _) = post(None, None, "application/x-www-form-urlencoded").await;
    assert_eq!(status, 415);
    let reset = m.http.post(format!("{}/__admin/reset", m.url)).header("Host", "evil.example").send().await.unwrap();
    assert_eq!(reset.status().as_u16(), 403, "reset answers no fresh tokens to a foreign Host");
    assert_eq!(count().await, before, "nothing was created by the refused calls");
    // The mock's own page and tools: loopback names, with or without a port.
    for (host, origin) in [
        (None, None),
        (Some("localhost:4010"), Some("http://localhost:4010")),
        (Some("[::1]:80"), Some("http://127.0.0.1:9")),
    ] {
        let (status, body) = post(host, origin, "application/json; charset=utf-8").await;
        assert_eq!(status, 201, "{host:?} {origin:?}: {body}");
    }
}

/// Everything the server sends on one connection for one raw request, until
/// it closes (or a bound of five seconds).
async fn bytes_until_close(addr: &str, request: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut got = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server closed the connection within 5 s");
    got
}

/// Issue 15, item 4: `reset` delivers the status line and headers, then
/// breaks off; `truncate` declares the whole length and sends half.
#[tokio::test]
async fn fault_rules_send_the_headers_or_half_the_body_then_break_off_at_the_byte_level() {
    let m = TestMock::start(embedded(), hostile_fixture()).await;
    let addr = m.url.trim_start_matches("http://").to_string();
    let token = m.tokens[0].token.clone();
    let path = normal_path();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nVersion: 2021-07-28\r\nConnection: close\r\n\r\n"
    );
    let whole = bytes_until_close(&addr, &request).await;
    assert!(whole.starts_with(b"HTTP/1.1 200"), "a normal answer first: {}", shown(&whole));
    for fault in ["reset", "truncate"] {
        let (status, rule) =
            m.admin(reqwest::Method::POST, "/rules", Some(serde_json::json!({"path": path.split('?').next().unwrap(), "count": 1, "fault": fault, "status": 200}))).await;
        assert_eq!(status, 201, "{rule}");
        let got = bytes_until_close(&addr, &request).await;
        let text = String::from_utf8_lossy(&got).to_string();
        assert!(text.starts_with("HTTP/1.1 200"), "{fault}: the status line went out: {}", shown(&got));
        let end =
            text.find("\r\n\r\n").unwrap_or_else(|| panic!("{fault}: the headers went out whole: {}", shown(&got)));
        let (head, body) = (&text[..end], &text[end + 4..]);
        assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{fault}: {head}");
        match fault {
            "reset" => assert_eq!(body, "", "reset: nothing of the body after the headers"),
            _ => {
                let declared: usize = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("truncate declares a length: {head}"));
                assert!(declared > 1, "{head}");
                assert_eq!(body.len(), declared / 2, "truncate: half of the declared {declared} bytes, then the break");
            }
        }
    }
}

/// `ghl-mock serve ARGS…` that is expected to refuse to start: its exit
/// status and what it printed.
fn refused_start(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ghl-mock"));
    command.args(["serve", "--port", "0"]).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("ghl-mock runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
}

/// Issue 15, item 9: settings that would silently break the mock are refused
/// at start with a message naming the setting.
#[test]
fn settings_that_would_silently_break_the_mock_are_refused_at_start() {
    let dir = scratch_dir("refused-start");
    let missing = dir.join("no-such-dir").join("state.log");
    let (code, err) = refused_start(&["--state", missing.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2), "a --state in a missing directory fails at start, not at every save: {err}");
    assert!(err.contains("no-such-dir"), "the message names the path: {err}");
    let (code, err) = refused_start(&[], &[("GHL_MOCK_ADMIN_TOKEN", "")]);
    assert_eq!(code, Some(2), "an empty admin token would lock the control plane: {err}");
    assert!(err.contains("admin token"), "{err}");
    for (name, fixture) in [
        (
            "window_ms: 0",
            "companies: [{id: c1, rate_limits: {burst: 25, window_ms: 0, daily: 10}, locations: [{id: l1}]}]",
        ),
        ("the same location twice", "companies: [{id: c1, locations: [{id: l1}, {id: l1}]}]"),
        ("the same company twice", "companies: [{id: c1, locations: [{id: l1}]}, {id: c1, locations: [{id: l2}]}]"),
    ] {
        let path = dir.join("fixture.yaml");
        std::fs::write(&path, fixture).unwrap();
        let (code, err) = refused_start(&["--fixture", path.to_str().unwrap()], &[]);
        assert_eq!(code, Some(2), "{name} is refused: {err}");
        assert!(err.contains("c1") || err.contains("l1"), "{name}: the message names the id: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_control_plane_open_to_other_hosts_without_a_token_is_warned_about() {
    let mut server = start_binary(&["--admin-remote".as_ref()]);
    let status = server.terminate_and_logs();
    assert!(status.1.contains("--admin-remote without --admin-token"), "{}", status.1);
}

/// Issue 15, item 8: a token pasted into the URL path is a secret too: the
/// debug log, the journal and every report format show its fingerprint only.
#[tokio::test]
async fn a_token_in_the_url_path_is_shown_only_as_its_fingerprint() {
    let mut server = start_binary(&[]);
    let token = server
        .first_lines
        .iter()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("pit-")))
        .unwrap()
        .to_string();
    let secret = &token[4..];
    let client = reqwest::Client::new();
    let (status, _) = read(
        client
            .get(format!("{}/contacts/{token}", server.url))
            .bearer_auth(&token)
            .header("Version", "2021-07-28")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(status >= 400, "a made-up contact id");
    let _ = client.get(format!("{}/nothing/{token}/here", server.url)).send().await.unwrap();
    let mut shown = Vec::new();
    for path in ["/__admin/journal", "/__admin/report", "/__admin/report?format=text", "/__admin/report?format=junit"] {
        shown.push(client.get(format!("{}{path}", server.url)).send().await.unwrap().text().await.unwrap());
    }
    let (_, logs) = server.terminate_and_logs();
    shown.push(logs);
    for (i, text) in shown.iter().enumerate() {
        assert!(!text.contains(secret), "output {i} holds the token: {}", &text[..text.len().min(400)]);
    }
    assert!(
        shown[0].contains(&ghl_mock::auth::secret::fingerprint(&token)),
        "the journal shows the fingerprint: {}",
        shown[0]
    );
}

/// Issue 15, item 8: an OAuth app's client secret is kept as a digest, so
/// the `--state` file never holds it, and it still works after a restart.
#[tokio::test]
async fn oauth_client_secrets_are_kept_as_digests_and_still_work_after_a_restart() {
    let dir = scratch_dir("secret-digest");
    let state = dir.join("state.log");
    let secret = format!("s3cret-{}", fastrand::u64(..));
    let client = reqwest::Client::new();
    let server = start_binary(&["--state".as_ref(), state.as_os_str()]);
    let app = serde_json::json!({"client_id": "digest-app", "client_secret": secret, "name": "Digest", "scopes": ["contacts.readonly"]});
    let created = client.post(format!("{}/__admin/oauth/apps", server.url)).json(&app).send().await.unwrap();
    assert_eq!(created.status().as_u16(), 201);
    server.terminate();
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains("digest-app") && !text.contains(&secret), "the state file keeps the app, not its secret");
    let server = start_binary(&["--state".as_ref(), state.as_os_str()]);
    let code = client
        .post(format!("{}/__admin/oauth/codes", server.url))
        .json(&serde_json::json!({"client_id": "digest-app", "owner": {"location": "ghlMockLocationA0001"}, "scopes": ["contacts.readonly"]}))
        .send()
        .await
        .unwrap();
    let code: serde_json::Value = code.json().await.unwrap();
    let exchange = |given: String| {
        let form = [
            ("client_id", "digest-app".to_string()),
            ("client_secret", given),
            ("grant_type", "authorization_code".into()),
            ("code", code["code"].as_str().unwrap().to_string()),
        ];
        let request = client.post(format!("{}/oauth/token", server.url)).form(&form);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(exchange("wrong".into()).await, 401, "a wrong secret is refused");
    assert_eq!(exchange(secret.clone()).await, 200, "the right one works against the kept digest");
    server.terminate();
    let _ = std::fs::remove_dir_all(dir);
}

/// Sends `request`, shuts the write side, and reads until the server closes
/// (at most 5 s): the answer, when it is a whole one with a JSON body.
async fn half_closed_exchange(addr: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    socket.shutdown().await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    if text.contains("\r\n\r\n{") {
        text
    } else {
        String::new()
    }
}

/// Issue 15, item 7: a client that shuts its write side after sending the
/// request still gets the whole answer; a refusal that leaves a body unread
/// says `Connection: close`, so the client does not reuse a spoilt connection.
#[tokio::test]
async fn half_closed_clients_get_their_answers_and_early_refusals_close_the_connection_openly() {
    let m = TestMock::start(embedded(), hostile_fixture()).await;
    let addr = m.url.trim_start_matches("http://").to_string();
    let token = m.tokens[0].token.clone();
    let path = normal_path();
    let mut answered = 0;
    for n in 0..60 {
        let request = if n % 3 == 2 {
            let body = format!(r#"{{"locationId":"{LOC_A}","email":"half{n}@example.com"}}"#);
            format!(
                "POST /contacts/ HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nVersion: 2021-07-28\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nVersion: 2021-07-28\r\n\r\n")
        };
        if half_closed_exchange(&addr, &request).await.starts_with("HTTP/1.1 20") {
            answered += 1;
        }
    }
    assert_eq!(answered, 60, "every half-closed client got its answer");

    // An answer that takes a while (a latency rule): hyper sees the end of
    // the client's side long before it, and must still send it.
    let rule = serde_json::json!({"method": "GET", "path": "/contacts/", "latency_ms": 100});
    let (status, rule) = m.admin(reqwest::Method::POST, "/rules", Some(rule)).await;
    assert_eq!(status, 201, "{rule}");
    let (_, before) = m.admin(reqwest::Method::GET, "/journal?limit=1", None).await;
    let mut slow_answered = 0;
    for _ in 0..10 {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nVersion: 2021-07-28\r\n\r\n"
        );
        if half_closed_exchange(&addr, &request).await.starts_with("HTTP/1.1 200") {
            slow_answered += 1;
        }
    }
    assert_eq!(slow_answered, 10, "every half-closed client got its slow answer too");
    let (_, journal) = m.admin(reqwest::Method::GET, "/journal?limit=10", None).await;
    let newest = journal["entries"].as_array().unwrap();
    assert!(newest.iter().all(|e| e["broken"] == "closed_early" && e["status"] == 200), "{journal} (before: {before})");
    let (status, _) = m.admin(reqwest::Method::DELETE, &format!("/rules/{}", rule["id"]), None).await;
    assert!(matches!(status, 200 | 204), "the rule is removed: {rule}");

    let body = "x".repeat(100_000);
    let request = format!(
        "POST /contacts/ HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer pit-00000000-0000-4000-8000-000000000000\r\nVersion: 2021-07-28\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let got = bytes_until_close(&addr, &request).await;
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 401"), "{}", shown(&got));
    assert!(text.contains("\r\nconnection: close\r\n"), "the refusal says the connection ends: {}", shown(&got));
}

/// Issue 15, item 5: requests to enormous paths cost the journal a bounded
/// number of bytes each, not their length.
#[tokio::test]
async fn the_journal_keeps_a_bounded_prefix_of_enormous_paths() {
    let m = TestMock::start(embedded(), hostile_fixture()).await;
    let long = format!("/nothing/{}", "a".repeat(60_000));
    for _ in 0..20 {
        let (status, _) = read(m.http.get(format!("{}{long}", m.url)).send().await.unwrap()).await;
        assert_eq!(status, 404);
    }
    let (_, journal) = m.admin(reqwest::Method::GET, "/journal?limit=100", None).await;
    let entries = journal["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 20);
    for e in entries {
        let path = e["path"].as_str().unwrap();
        assert!(path.len() <= ghl_mock::journal::MAX_PATH_BYTES + 32, "kept {} bytes of a 60 KB path", path.len());
        assert!(
            path.ends_with(&format!("…({} bytes)", long.len())),
            "the cut says how long it was: {}",
            &path[path.len() - 40..]
        );
    }
}
