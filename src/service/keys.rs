//! Key management on the vault host: `arkku keys init | status | rotate`.
//!
//! There is no HTTP route for keys. These operations run as the
//! [`Operator`], who holds the key files (see [`super::operator`]). A
//! rotation is audited as `key.rotate` under the operator's name: one entry
//! before anything changes and one with the outcome, sharing a request id
//! ([`crate::vault::rotation`] writes both, so a rotation started from
//! anywhere is audited the same). `init` and `status` change no key in use
//! and read no customer data; they write no entry.
//!
//! [`overview`] is the web console's read of the same metadata, with the
//! policies' retention and integration rules, for role `admin`.

pub mod overview;

pub use overview::overview;

use std::{path::PathBuf, time::Duration};

use crate::{
    app,
    audit::Auditor,
    clock::Clock,
    config::Config,
    crypto::{self, CryptoError},
    policy::PolicyError,
    store::{Db, StoreError},
    vault::{
        rotation::{self, ChannelReport, ChannelRotation, RootReport, RotationError},
        status::{self, KeyStatus},
        Keyring, VaultError,
    },
};

use super::operator::Operator;

/// Why a key operation failed, worded for the operator. Key material never
/// appears in it.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("root key")]
    RootKey(#[source] CryptoError),
    #[error("issuer key")]
    IssuerKey(#[source] CryptoError),
    #[error("audit signing key")]
    AuditKey(#[source] CryptoError),
    #[error("database")]
    Database(#[source] StoreError),
    #[error("channel keys")]
    ChannelKeys(#[source] VaultError),
    #[error(transparent)]
    Read(#[from] StoreError),
    #[error(
        "--grace ({}) must be longer than ARKKU_KEY_REFRESH ({}), or a running serve could \
         still wrap new data keys under the old version when it is retired",
        humantime::format_duration(*grace),
        humantime::format_duration(*refresh)
    )]
    GraceTooShort { grace: Duration, refresh: Duration },
    #[error(transparent)]
    Rotation(#[from] RotationError),
}

/// The key files `init` made sure of.
#[derive(Debug, Clone)]
pub struct KeysReady {
    pub root_key_file: PathBuf,
    pub issuer_key_file: PathBuf,
}

/// `arkku keys init`: creates the root and issuer key files if missing
/// (warning loudly when it does), migrates the database, and creates every
/// channel key the policies name.
pub async fn init(config: &Config) -> Result<KeysReady, KeyError> {
    let policies = config.load_policies()?;
    // The database first: no key file is created for a vault that cannot open.
    let db = app::database(config).await.map_err(KeyError::Database)?;
    let root = app::key_file(&config.root_key_file, true, app::KeyFile::Root)
        .map_err(KeyError::RootKey)?;
    app::key_file(&config.issuer_key_file, true, app::KeyFile::Issuer)
        .map_err(KeyError::IssuerKey)?;
    app::keyring(&db, config, root, &policies)
        .await
        .map_err(KeyError::ChannelKeys)?;
    Ok(KeysReady {
        root_key_file: config.root_key_file.clone(),
        issuer_key_file: config.issuer_key_file.clone(),
    })
}

/// `arkku keys status`: every channel-key version with the data keys it
/// wraps and its age, and the root key file, as of `clock`. Reads metadata
/// only, never a key, so it needs no root key.
pub async fn status(config: &Config, clock: &Clock) -> Result<KeyStatus, KeyError> {
    let db = app::database(config).await.map_err(KeyError::Database)?;
    let mut report = status::status(&db, &config.root_key_file).await?;
    report.now = clock.now();
    Ok(report)
}

/// What a rotation works on: the database, the keyring opened with the
/// existing root key, and the audit log its entries go to.
pub struct KeyVault {
    db: Db,
    keyring: Keyring,
    audit: Auditor,
    /// How often running processes look for new key versions
    /// (`ARKKU_KEY_REFRESH`): a channel rotation's grace must be longer.
    key_refresh: Duration,
}

impl KeyVault {
    /// Opens the keys of the configured vault. Never creates a root key:
    /// rotating a key nobody has is a mistake.
    pub async fn open(config: &Config) -> Result<Self, KeyError> {
        let policies = config.load_policies()?;
        let root = crypto::load_key_file(&config.root_key_file).map_err(KeyError::RootKey)?;
        let db = app::database(config).await.map_err(KeyError::Database)?;
        let keyring = app::keyring(&db, config, root, &policies)
            .await
            .map_err(KeyError::ChannelKeys)?;
        let checkpoints =
            std::sync::Arc::new(app::checkpointer(config).map_err(KeyError::AuditKey)?);
        let audit = Auditor::start(
            db.clone(),
            config.audit_timeout,
            config.audit_index_run,
            Some(checkpoints),
        );
        Ok(KeyVault {
            db,
            keyring,
            audit,
            key_refresh: config.key_refresh,
        })
    }
}

/// `arkku keys rotate --channel <domain>`: a new version of the domain's
/// channel key, every data key rewrapped under it, the old versions retired,
/// while other processes keep serving. The grace period must outlast every
/// running process's key refresh, or one could still wrap new data keys
/// under a version being retired.
pub async fn rotate_channel(
    vault: &KeyVault,
    operator: &Operator,
    domain: &str,
    how: ChannelRotation,
) -> Result<ChannelReport, KeyError> {
    if how.grace <= vault.key_refresh {
        return Err(KeyError::GraceTooShort {
            grace: how.grace,
            refresh: vault.key_refresh,
        });
    }
    Ok(rotation::rotate_channel(
        &vault.db,
        &vault.keyring,
        &vault.audit,
        operator.actor(),
        domain,
        how,
    )
    .await?)
}

/// `arkku keys rotate --root`: every channel key rewrapped under a new root
/// key, which replaces the root key file.
pub async fn rotate_root(vault: &KeyVault, operator: &Operator) -> Result<RootReport, KeyError> {
    Ok(rotation::rotate_root(&vault.db, &vault.keyring, &vault.audit, operator.actor()).await?)
}
