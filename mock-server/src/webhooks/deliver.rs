//! Sending: a background task claims due deliveries from the outbox, signs
//! and POSTs each (at most `concurrency` at once), and records the attempt
//! and what follows it: done on any 2xx, else a retry due on the mock's
//! clock after an exponential backoff with jitter, until the retries are
//! spent. The task wakes when a delivery is queued and when the clock is
//! moved through the control plane, and looks again every
//! [`POLL_MS`] of real time (for a running clock, and for a clock moved by
//! another replica).

use std::sync::{Arc, OnceLock, Weak};

use tokio::sync::{Notify, OnceCell, Semaphore};

use super::control::Resent;
use super::sign::{self, Signer};
use super::{RetryPolicy, Settings};
use crate::state::deliveries::{Attempt, Claim, Deliveries, Delivery, Outcome};
use crate::state::StateError;
use crate::Clock;

/// How often the sender looks for due deliveries when nothing wakes it (real time).
pub const POLL_MS: i64 = 250;

pub struct Sender {
    pub(super) store: Arc<dyn Deliveries>,
    pub(super) clock: Clock,
    pub(super) settings: Settings,
    pub(super) wake: Arc<Notify>,
    seed: Option<Vec<u8>>,
    signer: OnceCell<Signer>,
    legacy: OnceCell<sign::LegacySigner>,
    client: Option<reqwest::Client>,
    permits: Arc<Semaphore>,
    in_flight: tokio::sync::watch::Sender<usize>,
    worker: OnceLock<()>,
}

impl Sender {
    pub fn new(settings: Settings, clock: Clock, store: Arc<dyn Deliveries>, seed: Option<Vec<u8>>) -> Arc<Self> {
        // No redirects (a 3xx is a failed attempt, as HighLevel counts it) and
        // no proxy from the environment (receivers are often on loopback).
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(std::time::Duration::from_millis(settings.timeout_ms.max(1)))
            .build();
        if let Err(e) = &client {
            tracing::error!("webhooks cannot be sent: no HTTP client: {e}");
        }
        Arc::new(Self {
            store,
            clock,
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings,
            wake: Arc::new(Notify::new()),
            seed,
            signer: OnceCell::new(),
            legacy: OnceCell::new(),
            client: client.ok(),
            in_flight: tokio::sync::watch::channel(0).0,
            worker: OnceLock::new(),
        })
    }

    /// The key: the fixture's, or one made once and shared through the store.
    pub async fn signer(&self) -> Result<&Signer, StateError> {
        self.signer
            .get_or_try_init(|| async {
                let given = self.seed.clone();
                let make = move || match &given {
                    Some(seed) => Ok(seed.clone()),
                    None => sign::generate_seed(),
                };
                let seed = self.store.signing_key(&make).await?;
                Signer::from_seed(&seed).map_err(StateError)
            })
            .await
    }

    /// The legacy RSA key, made once (RSA-4096 takes seconds) and shared through the store.
    pub async fn legacy_signer(&self) -> Result<&sign::LegacySigner, StateError> {
        self.legacy
            .get_or_try_init(|| async {
                // Made on a blocking thread; a key already in the store (another replica's) wins.
                let fresh = tokio::task::spawn_blocking(sign::generate_legacy_der)
                    .await
                    .map_err(|e| StateError(format!("the RSA key could not be made: {e}")))?
                    .map_err(StateError)?;
                let der = self.store.legacy_signing_key(&move || Ok(fresh.clone())).await?;
                sign::LegacySigner::from_der(&der).map_err(StateError)
            })
            .await
    }

    /// Spawns the background task once, when a runtime is there.
    pub fn ensure_worker(self: &Arc<Self>) {
        if self.worker.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.worker.set(()).is_ok() {
            runtime.spawn(run(Arc::downgrade(self)));
        }
    }

    /// Claims what is due now and starts sending it. Counted in flight
    /// while it claims, so that a flush never sees zero between a claim and
    /// the attempt it starts.
    async fn run_due(self: &Arc<Self>) {
        self.in_flight.send_modify(|n| *n += 1);
        self.claim_and_send().await;
        self.in_flight.send_modify(|n| *n = n.saturating_sub(1));
    }

