//! Shared helpers: start a mock in process on a free port, mint tokens, find
//! the shared corpus (or skip loudly without it).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use ghl_mock::respond::generate_valid;
use ghl_mock::spec::{Operation, Param, ParamIn};
use ghl_mock::{spec, Clock, Config, Fixture, IssuedToken, Mock, Source, SpecSet};
use serde_json::Value;

pub const VERSION: &str = "2021-07-28";

/// The official spec corpus beside the project, or `None` after a loud
/// message. With `GHL_REQUIRE_SHARED=1` (as in CI) its absence fails the test.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/highlevel-openapi/apps");
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var("GHL_REQUIRE_SHARED").is_ok_and(|v| v == "1");
    assert!(!required, "GHL_REQUIRE_SHARED=1 but the shared corpus is missing at {}", dir.display());
    eprintln!("\n!!! SKIPPED: the shared spec corpus is not at {} — this test did not run !!!\n", dir.display());
    None
}

pub fn embedded() -> SpecSet {
    spec::load(Source::Embedded(spec::EMBEDDED), 1).expect("embedded specs load")
}

pub const COMPANY: &str = "testCompany000000001";
pub const LOC_A: &str = "testLocationA0000001";
pub const LOC_B: &str = "testLocationB0000002";
pub const OTHER_COMPANY: &str = "otherCompany00000001";
pub const LOC_C: &str = "testLocationC0000003";

/// A fixture with two companies, three locations and the given integrations
/// (YAML list items under `private_integrations:`); the first company is a
/// sandbox with sandbox limits.
pub fn fixture(integrations_yaml: &str) -> Fixture {
    fixture_with(integrations_yaml, "")
}

/// The same world with limits too high to reach, for tests of everything else.
pub fn unlimited_fixture(integrations_yaml: &str) -> Fixture {
    fixture_with(integrations_yaml, "\n    rate_limits: {burst: 1000000, window_ms: 10000, daily: 100000000}")
}

fn fixture_with(integrations_yaml: &str, company_extra: &str) -> Fixture {
    let text = format!(
        r#"
companies:
  - id: {COMPANY}
    environment: sandbox{company_extra}
    locations: [{{id: {LOC_A}}}, {{id: {LOC_B}}}]
  - id: {OTHER_COMPANY}
    environment: production
    locations: [{{id: {LOC_C}}}]
private_integrations:
{integrations_yaml}
oauth_apps:
  - client_id: test-client
    client_secret: test-secret
    scopes: []
"#
    );
    ghl_mock::fixture::parse("test.yaml", &text).expect("test fixture parses")
}

pub struct TestMock {
    pub url: String,
    pub mock: Arc<Mock>,
    pub tokens: Vec<IssuedToken>,
    pub http: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestMock {
    pub async fn start(spec: SpecSet, fixture: Fixture) -> Self {
        Self::start_with(spec, fixture, Config::default(), Clock::frozen(1_767_225_600_000)).await
    }

    pub async fn start_with(spec: SpecSet, fixture: Fixture, config: Config, clock: Clock) -> Self {
        let started = Mock::start(spec, config, clock, Some(("test.yaml".into(), fixture))).expect("mock starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mock = started.mock.clone();
        tokio::spawn(async move {
            let _ = ghl_mock::serve(listener, mock, async {
                let _ = rx.await;
            })
            .await;
        });
        Self { url, mock: started.mock, tokens: started.tokens, http: reqwest::Client::new(), _shutdown: tx }
    }

    /// The token the fixture issued for the integration named `name`.
    pub fn token(&self, name: &str) -> String {
        self.tokens.iter().find(|t| t.name == name).map(|t| t.token.clone()).expect("token in fixture")
    }

    pub fn integration_id(&self, name: &str) -> String {
        self.tokens.iter().find(|t| t.name == name).map(|t| t.integration_id.clone()).expect("integration in fixture")
    }

    /// A GET with a bearer token and the usual `Version`.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .header("Version", VERSION)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}/__admin{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("admin request")).await
    }
}

pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    (status, body)
}

/// As [`read`], without the trace id a 422 carries (it differs on every call).
pub async fn read_untraced(response: reqwest::Response) -> (u16, Value) {
    let (status, mut body) = read(response).await;
    if let Some(map) = body.as_object_mut() {
        map.remove("traceId");
    }
    (status, body)
}

/// A request with `Version: version`, an optional bearer token and JSON
/// body: the status and the answer without its trace id.
pub async fn call_as(
    m: &TestMock,
    method: reqwest::Method,
    path: &str,
    version: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = m.http.request(method, format!("{}{path}", m.url)).header("Version", version);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    read_untraced(request.send().await.expect("request")).await
}

