//! The request path, once, in order:
//! route → authenticate → version → token kind → scope → location →
//! rate limit → validate → respond. Each stage is a function that returns a
//! typed refusal; this module only sequences them and adds the headers every
//! answer carries.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::Value;

use crate::auth::check::{self, Principal, TokenKind};
use crate::auth::{secret, AuthError};
use crate::error::ApiError;
use crate::journal::{Answered, Refused, Seen};
use crate::limits::{self, RateHeaders};
use crate::respond::control::{self, Preference};
use crate::spec::{Match, Operation};
use crate::Mock;

pub async fn handle(State(mock): State<Arc<Mock>>, request: Request) -> Response {
    let trace_id = trace_id();
    let method = request.method().clone();
    let side = request.extensions().get::<crate::conns::ClientSide>().cloned();
    let started = std::time::Instant::now();
    // Logged by fingerprint only; computed only when someone listens.
    let logged = tracing::enabled!(tracing::Level::DEBUG).then(|| {
        let token = check::bearer(request.headers()).map(secret::fingerprint).unwrap_or_else(|_| "none".into());
        (secret::redact_path(request.uri().path()).into_owned(), token)
    });
    // Issue 8: this request's journal record, finished below (or on drop, if the client hangs up first).
    let mut journaled =
        crate::journal::begin(&*mock.journal, mock.clock.now_ms(), &method, request.uri().path(), request.headers());
    let mut rate = RateState::default();
    let mut refused = None;
    let has_body = request.headers().get(header::TRANSFER_ENCODING).is_some()
        || request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0");
    let mut body_read = false;
    let mut response = match answer(&mock, request, &mut rate, &mut journaled.seen, &trace_id, &mut body_read).await {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(status = e.status().as_u16(), reason = %e, "refused");
            refused = Some(Refused::of(&e, rate.refusal));
            e.into_response_with(&mock.config.fidelity, &trace_id)
        }
    };
    if let Some((path, token)) = logged {
        tracing::debug!(%method, path, token, status = response.status().as_u16(), trace_id, "request");
    }
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    let headers = response.headers_mut();
    // Refused before its body was read: the connection cannot carry another
    // request (the body's bytes are still in it), so the client is told.
    if has_body && !body_read {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(rate_headers) = &rate.headers {
        for (name, value) in rate_headers.header_values() {
            headers.insert(name, HeaderValue::from(value));
        }
    }
    if let Some(secs) = rate.retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if let (Some(name), Ok(value)) = (&mock.trace_header, HeaderValue::from_str(&trace_id)) {
        headers.insert(name.clone(), value);
    }
    // Issue 8: the one journal record of this request.
    journaled.finish(Answered {
        status: response.status().as_u16(),
        refused,
        rate: rate.headers,
        retry_after_secs: rate.retry_after_secs,
        fault: response.extensions().get::<control::Fault>().copied(),
        // A client can only give up on a request that takes a while; for a
        // quick one the check (a system call) is not worth making.
        closed_early: side.is_some_and(|side| started.elapsed() >= CLOSED_EARLY_AFTER && side.has_closed()),
    });
    response
}

/// Requests answered faster than this are not checked for a client that
/// shut its side first (the journal's `closed_early`).
const CLOSED_EARLY_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

/// A refusal before the limiter counts: it shows the caller's rate-limit
/// headers as they stand.
async fn before_limiter(
    mock: &Mock,
    principal: &Option<(Principal, crate::limits::RateKey, crate::limits::Profile)>,
    rate: &mut RateState,
    e: ApiError,
) -> ApiError {
    if let Some((_, key, profile)) = principal {
        rate.headers = current_rate(mock, key, *profile).await;
    }
    e
}

