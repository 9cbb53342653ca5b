//! Channel keys in memory, unwrapped once with the root key; data keys
//! created, wrapped and unwrapped on demand.
//!
//! Several `serve` processes share one database: a channel key version this
//! process has not seen (another process rotated) is loaded on first use.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use uuid::Uuid;

use super::VaultError;
use crate::{
    crypto::{self, SecretKey},
    store::{self, keys::WrappedChannelKey, keys::WrappedDataKey, Db},
};

#[derive(Default)]
struct DomainKeys {
    current: u32,
    versions: HashMap<u32, Arc<SecretKey>>,
}

/// The root key and the unwrapped channel keys. Debug prints no key.
pub struct Keyring {
    root: SecretKey,
    domains: RwLock<HashMap<String, DomainKeys>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

fn now_micros() -> store::Micros {
    store::to_micros(time::OffsetDateTime::now_utc())
}

impl Keyring {
    /// Opens the keyring: creates version 1 of every domain that has no key
    /// yet, then unwraps every stored version (failing loudly on a wrong root key).
    pub async fn open<'a>(
        db: &Db,
        root: SecretKey,
        domains: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, VaultError> {
        let ring = Keyring {
            root,
            domains: RwLock::new(HashMap::new()),
        };
        let stored = store::keys::channel_keys(db).await?;
        for domain in domains {
            if !stored.iter().any(|k| k.channel == domain) {
                ring.insert_version(db, domain, 1).await?;
            }
        }
        ring.reload(db).await?;
        Ok(ring)
    }

    /// The root key, for deriving the blind-index keys.
    pub fn root(&self) -> &SecretKey {
        &self.root
    }

    async fn insert_version(
        &self,
        db: &Db,
        domain: &str,
        version: u32,
    ) -> Result<bool, VaultError> {
        let key = SecretKey::generate()?;
        let wrapped = crypto::wrap_channel_key(&self.root, domain, version, &key)?;
        let row = WrappedChannelKey {
            channel: domain.to_owned(),
            version,
            wrapped,
            created_at: now_micros(),
        };
        Ok(store::keys::insert_channel_key(db, &row).await?)
    }

    /// Reloads every channel key version from the database.
    pub async fn reload(&self, db: &Db) -> Result<(), VaultError> {
        let stored = store::keys::channel_keys(db).await?;
        let mut fresh: HashMap<String, DomainKeys> = HashMap::new();
        for k in stored {
            let key = crypto::unwrap_channel_key(&self.root, &k.channel, k.version, &k.wrapped)
                .map_err(|_| VaultError::WrongRootKey {
                    domain: k.channel.clone(),
                    version: k.version,
                })?;
            let entry = fresh.entry(k.channel).or_default();
            entry.current = entry.current.max(k.version);
            entry.versions.insert(k.version, Arc::new(key));
        }
        if let Ok(mut guard) = self.domains.write() {
            *guard = fresh;
        }
        Ok(())
    }

    fn cached(&self, domain: &str, version: Option<u32>) -> Option<(u32, Arc<SecretKey>)> {
        let guard = self.domains.read().ok()?;
        let d = guard.get(domain)?;
        let v = version.unwrap_or(d.current);
        d.versions.get(&v).map(|k| (v, Arc::clone(k)))
    }

    /// A channel key by version, loading it if another process created it.
    async fn channel_key(
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

    /// The current version of a domain's channel key, creating version 1 for
    /// a domain that has none (a channel added to the policy later).
    async fn current_key(
        &self,
        db: &Db,
        domain: &str,
    ) -> Result<(u32, Arc<SecretKey>), VaultError> {
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

    /// A fresh data key for (customer, domain), wrapped under the current channel key.
    pub async fn new_data_key(
        &self,
        db: &Db,
        customer_id: Uuid,
        domain: &str,
    ) -> Result<(SecretKey, WrappedDataKey), VaultError> {
        let (version, channel_key) = self.current_key(db, domain).await?;
        let key = SecretKey::generate()?;
        let wrapped = crypto::wrap_data_key(&channel_key, customer_id, domain, version, &key)?;
        Ok((
            key,
            WrappedDataKey {
                channel: domain.to_owned(),
                key_version: version,
                wrapped,
            },
        ))
    }

    /// Unwraps a stored data key of `customer_id`.
    pub async fn open_data_key(
        &self,
        db: &Db,
        customer_id: Uuid,
        w: &WrappedDataKey,
    ) -> Result<SecretKey, VaultError> {
        let channel_key = self.channel_key(db, &w.channel, w.key_version).await?;
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
        let (key, wrapped) = self.new_data_key(db, customer_id, domain).await?;
        if store::keys::insert_data_key(db, customer_id, &wrapped, now_micros()).await? {
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
