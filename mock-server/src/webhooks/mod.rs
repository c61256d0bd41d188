//! Issue 13: webhooks. The mock sends HighLevel's signed events to the apps
//! installed where a record changed, as HighLevel does (WEBHOOKS.md).
//!
//! How the pieces fit: the resource engine calls [`record_changed`] after a
//! create, update or delete; [`events`] turns the change into events
//! (`ContactCreate`, `OpportunityStatusUpdate`, …); [`Webhooks::emit`]
//! addresses each event to every install of the location (or company) whose
//! app has the event on and holds its scope, builds the exact body once
//! (compact JSON, flat, with the envelope `type, locationId, versionId,
//! appId, …, timestamp, webhookId`) and puts it in the outbox
//! (`state::deliveries`). [`deliver`] claims due deliveries from the outbox,
//! signs the body ([`sign`]) and sends it, and schedules retries on the
//! mock's clock, so advancing the virtual clock sends due retries at once.
//! [`control`] is the control plane's part: installs, app settings, the
//! deliveries journal, resends, the public key.
//!
//! This module never touches records itself except for the simulated
//! inbound message, and nothing here holds a lock across an await.

pub mod control;
pub mod deliver;
pub mod events;
pub mod sign;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::clock::iso8601;
use crate::state::deliveries::{Deliveries, Delivery, DeliveryState};
use crate::state::StateError;
use crate::world::{Owner, World};
use crate::Clock;

pub use events::{Change, Event, Target};

pub const INSTALL: &str = "INSTALL";
pub const UNINSTALL: &str = "UNINSTALL";

/// An app's webhook settings, as in HighLevel's app settings: a default URL,
/// per-event toggles (absent: every event) and optional per-event URLs.
/// `INSTALL` and `UNINSTALL` go to the default URL only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppWebhooks {
    /// The Default Webhook URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Events turned on; absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// A URL per event, instead of the default one (an event named here is on).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub urls: BTreeMap<String, String>,
}

impl AppWebhooks {
    /// Where an event goes, if the app has it on.
    pub fn url_for(&self, event: &str) -> Option<&str> {
        if event == INSTALL || event == UNINSTALL {
            return self.url.as_deref();
        }
        if let Some(url) = self.urls.get(event) {
            return Some(url);
        }
        let on = self.events.as_ref().is_none_or(|e| e.iter().any(|n| n == event));
        if on {
            self.url.as_deref()
        } else {
            None
        }
    }

    /// Refuses a URL that is not http(s) and an event name HighLevel does not send.
    pub fn check(&self) -> Result<(), String> {
        for url in self.url.iter().chain(self.urls.values()) {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhook URL '{url}' is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("webhook URL '{url}' must be http or https"));
            }
        }
        for name in self.events.iter().flatten().chain(self.urls.keys()) {
            if !events::KNOWN.contains(&name.as_str()) {
                return Err(format!(
                    "'{name}' is not a webhook event HighLevel sends (known: {})",
                    events::KNOWN.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// An OAuth app installed on a location or a company (agency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Install {
    pub id: String,
    pub client_id: String,
    pub owner: Owner,
    /// The location's company, or the company itself.
    pub company_id: String,
    /// What the install granted; events need their scope here.
    pub scopes: Vec<String>,
    pub user_id: String,
    pub installed_at_ms: i64,
}

/// The fixture's `webhooks:` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureWebhooks {
    /// The Ed25519 private key: PKCS#8 PEM, or base64 of the 32-byte seed.
    /// Absent: a fresh key at start.
    #[serde(default)]
    pub signing_key: Option<String>,
}

/// The fixture's `oauth_installs:` items: apps installed before the mock started (no INSTALL is sent).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureInstall {
    pub client_id: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    /// Default: the app's scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// Which answers HighLevel retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetryPolicy {
    /// Since 2026: any non-2xx and no answer, up to 12 retries, exponential backoff with jitter.
    #[default]
    Current,
    /// Oct 2025 – Mar 2026: only 429, every 10 minutes plus jitter, at most 6 retries.
    Legacy429,
}

/// Delivery settings (fidelity profile `webhooks:`); the numbers HighLevel
/// does not publish are guesses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case", deny_unknown_fields)]
pub struct Settings {
    pub retry_policy: RetryPolicy,
    /// Retries after the first attempt (HighLevel: 12).
    pub max_retries: u32,
    /// The first retry's delay; each next one doubles. [guess]
    pub backoff_base_ms: i64,
    /// The longest delay between two attempts. [guess]
    pub backoff_max_ms: i64,
    /// Random extra delay, up to this fraction of the delay. [guess]
    pub jitter: f64,
    /// Legacy policy: the interval and the number of retries of a 429.
    pub legacy_interval_ms: i64,
    pub legacy_max_retries: u32,
    /// No answer within this long is a failed attempt (real time). [guess: 10 s]
    pub timeout_ms: u64,
    /// The report calls a handler slower than this slow.
    pub slow_ms: u64,
    /// Deliveries kept (pending ones are never forgotten; when all are pending, new events are dropped).
    pub queue_capacity: usize,
    /// Deliveries sent at once.
    pub concurrency: usize,
    /// Copy real deliveries where they differ from the docs: opportunity
    /// fan-out, slim task and DND payloads (WEBHOOKS.md §2.2).
    pub real_quirks: bool,
    /// Also send the legacy `x-wh-signature` (RSA-SHA256), which HighLevel
    /// retired on 2026-09-01. Off: only `x-ghl-signature`, as HighLevel now.
    pub legacy_signature: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retry_policy: RetryPolicy::Current,
            max_retries: 12,
            backoff_base_ms: 10_000,
            backoff_max_ms: 3_600_000,
            jitter: 0.5,
            legacy_interval_ms: 600_000,
            legacy_max_retries: 6,
            timeout_ms: 10_000,
            slow_ms: 5_000,
            queue_capacity: 10_000,
            concurrency: 16,
            real_quirks: true,
            legacy_signature: false,
        }
    }
}

