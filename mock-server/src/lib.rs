//! ghl-mock: a contract-testing mock of the HighLevel (LeadConnector) API v2.
//!
//! The pieces, in the order a request meets them (see `pipeline`):
//! `spec` routes it to an operation loaded from OpenAPI files; `auth` checks
//! its token, `Version` header, scopes and location against the operation's
//! security and the `world` (companies, locations, private integrations);
//! `respond` answers with the operation's example or a value generated from
//! its schema. `error` renders every refusal in HighLevel's own shape; `admin`
//! is the control plane. `clock` is the only source of time.
//!
//! One function builds the HTTP app ([`app`]) for the binary, the in-process
//! tests and the conformance suite alike; the caller owns the listener.

pub mod admin;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod fixture;
pub mod journal; // issue 8: request journal
pub mod limits;
pub mod persist;
pub(crate) mod pipeline;
pub mod report; // issue 8: client behaviour report
pub mod respond;
pub mod spec;
pub mod store;
pub mod validate;
pub mod world;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use clock::Clock;
pub use config::{Config, Fidelity};
pub use fixture::{Fixture, IssuedToken};
pub use spec::{Source, SpecSet};
pub use world::World;

/// One running mock: its surface, settings, clock and world.
pub struct Mock {
    pub spec: Arc<SpecSet>,
    pub config: Config,
    pub clock: Clock,
    world: RwLock<World>,
    store: RwLock<store::Store>,
    /// Bumped whenever the world or the store may have changed (for `--state`).
    generation: std::sync::atomic::AtomicU64,
    /// The fixture the world was built from, for `reset`.
    fixture: (String, Fixture),
    /// The fixture was the user's (its scopes are checked), not the embedded default.
    strict_fixture: bool,
    known_scopes: BTreeSet<String>,
    rng: Mutex<fastrand::Rng>,
    pub oauth: auth::oauth::OAuth,
    pub limiter: limits::Limiter,
    pub rules: respond::control::Rules,
    /// Issue 8: the newest API requests, for `/__admin/journal` and the report.
    pub journal: journal::Journal,
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
}

impl Mock {
    /// A mock serving `spec` with the world of `fixture` (`None`: the embedded default).
    pub fn start(
        spec: SpecSet,
        config: Config,
        clock: Clock,
        fixture: Option<(String, Fixture)>,
    ) -> Result<Started, StartError> {
        let known_scopes: BTreeSet<String> = spec.scopes().into_iter().map(str::to_string).collect();
        let strict = fixture.is_some();
        let fixture = match fixture {
            Some(f) => f,
            None => ("(embedded default fixture)".to_string(), fixture::parse("default.yaml", fixture::DEFAULT)?),
        };
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let config_rate = config.fidelity.rate.clone();
        let (mut world, mut tokens) =
            fixture::build(&fixture.0, &fixture.1, strict.then_some(&known_scopes), &mut rng)?;
        let mut store = fixture::store_for(&fixture.1);
        // A saved state wins over the fixture; the fixture stays for `reset`.
        if let Some(path) = &config.state_file {
            if let Some(snapshot) = persist::load(path).map_err(StartError::State)? {
                world = snapshot.world;
                store = snapshot.store;
                tokens.clear();
            }
        }
        store.max_records = config.limits.max_records;
        let injections = fixture.1.rate_limit_injections.clone();
        let journal = journal::Journal::new(config.journal_capacity); // issue 8
        let mock = Arc::new(Self {
            spec: Arc::new(spec),
            config,
            clock,
            store: RwLock::new(store),
            world: RwLock::new(world),
            generation: std::sync::atomic::AtomicU64::new(1),
            fixture,
            strict_fixture: strict,
            known_scopes,
            rng: Mutex::new(rng),
            oauth: auth::oauth::OAuth::default(),
            limiter: limits::Limiter::new(config_rate),
            rules: respond::control::Rules::default(),
            journal,
        });
        mock.arm_injections(injections);
        Ok(Started { mock, tokens })
    }

