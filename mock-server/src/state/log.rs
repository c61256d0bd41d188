//! The durable log behind `--state FILE`: an append-only file of JSON
//! entries, in which a write is on disk before its caller hears "done".
//!
//! It owns the file and nothing else. Entries are opaque [`Value`]s: the log
//! knows no record types, and the caller decides what an entry means, when to
//! compact (see [`Log::bytes`]) and how a legacy snapshot becomes entries.
//!
//! **Format** (JSON Lines): the first line is the header `{"ghl_mock_log":1}`,
//! every later line is one entry, and every line ends with `\n`.
//!
//! **Durability.** One writer thread owns the file. [`Log::append`] queues its
//! entries and resolves once they are written and `fdatasync`ed. The writer
//! takes everything queued since its last sync, writes it with one
//! `write_all`, syncs once and answers every caller of that batch (group
//! commit), so concurrent appends share an fsync. A kill in the middle of a
//! write leaves at most a torn last line, which [`open`] drops; every
//! acknowledged entry is before it. An entry whose append was not answered, or
//! was answered with an error, may or may not be there after a restart. The
//! entries of one append are written together and in order, but a crash can
//! keep the first of them without the rest: what must survive together
//! belongs in one entry.
//!
//! **Order.** An entry's place is fixed when `append` is *called*, not when
//! its future is first polled, so a caller can apply a change and call
//! `append` under its own lock, release the lock, then await. [`Log::compact`]
//! goes through the same queue: appends called before it are written to the
//! old file (and superseded by the snapshot), appends called after it go to
//! the new file. Hence the one rule for the caller: the snapshot given to
//! `compact` must include the effect of every append called before it — take
//! the snapshot and call `compact` under the same lock as the appends.
//!
//! **Failures.** A failed write or sync fails every append of its batch. The
//! file is then cut back to its last durable entry (and synced) before
//! anything else is written, and that cut is retried before each later batch
//! until it succeeds; until then every append fails. So nothing is
//! acknowledged on top of a file in an unknown state.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use serde_json::Value;
use tokio::sync::oneshot;

/// The first line of every log.
const HEADER: &[u8] = b"{\"ghl_mock_log\":1}\n";
const HEADER_KEY: &str = "ghl_mock_log";
const VERSION: u64 = 1;
/// The `format` of the snapshots `persist` wrote before there was a log.
const LEGACY_FORMAT: u64 = 1;
/// Most commands the writer takes into one batch, so that a steady stream of
/// appends cannot postpone a sync forever.
const MAX_BATCH: usize = 4096;

#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    #[error("{}: directory {} does not exist", .path.display(), .dir.display())]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("{}: not a ghl-mock log (its first line is not {{\"ghl_mock_log\": 1}}) nor a ghl-mock state snapshot", .path.display())]
    NotALog { path: PathBuf },
    #[error("{}: log version {version} is not supported (this ghl-mock reads version {VERSION})", .path.display())]
    Version { path: PathBuf, version: Value },
    #[error("{}: line {line} is not a JSON entry ({message}), and complete lines follow it", .path.display())]
    BadLine { path: PathBuf, line: usize, message: String },
    #[error("{}: cannot {action}: {error}", .path.display())]
    Io { path: PathBuf, action: &'static str, error: Arc<std::io::Error> },
    #[error("{}: the log is closed", .path.display())]
    Closed { path: PathBuf },
}

impl LogError {
    fn io(path: &Path, action: &'static str, error: std::io::Error) -> Self {
        LogError::Io { path: path.to_path_buf(), action, error: Arc::new(error) }
    }
}

/// What [`open`] found.
#[derive(Debug)]
pub enum Opened {
    /// A log, new or existing, and its entries oldest first, to replay.
    Log { log: Log, entries: Vec<Value> },
    /// The file is a snapshot in the old format of `persist` (one JSON object
    /// with `"format": 1`). It is left untouched; migrate it by turning it into
    /// entries and calling [`create`], which replaces it atomically.
    Legacy { snapshot: Value },
}

