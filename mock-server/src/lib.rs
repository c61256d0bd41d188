//! ghl-mock: a contract-testing mock of the HighLevel (LeadConnector) API v2.
//!
//! The pieces, in the order a request meets them (see `pipeline`):
//! `spec` routes it to an operation loaded from OpenAPI files and knows, from
//! the inferred resource table, which resource and action it is bound to;
//! `auth` checks its token, `Version` header, scopes and location against the
//! operation's security and the `world` (companies, locations, private
//! integrations); `resources` answers a bound operation from state, and
//! `respond` answers the rest with the spec's example or a generated value.
//! Everything remembered goes through `state` (records, world, counters,
//! scenarios, journal; OAuth grants in `auth::oauth`): async calls returning
//! owned values, so no lock crosses an await. `error` renders every refusal in
//! HighLevel's own shape; `admin` is the control plane. `clock` is the only
//! source of time.
//!
//! One function builds the HTTP app ([`app`]) for the binary, the in-process
//! tests and the conformance suite alike; the caller owns the listener.

pub mod admin;
pub mod auth;
pub mod clock;
pub mod config;
pub mod conns;
pub mod error;
pub mod fixture;
pub mod journal; // issue 8: request journal
pub mod limits;
pub mod persist;
pub(crate) mod pipeline;
pub mod report; // issue 8: client behaviour report
pub mod resources;
pub mod respond;
pub mod spec;
pub mod state;
pub mod suggest;
pub mod tokens_file;
pub mod validate;
pub mod webhooks; // issue 13: signed events to installed apps
pub mod world;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};

pub use clock::Clock;
pub use config::{Config, Fidelity};
pub use fixture::{Fixture, IssuedToken};
pub use spec::{Source, SpecSet};
pub use world::World;

use state::memory::Memory;

/// One running mock: its surface, settings, clock, world and records.
pub struct Mock {
    pub spec: Arc<SpecSet>,
    pub config: Config,
    pub clock: Clock,
    /// The directory and the credentials.
    pub worlds: Arc<dyn state::Worlds>,
    /// Resources: every record of every inferred kind.
    pub records: Arc<dyn state::Records>,
    memory: Arc<Memory>,
    /// `--state FILE`: the log every change is fsync'd to before it is answered.
    log: OnceLock<Arc<state::log::Log>>,
    /// The fixture the world was built from, for `reset`.
    fixture: (String, Fixture),
    /// The fixture was the user's (its scopes are checked), not the embedded default.
    strict_fixture: bool,
    /// Locations that accept two contacts with one email or phone.
    duplicates_allowed: BTreeSet<String>,
    known_scopes: BTreeSet<String>,
    /// Tokens and integration ids: seeded from the operating system, never
    /// from `--seed`, so that nothing minted after a restart repeats.
    rng: Mutex<fastrand::Rng>,
    pub oauth: auth::oauth::OAuth,
    /// Rate counters, daily quotas and injected 429s.
    pub counters: Arc<dyn state::Counters>,
    /// Answer rules with counts.
    pub scenarios: Arc<dyn state::Scenarios>,
    /// Issue 8: the newest API requests, for `/__admin/journal` and the report.
    pub journal: Arc<dyn state::Journals>,
    /// Changes to the clock (shared by replicas on a shared store).
    pub clocks: Arc<dyn state::Clocks>,
    /// Issue 13: the webhook outbox, key and sender.
    pub webhooks: webhooks::Webhooks,
    /// Issue 12: `--store redis://…`, the store every replica shares.
    #[cfg(feature = "redis-store")]
    shared: Option<Arc<state::redis::Store>>,
    /// `--tokens-file PATH`: the current tokens, for a CI job to source.
    tokens_file: Option<tokens_file::TokensFile>,
    /// `fidelity.trace_header`, parsed once (none: not a header name, so not sent).
    pub(crate) trace_header: Option<axum::http::HeaderName>,
}

/// Why a mock could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Fixture(#[from] fixture::FixtureError),
    #[error("state file: {0}")]
    State(String),
}

