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
use std::sync::{Arc, Mutex};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::AuthError;
use crate::state::StateError;
use crate::world::Owner;

/// `expires_in` of an access token: a day less a second.
pub const ACCESS_TTL_SECS: i64 = 86_399;
/// The agency plan a minted token names (`oauthMeta.agencyPlan`) [guess].
pub const AGENCY_PLAN: &str = "agency_monthly_497";
/// What a location token minted from an agency token gains [seen].
pub const LOCATION_TOKEN_SCOPES: &[&str] = &["oauth.readonly", "oauth.write"];
/// A refresh token lives a year.
pub const REFRESH_TTL_SECS: i64 = 365 * 86_400;
/// How long an authorization code may wait to be exchanged.
pub const CODE_TTL_MS: i64 = 10 * 60_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OAuthMeta {
    pub scopes: Vec<String>,
    pub client: String,
    /// The app version (the client id before its dash) [guess: HighLevel's
    /// first version of an app shares the app's id].
    #[serde(default)]
    pub version_id: String,
    /// The installing agency's plan [seen: the claim; guess: the value].
    #[serde(default)]
    pub agency_plan: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub auth_class: String,
    pub auth_class_id: String,
    /// The location or company the token acts for [seen].
    #[serde(default)]
    pub primary_auth_class_id: String,
    pub oauth_meta: OAuthMeta,
    pub source: String,
    /// The OAuth client that holds the token [seen].
    #[serde(default)]
    pub source_id: String,
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// The OAuth state of one mock: what it signs with, and the codes and
/// refresh tokens it has issued, kept behind [`Grants`] so replicas can share
/// them.
pub struct OAuth {
    keys: tokio::sync::OnceCell<Keys>,
    grants: Arc<dyn Grants>,
}

impl Default for OAuth {
    fn default() -> Self {
        Self::new(Arc::new(MemoryGrants::default()))
    }
}

/// How a refresh token is found when it is used.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshUse {
    Unknown,
    /// It was used before: a reuse is an `invalid_grant`.
    Used,
    /// First use: the grant it carries (it is marked used by this call).
    Fresh(Grant),
}

