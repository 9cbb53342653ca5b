//! Channel keys in memory, unwrapped with the root key; data keys created,
//! wrapped and unwrapped on demand.
//!
//! Several processes share one database, and `arkku keys rotate` changes it
//! while they run (SECURITY.md "Key rotation"; docs/decisions.md, "Key rotation"):
//!
//! - a channel-key version this process has not seen is loaded on first use;
//! - before choosing the version of a new data key, the versions are re-read
//!   when the cache is older than the refresh interval, so a rotation's new
//!   version is used everywhere within that interval (the rotation waits
//!   longer than that before it retires the old version);
//! - a data key rewrapped, and its old version retired, while a request was
//!   reading it is read again;
//! - a new data key wrapped under a version retired meanwhile (the database
//!   refuses it) is wrapped again under the current version;
//! - when the stored channel keys no longer open with the root key in memory
//!   (a root rotation), the root key file is read again, and `<file>.new`
//!   should the rotation not have renamed it yet.
//!
//! About 500 lines: the keyring's cache, refresh and unwrap paths share one
//! lock discipline, which reads best in one place.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::{root_file, VaultError, INDEX_DOMAIN};
use crate::{
    crypto::{self, derive_index_prk, SecretKey},
    store::{
        self,
        keys::{WrappedChannelKey, WrappedDataKey},
        Db, StoreError,
    },
};

/// The unwrapped versions of one key domain.
#[derive(Default)]
struct DomainKeys {
    current: u32,
    versions: HashMap<u32, Arc<SecretKey>>,
}

/// What one load of `channel_keys` gave.
#[derive(Default)]
struct Loaded {
    domains: HashMap<String, DomainKeys>,
    /// The stored wrapping of the `_index` key under the root key in memory.
    /// A new channel key is inserted only while the database still holds
    /// these bytes, which proves that this process's root key is current.
    root_check: Option<Vec<u8>>,
}

/// The root key and where it came from, so it can be read again after a
/// root rotation.
pub struct RootKey {
    pub key: SecretKey,
    /// The root key file; `None` for a key that lives only in memory (tests).
    pub file: Option<PathBuf>,
}

/// The root key and the unwrapped channel keys. Debug prints no key.
pub struct Keyring {
    root: RwLock<Arc<SecretKey>>,
    root_file: Option<PathBuf>,
    loaded: RwLock<Loaded>,
    /// When the last load (or failed refresh) started.
    loaded_at: Mutex<Instant>,
    refresh: Duration,
    /// One load at a time; waiters then find the cache fresh.
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

fn now_micros() -> store::Micros {
    store::to_micros(time::OffsetDateTime::now_utc())
}

/// Unwraps every stored channel key with `root`; the first key that does not
/// open names itself in the error.
fn unwrap_all(root: &SecretKey, stored: &[WrappedChannelKey]) -> Result<Loaded, VaultError> {
    let mut loaded = Loaded::default();
    for k in stored {
        let key =
            crypto::unwrap_channel_key(root, &k.channel, k.version, &k.wrapped).map_err(|_| {
                VaultError::WrongRootKey {
                    domain: k.channel.clone(),
                    version: k.version,
                }
            })?;
        if k.channel == INDEX_DOMAIN && k.version == 1 {
            loaded.root_check = Some(k.wrapped.clone());
        }
        let entry = loaded.domains.entry(k.channel.clone()).or_default();
        entry.current = entry.current.max(k.version);
        entry.versions.insert(k.version, Arc::new(key));
    }
    Ok(loaded)
}

impl Keyring {
    /// Opens the keyring: checks that the root key opens the stored channel
    /// keys (completing an interrupted root rotation if only `<file>.new`
    /// does), creates the `_index` key from the root key if the database has
    /// none, creates version 1 of every domain that has no key yet, and
    /// unwraps every stored version. `refresh` bounds how long a new
    /// channel-key version goes unnoticed.
    pub async fn open<'a>(
        db: &Db,
        root: RootKey,
        domains: impl IntoIterator<Item = &'a str>,
        refresh: Duration,
    ) -> Result<Self, VaultError> {
        let stored = store::keys::channel_keys(db).await?;
        let key = if stored.is_empty() {
            root.key
        } else {
            Self::verified_root(root.key, root.file.as_deref(), &stored)?
        };
        let ring = Keyring {
            root: RwLock::new(Arc::new(key)),
            root_file: root.file,
            loaded: RwLock::new(Loaded::default()),
            loaded_at: Mutex::new(Instant::now()),
            refresh,
            reloading: tokio::sync::Mutex::new(()),
        };
        if !stored.iter().any(|k| k.channel == INDEX_DOMAIN) {
            // Only now, with the root key checked: an `_index` key from a
            // wrong root would lock the right one out for good.
            let prk = derive_index_prk(&ring.root_key());
            let wrapped = crypto::wrap_channel_key(&ring.root_key(), INDEX_DOMAIN, 1, &prk)?;
            store::keys::insert_channel_key(
                db,
                &WrappedChannelKey {
                    channel: INDEX_DOMAIN.to_owned(),
                    version: 1,
                    wrapped,
                    created_at: now_micros(),
                },
            )
            .await?;
        }
        ring.reload(db).await?;
        for domain in domains {
            if ring.cached(domain, None).is_none() {
                ring.insert_version(db, domain, 1).await?;
            }
        }
        ring.reload(db).await?;
        Ok(ring)
    }