/// What starting a mock produced: the mock and the tokens its fixture issued.
pub struct Started {
    pub mock: Arc<Mock>,
    pub tokens: Vec<IssuedToken>,
    /// Issue 12: the shared store held a world already (another replica, or
    /// an earlier run, made it): this start issued no tokens.
    pub joined: bool,
}

impl Mock {
    /// A mock serving `spec` with the world of `fixture` (`None`: the embedded default).
    pub fn start(
        spec: SpecSet,
        config: Config,
        clock: Clock,
        fixture: Option<(String, Fixture)>,
    ) -> Result<Started, StartError> {
        let mut prepared = Prepared::new(&spec, &config, fixture)?;
        let memory = Arc::new(Memory::new(prepared.bounds(&config), World::default()));
        // A saved state wins over the fixture; the fixture stays for `reset`.
        let mut restored = false;
        if let Some(path) = &config.state_file {
            let (log, saved) = persist::open(path).map_err(StartError::State)?;
            drop(log);
            if saved.world.is_some() || !saved.entries.is_empty() {
                restored = true;
                if let Some(w) = saved.world {
                    prepared.world = w;
                }
                prepared.tokens.clear();
                for entry in &saved.entries {
                    memory.replay(entry).map_err(|e| StartError::State(format!("{}: {e}", path.display())))?;
                }
            }
        }
        memory.replace_world(std::mem::take(&mut prepared.world));
        let limiter = limits::Limiter::new(config.fidelity.rate.clone());
        for rule in prepared.fixture.1.rate_limit_injections.clone() {
            limiter.inject(fingerprinted(rule));
        }
        let backends = Backends {
            worlds: memory.clone(),
            records: memory.clone(),
            counters: Arc::new(limiter),
            scenarios: Arc::new(respond::control::Rules::default()),
            journal: Arc::new(journal::Journal::bounded(config.journal_capacity, config.journal_max_bytes)), // issue 8
            grants: Arc::new(auth::oauth::MemoryGrants::default()),
            clocks: Arc::new(state::LocalClocks(clock.clone())),
            deliveries: Arc::new(state::deliveries::MemoryDeliveries::new(config.fidelity.webhooks.queue_capacity)),
            #[cfg(feature = "redis-store")]
            shared: None,
        };
        let (mock, tokens) = Self::assemble(prepared, spec, config, clock, memory, backends)?;
        if restored {
            for resource in &mock.spec.resources.resources {
                let family = resources::Family::of(&resource.kind);
                mock.memory.reindex(&resource.kind, resources::hooks::indexing_of(&mock, family, ""));
            }
        } else {
            mock.seed_now().map_err(StartError::State)?;
        }
        if let Some(path) = &mock.config.state_file {
            // The replayed log, rewritten as one snapshot.
            let mut entries = vec![persist::world_entry(&mock.memory.world_now())];
            entries.extend(mock.memory.snapshot_entries());
            let log =
                Arc::new(state::log::create_blocking(path, entries).map_err(|e| StartError::State(e.to_string()))?);
            mock.memory.set_durable(Arc::new(persist::LogSink(log.clone())));
            let _ = mock.log.set(log);
        }
        mock.write_tokens_file(&tokens)?;
        Ok(Started { mock, tokens, joined: false })
    }