/// A value for a parameter that its schema accepts, with the fixture's ids
/// where the parameter names a location or company.
pub fn fill(param: &Param, seed: u64) -> String {
    match param.name.as_str() {
        "locationId" | "location_id" | "altId" => LOC_A.to_string(),
        "altType" => "location".to_string(),
        "companyId" => COMPANY.to_string(),
        _ => match valid(&param.schema, param.validator.as_deref(), seed) {
            Value::String(s) => s,
            Value::Array(items) => items
                .first()
                .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                .unwrap_or_default(),
            other => other.to_string(),
        },
    }
}

/// A value the schema accepts (or the generator's best try).
pub fn valid(schema: &Value, validator: Option<&jsonschema::Validator>, seed: u64) -> Value {
    generate_valid(schema, validator, seed).unwrap_or_else(|(closest, _)| closest)
}

/// The `ghl-mock` binary, serving on a free port with a frozen clock.
pub struct Server {
    pub child: std::process::Child,
    pub url: String,
    /// The banner: URL, spec summary, minted tokens.
    pub first_lines: Vec<String>,
    /// Everything the server logged so far (at trace level).
    pub logs: std::sync::Arc<std::sync::Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

/// Starts `ghl-mock serve --port 0 --frozen-clock ARGS…`.
pub fn start_binary(args: &[&std::ffi::OsStr]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ghl-mock"));
    command.args(["serve", "--port", "0", "--frozen-clock"]).args(args).env("GHL_MOCK_LOG", "trace");
    start_command(command)
}

/// Starts a command that runs `ghl-mock serve` and waits for its banner.
pub fn start_command(mut command: Command) -> Server {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start ghl-mock");
    // Drained as it comes, so a chatty server never blocks on a full pipe.
    let stderr = child.stderr.take().expect("stderr");
    let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = logs.clone();
    let drain = std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut first_lines = Vec::new();
    let mut url = String::new();
    // The banner: URL, spec summary, one line per minted token, and last the control plane.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(u) = line.trim().strip_prefix("ghl-mock listening on ") {
            url = u.to_string();
        }
        let last = line.trim_start().starts_with("control plane:");
        first_lines.push(line);
        if last {
            break;
        }
    }
    assert!(!url.is_empty(), "the server announced its URL: {first_lines:?}");
    child.stdout = Some(reader.into_inner());
    Server { child, url, first_lines, logs, drain: Some(drain) }
}

impl Server {
    /// After the process has ended: all it ever logged.
    pub fn all_logs(&mut self) -> String {
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        self.logs.lock().unwrap().clone()
    }

    /// Stops the server and answers its exit status and all it wrote to stderr.
    pub fn terminate_and_logs(&mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let status = self.child.wait().expect("wait for ghl-mock");
        (status, self.all_logs())
    }

    /// Asks the server to stop (SIGTERM) and waits for it.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().expect("wait for ghl-mock")
    }
}

/// A server a test forgot to stop (or that failed before stopping it) is
/// not left running.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `body` sent as the operation takes it: JSON, or (for an upload that
/// takes only `multipart/form-data`) as text fields, a list as repeated ones.
pub fn with_body(request: reqwest::RequestBuilder, op: &Operation, body: &Value) -> reqwest::RequestBuilder {
    let types = op.body.as_ref().map(|b| b.content_types.clone()).unwrap_or_default();
    let multipart_only = !types.is_empty() && types.iter().all(|t| t.starts_with("multipart/form-data"));
    if !multipart_only {
        return request.json(body);
    }
    let boundary = "ghlMockTestBoundary0123456789";
    let mut text = String::new();
    let mut field = |name: &str, value: &Value| {
        let value = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
        text.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    };
    for (name, value) in body.as_object().into_iter().flatten() {
        match value {
            Value::Array(items) => items.iter().for_each(|item| field(name, item)),
            other => field(name, other),
        }
    }
    text.push_str(&format!("--{boundary}--\r\n"));
    request.header("Content-Type", format!("multipart/form-data; boundary={boundary}")).body(text)
}

/// A fresh directory for one test's files.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ghl-mock-{name}-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The operation's path with each `{param}` filled by `value`.
pub fn filled_path(op: &Operation, mut value: impl FnMut(&Param) -> String) -> String {
    let mut path = op.path.clone();
    for p in op.params.iter().filter(|p| p.location == ParamIn::Path) {
        path = path.replace(&format!("{{{}}}", p.name), &value(p));
    }
    path
}

/// The operation's required query parameters, filled as [`fill`] does.
pub fn required_query(op: &Operation, seed: u64) -> Vec<(String, String)> {
    op.params
        .iter()
        .filter(|p| p.location == ParamIn::Query && p.required)
        .map(|p| (p.name.clone(), fill(p, seed)))
        .collect()
}