    /// `root` if it opens the stored keys; else the key in `<file>.new` if
    /// that does, after renaming it over the key file (a root rotation died
    /// between its commit and its rename).
    fn verified_root(
        root: SecretKey,
        file: Option<&std::path::Path>,
        stored: &[WrappedChannelKey],
    ) -> Result<SecretKey, VaultError> {
        let wrong = match unwrap_all(&root, stored) {
            Ok(_) => return Ok(root),
            Err(e) => e,
        };
        let Some(file) = file else { return Err(wrong) };
        let Some(pending) = root_file::load_pending(file)? else {
            return Err(wrong);
        };
        if unwrap_all(&pending, stored).is_err() {
            return Err(wrong);
        }
        root_file::complete_pending(file)?;
        tracing::warn!(
            path = %file.display(),
            "completed an interrupted root key rotation: the channel keys are wrapped under the key in {}.new, \
             which now replaces {}. Destroy every copy of the old root key.",
            file.display(),
            file.display()
        );
        Ok(pending)
    }

    /// The root key in memory.
    pub(crate) fn root_key(&self) -> Arc<SecretKey> {
        match self.root.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the root key in memory (after a root rotation by this process).
    pub(crate) fn set_root_key(&self, key: SecretKey) {
        match self.root.write() {
            Ok(mut guard) => *guard = Arc::new(key),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(key),
        }
    }

    /// The root key file this keyring was opened with.
    pub fn root_file(&self) -> Option<&std::path::Path> {
        self.root_file.as_deref()
    }

    /// The blind-index PRK (the `_index` key), from which
    /// [`crate::crypto::BlindIndex::from_prk`] derives the per-channel keys.
    pub fn index_prk(&self) -> Result<Arc<SecretKey>, VaultError> {
        self.cached(INDEX_DOMAIN, Some(1))
            .map(|(_, k)| k)
            .ok_or_else(|| VaultError::MissingChannelKey {
                domain: INDEX_DOMAIN.to_owned(),
                version: 1,
            })
    }

    /// Every key domain with its current version and all stored versions.
    pub fn versions(&self) -> Vec<(String, u32, Vec<u32>)> {
        let Ok(guard) = self.loaded.read() else {
            return Vec::new();
        };
        let mut out: Vec<(String, u32, Vec<u32>)> = guard
            .domains
            .iter()
            .map(|(name, d)| {
                let mut v: Vec<u32> = d.versions.keys().copied().collect();
                v.sort_unstable();
                (name.clone(), d.current, v)
            })
            .collect();
        out.sort();
        out
    }

    /// Inserts a new channel-key version, wrapped under the root key, only
    /// while this process's root key is current (see [`Loaded::root_check`]).
    /// Returns whether it was inserted (false: the version exists, or the
    /// root key changed; the caller reloads).
    async fn insert_version(
        &self,
        db: &Db,
        domain: &str,
        version: u32,
    ) -> Result<bool, VaultError> {
        let check = self
            .loaded
            .read()
            .ok()
            .and_then(|l| l.root_check.clone())
            .ok_or_else(|| VaultError::MissingChannelKey {
                domain: INDEX_DOMAIN.to_owned(),
                version: 1,
            })?;
        let key = SecretKey::generate()?;
        let wrapped = crypto::wrap_channel_key(&self.root_key(), domain, version, &key)?;
        let row = WrappedChannelKey {
            channel: domain.to_owned(),
            version,
            wrapped,
            created_at: now_micros(),
        };
        Ok(store::keys::insert_channel_key_checked(db, &row, INDEX_DOMAIN, &check).await?)
    }

    /// Adds the next version of `domain` (for a channel rotation) and loads
    /// it. Returns the new version number.
    pub(crate) async fn add_version(&self, db: &Db, domain: &str) -> Result<u32, VaultError> {
        // Twice at most: a first miss may mean the root key changed (the
        // reload picks the new one up) or another rotation took the number.
        for _ in 0..2 {
            self.reload(db).await?;
            let next = self
                .cached(domain, None)
                .map(|(v, _)| v.saturating_add(1))
                .unwrap_or(1);
            if self.insert_version(db, domain, next).await? {
                self.reload(db).await?;
                return Ok(next);
            }
        }
        Err(VaultError::ConcurrentChange(format!(
            "could not add a channel key version of {domain}: another rotation of it, or of the root key, is running"
        )))
    }

    /// Reloads every channel key version from the database (and the root key
    /// from its file, when the stored keys no longer open with the one in memory).
    pub async fn reload(&self, db: &Db) -> Result<(), VaultError> {
        let _one_at_a_time = self.reloading.lock().await;
        self.reload_locked(db).await
    }

    async fn reload_locked(&self, db: &Db) -> Result<(), VaultError> {
        let started = Instant::now();
        let stored = store::keys::channel_keys(db).await?;
        let loaded = match unwrap_all(&self.root_key(), &stored) {
            Ok(loaded) => loaded,
            Err(wrong) => self.reread_root(&stored).ok_or(wrong)?,
        };
        if let Ok(mut guard) = self.loaded.write() {
            *guard = loaded;
        }
        if let Ok(mut at) = self.loaded_at.lock() {
            *at = started;
        }
        Ok(())
    }

    /// After a root rotation by another process: the key file, or
    /// `<file>.new` before the rotation renamed it, if it opens every stored
    /// key. Never renames anything (that is the rotating process's job, or
    /// the next start's).
    fn reread_root(&self, stored: &[WrappedChannelKey]) -> Option<Loaded> {
        let file = self.root_file.as_deref()?;
        let candidates = [
            crypto::load_key_file(file).ok(),
            root_file::load_pending(file).ok().flatten(),
        ];
        for key in candidates.into_iter().flatten() {
            if let Ok(loaded) = unwrap_all(&key, stored) {
                tracing::warn!(path = %file.display(), "the root key was rotated; using the new root key");
                self.set_root_key(key);
                return Some(loaded);
            }
        }
        None
    }

    /// Reloads when the cache is older than the refresh interval. A failed
    /// reload is logged and the cached keys stay in use (they are still
    /// correct; only a newer version may be missing, and the database refuses
    /// a data key under a retired one). It counts as an attempt, so while the
    /// database is down the requests queued behind it do not each wait for
    /// their own failed reload.
    async fn refresh_if_stale(&self, db: &Db) {
        if !self.is_stale() {
            return;
        }
        let _one_at_a_time = self.reloading.lock().await;
        if !self.is_stale() {
            return; // another request reloaded while this one waited
        }
        let started = Instant::now();
        if let Err(e) = self.reload_locked(db).await {
            tracing::warn!(error = %e, "could not refresh the channel keys; using the cached ones");
            if let Ok(mut at) = self.loaded_at.lock() {
                *at = started;
            }
        }
    }

    fn is_stale(&self) -> bool {
        self.loaded_at
            .lock()
            .map(|at| at.elapsed() >= self.refresh)
            .unwrap_or(true)
    }

    fn cached(&self, domain: &str, version: Option<u32>) -> Option<(u32, Arc<SecretKey>)> {
        let guard = self.loaded.read().ok()?;
        let d = guard.domains.get(domain)?;
        let v = version.unwrap_or(d.current);
        d.versions.get(&v).map(|k| (v, Arc::clone(k)))
    }

    /// A channel key by version, loading it if another process created it.
    pub(crate) async fn channel_key(
        &self,
        db: &Db,
        domain: &str,
        version: u32,
    ) -> Result<Arc<SecretKey>, VaultError> {
        if let Some((_, k)) = self.cached(domain, Some(version)) {
            return Ok(k);
        }
        self.reload(db).await?;
        self.cached(domain, Some(version))
            .map(|(_, k)| k)
            .ok_or_else(|| VaultError::MissingChannelKey {
                domain: domain.to_owned(),
                version,
            })
    }

    /// The current version of a domain's channel key (re-read if the cache is
    /// stale), creating version 1 for a domain that has none (a channel added
    /// to the policy later).
    async fn current_key(
        &self,
        db: &Db,
        domain: &str,
    ) -> Result<(u32, Arc<SecretKey>), VaultError> {
        self.refresh_if_stale(db).await;
        if let Some(k) = self.cached(domain, None) {
            return Ok(k);
        }
        self.insert_version(db, domain, 1).await?;
        self.reload(db).await?;
        self.cached(domain, None)
            .ok_or_else(|| VaultError::MissingChannelKey {
                domain: domain.to_owned(),
                version: 1,
            })
    }

    /// Wraps an existing data key for (customer, domain) under the current
    /// channel key.
    pub async fn wrap_data_key(
        &self,
        db: &Db,
        customer_id: Uuid,
        domain: &str,
        key: &SecretKey,
    ) -> Result<WrappedDataKey, VaultError> {
        let (version, channel_key) = self.current_key(db, domain).await?;
        let wrapped = crypto::wrap_data_key(&channel_key, customer_id, domain, version, key)?;
        Ok(WrappedDataKey {
            channel: domain.to_owned(),
            key_version: version,
            wrapped,
        })
    }

    /// A fresh data key for (customer, domain), wrapped under the current channel key.
    pub async fn new_data_key(
        &self,
        db: &Db,
        customer_id: Uuid,
        domain: &str,
    ) -> Result<(SecretKey, WrappedDataKey), VaultError> {
        let key = SecretKey::generate()?;
        let wrapped = self.wrap_data_key(db, customer_id, domain, &key).await?;
        Ok((key, wrapped))
    }

    /// Unwraps a stored data key of `customer_id`. If its channel-key version
    /// is gone, a rotation rewrapped the key and retired that version after
    /// the caller read it: the key is read again and opened at its new version.
    pub async fn open_data_key(
        &self,
        db: &Db,
        customer_id: Uuid,
        w: &WrappedDataKey,
    ) -> Result<SecretKey, VaultError> {
        let channel_key = match self.channel_key(db, &w.channel, w.key_version).await {
            Ok(k) => k,
            Err(missing @ VaultError::MissingChannelKey { .. }) => {
                match store::keys::data_key(db, customer_id, &w.channel).await? {
                    Some(fresh) if fresh.key_version != w.key_version => {
                        let k = self
                            .channel_key(db, &fresh.channel, fresh.key_version)
                            .await?;
                        return Ok(crypto::unwrap_data_key(
                            &k,
                            customer_id,
                            &fresh.channel,
                            fresh.key_version,
                            &fresh.wrapped,
                        )?);
                    }
                    _ => return Err(missing),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(crypto::unwrap_data_key(
            &channel_key,
            customer_id,
            &w.channel,
            w.key_version,
            &w.wrapped,
        )?)
    }

    /// The data key of (customer, domain) for writing: the stored one, or a new
    /// one stored now (a concurrent writer's key wins; both end up using it).
    pub async fn data_key_for_write(
        &self,
        db: &Db,
        customer_id: Uuid,
        domain: &str,
    ) -> Result<SecretKey, VaultError> {
        if let Some(w) = store::keys::data_key(db, customer_id, domain).await? {
            return self.open_data_key(db, customer_id, &w).await;
        }
        let (key, mut wrapped) = self.new_data_key(db, customer_id, domain).await?;
        let inserted =
            match store::keys::insert_data_key(db, customer_id, &wrapped, now_micros()).await {
                Err(StoreError::RetiredKeyVersion) => {
                    // A rotation retired the version between our choice and the insert.
                    self.reload(db).await?;
                    wrapped = self.wrap_data_key(db, customer_id, domain, &key).await?;
                    store::keys::insert_data_key(db, customer_id, &wrapped, now_micros()).await?
                }
                other => other?,
            };
        if inserted {
            return Ok(key);
        }
        match store::keys::data_key(db, customer_id, domain).await? {
            Some(w) => self.open_data_key(db, customer_id, &w).await,
            None => Err(VaultError::MissingChannelKey {
                domain: domain.to_owned(),
                version: wrapped.key_version,
            }),
        }
    }
}