/// A random UUID v4 for the trace header. Not a secret, so drawn from the
/// thread's fast generator rather than the operating system's (a system call
/// for every request showed in the profile).
fn trace_id() -> String {
    let bytes: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// The caller's rate-limit headers as they stand, without counting.
async fn current_rate(
    mock: &Mock,
    key: &crate::limits::RateKey,
    profile: crate::limits::Profile,
) -> Option<RateHeaders> {
    if !mock.config.rate_limits {
        return None;
    }
    // A store that cannot answer leaves the headers off; the refusal still goes out.
    mock.counters.peek(key, profile, mock.clock.now_ms()).await.ok()
}

/// What the rate-limit stage leaves for the answer's headers.
#[derive(Default)]
struct RateState {
    headers: Option<RateHeaders>,
    retry_after_secs: Option<u64>,
    /// Issue 8: why the limiter refused, for the journal.
    refusal: Option<limits::Refusal>,
}

/// The parts of a request every stage may read.
struct Incoming<'a> {
    op: &'a Operation,
    path_params: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

async fn answer(
    mock: &Mock,
    request: Request,
    rate: &mut RateState,
    seen: &mut Seen,
    trace_id: &str,
    body_read: &mut bool,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // The documented bound on headers, however they arrived: hyper's buffer
    // bound catches headers trickled in, not a large block read at once.
    let limit = mock.config.limits.max_header_bytes;
    if parts.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>() > limit {
        return Err(ApiError::HeadersTooLarge { limit });
    }
    let method = parts.method.clone();
    let path = parts.uri.path();
    let version = parts.headers.get("version").and_then(|v| v.to_str().ok());
    let any_case = mock.config.fidelity.case_insensitive_paths;
    let serve_removed = mock.config.fidelity.removed_in_v3 == crate::config::RemovedInV3::Serve;
    let (index, raw_params) = match mock.spec.route(&method, path, any_case, version, serve_removed) {
        Match::Found(index, params) => (index, params),
        Match::RemovedInV3 => {
            let endpoint = parts.uri.path_and_query().map_or(path, |p| p.as_str()).to_string();
            return Err(ApiError::RemovedInV3 { endpoint });
        }
        Match::WrongMethod(allowed) => {
            return Err(match mock.config.fidelity.wrong_method {
                crate::config::WrongMethod::MethodNotAllowed => ApiError::MethodNotAllowed { allowed },
                crate::config::WrongMethod::NotFound => {
                    ApiError::NotFound { method: method.to_string(), path: path.to_string() }
                }
            })
        }
        Match::NotFound => return Err(ApiError::NotFound { method: method.to_string(), path: path.to_string() }),
    };
    let Some(op) = mock.spec.operation(index) else {
        return Err(ApiError::NotFound { method: method.to_string(), path: path.to_string() });
    };
    seen.operation(index);
    let incoming = Incoming {
        op,
        path_params: raw_params.into_iter().map(|(k, v)| (k, decode(&v))).collect(),
        query: parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
    };

    let world = mock.world().await?;
    let mut principal = None;
    if secured(op, &mock.config.fidelity) {
        seen.named_location(|| check::named_locations(op, &incoming.path_params, &incoming.query, None).pop());
        let who = authenticate(mock, &world, &parts.headers).await?;
        seen.token(&who.fingerprint);
        // From here on every answer shows the caller's rate-limit state: a
        // refusal before the limiter counts shows it as it stands (looked up
        // only then, to keep the successful path to one limiter call).
        let (key, profile) = mock.rate_key(&world, &who);
        seen.location(key.resource());
        let checked = check::check_version(&parts.headers, op, &mock.config.fidelity)
            .and_then(|()| check::check_security(op, &who));
        if let Err(e) = checked {
            rate.headers = current_rate(mock, &key, profile).await;
            return Err(e.into());
        }
        principal = Some((who, key, profile));
    }
    let bytes = match read_body(body, &mock.config.limits).await {
        Ok(bytes) => bytes,
        Err(e) => return Err(before_limiter(mock, &principal, rate, e).await),
    };
    *body_read = true;
    seen.body(&bytes);
    let body = match multipart_boundary(&parts.headers) {
        Some(boundary) => read_multipart(op, boundary, bytes.clone()).await,
        None => parse_body(&parts.headers, &bytes, mock.config.limits.max_json_depth),
    };

    if let Some((who, _, _)) = &principal {
        let named = check::named_locations(
            op,
            &incoming.path_params,
            &incoming.query,
            body.as_ref().ok().and_then(Option::as_ref),
        );
        if let Err(e) = check::check_location(who, &named, &world) {
            return Err(before_limiter(mock, &principal, rate, e.into()).await);
        }
        let companies = check::named_companies(
            op,
            &incoming.path_params,
            &incoming.query,
            body.as_ref().ok().and_then(Option::as_ref),
        );
        if let Err(e) = check::check_company(who, &companies, &world, &mock.config.fidelity.foreign_company_message) {
            return Err(before_limiter(mock, &principal, rate, e.into()).await);
        }
    }
    if let (Some((who, key, profile)), true) = (&principal, mock.config.rate_limits) {
        let decision = mock.counters.hit(key, *profile, &who.fingerprint, path, mock.clock.now_ms()).await?;
        rate.headers = Some(decision.headers);
        rate.refusal = decision.reason;
        if !decision.allowed {
            if mock.config.fidelity.retry_after {
                rate.retry_after_secs = Some(decision.retry_after_secs);
            }
            return Err(ApiError::RateLimited);
        }
    }

    let body = body?;
    if mock.config.fidelity.validate_requests {
        check_content_type(op, &parts.headers, &bytes)?;
        crate::validate::request(
            op,
            &incoming.path_params,
            &incoming.query,
            &parts.headers,
            body.as_ref(),
            mock.config.fidelity.unknown_properties,
        )?;
    }

    if let Some(controlled) = controlled(mock, &incoming, &parts.headers, path).await {
        return Ok(controlled);
    }

    let who = principal.as_ref().map(|(who, _, _)| who);
    if let Some(answer) = owned_answer(mock, &world, &incoming, who, body.as_ref()).await? {
        return Ok(json_response(StatusCode::OK, Bytes::from(serde_json::to_vec(&answer).unwrap_or_default())));
    }
    if let Some(binding) = mock.spec.resources.binding(index) {
        let Some(resource) = mock.spec.resources.resource(binding.resource) else {
            return Ok(json_response(StatusCode::OK, echoed(&incoming, body.as_ref())));
        };
        let call = crate::resources::Call {
            mock,
            op,
            binding,
            resource,
            family: crate::resources::Family::of(&resource.kind),
            who,
            world: &world,
            path_params: &incoming.path_params,
            query: &incoming.query,
            body: body.as_ref(),
            host: parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()),
            path,
            trace_id,
        };
        let (status, body) = match crate::resources::answer(&call).await? {
            (status, crate::resources::Reply::Ready(bytes)) => (status, bytes),
            (status, crate::resources::Reply::Value(mut answer)) => {
                if let Some(validator) = &op.success.validator {
                    crate::resources::conform(&call, &mut answer, validator);
                }
                (status, serde_json::to_vec(&answer).unwrap_or_default())
            }
        };
        return Ok(json_response(status, Bytes::from(body)));
    }
    let status = StatusCode::from_u16(incoming.op.success.status).unwrap_or(StatusCode::OK);
    Ok(json_response(status, echoed(&incoming, body.as_ref())))
}