/// Codes (single use), refresh tokens (single use) and the signing key.
#[async_trait::async_trait]
pub trait Grants: Send + Sync {
    async fn put_code(&self, code: String, grant: Grant, expires_at_ms: i64) -> Result<(), StateError>;
    /// Takes a code: it answers once.
    async fn take_code(&self, code: &str) -> Result<Option<(Grant, i64)>, StateError>;
    async fn put_refresh(&self, jti: String, grant: Grant) -> Result<(), StateError>;
    /// Uses a refresh token: [`RefreshUse::Fresh`] exactly once.
    async fn use_refresh(&self, jti: &str) -> Result<RefreshUse, StateError>;
    /// Whether `jti` names a refresh token (which is no bearer token).
    async fn is_refresh(&self, jti: &str) -> Result<bool, StateError>;
    /// The private key (PKCS#1 DER), made by `make` the first time any
    /// caller asks, the same for every caller after.
    async fn signing_key(
        &self,
        make: &(dyn Fn() -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<Vec<u8>, StateError>;
    /// Forgets every code and refresh token (the key stays).
    async fn clear(&self) -> Result<(), StateError>;
}

/// The in-memory backend of [`Grants`].
#[derive(Default)]
pub struct MemoryGrants {
    codes: Mutex<HashMap<String, (Grant, i64)>>,
    refresh: Mutex<HashMap<String, (Grant, bool)>>,
    key: Mutex<Option<Vec<u8>>>,
}

#[async_trait::async_trait]
impl Grants for MemoryGrants {
    async fn put_code(&self, code: String, grant: Grant, expires_at_ms: i64) -> Result<(), StateError> {
        lock(&self.codes).insert(code, (grant, expires_at_ms));
        Ok(())
    }

    async fn take_code(&self, code: &str) -> Result<Option<(Grant, i64)>, StateError> {
        Ok(lock(&self.codes).remove(code))
    }

    async fn put_refresh(&self, jti: String, grant: Grant) -> Result<(), StateError> {
        lock(&self.refresh).insert(jti, (grant, false));
        Ok(())
    }

    async fn use_refresh(&self, jti: &str) -> Result<RefreshUse, StateError> {
        let mut refresh = lock(&self.refresh);
        Ok(match refresh.get_mut(jti) {
            None => RefreshUse::Unknown,
            Some((_, true)) => RefreshUse::Used,
            Some((grant, used)) => {
                *used = true;
                RefreshUse::Fresh(grant.clone())
            }
        })
    }

    async fn is_refresh(&self, jti: &str) -> Result<bool, StateError> {
        Ok(lock(&self.refresh).contains_key(jti))
    }

    async fn signing_key(
        &self,
        make: &(dyn Fn() -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<Vec<u8>, StateError> {
        let mut key = lock(&self.key);
        if let Some(der) = key.as_ref() {
            return Ok(der.clone());
        }
        let der = make().map_err(StateError)?;
        *key = Some(der.clone());
        Ok(der)
    }

    async fn clear(&self) -> Result<(), StateError> {
        lock(&self.codes).clear();
        lock(&self.refresh).clear();
        Ok(())
    }
}

fn generate_key() -> Result<Vec<u8>, String> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let mut rng = rsa::rand_core::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| e.to_string())?;
    Ok(private.to_pkcs1_der().map_err(|e| e.to_string())?.as_bytes().to_vec())
}

fn keys_from(private_der: &[u8]) -> Result<Keys, String> {
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
    let private = rsa::RsaPrivateKey::from_pkcs1_der(private_der).map_err(|e| e.to_string())?;
    let public_der = private.to_public_key().to_pkcs1_der().map_err(|e| e.to_string())?;
    Ok(Keys {
        encoding: EncodingKey::from_rsa_der(private_der),
        decoding: DecodingKey::from_rsa_der(public_der.as_bytes()),
    })
}

/// HighLevel's JWT header, byte for byte [doc: their sample token].
const JWT_HEADER: &str = r#"{"alg":"RS256","typ":"JWT"}"#;

/// The app's id: the client id before its dash (`<24 hex>-<8 chars>`).
pub fn app_id(client_id: &str) -> &str {
    client_id.split('-').next().unwrap_or(client_id)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn server_error(description: String) -> OAuthError {
    OAuthError { status: 500, error: "server_error", description }
}

/// The store of codes, refresh tokens or the key did not answer (a shared
/// store that is down): OAuth's own word for "try again later".
fn unavailable(e: StateError) -> OAuthError {
    OAuthError { status: 503, error: "temporarily_unavailable", description: e.0 }
}

impl OAuth {
    pub fn new(grants: Arc<dyn Grants>) -> Self {
        Self { keys: tokio::sync::OnceCell::new(), grants }
    }

    async fn keys(&self) -> Result<&Keys, OAuthError> {
        self.keys
            .get_or_try_init(|| async {
                let der = self.grants.signing_key(&generate_key).await.map_err(unavailable)?;
                keys_from(&der).map_err(|e| server_error(format!("no signing key: {e}")))
            })
            .await
    }

    /// Issues an authorization code for `grant` (the control plane's stand-in
    /// for a user approving an app install).
    pub async fn issue_code(&self, grant: Grant, now_ms: i64) -> Result<String, StateError> {
        let code = uuid::Uuid::new_v4().simple().to_string();
        self.grants.put_code(code.clone(), grant, now_ms.saturating_add(CODE_TTL_MS)).await?;
        Ok(code)
    }

    /// `grant_type=authorization_code`: a code works once, for its own client.
    pub async fn exchange_code(&self, client_id: &str, code: &str, now_ms: i64) -> Result<Value, OAuthError> {
        let found = self.grants.take_code(code).await.map_err(unavailable)?;
        let Some((grant, expires_at_ms)) = found else {
            return Err(OAuthError::invalid_grant("authorization code is unknown or already used"));
        };
        if grant.client_id != client_id {
            return Err(OAuthError::invalid_grant("authorization code was issued to another client"));
        }
        if now_ms >= expires_at_ms {
            return Err(OAuthError::invalid_grant("authorization code has expired"));
        }
        self.token_answer(&grant, now_ms, true).await
    }

    /// `grant_type=refresh_token`: a refresh token works once and is replaced.
    pub async fn refresh(&self, client_id: &str, token: &str, now_ms: i64) -> Result<Value, OAuthError> {
        let claims = self.decode(token).await.map_err(|_| OAuthError::invalid_grant("refresh token is invalid"))?;
        if now_ms / 1000 >= claims.exp {
            return Err(OAuthError::invalid_grant("refresh token has expired"));
        }
        if claims.oauth_meta.client != client_id {
            return Err(OAuthError::invalid_grant("refresh token was issued to another client"));
        }
        let grant = match self.grants.use_refresh(&claims.jti).await.map_err(unavailable)? {
            RefreshUse::Unknown => return Err(OAuthError::invalid_grant("refresh token is invalid")),
            RefreshUse::Used => return Err(OAuthError::invalid_grant("refresh token has already been used")),
            RefreshUse::Fresh(grant) => grant,
        };
        self.token_answer(&grant, now_ms, true).await
    }

    /// A location token minted from an agency token (`/oauth/locationToken`):
    /// with a refresh token, the app's ids, and `oauth.readonly`/`oauth.write`
    /// added to the agency's scopes, as HighLevel answers [doc, seen].
    pub async fn location_token(&self, agency: &Grant, location_id: &str, now_ms: i64) -> Result<Value, OAuthError> {
        let mut grant = Grant { owner: Owner::Location(location_id.to_string()), ..agency.clone() };
        for scope in LOCATION_TOKEN_SCOPES {
            if !grant.scopes.iter().any(|s| s == scope) {
                grant.scopes.push((*scope).to_string());
            }
        }
        let mut answer = self.token_answer(&grant, now_ms, true).await?;
        answer["appId"] = Value::from(app_id(&grant.client_id));
        answer["versionId"] = Value::from(app_id(&grant.client_id));
        Ok(answer)
    }

    async fn token_answer(&self, grant: &Grant, now_ms: i64, with_refresh: bool) -> Result<Value, OAuthError> {
        let access = self.sign(grant, now_ms, ACCESS_TTL_SECS).await?;
        let (user_type, location_id) = match &grant.owner {
            Owner::Location(l) => ("Location", Some(l.clone())),
            Owner::Company(_) => ("Company", None),
        };
        // Every field oauth.json documents for the token answer.
        let approved: Vec<String> = location_id.iter().cloned().collect();
        let mut answer = json!({
            "access_token": access.0,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL_SECS,
            "scope": grant.scopes.join(" "),
            "userType": user_type,
            "companyId": grant.company_id,
            "approvedLocations": approved,
            "userId": grant.user_id,
            // `planId` only for paid apps, which the mock does not sell.
            "isBulkInstallation": false,
            "installToFutureLocations": false,
            "approveAllLocations": false,
        });
        if let Some(location_id) = location_id {
            answer["locationId"] = Value::from(location_id);
        }
        if with_refresh {
            let (refresh, jti) = self.sign(grant, now_ms, REFRESH_TTL_SECS).await?;
            self.grants.put_refresh(jti, grant.clone()).await.map_err(unavailable)?;
            answer["refresh_token"] = Value::from(refresh);
        }
        Ok(answer)
    }

    async fn sign(&self, grant: &Grant, now_ms: i64, ttl_secs: i64) -> Result<(String, String), OAuthError> {
        let now = now_ms.div_euclid(1000);
        let (auth_class, auth_class_id) = match &grant.owner {
            Owner::Location(l) => ("Location", l.clone()),
            Owner::Company(c) => ("Company", c.clone()),
        };
        let jti = uuid::Uuid::new_v4().to_string();
        let claims = Claims {
            auth_class: auth_class.into(),
            primary_auth_class_id: auth_class_id.clone(),
            auth_class_id,
            oauth_meta: OAuthMeta {
                scopes: grant.scopes.clone(),
                client: grant.client_id.clone(),
                version_id: app_id(&grant.client_id).to_string(),
                agency_plan: AGENCY_PLAN.into(),
            },
            source: "INTEGRATION".into(),
            source_id: grant.client_id.clone(),
            channel: "OAUTH".into(),
            iat: now,
            exp: now.saturating_add(ttl_secs),
            jti: jti.clone(),
            user_id: grant.user_id.clone(),
        };
        let keys = self.keys().await?;
        // The header exactly as HighLevel's (`alg` first), so tokens start as
        // theirs do: eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = serde_json::to_vec(&claims).map_err(|e| server_error(format!("cannot write claims: {e}")))?;
        let message = format!("{}.{}", b64.encode(JWT_HEADER), b64.encode(payload));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &keys.encoding, Algorithm::RS256)
            .map_err(|e| server_error(format!("cannot sign a token: {e}")))?;
        Ok((format!("{message}.{signature}"), jti))
    }

    async fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        let keys = self.keys().await.map_err(|_| AuthError::InvalidJwt)?;
        let mut validation = Validation::new(Algorithm::RS256);
        // Expiry is judged on the mock's clock below, not the system's.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Claims>(token, &keys.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| AuthError::InvalidJwt)
    }

    /// The claims of a valid, unexpired access token.
    pub async fn verify_access(&self, token: &str, now_ms: i64) -> Result<Claims, AuthError> {
        let claims = self.decode(token).await?;
        // A refresh token is no bearer token (a store that cannot say refuses it too).
        if self.grants.is_refresh(&claims.jti).await.unwrap_or(true) {
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
    pub async fn clear(&self) -> Result<(), StateError> {
        self.grants.clear().await
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

    #[tokio::test]
    async fn a_code_gives_tokens_once_and_the_access_token_expires_on_the_mock_clock() {
        let oauth = OAuth::default();
        let code = oauth.issue_code(grant(), 0).await.unwrap();
        let answer = oauth.exchange_code("app", &code, 1_000).await.unwrap();
        assert_eq!(answer["expires_in"], 86_399);
        assert_eq!(answer["userType"], "Location");
        let access = answer["access_token"].as_str().unwrap();
        let claims = oauth.verify_access(access, 1_000).await.unwrap();
        assert_eq!(claims.owner(), Some(Owner::Location("loc".into())));
        assert_eq!(claims.oauth_meta.scopes, vec!["contacts.readonly".to_string()]);
        assert_eq!(oauth.verify_access(access, 1_000 + 86_399_000).await, Err(AuthError::ExpiredJwt));
        assert_eq!(oauth.exchange_code("app", &code, 1_000).await.unwrap_err().error, "invalid_grant");
    }

    #[tokio::test]
    async fn a_refresh_token_rotates_and_its_reuse_is_an_invalid_grant() {
        let oauth = OAuth::default();
        let code = oauth.issue_code(grant(), 0).await.unwrap();
        let first = oauth.exchange_code("app", &code, 0).await.unwrap();
        let refresh = first["refresh_token"].as_str().unwrap();
        let second = oauth.refresh("app", refresh, 5_000).await.unwrap();
        assert_ne!(second["refresh_token"], first["refresh_token"]);
        let again = oauth.refresh("app", refresh, 6_000).await.unwrap_err();
        assert_eq!(again.error, "invalid_grant");
        assert_eq!(
            oauth.verify_access(refresh, 0).await,
            Err(AuthError::InvalidJwt),
            "a refresh token is not a bearer token"
        );
    }

    #[tokio::test]
    async fn a_token_signed_by_another_key_is_an_invalid_jwt() {
        async fn issue(oauth: &OAuth) -> String {
            let code = oauth.issue_code(grant(), 0).await.unwrap();
            oauth.exchange_code("app", &code, 0).await.unwrap()["access_token"].as_str().unwrap().to_string()
        }
        let (ours, theirs) = (OAuth::default(), OAuth::default());
        let own = issue(&ours).await;
        let foreign = issue(&theirs).await;
        assert!(ours.verify_access(&own, 0).await.is_ok());
        assert_eq!(ours.verify_access(&foreign, 0).await, Err(AuthError::InvalidJwt));
        assert_eq!(ours.verify_access("eyJhbGciOiJub25lIn0.e30.", 0).await, Err(AuthError::InvalidJwt));
    }
}