/// A client id in HighLevel's shape: `<24 hex>-<8 chars>`.
pub fn new_client_id(rng: &mut fastrand::Rng) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let app: String = (0..24).map(|_| HEX[rng.usize(..HEX.len())] as char).collect();
    let tail: String = (0..8).map(|_| LOWER[rng.usize(..LOWER.len())] as char).collect();
    format!("{app}-{tail}")
}

/// `appId` in payloads: the client id before its first dash, as the official SDKs check.
pub fn app_id(client_id: &str) -> &str {
    client_id.split('-').next().unwrap_or(client_id)
}

/// The webhooks of one mock: its outbox, its key, its sender.
pub struct Webhooks {
    inner: Arc<deliver::Sender>,
}

impl Webhooks {
    /// `seed`: the fixture's key, or `None` for a fresh one.
    pub fn new(settings: Settings, clock: Clock, store: Arc<dyn Deliveries>, seed: Option<Vec<u8>>) -> Self {
        Self { inner: deliver::Sender::new(settings, clock, store, seed) }
    }

    pub fn store(&self) -> &Arc<dyn Deliveries> {
        &self.inner.store
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The public key: (SPKI PEM, raw base64).
    pub async fn public_key(&self) -> Result<(String, String), StateError> {
        let signer = self.inner.signer().await?;
        Ok((signer.public_pem(), signer.public_raw_base64()))
    }

    /// The legacy RSA public key (SPKI PEM), when `legacy_signature` is on.
    pub async fn legacy_public_key(&self) -> Result<Option<String>, StateError> {
        if !self.inner.settings.legacy_signature {
            return Ok(None);
        }
        Ok(Some(self.inner.legacy_signer().await?.public_pem()))
    }

    /// Starts the sender (inside a runtime; once).
    pub fn start(&self) {
        self.inner.ensure_worker();
    }

    /// Tells the sender to look for due deliveries now (the clock moved).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Sends every delivery due now and waits until no attempt is in flight.
    pub async fn flush(&self) {
        self.inner.flush().await;
    }

    /// A manual resend: one attempt now, outside the schedule.
    pub async fn resend(&self, webhook_id: &str) -> Result<control::Resent, StateError> {
        self.inner.resend(webhook_id).await
    }

    /// Addresses `events` to the installs that get them and queues them.
    pub async fn emit(&self, world: &World, events: Vec<Event>) {
        for event in events {
            for install in world.installs.values() {
                let here = match (&event.target, &install.owner) {
                    (Target::Location(l), Owner::Location(o)) | (Target::Company(l), Owner::Company(o)) => l == o,
                    _ => false,
                };
                if !here {
                    continue;
                }
                let Some(app) = world.apps.get(&install.client_id) else { continue };
                let Some(url) = app.webhooks.as_ref().and_then(|w| w.url_for(&event.kind)) else { continue };
                if event.scope.is_some_and(|scope| !install.scopes.iter().any(|s| s == scope)) {
                    continue;
                }
                let mut head = Map::new();
                head.insert("type".into(), json!(event.kind));
                match &event.target {
                    Target::Location(l) => head.insert("locationId".into(), json!(l)),
                    Target::Company(c) => head.insert("companyId".into(), json!(c)),
                };
                head.insert("versionId".into(), json!(app_id(&install.client_id)));
                head.insert("appId".into(), json!(app_id(&install.client_id)));
                for (k, v) in &event.fields {
                    head.entry(k.clone()).or_insert_with(|| v.clone());
                }
                self.queue(&event.kind, install, event_location(&event.target), url, head).await;
            }
        }
    }

    /// `INSTALL` or `UNINSTALL` of `install`, to the app's default URL.
    pub async fn app_event(&self, world: &World, kind: &str, install: &Install) {
        let Some(app) = world.apps.get(&install.client_id) else { return };
        let Some(url) = app.webhooks.as_ref().and_then(|w| w.url_for(kind)) else { return };
        let app_id = app_id(&install.client_id);
        let (install_type, location) = match &install.owner {
            Owner::Location(l) => ("Location", Some(l.clone())),
            Owner::Company(_) => ("Company", None),
        };
        let mut body = Map::new();
        body.insert("type".into(), json!(kind));
        body.insert("appId".into(), json!(app_id));
        body.insert("versionId".into(), json!(app_id));
        body.insert("installType".into(), json!(install_type));
        if let Some(l) = &location {
            body.insert("locationId".into(), json!(l));
        }
        body.insert("companyId".into(), json!(install.company_id));
        if kind == INSTALL {
            body.insert("userId".into(), json!(install.user_id));
            let company_name = world.company(&install.company_id).map(|c| c.name.clone()).unwrap_or_default();
            body.insert("companyName".into(), json!(company_name));
            body.insert("isWhitelabelCompany".into(), json!(false));
            body.insert("whitelabelDetails".into(), json!({}));
        }
        let about = location.unwrap_or_else(|| install.company_id.clone());
        self.queue(kind, install, Some(about), url, body).await;
    }

    async fn queue(
        &self,
        kind: &str,
        install: &Install,
        location: Option<String>,
        url: &str,
        mut body: Map<String, Value>,
    ) {
        let now = self.inner.clock.now_ms();
        let webhook_id = uuid::Uuid::new_v4().to_string();
        body.insert("timestamp".into(), json!(iso8601(now)));
        body.insert("webhookId".into(), json!(webhook_id));
        // Compact, keys in sent order, raw UTF-8, `/` unescaped: what JSON.stringify makes.
        let text = match serde_json::to_string(&Value::Object(body)) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(event = kind, "webhook body could not be written: {e}");
                return;
            }
        };
        let delivery = Delivery {
            webhook_id: webhook_id.clone(),
            event: kind.to_string(),
            client_id: install.client_id.clone(),
            location,
            url: url.to_string(),
            body: Arc::from(text),
            created_ms: now,
            state: DeliveryState::Pending,
            next_attempt_at_ms: Some(now),
            attempts: Vec::new(),
            in_flight: false,
        };
        match self.inner.store.enqueue(delivery).await {
            Ok(true) => {
                self.start();
                self.wake();
            }
            Ok(false) => {
                tracing::warn!(event = kind, webhook_id, "webhook dropped: the outbox is full of pending deliveries")
            }
            Err(e) => tracing::warn!(event = kind, webhook_id, "webhook not queued: {e}"),
        }
    }
}

