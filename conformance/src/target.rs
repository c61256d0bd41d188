//! What the suite runs against: a base URL, credentials, and capabilities.
//!
//! - [`Target::mock`] starts ghl-mock in process, exactly as the binary does
//!   (`ghl_mock::serve` on a 127.0.0.1:0 listener), with a world the suite
//!   writes itself ([`mock_fixture`]); it has every capability, and uses them
//!   only through the HTTP control plane.
//! - [`Target::remote`] is any base URL with credentials from the environment
//!   (see [`Target::from_env`]); with `GHL_ADMIN_URL` it is a ghl-mock binary
//!   and has the control plane too.
//!
//! A test asks for a [`Capability`]; when the target lacks it the test is
//! skipped with the reason, never passed. Every API request goes through the
//! client-side limiter and counts against the run's cap.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::client::{Answer, Call, Logged, Plane, Transport};
use crate::control::{ControlPlane, Minted};
use crate::error::Error;
use crate::limiter::{Limiter, Pace, WallClock};
use crate::runner::Stop;

/// HighLevel's API, the default remote base URL.
pub const HIGHLEVEL_URL: &str = "https://services.leadconnectorhq.com";
/// When the in-process mock's frozen clock starts: 2026-01-01T00:00:00Z.
pub const MOCK_START_MS: i64 = 1_767_225_600_000;
/// The scope the low-scope PIT lacks.
pub const WITHHELD_SCOPE: &str = "contacts.readonly";

/// Ids of the in-process mock's world.
pub const MOCK_COMPANY: &str = "confCompany000000001";
pub const MOCK_LOCATION_A: &str = "confLocationA0000001";
pub const MOCK_LOCATION_B: &str = "confLocationB0000002";
const FULL_PIT_NAME: &str = "Conformance full scope";
const LOW_PIT_NAME: &str = "Conformance low scope";
const MOCK_APP_ID: &str = "ghl-conformance-app";
const MOCK_APP_SECRET: &str = "not-a-secret-ghl-conformance-app";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ghl-mock, started by the suite in this process.
    Mock,
    /// Any base URL: a real sandbox, or a ghl-mock binary (with `GHL_ADMIN_URL`).
    Remote,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Mock => "mock",
            Kind::Remote => "remote",
        }
    }
}

/// What a test may need beyond a base URL and a PIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Mint, rotate and delete tokens, inject 429s: the mock's control plane.
    ControlPlane,
    /// Move the target's clock.
    Clock,
    /// A second location the PIT does not belong to.
    OtherLocation,
    /// A PIT of the same location without `contacts.readonly`.
    LowScopePit,
    /// A PIT that was deleted.
    RevokedPit,
    /// The old token of a rotation that has ended.
    RotatedOldPit,
    /// OAuth tokens without a user approving an install.
    OAuth,
    /// Going past the burst limit on purpose.
    DeliberateBurst,
    /// Creating a record through the API when a read needs one and the location has none.
    CreateRecords,
}

/// The tokens and ids a run uses. `Debug` shows tokens as fingerprints only.
#[derive(Clone)]
pub struct Credentials {
    pub pit: String,
    pub location_id: String,
    pub other_location_id: Option<String>,
    pub low_scope_pit: Option<String>,
    pub revoked_pit: Option<String>,
    pub rotated_old_pit: Option<String>,
    /// The scopes the PIT holds, and where that is known from.
    pub scopes: BTreeSet<String>,
    pub scopes_from: String,
}

fn fp(token: &str) -> String {
    ghl_mock::auth::secret::fingerprint(token)
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("pit", &fp(&self.pit))
            .field("location_id", &self.location_id)
            .field("other_location_id", &self.other_location_id)
            .field("low_scope_pit", &self.low_scope_pit.as_deref().map(fp))
            .field("revoked_pit", &self.revoked_pit.as_deref().map(fp))
            .field("rotated_old_pit", &self.rotated_old_pit.as_deref().map(fp))
            .field("scopes_from", &self.scopes_from)
            .finish()
    }
}

