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
//! ago) makes the process refresh at once before its token is refused
//! (requests waiting together share one refresh); only a token signed by
//! the vault's own issuer key gets this far, and a refresh whose counter
//! has not moved is one read of one row.

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
    /// Changes this process made (each after its commit), kept until a
    /// refresh that began after them has been applied: one that began
    /// before may have read the database without them, and must not undo
    /// a revocation this process already honours.
    local: Vec<(Instant, Local)>,
}

/// A change this process made to its own snapshot.
#[derive(Clone)]
enum Local {
    Added(Uuid),
    Revoked(Uuid),
    Token(String),
}

impl Snapshot {
    fn apply(&mut self, change: &Local) {
        match change {
            Local::Added(id) => {
                self.clients.entry(*id).or_insert(false);
            }
            Local::Revoked(id) => {
                self.clients.insert(*id, true);
            }
            Local::Token(jti) => {
                self.tokens.insert(jti.clone());
            }
        }
    }
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
        self.refresh_locked().await
    }

    async fn refresh_locked(&self) -> Result<(), StoreError> {
        let began = Instant::now();
        let version = store::clients::version(&self.db).await?;
        if self.read().version == Some(version) {
            self.write().taken_at = Some(began);
            return Ok(());
        }
        let now = store::to_micros(self.clock.now());
        let (clients, tokens) = store::clients::revocations(&self.db, now).await?;
        self.replace(began, version, clients, tokens);
        Ok(())
    }

    /// Puts in what a refresh that `began` then read, with this process's
    /// own changes since then laid over it.
    fn replace(
        &self,
        began: Instant,
        version: i64,
        clients: Vec<(Uuid, bool)>,
        tokens: Vec<String>,
    ) {
        let mut s = self.write();
        s.version = Some(version);
        s.clients = clients.into_iter().collect();
        s.tokens = tokens.into_iter().collect();
        s.taken_at = Some(began);
        s.local.retain(|(at, _)| *at >= began);
        let local = std::mem::take(&mut s.local);
        for (_, change) in &local {
            s.apply(change);
        }
        s.local = local;
    }

    /// Applies a change this process made, and keeps it until a refresh
    /// has read the database after it.
    fn made(&self, change: Local) {
        let mut s = self.write();
        s.apply(&change);
        s.local.push((Instant::now(), change));
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
        let asked = Instant::now();
        let Ok(id) = Uuid::parse_str(client) else {
            return Err(Refusal::Client);
        };
        match self.decide(id, jti) {
            Err(Some(r)) => Err(r),
            Ok(()) => Ok(()),
            Err(None) => {
                self.refresh_for_unknown(asked).await;
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

    /// Refreshes once for a request `asked` at that instant, unless a
    /// refresh began since (requests waiting together share one).
    async fn refresh_for_unknown(&self, asked: Instant) {
        let _one = self.refreshing.lock().await;
        if self.read().taken_at.is_some_and(|t| t >= asked) {
            return;
        }
        if let Err(e) = self.refresh_locked().await {
            tracing::debug!(error = %e, "refresh for an unknown client failed");
        }
    }

    /// A client added by this process: its tokens pass at once.
    pub fn client_added(&self, id: Uuid) {
        self.made(Local::Added(id));
    }

    /// A client revoked by this process: its tokens are refused at once.
    pub fn client_revoked(&self, id: Uuid) {
        self.made(Local::Revoked(id));
    }

    /// A token revoked by this process: refused at once.
    pub fn token_revoked(&self, jti: &str) {
        self.made(Local::Token(jti.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::clients::ClientRow;

    async fn vault() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        (dir, db)
    }

    async fn add_client(db: &Db) -> Uuid {
        let id = Uuid::now_v7();
        let row = ClientRow {
            id,
            name: "t".into(),
            role: "agent".into(),
            purposes: "support".into(),
            channel: None,
            token_ttl_secs: 900,
            secret_phc: "$argon2id$x".into(),
            previous_secret_phc: None,
            previous_valid_until: None,
            created_at: 0,
            secret_rotated_at: None,
            revoked_at: None,
        };
        store::clients::insert(db, &row).await.unwrap();
        id
    }

    #[tokio::test]
    async fn revoked_clients_and_tokens_are_refused_and_a_stale_view_refuses_everything() {
        let (_dir, db) = vault().await;
        let live = add_client(&db).await;
        let r = Revocations::new(db.clone(), Clock::system());
        r.refresh().await.unwrap();
        let live_s = live.to_string();
        assert_eq!(r.check(&live_s, Some("j1")).await, Ok(()));
        // A token without a jti was not made by the vault.
        assert_eq!(r.check(&live_s, None).await, Err(Refusal::Token));
        // Not a client id, or one the vault does not know.
        assert_eq!(r.check("nope", Some("j1")).await, Err(Refusal::Client));
        let unknown = Uuid::now_v7().to_string();
        assert_eq!(r.check(&unknown, Some("j1")).await, Err(Refusal::Client));

        // A client added elsewhere is found by the refresh its token forces.
        let other = add_client(&db).await.to_string();
        assert_eq!(r.check(&other, Some("j2")).await, Ok(()));

        // Revoked here: refused at once.
        r.token_revoked("j1");
        assert_eq!(r.check(&live_s, Some("j1")).await, Err(Refusal::Token));
        assert_eq!(r.check(&live_s, Some("j3")).await, Ok(()));

        // Revoked in the database (another process): refused after a refresh.
        store::clients::revoke(&db, live, 1).await.unwrap();
        r.refresh().await.unwrap();
        assert_eq!(r.check(&live_s, Some("j3")).await, Err(Refusal::Client));
        assert_eq!(r.check(&other, Some("j2")).await, Ok(()));

        // A refresh that began before this process revoked a client or a
        // token, and read the database without them, does not undo either.
        let third = add_client(&db).await;
        let third_s = third.to_string();
        r.refresh().await.unwrap();
        let began = Instant::now();
        let version = store::clients::version(&db).await.unwrap();
        let (clients, tokens) = store::clients::revocations(&db, 0).await.unwrap();
        store::clients::revoke(&db, third, 2).await.unwrap();
        r.client_revoked(third);
        r.token_revoked("j2");
        r.replace(began, version, clients, tokens);
        assert_eq!(r.check(&third_s, Some("j4")).await, Err(Refusal::Client));
        assert_eq!(r.check(&other, Some("j2")).await, Err(Refusal::Token));
        // One that began after them holds them from the database.
        r.refresh().await.unwrap();
        assert!(r.read().local.is_empty());
        assert_eq!(r.check(&third_s, Some("j4")).await, Err(Refusal::Client));

        // Nobody refreshed for longer than the bound: every client token is refused.
        r.write().taken_at = Instant::now().checked_sub(STALE_AFTER);
        assert_eq!(r.check(&other, Some("j5")).await, Err(Refusal::Stale));
    }
}