    /// Issue 12: a mock whose state lives on the Redis at `url`, under the
    /// world `world_name`, shared with every other mock started on it. The
    /// first to start makes the world from its fixture (and prints its
    /// tokens); the others take the world as they find it. `time` becomes
    /// the shared clock's copy in this process.
    #[cfg(feature = "redis-store")]
    pub async fn start_shared(
        spec: SpecSet,
        config: Config,
        time: Arc<clock::LocalTime>,
        fixture: Option<(String, Fixture)>,
        url: &str,
        world_name: &str,
    ) -> Result<Started, StartError> {
        use state::redis;
        let store =
            redis::Store::open(url, world_name, time.clone()).await.map_err(|e| StartError::State(e.to_string()))?;
        let clock = Clock::from_source(time);
        let mut prepared = Prepared::new(&spec, &config, fixture)?;
        let made = store.init(&prepared.world).await.map_err(|e| StartError::State(e.0))?;
        if !made {
            prepared.tokens.clear();
        }
        let bounds = prepared.bounds(&config);
        let backends = Backends {
            worlds: store.clone(),
            records: Arc::new(redis::records::SharedRecords::new(store.clone(), bounds)),
            counters: Arc::new(redis::counters::SharedCounters::new(store.clone(), config.fidelity.rate.clone())),
            scenarios: Arc::new(redis::rules::SharedRules::new(store.clone())),
            journal: Arc::new(redis::JournalSink::start(
                store.clone(),
                config.journal_capacity,
                config.journal_max_bytes,
            )),
            grants: Arc::new(redis::grants::SharedGrants::new(store.clone())),
            clocks: store.clone(),
            // A claim outlasts an attempt's timeout: only a replica that died
            // mid-attempt loses one.
            deliveries: Arc::new(redis::deliveries::SharedDeliveries::new(
                store.clone(),
                config.fidelity.webhooks.queue_capacity,
                config.fidelity.webhooks.timeout_ms.saturating_mul(2).saturating_add(5_000),
            )),
            shared: Some(store.clone()),
        };
        let memory = Arc::new(Memory::new(bounds, World::default()));
        let (mock, tokens) = Self::assemble(prepared, spec, config, clock, memory, backends)?;
        if made {
            for (new, indexing) in resources::seed::records(&mock, &mock.fixture.1, mock.clock.now_ms()) {
                let what = format!("{} {}", new.kind, new.id);
                mock.records
                    .insert(new, indexing)
                    .await
                    .map_err(|e| StartError::State(format!("fixture record {what}: {e:?}")))?;
            }
            for rule in mock.fixture.1.rate_limit_injections.clone() {
                mock.inject(rule).await.map_err(|e| StartError::State(e.to_string()))?;
            }
        }
        mock.write_tokens_file(&tokens)?;
        Ok(Started { mock, tokens, joined: !made })
    }

    /// The mock from what `Prepared` read and the backends chosen.
    fn assemble(
        prepared: Prepared,
        spec: SpecSet,
        config: Config,
        clock: Clock,
        memory: Arc<Memory>,
        backends: Backends,
    ) -> Result<(Arc<Self>, Vec<IssuedToken>), StartError> {
        let webhook_seed = fixture::webhook_seed(&prepared.fixture.0, &prepared.fixture.1)?;
        let webhooks =
            webhooks::Webhooks::new(config.fidelity.webhooks.clone(), clock.clone(), backends.deliveries, webhook_seed);
        let tokens_file = match &config.tokens_file {
            Some(path) => Some(
                tokens_file::TokensFile::open(path)
                    .map_err(|e| StartError::State(format!("tokens file {}: {e}", path.display())))?,
            ),
            None => None,
        };
        let trace_header = axum::http::HeaderName::from_bytes(config.fidelity.trace_header.as_bytes()).ok();
        let mock = Arc::new(Self {
            spec: Arc::new(spec),
            config,
            clock,
            worlds: backends.worlds,
            records: backends.records,
            memory,
            log: OnceLock::new(),
            fixture: prepared.fixture,
            strict_fixture: prepared.strict,
            duplicates_allowed: prepared.duplicates_allowed,
            known_scopes: prepared.known_scopes,
            rng: Mutex::new(prepared.rng),
            oauth: auth::oauth::OAuth::new(backends.grants),
            counters: backends.counters,
            scenarios: backends.scenarios,
            journal: backends.journal,
            clocks: backends.clocks,
            webhooks,
            tokens_file,
            trace_header,
            #[cfg(feature = "redis-store")]
            shared: backends.shared,
        });
        Ok((mock, prepared.tokens))
    }

    /// `--tokens-file`: the tokens this start issued, and the file written.
    fn write_tokens_file(&self, tokens: &[IssuedToken]) -> Result<(), StartError> {
        if let Some(file) = &self.tokens_file {
            for t in tokens {
                file.issued(&t.integration_id, &t.token);
            }
            file.write(&self.world_now()).map_err(|e| StartError::State(format!("tokens file: {e}")))?;
        }
        Ok(())
    }

