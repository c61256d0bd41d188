//! Issue 13: the webhook outbox, behind [`Deliveries`]. Every delivery the
//! mock owes an app (its exact body, its URL, its attempts) is kept here, and
//! a delivery is sent only by whoever *claims* it: `claim_due` hands each due
//! delivery to one caller and marks it in flight, so that replicas sharing a
//! store send each attempt once. Nothing here sends HTTP or reads a clock;
//! the caller passes the time (`webhooks::deliver` does the sending).
//!
//! The memory backend keeps the newest `capacity` deliveries: past it the
//! oldest finished one is forgotten, and when every kept delivery is still
//! pending a new one is refused (counted as dropped), so the queue stays bounded.
//!
//! What a shared backend (Redis) must do so that replicas deliver each event
//! once: an event is queued only by the replica whose request changed the
//! record, so enqueues need no dedupe; every replica runs a sender, and
//! `claim_due`, `claim` and `record` must each be one atomic script (e.g. a
//! sorted set of due ids scored by due time, popped with the delivery's hash
//! marked in flight), so one replica gets each attempt. A claim should carry a
//! lease in real time (longer than `webhooks.timeout_ms`) that `claim_due`
//! takes back when a replica died mid-attempt: that may repeat an attempt,
//! with the same `webhookId`, which HighLevel's at-least-once delivery allows.
//! `signing_key` and `legacy_signing_key` must be set-if-absent, so every
//! replica signs with one key and prints the same public key. Due times are
//! on the mock's clock, so the replicas must share its time source; a clock
//! moved on one replica wakes that replica's sender at once and the others'
//! within `deliver::POLL_MS`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::StateError;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt (`next_attempt_at_ms`).
    Pending,
    /// A 2xx answered.
    Delivered,
    /// The retry policy does not retry this answer (the legacy policy retries 429 only).
    Failed,
    /// Every retry was spent without a 2xx.
    Abandoned,
}

impl DeliveryState {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            "abandoned" => Some(Self::Abandoned),
            _ => None,
        }
    }
}

/// One try at sending a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first automatic attempt; manual resends are numbered in the same sequence.
    pub attempt: u32,
    /// When it was sent, on the mock's clock.
    pub at_ms: i64,
    /// The status the receiver answered; `None` when it did not answer.
    pub status: Option<u16>,
    /// How long the receiver took (real time, not the mock's clock).
    pub latency_ms: u64,
    /// Why there was no answer (timeout, connection refused, …).
    pub error: Option<String>,
    /// A resend from the control plane, not a scheduled attempt.
    pub manual: bool,
}

/// A webhook the mock owes an app: one event, one URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The payload's `webhookId`, the same on every attempt.
    pub webhook_id: String,
    /// The payload's `type` (`ContactCreate`, `INSTALL`, …).
    pub event: String,
    pub client_id: String,
    /// The location (or company) the event is about.
    pub location: Option<String>,
    pub url: String,
    /// The exact bytes sent (compact JSON) and signed.
    pub body: Arc<str>,
    pub created_ms: i64,
    pub state: DeliveryState,
    /// When the next automatic attempt is due (pending only).
    pub next_attempt_at_ms: Option<i64>,
    pub attempts: Vec<Attempt>,
    /// Claimed by a sender and not yet recorded.
    pub in_flight: bool,
}

impl Delivery {
    /// Automatic attempts made so far (manual resends do not count).
    pub fn automatic_attempts(&self) -> u32 {
        self.attempts.iter().filter(|a| !a.manual).count() as u32
    }
}

/// What an attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    RetryAt(i64),
    Failed,
    Abandoned,
    /// A failed manual resend: the delivery stays as it was (its schedule continues).
    Unchanged,
}

/// What a manual resend found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Claimed: send it, then [`Deliveries::record`].
    Claimed(Delivery),
    Unknown,
    AlreadyDelivered,
    /// Another sender holds it right now.
    InFlight,
}

/// Which deliveries a listing wants.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    pub event: Option<String>,
    pub client_id: Option<String>,
    pub location: Option<String>,
    pub state: Option<String>,
    pub url: Option<String>,
}

