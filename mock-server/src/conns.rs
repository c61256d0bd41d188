//! The open connections, so that a full server makes room for a new client
//! by closing an idle connection rather than refusing the newcomer.
//!
//! Idle means no request in flight: a connection still waiting for its first
//! request (or trickling its headers) or a keep-alive connection between
//! requests. When every slot is taken, the connection to close is chosen in
//! this order: one silent for a second or more without a whole request (a
//! client that connects and says nothing is the attack), then a keep-alive
//! connection between requests (its client reconnects), and only then one
//! that connected a moment ago and may be sending its request; within each,
//! the peer address holding the most connections first (one host cannot
//! crowd out the others), then the longest idle. A connection with a request
//! in flight is never chosen, so nothing accepted is lost; when every
//! connection is busy, the newcomer is refused at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::Notify;

/// What a connection's own requests update, without the table's lock.
#[derive(Default)]
pub struct Activity {
    busy: AtomicU32,
    answered: AtomicU64,
    /// When it last began or finished a request, or was accepted (see [`now_us`]).
    idle_since_us: AtomicU64,
}

/// µs since a second before the first call: every time read is at least
/// [`SILENT_US`], so 0 stands for "silent since before start-up".
fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64 + SILENT_US
}

impl Activity {
    /// A request of this connection has begun.
    pub fn begin(&self) {
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.idle_since_us.store(now_us(), Ordering::Relaxed);
    }

    /// A request of this connection has been answered.
    pub fn end(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        self.idle_since_us.store(now_us(), Ordering::Relaxed);
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst) > 0
    }
}

/// What a request knows of its connection (in its extensions): whether
/// the client has shut its side.
#[derive(Clone)]
pub struct ClientSide(Arc<tokio::net::TcpStream>);

impl ClientSide {
    /// Whether the client has shut its side of the connection (it sends no
    /// more and may have gone: a full close and a half-close look the same
    /// until an answer is written). A peek, which neither waits nor takes
    /// the bytes of a next request.
    pub fn has_closed(&self) -> bool {
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        matches!(socket2::SockRef::from(&*self.0).peek(&mut byte), Ok(0))
    }
}

/// A connection's stream, shared by the connection (which reads and writes
/// it) and its requests (which may ask whether the client has closed its side).
pub struct Watched(Arc<tokio::net::TcpStream>);

impl Watched {
    pub fn new(stream: tokio::net::TcpStream) -> (Self, ClientSide) {
        let stream = Arc::new(stream);
        (Self(stream.clone()), ClientSide(stream))
    }
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            // As much as there is room for (hyper's buffer bound decides what
            // is too much), into memory zeroed first: `try_read` takes `&[u8]`.
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale; polling again registers for the next.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Writes go straight to the socket.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write))
    }
}

/// One open connection.
struct Slot {
    peer: IpAddr,
    activity: Arc<Activity>,
    close: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Slot>,
}

/// The open connections, at most `cap` of them holding a slot.
pub struct Connections {
    cap: usize,
    table: Mutex<Table>,
    /// Connections whose task still runs, slot or not (one told to close
    /// may be finishing its answer): what a shutdown waits for.
    live: AtomicUsize,
}

