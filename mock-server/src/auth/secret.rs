//! Token secrets: how they are minted, stored and named in logs.
//!
//! The world never keeps a bearer secret it must compare byte by byte: tokens
//! are stored as their SHA-256 digest and looked up by digest, so the time a
//! lookup takes does not depend on how much of a guess was right. Logs, the
//! journal and the control plane name a token only by its [`fingerprint`].

use sha2::{Digest, Sha256};

/// The digest a token is stored and looked up by.
pub type TokenHash = [u8; 32];

pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// A short, stable, non-reversible name for a token: its kind and the first
/// eight hex digits of its digest, e.g. `pit:3fa2c1d0`.
pub fn fingerprint(token: &str) -> String {
    fingerprint_of_hash(kind_prefix(token), &hash(token))
}

pub fn fingerprint_of_hash(prefix: &str, hash: &TokenHash) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(prefix.len() + 9);
    out.push_str(prefix);
    out.push(':');
    for b in &hash[..4] {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

pub fn kind_prefix(token: &str) -> &'static str {
    if token.starts_with("pit-") {
        "pit"
    } else if token.starts_with("ey") {
        "jwt"
    } else {
        "token"
    }
}

/// A new Private Integration Token: `pit-` and a random UUID v4 (40 characters).
pub fn new_pit() -> String {
    format!("pit-{}", uuid::Uuid::new_v4())
}

/// True when `token` has the shape of a PIT.
pub fn looks_like_pit(token: &str) -> bool {
    token.len() == 40 && token.starts_with("pit-") && uuid::Uuid::parse_str(&token[4..]).is_ok()
}

/// True when a path segment (percent-decoded or not) has a token's shape:
/// anything starting `pit-`, or three base64url parts starting `eyJ` (a JWT).
fn token_shaped(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    if lower.starts_with("pit-") || lower.starts_with("pit%2d") {
        return true;
    }
    let parts: Vec<&str> = segment.split('.').collect();
    parts.len() == 3
        && segment.starts_with("eyJ")
        && segment.len() > 20
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// The path with every token-shaped segment replaced by the token's
/// fingerprint, for logs, the journal and reports (a token pasted into a
/// URL is still a secret).
pub fn redact_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.split('/').any(token_shaped) {
        return std::borrow::Cow::Borrowed(path);
    }
    let redacted: Vec<String> =
        path.split('/').map(|s| if token_shaped(s) { fingerprint(s) } else { s.to_string() }).collect();
    std::borrow::Cow::Owned(redacted.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shaped_path_segments_are_replaced_by_their_fingerprint() {
        let pit = new_pit();
        let path = format!("/contacts/{pit}/notes");
        let redacted = redact_path(&path);
        assert!(!redacted.contains(&pit[4..]), "{redacted}");
        assert_eq!(redacted, format!("/contacts/{}/notes", fingerprint(&pit)));
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQ";
        assert!(!redact_path(&format!("/x/{jwt}")).contains("eyJ"));
        assert_eq!(redact_path("/contacts/abc123/notes"), "/contacts/abc123/notes", "ordinary ids stay");
    }

    #[test]
    fn minted_pits_have_the_real_shape() {
        let t = new_pit();
        assert_eq!(t.len(), 40);
        assert!(looks_like_pit(&t));
        assert_ne!(t, new_pit());
    }

    #[test]
    fn a_fingerprint_never_contains_the_token() {
        let t = new_pit();
        let fp = fingerprint(&t);
        assert!(fp.starts_with("pit:"));
        assert_eq!(fp.len(), 12);
        assert!(!fp.contains(&t[4..12]), "the fingerprint must not reveal the token's text");
        assert_eq!(fp, fingerprint(&t), "the same token always has the same fingerprint");
    }
}
