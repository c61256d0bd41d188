//! Who may call what: tokens, their owners and scopes, and the check of a
//! request against an operation's security requirements.

pub mod check;
pub mod oauth;
pub mod secret;

use axum::http::StatusCode;

use crate::config::Fidelity;

/// Every way the auth layer refuses a request, in the order the real API
/// checks them (BEHAVIOUR.md §3, rows 2–11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    MissingToken,
    InvalidJwt,
    ExpiredJwt,
    InvalidPit,
    VersionMissing,
    VersionInvalid,
    PitNotAllowed,
    UserTypeMismatch,
    /// A location token on the agency-only location-token exchange [seen].
    UserTypeNotSupported,
    ScopeMissing {
        scope: String,
    },
    WrongLocation {
        location_id: String,
    },
    /// A `companyId` that is not the token's company (the text is a fidelity setting).
    WrongCompany {
        message: String,
    },
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::WrongLocation { .. } | AuthError::WrongCompany { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn message(&self, fidelity: &Fidelity) -> String {
        match self {
            AuthError::MissingToken => fidelity.missing_token_message.clone(),
            AuthError::InvalidJwt => "Invalid JWT".into(),
            AuthError::ExpiredJwt => fidelity.expired_token_message.clone(),
            AuthError::InvalidPit => "Invalid Private Integration token".into(),
            AuthError::VersionMissing => "version header was not found.".into(),
            AuthError::VersionInvalid => "version header is invalid".into(),
            AuthError::PitNotAllowed => fidelity.pit_not_allowed_message.clone(),
            AuthError::UserTypeMismatch => "Token's user type mismatch!".into(),
            AuthError::UserTypeNotSupported => "This token's user type is not yet supported!".into(),
            AuthError::ScopeMissing { .. } => "The token is not authorized for this scope.".into(),
            AuthError::WrongLocation { .. } => "The token does not have access to this location.".into(),
            AuthError::WrongCompany { message } => message.clone(),
        }
    }
}
