//! The check of one request against one operation's security, in the order
//! the real API checks (BEHAVIOUR.md §3): token, then `Version`, then token
//! kind against the scheme, user type, scope, and last the location.

use axum::http::HeaderMap;
use serde_json::Value;

use super::AuthError;
use crate::config::Fidelity;
use crate::spec::{LocationSource, Operation, ParamIn};
use crate::world::{Owner, World};

/// What kind of bearer a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Pit,
    OAuth,
}

/// The caller a valid token stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub kind: TokenKind,
    pub owner: Owner,
    pub scopes: crate::world::Scopes,
    pub fingerprint: String,
    /// The OAuth app's client id, for OAuth tokens.
    pub client_id: Option<String>,
    /// The installing user, for OAuth tokens.
    pub user_id: Option<String>,
}

/// Who a security scheme admits, by the scheme names HighLevel's specs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Admits {
    location: bool,
    company: bool,
    pit: bool,
}

fn admits(scheme: &str) -> Admits {
    match scheme {
        "bearer" | "Location-Access" => Admits { location: true, company: false, pit: true },
        "Location-Access-Only" => Admits { location: true, company: false, pit: false },
        "Agency-Access" => Admits { location: false, company: true, pit: true },
        "Agency-Access-Only" => Admits { location: false, company: true, pit: false },
        // A scheme name HighLevel does not use: any valid token.
        _ => Admits { location: true, company: true, pit: true },
    }
}

/// The bearer token of a request: the `Authorization` value without
/// `Bearer `, trimmed as the real server does.
pub fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    let raw = headers.get(axum::http::header::AUTHORIZATION).ok_or(AuthError::MissingToken)?;
    let text = raw.to_str().map_err(|_| AuthError::InvalidJwt)?.trim();
    if text.is_empty() {
        return Err(AuthError::MissingToken);
    }
    let (scheme, token) = text.split_once(' ').ok_or(AuthError::InvalidJwt)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::InvalidJwt);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}

/// Step 6–7: the `Version` header.
pub fn check_version(headers: &HeaderMap, op: &Operation, fidelity: &Fidelity) -> Result<(), AuthError> {
    let declared = op.param("Version", ParamIn::Header);
    let value = headers.get("version").map(|v| v.to_str().map(str::trim));
    let value = match value {
        None if declared.is_none() => return Ok(()),
        None => return Err(AuthError::VersionMissing),
        Some(Err(_)) => return Err(AuthError::VersionInvalid),
        Some(Ok(v)) => v,
    };
    let accepted = if fidelity.strict_version {
        let own = declared.and_then(|p| p.schema.get("enum")).and_then(Value::as_array);
        match own {
            Some(values) => values.iter().any(|v| v.as_str() == Some(value)),
            None => fidelity.published_versions.iter().any(|v| v == value),
        }
    } else {
        fidelity.published_versions.iter().any(|v| v == value)
    };
    if accepted {
        Ok(())
    } else {
        Err(AuthError::VersionInvalid)
    }
}

/// Steps 8–10 over the operation's requirement objects (OR between them,
/// AND within one). When none is met, the refusal reported is the one of the
/// requirement that got furthest: scope beats user type beats token kind.
pub fn check_security(op: &Operation, who: &Principal) -> Result<(), AuthError> {
    if op.security.is_empty() {
        return Ok(());
    }
    let refused = requirements(op, who);
    // The location-token exchange words a location token's refusal its own way [seen].
    match refused {
        Err(AuthError::UserTypeMismatch)
            if op.path.eq_ignore_ascii_case("/oauth/locationToken") || op.path == "/oauth/location-token" =>
        {
            Err(AuthError::UserTypeNotSupported)
        }
        other => other,
    }
}