    pub fn world(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn world_mut(&self) -> RwLockWriteGuard<'_, World> {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.world.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Resources created through the API. Lock order: store before world.
    pub fn store(&self) -> RwLockReadGuard<'_, store::Store> {
        self.store.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn store_mut(&self) -> RwLockWriteGuard<'_, store::Store> {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.store.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn with_rng<T>(&self, f: impl FnOnce(&mut fastrand::Rng) -> T) -> T {
        let mut rng = self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut rng)
    }

    /// Every scope the loaded operations name.
    pub fn known_scopes(&self) -> &BTreeSet<String> {
        &self.known_scopes
    }

    /// Rebuilds the world from the fixture; returns the tokens it issued.
    pub fn reset(&self) -> Result<Vec<IssuedToken>, fixture::FixtureError> {
        let strict = self.strict_fixture;
        let (world, tokens) = self.with_rng(|rng| {
            fixture::build(&self.fixture.0, &self.fixture.1, strict.then_some(&self.known_scopes), rng)
        })?;
        *self.world_mut() = world;
        let mut store = fixture::store_for(&self.fixture.1);
        store.max_records = self.config.limits.max_records;
        *self.store_mut() = store;
        self.oauth.clear();
        self.limiter.clear();
        self.rules.clear();
        self.arm_injections(self.fixture.1.rate_limit_injections.clone());
        Ok(tokens)
    }

    fn arm_injections(&self, injections: Vec<limits::Injection>) {
        for rule in injections {
            self.inject(rule);
        }
    }

    /// Arms an injected 429 rule; a token given whole is kept only as its
    /// fingerprint. Returns the rule's id.
    pub fn inject(&self, mut rule: limits::Injection) -> u64 {
        if let limits::Target::Token(t) = &mut rule.target {
            if !t.contains(':') {
                *t = auth::secret::fingerprint(t);
            }
        }
        self.limiter.inject(rule)
    }

    /// Writes the world and the store to the `--state` file, if there is one.
    pub fn save_state(&self) -> Result<(), String> {
        let Some(path) = &self.config.state_file else { return Ok(()) };
        let bytes = {
            let store = self.store();
            let world = self.world();
            persist::encode(&world, &store)?
        };
        persist::save_bytes(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// What a caller's requests are counted against, and under which limits:
    /// a PIT's location or company (shared by all its PITs), or an OAuth app's
    /// traffic for one.
    pub fn rate_key(&self, who: &auth::check::Principal) -> (limits::RateKey, limits::Profile) {
        let resource = match &who.owner {
            world::Owner::Location(id) | world::Owner::Company(id) => id.clone(),
        };
        let profile = self.world().rate_profile(&who.owner);
        let key = match &who.client_id {
            Some(client_id) => limits::RateKey::App { client_id: client_id.clone(), resource },
            None => limits::RateKey::Resource(resource),
        };
        (key, profile)
    }
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
/// a cap on their size, and a cap on connections, past which new ones are
/// closed at once instead of queueing.
pub async fn serve(
    listener: tokio::net::TcpListener,
    mock: Arc<Mock>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let limits = mock.config.limits.clone();
    let saver = mock.config.state_file.is_some().then(|| tokio::spawn(save_changes(mock.clone())));
    let router = app(mock.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_millis(limits.header_timeout_ms))
        .max_buf_size(limits.max_header_bytes.max(8192));
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
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: {} connections open", limits.max_connections);
            drop(stream);
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let grace = std::time::Duration::from_millis(limits.shutdown_grace_ms);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after {} ms; stopping anyway", limits.shutdown_grace_ms);
    }
    if let Some(saver) = saver {
        saver.abort();
        if let Err(e) = mock.save_state() {
            tracing::error!("final save of the state failed: {e}");
        }
    }
    Ok(())
}

/// Saves the state a moment after it changes (at most five times a second).
async fn save_changes(mock: Arc<Mock>) {
    let mut saved = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = mock.generation();
        if now == saved {
            continue;
        }
        match mock.save_state() {
            Ok(()) => saved = now,
            Err(e) => tracing::error!("saving the state failed (will retry): {e}"),
        }
    }
}