/// The OAuth install flow: a code from the control plane for the fixture's
/// `test-client`, exchanged at `/oauth/token`; the token answer.
pub async fn oauth_tokens(m: &TestMock, owner: Value, scopes: &[&str]) -> Value {
    let (status, body) = m
        .admin(
            reqwest::Method::POST,
            "/oauth/codes",
            Some(serde_json::json!({"client_id": "test-client", "owner": owner, "scopes": scopes})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let code = body["code"].as_str().expect("a code");
    let (status, tokens) = exchange_code(m, "test-client", "test-secret", code).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// `POST /oauth/token` with `grant_type=authorization_code`: status and answer.
pub async fn exchange_code(m: &TestMock, client_id: &str, client_secret: &str, code: &str) -> (u16, Value) {
    let response = m
        .http
        .post(format!("{}/oauth/token", m.url))
        .form(&[
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("grant_type", "authorization_code"),
            ("code", code),
        ])
        .send()
        .await
        .expect("token request");
    read(response).await
}

/// Records a body may have to name (a pipeline with a stage, a calendar, a
/// contact), stored straight into location A, so generated bodies can point
/// at real ones; returns the fields to put in a body.
pub async fn references(m: &TestMock, tag: &str) -> Vec<(&'static str, Value)> {
    use ghl_mock::state::{Indexing, NewRecord};
    let id =
        |what: &str| format!("{tag}{what}").chars().filter(|c| c.is_ascii_alphanumeric()).take(20).collect::<String>();
    let (pipeline, stage, calendar, contact) = (id("pipeline"), id("stage"), id("calendar"), id("contact"));
    let rows = [
        (
            "/opportunities/pipelines",
            &pipeline,
            serde_json::json!({"id": pipeline, "name": "p", "stages": [{"id": stage, "name": "s"}]}),
        ),
        ("/calendars", &calendar, serde_json::json!({"id": calendar, "name": "c", "locationId": LOC_A})),
        ("/contacts", &contact, serde_json::json!({"id": contact, "locationId": LOC_A, "firstName": "Ref"})),
    ];
    for (kind, rid, record) in rows {
        if m.mock.spec.resources.by_kind(kind).is_none() {
            continue;
        }
        let new = NewRecord {
            kind: std::sync::Arc::from(kind),
            id: rid.clone(),
            location: LOC_A.into(),
            created_ms: 0,
            record: record.as_object().cloned().unwrap_or_default(),
        };
        let _ = m.mock.records.insert(new, Indexing::NONE).await;
    }
    vec![
        ("pipelineId", Value::from(pipeline)),
        ("pipelineStageId", Value::from(stage)),
        ("calendarId", Value::from(calendar)),
        ("contactId", Value::from(contact)),
    ]
}

/// Points a generated body's references at stored records.
pub fn refer(body: &mut Value, references: &[(&'static str, Value)]) {
    if let Some(map) = body.as_object_mut() {
        for (key, value) in references {
            if map.get(*key).is_some_and(Value::is_string) {
                map.insert((*key).to_string(), value.clone());
            }
        }
    }
}

/// Stores the records a bound operation's path names (its id and its
/// parents), in location A, with the fields their schemas require; returns
/// path parameter → id.
pub async fn records_for(m: &TestMock, index: usize) -> std::collections::BTreeMap<String, String> {
    use ghl_mock::state::{Indexing, NewRecord};
    let spec = m.mock.spec.clone();
    let mut ids = std::collections::BTreeMap::new();
    let Some(binding) = spec.resources.binding(index) else { return ids };
    let Some(resource) = spec.resources.resource(binding.resource) else { return ids };
    let op = &spec.operations[index];
    let mut wanted: Vec<(String, &ghl_mock::spec::resources::Resource)> = Vec::new();
    for name in &binding.parents {
        let marker = format!("/{{{name}}}");
        let prefix =
            [op.path.as_str(), resource.collection.as_str()].into_iter().find_map(|p| p.find(&marker).map(|i| &p[..i]));
        if let Some((_, parent)) = prefix.and_then(|p| spec.resources.by_kind(&ghl_mock::spec::resources::kind_of(p))) {
            wanted.push((name.clone(), parent));
        }
    }
    if let Some(param) = &binding.id_param {
        wanted.push((param.clone(), resource));
    }
    for (param, kind) in wanted {
        if param == "locationId" {
            // The location's own record, seeded from the world.
            ids.insert(param, LOC_A.to_string());
            continue;
        }
        let id: String = format!("rec{index}{param}").chars().filter(|c| c.is_ascii_alphanumeric()).take(20).collect();
        let mut record: serde_json::Map<String, Value> = kind.required.iter().cloned().collect();
        record.insert(kind.id_field.clone(), Value::from(id.clone()));
        record.insert("locationId".into(), Value::from(LOC_A));
        for (p, v) in &ids {
            record.insert(p.clone(), Value::from(v.clone()));
        }
        let new = NewRecord { kind: kind.kind.clone(), id: id.clone(), location: LOC_A.into(), created_ms: 0, record };
        let _ = m.mock.records.insert(new, Indexing::NONE).await;
        ids.insert(param, id);
    }
    ids
}
