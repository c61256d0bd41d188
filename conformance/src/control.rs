//! The mock's control plane (`/__admin/`), spoken over HTTP only, so that the
//! same code drives the in-process mock and a `ghl-mock` binary started
//! elsewhere (`GHL_ADMIN_URL`). A real HighLevel sandbox has no control plane:
//! tests that need one are skipped there, with the reason.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{Call, Plane, Transport};
use crate::error::Error;

/// A private integration the control plane created: its id and token.
#[derive(Clone)]
pub struct Minted {
    pub integration_id: String,
    pub token: String,
}

/// The control plane of one mock.
#[derive(Clone)]
pub struct ControlPlane {
    url: String,
    admin_token: Option<String>,
    transport: Arc<Transport>,
}

impl ControlPlane {
    pub fn new(url: &str, admin_token: Option<String>, transport: Arc<Transport>) -> Self {
        Self { url: url.trim_end_matches('/').to_string(), admin_token, transport }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One control-plane call; any answer but `expect` is an error that says what came back.
    pub fn call(&self, method: Method, path: &str, body: Option<Value>, expect: u16) -> Result<Value, Error> {
        let mut call = Call::new(method, format!("/__admin{path}"));
        if let Some(token) = &self.admin_token {
            call = call.bearer(token);
        }
        if let Some(body) = body {
            call = call.json(body);
        }
        let answer = self.transport.send(&self.url, &call, Plane::Control)?;
        if answer.status != expect {
            return Err(Error::ControlPlane(format!(
                "{} {path} answered {} (wanted {expect})",
                call.method,
                answer.summary()
            )));
        }
        Ok(answer.body_value())
    }

    pub fn health(&self) -> Result<Value, Error> {
        self.call(Method::GET, "/health", None, 200)
    }

    /// `(location id, company id)` of every location of the world.
    pub fn locations(&self) -> Result<Vec<(String, String)>, Error> {
        let world = self.call(Method::GET, "/world", None, 200)?;
        let locations = world.get("locations").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(locations
            .iter()
            .filter_map(|l| {
                let id = l.get("id")?.as_str()?.to_string();
                let company = l.get("company_id").and_then(Value::as_str).unwrap_or_default().to_string();
                Some((id, company))
            })
            .collect())
    }

    /// The scopes of the private integration whose token has this fingerprint.
    pub fn scopes_of(&self, fingerprint: &str) -> Result<Option<Vec<String>>, Error> {
        let list = self.call(Method::GET, "/integrations", None, 200)?;
        let found = list.get("integrations").and_then(Value::as_array).and_then(|all| {
            all.iter().find(|i| i.get("token_fingerprint").and_then(Value::as_str) == Some(fingerprint))
        });
        Ok(found.map(|i| {
            i.get("scopes")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default()
        }))
    }

    pub fn create_integration(&self, name: &str, location_id: &str, scopes: &[String]) -> Result<Minted, Error> {
        let body = json!({"name": name, "owner": {"location": location_id}, "scopes": scopes});
        let answer = self.call(Method::POST, "/integrations", Some(body), 201)?;
        let integration_id = answer.pointer("/integration/id").and_then(Value::as_str);
        let token = answer.get("token").and_then(Value::as_str);
        match (integration_id, token) {
            (Some(id), Some(token)) => Ok(Minted { integration_id: id.to_string(), token: token.to_string() }),
            _ => Err(Error::ControlPlane("creating an integration answered no id or token".into())),
        }
    }

    /// Rotates a token; `grace`: the old one keeps working seven days. Returns
    /// the new token and, with grace, the old one's deadline on the mock's clock.
    pub fn rotate(&self, integration_id: &str, grace: bool) -> Result<(String, Option<i64>), Error> {
        let body = json!({"expire": if grace { "later" } else { "now" }});
        let answer = self.call(Method::POST, &format!("/integrations/{integration_id}/rotate"), Some(body), 200)?;
        let token = answer
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::ControlPlane("rotating answered no token".into()))?;
        let deadline = answer.pointer("/integration/rotating/old_token_expires_at_ms").and_then(Value::as_i64);
        Ok((token.to_string(), deadline))
    }

    pub fn delete_integration(&self, integration_id: &str) -> Result<(), Error> {
        self.call(Method::DELETE, &format!("/integrations/{integration_id}"), None, 200).map(drop)
    }

    /// The mock's clock, in milliseconds since the epoch.
    pub fn now_ms(&self) -> Result<i64, Error> {
        let clock = self.call(Method::GET, "/clock", None, 200)?;
        clock.get("now_ms").and_then(Value::as_i64).ok_or_else(|| Error::ControlPlane("the clock has no now_ms".into()))
    }

    /// Freezes the mock's clock; answers whether it was frozen already.
    pub fn freeze_clock(&self) -> Result<bool, Error> {
        let before = self.call(Method::GET, "/clock", None, 200)?;
        self.call(Method::POST, "/clock", Some(json!({"frozen": true})), 200)?;
        Ok(before.get("frozen").and_then(Value::as_bool).unwrap_or(false))
    }

    /// Lets the mock's clock follow the system time again (from where it stands).
    pub fn unfreeze_clock(&self) -> Result<(), Error> {
        self.call(Method::POST, "/clock", Some(json!({"frozen": false})), 200).map(drop)
    }

    pub fn set_clock_ms(&self, now_ms: i64) -> Result<(), Error> {
        self.call(Method::POST, "/clock", Some(json!({"now_ms": now_ms})), 200).map(drop)
    }

    pub fn advance_clock_ms(&self, ms: u64) -> Result<(), Error> {
        self.call(Method::POST, "/clock/advance", Some(json!({"by": format!("{ms}ms")})), 200).map(drop)
    }

    /// The next `count` requests counted against `resource` get 429.
    pub fn inject_429s(&self, resource: &str, count: u32) -> Result<(), Error> {
        let body = json!({"target": {"resource": resource}, "count": count});
        self.call(Method::POST, "/limits/injections", Some(body), 201).map(drop)
    }

    /// Sets how many requests the current burst window of `resource` has left.
    pub fn set_burst_remaining(&self, resource: &str, remaining: u32) -> Result<(), Error> {
        let body = json!({"remaining": remaining});
        self.call(Method::POST, &format!("/limits/{resource}/burst-remaining"), Some(body), 200).map(drop)
    }

    /// Registers an OAuth app with these credentials.
    pub fn create_oauth_app(&self, client_id: &str, client_secret: &str, scopes: &[String]) -> Result<(), Error> {
        let body = json!({"client_id": client_id, "client_secret": client_secret, "name": "ghl-conformance", "scopes": scopes});
        self.call(Method::POST, "/oauth/apps", Some(body), 201).map(drop)
    }

    /// An authorization code, as if a user of `location_id` approved the app.
    pub fn oauth_code(&self, client_id: &str, location_id: &str, scopes: &[String]) -> Result<String, Error> {
        let body = json!({"client_id": client_id, "owner": {"location": location_id}, "scopes": scopes});
        let answer = self.call(Method::POST, "/oauth/codes", Some(body), 201)?;
        answer
            .get("code")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::ControlPlane("issuing a code answered no code".into()))
    }
}