/// An open log. Dropping it (or [`Log::close`]) lets the writer finish what is
/// queued and stops it.
pub struct Log {
    path: PathBuf,
    queue: Option<mpsc::Sender<Command>>,
    writer: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// What the writer publishes to the [`Log`].
#[derive(Default)]
struct Shared {
    bytes: AtomicU64,
    syncs: AtomicU64,
    /// Writes still to fail on purpose.
    #[cfg(test)]
    faults: AtomicU64,
}

type Answer = oneshot::Sender<Result<(), LogError>>;

enum Command {
    Append { lines: Vec<u8>, done: Answer },
    Compact { lines: Vec<u8>, done: Answer },
    Close { done: Answer },
}

/// Opens the log at `path`, creating it if there is no file, and returns its
/// entries for replay.
///
/// A torn last line (a write cut short by a kill) is dropped, and the file cut
/// back to the line before it. Anything else that is not a log is an error,
/// except an old snapshot, which is [`Opened::Legacy`].
pub async fn open(path: &Path) -> Result<Opened, LogError> {
    let path = path.to_path_buf();
    blocking(path.clone(), move || open_now(path)).await
}

/// Writes a new log at `path` holding `entries`, atomically replacing whatever
/// is there: nothing, or the legacy snapshot [`open`] returned. (Given an
/// existing log, this discards it.)
pub async fn create(path: &Path, entries: Vec<Value>) -> Result<Log, LogError> {
    let path = path.to_path_buf();
    let lines = encode(&entries);
    blocking(path.clone(), move || create_now(path, &lines)).await
}

/// [`open`], for callers outside a runtime (start-up): the same work, on
/// this thread.
pub fn open_blocking(path: &Path) -> Result<Opened, LogError> {
    open_now(path.to_path_buf())
}

/// [`create`], on this thread.
pub fn create_blocking(path: &Path, entries: Vec<Value>) -> Result<Log, LogError> {
    create_now(path.to_path_buf(), &encode(&entries))
}

impl Log {
    /// Appends `entries`; resolves once they are on disk. Their place in the
    /// log is fixed by this call, before the future is awaited.
    pub fn append(&self, entries: Vec<Value>) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let lines = encode(&entries);
        self.request(|done| Command::Append { lines, done })
    }

    /// Replaces the whole log by `snapshot`, atomically; resolves once the new
    /// file is in place and durable. Appends called before this are
    /// superseded, so `snapshot` must include their effect; appends called
    /// after it go to the new file. If it fails, the old file stays in use.
    pub fn compact(&self, snapshot: Vec<Value>) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let lines = encode(&snapshot);
        self.request(|done| Command::Compact { lines, done })
    }

    /// Waits for everything queued to be written, then stops the writer.
    pub async fn close(self) -> Result<(), LogError> {
        self.request(|done| Command::Close { done }).await
    }

    /// The size of the file, header included.
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// How many times the file has been synced to disk since it was opened.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn request(&self, command: impl FnOnce(Answer) -> Command) -> impl Future<Output = Result<(), LogError>> + 'static {
        let (done, answer) = oneshot::channel();
        let queued = self.queue.as_ref().is_some_and(|queue| queue.send(command(done)).is_ok());
        let path = self.path.clone();
        async move {
            if !queued {
                return Err(LogError::Closed { path });
            }
            answer.await.unwrap_or(Err(LogError::Closed { path }))
        }
    }

    /// Makes the next `count` writes fail halfway through, as a full disk would.
    #[cfg(test)]
    fn fail_next_writes(&self, count: u64) {
        self.shared.faults.store(count, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("path", &self.path).field("bytes", &self.bytes()).finish_non_exhaustive()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // The writer drains what is queued before it sees the queue closed.
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("{}: the log's writer thread panicked", self.path.display());
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    path: PathBuf,
    work: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => Err(LogError::io(&path, "open the log", std::io::Error::other(e.to_string()))),
    }
}

fn encode(entries: &[Value]) -> Vec<u8> {
    let mut lines = Vec::new();
    for entry in entries {
        // Compact JSON escapes every newline inside strings, so one entry is one line.
        lines.extend_from_slice(entry.to_string().as_bytes());
        lines.push(b'\n');
    }
    lines
}

