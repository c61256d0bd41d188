//! The fixture file: the world a mock starts with (`serve --fixture FILE`).
//!
//! JSON or YAML. Tokens may be given so that a CI job can hand the same token
//! to the client under test; a private integration without one gets a fresh
//! token, printed once at start-up. See README.md for the format.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::limits::Profile;
use crate::world::{Company, Environment, Location, OAuthApp, Owner, World, WorldError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub companies: Vec<FixtureCompany>,
    #[serde(default)]
    pub private_integrations: Vec<FixtureIntegration>,
    #[serde(default)]
    pub oauth_apps: Vec<OAuthApp>,
    /// Injected 429s armed at start-up (and again on reset).
    #[serde(default)]
    pub rate_limit_injections: Vec<crate::limits::Injection>,
    /// Issue 13: the webhook signing key.
    #[serde(default)]
    pub webhooks: Option<crate::webhooks::FixtureWebhooks>,
    /// Issue 13: apps installed before the mock starts (no INSTALL is sent for them).
    #[serde(default)]
    pub oauth_installs: Vec<crate::webhooks::FixtureInstall>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureCompany {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub environment: Environment,
    /// Custom limits for every location of the company (and its agency tokens).
    #[serde(default)]
    pub rate_limits: Option<Profile>,
    #[serde(default)]
    pub locations: Vec<FixtureLocation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureLocation {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Custom limits of this location.
    #[serde(default)]
    pub rate_limits: Option<Profile>,
    /// Accept two contacts with the same email or phone (HighLevel's
    /// "allow duplicate contacts" setting; off by default, as in HighLevel).
    #[serde(default)]
    pub allow_duplicate_contacts: bool,
    /// More fields of the location's own record (`GET /locations/{id}`):
    /// address, timezone, email, …
    #[serde(default)]
    pub profile: serde_json::Map<String, serde_json::Value>,
    /// Records the location starts with, by name (`contacts`, `pipelines`,
    /// `calendars`, `users`, `customFields`, … or a collection path such as
    /// `/links`); see README "Fixture records".
    #[serde(default)]
    pub records: std::collections::BTreeMap<String, Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureIntegration {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `{location: ID}` or `{company: ID}`.
    pub owner: Owner,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A fixed token (`pit-` + UUID v4); minted when absent.
    #[serde(default)]
    pub token: Option<String>,
}

/// The world a newcomer gets without `--fixture`: one sandbox agency, two
/// locations, one PIT with the scopes integrations use most.
pub const DEFAULT: &str = r#"
companies:
  - id: ghlMockCompany000001
    name: Sandbox Agency
    environment: sandbox
    locations:
      - id: ghlMockLocationA0001
        name: Sandbox Location A
        profile:
          email: hello@sandbox-a.example
          phone: "+14155550100"
          timezone: America/New_York
          country: US
          website: https://sandbox-a.example
        records:
          users:
            - {id: ghlMockUserAlice0001, name: Alice Admin, firstName: Alice, lastName: Admin, email: alice@sandbox-a.example, phone: "+14155550101", roles: {type: account, role: admin, locationIds: [ghlMockLocationA0001]}}
            - {id: ghlMockUserBob000002, name: Bob Sales, firstName: Bob, lastName: Sales, email: bob@sandbox-a.example, phone: "+14155550102", roles: {type: account, role: user, locationIds: [ghlMockLocationA0001]}}
          pipelines:
            - id: ghlMockPipeline00001
              name: Sales Pipeline
              stages:
                - {id: ghlMockStageNew00001, name: New Lead, position: 0}
                - {id: ghlMockStageQualify1, name: Qualified, position: 1}
                - {id: ghlMockStageWon00001, name: Won, position: 2}
          calendars:
            - {id: ghlMockCalendar00001, name: Discovery Call, description: A 30-minute first call, calendarType: event, slotDuration: 30, slotDurationUnit: mins, isActive: true}
          customFields:
            - {id: ghlMockFieldBudget01, name: Budget, fieldKey: contact.budget, dataType: MONETORY, model: contact, position: 0}
            - {id: ghlMockFieldSource01, name: Lead Source, fieldKey: contact.lead_source, dataType: TEXT, model: contact, position: 1}
          tags:
            - {id: ghlMockTagVip000001, name: vip}
          contacts:
            - {id: ghlMockContactAnn001, firstName: Ann, lastName: Lee, email: ann.lee@example.com, phone: "+14155550111", source: fixture, tags: [vip]}
            - {id: ghlMockContactRaj001, firstName: Raj, lastName: Patel, email: raj.patel@example.com, phone: "+14155550112", source: fixture, tags: []}
      - id: ghlMockLocationB0002
        name: Sandbox Location B
        records:
          pipelines:
            - id: ghlMockPipeline00002
              name: Onboarding
              stages:
                - {id: ghlMockStageStartB01, name: Kick-off, position: 0}
                - {id: ghlMockStageDoneB001, name: Live, position: 1}
private_integrations:
  - name: Default PIT
    description: Minted at start-up by ghl-mock
    owner: {location: ghlMockLocationA0001}
    scopes:
      - contacts.readonly
      - contacts.write
      - locations.readonly
      - locations/customFields.readonly
      - locations/customFields.write
      - locations/customValues.readonly
      - locations/customValues.write
      - locations/tags.readonly
      - locations/tags.write
      - opportunities.readonly
      - opportunities.write
      - users.readonly
      - users.write
      - calendars.readonly
      - calendars.write
      - calendars/events.readonly
      - calendars/events.write
      - conversations.readonly
      - conversations.write
      - conversations/message.readonly
      - conversations/message.write
"#;

/// A token the fixture minted or named, to tell the user once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub integration_id: String,
    pub name: String,
    pub owner: Owner,
    pub token: String,
    pub minted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {source}")]
    World { file: String, source: WorldError },
}

pub fn parse(file: &str, text: &str) -> Result<Fixture, FixtureError> {
    let value = crate::spec::parse_document(file, text)
        .map_err(|message| FixtureError::Parse { file: file.into(), message })?;
    let fixture: Fixture =
        serde_json::from_value(value).map_err(|e| FixtureError::Parse { file: file.into(), message: e.to_string() })?;
    for location in fixture.companies.iter().flat_map(|c| &c.locations) {
        for (name, items) in &location.records {
            if crate::resources::seed::kind_for(name).is_none() {
                let known: Vec<&str> = crate::resources::seed::NAMES.iter().map(|(n, _)| *n).collect();
                return Err(FixtureError::Parse {
                    file: file.into(),
                    message: format!(
                        "location {}: unknown records '{name}' (known: {}, or a collection path like /links)",
                        location.id,
                        known.join(", ")
                    ),
                });
            }
            if let Some(bad) = items.iter().position(|i| !i.is_object()) {
                return Err(FixtureError::Parse {
                    file: file.into(),
                    message: format!("location {}: records.{name}[{bad}] is not an object", location.id),
                });
            }
        }
    }
    Ok(fixture)
}

/// Builds the world a fixture describes. `known_scopes` (the loaded specs'
/// scopes) catches typos in scopes; `None` accepts any scope (the embedded
/// default, which must work with whatever specs are served).
pub fn build(
    file: &str,
    fixture: &Fixture,
    known_scopes: Option<&BTreeSet<String>>,
    rng: &mut fastrand::Rng,
) -> Result<(World, Vec<IssuedToken>), FixtureError> {
    let err = |source| FixtureError::World { file: file.into(), source };
    let mut world = World::default();
    let limits = |id: &str, profile: Option<Profile>| match profile {
        Some(p) if p.burst == 0 || p.window_ms == 0 || p.daily == 0 => Err(err(WorldError::Invalid(format!(
            "rate_limits of {id}: burst, window_ms and daily must be positive (a zero would switch the limit off)"
        )))),
        other => Ok(other),
    };
    for c in &fixture.companies {
        if world.company(&c.id).is_some() {
            return Err(err(WorldError::Invalid(format!("company {} appears twice", c.id))));
        }
        world.add_company(Company { id: c.id.clone(), name: c.name.clone(), environment: c.environment });
        if let Some(profile) = limits(&c.id, c.rate_limits)? {
            world.rate_limits.insert(c.id.clone(), profile);
        }
        for l in &c.locations {
            world
                .add_location(Location { id: l.id.clone(), name: l.name.clone(), company_id: c.id.clone() })
                .map_err(err)?;
            if let Some(profile) = limits(&l.id, l.rate_limits)? {
                world.rate_limits.insert(l.id.clone(), profile);
            }
        }
    }
    let mut issued = Vec::new();
    for pi in &fixture.private_integrations {
        let scopes = match known_scopes {
            Some(known) => check_scopes(&pi.scopes, known).map_err(err)?,
            None => pi.scopes.iter().cloned().collect(),
        };
        let (id, token) = world
            .create_integration(&pi.name, &pi.description, pi.owner.clone(), scopes, pi.token.clone(), rng)
            .map_err(err)?;
        issued.push(IssuedToken {
            integration_id: id,
            name: pi.name.clone(),
            owner: pi.owner.clone(),
            token,
            minted: pi.token.is_none(),
        });
    }
    for app in &fixture.oauth_apps {
        if let Some(known) = known_scopes {
            check_scopes(&app.scopes, known).map_err(err)?;
        }
        if let Some(hooks) = &app.webhooks {
            hooks.check().map_err(|m| err(WorldError::Invalid(format!("oauth app {}: {m}", app.client_id))))?;
        }
        world.apps.insert(app.client_id.clone(), app.clone().kept());
    }
    crate::webhooks::fixture_installs(&mut world, &fixture.oauth_installs, 0)
        .map_err(|m| err(WorldError::Invalid(m)))?;
    Ok((world, issued))
}

/// Issue 13: the fixture's webhook signing key (a 32-byte seed), if it gives one.
pub fn webhook_seed(file: &str, fixture: &Fixture) -> Result<Option<Vec<u8>>, FixtureError> {
    let Some(text) = fixture.webhooks.as_ref().and_then(|w| w.signing_key.as_deref()) else { return Ok(None) };
    crate::webhooks::sign::seed_from_text(text)
        .map(Some)
        .map_err(|message| FixtureError::Parse { file: file.into(), message })
}

/// Locations that accept two contacts with one email or phone.
pub fn duplicates_allowed(fixture: &Fixture) -> BTreeSet<String> {
    fixture
        .companies
        .iter()
        .flat_map(|c| &c.locations)
        .filter(|l| l.allow_duplicate_contacts)
        .map(|l| l.id.clone())
        .collect()
}

/// The scopes as a set, refusing any that no loaded operation names.
pub fn check_scopes(scopes: &[String], known: &BTreeSet<String>) -> Result<BTreeSet<String>, WorldError> {
    if let Some(unknown) = scopes.iter().find(|s| !known.contains(*s)) {
        let hint = crate::suggest::hint(unknown, known.iter().map(String::as_str));
        return Err(WorldError::UnknownScope { scope: unknown.clone(), hint });
    }
    Ok(scopes.iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typo anywhere in a fixture is refused with the field named, never ignored.
    #[test]
    fn a_misspelt_field_anywhere_in_a_fixture_is_refused_by_name() {
        let cases = [
            ("oauth_apps: [{client_id: a-b, client_secret: s, scope: [contacts.readonly]}]", "scope"),
            (
                "companies: [{id: c, locations: [{id: l, rate_limits: {burst: 1, window_ms: 1, daily: 1, dayly: 2}}]}]",
                "dayly",
            ),
            ("rate_limit_injections: [{target: {resource: l}, count: 1, cuont: 2}]", "cuont"),
            ("companies: [{id: c, locaitons: []}]", "locaitons"),
            ("private_integrations: [{name: n, owner: {location: l}, scope: []}]", "scope"),
        ];
        for (text, field) in cases {
            match parse("typo.yaml", text) {
                Err(FixtureError::Parse { message, .. }) => {
                    assert!(message.contains(&format!("unknown field `{field}`")), "{text}: {message}")
                }
                other => panic!("{text}: a typo was accepted: {other:?}"),
            }
        }
        assert!(parse("fine.yaml", "oauth_apps: [{client_id: a-b, client_secret: s, scopes: []}]").is_ok());
    }
}