    /// Inserts the fixture's records, before anything is served.
    fn seed_now(&self) -> Result<(), String> {
        for (new, indexing) in resources::seed::records(self, &self.fixture.1, self.clock.now_ms()) {
            let what = format!("{} {}", new.kind, new.id);
            self.memory.seed(new, indexing).map_err(|e| format!("fixture record {what}: {e:?}"))?;
        }
        Ok(())
    }

    /// The world as it stands: an owned snapshot, no lock held.
    pub async fn world(&self) -> Result<Arc<World>, error::ApiError> {
        Ok(self.worlds.read().await?)
    }

    /// The world as it stands, outside a request (start-up, seeding).
    pub fn world_now(&self) -> Arc<World> {
        #[cfg(feature = "redis-store")]
        if let Some(store) = &self.shared {
            return store.world_now();
        }
        self.memory.world_now()
    }

    /// Issue 12: brings this replica's copy of the shared world, rules and
    /// clock up to date (a no-op on the embedded store).
    pub async fn sync(&self) -> Result<(), error::ApiError> {
        #[cfg(feature = "redis-store")]
        if let Some(store) = &self.shared {
            store.sync().await?;
        }
        Ok(())
    }

    /// Changes the world in one atomic step; with `--state`, returns once
    /// the change is on disk. `f` may run more than once on a networked
    /// store; its last result is returned.
    pub async fn change_world<T: Send>(&self, mut f: impl FnMut(&mut World) -> T + Send) -> Result<T, error::ApiError> {
        let mut out = None;
        self.worlds.change(&mut |w| out = Some(f(w))).await?;
        out.ok_or_else(|| error::ApiError::Unavailable { message: "the world change did not run".into() })
    }

    pub fn with_rng<T>(&self, f: impl FnOnce(&mut fastrand::Rng) -> T) -> T {
        let mut rng = self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut rng)
    }

    /// Every scope the loaded operations name.
    pub fn known_scopes(&self) -> &BTreeSet<String> {
        &self.known_scopes
    }

    pub fn allows_duplicate_contacts(&self, location: &str) -> bool {
        self.duplicates_allowed.contains(location)
    }

    /// Rebuilds the world and the records from the fixture; returns the tokens it issued.
    pub async fn reset(&self) -> Result<Vec<IssuedToken>, error::ApiError> {
        let strict = self.strict_fixture;
        let (world, tokens) = self
            .with_rng(|rng| fixture::build(&self.fixture.0, &self.fixture.1, strict.then_some(&self.known_scopes), rng))
            .map_err(|e| error::ApiError::BadRequest { message: e.to_string(), meta: None })?;
        self.records
            .clear()
            .await
            .map_err(|e| resources::record_error(self, resources::Family::Generic, "Record", e))?;
        self.change_world(|w| *w = world.clone()).await?;
        for (new, indexing) in resources::seed::records(self, &self.fixture.1, self.clock.now_ms()) {
            self.records
                .insert(new, indexing)
                .await
                .map_err(|e| resources::record_error(self, resources::Family::Generic, "Record", e))?;
        }
        self.oauth.clear().await?;
        self.counters.clear().await?;
        self.scenarios.clear().await?;
        for rule in self.fixture.1.rate_limit_injections.clone() {
            self.inject(rule).await?;
        }
        if let Some(file) = &self.tokens_file {
            file.clear();
        }
        let issued: Vec<(&str, &str)> = tokens.iter().map(|t| (t.integration_id.as_str(), t.token.as_str())).collect();
        self.tokens_changed(&issued);
        Ok(tokens)
    }

    /// Tells `--tokens-file` of tokens issued (integration id, token) and
    /// rewrites it for the world as it stands (a withdrawn or deleted token
    /// leaves it). A file that cannot be written is logged, not an error of
    /// the call that changed the tokens.
    pub fn tokens_changed(&self, issued: &[(&str, &str)]) {
        let Some(file) = &self.tokens_file else { return };
        for (id, token) in issued {
            file.issued(id, token);
        }
        if let Err(e) = file.write(&self.world_now()) {
            tracing::error!("cannot write the tokens file: {e}");
        }
    }

    /// Arms an injected 429 rule; a token given whole is kept only as its
    /// fingerprint. Returns the rule's id.
    pub async fn inject(&self, rule: limits::Injection) -> Result<u64, error::ApiError> {
        Ok(self.counters.inject(fingerprinted(rule)).await?)
    }

    /// Rewrites the `--state` log as one snapshot once it has grown past
    /// four times its last snapshot (and at least `floor` bytes).
    pub async fn compact_if_grown(&self, last: &mut u64, floor: u64) -> Result<bool, String> {
        let Some(log) = self.log.get() else { return Ok(false) };
        if log.bytes() < floor.max(last.saturating_mul(4)) {
            return Ok(false);
        }
        let done = self.memory.exclusive(|| {
            let mut entries = vec![persist::world_entry(&self.memory.world_now())];
            entries.extend(self.memory.snapshot_entries());
            log.compact(entries)
        });
        done.await.map_err(|e| e.to_string())?;
        *last = log.bytes();
        Ok(true)
    }

    /// What a caller's requests are counted against, and under which limits:
    /// a PIT's location or company (shared by all its PITs), or an OAuth app's
    /// traffic for one.
    pub fn rate_key(&self, world: &World, who: &auth::check::Principal) -> (limits::RateKey, limits::Profile) {
        let resource = match &who.owner {
            world::Owner::Location(id) | world::Owner::Company(id) => id.clone(),
        };
        let profile = world.rate_profile(&who.owner);
        let key = match &who.client_id {
            Some(client_id) => limits::RateKey::App { client_id: client_id.clone(), resource },
            None => limits::RateKey::Resource(resource),
        };
        (key, profile)
    }
}