impl DeliveryFilter {
    pub fn matches(&self, d: &Delivery) -> bool {
        let state = self.state.as_deref().and_then(DeliveryState::parse);
        self.event.as_ref().is_none_or(|e| *e == d.event)
            && self.client_id.as_ref().is_none_or(|c| *c == d.client_id)
            && self.location.as_ref().is_none_or(|l| d.location.as_ref() == Some(l))
            && state.is_none_or(|s| s == d.state)
            && self.url.as_ref().is_none_or(|u| *u == d.url)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStats {
    pub capacity: usize,
    pub held: usize,
    pub pending: usize,
    pub in_flight: usize,
    pub delivered: usize,
    pub failed: usize,
    pub abandoned: usize,
    /// Events refused because the outbox was full of pending deliveries.
    pub dropped: u64,
}

impl DeliveryStats {
    /// Counts one held delivery by where it stands.
    pub fn count(&mut self, d: &Delivery) {
        self.in_flight += usize::from(d.in_flight);
        match d.state {
            DeliveryState::Pending => self.pending += 1,
            DeliveryState::Delivered => self.delivered += 1,
            DeliveryState::Failed => self.failed += 1,
            DeliveryState::Abandoned => self.abandoned += 1,
        }
    }
}

/// The outbox. Each call is atomic by itself; a networked backend runs
/// `claim_due`, `claim` and `record` as one script each, so that one
/// replica, and only one, sends each attempt.
#[async_trait::async_trait]
pub trait Deliveries: Send + Sync {
    /// Keeps a new delivery, due at once. `false`: the outbox is full of
    /// pending deliveries and the event is dropped.
    async fn enqueue(&self, delivery: Delivery) -> Result<bool, StateError>;
    /// Claims up to `limit` pending deliveries due at `now_ms` that nobody
    /// holds, marking them in flight.
    async fn claim_due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StateError>;
    /// Claims one delivery for a manual resend, whatever its schedule.
    async fn claim(&self, webhook_id: &str) -> Result<Claim, StateError>;
    /// Records an attempt of a claimed delivery and what follows; releases the claim.
    async fn record(&self, webhook_id: &str, attempt: Attempt, outcome: Outcome) -> Result<(), StateError>;
    async fn get(&self, webhook_id: &str) -> Result<Option<Delivery>, StateError>;
    /// The newest `limit` matching deliveries, oldest first.
    async fn list(&self, filter: &DeliveryFilter, limit: usize) -> Result<Vec<Delivery>, StateError>;
    /// When the soonest pending delivery is due.
    async fn next_due_ms(&self) -> Result<Option<i64>, StateError>;
    async fn stats(&self) -> Result<DeliveryStats, StateError>;
    /// Forgets every delivery that is not in flight.
    async fn clear(&self) -> Result<usize, StateError>;
    /// The Ed25519 signing key (32-byte seed), made by `make` the first
    /// time any caller asks, the same for every caller after.
    async fn signing_key(
        &self,
        make: &(dyn Fn() -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<Vec<u8>, StateError>;
    /// The RSA key of the legacy `x-wh-signature` (PKCS#1 DER), made once, as [`Self::signing_key`].
    async fn legacy_signing_key(
        &self,
        make: &(dyn Fn() -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<Vec<u8>, StateError>;
}

#[derive(Default)]
struct Outbox {
    by_id: HashMap<String, Delivery>,
    /// Arrival order, for eviction and listing.
    order: VecDeque<String>,
    /// (due, id) of pending deliveries that nobody holds.
    due: BTreeSet<(i64, String)>,
    dropped: u64,
    key: Option<Vec<u8>>,
    legacy_key: Option<Vec<u8>>,
}

/// The in-memory backend of [`Deliveries`].
pub struct MemoryDeliveries {
    capacity: usize,
    outbox: Mutex<Outbox>,
}

impl MemoryDeliveries {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), outbox: Mutex::new(Outbox::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Outbox {
    /// Forgets the oldest finished delivery; `false` when none is finished.
    fn evict_one(&mut self) -> bool {
        let finished = self
            .order
            .iter()
            .position(|id| self.by_id.get(id).is_none_or(|d| d.state != DeliveryState::Pending && !d.in_flight));
        let Some(at) = finished else { return false };
        if let Some(id) = self.order.remove(at) {
            self.by_id.remove(&id);
        }
        true
    }
}

#[async_trait::async_trait]
impl Deliveries for MemoryDeliveries {
    async fn enqueue(&self, delivery: Delivery) -> Result<bool, StateError> {
        let mut o = self.lock();
        if o.by_id.contains_key(&delivery.webhook_id) {
            return Err(StateError(format!("webhook {} is queued already", delivery.webhook_id)));
        }
        while o.by_id.len() >= self.capacity {
            if !o.evict_one() {
                o.dropped += 1;
                return Ok(false);
            }
        }
        if let (DeliveryState::Pending, Some(due), false) =
            (delivery.state, delivery.next_attempt_at_ms, delivery.in_flight)
        {
            o.due.insert((due, delivery.webhook_id.clone()));
        }
        o.order.push_back(delivery.webhook_id.clone());
        o.by_id.insert(delivery.webhook_id.clone(), delivery);
        Ok(true)
    }

    async fn claim_due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StateError> {
        let mut o = self.lock();
        let ready: Vec<(i64, String)> =
            o.due.iter().take_while(|(due, _)| *due <= now_ms).take(limit).cloned().collect();
        let mut claimed = Vec::with_capacity(ready.len());
        for entry in ready {
            o.due.remove(&entry);
            if let Some(d) = o.by_id.get_mut(&entry.1) {
                d.in_flight = true;
                claimed.push(d.clone());
            }
        }
        Ok(claimed)
    }

    async fn claim(&self, webhook_id: &str) -> Result<Claim, StateError> {
        let mut o = self.lock();
        let Some(d) = o.by_id.get_mut(webhook_id) else { return Ok(Claim::Unknown) };
        if d.state == DeliveryState::Delivered {
            return Ok(Claim::AlreadyDelivered);
        }
        if d.in_flight {
            return Ok(Claim::InFlight);
        }
        d.in_flight = true;
        let claimed = d.clone();
        if let Some(due) = claimed.next_attempt_at_ms {
            o.due.remove(&(due, webhook_id.to_string()));
        }
        Ok(Claim::Claimed(claimed))
    }

    async fn record(&self, webhook_id: &str, attempt: Attempt, outcome: Outcome) -> Result<(), StateError> {
        let mut o = self.lock();
        let Some(d) = o.by_id.get_mut(webhook_id) else {
            // Cleared while in flight: nothing to record.
            return Ok(());
        };
        d.in_flight = false;
        d.attempts.push(attempt);
        match outcome {
            Outcome::Delivered => (d.state, d.next_attempt_at_ms) = (DeliveryState::Delivered, None),
            Outcome::Failed => (d.state, d.next_attempt_at_ms) = (DeliveryState::Failed, None),
            Outcome::Abandoned => (d.state, d.next_attempt_at_ms) = (DeliveryState::Abandoned, None),
            Outcome::RetryAt(due) => (d.state, d.next_attempt_at_ms) = (DeliveryState::Pending, Some(due)),
            Outcome::Unchanged => {}
        }
        let requeue = (d.state == DeliveryState::Pending).then_some(d.next_attempt_at_ms).flatten();
        if let Some(due) = requeue {
            o.due.insert((due, webhook_id.to_string()));
        }
        Ok(())
    }

    async fn get(&self, webhook_id: &str) -> Result<Option<Delivery>, StateError> {
        Ok(self.lock().by_id.get(webhook_id).cloned())
    }

    async fn list(&self, filter: &DeliveryFilter, limit: usize) -> Result<Vec<Delivery>, StateError> {
        let o = self.lock();
        let mut out: Vec<Delivery> = o
            .order
            .iter()
            .rev()
            .filter_map(|id| o.by_id.get(id))
            .filter(|d| filter.matches(d))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        Ok(out)
    }

    async fn next_due_ms(&self) -> Result<Option<i64>, StateError> {
        Ok(self.lock().due.iter().next().map(|(due, _)| *due))
    }

    async fn stats(&self) -> Result<DeliveryStats, StateError> {
        let o = self.lock();
        let mut stats =
            DeliveryStats { capacity: self.capacity, held: o.by_id.len(), dropped: o.dropped, ..Default::default() };
        o.by_id.values().for_each(|d| stats.count(d));
        Ok(stats)
    }

    async fn clear(&self) -> Result<usize, StateError> {
        let mut o = self.lock();
        let before = o.by_id.len();
        o.by_id.retain(|_, d| d.in_flight);
        let kept: std::collections::HashSet<String> = o.by_id.keys().cloned().collect();
        o.order.retain(|id| kept.contains(id));
        o.due.clear();
        Ok(before - o.by_id.len())
    }

    async fn signing_key(
        &self,
        make: &(dyn Fn() -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<Vec<u8>, StateError> {
        let mut o = self.lock();
        if let Some(key) = &o.key {
            return Ok(key.clone());
        }
        let key = make().map_err(StateError)?;
        o.key = Some(key.clone());
        Ok(key)
    }

    async fn legacy_signing_key(
        &self,
        make: &(dyn Fn() -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<Vec<u8>, StateError> {
        let mut o = self.lock();
        if let Some(key) = &o.legacy_key {
            return Ok(key.clone());
        }
        let key = make().map_err(StateError)?;
        o.legacy_key = Some(key.clone());
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str, due: i64) -> Delivery {
        Delivery {
            webhook_id: id.into(),
            event: "ContactCreate".into(),
            client_id: "app".into(),
            location: Some("loc".into()),
            url: "http://127.0.0.1:1/".into(),
            body: Arc::from("{}"),
            created_ms: due,
            state: DeliveryState::Pending,
            next_attempt_at_ms: Some(due),
            attempts: Vec::new(),
            in_flight: false,
        }
    }

    fn attempt(n: u32, at_ms: i64) -> Attempt {
        Attempt { attempt: n, at_ms, status: Some(500), latency_ms: 1, error: None, manual: false }
    }

    #[tokio::test]
    async fn a_due_delivery_is_claimed_once_until_its_attempt_is_recorded() {
        let store = MemoryDeliveries::new(10);
        assert!(store.enqueue(delivery("a", 100)).await.unwrap());
        assert!(store.claim_due(99, 10).await.unwrap().is_empty(), "not due yet");
        assert_eq!(store.claim_due(100, 10).await.unwrap().len(), 1);
        assert!(store.claim_due(100, 10).await.unwrap().is_empty(), "a second claimer gets nothing");
        assert_eq!(store.claim("a").await.unwrap(), Claim::InFlight);
        store.record("a", attempt(1, 100), Outcome::RetryAt(200)).await.unwrap();
        assert_eq!(store.next_due_ms().await.unwrap(), Some(200));
        assert!(store.claim_due(199, 10).await.unwrap().is_empty());
        assert_eq!(store.claim_due(200, 10).await.unwrap()[0].attempts.len(), 1);
    }

    #[tokio::test]
    async fn a_full_outbox_forgets_finished_deliveries_first_and_drops_when_all_are_pending() {
        let store = MemoryDeliveries::new(2);
        store.enqueue(delivery("a", 0)).await.unwrap();
        store.enqueue(delivery("b", 0)).await.unwrap();
        assert!(!store.enqueue(delivery("c", 0)).await.unwrap(), "both pending: the new one is dropped");
        store.claim_due(0, 1).await.unwrap();
        store.record("a", attempt(1, 0), Outcome::Delivered).await.unwrap();
        assert!(store.enqueue(delivery("d", 0)).await.unwrap(), "the delivered one makes room");
        assert!(store.get("a").await.unwrap().is_none());
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.held, stats.pending, stats.dropped), (2, 2, 1));
    }

    #[tokio::test]
    async fn a_failed_manual_resend_leaves_the_schedule_as_it_was() {
        let store = MemoryDeliveries::new(10);
        store.enqueue(delivery("a", 500)).await.unwrap();
        let Claim::Claimed(_) = store.claim("a").await.unwrap() else { panic!("claimable") };
        assert!(store.claim_due(1_000, 10).await.unwrap().is_empty(), "held by the resend");
        store.record("a", Attempt { manual: true, ..attempt(1, 10) }, Outcome::Unchanged).await.unwrap();
        let d = store.get("a").await.unwrap().unwrap();
        assert_eq!((d.state, d.next_attempt_at_ms, d.automatic_attempts()), (DeliveryState::Pending, Some(500), 0));
        assert_eq!(store.claim_due(500, 10).await.unwrap().len(), 1);
    }
}
