//! Start-up: policies, key files, database, migrations, keyring, verifier,
//! audit — in that order, each failure named for the operator.

use std::sync::Arc;

use crate::{
    audit::{Auditor, Checkpointer},
    clock::Clock,
    config::Config,
    crypto::{
        load_or_create_key_file, BlindIndex, CheckpointSigner, CryptoError, KeyFileOutcome,
        SecretKey,
    },
    domain::PROFILE_DOMAIN,
    http::AppState,
    policy::{Policies, PolicyError},
    service::Services,
    store::{Db, StoreError},
    token::TokenVerifier,
    vault::{Keyring, RootKey, VaultError},
};

/// Why the vault could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Key(#[from] CryptoError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("keys: {0}")]
    Vault(#[from] VaultError),
}

/// Loads (or, with auto keys on, creates) a key file, warning loudly on creation.
pub fn key_file(path: &std::path::Path, auto: bool, what: &str) -> Result<SecretKey, CryptoError> {
    let (key, outcome) = load_or_create_key_file(path, auto)?;
    if outcome == KeyFileOutcome::Created {
        tracing::warn!(
            path = %path.display(),
            "GENERATED A NEW {what} at {} (mode 0600). Back it up: without it the data in this vault cannot be read. \
             In production provision keys yourself and run with --no-auto-keys (ARKKU_AUTO_KEYS=false).",
            path.display()
        );
    }
    Ok(key)
}

/// Connects to the configured database and applies the migrations.
pub async fn database(config: &Config) -> Result<Db, StoreError> {
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    Ok(db)
}

/// Opens the keyring for every policy channel plus the profile domain, with
/// the root key read from `config.root_key_file` (which the keyring reads
/// again after a root rotation, and completes an interrupted one from).
pub async fn keyring(
    db: &Db,
    config: &Config,
    root: SecretKey,
    policies: &Policies,
) -> Result<Keyring, VaultError> {
    let domains: Vec<&str> = policies
        .channels
        .keys()
        .map(|c| c.as_str())
        .chain(std::iter::once(PROFILE_DOMAIN))
        .collect();
    let root = RootKey {
        key: root,
        file: Some(config.root_key_file.clone()),
    };
    Keyring::open(db, root, domains, config.key_refresh).await
}

/// The checkpoint signer, from the audit key file.
pub fn checkpointer(config: &Config) -> Result<Checkpointer, CryptoError> {
    let seed = key_file(
        &config.audit_key_file,
        config.auto_keys,
        "AUDIT SIGNING KEY",
    )?;
    Ok(Checkpointer::new(
        CheckpointSigner::from_seed(&seed)?,
        config.audit_checkpoint_every,
    ))
}

/// Builds the application state on the system clock.
pub async fn open(config: Config) -> Result<AppState, StartError> {
    open_with_clock(config, Clock::system()).await
}

/// Builds the application state for `serve` (and for the tests) on `clock`,
/// which every operation and the token verifier read.
pub async fn open_with_clock(config: Config, clock: Clock) -> Result<AppState, StartError> {
    open_with(config, clock, Audit::Durable).await
}

/// Whether the state's auditor writes the log. Only the benchmark module
/// ([`crate::bench`], behind the `bench` cargo feature) asks for `Discard`.
pub(crate) enum Audit {
    Durable,
    #[cfg(feature = "bench")]
    Discard,
}

pub(crate) async fn open_with(
    config: Config,
    clock: Clock,
    audit: Audit,
) -> Result<AppState, StartError> {
    let policies = config.load_policies()?;
    let root = key_file(&config.root_key_file, config.auto_keys, "ROOT KEY")?;
    let issuer = key_file(
        &config.issuer_key_file,
        config.auto_keys,
        "TOKEN ISSUER KEY",
    )?;
    let checkpoints = Arc::new(checkpointer(&config)?);
    let db = database(&config).await?;
    let keyring = keyring(&db, &config, root, &policies).await?;
    let blind = BlindIndex::from_prk(
        &*keyring.index_prk()?,
        policies.channels.keys().map(|c| c.as_str()),
    );
    let tokens = TokenVerifier::new(
        &issuer,
        &config.issuer,
        &config.audience,
        policies.limits.token_max_lifetime,
        clock.clone(),
    );
    let limiter = crate::service::ratelimit::ActorLimiter::new(&policies.limits);
    let audit = match audit {
        Audit::Durable => Auditor::start(
            db.clone(),
            config.audit_timeout,
            Some(Arc::clone(&checkpoints)),
        ),
        #[cfg(feature = "bench")]
        Audit::Discard => Auditor::discarding_for_benchmarks(),
    };
    Ok(AppState::new(Services {
        config,
        policies,
        db,
        keyring,
        blind,
        tokens,
        audit,
        checkpoints,
        limiter,
        chain: Arc::default(),
        clock,
    }))
}

/// Starts the background verification of the audit chain (at once, then
/// every `config.audit_verify_interval`; never when that is zero). `serve`
/// calls it after start-up, which does not wait for the first pass.
pub fn spawn_chain_watch(state: &AppState) {
    state.chain.start(
        state.db.clone(),
        state.checkpoints.public_key().to_vec(),
        state.config.audit_verify_interval,
    );
}

/// Runs the retention sweeper every `config.retention_interval` (first run
/// one interval after start) until the process ends. Several `serve`
/// processes may each sweep: purges are idempotent, so overlapping sweeps
/// cost work but never lose or double-delete anything.
pub fn spawn_retention_sweeper(state: AppState) {
    let every = state.config.retention_interval;
    if every.is_zero() {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let sweep = crate::retention::Sweep {
                db: &state.db,
                policies: &state.policies,
                audit: &state.audit,
                now: state.clock.now(),
                dry_run: false,
                batch: crate::retention::DEFAULT_BATCH,
            };
            match sweep.run().await {
                Ok(r) => tracing::info!(
                    purged = r.purged,
                    customers = r.customers,
                    batches = r.batches,
                    "retention sweep done"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "retention sweep failed; the next one resumes")
                }
            }
        }
    });
}