/// A connection's place: told to close (`closing`) when it is chosen to
/// make room; gives its slot back when dropped.
pub struct Held {
    id: u64,
    conns: Arc<Connections>,
    pub activity: Arc<Activity>,
    pub closing: Arc<Notify>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.conns.lock().open.remove(&self.id);
        self.conns.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Connections {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self { cap: cap.max(1), table: Mutex::new(Table::default()), live: AtomicUsize::new(0) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many connections hold a slot.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// How many connection tasks still run.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// A slot for a new connection from `peer`: a free one, else one made by
    /// telling an idle connection to close; None when every one is busy.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Held> {
        let mut table = self.lock();
        if table.open.len() >= self.cap {
            let victim = choose_idle(&table.open)?;
            // The chosen connection gives its slot to the newcomer now; its
            // task closes it when told.
            if let Some(slot) = table.open.remove(&victim) {
                slot.close.notify_one();
                tracing::debug!(peer = %slot.peer, "closing an idle connection to make room for a new client");
            }
        }
        let id = table.next;
        table.next += 1;
        let activity = Arc::new(Activity::default());
        activity.idle_since_us.store(now_us(), Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        table.open.insert(id, Slot { peer, activity: activity.clone(), close: close.clone() });
        self.live.fetch_add(1, Ordering::SeqCst);
        Some(Held { id, conns: self.clone(), activity, closing: close })
    }

    /// Tells every open connection to close (at shutdown).
    pub fn close_all(&self) {
        for slot in self.lock().open.values() {
            slot.close.notify_one();
        }
    }
}

/// How long a connection may be silent before it counts as one that says
/// nothing: a client's request is sent within milliseconds of connecting.
const SILENT_US: u64 = 1_000_000;

/// The idle connection to close, in the order of the module's description.
fn choose_idle(open: &HashMap<u64, Slot>) -> Option<u64> {
    let mut per_peer: HashMap<IpAddr, usize> = HashMap::new();
    for slot in open.values() {
        *per_peer.entry(slot.peer).or_default() += 1;
    }
    let now = now_us();
    open.iter()
        .filter(|(_, s)| !s.activity.is_busy())
        .min_by_key(|(_, s)| {
            let crowd = per_peer.get(&s.peer).copied().unwrap_or(0);
            let idle_since = s.activity.idle_since_us.load(Ordering::Relaxed);
            let class = match (s.activity.answered.load(Ordering::Relaxed), now.saturating_sub(idle_since)) {
                (0, silent) if silent >= SILENT_US => 0,
                (0, _) => 2,
                _ => 1,
            };
            (class, std::cmp::Reverse(crowd), idle_since)
        })
        .map(|(id, _)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_full_table_makes_room_by_closing_a_long_silent_connection_before_a_keep_alive_one() {
        let conns = Connections::new(3);
        let keep_alive = conns.admit(ip(1)).unwrap();
        keep_alive.activity.begin();
        keep_alive.activity.end();
        let silent = conns.admit(ip(2)).unwrap();
        silent.activity.idle_since_us.store(0, Ordering::Relaxed);
        let busy = conns.admit(ip(3)).unwrap();
        busy.activity.begin();
        let newcomer = conns.admit(ip(4));
        assert!(newcomer.is_some(), "a full table with idle connections admits a newcomer");
        assert_eq!(conns.open(), 3);
        let open: Vec<u64> = conns.lock().open.keys().copied().collect();
        assert!(!open.contains(&silent.id), "the connection that never asked anything is the one closed");
        assert!(open.contains(&keep_alive.id) && open.contains(&busy.id));
    }

    #[test]
    fn a_keep_alive_connection_makes_room_before_one_that_connected_a_moment_ago() {
        let conns = Connections::new(2);
        let keep_alive = conns.admit(ip(1)).unwrap();
        keep_alive.activity.begin();
        keep_alive.activity.end();
        let fresh = conns.admit(ip(1)).unwrap();
        let _newcomer = conns.admit(ip(2)).unwrap();
        let open: Vec<u64> = conns.lock().open.keys().copied().collect();
        assert!(open.contains(&fresh.id), "a connection a moment old may be sending its request: kept");
        assert!(!open.contains(&keep_alive.id), "the keep-alive connection between requests made room");
    }

    #[test]
    fn among_silent_connections_the_most_crowded_peer_loses_one_first() {
        let conns = Connections::new(4);
        let lone = conns.admit(ip(1)).unwrap();
        let crowd: Vec<Held> = (0..3).map(|_| conns.admit(ip(2)).unwrap()).collect();
        let _newcomer = conns.admit(ip(3)).unwrap();
        let open: Vec<u64> = conns.lock().open.keys().copied().collect();
        assert!(open.contains(&lone.id), "the peer with one connection keeps it");
        assert_eq!(crowd.iter().filter(|h| open.contains(&h.id)).count(), 2, "the crowded peer gave one up");
    }

    #[test]
    fn a_table_of_busy_connections_refuses_the_newcomer_and_frees_a_slot_when_one_leaves() {
        let conns = Connections::new(2);
        let a = conns.admit(ip(1)).unwrap();
        let b = conns.admit(ip(1)).unwrap();
        a.activity.begin();
        b.activity.begin();
        assert!(conns.admit(ip(2)).is_none(), "no request in flight is ever cut for a newcomer");
        drop(b);
        assert!(conns.admit(ip(2)).is_some(), "a slot given back is free again");
    }
}
