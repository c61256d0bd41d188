//! `--state FILE`: the world (companies, locations, private integrations and
//! their token digests, OAuth apps, custom limits) and the resource store,
//! saved as JSON and restored at start.
//!
//! A save writes a temporary file beside the target, flushes it to disk and
//! renames it over the target, so a crash at any moment leaves either the old
//! file or the new one, never a torn one. Full tokens are never written: the
//! world holds only their digests.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::Store;
use crate::world::World;

/// Written into every snapshot; a file of another format is refused.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub world: World,
    pub store: Store,
}

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically.
pub fn save_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    save_with(path, bytes, |file, bytes| file.write_all(bytes))
}

/// As [`save_bytes`], with the write itself given (tests inject failures here).
pub fn save_with(
    path: &Path,
    bytes: &[u8],
    write: impl FnOnce(&mut std::fs::File, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = temporary(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        write(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable; not every platform can open a directory.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn encode(world: &World, store: &Store) -> Result<Vec<u8>, String> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        format: u32,
        world: &'a World,
        store: &'a Store,
    }
    serde_json::to_vec(&Borrowed { format: FORMAT, world, store }).map_err(|e| e.to_string())
}

/// The snapshot at `path`, or `None` when there is no file yet.
pub fn load(path: &Path) -> Result<Option<Snapshot>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let mut snapshot: Snapshot =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a ghl-mock state file: {e}", path.display()))?;
    if snapshot.format != FORMAT {
        return Err(format!("{}: state format {} is not {FORMAT}", path.display(), snapshot.format));
    }
    snapshot.world.reindex();
    snapshot.store.reindex();
    Ok(Some(snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("ghl-mock-persist-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_write_that_fails_halfway_leaves_the_previous_state_intact() {
        let d = dir();
        let path = d.join("state.json");
        save_bytes(&path, b"{\"version\": 1}").unwrap();
        let failed = save_with(&path, b"{\"version\": 2, \"much\": \"more\"}", |file, bytes| {
            file.write_all(&bytes[..bytes.len() / 2])?;
            Err(std::io::Error::other("disk full (injected)"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"version\": 1}");
        assert!(!temporary(&path).exists(), "no half-written file is left behind");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_world_survives_a_round_trip_and_its_tokens_still_work() {
        let mut world = World::default();
        world.add_company(crate::world::Company {
            id: "c".into(),
            name: String::new(),
            environment: Default::default(),
        });
        world
            .add_location(crate::world::Location { id: "l".into(), name: String::new(), company_id: "c".into() })
            .unwrap();
        let (_, token) = world
            .create_integration(
                "n",
                "",
                crate::world::Owner::Location("l".into()),
                Default::default(),
                None,
                &mut fastrand::Rng::with_seed(1),
            )
            .unwrap();
        let d = dir();
        let path = d.join("state.json");
        save_bytes(&path, &encode(&world, &Store::default()).unwrap()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token), "the file holds no full token");
        let restored = load(&path).unwrap().unwrap();
        assert!(restored.world.pit(&token, 0).is_some());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_file_that_is_not_a_state_file_is_refused_by_name() {
        let d = dir();
        let path = d.join("other.json");
        std::fs::write(&path, b"[1, 2]").unwrap();
        let err = load(&path).err().unwrap();
        assert!(err.contains("other.json: not a ghl-mock state file"), "{err}");
        assert!(load(&d.join("missing.json")).unwrap().is_none());
        let _ = std::fs::remove_dir_all(d);
    }
}
