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
use crate::spec::{Match, Operation};
use crate::Mock;

pub async fn handle(State(mock): State<Arc<Mock>>, request: Request) -> Response {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let method = request.method().clone();
    // Logged by fingerprint only; computed only when someone listens.
    let logged = tracing::enabled!(tracing::Level::DEBUG).then(|| {
        let token = check::bearer(request.headers())
            .map(secret::fingerprint)
            .unwrap_or_else(|_| "none".into());
        (request.uri().path().to_string(), token)
    });
    let mut response = match answer(&mock, request).await {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(status = e.status().as_u16(), reason = %e, "refused");
            e.into_response_with(&mock.config.fidelity, &trace_id)
        }
    };
    if let Some((path, token)) = logged {
        tracing::debug!(%method, path, token, status = response.status().as_u16(), trace_id, "request");
    }
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    let name = axum::http::HeaderName::from_bytes(mock.config.fidelity.trace_header.as_bytes());
    if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(&trace_id)) {
        response.headers_mut().insert(name, value);
    }
    response
}

/// The parts of a request every stage may read.
struct Incoming<'a> {
    op: &'a Operation,
    path_params: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

async fn answer(mock: &Mock, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path();
    let (index, raw_params) = match mock.spec.find(&method, path) {
        Match::Found(index, params) => (index, params),
        Match::WrongMethod(allowed) => return Err(ApiError::MethodNotAllowed { allowed }),
        Match::NotFound => {
            return Err(ApiError::NotFound {
                method: method.to_string(),
                path: path.to_string(),
            })
        }
    };
    let Some(op) = mock.spec.operation(index) else {
        return Err(ApiError::NotFound {
            method: method.to_string(),
            path: path.to_string(),
        });
    };
    let incoming = Incoming {
        op,
        path_params: raw_params.into_iter().map(|(k, v)| (k, decode(&v))).collect(),
        query: parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
    };

    let principal = if op.security.is_empty() {
        None
    } else {
        let who = authenticate(mock, &parts.headers)?;
        check::check_version(&parts.headers, op, &mock.config.fidelity)?;
        check::check_security(op, &who)?;
        Some(who)
    };

    let bytes = read_body(body, mock.config.limits.max_body_bytes).await?;
    let body = parse_body(&parts.headers, &bytes);

    if let Some(who) = &principal {
        let named = check::named_locations(op, &incoming.path_params, &incoming.query, body.as_ref());
        check::check_location(who, &named, &mock.world())?;
    }

    if let Some(answer) = owned_answer(mock, &incoming, principal.as_ref(), body.as_ref())? {
        return Ok(json_response(
            StatusCode::OK,
            Bytes::from(serde_json::to_vec(&answer).unwrap_or_default()),
        ));
    }
    let status = StatusCode::from_u16(incoming.op.success.status).unwrap_or(StatusCode::OK);
    Ok(json_response(status, op.success.body.clone()))
}

/// Answers of the operations the mock owns state for, by method and path.
fn owned_answer(
    mock: &Mock,
    incoming: &Incoming<'_>,
    who: Option<&Principal>,
    body: Option<&Value>,
) -> Result<Option<Value>, ApiError> {
    let op = incoming.op;
    if op.method != Method::POST {
        return Ok(None);
    }
    match (op.path.trim_end_matches('/'), who) {
        ("/oauth/token", _) => crate::respond::oauth::token(mock, body).map(Some),
        ("/oauth/locationToken", Some(who)) => crate::respond::oauth::location_token(mock, who, body).map(Some),
        _ => Ok(None),
    }
}

/// Steps 2–5: who the bearer token stands for.
fn authenticate(mock: &Mock, headers: &axum::http::HeaderMap) -> Result<Principal, AuthError> {
    let token = check::bearer(headers)?;
    if token.starts_with("pit-") {
        let holder = mock
            .world()
            .pit(token, mock.clock.now_ms())
            .ok_or(AuthError::InvalidPit)?;
        return Ok(Principal {
            kind: TokenKind::Pit,
            owner: holder.owner,
            scopes: holder.scopes,
            fingerprint: secret::fingerprint(token),
            client_id: None,
            user_id: None,
        });
    }
    let claims = mock.oauth.verify_access(token, mock.clock.now_ms())?;
    let owner = claims.owner().ok_or(AuthError::InvalidJwt)?;
    Ok(Principal {
        kind: TokenKind::OAuth,
        owner,
        scopes: claims.oauth_meta.scopes.into_iter().collect(),
        fingerprint: secret::fingerprint(token),
        client_id: Some(claims.oauth_meta.client),
        user_id: Some(claims.user_id),
    })
}

/// The body as JSON: JSON bodies as they are, form bodies as an object of strings.
fn parse_body(headers: &axum::http::HeaderMap, bytes: &Bytes) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let map: serde_json::Map<String, Value> = form_urlencoded::parse(bytes)
            .into_owned()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        return Some(Value::Object(map));
    }
    serde_json::from_slice(bytes).ok()
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