/// What a start has read and checked before the backends are chosen: the
/// fixture, the world it builds, the tokens it issued.
struct Prepared {
    fixture: (String, Fixture),
    strict: bool,
    known_scopes: BTreeSet<String>,
    duplicates_allowed: BTreeSet<String>,
    world: World,
    tokens: Vec<IssuedToken>,
    rng: fastrand::Rng,
}

impl Prepared {
    fn new(spec: &SpecSet, config: &Config, fixture: Option<(String, Fixture)>) -> Result<Self, StartError> {
        let known_scopes: BTreeSet<String> = spec.scopes().into_iter().map(str::to_string).collect();
        let strict = fixture.is_some();
        let fixture = match fixture {
            Some(f) => f,
            None => ("(embedded default fixture)".to_string(), fixture::parse("default.yaml", fixture::DEFAULT)?),
        };
        let mut rng = fastrand::Rng::new();
        let (world, tokens) = fixture::build(&fixture.0, &fixture.1, strict.then_some(&known_scopes), &mut rng)?;
        let most = config.fidelity.sandbox_max_locations;
        for company in world.companies().filter(|c| c.environment == world::Environment::Sandbox) {
            let held = world.locations().filter(|l| l.company_id == company.id).count();
            if most > 0 && held > most {
                return Err(StartError::Fixture(fixture::FixtureError::World {
                    file: fixture.0.clone(),
                    source: world::WorldError::Invalid(format!(
                        "the sandbox company {} holds {held} locations; a HighLevel sandbox holds at most {most} \
                         (fidelity setting sandbox_max_locations)",
                        company.id
                    )),
                }));
            }
        }
        let duplicates_allowed = fixture::duplicates_allowed(&fixture.1);
        Ok(Self { fixture, strict, known_scopes, duplicates_allowed, world, tokens, rng })
    }

    fn bounds(&self, config: &Config) -> state::Bounds {
        state::Bounds { max_records: config.limits.max_records, max_bytes: config.limits.max_record_bytes }
    }
}

