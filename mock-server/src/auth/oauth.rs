//! OAuth: authorization codes, RS256 access and refresh tokens, and their
//! exchange and rotation (BEHAVIOUR.md §1 and §5).
//!
//! Access tokens are real RS256 JWTs with HighLevel's claims (`authClass`,
//! `authClassId`, `oauthMeta`, `source`, `channel`, `iat`, `exp`), signed by a
//! key generated on first use. Expiry is judged on the mock's clock, never the
//! system's. Refresh tokens are JWTs too; the mock remembers each one's id so
//! that a refresh token works once: using it rotates it, reusing it answers
//! `invalid_grant`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::AuthError;
use crate::world::Owner;

/// `expires_in` of an access token: a day less a second.
pub const ACCESS_TTL_SECS: i64 = 86_399;
/// A refresh token lives a year.
pub const REFRESH_TTL_SECS: i64 = 365 * 86_400;
/// How long an authorization code may wait to be exchanged.
pub const CODE_TTL_MS: i64 = 10 * 60_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OAuthMeta {
    pub scopes: Vec<String>,
    pub client: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub auth_class: String,
    pub auth_class_id: String,
    pub oauth_meta: OAuthMeta,
    pub source: String,
    pub channel: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The installing user, for the `userId` of token answers.
    #[serde(default)]
    pub user_id: String,
}

impl Claims {
    pub fn owner(&self) -> Option<Owner> {
        match self.auth_class.as_str() {
            "Location" => Some(Owner::Location(self.auth_class_id.clone())),
            "Company" => Some(Owner::Company(self.auth_class_id.clone())),
            _ => None,
        }
    }
}

/// What an access or refresh token is issued for.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub client_id: String,
    pub owner: Owner,
    pub scopes: Vec<String>,
    pub user_id: String,
    /// For company tokens: the company; for location tokens: the location's company.
    pub company_id: String,
}

/// A refusal of the token endpoint, in OAuth's own shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self { status: 400, error: "invalid_grant", description: description.into() }
    }
    pub fn invalid_client() -> Self {
        Self { status: 401, error: "invalid_client", description: "unknown client_id or wrong client_secret".into() }
    }
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self { status: 400, error: "invalid_request", description: description.into() }
    }
    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self { status: 400, error: "unsupported_grant_type", description: description.into() }
    }
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

#[derive(Debug, Clone)]
struct Code {
    grant: Grant,
    expires_at_ms: i64,
}

#[derive(Debug, Clone)]
struct Refresh {
    grant: Grant,
    used: bool,
}

/// The OAuth state of one mock.
#[derive(Default)]
pub struct OAuth {
    keys: OnceLock<Result<Keys, String>>,
    codes: Mutex<HashMap<String, Code>>,
    refresh: Mutex<HashMap<String, Refresh>>,
}

