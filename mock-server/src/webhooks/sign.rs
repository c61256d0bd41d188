//! The mock's Ed25519 key for `x-ghl-signature`: base64 of the signature
//! over the exact body bytes sent, as HighLevel signs (WEBHOOKS.md §3). The
//! mock cannot sign with HighLevel's key, so it publishes its own public key
//! (SPKI PEM and raw base64), which a handler sets as
//! `WEBHOOK_SIGNATURE_PUBLIC_KEY`. The private key never leaves this module.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey};

pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        write!(f, "Signer({})", self.public_raw_base64())
    }
}

/// A fresh 32-byte seed from the operating system's random source.
pub fn generate_seed() -> Result<Vec<u8>, String> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    Ok(key.to_bytes().to_vec())
}

/// A seed from a fixture: a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`),
/// or base64 of the 32-byte seed.
pub fn seed_from_text(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        let key = SigningKey::from_pkcs8_pem(text)
            .map_err(|e| format!("webhooks.signing_key is not an Ed25519 PKCS#8 PEM private key: {e}"))?;
        return Ok(key.to_bytes().to_vec());
    }
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| "webhooks.signing_key must be a PKCS#8 PEM or base64 of a 32-byte Ed25519 seed".to_string())?;
    if bytes.len() != 32 {
        return Err(format!("webhooks.signing_key decodes to {} bytes; an Ed25519 seed is 32", bytes.len()));
    }
    Ok(bytes)
}

impl Signer {
    pub fn from_seed(seed: &[u8]) -> Result<Self, String> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| format!("an Ed25519 seed is 32 bytes, not {}", seed.len()))?;
        Ok(Self { key: SigningKey::from_bytes(&seed) })
    }

    /// `x-ghl-signature`: base64 of the 64-byte signature over `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        STANDARD.encode(self.key.sign(body).to_bytes())
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), as HighLevel publishes its own.
    pub fn public_pem(&self) -> String {
        self.key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The raw 32-byte public key, base64: what the official SDKs also accept.
    pub fn public_raw_base64(&self) -> String {
        STANDARD.encode(self.key.verifying_key().to_bytes())
    }
}

/// The legacy `x-wh-signature`: base64 of an RSASSA-PKCS1-v1_5 / SHA-256
/// signature over the same bytes, with an RSA-4096 key as HighLevel's.
/// HighLevel stopped sending it on 2026-09-01; off unless the fidelity
/// setting `webhooks.legacy_signature` is on.
pub struct LegacySigner {
    key: rsa::RsaPrivateKey,
}

/// HighLevel's legacy key is RSA-4096 (its signatures are 512 bytes).
pub const LEGACY_BITS: usize = 4096;

/// A fresh RSA key, as PKCS#1 DER (what the outbox keeps and shares).
pub fn generate_legacy_der() -> Result<Vec<u8>, String> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, LEGACY_BITS).map_err(|e| e.to_string())?;
    Ok(key.to_pkcs1_der().map_err(|e| e.to_string())?.as_bytes().to_vec())
}

impl LegacySigner {
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        Ok(Self { key: rsa::RsaPrivateKey::from_pkcs1_der(der).map_err(|e| e.to_string())? })
    }

    pub fn sign(&self, body: &[u8]) -> Result<String, String> {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(body);
        let signature = self.key.sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest).map_err(|e| e.to_string())?;
        Ok(STANDARD.encode(signature))
    }

    /// The public key as SPKI PEM, as HighLevel published its legacy key.
    pub fn public_pem(&self) -> String {
        use rsa::pkcs8::EncodePublicKey;
        self.key.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::DecodePublicKey;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn a_signature_verifies_against_the_published_pem_and_fails_for_other_bytes() {
        let signer = Signer::from_seed(&generate_seed().unwrap()).unwrap();
        let body = br#"{"type":"ContactCreate","locationId":"x"}"#;
        let signature = STANDARD.decode(signer.sign(body)).unwrap();
        let public = VerifyingKey::from_public_key_pem(&signer.public_pem()).unwrap();
        let signature = Signature::from_slice(&signature).unwrap();
        assert!(public.verify(body, &signature).is_ok());
        assert!(public.verify(br#"{"type":"ContactCreate","locationId":"y"}"#, &signature).is_err());
        assert_eq!(STANDARD.decode(signer.public_raw_base64()).unwrap(), public.to_bytes());
        assert!(signer.public_pem().starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
    }

    #[test]
    fn a_legacy_signature_is_rsa_sha256_over_the_same_bytes_and_512_bytes_long() {
        use rsa::pkcs8::DecodePublicKey as _;
        use sha2::Digest;
        let signer = LegacySigner::from_der(&generate_legacy_der().unwrap()).unwrap();
        let body = br#"{"type":"ContactCreate"}"#;
        let signature = STANDARD.decode(signer.sign(body).unwrap()).unwrap();
        assert_eq!(signature.len(), 512);
        let public = rsa::RsaPublicKey::from_public_key_pem(&signer.public_pem()).unwrap();
        let scheme = || rsa::Pkcs1v15Sign::new::<sha2::Sha256>();
        assert!(public.verify(scheme(), &sha2::Sha256::digest(body), &signature).is_ok());
        assert!(public.verify(scheme(), &sha2::Sha256::digest(b"{}"), &signature).is_err());
    }

    #[test]
    fn a_fixture_key_is_a_pem_or_a_base64_seed_and_nothing_else() {
        let seed = generate_seed().unwrap();
        assert_eq!(seed_from_text(&STANDARD.encode(&seed)).unwrap(), seed);
        let pem = {
            use ed25519_dalek::pkcs8::EncodePrivateKey;
            SigningKey::from_bytes(&seed.clone().try_into().unwrap()).to_pkcs8_pem(LineEnding::LF).unwrap()
        };
        assert_eq!(seed_from_text(&pem).unwrap(), seed);
        assert!(seed_from_text("not a key").is_err());
        assert!(seed_from_text(&STANDARD.encode([1u8; 16])).unwrap_err().contains("16 bytes"));
    }
}