/// Budgets and sizes of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Cases per property test.
    pub cases: u32,
    /// Shrinking steps per failing property (each may cost a request).
    pub max_shrink_iters: u32,
    /// Client-side limit, requests per 10 s.
    pub rate_per_10s: u32,
    /// API requests the run may send.
    pub max_requests: u64,
}

impl Settings {
    fn for_kind(kind: Kind, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let number = |name: &str, default: u64| -> Result<u64, Error> {
            match env(name) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| Error::Settings(format!("{name}={v:?} is not a whole number"))),
            }
        };
        let (cases, shrink) = match kind {
            Kind::Mock => (32, 256),
            Kind::Remote => (8, 16),
        };
        Ok(Self {
            cases: u32::try_from(number("GHL_CASES", cases)?).unwrap_or(u32::MAX).max(1),
            max_shrink_iters: u32::try_from(number("GHL_MAX_SHRINK", shrink)?).unwrap_or(u32::MAX),
            rate_per_10s: u32::try_from(number("GHL_RATE_PER_10S", 25)?).unwrap_or(u32::MAX).max(1),
            max_requests: number("GHL_MAX_REQUESTS", 1000)?,
        })
    }

    /// proptest's configuration for one property test of this run.
    pub fn proptest(&self) -> proptest::test_runner::Config {
        proptest::test_runner::Config {
            cases: self.cases,
            max_shrink_iters: self.max_shrink_iters,
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        }
    }
}

/// Waiting against a mock: move its clock instead of sleeping.
struct TargetClock {
    control: ControlPlane,
    /// Milliseconds this pace has moved the clock, its notion of "now".
    moved: Mutex<u64>,
}

impl Pace for TargetClock {
    fn now_ms(&self) -> u64 {
        *self.moved.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_ms(&self, ms: u64) -> Result<(), Error> {
        self.control.advance_clock_ms(ms)?;
        *self.moved.lock().unwrap_or_else(|p| p.into_inner()) += ms;
        Ok(())
    }
}

pub struct Target {
    pub kind: Kind,
    pub base_url: String,
    pub credentials: Credentials,
    pub settings: Settings,
    control: Option<ControlPlane>,
    burst_opt_in: bool,
    writes_opt_in: bool,
    oauth_app: Mutex<Option<(String, String)>>,
    limiter: Limiter,
    pace: Box<dyn Pace + Send + Sync>,
    /// Stops the in-process mock when the target is dropped.
    _server: Option<tokio::sync::oneshot::Sender<()>>,
    transport: Arc<Transport>,
}

impl Target {
    /// `GHL_TARGET=mock` (the default) or `remote`.
    pub fn from_env() -> Result<Self, Error> {
        let kind = std::env::var("GHL_TARGET").ok().filter(|v| !v.trim().is_empty());
        Self::named(kind.as_deref())
    }

    /// The target of that kind (`mock`, `remote`; `None`: mock), its
    /// settings from the environment.
    pub fn named(kind: Option<&str>) -> Result<Self, Error> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match kind.map(str::trim) {
            None | Some("mock") => Self::mock(ghl_mock::Config { seed: 1, ..ghl_mock::Config::default() }),
            Some("remote") => Self::remote(&env),
            Some(other) => Err(Error::Settings(format!("GHL_TARGET={other:?}: use `mock` or `remote`"))),
        }
    }