/// Whether a call needs a token: an operation whose spec names its security,
/// and (by default) one whose spec names none, but for the token exchange.
fn secured(op: &crate::spec::Operation, fidelity: &crate::config::Fidelity) -> bool {
    !op.security.is_empty()
        || fidelity.secure_unsecured_operations && !(op.method == axum::http::Method::POST && op.path == "/oauth/token")
}

/// The operation's default body with the request's own values echoed in,
/// unless that would break the response schema.
fn echoed(incoming: &Incoming<'_>, body: Option<&Value>) -> Bytes {
    let op = incoming.op;
    let mut values: Vec<(String, Value)> =
        incoming.path_params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    for (k, v) in &incoming.query {
        match k.as_str() {
            "locationId" | "location_id" => values.push(("locationId".into(), Value::String(v.clone()))),
            "companyId" => values.push((k.clone(), Value::String(v.clone()))),
            _ => {}
        }
    }
    if let Some(Value::Object(fields)) = body {
        values.extend(
            fields.iter().filter(|(_, v)| !v.is_object() && !v.is_array()).map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    if values.is_empty() || op.success.schema.is_none() {
        return op.success.body.clone();
    }
    if let Some(bytes) = op.echo_memo.get(&values) {
        return bytes;
    }
    let Ok(mut answer) = serde_json::from_slice::<Value>(&op.success.body) else { return op.success.body.clone() };
    crate::respond::echo(&mut answer, &values);
    let valid = op.success.validator.as_ref().is_none_or(|v| v.is_valid(&answer));
    let bytes = match serde_json::to_vec(&answer) {
        Ok(bytes) if valid => Bytes::from(bytes),
        _ => op.success.body.clone(),
    };
    op.echo_memo.put(values, bytes.clone());
    bytes
}

/// A control-plane rule or a `Prefer` choice, when one applies to this call.
/// A rule's delay is waited here; a rule that only delays lets the call go on.
async fn controlled(
    mock: &Mock,
    incoming: &Incoming<'_>,
    headers: &axum::http::HeaderMap,
    path: &str,
) -> Option<Response> {
    let op = incoming.op;
    let prefer = headers.get("prefer").and_then(|v| v.to_str().ok());
    let mut preference = Preference::read(prefer, &incoming.query);
    if let Some(rule) = mock.scenarios.take(op.method.as_str(), path).await.ok().flatten() {
        if let Some(delay) = rule.latency() {
            tokio::time::sleep(delay).await;
        }
        if rule.status.is_some() || rule.body.is_some() || rule.fault.is_some() {
            preference = Preference { code: rule.status, ..Preference::default() };
            let (status, body) = control::preferred(op, &preference)
                .map(|(s, b)| (s, Bytes::from(serde_json::to_vec(&b).unwrap_or_default())))
                .unwrap_or((op.success.status, op.success.body.clone()));
            let body =
                rule.body.as_ref().map(|b| Bytes::from(serde_json::to_vec(b).unwrap_or_default())).unwrap_or(body);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            return Some(match rule.fault {
                Some(fault) => {
                    let mut response = control::faulty(fault, status, body);
                    // Issue 8: the journal records the answer as broken.
                    response.extensions_mut().insert(fault);
                    response
                }
                None => json_response(status, body),
            });
        }
    }
    let (status, body) = control::preferred(op, &preference)?;
    Some(json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
    ))
}

/// A body must come in a media type the operation accepts.
fn check_content_type(op: &Operation, headers: &axum::http::HeaderMap, bytes: &Bytes) -> Result<(), ApiError> {
    let Some(spec_body) = &op.body else { return Ok(()) };
    if bytes.is_empty() || spec_body.content_types.is_empty() {
        return Ok(());
    }
    let given = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = given.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if spec_body.content_types.iter().any(|t| t.eq_ignore_ascii_case(&media) || t == "*/*") {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType {
        content_type: if given.is_empty() { "(none)".into() } else { given.to_string() },
    })
}

/// Answers of the operations the mock owns state for, by method and path.
async fn owned_answer(
    mock: &Mock,
    world: &crate::World,
    incoming: &Incoming<'_>,
    who: Option<&Principal>,
    body: Option<&Value>,
) -> Result<Option<Value>, ApiError> {
    let op = incoming.op;
    if op.method != Method::POST {
        return Ok(None);
    }
    match (op.path.trim_end_matches('/'), who) {
        ("/oauth/token", _) => crate::respond::oauth::token(mock, op, world, body).await.map(Some),
        ("/oauth/locationToken" | "/oauth/location-token", Some(who)) => {
            crate::respond::oauth::location_token(mock, op, who, body).await.map(Some)
        }
        _ => Ok(None),
    }
}

/// Steps 2–5: who the bearer token stands for.
async fn authenticate(
    mock: &Mock,
    world: &crate::World,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, AuthError> {
    let token = check::bearer(headers)?;
    if token.starts_with("pit-") {
        let holder = world.pit(token, mock.clock.now_ms()).ok_or(AuthError::InvalidPit)?;
        return Ok(Principal {
            kind: TokenKind::Pit,
            owner: holder.owner,
            scopes: holder.scopes,
            fingerprint: holder.fingerprint,
            client_id: None,
            user_id: None,
        });
    }
    let claims = mock.oauth.verify_access(token, mock.clock.now_ms()).await?;
    let owner = claims.owner().ok_or(AuthError::InvalidJwt)?;
    Ok(Principal {
        kind: TokenKind::OAuth,
        owner,
        scopes: std::sync::Arc::new(claims.oauth_meta.scopes.into_iter().collect()),
        fingerprint: secret::fingerprint(token),
        client_id: Some(claims.oauth_meta.client),
        user_id: Some(claims.user_id),
    })
}

/// The body as JSON: JSON bodies as they are, form bodies as an object of
/// strings, other media types not at all. A JSON body that cannot be read is
/// a 400, as HighLevel's body parser answers.
fn parse_body(headers: &axum::http::HeaderMap, bytes: &Bytes, max_depth: usize) -> Result<Option<Value>, ApiError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let map: serde_json::Map<String, Value> =
            form_urlencoded::parse(bytes).into_owned().map(|(k, v)| (k, Value::String(v))).collect();
        return Ok(Some(Value::Object(map)));
    }
    if !(content_type.is_empty() || content_type.contains("json")) {
        return Ok(None);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::MalformedBody { message: format!("body is not UTF-8 text ({e})") })?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| ApiError::MalformedBody { message: format!("Unexpected JSON: {e}") })?;
    if crate::validate::depth(&value) > max_depth {
        return Err(ApiError::MalformedBody { message: format!("JSON is nested deeper than {max_depth} levels") });
    }
    Ok(Some(value))
}

