//! The control plane under `/__admin/`: what HighLevel offers in its UI for
//! private integrations (create, edit, rotate, cancel, expire, delete), clock
//! control, and reset. JSON in and out; every refusal is an [`ApiError`] and
//! changes nothing. Full tokens appear only in the answer that creates them.
//!
//! It is reachable only from loopback unless the user allows other hosts, and
//! wants a bearer admin token when one is configured.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::secret;
use crate::error::ApiError;
use crate::fixture::{check_scopes, IssuedToken};
use crate::limits::{Injection, Profile, RateKey};
use crate::world::{Owner, WorldError};
use crate::Mock;
use crate::{journal, report};
use axum::extract::rejection::QueryRejection;

pub(crate) type Shared = Arc<Mock>;
pub(crate) type Answer = Result<Response, Refusal>;

/// An [`ApiError`] rendered with the mock's fidelity settings.
pub struct Refusal(ApiError, Shared);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let trace = uuid::Uuid::new_v4().to_string();
        self.0.into_response_with(&self.1.config.fidelity, &trace)
    }
}

pub(crate) fn refuse(mock: &Shared, status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal(ApiError::Control { status, message: message.into() }, mock.clone())
}

fn world_refusal(mock: &Shared, e: WorldError) -> Refusal {
    let status = match e {
        WorldError::UnknownIntegration(_) => StatusCode::NOT_FOUND,
        WorldError::NotRotating | WorldError::AlreadyRotating | WorldError::TokenInUse(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    refuse(mock, status, e.to_string())
}

pub fn routes(mock: Shared) -> Router<Shared> {
    Router::new()
        .route("/health", get(health))
        .route("/world", get(world))
        .route("/integrations", get(list).post(create))
        .route("/integrations/{id}", get(show).patch(edit).delete(delete))
        .route("/integrations/{id}/rotate", post(rotate))
        .route("/integrations/{id}/cancel-rotation", post(cancel_rotation))
        .route("/integrations/{id}/expire-now", post(expire_now))
        .route("/clock", get(clock).post(set_clock))
        .route("/clock/advance", post(advance_clock))
        .route("/oauth/apps", get(list_apps).post(create_app))
        .route("/oauth/codes", post(issue_code))
        .route("/limits/injections", get(list_injections).post(inject))
        .route("/limits/injections/{id}", axum::routing::delete(remove_injection))
        .route("/limits/{resource}", get(show_limits).put(set_limits))
        .route("/limits/{resource}/exhaust-daily", post(exhaust_daily))
        .route("/limits/{resource}/burst-remaining", post(burst_remaining))
        .route("/rules", get(list_rules).post(add_rule))
        .route("/rules/{id}", axum::routing::delete(remove_rule))
        .route("/reset", post(reset))
        .merge(journal_routes()) // issue 8
        .merge(crate::webhooks::control::routes()) // issue 13
        .fallback(unknown)
        .method_not_allowed_fallback(wrong_method)
        // The guard reads bodies within the mock's own limit, answering in JSON.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(mock, guard))
}

async fn wrong_method(State(mock): State<Shared>, request: Request) -> Refusal {
    refuse(
        &mock,
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not a method of {}", request.method(), request.uri().path()),
    )
}

/// Loopback only unless allowed; the admin token when configured.
async fn guard(State(mock): State<Shared>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    if let Some(peer) = peer {
        if !is_loopback_ip(peer.ip()) && !mock.config.admin_remote {
            return refuse(
                &mock,
                StatusCode::FORBIDDEN,
                "the control plane answers loopback clients only (start with --admin-remote to allow others)",
            )
            .into_response();
        }
    }
    // A web page may reach a loopback port (CSRF), and a DNS name rebound to
    // 127.0.0.1 may too: both show in `Host` and `Origin`.
    if !mock.config.admin_remote {
        let header = |name| request.headers().get(name).map(|v| v.to_str().unwrap_or("\u{fffd}").to_string());
        if let Some(host) = header(axum::http::header::HOST).filter(|h| !is_loopback_authority(h)) {
            return refuse(
                &mock,
                StatusCode::FORBIDDEN,
                format!(
                    "the control plane answers requests addressed to this machine only, not to '{host}' \
                     (start with --admin-remote to allow others)"
                ),
            )
            .into_response();
        }
        let origin = header(axum::http::header::ORIGIN);
        if let Some(origin) = origin.filter(|o| !is_loopback_origin(o)) {
            return refuse(
                &mock,
                StatusCode::FORBIDDEN,
                format!("the control plane refuses calls from web pages of '{origin}' (start with --admin-remote to allow them)"),
            )
            .into_response();
        }
    }
    if let Some(expected) = &mock.config.admin_token {
        let given = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("Bearer "))
            .map(str::trim);
        if given.map(secret::hash) != Some(secret::hash(expected)) {
            return refuse(
                &mock,
                StatusCode::UNAUTHORIZED,
                "the control plane wants `Authorization: Bearer <admin token>`",
            )
            .into_response();
        }
    }
    // Bodies are read here, within the mock's own limit, so that an oversized
    // one gets a JSON refusal like every other.
    let limit = mock.config.limits.max_body_bytes;
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return refuse(&mock, StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over the limit of {limit} bytes"))
            .into_response();
    };
    // JSON only: a form or `text/plain` body is what a web page can send
    // without asking first.
    let media = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if !bytes.is_empty() && media.as_deref() != Some("application/json") {
        return refuse(
            &mock,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the control plane takes JSON bodies with Content-Type: application/json, not {}",
                media.as_deref().unwrap_or("(none)")
            ),
        )
        .into_response();
    }
    // Issue 12: on a shared store, what another replica changed (the clock,
    // the world, the rules) is seen here as well.
    if let Err(e) = mock.sync().await {
        return unavailable(&mock, e).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// `localhost`, `127.0.0.1`, `[::1]` (with or without a port).
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                authority
            }
        }),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(is_loopback_ip)
}