fn directory(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn require_directory(path: &Path) -> Result<(), LogError> {
    let dir = directory(path);
    if dir.is_dir() {
        Ok(())
    } else {
        Err(LogError::NoDirectory { path: path.to_path_buf(), dir: dir.to_path_buf() })
    }
}

fn open_now(path: PathBuf) -> Result<Opened, LogError> {
    require_directory(&path)?;
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Opened::Log { log: create_now(path, &[])?, entries: Vec::new() });
        }
        Err(e) => return Err(LogError::io(&path, "read the log", e)),
    };
    if bytes.is_empty() {
        // Never left by a crash (a log is born with its header, by rename),
        // but an empty file made by hand holds nothing to lose.
        tracing::warn!("{}: empty file; starting a new log in it", path.display());
        return Ok(Opened::Log { log: create_now(path, &[])?, entries: Vec::new() });
    }
    let header_end = bytes.iter().position(|&b| b == b'\n');
    let header: Option<Value> = header_end.and_then(|end| serde_json::from_slice(&bytes[..end]).ok());
    match header.as_ref().and_then(|h| h.get(HEADER_KEY)) {
        Some(version) if version.as_u64() == Some(VERSION) => {}
        Some(version) => return Err(LogError::Version { path, version: version.clone() }),
        None => return legacy(path, &bytes),
    }
    let start = header_end.map_or(bytes.len(), |end| end + 1);
    let (entries, good) = replay(&path, &bytes, start)?;
    let file = OpenOptions::new().append(true).open(&path).map_err(|e| LogError::io(&path, "open the log", e))?;
    let shared = Arc::new(Shared::default());
    if good < bytes.len() {
        tracing::warn!(
            "{}: dropping the last {} bytes, an entry whose write was cut short",
            path.display(),
            bytes.len() - good
        );
        file.set_len(good as u64)
            .and_then(|()| file.sync_data())
            .map_err(|e| LogError::io(&path, "cut off the torn last line", e))?;
        shared.syncs.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Opened::Log { log: start_writer(path, file, good as u64, shared)?, entries })
}

/// The file is not a log: perhaps a snapshot of the old format.
fn legacy(path: PathBuf, bytes: &[u8]) -> Result<Opened, LogError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(snapshot) if snapshot.get("format").and_then(Value::as_u64) == Some(LEGACY_FORMAT) => {
            Ok(Opened::Legacy { snapshot })
        }
        _ => Err(LogError::NotALog { path }),
    }
}

/// The entries after the header, and the length of the file up to the last
/// one. A last line that is incomplete or not JSON is torn and left out.
fn replay(path: &Path, bytes: &[u8], start: usize) -> Result<(Vec<Value>, usize), LogError> {
    let mut entries = Vec::new();
    let mut good = start;
    let mut rest = &bytes[start..];
    let mut line = 1;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        line += 1;
        let text = &rest[..end];
        rest = &rest[end + 1..];
        match serde_json::from_slice(text) {
            Ok(entry) => {
                entries.push(entry);
                good += end + 1;
            }
            Err(_) if !rest.contains(&b'\n') => break,
            Err(e) => return Err(LogError::BadLine { path: path.to_path_buf(), line, message: e.to_string() }),
        }
    }
    Ok((entries, good))
}