fn requirements(op: &Operation, who: &Principal) -> Result<(), AuthError> {
    let mut best: Option<AuthError> = None;
    for requirement in &op.security {
        match meets(requirement, who) {
            Ok(()) => return Ok(()),
            Err(e) => {
                if best.as_ref().is_none_or(|b| rank(&e) > rank(b)) {
                    best = Some(e);
                }
            }
        }
    }
    Err(best.unwrap_or(AuthError::UserTypeMismatch))
}

fn rank(e: &AuthError) -> u8 {
    match e {
        AuthError::PitNotAllowed => 1,
        AuthError::UserTypeMismatch => 2,
        AuthError::ScopeMissing { .. } => 3,
        _ => 0,
    }
}

fn meets(requirement: &[(String, Vec<String>)], who: &Principal) -> Result<(), AuthError> {
    for (scheme, scopes) in requirement {
        let a = admits(scheme);
        let user_type_ok = match who.owner {
            Owner::Location(_) => a.location,
            Owner::Company(_) => a.company,
        };
        if who.kind == TokenKind::Pit && !a.pit && user_type_ok {
            return Err(AuthError::PitNotAllowed);
        }
        if !user_type_ok {
            return Err(AuthError::UserTypeMismatch);
        }
        if let Some(missing) = scopes.iter().find(|s| !who.scopes.contains(*s)) {
            return Err(AuthError::ScopeMissing { scope: missing.clone() });
        }
    }
    Ok(())
}

/// The location ids a request names, from the places the operation takes one.
pub fn named_locations(
    op: &Operation,
    path_params: &[(String, String)],
    query: &[(String, String)],
    body: Option<&Value>,
) -> Vec<String> {
    let q = |name: &'static str| query.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.clone());
    let mut out = Vec::new();
    for source in &op.location {
        match source {
            LocationSource::Path(name) => {
                out.extend(path_params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()))
            }
            LocationSource::Query(name) => out.extend(query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone())),
            LocationSource::Body(name) => {
                out.extend(body.and_then(|b| b.get(name)).and_then(Value::as_str).map(str::to_string));
            }
            LocationSource::AltIdQuery => {
                if q("altType").any(|t| t == "location") {
                    out.extend(q("altId"));
                }
            }
            LocationSource::AltIdBody => {
                let b = body.and_then(Value::as_object);
                if b.and_then(|b| b.get("altType")).and_then(Value::as_str) == Some("location") {
                    out.extend(b.and_then(|b| b.get("altId")).and_then(Value::as_str).map(str::to_string));
                }
            }
        }
    }
    out.retain(|l| !l.is_empty());
    out
}

/// Step 11: every location the request names must be the token's own, or,
/// for an agency token, one of its company's.
/// The `companyId` values a request names where the operation declares one:
/// a path or query parameter, or a property of the body.
pub fn named_companies(
    op: &Operation,
    path_params: &[(String, String)],
    query: &[(String, String)],
    body: Option<&Value>,
) -> Vec<String> {
    let mut out = Vec::new();
    if op.params.iter().any(|p| p.name == "companyId" && matches!(p.location, ParamIn::Path | ParamIn::Query)) {
        out.extend(path_params.iter().chain(query).filter(|(k, _)| k == "companyId").map(|(_, v)| v.clone()));
    }
    let declared = op
        .body
        .as_ref()
        .and_then(|b| b.schema.as_ref())
        .and_then(|s| s.get("properties"))
        .is_some_and(|p| p.get("companyId").is_some());
    if declared {
        out.extend(body.and_then(|b| b.get("companyId")).and_then(Value::as_str).map(str::to_string));
    }
    out.retain(|c| !c.is_empty());
    out
}

/// A token acts inside its own company only: the company of an agency
/// token, or of a location token's location. `message` empty: not checked.
pub fn check_company(who: &Principal, named: &[String], world: &World, message: &str) -> Result<(), AuthError> {
    if message.is_empty() {
        return Ok(());
    }
    let own = match &who.owner {
        Owner::Company(company) => Some(company.clone()),
        Owner::Location(location) => world.location(location).map(|l| l.company_id.clone()),
    };
    match named.iter().find(|c| Some(*c) != own.as_ref()) {
        Some(_) => Err(AuthError::WrongCompany { message: message.to_string() }),
        None => Ok(()),
    }
}