    /// ghl-mock in process, on a free port, with [`mock_fixture`] and a
    /// frozen clock; `config` is the mock's (fidelity, seed).
    pub fn mock(config: ghl_mock::Config) -> Result<Self, Error> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let settings = Settings::for_kind(Kind::Mock, &env)?;
        let transport = Arc::new(Transport::new(settings.max_requests)?);
        let spec = ghl_mock::spec::load(ghl_mock::spec::Source::Embedded(ghl_mock::spec::EMBEDDED), 1)
            .map_err(|e| Error::Mock(e.to_string()))?;
        let scopes: BTreeSet<String> = spec.scopes().into_iter().map(str::to_string).collect();
        let fixture = ghl_mock::fixture::parse("ghl-conformance.yaml", &mock_fixture(&scopes))
            .map_err(|e| Error::Mock(e.to_string()))?;
        let started = ghl_mock::Mock::start(
            spec,
            config,
            ghl_mock::Clock::frozen(MOCK_START_MS),
            Some(("ghl-conformance.yaml".into(), fixture)),
        )
        .map_err(|e| Error::Mock(e.to_string()))?;
        let token = |name: &str| {
            started
                .tokens
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.token.clone())
                .ok_or_else(|| Error::Mock(format!("the fixture issued no token for {name:?}")))
        };
        let (pit, low_scope_pit) = (token(FULL_PIT_NAME)?, token(LOW_PIT_NAME)?);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let mock = started.mock.clone();
        // Bound without blocking on a runtime, so that a target can be made
        // inside a user's async test too.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| Error::Mock(format!("cannot listen on 127.0.0.1:0: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Error::Mock(e.to_string()))?;
        let listener = {
            let _entered = transport.runtime().enter();
            tokio::net::TcpListener::from_std(listener).map_err(|e| Error::Mock(e.to_string()))?
        };
        transport.runtime().spawn(async move {
            let _ = ghl_mock::serve(listener, mock, async {
                let _ = stopped.await;
            })
            .await;
        });
        let base_url = format!("http://{addr}");
        let control = ControlPlane::new(&base_url, None, transport.clone());
        crate::contract::use_company(MOCK_COMPANY);
        let credentials = Credentials {
            pit,
            location_id: MOCK_LOCATION_A.into(),
            other_location_id: Some(MOCK_LOCATION_B.into()),
            low_scope_pit: Some(low_scope_pit),
            revoked_pit: None,
            rotated_old_pit: None,
            scopes,
            scopes_from: "the fixture".into(),
        };
        Ok(Self {
            kind: Kind::Mock,
            base_url,
            credentials,
            limiter: Limiter::new(settings.rate_per_10s, 10_000),
            settings,
            pace: Box::new(TargetClock { control: control.clone(), moved: Mutex::new(0) }),
            control: Some(control),
            burst_opt_in: false,
            writes_opt_in: false,
            oauth_app: Mutex::new(Some((MOCK_APP_ID.into(), MOCK_APP_SECRET.into()))),
            _server: Some(shutdown),
            transport,
        })
    }

    /// Any base URL, credentials from `env`: `GHL_BASE_URL`, `GHL_PIT`,
    /// `GHL_LOCATION_ID`, and optionally `GHL_OTHER_LOCATION_ID`,
    /// `GHL_COMPANY_ID` (the location's company, for operations that name one),
    /// `GHL_LOW_SCOPE_PIT`, `GHL_REVOKED_PIT`, `GHL_ROTATED_OLD_PIT`,
    /// `GHL_PIT_SCOPES`, `GHL_ALLOW_BURST`, `GHL_ALLOW_WRITES`, `GHL_ADMIN_URL`
    /// (+ `GHL_ADMIN_TOKEN`).
    pub fn remote(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let settings = Settings::for_kind(Kind::Remote, env)?;
        let transport = Arc::new(Transport::new(settings.max_requests)?);
        let required =
            |name: &str| env(name).ok_or_else(|| Error::Settings(format!("{name} is required with GHL_TARGET=remote")));
        let base_url = env("GHL_BASE_URL").unwrap_or_else(|| HIGHLEVEL_URL.into()).trim_end_matches('/').to_string();
        let pit = required("GHL_PIT")?.trim().to_string();
        let location_id = required("GHL_LOCATION_ID")?.trim().to_string();
        let control =
            env("GHL_ADMIN_URL").map(|url| ControlPlane::new(&url, env("GHL_ADMIN_TOKEN"), transport.clone()));
        let mut credentials = Credentials {
            pit,
            location_id,
            other_location_id: env("GHL_OTHER_LOCATION_ID"),
            low_scope_pit: env("GHL_LOW_SCOPE_PIT"),
            revoked_pit: env("GHL_REVOKED_PIT"),
            rotated_old_pit: env("GHL_ROTATED_OLD_PIT"),
            scopes: BTreeSet::new(),
            scopes_from: String::new(),
        };
        let spec = crate::contract::Contract::embedded()?;
        let assumed = spec.location_scopes();
        match (env("GHL_PIT_SCOPES"), &control) {
            (Some(list), _) => {
                credentials.scopes = list.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_string).collect();
                credentials.scopes_from = "GHL_PIT_SCOPES".into();
            }
            (None, Some(control)) => {
                control.health().map_err(|e| Error::Settings(format!("GHL_ADMIN_URL does not answer: {e}")))?;
                let scopes = control.scopes_of(&fp(&credentials.pit))?.ok_or_else(|| {
                    Error::Settings(format!(
                        "the control plane at GHL_ADMIN_URL knows no private integration with token {}",
                        fp(&credentials.pit)
                    ))
                })?;
                credentials.scopes = scopes.into_iter().collect();
                credentials.scopes_from = "the control plane".into();
            }
            (None, None) => {
                credentials.scopes = assumed.clone();
                credentials.scopes_from =
                    "assumed: every location scope of the default specs (set GHL_PIT_SCOPES)".into();
            }
        }
        match (env("GHL_COMPANY_ID"), &control) {
            (Some(company), _) => crate::contract::use_company(company.trim()),
            (None, Some(control)) => {
                let locations = control.locations()?;
                if let Some((_, company)) = locations.iter().find(|(id, _)| *id == credentials.location_id) {
                    crate::contract::use_company(company);
                }
            }
            // Unknown: operations that name a companyId get a generated one.
            (None, None) => {}
        }
        if let Some(control) = &control {
            if credentials.other_location_id.is_none() {
                credentials.other_location_id =
                    control.locations()?.into_iter().map(|(id, _)| id).find(|id| *id != credentials.location_id);
            }
            if credentials.low_scope_pit.is_none() {
                let scopes: Vec<String> =
                    credentials.scopes.iter().filter(|s| s.as_str() != WITHHELD_SCOPE).cloned().collect();
                let minted = control.create_integration(LOW_PIT_NAME, &credentials.location_id, &scopes)?;
                credentials.low_scope_pit = Some(minted.token);
            }
        }
        let pace: Box<dyn Pace + Send + Sync> = match &control {
            Some(control) => Box::new(TargetClock { control: control.clone(), moved: Mutex::new(0) }),
            None => Box::new(WallClock),
        };
        Ok(Self {
            kind: Kind::Remote,
            base_url,
            credentials,
            limiter: Limiter::new(settings.rate_per_10s, 10_000),
            settings,
            pace,
            control,
            burst_opt_in: env("GHL_ALLOW_BURST").is_some_and(|v| v.trim() == "1"),
            writes_opt_in: env("GHL_ALLOW_WRITES").is_some_and(|v| v.trim() == "1"),
            oauth_app: Mutex::new(None),
            _server: None,
            transport,
        })
    }

    /// A one-line description for the report, tokens as fingerprints.
    pub fn describe(&self) -> String {
        let control = match &self.control {
            Some(c) if self.kind == Kind::Mock => format!("control plane at {}", c.url()),
            Some(c) => format!("a ghl-mock binary, control plane at {}", c.url()),
            None => "no control plane".into(),
        };
        format!(
            "{} at {} ({control}); PIT {} of location {}; scopes from {}",
            self.kind.name(),
            self.base_url,
            fp(&self.credentials.pit),
            self.credentials.location_id,
            self.credentials.scopes_from
        )
    }

    /// Sends an API request, waiting for the client-side limiter first.
    pub fn send(&self, call: &Call) -> Result<Answer, Error> {
        self.limiter.admit(self.pace.as_ref())?;
        self.transport.send(&self.base_url, call, Plane::Api)
    }

    /// Sends an API request past the client-side limiter: only for the test
    /// that goes over the target's burst limit on purpose. Still counted and capped.
    pub fn send_unlimited(&self, call: &Call) -> Result<Answer, Error> {
        self.transport.send(&self.base_url, call, Plane::Api)
    }

    /// Waits until `n` requests can go at once without the limiter waiting in between.
    pub fn reserve(&self, n: usize) -> Result<(), Error> {
        self.limiter.reserve(n, self.pace.as_ref())
    }

    /// Lets `ms` pass on the target: its clock moves when the suite controls
    /// it, else the suite sleeps.
    pub fn wait_ms(&self, ms: u64) -> Result<(), Error> {
        self.pace.wait_ms(ms)
    }

    pub fn api_requests(&self) -> u64 {
        self.transport.api_requests()
    }

    pub fn control_requests(&self) -> u64 {
        self.transport.control_requests()
    }

    pub fn max_requests(&self) -> u64 {
        self.transport.cap()
    }

    /// Every API answer so far.
    pub fn log(&self) -> Vec<Logged> {
        self.transport.log()
    }

    /// Skips the calling test, with the reason, unless the target can do `capability`.
    pub fn require(&self, capability: Capability) -> Result<(), Stop> {
        let has_control = self.control.is_some();
        let (ok, why) = match capability {
            Capability::ControlPlane => (
                has_control,
                "needs a control plane: a real HighLevel sandbox has none (GHL_ADMIN_URL names a ghl-mock's)",
            ),
            Capability::Clock => (
                has_control,
                "needs to move the target's clock: only a ghl-mock can (GHL_ADMIN_URL names its control plane)",
            ),
            Capability::OtherLocation => (
                self.credentials.other_location_id.is_some(),
                "needs a second location: set GHL_OTHER_LOCATION_ID to a location the PIT does not belong to",
            ),
            Capability::LowScopePit => (
                self.credentials.low_scope_pit.is_some(),
                "needs a low-scope PIT: set GHL_LOW_SCOPE_PIT to a PIT of the same location without contacts.readonly",
            ),
            Capability::RevokedPit => (
                self.credentials.revoked_pit.is_some() || has_control,
                "needs a deleted PIT: set GHL_REVOKED_PIT to the token of a private integration you deleted",
            ),
            Capability::RotatedOldPit => (
                self.credentials.rotated_old_pit.is_some() || has_control,
                "needs the old token of an ended rotation: set GHL_ROTATED_OLD_PIT (rotate with \"expire now\")",
            ),
            Capability::OAuth => (
                has_control,
                "needs OAuth tokens without a user approving an install: only a ghl-mock's control plane issues codes",
            ),
            Capability::DeliberateBurst => (
                has_control || self.burst_opt_in,
                "goes past the sandbox's burst limit on purpose: set GHL_ALLOW_BURST=1 to allow it \
                 (about X-RateLimit-Max + 2 requests and one window of waiting)",
            ),
            Capability::CreateRecords => (
                has_control || self.writes_opt_in,
                "the location has none to read, and the suite creates records in a real sandbox only \
                 with GHL_ALLOW_WRITES=1 (or create one yourself)",
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(Stop::Skip(why.into()))
        }
    }

    /// The control plane, or a skip saying why there is none.
    pub fn control(&self) -> Result<&ControlPlane, Stop> {
        self.require(Capability::ControlPlane)?;
        self.control.as_ref().ok_or_else(|| Stop::Skip("no control plane".into()))
    }

    /// A second location, or a skip.
    pub fn other_location(&self) -> Result<&str, Stop> {
        self.require(Capability::OtherLocation)?;
        self.credentials.other_location_id.as_deref().ok_or_else(|| Stop::Skip("no second location".into()))
    }

    /// The low-scope PIT, or a skip.
    pub fn low_scope_pit(&self) -> Result<&str, Stop> {
        self.require(Capability::LowScopePit)?;
        self.credentials.low_scope_pit.as_deref().ok_or_else(|| Stop::Skip("no low-scope PIT".into()))
    }

    /// A PIT of the location that no longer works because it was deleted:
    /// `GHL_REVOKED_PIT`, or one the control plane creates and deletes.
    pub fn revoked_pit(&self) -> Result<String, Stop> {
        self.require(Capability::RevokedPit)?;
        if let Some(token) = &self.credentials.revoked_pit {
            return Ok(token.clone());
        }
        let control = self.control()?;
        let minted = self.mint("Conformance revoked", &[])?;
        control.delete_integration(&minted.integration_id)?;
        Ok(minted.token)
    }

    /// The old token of a rotation that ended at once: `GHL_ROTATED_OLD_PIT`,
    /// or one the control plane creates and rotates with `expire: now`.
    pub fn rotated_old_pit(&self) -> Result<String, Stop> {
        self.require(Capability::RotatedOldPit)?;
        if let Some(token) = &self.credentials.rotated_old_pit {
            return Ok(token.clone());
        }
        let control = self.control()?;
        let minted = self.mint("Conformance rotated", &[])?;
        control.rotate(&minted.integration_id, false)?;
        Ok(minted.token)
    }

    /// A new private integration of the PIT's location with `scopes`
    /// (`[]`: the PIT's own scopes), through the control plane.
    pub fn mint(&self, name: &str, scopes: &[String]) -> Result<Minted, Stop> {
        let control = self.control()?;
        let scopes: Vec<String> =
            if scopes.is_empty() { self.credentials.scopes.iter().cloned().collect() } else { scopes.to_vec() };
        Ok(control.create_integration(name, &self.credentials.location_id, &scopes)?)
    }

    /// A location OAuth access and refresh token of the PIT's location,
    /// through the control plane (a code) and the API (`POST /oauth/token`).
    pub fn oauth_tokens(&self, scopes: &[String]) -> Result<(String, String), Stop> {
        self.require(Capability::OAuth)?;
        let control = self.control()?;
        let (client_id, secret) = self.oauth_app(control)?;
        let code = control.oauth_code(&client_id, &self.credentials.location_id, scopes)?;
        let call = Call::post("/oauth/token").form(&[
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("grant_type", "authorization_code"),
            ("code", &code),
        ]);
        let answer = self.send(&call)?;
        let body = answer.json().unwrap_or(Value::Null);
        let access = body.get("access_token").and_then(Value::as_str);
        let refresh = body.get("refresh_token").and_then(Value::as_str);
        match (answer.status, access, refresh) {
            (200, Some(a), Some(r)) => Ok((a.to_string(), r.to_string())),
            _ => Err(Stop::Fail(format!("exchanging an authorization code answered {}", answer.status))),
        }
    }

    fn oauth_app(&self, control: &ControlPlane) -> Result<(String, String), Stop> {
        let mut app = self.oauth_app.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(app) = app.as_ref() {
            return Ok(app.clone());
        }
        let suffix = random_suffix();
        let created = (format!("ghl-conformance-{suffix}"), format!("not-a-secret-{suffix}"));
        let scopes: Vec<String> = self.credentials.scopes.iter().cloned().collect();
        control.create_oauth_app(&created.0, &created.1, &scopes)?;
        *app = Some(created.clone());
        Ok(created)
    }
}