/// The boundary of a `multipart/form-data` body, when the request has one
/// (a multipart type without a boundary is left to `parse_body`, which
/// ignores it, and to the validator, which finds the body missing).
fn multipart_boundary(headers: &axum::http::HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    if !content_type.trim_start().to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    multer::parse_boundary(content_type).ok()
}

/// Issue 14: a `multipart/form-data` body as an object of its text fields,
/// typed by the operation's schema, so that it is validated and
/// location-checked as JSON bodies are. File parts are the upload's, not the
/// body's: NestJS's file interceptor takes them out before its validation
/// pipe sees the body.
async fn read_multipart(op: &Operation, boundary: String, bytes: Bytes) -> Result<Option<Value>, ApiError> {
    let malformed = |e: multer::Error| ApiError::MalformedBody { message: format!("malformed multipart body: {e}") };
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_string();
        let is_file = field.file_name().is_some();
        let data = field.bytes().await.map_err(malformed)?;
        if !is_file {
            fields.push((name, String::from_utf8_lossy(&data).into_owned()));
        }
    }
    let schema = op.body.as_ref().and_then(|b| b.schema.as_deref());
    Ok(Some(crate::validate::form_fields(schema, fields)))
}

async fn read_body(body: Body, limits: &crate::config::Limits) -> Result<Bytes, ApiError> {
    let limit = limits.max_body_bytes;
    let deadline = std::time::Duration::from_millis(limits.body_timeout_ms);
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::PayloadTooLarge { limit }),
        Err(_) => Err(ApiError::RequestTimeout),
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}