fn generate_keys() -> Result<Keys, String> {
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
    let mut rng = rsa::rand_core::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| e.to_string())?;
    let private_der = private.to_pkcs1_der().map_err(|e| e.to_string())?;
    let public_der = private.to_public_key().to_pkcs1_der().map_err(|e| e.to_string())?;
    Ok(Keys {
        encoding: EncodingKey::from_rsa_der(private_der.as_bytes()),
        decoding: DecodingKey::from_rsa_der(public_der.as_bytes()),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl OAuth {
    fn keys(&self) -> Result<&Keys, OAuthError> {
        self.keys.get_or_init(generate_keys).as_ref().map_err(|e| OAuthError {
            status: 500,
            error: "server_error",
            description: format!("no signing key: {e}"),
        })
    }

    /// Issues an authorization code for `grant` (the control plane's stand-in
    /// for a user approving an app install).
    pub fn issue_code(&self, grant: Grant, now_ms: i64) -> String {
        let code = uuid::Uuid::new_v4().simple().to_string();
        lock(&self.codes).insert(code.clone(), Code { grant, expires_at_ms: now_ms.saturating_add(CODE_TTL_MS) });
        code
    }

    /// `grant_type=authorization_code`: a code works once, for its own client.
    pub fn exchange_code(&self, client_id: &str, code: &str, now_ms: i64) -> Result<Value, OAuthError> {
        let found = lock(&self.codes).remove(code);
        let Some(found) = found else {
            return Err(OAuthError::invalid_grant("authorization code is unknown or already used"));
        };
        if found.grant.client_id != client_id {
            return Err(OAuthError::invalid_grant("authorization code was issued to another client"));
        }
        if now_ms >= found.expires_at_ms {
            return Err(OAuthError::invalid_grant("authorization code has expired"));
        }
        self.token_answer(&found.grant, now_ms, true)
    }

    /// `grant_type=refresh_token`: a refresh token works once and is replaced.
    pub fn refresh(&self, client_id: &str, token: &str, now_ms: i64) -> Result<Value, OAuthError> {
        let claims = self.decode(token).map_err(|_| OAuthError::invalid_grant("refresh token is invalid"))?;
        let grant = {
            let mut store = lock(&self.refresh);
            let Some(entry) = store.get_mut(&claims.jti) else {
                return Err(OAuthError::invalid_grant("refresh token is invalid"));
            };
            if entry.used {
                return Err(OAuthError::invalid_grant("refresh token has already been used"));
            }
            if entry.grant.client_id != client_id {
                return Err(OAuthError::invalid_grant("refresh token was issued to another client"));
            }
            if now_ms / 1000 >= claims.exp {
                return Err(OAuthError::invalid_grant("refresh token has expired"));
            }
            entry.used = true;
            entry.grant.clone()
        };
        self.token_answer(&grant, now_ms, true)
    }

    /// A location token minted from an agency token (`/oauth/locationToken`).
    pub fn location_token(&self, agency: &Grant, location_id: &str, now_ms: i64) -> Result<Value, OAuthError> {
        let grant = Grant { owner: Owner::Location(location_id.to_string()), ..agency.clone() };
        self.token_answer(&grant, now_ms, false)
    }

    fn token_answer(&self, grant: &Grant, now_ms: i64, with_refresh: bool) -> Result<Value, OAuthError> {
        let access = self.sign(grant, now_ms, ACCESS_TTL_SECS)?;
        let (user_type, location_id) = match &grant.owner {
            Owner::Location(l) => ("Location", Some(l.clone())),
            Owner::Company(_) => ("Company", None),
        };
        let mut answer = json!({
            "access_token": access.0,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL_SECS,
            "scope": grant.scopes.join(" "),
            "userType": user_type,
            "companyId": grant.company_id,
            "userId": grant.user_id,
        });
        if let Some(location_id) = location_id {
            answer["locationId"] = Value::from(location_id);
        }
        if with_refresh {
            let (refresh, jti) = self.sign(grant, now_ms, REFRESH_TTL_SECS)?;
            lock(&self.refresh).insert(jti, Refresh { grant: grant.clone(), used: false });
            answer["refresh_token"] = Value::from(refresh);
        }
        Ok(answer)
    }

    fn sign(&self, grant: &Grant, now_ms: i64, ttl_secs: i64) -> Result<(String, String), OAuthError> {
        let now = now_ms.div_euclid(1000);
        let (auth_class, auth_class_id) = match &grant.owner {
            Owner::Location(l) => ("Location", l.clone()),
            Owner::Company(c) => ("Company", c.clone()),
        };
        let jti = uuid::Uuid::new_v4().to_string();
        let claims = Claims {
            auth_class: auth_class.into(),
            auth_class_id,
            oauth_meta: OAuthMeta { scopes: grant.scopes.clone(), client: grant.client_id.clone() },
            source: "INTEGRATION".into(),
            channel: "OAUTH".into(),
            iat: now,
            exp: now.saturating_add(ttl_secs),
            jti: jti.clone(),
            user_id: grant.user_id.clone(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.keys()?.encoding).map_err(|e| {
                OAuthError { status: 500, error: "server_error", description: format!("cannot sign a token: {e}") }
            })?;
        Ok((token, jti))
    }

    fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        // No key yet means no token was ever issued: nothing can be valid.
        let Some(Ok(keys)) = self.keys.get() else {
            return Err(AuthError::InvalidJwt);
        };
        let mut validation = Validation::new(Algorithm::RS256);
        // Expiry is judged on the mock's clock below, not the system's.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Claims>(token, &keys.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| AuthError::InvalidJwt)
    }

    /// The claims of a valid, unexpired access token.
    pub fn verify_access(&self, token: &str, now_ms: i64) -> Result<Claims, AuthError> {
        let claims = self.decode(token)?;
        if lock(&self.refresh).contains_key(&claims.jti) {
            // A refresh token is no bearer token.
            return Err(AuthError::InvalidJwt);
        }
        if now_ms.div_euclid(1000) >= claims.exp {
            return Err(AuthError::ExpiredJwt);
        }
        if claims.owner().is_none() {
            return Err(AuthError::InvalidJwt);
        }
        Ok(claims)
    }

    /// Forgets every code and refresh token (for `reset`); the key stays.
    pub fn clear(&self) {
        lock(&self.codes).clear();
        lock(&self.refresh).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            client_id: "app".into(),
            owner: Owner::Location("loc".into()),
            scopes: vec!["contacts.readonly".into()],
            user_id: "user".into(),
            company_id: "co".into(),
        }
    }

    #[test]
    fn a_code_gives_tokens_once_and_the_access_token_expires_on_the_mock_clock() {
        let oauth = OAuth::default();
        let code = oauth.issue_code(grant(), 0);
        let answer = oauth.exchange_code("app", &code, 1_000).unwrap();
        assert_eq!(answer["expires_in"], 86_399);
        assert_eq!(answer["userType"], "Location");
        let access = answer["access_token"].as_str().unwrap();
        let claims = oauth.verify_access(access, 1_000).unwrap();
        assert_eq!(claims.owner(), Some(Owner::Location("loc".into())));
        assert_eq!(claims.oauth_meta.scopes, vec!["contacts.readonly".to_string()]);
        assert_eq!(oauth.verify_access(access, 1_000 + 86_399_000), Err(AuthError::ExpiredJwt));
        assert_eq!(oauth.exchange_code("app", &code, 1_000).unwrap_err().error, "invalid_grant");
    }

    #[test]
    fn a_refresh_token_rotates_and_its_reuse_is_an_invalid_grant() {
        let oauth = OAuth::default();
        let code = oauth.issue_code(grant(), 0);
        let first = oauth.exchange_code("app", &code, 0).unwrap();
        let refresh = first["refresh_token"].as_str().unwrap();
        let second = oauth.refresh("app", refresh, 5_000).unwrap();
        assert_ne!(second["refresh_token"], first["refresh_token"]);
        let again = oauth.refresh("app", refresh, 6_000).unwrap_err();
        assert_eq!(again.error, "invalid_grant");
        assert_eq!(
            oauth.verify_access(refresh, 0),
            Err(AuthError::InvalidJwt),
            "a refresh token is not a bearer token"
        );
    }

    #[test]
    fn a_token_signed_by_another_key_is_an_invalid_jwt() {
        let issue = |oauth: &OAuth| {
            let code = oauth.issue_code(grant(), 0);
            oauth.exchange_code("app", &code, 0).unwrap()["access_token"].as_str().unwrap().to_string()
        };
        let (ours, theirs) = (OAuth::default(), OAuth::default());
        let own = issue(&ours);
        let foreign = issue(&theirs);
        assert!(ours.verify_access(&own, 0).is_ok());
        assert_eq!(ours.verify_access(&foreign, 0), Err(AuthError::InvalidJwt));
        assert_eq!(ours.verify_access("eyJhbGciOiJub25lIn0.e30.", 0), Err(AuthError::InvalidJwt));
    }
}