/// Sixteen hex digits that differ between runs, for names on a shared mock.
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    format!("{:016x}", h.finish())
}

/// The world of the in-process mock: one sandbox company with two locations,
/// a PIT of location A with every scope of the served specs, one without
/// `contacts.readonly`, and an OAuth app.
pub fn mock_fixture(scopes: &BTreeSet<String>) -> String {
    let list = |skip: Option<&str>| {
        let kept: Vec<&str> = scopes.iter().map(String::as_str).filter(|s| Some(*s) != skip).collect();
        format!("[{}]", kept.join(", "))
    };
    format!(
        "companies:
  - id: {MOCK_COMPANY}
    name: Conformance Sandbox Agency
    environment: sandbox
    locations:
      # A real sandbox location comes with a pipeline; so does this one.
      - id: {MOCK_LOCATION_A}
        name: Conformance Location A
        records:
          pipelines:
            - {{name: Sales Pipeline, stages: [{{name: New}}, {{name: Won}}]}}
      - {{id: {MOCK_LOCATION_B}, name: Conformance Location B}}
private_integrations:
  - name: {FULL_PIT_NAME}
    owner: {{location: {MOCK_LOCATION_A}}}
    scopes: {all}
  - name: {LOW_PIT_NAME}
    description: every scope but {WITHHELD_SCOPE}
    owner: {{location: {MOCK_LOCATION_A}}}
    scopes: {low}
oauth_apps:
  - client_id: {MOCK_APP_ID}
    client_secret: {MOCK_APP_SECRET}
    scopes: {all}
",
        all = list(None),
        low = list(Some(WITHHELD_SCOPE)),
    )
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fail(e.to_string())
    }
}
