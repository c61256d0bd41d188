//! The two OAuth endpoints the mock owns: `POST /oauth/token` and
//! `POST /oauth/locationToken`. The auth pipeline has already checked the
//! agency token of the latter; these handlers mint tokens.

use serde_json::Value;

use crate::auth::check::Principal;
use crate::auth::oauth::{Grant, OAuthError};
use crate::auth::secret;
use crate::error::ApiError;
use crate::world::Owner;
use crate::Mock;

fn field<'a>(body: Option<&'a Value>, name: &str) -> Option<&'a str> {
    body.and_then(|b| b.get(name)).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `POST /oauth/token`, form-encoded.
pub async fn token(mock: &Mock, world: &crate::World, body: Option<&Value>) -> Result<Value, ApiError> {
    let need =
        |name: &str| field(body, name).ok_or_else(|| OAuthError::invalid_request(format!("`{name}` is required")));
    let client_id = need("client_id")?;
    let client_secret = need("client_secret")?;
    let grant_type = need("grant_type")?;
    let known = world.apps.get(client_id).is_some_and(|app| app.secret_is(client_secret));
    if !known {
        return Err(OAuthError::invalid_client().into());
    }
    let now = mock.clock.now_ms();
    let answer = match grant_type {
        "authorization_code" => mock.oauth.exchange_code(client_id, need("code")?, now).await,
        "refresh_token" => mock.oauth.refresh(client_id, need("refresh_token")?, now).await,
        "client_credentials" => Err(OAuthError::unsupported_grant_type(
            "client_credentials is not served by the mock: issue an authorization code through /__admin/oauth/codes",
        )),
        other => Err(OAuthError::unsupported_grant_type(format!("grant_type '{other}' is not supported"))),
    }?;
    if let Some(access) = answer.get("access_token").and_then(Value::as_str) {
        tracing::info!(client_id, token = %secret::fingerprint(access), grant_type, "oauth token issued");
    }
    Ok(answer)
}

/// `POST /oauth/locationToken`: a location token from an agency OAuth token.
pub async fn location_token(mock: &Mock, who: &Principal, body: Option<&Value>) -> Result<Value, ApiError> {
    let Owner::Company(company_id) = &who.owner else {
        return Err(crate::auth::AuthError::UserTypeNotSupported.into());
    };
    let location_id = field(body, "locationId")
        .ok_or_else(|| ApiError::Unprocessable { messages: vec!["locationId should not be empty".into()] })?;
    match field(body, "companyId") {
        Some(c) if c == company_id => {}
        Some(_) => {
            return Err(ApiError::BadRequest {
                message: "companyId does not match the token's company".into(),
                meta: None,
            })
        }
        None => return Err(ApiError::Unprocessable { messages: vec!["companyId should not be empty".into()] }),
    }
    let agency = Grant {
        client_id: who.client_id.clone().unwrap_or_default(),
        owner: who.owner.clone(),
        scopes: who.scopes.iter().cloned().collect(),
        user_id: who.user_id.clone().unwrap_or_default(),
        company_id: company_id.clone(),
    };
    Ok(mock.oauth.location_token(&agency, location_id, mock.clock.now_ms()).await?)
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        ApiError::OAuth(e)
    }
}
