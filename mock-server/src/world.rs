//! The in-memory world: companies (agencies), their locations (sub-accounts),
//! private integrations and their tokens, OAuth apps.
//!
//! The world is seeded from a [`Fixture`] and changed through the control
//! plane. It knows nothing of HTTP; its operations take the current time as an
//! argument rather than reading a clock. Tokens are held as digests
//! (`auth::secret`), so nothing here can leak a full token.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::auth::secret::{self, TokenHash};

/// A token's scopes, shared rather than copied for each request.
pub type Scopes = std::sync::Arc<BTreeSet<String>>;

/// Seven days: how long the old token of a rotation keeps working.
pub const ROTATION_GRACE_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Location(String),
    Company(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    #[default]
    Sandbox,
    Production,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Company {
    pub id: String,
    pub name: String,
    pub environment: Environment,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Location {
    pub id: String,
    pub name: String,
    pub company_id: String,
}

/// A token slot of a private integration.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slot {
    hash: TokenHash,
    fingerprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrivateIntegration {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner: Owner,
    pub scopes: Scopes,
    current: Slot,
    /// The old token during a rotation, and when it stops working.
    previous: Option<(Slot, i64)>,
}

/// What the control plane shows of an integration: never a token.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner: Owner,
    pub scopes: Vec<String>,
    pub token_fingerprint: String,
    /// During a rotation: the old token's fingerprint and its deadline.
    pub rotating: Option<RotationView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RotationView {
    pub old_token_fingerprint: String,
    pub old_token_expires_at_ms: i64,
}

impl PrivateIntegration {
    pub fn view(&self) -> IntegrationView {
        IntegrationView {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            owner: self.owner.clone(),
            scopes: self.scopes.iter().cloned().collect(),
            token_fingerprint: self.current.fingerprint.clone(),
            rotating: self.previous.as_ref().map(|(s, at)| RotationView {
                old_token_fingerprint: s.fingerprint.clone(),
                old_token_expires_at_ms: *at,
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthApp {
    pub client_id: String,
    /// As given in a fixture; the world keeps only its digest
    /// (`sha256:…`, see [`OAuthApp::kept`]), so no state file holds it.
    pub client_secret: String,
    #[serde(default)]
    pub name: String,
    /// Scopes the app may be granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Issue 13: the app's webhook settings (default URL, events, per-event URLs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<crate::webhooks::AppWebhooks>,
}

const DIGEST: &str = "sha256:";

impl OAuthApp {
    /// The app as the world keeps it: the secret replaced by its digest.
    pub fn kept(mut self) -> Self {
        if !self.client_secret.starts_with(DIGEST) {
            let hex: String = secret::hash(&self.client_secret).iter().map(|b| format!("{b:02x}")).collect();
            self.client_secret = format!("{DIGEST}{hex}");
        }
        self
    }

    /// Whether `given` is the app's secret.
    pub fn secret_is(&self, given: &str) -> bool {
        let hex: String = secret::hash(given).iter().map(|b| format!("{b:02x}")).collect();
        match self.client_secret.strip_prefix(DIGEST) {
            Some(kept) => kept == hex,
            None => secret::hash(&self.client_secret) == secret::hash(given),
        }
    }
}

/// A PIT that the world recognised.
#[derive(Debug, Clone, PartialEq)]
pub struct PitHolder {
    pub integration_id: String,
    pub owner: Owner,
    pub scopes: Scopes,
    pub fingerprint: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorldError {
    #[error("no private integration with id '{0}'")]
    UnknownIntegration(String),
    #[error("no location with id '{0}'")]
    UnknownLocation(String),
    #[error("no company with id '{0}'")]
    UnknownCompany(String),
    #[error("'{scope}' is not a scope of the loaded specs{hint}")]
    UnknownScope { scope: String, hint: String },
    #[error("the integration is not being rotated")]
    NotRotating,
    #[error("the integration is already being rotated; cancel or expire the rotation first")]
    AlreadyRotating,
    #[error("token {0} is already in use")]
    TokenInUse(String),
    #[error("invalid token: {0}")]
    BadToken(String),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct World {
    companies: HashMap<String, Company>,
    locations: HashMap<String, Location>,
    integrations: HashMap<String, PrivateIntegration>,
    /// Token digest → integration id; derived from `integrations`.
    #[serde(skip)]
    pit_index: HashMap<TokenHash, String>,
    pub apps: HashMap<String, OAuthApp>,
    /// Custom rate limits of a location or company (by id).
    pub rate_limits: HashMap<String, crate::limits::Profile>,
    /// Issue 13: OAuth apps installed on a location or company, by install id.
    #[serde(default)]
    pub installs: std::collections::BTreeMap<String, crate::webhooks::Install>,
}

impl World {
    /// Rebuilds what is derived after the world was read back from a snapshot.
    pub fn reindex(&mut self) {
        self.pit_index.clear();
        for pi in self.integrations.values() {
            self.pit_index.insert(pi.current.hash, pi.id.clone());
            if let Some((old, _)) = &pi.previous {
                self.pit_index.insert(old.hash, pi.id.clone());
            }
        }
    }

    pub fn company(&self, id: &str) -> Option<&Company> {
        self.companies.get(id)
    }

    pub fn location(&self, id: &str) -> Option<&Location> {
        self.locations.get(id)
    }

    pub fn companies(&self) -> impl Iterator<Item = &Company> {
        self.companies.values()
    }

    pub fn locations(&self) -> impl Iterator<Item = &Location> {
        self.locations.values()
    }

    pub fn integrations(&self) -> impl Iterator<Item = &PrivateIntegration> {
        self.integrations.values()
    }

    pub fn integration(&self, id: &str) -> Result<&PrivateIntegration, WorldError> {
        self.integrations.get(id).ok_or_else(|| WorldError::UnknownIntegration(id.to_string()))
    }

    /// The environment a location or company runs in (it drives rate limits).
    pub fn environment_of(&self, owner: &Owner) -> Environment {
        let company = match owner {
            Owner::Location(l) => self.locations.get(l).map(|l| l.company_id.as_str()),
            Owner::Company(c) => Some(c.as_str()),
        };
        company.and_then(|c| self.companies.get(c)).map(|c| c.environment).unwrap_or_default()
    }

    /// The limits a location or company runs under: its own custom limits,
    /// else its company's, else its environment's profile.
    pub fn rate_profile(&self, owner: &Owner) -> crate::limits::Profile {
        let (own, company) = match owner {
            Owner::Location(l) => (l.as_str(), self.locations.get(l).map(|l| l.company_id.as_str())),
            Owner::Company(c) => (c.as_str(), None),
        };
        self.rate_limits
            .get(own)
            .or_else(|| company.and_then(|c| self.rate_limits.get(c)))
            .copied()
            .unwrap_or_else(|| crate::limits::Profile::for_environment(self.environment_of(owner)))
    }

    /// True when a location belongs to a company.
    pub fn company_has_location(&self, company_id: &str, location_id: &str) -> bool {
        self.locations.get(location_id).is_some_and(|l| l.company_id == company_id)
    }

    pub fn add_company(&mut self, company: Company) {
        self.companies.insert(company.id.clone(), company);
    }

    pub fn add_location(&mut self, location: Location) -> Result<(), WorldError> {
        if !self.companies.contains_key(&location.company_id) {
            return Err(WorldError::UnknownCompany(location.company_id));
        }
        if self.locations.contains_key(&location.id) {
            return Err(WorldError::Invalid(format!("location {} is there already", location.id)));
        }
        self.locations.insert(location.id.clone(), location);
        Ok(())
    }

    fn check_owner(&self, owner: &Owner) -> Result<(), WorldError> {
        match owner {
            Owner::Location(l) if !self.locations.contains_key(l) => Err(WorldError::UnknownLocation(l.clone())),
            Owner::Company(c) if !self.companies.contains_key(c) => Err(WorldError::UnknownCompany(c.clone())),
            _ => Ok(()),
        }
    }

    fn slot_for(&mut self, token: &str, integration_id: &str) -> Result<Slot, WorldError> {
        if !secret::looks_like_pit(token) {
            return Err(WorldError::BadToken("a private integration token is 'pit-' followed by a UUID".into()));
        }
        let hash = secret::hash(token);
        if self.pit_index.contains_key(&hash) {
            return Err(WorldError::TokenInUse(secret::fingerprint(token)));
        }
        self.pit_index.insert(hash, integration_id.to_string());
        Ok(Slot { hash, fingerprint: secret::fingerprint(token) })
    }

    /// Creates a private integration; `token` is minted when not given.
    /// Returns the integration's id and its token (the only time it is shown).
    pub fn create_integration(
        &mut self,
        name: &str,
        description: &str,
        owner: Owner,
        scopes: BTreeSet<String>,
        token: Option<String>,
        id_seed: &mut fastrand::Rng,
    ) -> Result<(String, String), WorldError> {
        self.check_owner(&owner)?;
        let id = crate::respond::generate::id(id_seed);
        let token = token.unwrap_or_else(secret::new_pit);
        let current = self.slot_for(&token, &id)?;
        let integration = PrivateIntegration {
            id: id.clone(),
            name: name.to_string(),
            description: description.to_string(),
            owner,
            scopes: Scopes::new(scopes),
            current,
            previous: None,
        };
        self.integrations.insert(id.clone(), integration);
        Ok((id, token))
    }

    /// Edits name, description or scopes; the token does not change.
    pub fn edit_integration(
        &mut self,
        id: &str,
        name: Option<String>,
        description: Option<String>,
        scopes: Option<BTreeSet<String>>,
    ) -> Result<&PrivateIntegration, WorldError> {
        let pi = self.integrations.get_mut(id).ok_or_else(|| WorldError::UnknownIntegration(id.to_string()))?;
        if let Some(name) = name {
            pi.name = name;
        }
        if let Some(description) = description {
            pi.description = description;
        }
        if let Some(scopes) = scopes {
            pi.scopes = Scopes::new(scopes);
        }
        Ok(pi)
    }

    /// Rotates the token. With `grace`, the old token keeps working for seven
    /// days from `now_ms`; without, it stops at once. Returns the new token.
    pub fn rotate(&mut self, id: &str, grace: bool, now_ms: i64) -> Result<String, WorldError> {
        let rotating = self.integration(id)?.previous.is_some();
        if rotating {
            return Err(WorldError::AlreadyRotating);
        }
        let token = secret::new_pit();
        let slot = self.slot_for(&token, id)?;
        let pi = self.integrations.get_mut(id).ok_or_else(|| WorldError::UnknownIntegration(id.to_string()))?;
        let old = std::mem::replace(&mut pi.current, slot);
        if grace {
            pi.previous = Some((old, now_ms.saturating_add(ROTATION_GRACE_MS)));
        } else {
            self.pit_index.remove(&old.hash);
        }
        Ok(token)
    }

    /// Cancels a rotation: the old token keeps working with no deadline and
    /// the new one is withdrawn.
    pub fn cancel_rotation(&mut self, id: &str) -> Result<(), WorldError> {
        let pi = self.integrations.get_mut(id).ok_or_else(|| WorldError::UnknownIntegration(id.to_string()))?;
        let (old, _) = pi.previous.take().ok_or(WorldError::NotRotating)?;
        let withdrawn = std::mem::replace(&mut pi.current, old);
        self.pit_index.remove(&withdrawn.hash);
        Ok(())
    }

    /// Ends a rotation's grace window now: the old token stops working.
    pub fn expire_now(&mut self, id: &str) -> Result<(), WorldError> {
        let pi = self.integrations.get_mut(id).ok_or_else(|| WorldError::UnknownIntegration(id.to_string()))?;
        let (old, _) = pi.previous.take().ok_or(WorldError::NotRotating)?;
        self.pit_index.remove(&old.hash);
        Ok(())
    }

    /// Deletes an integration: its tokens stop at once, with no grace.
    pub fn delete_integration(&mut self, id: &str) -> Result<(), WorldError> {
        let pi = self.integrations.remove(id).ok_or_else(|| WorldError::UnknownIntegration(id.to_string()))?;
        self.pit_index.remove(&pi.current.hash);
        if let Some((old, _)) = pi.previous {
            self.pit_index.remove(&old.hash);
        }
        Ok(())
    }

    /// The holder of a PIT, if the token works at `now_ms`.
    /// The integration whose current token `token` is (not a rotated-out one).
    pub fn current_token_of(&self, token: &str) -> Option<String> {
        let hash = secret::hash(token);
        let id = self.pit_index.get(&hash)?;
        self.integrations.get(id).filter(|pi| pi.current.hash == hash).map(|pi| pi.id.clone())
    }

    pub fn pit(&self, token: &str, now_ms: i64) -> Option<PitHolder> {
        let hash = secret::hash(token);
        let id = self.pit_index.get(&hash)?;
        let pi = self.integrations.get(id)?;
        let works = pi.current.hash == hash
            || pi.previous.as_ref().is_some_and(|(old, deadline)| old.hash == hash && now_ms < *deadline);
        works.then(|| PitHolder {
            integration_id: pi.id.clone(),
            owner: pi.owner.clone(),
            scopes: pi.scopes.clone(),
            fingerprint: secret::fingerprint_of_hash("pit", &hash),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> (World, String) {
        let mut w = World::default();
        w.add_company(Company { id: "c1".into(), name: "Agency".into(), environment: Environment::Sandbox });
        w.add_location(Location { id: "l1".into(), name: "A".into(), company_id: "c1".into() }).unwrap();
        let (id, _) = w
            .create_integration(
                "ci",
                "",
                Owner::Location("l1".into()),
                BTreeSet::new(),
                None,
                &mut fastrand::Rng::with_seed(1),
            )
            .unwrap();
        (w, id)
    }

    #[test]
    fn a_rotated_token_works_until_its_deadline_and_not_after() {
        let (mut w, id) = world();
        let old = {
            let mut rng = fastrand::Rng::with_seed(2);
            let (id2, t) =
                w.create_integration("x", "", Owner::Location("l1".into()), BTreeSet::new(), None, &mut rng).unwrap();
            w.delete_integration(&id2).unwrap();
            t
        };
        assert!(w.pit(&old, 0).is_none(), "a deleted integration's token stops at once");
        let current_before = w.integration(&id).unwrap().current.hash;
        let new = w.rotate(&id, true, 1_000).unwrap();
        assert_ne!(secret::hash(&new), current_before);
        assert!(w.pit(&new, 1_000).is_some());
        let deadline = 1_000 + ROTATION_GRACE_MS;
        let (slot, at) = w.integration(&id).unwrap().previous.clone().unwrap();
        assert_eq!(at, deadline);
        assert_eq!(slot.hash, current_before);
    }

    #[test]
    fn a_second_rotation_during_the_window_is_refused() {
        let (mut w, id) = world();
        w.rotate(&id, true, 0).unwrap();
        assert_eq!(w.rotate(&id, true, 0), Err(WorldError::AlreadyRotating));
    }

    #[test]
    fn cancelling_without_a_rotation_is_refused() {
        let (mut w, id) = world();
        assert_eq!(w.cancel_rotation(&id), Err(WorldError::NotRotating));
        assert_eq!(w.expire_now(&id), Err(WorldError::NotRotating));
    }

    #[test]
    fn an_integration_for_an_unknown_location_is_refused() {
        let mut w = World::default();
        let err = w
            .create_integration(
                "x",
                "",
                Owner::Location("nope".into()),
                BTreeSet::new(),
                None,
                &mut fastrand::Rng::with_seed(1),
            )
            .unwrap_err();
        assert_eq!(err, WorldError::UnknownLocation("nope".into()));
    }
}