fn create_now(path: PathBuf, lines: &[u8]) -> Result<Log, LogError> {
    require_directory(&path)?;
    let shared = Arc::new(Shared::default());
    let (file, len) = write_fresh(&path, lines, &shared)?;
    sync_directory(&path)?;
    start_writer(path, file, len, shared)
}

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes header and `lines` to a file beside `path`, syncs it and renames it
/// over `path`; returns it, open for appending, and its length. The rename is
/// durable only once the directory is synced.
fn write_fresh(path: &Path, lines: &[u8], shared: &Shared) -> Result<(File, u64), LogError> {
    let tmp = temporary(path);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(LogError::io(&tmp, "remove a stale temporary file", e));
        }
        _ => {}
    }
    let written = OpenOptions::new().append(true).create_new(true).open(&tmp).and_then(|mut file| {
        file.write_all(HEADER)?;
        file.write_all(lines)?;
        file.sync_all()?;
        shared.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(file)
    });
    let renamed = written.map_err(|e| LogError::io(&tmp, "write a new log", e)).and_then(|file| {
        std::fs::rename(&tmp, path).map(|()| file).map_err(|e| LogError::io(path, "rename a new log", e))
    });
    match renamed {
        Ok(file) => Ok((file, (HEADER.len() + lines.len()) as u64)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Makes a rename in `path`'s directory durable.
#[cfg(unix)]
fn sync_directory(path: &Path) -> Result<(), LogError> {
    let dir = directory(path);
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| LogError::io(dir, "sync the directory", e))
}

/// Elsewhere a directory cannot be opened; the rename is as durable as the platform makes it.
#[cfg(not(unix))]
fn sync_directory(_path: &Path) -> Result<(), LogError> {
    Ok(())
}

fn start_writer(path: PathBuf, file: File, len: u64, shared: Arc<Shared>) -> Result<Log, LogError> {
    shared.bytes.store(len, Ordering::Relaxed);
    let (queue, commands) = mpsc::channel();
    let writer =
        Writer { path: path.clone(), file, len, dirty: false, directory_unsynced: false, shared: shared.clone() };
    let handle = std::thread::Builder::new()
        .name("ghl-mock-log".into())
        .spawn(move || writer.run(commands))
        .map_err(|e| LogError::io(&path, "start the log's writer thread", e))?;
    Ok(Log { path, queue: Some(queue), writer: Some(handle), shared })
}

/// The one owner of the file.
struct Writer {
    path: PathBuf,
    file: File,
    /// The length of the file up to its last durable entry: where a failed
    /// write is cut back to.
    len: u64,
    /// A write failed, and the file may hold part of it past `len`.
    dirty: bool,
    /// A compaction renamed the file and the directory is not yet synced.
    directory_unsynced: bool,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self, commands: mpsc::Receiver<Command>) {
        let mut batch = Vec::new();
        let mut waiting = Vec::new();
        while let Ok(first) = commands.recv() {
            for command in std::iter::once(first).chain(commands.try_iter().take(MAX_BATCH)) {
                match command {
                    Command::Append { lines, done } => {
                        batch.extend_from_slice(&lines);
                        waiting.push(done);
                    }
                    Command::Compact { lines, done } => {
                        self.commit(&mut batch, &mut waiting);
                        let _ = done.send(self.compact(&lines));
                    }
                    Command::Close { done } => {
                        self.commit(&mut batch, &mut waiting);
                        let _ = done.send(Ok(()));
                        return;
                    }
                }
            }
            self.commit(&mut batch, &mut waiting);
        }
    }

    /// Writes the batch and answers every caller in it with the one outcome.
    fn commit(&mut self, batch: &mut Vec<u8>, waiting: &mut Vec<Answer>) {
        if waiting.is_empty() {
            return;
        }
        let outcome = self.write(batch);
        batch.clear();
        for done in waiting.drain(..) {
            // A caller that stopped waiting does not care.
            let _ = done.send(outcome.clone());
        }
    }

    fn write(&mut self, lines: &[u8]) -> Result<(), LogError> {
        self.cut_back()?;
        if !lines.is_empty() {
            if let Err(e) = self.write_and_sync(lines) {
                self.dirty = true;
                let error = LogError::io(&self.path, "append to the log", e);
                match self.cut_back() {
                    Ok(()) => tracing::warn!("{error}; cut the log back to its last durable entry"),
                    Err(e) => tracing::error!("{error}; cutting it back failed too, will retry: {e}"),
                }
                return Err(error);
            }
            self.len += lines.len() as u64;
            self.shared.bytes.store(self.len, Ordering::Relaxed);
        }
        self.sync_directory()
    }

    fn write_and_sync(&mut self, lines: &[u8]) -> std::io::Result<()> {
        if self.inject_fault() {
            self.file.write_all(&lines[..lines.len() / 2])?;
            return Err(std::io::Error::other("disk full (injected)"));
        }
        self.file.write_all(lines)?;
        self.sync()
    }

    /// After a failed write, drops whatever part of it reached the file.
    fn cut_back(&mut self) -> Result<(), LogError> {
        if !self.dirty {
            return Ok(());
        }
        self.file
            .set_len(self.len)
            .and_then(|()| self.sync())
            .map_err(|e| LogError::io(&self.path, "cut the log back to its last durable entry", e))?;
        self.dirty = false;
        self.shared.bytes.store(self.len, Ordering::Relaxed);
        Ok(())
    }

    fn compact(&mut self, lines: &[u8]) -> Result<(), LogError> {
        let (file, len) = write_fresh(&self.path, lines, &self.shared)?;
        // From here on the new file is the log, whatever happens to the directory sync.
        self.file = file;
        self.len = len;
        self.dirty = false;
        self.directory_unsynced = true;
        self.shared.bytes.store(len, Ordering::Relaxed);
        self.sync_directory()
    }

    /// Until a compaction's rename is durable, nothing written to the new file
    /// is: every batch retries the directory sync and fails without it.
    fn sync_directory(&mut self) -> Result<(), LogError> {
        if self.directory_unsynced {
            sync_directory(&self.path)?;
            self.directory_unsynced = false;
        }
        Ok(())
    }

    fn sync(&self) -> std::io::Result<()> {
        self.shared.syncs.fetch_add(1, Ordering::Relaxed);
        self.file.sync_data()
    }

    #[cfg(test)]
    fn inject_fault(&self) -> bool {
        self.shared.faults.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
    }

    #[cfg(not(test))]
    fn inject_fault(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("ghl-mock-log-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    async fn reopen(path: &Path) -> (Log, Vec<Value>) {
        match open(path).await.unwrap() {
            Opened::Log { log, entries } => (log, entries),
            Opened::Legacy { .. } => panic!("{}: unexpectedly a legacy snapshot", path.display()),
        }
    }

    fn entries(range: std::ops::Range<u64>) -> Vec<Value> {
        range.map(|i| json!({ "i": i })).collect()
    }

    #[tokio::test]
    async fn appended_entries_replay_in_order_after_reopening() {
        let d = dir();
        let path = d.join("state.log");
        let (log, replayed) = reopen(&path).await;
        assert!(replayed.is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), HEADER, "a new log is its header alone");
        log.append(entries(0..2)).await.unwrap();
        log.append(entries(2..3)).await.unwrap();
        assert_eq!(log.bytes(), std::fs::metadata(&path).unwrap().len());
        log.close().await.unwrap();
        let (_, replayed) = reopen(&path).await;
        assert_eq!(replayed, entries(0..3));
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn a_torn_last_line_is_dropped_and_the_rest_replays() {
        let d = dir();
        let path = d.join("state.log");
        let (log, _) = reopen(&path).await;
        log.append(entries(0..2)).await.unwrap();
        drop(log);
        let good = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"i\": 2, \"na").unwrap();

        let (log, replayed) = reopen(&path).await;
        assert_eq!(replayed, entries(0..2));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good, "the torn bytes are cut off");
        log.append(entries(2..3)).await.unwrap();
        drop(log);
        let (_, replayed) = reopen(&path).await;
        assert_eq!(replayed, entries(0..3));
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn a_complete_last_line_that_is_not_json_is_dropped_as_torn() {
        let d = dir();
        let path = d.join("state.log");
        std::fs::write(&path, b"{\"ghl_mock_log\":1}\n{\"i\":0}\n{\"i\":\n").unwrap();
        let (_, replayed) = reopen(&path).await;
        assert_eq!(replayed, entries(0..1));
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn a_bad_line_before_complete_ones_is_an_error_naming_the_path_and_line() {
        let d = dir();
        let path = d.join("state.log");
        let text = b"{\"ghl_mock_log\":1}\n{\"i\":0}\nnot json\n{\"i\":2}\n";
        std::fs::write(&path, text).unwrap();
        let err = open(&path).await.err().unwrap();
        assert!(matches!(err, LogError::BadLine { line: 3, .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("state.log: line 3"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), text, "the file is left as it was");
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn compaction_keeps_exactly_the_snapshot_and_later_appends() {
        let d = dir();
        let path = d.join("state.log");
        let (log, _) = reopen(&path).await;
        log.append(entries(0..5)).await.unwrap();
        // Queued before the compaction: superseded by the snapshot.
        let before = log.append(entries(5..6));
        let compacted = log.compact(vec![json!({ "snapshot": 6 })]);
        // Queued after it, before it is done: goes to the new file.
        let after = log.append(entries(7..8));
        before.await.unwrap();
        compacted.await.unwrap();
        after.await.unwrap();
        log.append(entries(8..9)).await.unwrap();
        assert_eq!(log.bytes(), std::fs::metadata(&path).unwrap().len());
        drop(log);
        let (_, replayed) = reopen(&path).await;
        assert_eq!(replayed, vec![json!({ "snapshot": 6 }), json!({ "i": 7 }), json!({ "i": 8 })]);
        assert!(!temporary(&path).exists());
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_concurrent_appends_share_a_few_syncs_and_all_replay() {
        let d = dir();
        let path = d.join("state.log");
        let log = Arc::new(reopen(&path).await.0);
        let before = log.syncs();
        let tasks: Vec<_> = (0..1000u64)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    log.append(vec![json!({ "i": i, "part": 0 }), json!({ "i": i, "part": 1 })]).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let syncs = log.syncs() - before;
        eprintln!("1000 concurrent appends: {syncs} syncs");
        assert!(syncs <= 100, "1000 concurrent appends took {syncs} syncs");
        drop(log);

        let (_, replayed) = reopen(&path).await;
        assert_eq!(replayed.len(), 2000);
        let mut seen: Vec<u64> = replayed
            .chunks(2)
            .map(|pair| {
                assert_eq!((pair[0]["part"].clone(), pair[1]["part"].clone()), (json!(0), json!(1)));
                assert_eq!(pair[0]["i"], pair[1]["i"], "one append's entries are contiguous");
                pair[0]["i"].as_u64().unwrap()
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn a_failed_write_fails_its_appends_and_leaves_no_trace() {
        let d = dir();
        let path = d.join("state.log");
        let (log, _) = reopen(&path).await;
        log.append(entries(0..1)).await.unwrap();
        log.fail_next_writes(1);
        let err = log.append(entries(1..3)).await.err().unwrap();
        assert!(err.to_string().contains("state.log: cannot append to the log: disk full"), "{err}");
        assert_eq!(log.bytes(), std::fs::metadata(&path).unwrap().len(), "the half-written batch is cut off");
        log.append(entries(3..4)).await.unwrap();
        drop(log);
        let (_, replayed) = reopen(&path).await;
        assert_eq!(replayed, vec![json!({ "i": 0 }), json!({ "i": 3 })]);
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn dropping_the_log_writes_what_was_already_queued() {
        let d = dir();
        let path = d.join("state.log");
        let (log, _) = reopen(&path).await;
        let pending = log.append(entries(0..1));
        drop(log);
        pending.await.unwrap();
        let (log, replayed) = reopen(&path).await;
        assert_eq!(replayed, entries(0..1));
        log.close().await.unwrap();
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn a_missing_directory_fails_at_open() {
        let d = dir();
        let path = d.join("nowhere").join("state.log");
        let err = open(&path).await.err().unwrap();
        assert!(matches!(err, LogError::NoDirectory { .. }), "{err:?}");
        assert!(err.to_string().contains("nowhere/state.log: directory"), "{err}");
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn a_legacy_snapshot_is_recognised_left_alone_and_migrated_by_create() {
        let d = dir();
        let path = d.join("state.json");
        let old = br#"{"format":1,"world":{"companies":[]},"store":{}}"#;
        std::fs::write(&path, old).unwrap();
        let Opened::Legacy { snapshot } = open(&path).await.unwrap() else { panic!("not recognised as legacy") };
        assert_eq!(snapshot["world"], json!({ "companies": [] }));
        assert_eq!(std::fs::read(&path).unwrap(), old, "open does not touch a legacy file");

        let log = create(&path, vec![json!({ "migrated": true })]).await.unwrap();
        log.append(entries(0..1)).await.unwrap();
        drop(log);
        let (_, replayed) = reopen(&path).await;
        assert_eq!(replayed, vec![json!({ "migrated": true }), json!({ "i": 0 })]);
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn a_file_that_is_neither_a_log_nor_a_snapshot_is_refused_by_name() {
        let d = dir();
        let path = d.join("other.json");
        std::fs::write(&path, b"[1, 2]\n").unwrap();
        let err = open(&path).await.err().unwrap();
        assert!(err.to_string().contains("other.json: not a ghl-mock log"), "{err}");

        std::fs::write(&path, b"{\"ghl_mock_log\":2}\n").unwrap();
        let err = open(&path).await.err().unwrap();
        assert!(err.to_string().contains("other.json: log version 2 is not supported"), "{err}");
        let _ = std::fs::remove_dir_all(d);
    }
}
