//! Issue 12: two ghl-mock processes on one Redis act as one HighLevel.
//!
//! Black-box: each replica is the `ghl-mock` binary started with
//! `--store redis://…`, reached over HTTP only; each test has its own
//! `redis-server` on a free loopback port, stopped when the test ends.
//! Without `redis-server` on PATH the tests skip with a loud message; with
//! `CI=true` or `GHL_REQUIRE_REDIS=1` its absence fails them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{read, scratch_dir, start_command, Server, VERSION};

const LOCATION: &str = "repLocationA00000001";
const PITS: usize = 5;

/// A `redis-server` of one test, on a free loopback port.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

fn redis_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("GHL_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

impl Redis {
    /// A fresh Redis (append-only file on, so that a restart keeps the data),
    /// or `None` after a loud message when `redis-server` is not installed.
    fn start(test: &str) -> Option<Redis> {
        let found = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok();
        if !found {
            assert!(!redis_required(), "redis-server is not installed, and CI=true / GHL_REQUIRE_REDIS=1 require it");
            eprintln!("SKIPPED {test}: no redis-server on PATH (apt-get install redis-server); the shared-store tests need one");
            return None;
        }
        let dir = scratch_dir("redis");
        // A free port: bound and let go, then taken by Redis; if another
        // process took it in between, Redis exits and another is tried.
        for _ in 0..20 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
            let Ok(port) = port else { continue };
            let mut redis = Redis { child: None, port, dir: dir.clone() };
            if redis.spawn() {
                return Some(redis);
            }
        }
        panic!("redis-server did not start on any of 20 free ports");
    }

    /// Starts (or restarts) the server on this port; true once it answers.
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server (SIGTERM: the append-only file is complete).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Redis and two replicas, A started first (it makes the world from the
/// fixture), B second (it takes the world it finds).
struct Pair {
    a: Server,
    b: Server,
    http: reqwest::Client,
    pits: Vec<String>,
    // Last: stopped after the replicas.
    redis: Redis,
}

/// A Marketplace app installed on the location, whose webhooks go to `hook`.
const HOOK_APP: &str = "665c6bb13d4e5364bdec0e2f-mawqjyjd";

fn fixture(pits: &[String], hook: Option<&str>) -> String {
    let integrations: String = pits
        .iter()
        .enumerate()
        .map(|(i, token)| {
            format!(
                "  - {{name: P{i}, owner: {{location: {LOCATION}}}, scopes: [contacts.readonly, contacts.write], token: {token}}}\n"
            )
        })
        .collect();
    format!(
        r#"
companies:
  - id: repCompany0000000001
    environment: sandbox
    locations: [{{id: {LOCATION}}}]
private_integrations:
{integrations}
oauth_apps:
  - client_id: test-client
    client_secret: test-secret
    scopes: [contacts.readonly, contacts.write]
{apps}"#,
        apps = match hook {
            Some(url) => format!(
                "  - {{client_id: {HOOK_APP}, client_secret: s3cret, scopes: [contacts.readonly], webhooks: {{url: '{url}'}}}}\n\
                 oauth_installs:\n  - {{client_id: {HOOK_APP}, location: {LOCATION}}}\n"
            ),
            None => String::new(),
        }
    )
}

fn replica(redis: &Redis, fixture: &std::path::Path, world: &str) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ghl-mock"));
    command
        .args(["serve", "--port", "0", "--frozen-clock", "--store", &redis.url(), "--world", world])
        .arg("--fixture")
        .arg(fixture)
        .env("GHL_MOCK_LOG", "warn");
    start_command(command)
}

impl Pair {
    fn start(test: &str) -> Option<Pair> {
        Self::start_with(test, None)
    }

    /// With `hook`: an installed app whose webhooks go there.
    fn start_with(test: &str, hook: Option<&str>) -> Option<Pair> {
        let redis = Redis::start(test)?;
        let pits: Vec<String> = (0..PITS).map(|_| format!("pit-{}", uuid::Uuid::new_v4())).collect();
        let file = redis.dir.join("fixture.yaml");
        std::fs::write(&file, fixture(&pits, hook)).expect("write the fixture");
        let world = format!("t{}", fastrand::u32(..));
        let a = replica(&redis, &file, &world);
        let b = replica(&redis, &file, &world);
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("client");
        Some(Pair { a, b, http, pits, redis })
    }

    fn url(&self, replica: usize) -> &str {
        if replica.is_multiple_of(2) {
            &self.a.url
        } else {
            &self.b.url
        }
    }

    async fn api(&self, replica: usize, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url(replica)))
            .bearer_auth(token)
            .header("Version", VERSION);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("API request")).await
    }

    async fn admin(&self, replica: usize, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}/__admin{path}", self.url(replica)));
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("admin request")).await
    }

    async fn new_contact(&self, replica: usize, email: &str) -> (u16, Value) {
        let body = json!({"locationId": LOCATION, "email": email, "firstName": "Ann"});
        self.api(replica, Method::POST, "/contacts/", &self.pits[0], Some(body)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_requests_at_once_across_two_replicas_admit_exactly_the_sandbox_burst_in_every_trial() {
    let Some(pair) = Pair::start("rate limits across replicas") else { return };
    let (status, created) = pair.new_contact(0, "burst@example.com").await;
    assert_eq!(status, 201, "{created}");
    let path = format!("/contacts/{}", created["contact"]["id"].as_str().expect("an id"));
    for trial in 0..100 {
        // A fresh window for every trial, on the shared clock.
        let (status, _) = pair.admin(trial, Method::POST, "/clock/advance", Some(json!({"by": "10s"}))).await;
        assert_eq!(status, 200);
        let calls = (0..200).map(|i| {
            let http = pair.http.clone();
            let url = format!("{}{path}", pair.url(i));
            let token = pair.pits[i % PITS].clone();
            tokio::spawn(async move {
                let response =
                    http.get(url).bearer_auth(token).header("Version", VERSION).send().await.expect("request");
                response.status().as_u16()
            })
        });
        let statuses: Vec<u16> = futures_util::future::join_all(calls).await.into_iter().map(|s| s.unwrap()).collect();
        let admitted = statuses.iter().filter(|s| **s == 200).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!((admitted, refused), (25, 175), "trial {trial}: {statuses:?}");
    }
}

#[tokio::test]
async fn an_integration_made_on_one_replica_works_on_the_other_rotates_on_both_and_dies_on_both_when_deleted() {
    let Some(pair) = Pair::start("integrations across replicas") else { return };
    let (status, made) = pair
        .admin(
            0,
            Method::POST,
            "/integrations",
            Some(json!({"name": "made on A", "owner": {"location": LOCATION}, "scopes": ["contacts.readonly"]})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let id = made["integration"]["id"].as_str().expect("an id").to_string();
    let old = made["token"].as_str().expect("a token").to_string();
    let (status, body) = pair.api(1, Method::GET, &format!("/contacts/?locationId={LOCATION}"), &old, None).await;
    assert_eq!(status, 200, "B takes A's new token at once: {body}");

    let (status, rotated) = pair.admin(1, Method::POST, &format!("/integrations/{id}/rotate"), None).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["token"].as_str().expect("the new token").to_string();
    for replica in [0, 1] {
        for token in [&old, &new] {
            let (status, _) =
                pair.api(replica, Method::GET, &format!("/contacts/?locationId={LOCATION}"), token, None).await;
            assert_eq!(status, 200, "within the grace window both tokens work on replica {replica}");
        }
    }
    let (status, _) = pair.admin(0, Method::POST, "/clock/advance", Some(json!({"by": "7d1s"}))).await;
    assert_eq!(status, 200);
    for replica in [0, 1] {
        let (status, _) =
            pair.api(replica, Method::GET, &format!("/contacts/?locationId={LOCATION}"), &old, None).await;
        assert_eq!(status, 401, "after 7 days the old token is refused on replica {replica}");
    }

    let (status, _) = pair.admin(1, Method::DELETE, &format!("/integrations/{id}"), None).await;
    assert_eq!(status, 200);
    let (status, body) = pair.api(0, Method::GET, &format!("/contacts/?locationId={LOCATION}"), &new, None).await;
    assert_eq!(status, 401, "deleted on B, refused on A at the very next request: {body}");
}

#[tokio::test]
async fn an_oauth_code_from_one_replica_is_exchanged_on_the_other_and_a_refresh_token_is_used_once_in_all() {
    let Some(pair) = Pair::start("OAuth across replicas") else { return };
    let (status, code) = pair
        .admin(
            0,
            Method::POST,
            "/oauth/codes",
            Some(json!({"client_id": "test-client", "owner": {"location": LOCATION}})),
        )
        .await;
    assert_eq!(status, 201, "{code}");
    let code = code["code"].as_str().expect("a code").to_string();
    let token = |replica: usize, form: Vec<(&'static str, String)>| {
        let request = pair.http.post(format!("{}/oauth/token", pair.url(replica))).form(&form).send();
        async move { read(request.await.expect("token request")).await }
    };
    let client = |grant: &'static str, key: &'static str, value: &str| {
        vec![
            ("client_id", "test-client".to_string()),
            ("client_secret", "test-secret".to_string()),
            ("grant_type", grant.to_string()),
            (key, value.to_string()),
        ]
    };
    let (status, tokens) = token(1, client("authorization_code", "code", &code)).await;
    assert_eq!(status, 200, "A's code exchanged on B: {tokens}");
    let (status, again) = token(0, client("authorization_code", "code", &code)).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "a code answers once in all: {again}");

    let access = tokens["access_token"].as_str().expect("an access token");
    let (status, body) = pair.api(0, Method::GET, &format!("/contacts/?locationId={LOCATION}"), access, None).await;
    assert_eq!(status, 200, "a token minted on B is accepted on A (one signing key): {body}");

    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let (status, fresh) = token(0, client("refresh_token", "refresh_token", refresh)).await;
    assert_eq!(status, 200, "{fresh}");
    let (status, reuse) = token(1, client("refresh_token", "refresh_token", refresh)).await;
    assert_eq!((status, reuse["error"].as_str()), (400, Some("invalid_grant")), "used on A, refused on B: {reuse}");
}

#[tokio::test]
async fn a_contact_made_on_one_replica_is_read_changed_listed_and_deleted_on_the_other_and_its_email_stays_unique() {
    let Some(pair) = Pair::start("records across replicas") else { return };
    let pit = &pair.pits[0];
    let (status, created) = pair.new_contact(0, "ann@example.com").await;
    assert_eq!(status, 201, "{created}");
    let id = created["contact"]["id"].as_str().expect("an id").to_string();

    let (status, read_back) = pair.api(1, Method::GET, &format!("/contacts/{id}"), pit, None).await;
    assert_eq!((status, read_back["contact"]["email"].as_str()), (200, Some("ann@example.com")), "{read_back}");
    let (status, dup) = pair.new_contact(1, "ann@example.com").await;
    assert_eq!(status, 400, "a duplicate email sent to B after A made the contact: {dup}");
    assert_eq!(dup["meta"]["contactId"].as_str(), Some(id.as_str()), "{dup}");

    let (status, updated) =
        pair.api(1, Method::PUT, &format!("/contacts/{id}"), pit, Some(json!({"firstName": "Anna"}))).await;
    assert_eq!(status, 200, "{updated}");
    let (_, on_a) = pair.api(0, Method::GET, &format!("/contacts/{id}"), pit, None).await;
    assert_eq!(on_a["contact"]["firstName"].as_str(), Some("Anna"), "B's change read on A: {on_a}");
    let (status, listed) = pair.api(1, Method::GET, &format!("/contacts/?locationId={LOCATION}"), pit, None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> =
        listed["contacts"].as_array().expect("contacts").iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, vec![id.as_str()], "{listed}");

    let (status, _) = pair.api(1, Method::DELETE, &format!("/contacts/{id}"), pit, None).await;
    assert_eq!(status, 200);
    let (status, gone) = pair.api(0, Method::GET, &format!("/contacts/{id}"), pit, None).await;
    assert_eq!(status, 400, "deleted on B, gone on A: {gone}");
    let (status, again) = pair.new_contact(0, "ann@example.com").await;
    assert_eq!(status, 201, "the email is free again once its contact is deleted: {again}");
}

#[tokio::test]
async fn a_rule_with_a_count_answers_exactly_that_many_calls_across_both_replicas_and_the_clock_is_one() {
    let Some(pair) = Pair::start("rules and clock across replicas") else { return };
    let (status, rule) = pair
        .admin(
            0,
            Method::POST,
            "/rules",
            Some(json!({"method": "GET", "path": "/contacts/", "count": 3, "status": 503})),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let mut answered = Vec::new();
    for i in 0..10 {
        let (status, _) =
            pair.api(i, Method::GET, &format!("/contacts/?locationId={LOCATION}"), &pair.pits[0], None).await;
        answered.push(status);
    }
    assert_eq!(answered.iter().filter(|s| **s == 503).count(), 3, "{answered:?}");
    assert_eq!(&answered[..3], &[503, 503, 503], "the rule's uses come first, alternating replicas: {answered:?}");

    let (_, before) = pair.admin(1, Method::GET, "/clock", None).await;
    let (status, _) = pair.admin(0, Method::POST, "/clock/advance", Some(json!({"by": "1h"}))).await;
    assert_eq!(status, 200);
    let (_, after) = pair.admin(1, Method::GET, "/clock", None).await;
    assert_eq!(
        after["now_ms"].as_i64().unwrap() - before["now_ms"].as_i64().unwrap(),
        3_600_000,
        "advanced on A, seen on B: {before} → {after}"
    );
    assert_eq!(after["frozen"], json!(true));
}

#[tokio::test]
async fn rules_and_injected_429s_are_withdrawn_through_either_replica_and_spent_exactly_in_all() {
    let Some(pair) = Pair::start("withdrawn rules across replicas") else { return };
    let path = format!("/contacts/?locationId={LOCATION}");
    let (status, injected) = pair
        .admin(0, Method::POST, "/limits/injections", Some(json!({"target": {"resource": LOCATION}, "count": 4})))
        .await;
    assert_eq!(status, 201, "{injected}");
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(pair.api(i, Method::GET, &path, &pair.pits[i % PITS], None).await.0);
    }
    assert_eq!(statuses, [429, 429, 429, 429, 200, 200, 200, 200], "4 injected 429s in all, then none");

    let (_, injection) = pair
        .admin(1, Method::POST, "/limits/injections", Some(json!({"target": {"resource": LOCATION}, "count": 5})))
        .await;
    let (_, rule) = pair.admin(1, Method::POST, "/rules", Some(json!({"path": "/contacts/", "status": 503}))).await;
    let (_, listed) = pair.admin(0, Method::GET, "/rules", None).await;
    assert_eq!(listed["rules"].as_array().map(Vec::len), Some(1), "B's rule listed on A: {listed}");
    let (status, _) = pair.admin(0, Method::DELETE, &format!("/limits/injections/{}", injection["id"]), None).await;
    assert_eq!(status, 200, "B's injection withdrawn on A");
    let (status, _) = pair.admin(0, Method::DELETE, &format!("/rules/{}", rule["id"]), None).await;
    assert_eq!(status, 200, "B's rule withdrawn on A");
    for i in 0..4 {
        assert_eq!(pair.api(i, Method::GET, &path, &pair.pits[0], None).await.0, 200, "nothing left to refuse");
    }
    let (_, left) = pair.admin(1, Method::GET, "/limits/injections", None).await;
    assert_eq!(left["injections"], json!([]), "{left}");
}

#[tokio::test]
async fn a_reset_through_one_replica_starts_every_replica_over_from_the_fixture() {
    let Some(pair) = Pair::start("reset across replicas") else { return };
    let (status, created) = pair.new_contact(0, "gone@example.com").await;
    assert_eq!(status, 201, "{created}");
    let id = created["contact"]["id"].as_str().expect("an id").to_string();
    let (status, made) = pair
        .admin(
            1,
            Method::POST,
            "/integrations",
            Some(json!({"name": "extra", "owner": {"location": LOCATION}, "scopes": ["contacts.readonly"]})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let extra = made["token"].as_str().expect("a token").to_string();

    let (status, reset) = pair.admin(1, Method::POST, "/reset", None).await;
    assert_eq!(status, 200, "{reset}");
    let (status, _) = pair.api(0, Method::GET, &format!("/contacts/{id}"), &pair.pits[0], None).await;
    assert_eq!(status, 400, "the contact made before the reset is gone on A too");
    let (status, _) = pair.api(0, Method::GET, &format!("/contacts/?locationId={LOCATION}"), &extra, None).await;
    assert_eq!(status, 401, "an integration made after the start is gone on A too");
    let (status, again) = pair.new_contact(0, "gone@example.com").await;
    assert_eq!(status, 201, "the fixture's token works again, and the email is free: {again}");
}

#[tokio::test]
async fn the_journal_and_the_report_see_the_requests_of_both_replicas() {
    let Some(pair) = Pair::start("journal across replicas") else { return };
    for i in 0..6 {
        let (status, _) =
            pair.api(i, Method::GET, &format!("/contacts/?locationId={LOCATION}"), &pair.pits[0], None).await;
        assert_eq!(status, 200);
    }
    // B's writer runs within milliseconds; A reads its own at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    let count = loop {
        let (status, body) = pair.admin(0, Method::POST, "/journal/count", Some(json!({"path": "/contacts/"}))).await;
        assert_eq!(status, 200, "{body}");
        let count = body["count"].as_u64().unwrap_or(0);
        if count >= 6 || Instant::now() > deadline {
            break count;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(count, 6, "three requests on A and three on B");
    let (status, report) = pair.admin(1, Method::GET, "/report", None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["requests"].as_u64(), Some(6), "the report on B counts A's requests too: {report}");
}

#[tokio::test]
async fn with_redis_stopped_the_replicas_answer_503_and_serve_again_once_it_is_back() {
    let Some(mut pair) = Pair::start("Redis outage") else { return };
    let path = format!("/contacts/?locationId={LOCATION}");
    let (status, _) = pair.api(0, Method::GET, &path, &pair.pits[0], None).await;
    assert_eq!(status, 200);

    pair.redis.stop();
    for replica in [0, 1] {
        let (status, body) = pair.api(replica, Method::GET, &path, &pair.pits[0], None).await;
        assert_eq!(status, 503, "replica {replica} without Redis: {body}");
        assert_eq!(body["statusCode"], json!(503), "HighLevel's shape: {body}");
        assert!(body["message"].as_str().unwrap_or("").contains("shared store"), "{body}");
    }
    assert!(pair.a.child.try_wait().unwrap().is_none(), "replica A is still running");
    assert!(pair.b.child.try_wait().unwrap().is_none(), "replica B is still running");

    assert!(pair.redis.spawn(), "Redis starts again on its port");
    let deadline = Instant::now() + Duration::from_secs(10);
    for replica in [0, 1] {
        loop {
            let (status, body) = pair.api(replica, Method::GET, &path, &pair.pits[0], None).await;
            if status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "replica {replica} still answers {status} with Redis back: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A webhook handler on loopback answering 200 to everything it gets.
async fn handler() -> (String, tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, axum::body::Bytes)>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((headers, body));
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_of_requests_to_either_replica_are_delivered_once_each_and_signed_with_one_key() {
    use base64::Engine as _;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let (url, mut got) = handler().await;
    let Some(pair) = Pair::start_with("webhooks across replicas", Some(&url)) else { return };
    let key_line = |server: &Server| {
        server
            .first_lines
            .iter()
            .find_map(|l| l.split("WEBHOOK_SIGNATURE_PUBLIC_KEY=").nth(1))
            .map(|rest| rest.split_whitespace().next().unwrap_or_default().to_string())
    };
    let key = key_line(&pair.a).expect("A's banner names the public key");
    assert_eq!(key_line(&pair.b), Some(key.clone()), "both replicas print one key");
    let raw: [u8; 32] =
        base64::engine::general_purpose::STANDARD.decode(&key).unwrap().try_into().expect("a 32-byte key");
    let public = VerifyingKey::from_bytes(&raw).expect("an Ed25519 key");

    for i in 0..20 {
        let (status, body) = pair.new_contact(i, &format!("hook{i}@example.com")).await;
        assert_eq!(status, 201, "{body}");
    }
    let mut seen = std::collections::HashMap::new();
    for _ in 0..20 {
        let (headers, body) = tokio::time::timeout(Duration::from_secs(20), got.recv())
            .await
            .expect("a webhook in time")
            .expect("the handler runs");
        let signature = base64::engine::general_purpose::STANDARD
            .decode(headers.get("x-ghl-signature").expect("signed").to_str().unwrap())
            .unwrap();
        let signature = Signature::from_slice(&signature).expect("64 bytes");
        assert!(public.verify(&body, &signature).is_ok(), "one key verifies deliveries of both replicas");
        let payload: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(payload["type"], "ContactCreate");
        *seen.entry(payload["webhookId"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    for replica in [0, 1] {
        let (status, body) = pair.admin(replica, Method::POST, "/webhooks/flush", None).await;
        assert_eq!(status, 200, "{body}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(got.try_recv().is_err(), "nothing was delivered twice");
    assert_eq!(seen.len(), 20);
    let (status, listed) = pair.admin(1, Method::GET, "/webhooks/deliveries?state=delivered", None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["deliveries"].as_array().map(Vec::len), Some(20), "B lists A's deliveries too");
}

#[test]
fn a_replica_whose_redis_cannot_be_reached_does_not_start_and_says_why() {
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_ghl-mock"))
        .args(["serve", "--port", "0", "--store", &format!("redis://127.0.0.1:{port}/0")])
        .output()
        .expect("run ghl-mock");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the shared store at redis://127.0.0.1:"), "{stderr}");
}

/// The rate script decides every request as the in-memory limiter does:
/// random traffic (the clock moving on, sometimes back, across day
/// boundaries), both window kinds, with and without counting refusals.
#[tokio::test]
async fn the_shared_counters_decide_every_request_exactly_as_the_memory_limiter_does() {
    use ghl_mock::limits::{Limiter, Profile, RateKey, Settings, WindowKind};
    use ghl_mock::state::redis::{counters::SharedCounters, Store};
    use ghl_mock::state::Counters;
    let Some(redis) = Redis::start("rate script against the memory limiter") else { return };
    let profile = Profile { burst: 5, window_ms: 10_000, daily: 40 };
    let key = RateKey::Resource("loc".into());
    for (case, (window, count_refused)) in [
        (WindowKind::Rolling, false),
        (WindowKind::Fixed, false),
        (WindowKind::Rolling, true),
        (WindowKind::Fixed, true),
    ]
    .into_iter()
    .enumerate()
    {
        let settings = Settings { window, count_refused, ..Settings::default() };
        let time = ghl_mock::clock::LocalTime::new(true, 0);
        let store = Store::open(&redis.url(), &format!("case{case}"), time).await.expect("Redis answers");
        let shared = SharedCounters::new(store, settings.clone());
        let memory = Limiter::new(settings);
        let mut rng = fastrand::Rng::with_seed(case as u64 + 1);
        // Just before a day boundary, so the daily count resets on the way.
        let mut now: i64 = 86_400_000 * 20_000 - 60_000;
        for step in 0..600 {
            now += match rng.u32(0..100) {
                0..=4 => -(rng.i64(0..5_000)),
                5..=9 => rng.i64(10_000..30_000),
                _ => rng.i64(0..1_500),
            };
            match rng.u32(0..100) {
                0..=2 => {
                    memory.exhaust_daily(&key, profile, now);
                    shared.exhaust_daily(&key, profile, now).await.unwrap();
                }
                3..=6 => {
                    let remaining = rng.u32(0..7);
                    memory.set_burst_remaining(&key, profile, remaining, now);
                    shared.set_burst_remaining(&key, profile, remaining, now).await.unwrap();
                }
                7..=12 => {
                    let (m, s) = (memory.peek(&key, profile, now), shared.peek(&key, profile, now).await.unwrap());
                    assert_eq!(m, s, "case {case}, step {step}: peek at {now}");
                }
                _ => {
                    let m = memory.check(&key, profile, "pit:0", "/contacts/", now);
                    let s = shared.hit(&key, profile, "pit:0", "/contacts/", now).await.unwrap();
                    assert_eq!(m, s, "case {case}, step {step}: request at {now}");
                }
            }
        }
    }
}

/// The shared records answer every call as the memory store does: random
/// inserts (taken ids, duplicate emails, full locations), changes (some
/// refused, some growing past the byte bound), upserts, removals, finds and
/// pages of lists, over two locations.
#[tokio::test]
async fn the_shared_records_answer_every_call_exactly_as_the_memory_store_does() {
    use std::sync::Arc;

    use ghl_mock::error::ApiError;
    use ghl_mock::state::memory::Memory;
    use ghl_mock::state::redis::{records::SharedRecords, Store};
    use ghl_mock::state::{Bounds, Cursor, Indexing, NewRecord, Query, Record, Records};
    let Some(redis) = Redis::start("records against the memory store") else { return };
    let bounds = Bounds { max_records: 6, max_bytes: 2_000 };
    let memory = Memory::new(bounds, ghl_mock::World::default());
    let store = Store::open(&redis.url(), "records", ghl_mock::clock::LocalTime::new(true, 0)).await.unwrap();
    let shared = SharedRecords::new(store, bounds);
    fn email_key(r: &Record) -> Vec<String> {
        r.get("email").and_then(Value::as_str).map(|e| vec![format!("email:{e}")]).unwrap_or_default()
    }
    let indexing = Indexing { keys: email_key, unique: true };
    let kind: Arc<str> = Arc::from("contacts");
    let mut rng = fastrand::Rng::with_seed(7);
    let pick = |rng: &mut fastrand::Rng, n: usize| rng.usize(0..n);
    for step in 0..1_500 {
        let location = ["locA", "locB"][pick(&mut rng, 2)].to_string();
        let id = format!("c{}", pick(&mut rng, 30));
        let email = format!("e{}@x.io", pick(&mut rng, 12));
        let mut record = Record::new();
        record.insert("email".into(), json!(email));
        record.insert("pad".into(), json!("x".repeat(pick(&mut rng, 300))));
        let new = NewRecord {
            kind: kind.clone(),
            id: id.clone(),
            location: location.clone(),
            created_ms: pick(&mut rng, 50) as i64,
            record,
        };
        let grow = pick(&mut rng, 600);
        let other = format!("e{}@x.io", pick(&mut rng, 12));
        let change = move |r: &mut Record| -> Result<(), ApiError> {
            if grow > 560 {
                return Err(ApiError::BadRequest { message: "refused by the change".into(), meta: None });
            }
            r.insert("pad".into(), json!("y".repeat(grow)));
            if grow % 3 == 0 {
                r.insert("email".into(), json!(other));
            }
            Ok(())
        };
        let what = format!("step {step}");
        match pick(&mut rng, 10) {
            0..=2 => assert_eq!(
                memory.insert(new.clone(), indexing).await,
                shared.insert(new, indexing).await,
                "{what}: insert"
            ),
            3 => assert_eq!(
                memory.update(&kind, &id, &change, indexing).await,
                shared.update(&kind, &id, &change, indexing).await,
                "{what}: update"
            ),
            4 => {
                let keys = vec![format!("email:{email}")];
                assert_eq!(
                    memory.upsert(new.clone(), &keys, &change, indexing).await,
                    shared.upsert(new, &keys, &change, indexing).await,
                    "{what}: upsert"
                )
            }
            5 => assert_eq!(memory.remove(&kind, &id).await, shared.remove(&kind, &id).await, "{what}: remove"),
            6 => {
                let long = |r: &Record| r.get("pad").and_then(Value::as_str).is_some_and(|p| p.len() > 250);
                assert_eq!(
                    memory.remove_where(&kind, &location, &long).await,
                    shared.remove_where(&kind, &location, &long).await,
                    "{what}: remove_where"
                )
            }
            7 => {
                let key = format!("email:{email}");
                assert_eq!(
                    memory.find(&kind, &location, &key).await,
                    shared.find(&kind, &location, &key).await,
                    "{what}: find"
                )
            }
            _ => {
                let short = |r: &Record| r.get("pad").and_then(Value::as_str).is_some_and(|p| p.len() < 200);
                let after = (pick(&mut rng, 3) == 0)
                    .then(|| Cursor { created_ms: pick(&mut rng, 50) as i64, id: format!("c{}", pick(&mut rng, 30)) });
                let query = |filter| Query {
                    kind: "contacts",
                    location: &location,
                    filter,
                    after: after.clone(),
                    skip: step % 3,
                    limit: 1 + step % 5,
                    newest_first: step % 2 == 0,
                };
                let (m, s) = (memory.list(query(&short)).await.unwrap(), shared.list(query(&short)).await.unwrap());
                assert_eq!((m.items, m.total, m.more), (s.items, s.total, s.more), "{what}: list");
            }
        }
    }
    let mut everything = memory.all().await.unwrap();
    let mut shared_all = shared.all().await.unwrap();
    everything.sort_by(|a, b| a.id.cmp(&b.id));
    shared_all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(everything, shared_all, "the same records in the end");
}