pub fn check_location(who: &Principal, named: &[String], world: &World) -> Result<(), AuthError> {
    for location_id in named {
        let ok = match &who.owner {
            Owner::Location(own) => own == location_id,
            Owner::Company(company) => world.company_has_location(company, location_id),
        };
        if !ok {
            return Err(AuthError::WrongLocation { location_id: location_id.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert("authorization", HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn the_bearer_value_is_trimmed_like_the_real_server_does() {
        assert_eq!(bearer(&headers(Some("  Bearer   pit-x  "))), Ok("pit-x"));
        assert_eq!(bearer(&headers(None)), Err(AuthError::MissingToken));
        assert_eq!(bearer(&headers(Some("Basic abc"))), Err(AuthError::InvalidJwt));
        assert_eq!(bearer(&headers(Some("Bearer "))), Err(AuthError::InvalidJwt));
        assert_eq!(bearer(&headers(Some(""))), Err(AuthError::MissingToken));
    }

    fn principal(owner: Owner, kind: TokenKind, scopes: &[&str]) -> Principal {
        Principal {
            kind,
            owner,
            scopes: std::sync::Arc::new(scopes.iter().map(|s| s.to_string()).collect()),
            fingerprint: "pit:0".into(),
            client_id: None,
            user_id: None,
        }
    }

    fn op(security: Vec<Vec<(&str, Vec<&str>)>>) -> Operation {
        let mut op =
            crate::spec::load(crate::spec::Source::Embedded(crate::spec::EMBEDDED), 1).unwrap().operations.remove(0);
        op.security = security
            .into_iter()
            .map(|r| r.into_iter().map(|(s, sc)| (s.to_string(), sc.into_iter().map(String::from).collect())).collect())
            .collect();
        op
    }

    #[test]
    fn any_one_requirement_object_is_enough() {
        let o = op(vec![vec![("Agency-Access", vec!["a"])], vec![("Location-Access", vec!["b"])]]);
        assert_eq!(check_security(&o, &principal(Owner::Location("l".into()), TokenKind::Pit, &["b"])), Ok(()));
    }

    #[test]
    fn every_scope_of_one_requirement_is_needed() {
        let o = op(vec![vec![("bearer", vec!["a", "b"])]]);
        let who = principal(Owner::Location("l".into()), TokenKind::Pit, &["a"]);
        assert_eq!(check_security(&o, &who), Err(AuthError::ScopeMissing { scope: "b".into() }));
    }

    #[test]
    fn scope_refusal_wins_over_user_type_when_one_requirement_got_that_far() {
        let o = op(vec![vec![("Location-Access", vec!["x"])], vec![("Agency-Access", vec!["x"])]]);
        let who = principal(Owner::Location("l".into()), TokenKind::Pit, &[]);
        assert_eq!(check_security(&o, &who), Err(AuthError::ScopeMissing { scope: "x".into() }));
    }

    #[test]
    fn pits_are_refused_on_access_only_schemes_and_oauth_is_not() {
        let o = op(vec![vec![("Agency-Access-Only", vec![])]]);
        let agency = Owner::Company("c".into());
        assert_eq!(check_security(&o, &principal(agency.clone(), TokenKind::Pit, &[])), Err(AuthError::PitNotAllowed));
        assert_eq!(check_security(&o, &principal(agency, TokenKind::OAuth, &[])), Ok(()));
    }

    #[test]
    fn an_agency_token_on_a_location_operation_is_a_user_type_mismatch() {
        let o = op(vec![vec![("bearer", vec![])]]);
        let who = principal(Owner::Company("c".into()), TokenKind::Pit, &[]);
        assert_eq!(check_security(&o, &who), Err(AuthError::UserTypeMismatch));
    }
}