fn event_location(target: &Target) -> Option<String> {
    match target {
        Target::Location(l) | Target::Company(l) => Some(l.clone()),
    }
}

/// The hook point of the resource engine: a record of the call's kind in
/// `location` changed. Cheap when nothing is installed: the change (whose
/// records may have to be read from their bodies) is made only when an
/// event can be sent.
pub async fn record_changed<'r>(
    call: &crate::resources::Call<'_>,
    location: &str,
    change: impl FnOnce() -> Change<'r> + Send,
) {
    if call.world.installs.is_empty() || !events::sends_events(call.kind()) {
        return;
    }
    let events = events::of_change(call.kind(), location, change(), call.mock.config.fidelity.webhooks.real_quirks);
    if !events.is_empty() {
        call.mock.webhooks.emit(call.world, events).await;
    }
}

/// Installs from the fixture, into a world being built.
pub fn fixture_installs(world: &mut World, installs: &[FixtureInstall], now_ms: i64) -> Result<(), String> {
    for (n, i) in installs.iter().enumerate() {
        let install = control::new_install(
            world,
            &i.client_id,
            i.location.clone(),
            i.company.clone(),
            i.scopes.clone(),
            None,
            now_ms,
        )
        .map_err(|e| format!("oauth_installs[{n}]: {e}"))?;
        world.installs.insert(install.id.clone(), install);
    }
    Ok(())
}
