//! OAuth codes, refresh tokens and the signing key on the shared store: a
//! code minted on one replica is exchanged on another, once; a refresh token
//! used on one is refused on every other; every replica signs and verifies
//! with one key.

use redis::Script;

use super::{bad_data, down, Store};
use crate::auth::oauth::{Grant, Grants, RefreshUse};
use crate::state::StateError;

/// Codes live 10 minutes on HighLevel; Redis forgets them a little later
/// (the expiry itself is checked on the mock's clock).
const CODE_TTL_MS: i64 = 15 * 60 * 1000;
/// Refresh tokens live a year on HighLevel.
const REFRESH_TTL_MS: i64 = 366 * 86_400_000;

pub struct SharedGrants {
    store: std::sync::Arc<Store>,
    use_refresh: Script,
}

impl SharedGrants {
    pub fn new(store: std::sync::Arc<Store>) -> Self {
        Self { store, use_refresh: Script::new(USE_REFRESH) }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredCode {
    grant: Grant,
    expires_at_ms: i64,
}

#[async_trait::async_trait]
impl Grants for SharedGrants {
    async fn put_code(&self, code: String, grant: Grant, expires_at_ms: i64) -> Result<(), StateError> {
        let s = &self.store;
        let json =
            serde_json::to_string(&StoredCode { grant, expires_at_ms }).map_err(|e| StateError(e.to_string()))?;
        redis::cmd("SET")
            .arg(s.key(&format!("code:{code}")))
            .arg(json)
            .arg("PX")
            .arg(CODE_TTL_MS)
            .query_async::<()>(&mut s.conn())
            .await
            .map_err(down)
    }

    async fn take_code(&self, code: &str) -> Result<Option<(Grant, i64)>, StateError> {
        let s = &self.store;
        let json: Option<String> =
            redis::cmd("GETDEL").arg(s.key(&format!("code:{code}"))).query_async(&mut s.conn()).await.map_err(down)?;
        match json {
            None => Ok(None),
            Some(json) => {
                let stored: StoredCode = serde_json::from_str(&json).map_err(|e| bad_data("code", e))?;
                Ok(Some((stored.grant, stored.expires_at_ms)))
            }
        }
    }

    async fn put_refresh(&self, jti: String, grant: Grant) -> Result<(), StateError> {
        let s = &self.store;
        let json = serde_json::to_string(&grant).map_err(|e| StateError(e.to_string()))?;
        let key = s.key(&format!("refresh:{jti}"));
        redis::pipe()
            .cmd("HSET")
            .arg(&key)
            .arg("grant")
            .arg(json)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(REFRESH_TTL_MS)
            .ignore()
            .query_async::<()>(&mut s.conn())
            .await
            .map_err(down)
    }

    async fn use_refresh(&self, jti: &str) -> Result<RefreshUse, StateError> {
        let s = &self.store;
        let (state, json): (String, Option<String>) =
            self.use_refresh.key(s.key(&format!("refresh:{jti}"))).invoke_async(&mut s.conn()).await.map_err(down)?;
        Ok(match (state.as_str(), json) {
            ("fresh", Some(json)) => RefreshUse::Fresh(serde_json::from_str(&json).map_err(|e| bad_data("grant", e))?),
            ("used", _) => RefreshUse::Used,
            _ => RefreshUse::Unknown,
        })
    }

    async fn is_refresh(&self, jti: &str) -> Result<bool, StateError> {
        let s = &self.store;
        let n: i64 = redis::cmd("EXISTS")
            .arg(s.key(&format!("refresh:{jti}")))
            .query_async(&mut s.conn())
            .await
            .map_err(down)?;
        Ok(n == 1)
    }

    async fn signing_key(
        &self,
        make: &(dyn Fn() -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<Vec<u8>, StateError> {
        self.store.set_once("jwt-key", make).await
    }

    async fn clear(&self) -> Result<(), StateError> {
        self.store.delete_matching("code:*").await?;
        self.store.delete_matching("refresh:*").await
    }
}

/// KEYS: the refresh token's hash. Answers {'fresh', grant} the first time,
/// {'used', nil} after, {'unknown', nil} for no such token.
const USE_REFRESH: &str = r#"
local grant = redis.call('HGET', KEYS[1], 'grant')
if not grant then return {'unknown', false} end
if redis.call('HSETNX', KEYS[1], 'used', '1') == 1 then return {'fresh', grant} end
return {'used', false}
"#;
