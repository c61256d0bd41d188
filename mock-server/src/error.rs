//! The one place where refusals become HTTP answers in HighLevel's shapes.
//!
//! Every stage of the pipeline returns a typed [`ApiError`]; no handler builds
//! an error body by hand. Shapes (BEHAVIOUR.md §3): auth-layer bodies carry only
//! `statusCode` and `message`; 404 and 422 add `error`; 422 adds `traceId`.
//! Messages that are guesses come from the [`Fidelity`] profile.

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::auth::AuthError;
use crate::config::Fidelity;

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// No route matches; `method` and `path` as the client sent them.
    NotFound {
        method: String,
        path: String,
    },
    /// Issue 14: asked with `Version: v3`, a path that v3 removed;
    /// `endpoint` is the path and query as sent.
    RemovedInV3 {
        endpoint: String,
    },
    /// The path exists, not with this method.
    MethodNotAllowed {
        allowed: Vec<Method>,
    },
    Auth(AuthError),
    RateLimited,
    /// One message per problem, as HighLevel's validation pipe lists them.
    Unprocessable {
        messages: Vec<String>,
    },
    /// A request the handler rejects (e.g. a duplicated contact).
    BadRequest {
        message: String,
        meta: Option<Value>,
    },
    /// The body did not arrive in time.
    RequestTimeout,
    /// A body that cannot be read as what its content type says.
    MalformedBody {
        message: String,
    },
    PayloadTooLarge {
        limit: usize,
    },
    /// Headers larger in all than the documented bound (however they arrived).
    HeadersTooLarge {
        limit: usize,
    },
    UnsupportedMediaType {
        content_type: String,
    },
    /// A refusal of the OAuth token endpoint, in OAuth's own shape.
    OAuth(crate::auth::oauth::OAuthError),
    /// An id that names no record, where the family answers 404 (or what the
    /// fidelity profile says).
    RecordNotFound {
        status: u16,
        message: String,
    },
    /// The store cannot be reached or could not make a write durable.
    Unavailable {
        message: String,
    },
    /// A refusal of the control plane (bad input, unknown id, not allowed).
    Control {
        status: StatusCode,
        message: String,
    },
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Auth(e) => e.status(),
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } | ApiError::RemovedInV3 { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::MalformedBody { .. } => StatusCode::BAD_REQUEST,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Control { status, .. } => *status,
            ApiError::RecordNotFound { status, .. } => StatusCode::from_u16(*status).unwrap_or(StatusCode::NOT_FOUND),
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::OAuth(e) => StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        }
    }

    /// The JSON body HighLevel would send.
    pub fn body(&self, fidelity: &Fidelity, trace_id: &str) -> Value {
        let code = self.status().as_u16();
        match self {
            ApiError::NotFound { method, path } => {
                json!({"statusCode": code, "message": format!("Cannot {method} {path}"), "error": "Not Found"})
            }
            ApiError::RemovedInV3 { endpoint } => json!({
                "message": format!(
                    "Endpoint {endpoint} not available in API version v3. This endpoint was removed in version v3. \
                     Please use a version before v3."
                ),
                "error": "Bad Request",
                "statusCode": code,
            }),
            ApiError::MethodNotAllowed { .. } => {
                json!({"statusCode": code, "message": "Method Not Allowed", "error": "Method Not Allowed"})
            }
            ApiError::Auth(e) => json!({"statusCode": code, "message": e.message(fidelity)}),
            ApiError::RateLimited => json!({"statusCode": code, "message": fidelity.rate_limit_message}),
            ApiError::Unprocessable { messages } => {
                json!({"statusCode": code, "message": messages, "error": "Unprocessable Entity", "traceId": trace_id})
            }
            ApiError::BadRequest { message, meta } => {
                let mut body = json!({"statusCode": code, "message": message});
                if let Some(meta) = meta {
                    body["meta"] = meta.clone();
                }
                body
            }
            ApiError::RequestTimeout => {
                json!({"statusCode": code, "message": "the request body did not arrive in time", "error": "Request Timeout"})
            }
            ApiError::PayloadTooLarge { limit } => {
                json!({"statusCode": code, "message": format!("request entity too large (limit {limit} bytes)"), "error": "Payload Too Large"})
            }
            ApiError::HeadersTooLarge { limit } => {
                json!({"statusCode": code, "message": format!("request headers too large (limit {limit} bytes)"), "error": "Request Header Fields Too Large"})
            }
            ApiError::MalformedBody { message } => {
                json!({"statusCode": code, "message": message, "error": "Bad Request"})
            }
            ApiError::UnsupportedMediaType { content_type } => {
                json!({"statusCode": code, "message": format!("content type '{content_type}' is not accepted here"), "error": "Unsupported Media Type"})
            }
            ApiError::OAuth(e) => json!({"error": e.error, "error_description": e.description}),
            ApiError::Control { status, message } => {
                json!({"statusCode": code, "message": message, "error": status.canonical_reason().unwrap_or("Error")})
            }
            ApiError::RecordNotFound { message, .. } => {
                let reason = self.status().canonical_reason().unwrap_or("Error");
                json!({"statusCode": code, "message": message, "error": reason})
            }
            ApiError::Unavailable { message } => {
                json!({"statusCode": code, "message": format!("Service Unavailable: {message}"), "error": "Service Unavailable"})
            }
        }
    }

    /// The full answer; extra headers (trace id, rate limits) are added by the pipeline.
    pub fn into_response_with(self, fidelity: &Fidelity, trace_id: &str) -> Response {
        let status = self.status();
        let body = self.body(fidelity, trace_id);
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = crate::pipeline::json_response(status, axum::body::Bytes::from(bytes));
        if let ApiError::MethodNotAllowed { allowed } = &self {
            let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
                response.headers_mut().insert(header::ALLOW, v);
            }
        }
        response
    }
}

/// The short reason recorded in logs and the journal.
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::NotFound { .. } => f.write_str("no such route"),
            ApiError::MethodNotAllowed { .. } => f.write_str("method not allowed"),
            ApiError::Auth(e) => write!(f, "{e:?}"),
            ApiError::RateLimited => f.write_str("rate limited"),
            ApiError::Unprocessable { messages } => write!(f, "invalid request: {}", messages.join("; ")),
            ApiError::BadRequest { message, .. } => f.write_str(message),
            ApiError::RemovedInV3 { endpoint } => write!(f, "{endpoint} was removed in v3"),
            ApiError::PayloadTooLarge { .. } => f.write_str("body too large"),
            ApiError::HeadersTooLarge { .. } => f.write_str("headers too large"),
            ApiError::MalformedBody { message } => f.write_str(message),
            ApiError::RequestTimeout => f.write_str("body timed out"),
            ApiError::UnsupportedMediaType { .. } => f.write_str("unsupported media type"),
            ApiError::Control { message, .. } => f.write_str(message),
            ApiError::RecordNotFound { message, .. } => f.write_str(message),
            ApiError::Unavailable { message } => write!(f, "unavailable: {message}"),
            ApiError::OAuth(e) => write!(f, "{}: {}", e.error, e.description),
        }
    }
}