    async fn claim_and_send(self: &Arc<Self>) {
        loop {
            let claimed = match self.store.claim_due(self.clock.now_ms(), 32).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("webhook outbox unavailable: {e}");
                    return;
                }
            };
            if claimed.is_empty() {
                return;
            }
            for delivery in claimed {
                let Ok(permit) = self.permits.clone().acquire_owned().await else { return };
                self.in_flight.send_modify(|n| *n += 1);
                let sender = self.clone();
                tokio::spawn(async move {
                    sender.attempt(delivery, false).await;
                    drop(permit);
                    sender.in_flight.send_modify(|n| *n = n.saturating_sub(1));
                });
            }
        }
    }

    pub(super) async fn flush(self: &Arc<Self>) {
        self.ensure_worker();
        self.run_due().await;
        let mut idle = self.in_flight.subscribe();
        let _ = idle.wait_for(|n| *n == 0).await;
    }

    pub(super) async fn resend(self: &Arc<Self>, webhook_id: &str) -> Result<Resent, StateError> {
        match self.store.claim(webhook_id).await? {
            Claim::Claimed(delivery) => {
                self.in_flight.send_modify(|n| *n += 1);
                let attempt = self.attempt(delivery, true).await;
                self.in_flight.send_modify(|n| *n = n.saturating_sub(1));
                let delivery = self.store.get(webhook_id).await?.map(Box::new);
                Ok(Resent::Sent { attempt, delivery })
            }
            Claim::Unknown => Ok(Resent::Unknown),
            Claim::AlreadyDelivered => Ok(Resent::AlreadyDelivered),
            Claim::InFlight => Ok(Resent::InFlight),
        }
    }

    /// One attempt of a claimed delivery, recorded in the outbox.
    async fn attempt(&self, delivery: Delivery, manual: bool) -> Attempt {
        let at_ms = self.clock.now_ms();
        let number = delivery.attempts.len() as u32 + 1;
        let started = tokio::time::Instant::now();
        let (status, error) = self.post(&delivery).await;
        let attempt = Attempt {
            attempt: number,
            at_ms,
            status,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
            manual,
        };
        let outcome = decide(&self.settings, delivery.automatic_attempts(), status, at_ms, manual, fastrand::f64());
        tracing::debug!(webhook_id = %delivery.webhook_id, event = %delivery.event, attempt = number, ?status, ?outcome, "webhook attempt");
        if let Err(e) = self.store.record(&delivery.webhook_id, attempt.clone(), outcome).await {
            tracing::warn!(webhook_id = %delivery.webhook_id, "webhook attempt not recorded: {e}");
        }
        attempt
    }

    async fn post(&self, delivery: &Delivery) -> (Option<u16>, Option<String>) {
        let Some(client) = &self.client else { return (None, Some("no HTTP client".into())) };
        let signature = match self.signer().await {
            Ok(s) => s.sign(delivery.body.as_bytes()),
            Err(e) => return (None, Some(format!("no signing key: {e}"))),
        };
        let mut request = client
            .post(&delivery.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-ghl-signature", signature);
        if self.settings.legacy_signature {
            let legacy =
                match self.legacy_signer().await.map_err(|e| e.0).and_then(|s| s.sign(delivery.body.as_bytes())) {
                    Ok(s) => s,
                    Err(e) => return (None, Some(format!("no legacy signing key: {e}"))),
                };
            request = request.header("x-wh-signature", legacy);
        }
        let sent = request.body(delivery.body.as_bytes().to_vec()).send().await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the answer so the connection can be reused; its content does not matter.
                let _ = response.bytes().await;
                (Some(status), None)
            }
            Err(e) => (None, Some(describe(&e, self.settings.timeout_ms))),
        }
    }
}