/// The state backends of one mock.
struct Backends {
    worlds: Arc<dyn state::Worlds>,
    records: Arc<dyn state::Records>,
    counters: Arc<dyn state::Counters>,
    scenarios: Arc<dyn state::Scenarios>,
    journal: Arc<dyn state::Journals>,
    grants: Arc<dyn auth::oauth::Grants>,
    clocks: Arc<dyn state::Clocks>,
    deliveries: Arc<dyn state::deliveries::Deliveries>,
    #[cfg(feature = "redis-store")]
    shared: Option<Arc<state::redis::Store>>,
}

/// An injected rule names a token only by its fingerprint.
fn fingerprinted(mut rule: limits::Injection) -> limits::Injection {
    if let limits::Target::Token(t) = &mut rule.target {
        if !t.contains(':') {
            *t = auth::secret::fingerprint(t);
        }
    }
    rule
}

/// The HTTP app: the control plane under `/__admin/` and the API surface of
/// the loaded specs everywhere else.
pub fn app(mock: Arc<Mock>) -> axum::Router {
    axum::Router::new().nest("/__admin", admin::routes(mock.clone())).fallback(pipeline::handle).with_state(mock)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests
/// in flight finish (within `limits.shutdown_grace_ms`).
///
/// The accept loop is hyper's own rather than `axum::serve` so that the
/// limits a hostile client meets are explicit: a deadline for the headers,
/// a cap on their size, and a cap on connections. At the cap an idle
/// connection is closed to make room (see [`conns`]); only when every
/// connection has a request in flight is a newcomer closed at once.
pub async fn serve(
    listener: tokio::net::TcpListener,
    mock: Arc<Mock>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let limits = mock.config.limits.clone();
    let compactor = mock.config.state_file.is_some().then(|| tokio::spawn(compact_now_and_then(mock.clone())));
    mock.webhooks.start(); // issue 13: the sender runs beside the server
    let router = app(mock.clone());
    let connections = conns::Connections::new(limits.max_connections);
    let stopping = Arc::new(tokio::sync::Notify::new());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_millis(limits.header_timeout_ms))
        .max_buf_size(limits.max_header_bytes.max(8192))
        .half_close(limits.half_close == config::HalfClose::Answer);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(held) = connections.admit(peer.ip()) else {
            tracing::warn!(%peer, "connection refused: {} connections open, each with a request in flight", limits.max_connections);
            drop(stream);
            continue;
        };
        let router = router.clone();
        let activity = held.activity.clone();
        // Issue 15, item 7: requests may ask whether the client has shut its side.
        let (stream, side) = conns::Watched::new(stream);
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            request.extensions_mut().insert(side.clone());
            activity.begin();
            let answer = router.clone().oneshot(request.map(axum::body::Body::new));
            let activity = activity.clone();
            async move {
                let answered = answer.await;
                activity.end();
                answered
            }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return drop(held),
                () = held.closing.notified() => {}
                () = stopping.notified() => {}
            }
            // Told to close: an answer in progress is finished first; an idle
            // connection (or one still sending its headers) closes now.
            connection.as_mut().graceful_shutdown();
            loop {
                match tokio::time::timeout(std::time::Duration::from_millis(500), connection.as_mut()).await {
                    Ok(_) => break,
                    Err(_) if !held.activity.is_busy() => break,
                    Err(_) => {}
                }
            }
            drop(held);
        });
    }
    drop(listener);
    stopping.notify_waiters();
    connections.close_all();
    let grace = std::time::Duration::from_millis(limits.shutdown_grace_ms);
    let drained = async {
        while connections.live() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!("requests still in flight after {} ms; stopping anyway", limits.shutdown_grace_ms);
    }
    if let Some(compactor) = compactor {
        // Every answered write is on disk already; only the tidying stops.
        compactor.abort();
    }
    Ok(())
}

/// Keeps the `--state` log from growing without bound.
async fn compact_now_and_then(mock: Arc<Mock>) {
    let mut last = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        if let Err(e) = mock.compact_if_grown(&mut last, 64 * 1024 * 1024).await {
            tracing::error!("compacting the state log failed (will retry): {e}");
        }
    }
}