/// Loopback, IPv4 seen through an IPv6 socket (`::ffff:127.0.0.1`) included.
fn is_loopback_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
    }
}

/// `http://localhost:4010` and the like; `null` (a file or sandboxed page) is foreign.
fn is_loopback_origin(origin: &str) -> bool {
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| is_loopback_authority(rest.trim_end_matches('/')))
}

async fn unknown(State(mock): State<Shared>, request: Request) -> Refusal {
    refuse(
        &mock,
        StatusCode::NOT_FOUND,
        format!("no control-plane operation {} {}", request.method(), request.uri().path()),
    )
}

pub(crate) fn parse<T: DeserializeOwned>(mock: &Shared, body: &Bytes) -> Result<T, Refusal> {
    let text = if body.is_empty() { &b"{}"[..] } else { &body[..] };
    serde_json::from_slice(text).map_err(|e| refuse(mock, StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

pub(crate) fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

async fn health(State(mock): State<Shared>) -> Answer {
    ok(json!({"status": "ok", "operations": mock.spec.operations.len(), "now_ms": mock.clock.now_ms()}))
}

async fn world(State(mock): State<Shared>) -> Answer {
    let w = mock.world().await.map_err(|e| unavailable(&mock, e))?;
    let mut companies: Vec<_> = w.companies().cloned().collect();
    companies.sort_by(|a, b| a.id.cmp(&b.id));
    let mut locations: Vec<_> = w.locations().cloned().collect();
    locations.sort_by(|a, b| a.id.cmp(&b.id));
    ok(json!({"companies": companies, "locations": locations}))
}

async fn list(State(mock): State<Shared>) -> Answer {
    let w = mock.world().await.map_err(|e| unavailable(&mock, e))?;
    let mut views: Vec<_> = w.integrations().map(|pi| pi.view()).collect();
    views.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    ok(json!({"integrations": views}))
}

async fn show(State(mock): State<Shared>, Path(id): Path<String>) -> Answer {
    let view = view_of(&mock, &id).await?;
    ok(json!({"integration": view}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateIntegration {
    name: String,
    #[serde(default)]
    description: String,
    owner: Owner,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    token: Option<String>,
}

/// What the control plane shows of integration `id`.
async fn view_of(mock: &Shared, id: &str) -> Result<crate::world::IntegrationView, Refusal> {
    let world = mock.world().await.map_err(|e| unavailable(mock, e))?;
    world.integration(id).map(|pi| pi.view()).map_err(|e| world_refusal(mock, e))
}

/// The state could not be made durable.
pub(crate) fn unavailable(mock: &Shared, e: crate::error::ApiError) -> Refusal {
    refuse(mock, e.status(), e.to_string())
}

fn scopes(mock: &Shared, scopes: &[String]) -> Result<BTreeSet<String>, Refusal> {
    check_scopes(scopes, mock.known_scopes()).map_err(|e| world_refusal(mock, e))
}

async fn create(State(mock): State<Shared>, body: Bytes) -> Answer {
    let req: CreateIntegration = parse(&mock, &body)?;
    if req.name.trim().is_empty() {
        return Err(refuse(&mock, StatusCode::BAD_REQUEST, "`name` must not be empty"));
    }
    let scopes = scopes(&mock, &req.scopes)?;
    let (id, token) = mock
        .change_world(|w| {
            mock.with_rng(|rng| {
                w.create_integration(
                    &req.name,
                    &req.description,
                    req.owner.clone(),
                    scopes.clone(),
                    req.token.clone(),
                    rng,
                )
            })
        })
        .await
        .map_err(|e| unavailable(&mock, e))?
        .map_err(|e| world_refusal(&mock, e))?;
    let view = view_of(&mock, &id).await?;
    tracing::info!(integration = %id, token = %view.token_fingerprint, "private integration created");
    mock.tokens_changed(&[(&id, &token)]);
    Ok((StatusCode::CREATED, Json(json!({"integration": view, "token": token}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditIntegration {
    name: Option<String>,
    description: Option<String>,
    scopes: Option<Vec<String>>,
}

async fn edit(State(mock): State<Shared>, Path(id): Path<String>, body: Bytes) -> Answer {
    let req: EditIntegration = parse(&mock, &body)?;
    let scopes = req.scopes.as_deref().map(|s| scopes(&mock, s)).transpose()?;
    let view = mock
        .change_world(|w| {
            w.edit_integration(&id, req.name.clone(), req.description.clone(), scopes.clone()).map(|pi| pi.view())
        })
        .await
        .map_err(|e| unavailable(&mock, e))?
        .map_err(|e| world_refusal(&mock, e))?;
    ok(json!({"integration": view}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// `later` (seven days of grace, the default) or `now`.
    #[serde(default = "later")]
    expire: String,
}

fn later() -> String {
    "later".into()
}

async fn rotate(State(mock): State<Shared>, Path(id): Path<String>, body: Bytes) -> Answer {
    let req: Rotate = parse(&mock, &body)?;
    let grace = match req.expire.as_str() {
        "later" => true,
        "now" => false,
        other => {
            return Err(refuse(
                &mock,
                StatusCode::BAD_REQUEST,
                format!("`expire` must be \"later\" or \"now\", not \"{other}\""),
            ))
        }
    };
    let now = mock.clock.now_ms();
    let token = mock
        .change_world(|w| w.rotate(&id, grace, now))
        .await
        .map_err(|e| unavailable(&mock, e))?
        .map_err(|e| world_refusal(&mock, e))?;
    let view = view_of(&mock, &id).await?;
    tracing::info!(integration = %id, token = %view.token_fingerprint, grace, "private integration rotated");
    mock.tokens_changed(&[(&id, &token)]);
    ok(json!({"integration": view, "token": token}))
}

async fn cancel_rotation(State(mock): State<Shared>, Path(id): Path<String>) -> Answer {
    mock.change_world(|w| w.cancel_rotation(&id))
        .await
        .map_err(|e| unavailable(&mock, e))?
        .map_err(|e| world_refusal(&mock, e))?;
    mock.tokens_changed(&[]);
    show(State(mock), Path(id)).await
}

async fn expire_now(State(mock): State<Shared>, Path(id): Path<String>) -> Answer {
    mock.change_world(|w| w.expire_now(&id))
        .await
        .map_err(|e| unavailable(&mock, e))?
        .map_err(|e| world_refusal(&mock, e))?;
    show(State(mock), Path(id)).await
}

async fn delete(State(mock): State<Shared>, Path(id): Path<String>) -> Answer {
    mock.change_world(|w| w.delete_integration(&id))
        .await
        .map_err(|e| unavailable(&mock, e))?
        .map_err(|e| world_refusal(&mock, e))?;
    tracing::info!(integration = %id, "private integration deleted");
    mock.tokens_changed(&[]);
    ok(json!({"deleted": id}))
}

fn clock_view(mock: &Shared) -> Value {
    json!({"now_ms": mock.clock.now_ms(), "frozen": mock.clock.is_frozen()})
}

async fn clock(State(mock): State<Shared>) -> Answer {
    ok(clock_view(&mock))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetClock {
    now_ms: Option<i64>,
    frozen: Option<bool>,
}

async fn set_clock(State(mock): State<Shared>, body: Bytes) -> Answer {
    let req: SetClock = parse(&mock, &body)?;
    if req.now_ms.is_some_and(|n| n < 0) {
        return Err(refuse(&mock, StatusCode::BAD_REQUEST, "`now_ms` must not be negative"));
    }
    mock.clocks.set(req.frozen, req.now_ms).await.map_err(|e| unavailable(&mock, e.into()))?;
    mock.webhooks.wake(); // issue 13
    ok(clock_view(&mock))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    /// `7d`, `10s`, `1h30m`, `250ms`, or seconds.
    by: String,
}

async fn advance_clock(State(mock): State<Shared>, body: Bytes) -> Answer {
    let req: Advance = parse(&mock, &body)?;
    let ms = crate::clock::parse_duration_ms(&req.by).map_err(|e| refuse(&mock, StatusCode::BAD_REQUEST, e))?;
    mock.clocks.advance(ms).await.map_err(|e| unavailable(&mock, e.into()))?;
    mock.webhooks.wake(); // issue 13: due retries go out at once
    ok(clock_view(&mock))
}

async fn list_apps(State(mock): State<Shared>) -> Answer {
    let w = mock.world().await.map_err(|e| unavailable(&mock, e))?;
    let mut apps: Vec<Value> = w
        .apps
        .values()
        .map(|a| json!({"client_id": a.client_id, "name": a.name, "scopes": a.scopes, "webhooks": a.webhooks}))
        .collect();
    apps.sort_by(|a, b| a["client_id"].as_str().cmp(&b["client_id"].as_str()));
    ok(json!({"apps": apps}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApp {
    client_id: Option<String>,
    client_secret: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// Issue 13: `{url, events?, urls?}`.
    #[serde(default)]
    webhooks: Option<crate::webhooks::AppWebhooks>,
}

async fn create_app(State(mock): State<Shared>, body: Bytes) -> Answer {
    let req: CreateApp = parse(&mock, &body)?;
    scopes(&mock, &req.scopes)?;
    if let Some(hooks) = &req.webhooks {
        hooks.check().map_err(|e| refuse(&mock, StatusCode::BAD_REQUEST, e))?;
    }
    // HighLevel's shape, `<24 hex>-<8 chars>`: webhooks carry the part before the dash as `appId`.
    let client_id = req.client_id.unwrap_or_else(|| mock.with_rng(crate::webhooks::new_client_id));
    if mock.world().await.map_err(|e| unavailable(&mock, e))?.apps.contains_key(&client_id) {
        return Err(refuse(&mock, StatusCode::CONFLICT, format!("an app with client_id '{client_id}' exists")));
    }
    let app = crate::world::OAuthApp {
        client_id: client_id.clone(),
        client_secret: req.client_secret.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        name: req.name,
        scopes: req.scopes,
        webhooks: req.webhooks,
    };
    // The secret is shown once, here; the world keeps its digest.
    mock.change_world(|w| w.apps.insert(client_id.clone(), app.clone().kept()))
        .await
        .map_err(|e| unavailable(&mock, e))?;
    Ok((StatusCode::CREATED, Json(json!({"app": app}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueCode {
    client_id: String,
    owner: Owner,
    /// Default: every scope the app may be granted.
    scopes: Option<Vec<String>>,
    #[serde(default)]
    user_id: Option<String>,
}

/// Stands in for a user approving an app install: an authorization code.
async fn issue_code(State(mock): State<Shared>, body: Bytes) -> Answer {
    let req: IssueCode = parse(&mock, &body)?;
    let app_scopes =
        mock.world().await.map_err(|e| unavailable(&mock, e))?.apps.get(&req.client_id).map(|a| a.scopes.clone());
    let Some(app_scopes) = app_scopes else {
        return Err(refuse(&mock, StatusCode::NOT_FOUND, format!("no OAuth app with client_id '{}'", req.client_id)));
    };
    let wanted = req.scopes.unwrap_or_else(|| app_scopes.clone());
    scopes(&mock, &wanted)?;
    if let Some(extra) = wanted.iter().find(|s| !app_scopes.is_empty() && !app_scopes.contains(s)) {
        return Err(refuse(&mock, StatusCode::BAD_REQUEST, format!("the app may not be granted scope '{extra}'")));
    }
    let company_id = {
        let w = mock.world().await.map_err(|e| unavailable(&mock, e))?;
        match &req.owner {
            Owner::Location(l) => w.location(l).map(|l| l.company_id.clone()),
            Owner::Company(c) => w.company(c).map(|c| c.id.clone()),
        }
    };
    let Some(company_id) = company_id else {
        return Err(refuse(&mock, StatusCode::BAD_REQUEST, "the owner names no known location or company"));
    };
    let user_id = req.user_id.unwrap_or_else(|| mock.with_rng(crate::respond::generate::id));
    let grant =
        crate::auth::oauth::Grant { client_id: req.client_id, owner: req.owner, scopes: wanted, user_id, company_id };
    let code = mock.oauth.issue_code(grant, mock.clock.now_ms()).await.map_err(|e| unavailable(&mock, e.into()))?;
    Ok((StatusCode::CREATED, Json(json!({"code": code}))).into_response())
}

/// Which counter a limits call is about: a resource's PIT traffic, or an OAuth app's.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsQuery {
    client_id: Option<String>,
}

async fn limits_key(mock: &Shared, resource: &str, client_id: Option<String>) -> Result<(RateKey, Profile), Refusal> {
    let w = mock.world().await.map_err(|e| unavailable(mock, e))?;
    let owner = if w.location(resource).is_some() {
        Owner::Location(resource.to_string())
    } else if w.company(resource).is_some() {
        Owner::Company(resource.to_string())
    } else {
        return Err(refuse(mock, StatusCode::NOT_FOUND, format!("no location or company with id '{resource}'")));
    };
    let profile = w.rate_profile(&owner);
    let key = match client_id {
        Some(client_id) => RateKey::App { client_id, resource: resource.to_string() },
        None => RateKey::Resource(resource.to_string()),
    };
    Ok((key, profile))
}

async fn limits_view(mock: &Shared, key: &RateKey, profile: Profile) -> Result<Value, Refusal> {
    let headers =
        mock.counters.peek(key, profile, mock.clock.now_ms()).await.map_err(|e| unavailable(mock, e.into()))?;
    let pairs: serde_json::Map<String, Value> =
        headers.pairs().into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
    Ok(json!({"profile": profile, "headers": pairs}))
}

async fn show_limits(State(mock): State<Shared>, Path(resource): Path<String>, Query(q): Query<LimitsQuery>) -> Answer {
    let (key, profile) = limits_key(&mock, &resource, q.client_id).await?;
    ok(limits_view(&mock, &key, profile).await?)
}

async fn set_limits(State(mock): State<Shared>, Path(resource): Path<String>, body: Bytes) -> Answer {
    let profile: Profile = parse(&mock, &body)?;
    if profile.burst == 0 || profile.window_ms == 0 || profile.daily == 0 {
        return Err(refuse(&mock, StatusCode::BAD_REQUEST, "`burst`, `window_ms` and `daily` must be positive"));
    }
    limits_key(&mock, &resource, None).await?;
    mock.change_world(|w| w.rate_limits.insert(resource.clone(), profile)).await.map_err(|e| unavailable(&mock, e))?;
    let (key, profile) = limits_key(&mock, &resource, None).await?;
    ok(limits_view(&mock, &key, profile).await?)
}

async fn exhaust_daily(State(mock): State<Shared>, Path(resource): Path<String>, body: Bytes) -> Answer {
    let q: LimitsQuery = parse(&mock, &body)?;
    let (key, profile) = limits_key(&mock, &resource, q.client_id).await?;
    mock.counters.exhaust_daily(&key, profile, mock.clock.now_ms()).await.map_err(|e| unavailable(&mock, e.into()))?;
    ok(limits_view(&mock, &key, profile).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BurstRemaining {
    remaining: u32,
    client_id: Option<String>,
}

async fn burst_remaining(State(mock): State<Shared>, Path(resource): Path<String>, body: Bytes) -> Answer {
    let req: BurstRemaining = parse(&mock, &body)?;
    let (key, profile) = limits_key(&mock, &resource, req.client_id).await?;
    if req.remaining > profile.burst {
        return Err(refuse(
            &mock,
            StatusCode::BAD_REQUEST,
            format!("`remaining` must be at most the burst of {}", profile.burst),
        ));
    }
    mock.counters
        .set_burst_remaining(&key, profile, req.remaining, mock.clock.now_ms())
        .await
        .map_err(|e| unavailable(&mock, e.into()))?;
    ok(limits_view(&mock, &key, profile).await?)
}

async fn list_injections(State(mock): State<Shared>) -> Answer {
    ok(json!({"injections": mock.counters.injections().await.map_err(|e| unavailable(&mock, e.into()))?}))
}

/// "The next N requests of this location, token or path get 429". A token
/// may be given whole (it is kept only as its fingerprint) or as a fingerprint.
async fn inject(State(mock): State<Shared>, body: Bytes) -> Answer {
    let rule: Injection = parse(&mock, &body)?;
    if rule.count == 0 {
        return Err(refuse(&mock, StatusCode::BAD_REQUEST, "`count` must be at least 1"));
    }
    let id = mock.inject(rule).await.map_err(|e| unavailable(&mock, e))?;
    let injections = mock.counters.injections().await.map_err(|e| unavailable(&mock, e.into()))?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "injections": injections}))).into_response())
}

async fn remove_injection(State(mock): State<Shared>, Path(id): Path<u64>) -> Answer {
    if !mock.counters.remove_injection(id).await.map_err(|e| unavailable(&mock, e.into()))? {
        return Err(refuse(&mock, StatusCode::NOT_FOUND, format!("no injected rule with id {id}")));
    }
    ok(json!({"removed": id}))
}

async fn list_rules(State(mock): State<Shared>) -> Answer {
    ok(json!({"rules": mock.scenarios.list().await.map_err(|e| unavailable(&mock, e.into()))?}))
}

/// "The next N calls of this method and path get this status, body, delay or fault."
async fn add_rule(State(mock): State<Shared>, body: Bytes) -> Answer {
    let rule: crate::respond::control::Rule = parse(&mock, &body)?;
    rule.check().map_err(|e| refuse(&mock, StatusCode::BAD_REQUEST, e))?;
    let id = mock.scenarios.add(rule).await.map_err(|e| unavailable(&mock, e.into()))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "rules": mock.scenarios.list().await.map_err(|e| unavailable(&mock, e.into()))?})),
    )
        .into_response())
}

async fn remove_rule(State(mock): State<Shared>, Path(id): Path<u64>) -> Answer {
    if !mock.scenarios.remove(id).await.map_err(|e| unavailable(&mock, e.into()))? {
        return Err(refuse(&mock, StatusCode::NOT_FOUND, format!("no rule with id {id}")));
    }
    ok(json!({"removed": id}))
}

async fn reset(State(mock): State<Shared>) -> Answer {
    let tokens = mock.reset().await.map_err(|e| refuse(&mock, e.status(), e.to_string()))?;
    ok(json!({"tokens": tokens.iter().map(issued_json).collect::<Vec<_>>()}))
}

fn issued_json(t: &IssuedToken) -> Value {
    json!({"integration_id": t.integration_id, "name": t.name, "owner": t.owner, "token": t.token})
}

// Issue 8: the request journal and the client behaviour report.

fn journal_routes() -> Router<Shared> {
    Router::new()
        .route("/journal", get(list_journal).delete(clear_journal))
        .route("/journal/count", post(count_journal))
        .route("/report", get(client_report))
}

/// Entries listed when `limit` is not given.
const JOURNAL_DEFAULT_LIMIT: usize = 1000;

/// `GET /__admin/journal?…`: the fields of [`journal::Filter`] and `limit`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    method: Option<String>,
    path: Option<String>,
    status: Option<journal::StatusMatch>,
    token: Option<String>,
    location: Option<String>,
    refused: Option<journal::Refused>,
    since: Option<i64>,
    /// The newest N matching entries (default 1000).
    limit: Option<usize>,
}

/// `GET /__admin/report?…`: which requests to judge, and how to print the report.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// `json` (the default), `text` or `junit`.
    format: Option<String>,
    method: Option<String>,
    path: Option<String>,
    token: Option<String>,
    location: Option<String>,
    since: Option<i64>,
}

pub(crate) fn query<T>(mock: &Shared, q: Result<Query<T>, QueryRejection>) -> Result<T, Refusal> {
    q.map(|Query(q)| q).map_err(|e| refuse(mock, StatusCode::BAD_REQUEST, e.body_text()))
}

fn normalized(mock: &Shared, filter: journal::Filter) -> Result<journal::Filter, Refusal> {
    filter.normalized().map_err(|e| refuse(mock, StatusCode::BAD_REQUEST, e))
}

fn entry_json(mock: &Shared, e: &journal::Entry) -> Value {
    e.to_json(e.operation.and_then(|i| mock.spec.operation(i)).map(|op| op.id.as_str()))
}

async fn list_journal(State(mock): State<Shared>, q: Result<Query<JournalQuery>, QueryRejection>) -> Answer {
    let q = query(&mock, q)?;
    let filter = normalized(
        &mock,
        journal::Filter {
            method: q.method,
            path: q.path,
            status: q.status,
            token: q.token,
            location: q.location,
            refused: q.refused,
            since: q.since,
        },
    )?;
    let entries = mock
        .journal
        .newest(&filter, q.limit.unwrap_or(JOURNAL_DEFAULT_LIMIT))
        .await
        .map_err(|e| unavailable(&mock, e.into()))?;
    let matched = mock.journal.count(&filter).await.map_err(|e| unavailable(&mock, e.into()))?;
    let stats = mock.journal.stats().await.map_err(|e| unavailable(&mock, e.into()))?;
    // Written as it is sent, a few hundred entries at a time: ten thousand
    // entries never become one JSON tree and one string in memory.
    let head = json!({"matched": matched, "journal": stats}).to_string();
    let head = format!("{},\"entries\":[", head.strip_suffix('}').unwrap_or(&head));
    let mut batches = Vec::new();
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        batches.push(entries.by_ref().take(256).collect::<Vec<_>>());
    }
    let chunks = std::iter::once(Bytes::from(head))
        .chain(batches.into_iter().enumerate().map(move |(i, batch)| {
            let mut out = Vec::new();
            for (j, entry) in batch.iter().enumerate() {
                if i > 0 || j > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut out, &entry_json(&mock, entry));
            }
            Bytes::from(out)
        }))
        .chain(std::iter::once(Bytes::from_static(b"]}")));
    let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks.map(Ok::<_, std::convert::Infallible>)));
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn clear_journal(State(mock): State<Shared>) -> Answer {
    let cleared = mock.journal.stats().await.map_err(|e| unavailable(&mock, e.into()))?.held;
    mock.journal.clear().await.map_err(|e| unavailable(&mock, e.into()))?;
    ok(json!({"cleared": cleared}))
}

/// WireMock-style: how many journaled requests match a pattern.
async fn count_journal(State(mock): State<Shared>, body: Bytes) -> Answer {
    let filter = normalized(&mock, parse(&mock, &body)?)?;
    let count = mock.journal.count(&filter).await.map_err(|e| unavailable(&mock, e.into()))?;
    ok(json!({"count": count}))
}

async fn client_report(State(mock): State<Shared>, q: Result<Query<ReportQuery>, QueryRejection>) -> Answer {
    let q = query(&mock, q)?;
    let (webhooks_of, webhooks_since) = (q.location.clone(), q.since);
    let filter = normalized(
        &mock,
        journal::Filter {
            method: q.method,
            path: q.path,
            token: q.token,
            location: q.location,
            since: q.since,
            ..journal::Filter::default()
        },
    )?;
    let entries = mock.journal.entries(&filter).await.map_err(|e| unavailable(&mock, e.into()))?;
    let settings = report::Settings::of(&mock);
    let mut built = report::build(&entries, &settings);
    built.dropped = mock.journal.stats().await.map_err(|e| unavailable(&mock, e.into()))?.dropped;
    // Issue 13: the webhook handler's findings, over the deliveries of the same location and time.
    let about = crate::state::deliveries::DeliveryFilter { location: webhooks_of, ..Default::default() };
    let mut deliveries =
        mock.webhooks.store().list(&about, usize::MAX).await.map_err(|e| unavailable(&mock, e.into()))?;
    if let Some(since) = webhooks_since {
        deliveries.retain(|d| d.created_ms >= since);
    }
    report::add_webhooks(&mut built, &deliveries, mock.webhooks.settings().slow_ms, &settings);
    let (content_type, body) = match q.format.as_deref().unwrap_or("json") {
        "json" => return ok(serde_json::to_value(&built).unwrap_or(Value::Null)),
        "text" => ("text/plain; charset=utf-8", built.text()),
        "junit" => ("application/xml; charset=utf-8", built.junit()),
        other => {
            return Err(refuse(
                &mock,
                StatusCode::BAD_REQUEST,
                format!("`format` must be json, text or junit, not '{other}'"),
            ))
        }
    };
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response())
}