/// Why there was no answer, without the URL (it may carry a user's secret).
fn describe(e: &reqwest::Error, timeout_ms: u64) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout_ms} ms");
    }
    let mut text = if e.is_connect() { "could not connect".to_string() } else { "the request failed".to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What follows an attempt. `automatic_before`: automatic attempts before
/// this one; `unit`: a uniform random number in [0, 1) for the jitter.
pub fn decide(
    s: &Settings,
    automatic_before: u32,
    status: Option<u16>,
    at_ms: i64,
    manual: bool,
    unit: f64,
) -> Outcome {
    if status.is_some_and(|code| (200..300).contains(&code)) {
        return Outcome::Delivered;
    }
    if manual {
        // A failed resend starts no cycle of its own; the schedule goes on.
        return Outcome::Unchanged;
    }
    let number = automatic_before + 1;
    match s.retry_policy {
        RetryPolicy::Current if number <= s.max_retries => {
            Outcome::RetryAt(at_ms.saturating_add(backoff_ms(s, number, unit)))
        }
        RetryPolicy::Current => Outcome::Abandoned,
        RetryPolicy::Legacy429 if status != Some(429) => Outcome::Failed,
        RetryPolicy::Legacy429 if number <= s.legacy_max_retries => {
            let jitter = (s.legacy_interval_ms as f64 * s.jitter.clamp(0.0, 1.0) * unit) as i64;
            Outcome::RetryAt(at_ms.saturating_add(s.legacy_interval_ms).saturating_add(jitter))
        }
        RetryPolicy::Legacy429 => Outcome::Abandoned,
    }
}

/// The delay after the `number`th automatic attempt: base × 2^(number-1),
/// at most the cap, plus up to `jitter` of itself.
pub fn backoff_ms(s: &Settings, number: u32, unit: f64) -> i64 {
    let doubling = 2_i64.saturating_pow(number.saturating_sub(1).min(62));
    let delay = s.backoff_base_ms.max(0).saturating_mul(doubling).min(s.backoff_max_ms.max(0));
    let jitter = (delay as f64 * s.jitter.clamp(0.0, 10.0) * unit.clamp(0.0, 1.0)) as i64;
    delay.saturating_add(jitter)
}

async fn run(sender: Weak<Sender>) {
    loop {
        let Some(s) = sender.upgrade() else { return };
        s.run_due().await;
        let wait_ms = match (s.store.next_due_ms().await, s.clock.is_frozen()) {
            (Ok(Some(due)), false) => due.saturating_sub(s.clock.now_ms()).clamp(1, POLL_MS),
            _ => POLL_MS,
        };
        let wake = s.wake.clone();
        drop(s);
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(std::time::Duration::from_millis(wait_ms as u64)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_base_up_to_the_cap_and_stop_after_twelve() {
        let s = Settings { jitter: 0.0, ..Settings::default() };
        let delays: Vec<i64> = (1..=12).map(|n| backoff_ms(&s, n, 0.5)).collect();
        assert_eq!(&delays[..4], &[10_000, 20_000, 40_000, 80_000]);
        assert_eq!(delays[11], 3_600_000, "capped");
        assert_eq!(decide(&s, 0, Some(500), 0, false, 0.0), Outcome::RetryAt(10_000));
        assert_eq!(decide(&s, 11, None, 0, false, 0.0), Outcome::RetryAt(3_600_000));
        assert_eq!(decide(&s, 12, Some(503), 0, false, 0.0), Outcome::Abandoned, "the 13th attempt is the last");
        assert_eq!(decide(&s, 3, Some(204), 0, false, 0.0), Outcome::Delivered);
    }

    #[test]
    fn jitter_adds_at_most_its_fraction_of_the_delay() {
        let s = Settings::default();
        assert_eq!(backoff_ms(&s, 2, 0.0), 20_000);
        assert_eq!(backoff_ms(&s, 2, 0.999_999), 29_999);
    }

    #[test]
    fn the_legacy_policy_retries_only_429_six_times_ten_minutes_apart() {
        let s = Settings { retry_policy: RetryPolicy::Legacy429, jitter: 0.0, ..Settings::default() };
        assert_eq!(decide(&s, 0, Some(500), 0, false, 0.0), Outcome::Failed);
        assert_eq!(decide(&s, 0, None, 0, false, 0.0), Outcome::Failed);
        assert_eq!(decide(&s, 0, Some(429), 5, false, 0.0), Outcome::RetryAt(600_005));
        assert_eq!(decide(&s, 6, Some(429), 0, false, 0.0), Outcome::Abandoned);
    }

    #[test]
    fn a_failed_manual_resend_changes_nothing_and_a_good_one_delivers() {
        let s = Settings::default();
        assert_eq!(decide(&s, 13, Some(500), 0, true, 0.0), Outcome::Unchanged);
        assert_eq!(decide(&s, 13, Some(200), 0, true, 0.0), Outcome::Delivered);
    }
}
