//! The two OAuth endpoints the mock owns: `POST /oauth/token` and
//! `POST /oauth/locationToken` (`/oauth/location-token` in v3). The auth
//! pipeline has already checked the agency token of the latter; these
//! handlers mint tokens.
//!
//! v3 names the fields of both in camelCase (`clientId`, `accessToken`):
//! a field is read under either name, and the answer takes the names its
//! operation's response schema declares.

use serde_json::Value;

use crate::auth::check::Principal;
use crate::auth::oauth::{Grant, OAuthError};
use crate::auth::secret;
use crate::error::ApiError;
use crate::spec::{Era, Operation};
use crate::world::Owner;
use crate::Mock;

fn field<'a>(body: Option<&'a Value>, name: &str) -> Option<&'a str> {
    let given = |name: &str| body.and_then(|b| b.get(name)).and_then(Value::as_str).filter(|s| !s.is_empty());
    given(name).or_else(|| given(&camel(name)))
}

/// `client_id` → `clientId`.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// The answer with each snake_case key renamed to its camelCase form where
/// the operation's response schema declares only the latter (v3).
fn shaped(op: &Operation, answer: Value) -> Value {
    let Some(schema) = op.success.schema.as_deref() else { return answer };
    let Value::Object(fields) = answer else { return answer };
    let declares = |name: &str| crate::spec::resources::property(schema, name).is_some();
    let renamed = fields
        .into_iter()
        .map(|(k, v)| {
            let camel = camel(&k);
            if !declares(&k) && declares(&camel) {
                (camel, v)
            } else {
                (k, v)
            }
        })
        .collect();
    Value::Object(renamed)
}

/// The name a refusal gives a field: the one of the operation's generation.
fn named(op: &Operation, name: &str) -> String {
    match op.era {
        Era::V2 => name.to_string(),
        Era::V3 => camel(name),
    }
}

/// `POST /oauth/token`, form-encoded (JSON in v3).
pub async fn token(mock: &Mock, op: &Operation, world: &crate::World, body: Option<&Value>) -> Result<Value, ApiError> {
    let need = |name: &str| {
        field(body, name).ok_or_else(|| OAuthError::invalid_request(format!("`{}` is required", named(op, name))))
    };
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
    Ok(shaped(op, answer))
}

/// `POST /oauth/locationToken` (v3: `/oauth/location-token`): a location
/// token from an agency OAuth token.
pub async fn location_token(
    mock: &Mock,
    op: &Operation,
    who: &Principal,
    body: Option<&Value>,
) -> Result<Value, ApiError> {
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
    Ok(shaped(op, mock.oauth.location_token(&agency, location_id, mock.clock.now_ms()).await?))
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        ApiError::OAuth(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names_become_camel_case() {
        assert_eq!(camel("client_id"), "clientId");
        assert_eq!(camel("refresh_token"), "refreshToken");
        assert_eq!(camel("code"), "code");
    }
}
