//! The request journal on the shared store: a Redis stream bounded in
//! entries and bytes, written by every replica, so that the journal and the
//! report cover all of the traffic.
//!
//! Recording never waits: an entry goes into a bounded queue, which one task
//! per replica writes in batches (one script call per batch). A read first
//! waits (briefly) for this replica's queue to be written, so a client reads
//! back its own requests; another replica's requests show once its writer
//! has run, within milliseconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use tokio::sync::{mpsc, Notify};

use super::{down, Store};
use crate::journal::{Entry, Filter, Stats};
use crate::state::{Journals, StateError};

/// Entries waiting for the writer; beyond this, new ones are dropped (and counted).
const QUEUE: usize = 16_384;
/// Entries written by one script call.
const BATCH: usize = 64;

pub struct JournalSink {
    store: Arc<Store>,
    capacity: usize,
    max_bytes: usize,
    queue: mpsc::Sender<Entry>,
    queued: AtomicU64,
    shared: Arc<Progress>,
}

#[derive(Default)]
struct Progress {
    /// Entries this replica's writer has handed to Redis (written or failed).
    done: AtomicU64,
    /// Entries dropped because the queue was full.
    lost: AtomicU64,
    moved: Notify,
}

impl JournalSink {
    /// A journal of `capacity` entries within `max_bytes`; starts its writer
    /// on the current runtime.
    pub fn start(store: Arc<Store>, capacity: usize, max_bytes: usize) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let shared = Arc::new(Progress::default());
        tokio::spawn(write(store.clone(), rx, shared.clone(), capacity, max_bytes));
        Self { store, capacity, max_bytes, queue, queued: AtomicU64::new(0), shared }
    }

    /// Waits until what this replica queued so far is written (at most 1 s).
    async fn caught_up(&self) {
        let target = self.queued.load(Ordering::Acquire);
        let wait = async {
            loop {
                let moved = self.shared.moved.notified();
                if self.shared.done.load(Ordering::Acquire) + self.shared.lost.load(Ordering::Acquire) >= target {
                    return;
                }
                moved.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
    }

    async fn read_all(&self) -> Result<Vec<Entry>, StateError> {
        self.caught_up().await;
        let rows: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(self.store.key("journal"))
            .arg("-")
            .arg("+")
            .query_async(&mut self.store.conn())
            .await
            .map_err(down)?;
        Ok(rows
            .into_iter()
            .filter_map(|(_, fields)| {
                let mut entry = None;
                let mut index = 0;
                for (name, value) in fields {
                    match name.as_str() {
                        "e" => entry = serde_json::from_str::<Entry>(&value).ok(),
                        "n" => index = value.parse().unwrap_or(0),
                        _ => {}
                    }
                }
                entry.map(|mut e| {
                    e.index = index;
                    e
                })
            })
            .collect())
    }
}

async fn write(
    store: Arc<Store>,
    mut rx: mpsc::Receiver<Entry>,
    progress: Arc<Progress>,
    capacity: usize,
    max_bytes: usize,
) {
    let script = Script::new(ADD);
    let mut batch = Vec::with_capacity(BATCH);
    let mut warned = false;
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut call = script.prepare_invoke();
        call.key(store.key("journal"))
            .key(store.key("journal:seq"))
            .key(store.key("journal:bytes"))
            .key(store.key("journal:dropped"))
            .arg(capacity)
            .arg(max_bytes);
        for entry in &batch {
            call.arg(serde_json::to_string(entry).unwrap_or_default()).arg(entry.bytes());
        }
        match call.invoke_async::<()>(&mut store.conn()).await {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!("journal entries lost: the shared store did not answer: {e}");
                warned = true;
            }
            Err(_) => {}
        }
        progress.done.fetch_add(batch.len() as u64, Ordering::AcqRel);
        progress.moved.notify_waiters();
        batch.clear();
    }
}

#[async_trait::async_trait]
impl Journals for JournalSink {
    fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    fn record(&self, entry: Entry) {
        if !self.is_enabled() {
            return;
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.queue.try_send(entry).is_err() {
            self.shared.lost.fetch_add(1, Ordering::AcqRel);
            self.shared.moved.notify_waiters();
        }
    }

    async fn entries(&self, filter: &Filter) -> Result<Vec<Entry>, StateError> {
        Ok(self.read_all().await?.into_iter().filter(|e| filter.matches(e)).collect())
    }

    async fn newest(&self, filter: &Filter, limit: usize) -> Result<Vec<Entry>, StateError> {
        let mut out: Vec<Entry> =
            self.read_all().await?.into_iter().rev().filter(|e| filter.matches(e)).take(limit).collect();
        out.reverse();
        Ok(out)
    }

    async fn count(&self, filter: &Filter) -> Result<usize, StateError> {
        Ok(self.read_all().await?.iter().filter(|e| filter.matches(e)).count())
    }

    async fn stats(&self) -> Result<Stats, StateError> {
        self.caught_up().await;
        let s = &self.store;
        let (held, bytes, dropped, recorded): (usize, Option<usize>, Option<u64>, Option<u64>) = redis::pipe()
            .cmd("XLEN")
            .arg(s.key("journal"))
            .cmd("GET")
            .arg(s.key("journal:bytes"))
            .cmd("GET")
            .arg(s.key("journal:dropped"))
            .cmd("GET")
            .arg(s.key("journal:seq"))
            .query_async(&mut s.conn())
            .await
            .map_err(down)?;
        Ok(Stats {
            capacity: self.capacity,
            held,
            bytes: bytes.unwrap_or(0),
            max_bytes: self.max_bytes,
            dropped: dropped.unwrap_or(0) + self.shared.lost.load(Ordering::Acquire),
            recorded: recorded.unwrap_or(0),
        })
    }

    async fn clear(&self) -> Result<(), StateError> {
        self.caught_up().await;
        let s = &self.store;
        redis::cmd("DEL")
            .arg(s.key("journal"))
            .arg(s.key("journal:bytes"))
            .arg(s.key("journal:dropped"))
            .query_async::<()>(&mut s.conn())
            .await
            .map_err(down)
    }
}

/// KEYS: journal, journal:seq, journal:bytes, journal:dropped. ARGV:
/// capacity, max bytes, then (entry JSON, bytes) pairs. Numbers each entry
/// and drops the oldest beyond either bound.
const ADD: &str = r#"
local cap, maxb = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  local n = redis.call('INCR', KEYS[2])
  redis.call('XADD', KEYS[1], '*', 'e', ARGV[i], 'n', n, 's', ARGV[i + 1])
  local held = redis.call('INCRBY', KEYS[3], ARGV[i + 1])
  local len = redis.call('XLEN', KEYS[1])
  while len > 1 and (len > cap or held > maxb) do
    local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
    local size = 0
    for j = 1, #oldest[2], 2 do
      if oldest[2][j] == 's' then size = tonumber(oldest[2][j + 1]) end
    end
    redis.call('XDEL', KEYS[1], oldest[1])
    held = redis.call('DECRBY', KEYS[3], size)
    redis.call('INCR', KEYS[4])
    len = len - 1
  end
end
return true
"#;
