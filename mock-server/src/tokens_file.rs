//! `serve --tokens-file PATH`: the tokens the mock issued, for a CI job to
//! `source`.
//!
//! HighLevel shows a private integration's token once, when it is created
//! or rotated, and keeps only what it needs to check it; the mock does the
//! same (its state holds digests), so a job that missed the banner had no
//! way back to a token. This file is that way back: one `NAME=token` line
//! per integration whose current token the mock has seen, mode 0600,
//! rewritten whole (through a temporary file and a rename) whenever a token
//! is issued, rotated, withdrawn or deleted, and at every start. A restart
//! with `--state` mints no tokens: the file's own lines are kept for every
//! token that still opens its integration.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::world::World;

pub struct TokensFile {
    path: PathBuf,
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// Integration id → its tokens known in clear, newest last (a cancelled
    /// rotation makes the one before current again).
    by_id: BTreeMap<String, Vec<String>>,
    /// Tokens read from the file of an earlier run, filed under their
    /// integration at the next write, when the world can say whose they are.
    read_back: Vec<String>,
}

impl TokensFile {
    /// The file at `path`, with the tokens it already holds (from an earlier
    /// run); none when it does not exist yet.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut known = Known::default();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let lines = text.lines().filter(|l| !l.starts_with('#'));
                known.read_back = lines.filter_map(|l| l.split_once('=')).map(|(_, t)| t.trim().to_string()).collect();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Self { path: path.to_path_buf(), known: Mutex::new(known) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A token issued for integration `id` (created, rotated, from the fixture).
    pub fn issued(&self, id: &str, token: &str) {
        let mut known = self.lock();
        let tokens = known.by_id.entry(id.to_string()).or_default();
        tokens.retain(|t| t != token);
        tokens.push(token.to_string());
    }

    /// Forgets every token (a reset issues new ones).
    pub fn clear(&self) {
        *self.lock() = Known::default();
    }

    /// Writes the file: each integration's current token in `world`, under
    /// the integration's name as it stands, one `NAME=token` line each.
    pub fn write(&self, world: &World) -> std::io::Result<()> {
        let mut lines: Vec<(String, String, String)> = Vec::new();
        {
            let mut known = self.lock();
            for token in std::mem::take(&mut known.read_back) {
                if let Some(id) = world.current_token_of(&token) {
                    known.by_id.entry(id).or_insert_with(|| vec![token]);
                }
            }
            known.by_id.retain(|id, tokens| {
                let Some(current) = tokens.iter().rev().find(|t| world.current_token_of(t).is_some()) else {
                    return false;
                };
                if let Ok(pi) = world.integration(id) {
                    lines.push((id.clone(), pi.name.clone(), current.clone()));
                }
                true
            });
        }
        let mut taken: BTreeMap<String, usize> = BTreeMap::new();
        let mut text = String::from("# ghl-mock: the current token of each private integration (source this file)\n");
        for (id, name, token) in lines {
            let base = variable(&name);
            let n = taken.entry(base.clone()).or_default();
            *n += 1;
            let var = if *n == 1 { base } else { format!("{base}_{n}") };
            text.push_str(&format!("# {id}\n{var}={token}\n"));
        }
        write_private(&self.path, text.as_bytes())
    }
}

/// `GHL_PIT_` and the name in capitals, every other character `_`: a name a
/// shell accepts.
fn variable(name: &str) -> String {
    let mut out = String::from("GHL_PIT");
    let mut last_underscore = true;
    out.push('_');
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
            last_underscore = false;
        } else if !last_underscore {
            out.push('_');
            last_underscore = true;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Writes `bytes` to `path` readable by its owner only, through a temporary
/// file beside it, fsync'd and renamed over the old one.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_names_become_shell_variables() {
        assert_eq!(variable("Sandbox PIT"), "GHL_PIT_SANDBOX_PIT");
        assert_eq!(variable("  my-app: v2!  "), "GHL_PIT_MY_APP_V2");
        assert_eq!(variable("é"), "GHL_PIT");
    }
}
