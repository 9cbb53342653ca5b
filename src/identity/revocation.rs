//! What refuses an integration client's token: its client revoked (or not
//! known at all), or the token itself revoked (RFC 7009). Checked on every
//! request without a query, from a snapshot each `serve` process keeps in
//! memory.
//!
//! The snapshot is refreshed by a background task every [`REFRESH_EVERY`]:
//! one read of the change counter (`client_changes`), and a reload of the
//! client ids and revoked token ids only when it moved. The process that
//! revokes applies the change to its own snapshot at once; every other
//! process sees it at its next refresh, well within two seconds.
//!
//! Fail closed: when the snapshot has not been refreshed for [`STALE_AFTER`]
//! (the database unreachable, say), client tokens are refused with 401 until
//! a refresh succeeds, because the vault could no longer promise that a
//! revocation is honoured within two seconds. Tokens without a `client`
//! claim (`arkku token`'s) do not depend on it.
//!
//! A client the snapshot does not know yet (added on another node a moment
//! ago) makes the process refresh at once, at most every
//! [`FORCED_REFRESH_GAP`], before its token is refused; only a token signed
//! by the vault's own issuer key gets this far.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

use tokio::time::Instant;
use uuid::Uuid;

use crate::{
    clock::Clock,
    store::{self, Db, StoreError},
};

/// How often the snapshot is refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);
/// How old the snapshot may grow before client tokens are refused.
pub const STALE_AFTER: Duration = Duration::from_secs(2);
/// The least time between two refreshes forced by an unknown client.
pub const FORCED_REFRESH_GAP: Duration = Duration::from_millis(200);

/// Why a client token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client is revoked, or the vault knows no such client.
    Client,
    /// This token was revoked.
    Token,
    /// The snapshot is too old to vouch for anything.
    Stale,
}

#[derive(Default)]
struct Snapshot {
    /// The change counter the data was read after; `None` before the first load.
    version: Option<i64>,
    /// Client id → revoked.
    clients: HashMap<Uuid, bool>,
    /// Revoked token ids that have not expired.
    tokens: HashSet<String>,
    /// When the read that the data is at least as new as began.
    taken_at: Option<Instant>,
}

/// The revocation snapshot of one process.
pub struct Revocations {
    db: Db,
    clock: Clock,
    snapshot: RwLock<Snapshot>,
    /// Held while a refresh runs, so that concurrent ones queue.
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.read();
        f.debug_struct("Revocations")
            .field("version", &s.version)
            .field("clients", &s.clients.len())
            .field("tokens", &s.tokens.len())
            .finish()
    }
}

impl Revocations {
    /// An empty snapshot; [`Revocations::refresh`] loads it.
    pub fn new(db: Db, clock: Clock) -> Arc<Self> {
        Arc::new(Revocations {
            db,
            clock,
            snapshot: RwLock::new(Snapshot::default()),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        self.snapshot.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the snapshot up to date with the database: the counter, and
    /// the data when the counter moved.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let _one = self.refreshing.lock().await;
        let began = Instant::now();
        let version = store::clients::version(&self.db).await?;
        if self.read().version == Some(version) {
            self.write().taken_at = Some(began);
            return Ok(());
        }
        let now = store::to_micros(self.clock.now());
        let (clients, tokens) = store::clients::revocations(&self.db, now).await?;
        let mut s = self.write();
        s.version = Some(version);
        s.clients = clients.into_iter().collect();
        s.tokens = tokens.into_iter().collect();
        s.taken_at = Some(began);
        Ok(())
    }

    /// Refreshes every [`REFRESH_EVERY`] until the snapshot is dropped. A
    /// failure is logged once when it starts and once when it ends.
    pub fn spawn_refresher(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                let Some(this) = weak.upgrade() else { return };
                match this.refresh().await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("client revocations refresh again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(
                            error = %e,
                            "refreshing client revocations failed; client tokens are refused \
                             once the last refresh is {STALE_AFTER:?} old"
                        );
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// Whether a token of `client` with id `jti` may pass.
    pub async fn check(&self, client: &str, jti: Option<&str>) -> Result<(), Refusal> {
        let Ok(id) = Uuid::parse_str(client) else {
            return Err(Refusal::Client);
        };
        match self.decide(id, jti) {
            Err(Some(r)) => Err(r),
            Ok(()) => Ok(()),
            Err(None) => {
                self.refresh_for_unknown().await;
                self.decide(id, jti)
                    .map_err(|r| r.unwrap_or(Refusal::Client))
            }
        }
    }

    /// The decision from the snapshot; `Err(None)` for a client it does not know.
    fn decide(&self, id: Uuid, jti: Option<&str>) -> Result<(), Option<Refusal>> {
        let s = self.read();
        let fresh = s.taken_at.is_some_and(|t| t.elapsed() < STALE_AFTER);
        if !fresh {
            return Err(Some(Refusal::Stale));
        }
        match s.clients.get(&id) {
            None => Err(None),
            Some(true) => Err(Some(Refusal::Client)),
            Some(false) => match jti {
                Some(j) if !s.tokens.contains(j) => Ok(()),
                // Every token of /oauth/token has a jti; one without was not made here.
                _ => Err(Some(Refusal::Token)),
            },
        }
    }

    async fn refresh_for_unknown(&self) {
        let recent = self
            .read()
            .taken_at
            .is_some_and(|t| t.elapsed() < FORCED_REFRESH_GAP);
        if recent {
            return;
        }
        if let Err(e) = self.refresh().await {
            tracing::debug!(error = %e, "refresh for an unknown client failed");
        }
    }

    /// A client added by this process: its tokens pass at once.
    pub fn client_added(&self, id: Uuid) {
        self.write().clients.insert(id, false);
    }

    /// A client revoked by this process: its tokens are refused at once.
    pub fn client_revoked(&self, id: Uuid) {
        self.write().clients.insert(id, true);
    }

    /// A token revoked by this process: refused at once.
    pub fn token_revoked(&self, jti: &str) {
        self.write().tokens.insert(jti.to_owned());
    }
}
