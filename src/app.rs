//! Start-up: policies, key files, database, migrations, keyring, verifier,
//! audit — in that order, each failure named for the operator.

use std::{str::FromStr, sync::Arc};

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
    #[error("notifier: {0}")]
    Notifier(#[from] crate::identity::notify::webhook::WebhookError),
}

/// The key files the vault reads, each with what losing it costs: the
/// warning printed when one is generated says so, and only the root key's
/// loss makes the vault's data unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFile {
    /// Wraps every channel key, and so every data key and value.
    Root,
    /// Signs the tokens of the local issuer.
    Issuer,
    /// Signs the audit checkpoints.
    Audit,
    /// Signs the notifier's webhook posts.
    Notify,
}

impl KeyFile {
    /// The name in the warning, in capitals so that it stands out in a log.
    pub fn name(self) -> &'static str {
        match self {
            KeyFile::Root => "ROOT KEY",
            KeyFile::Issuer => "TOKEN ISSUER KEY",
            KeyFile::Audit => "AUDIT SIGNING KEY",
            KeyFile::Notify => "NOTIFIER SIGNING KEY",
        }
    }

    /// What its loss costs, for the warning.
    pub fn if_lost(self) -> &'static str {
        match self {
            KeyFile::Root => {
                "Back it up: without it nothing in this vault can be read, and no other key \
                 brings the data back."
            }
            KeyFile::Issuer => {
                "It signs the tokens this vault accepts: if it is lost or replaced, every \
                 token signed with it stops working and must be issued again. The vault's \
                 data is not affected."
            }
            KeyFile::Audit => {
                "Back it up: it signs audit checkpoints, and if it is lost or replaced the \
                 checkpoints signed before cannot be verified with the new key (`arkku audit \
                 verify` reports them as not signed by this vault). The vault's data is not \
                 affected."
            }
            KeyFile::Notify => {
                "It signs the notifier's webhook posts: give it to the receiver, which must \
                 refuse posts signed with any other key (a new key means giving it the new \
                 one). The vault's data is not affected."
            }
        }
    }
}

/// Loads (or, with auto keys on, creates) a key file, warning loudly on
/// creation with what the new key's loss would cost.
pub fn key_file(
    path: &std::path::Path,
    auto: bool,
    which: KeyFile,
) -> Result<SecretKey, CryptoError> {
    let (key, outcome) = load_or_create_key_file(path, auto)?;
    if outcome == KeyFileOutcome::Created {
        tracing::warn!(
            path = %path.display(),
            "GENERATED A NEW {} at {} (mode 0600). {} \
             In production provision keys yourself and run with --no-auto-keys (ARKKU_AUTO_KEYS=false).",
            which.name(),
            path.display(),
            which.if_lost(),
        );
    }
    Ok(key)
}

/// Checks the key files before the database is touched, and leaves the
/// creation of missing ones until after it has opened: a vault that cannot
/// start leaves neither a new database behind for want of a key (automatic
/// keys off) nor new key files for want of a database. Every key file that
/// exists must load; a missing one is an error only with automatic keys off.
pub fn check_key_files(config: &Config) -> Result<(), CryptoError> {
    let notify = matches!(config.notify, crate::config::NotifyMode::Webhook(_))
        .then_some(&config.notify_secret_file);
    for path in [
        &config.root_key_file,
        &config.issuer_key_file,
        &config.audit_key_file,
    ]
    .into_iter()
    .chain(notify)
    {
        if !config.auto_keys || path.exists() {
            load_or_create_key_file(path, false)?;
        }
    }
    Ok(())
}

/// Connects to the configured database, creating a PostgreSQL database that
/// does not exist yet (as SQLite creates its file), and applies the migrations.
pub async fn database(config: &Config) -> Result<Db, StoreError> {
    let db = match Db::connect(&config.database_url).await {
        Err(StoreError::Database(e)) if is_missing_database(&e) => {
            create_postgres_database(&config.database_url).await?;
            Db::connect(&config.database_url).await?
        }
        other => other?,
    };
    db.migrate().await?;
    Ok(db)
}

/// PostgreSQL's "database does not exist" (SQLSTATE 3D000).
fn is_missing_database(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "3D000")
}

/// Creates the database a PostgreSQL URL names, through the server's
/// maintenance database, as `createdb` does. Another process creating it at
/// the same moment is not an error. A failure says how to create it by hand.
async fn create_postgres_database(url: &str) -> Result<(), StoreError> {
    use sqlx::migrate::MigrateDatabase;
    let name = sqlx::postgres::PgConnectOptions::from_str(url)
        .ok()
        .and_then(|o| o.get_database().map(str::to_owned))
        .unwrap_or_default();
    match sqlx::Postgres::create_database(url).await {
        Ok(()) => {
            tracing::info!(database = %name, "created the PostgreSQL database");
            Ok(())
        }
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42P04") => {
            Ok(())
        }
        Err(e) => Err(StoreError::Database(sqlx::Error::Configuration(
            format!(
                "database {name:?} does not exist and could not be created ({e}); \
                 create it (createdb {name}) or give the user the CREATEDB privilege"
            )
            .into(),
        ))),
    }
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
    let seed = key_file(&config.audit_key_file, config.auto_keys, KeyFile::Audit)?;
    Ok(Checkpointer::new(
        CheckpointSigner::from_seed(&seed)?,
        config.audit_checkpoint_every,
    )
    .with_dir(config.checkpoint_dir.clone()))
}

/// Customer sign-in: its keys (derived from the `_index` key), its rate
/// limits and where the notifier delivers; a webhook's signing key is read
/// (or, with automatic keys, created) here, so a bad one stops the start.
fn sign_in(
    config: &Config,
    keyring: &Keyring,
    policies: &Policies,
) -> Result<crate::identity::sign_in::SignIn, StartError> {
    use crate::{config::NotifyMode, identity::notify};
    let keys = crate::identity::sign_in::SignInKeys::derive(&*keyring.index_prk()?)?;
    let delivery = match &config.notify {
        NotifyMode::None => notify::Delivery::None,
        NotifyMode::File => notify::Delivery::File(config.notify_file()),
        NotifyMode::Webhook(url) => {
            let secret = key_file(
                &config.notify_secret_file,
                config.auto_keys,
                KeyFile::Notify,
            )?;
            notify::Delivery::Webhook(Box::new(notify::webhook::Webhook::new(url, &secret)?))
        }
    };
    Ok(crate::identity::sign_in::SignIn::new(
        keys,
        crate::identity::sign_in::SignInLimiter::new(&policies.limits.sign_in),
        delivery,
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
    check_key_files(&config)?;
    let db = database(&config).await?;
    let root = key_file(&config.root_key_file, config.auto_keys, KeyFile::Root)?;
    let issuer = key_file(&config.issuer_key_file, config.auto_keys, KeyFile::Issuer)?;
    let checkpoints = Arc::new(checkpointer(&config)?);
    let keyring = keyring(&db, &config, root, &policies).await?;
    let blind = BlindIndex::from_prk(
        &*keyring.index_prk()?,
        policies.channels.keys().map(|c| c.as_str()),
    );
    let revocations = crate::identity::revocation::Revocations::new(db.clone(), clock.clone());
    revocations.refresh().await?;
    revocations.spawn_refresher();
    let auth = crate::identity::Authenticator::with_issuers(
        TokenVerifier::new(
            &issuer,
            &config.issuer,
            &config.audience,
            policies.limits.token_max_lifetime,
            clock.clone(),
        ),
        crate::identity::issuers::Issuers::new(
            &policies.issuers,
            clock.clone(),
            policies.limits.token_max_lifetime,
        ),
    )
    .with_revocations(revocations);
    let token_issuer = crate::token::TokenIssuer::new(&issuer, &config.issuer, &config.audience);
    let sign_in = sign_in(&config, &keyring, &policies)?;
    let hasher = crate::identity::SecretHasher::new().map_err(|_| CryptoError::Rng)?;
    let client_secrets =
        crate::identity::verified::VerifiedSecrets::new().map_err(|_| CryptoError::Rng)?;
    let limiter = crate::service::ratelimit::ActorLimiter::new(&policies.limits);
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let audit = match audit {
        Audit::Durable => Auditor::start_with_metrics(
            db.clone(),
            config.audit_timeout,
            config.audit_index_run,
            Some(Arc::clone(&checkpoints)),
            metrics.audit.clone(),
        ),
        #[cfg(feature = "bench")]
        Audit::Discard => Auditor::discarding_for_benchmarks(),
    };
    let projector = crate::store::customers::projection::Projector::start(db.clone());
    Ok(AppState::new(Services {
        config,
        policies,
        db,
        keyring,
        blind,
        auth,
        sign_in,
        hasher,
        issuer: token_issuer,
        client_attempts: Default::default(),
        client_secrets,
        audit,
        checkpoints,
        limiter,
        chain: Arc::default(),
        clock,
        metrics,
        projector,
    }))
}

/// Builds the profile document of every customer that has none, once, in
/// the background (`serve` calls it at start): how a vault written before
/// the documents existed, or restored from such a backup, moves to them
/// while it serves. Reads do not wait for it; a customer without a document
/// is read from the tables meanwhile.
pub fn spawn_profile_backfill(state: &AppState) {
    let db = state.db.clone();
    tokio::spawn(async move {
        match crate::store::customers::projection::backfill(&db).await {
            Ok(done) if done.seen > 0 => tracing::info!(
                customers = done.seen,
                stored = done.stored,
                seconds = done.elapsed.as_secs_f64(),
                "profile documents built"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                error = %e,
                "building profile documents stopped; reads use the tables until the next start"
            ),
        }
    });
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

/// Starts fetching the keys of the external issuers of auth.toml (at once,
/// then whenever they are due), in the background: a provider that is down
/// does not stop the start, its tokens are refused until its keys come.
pub fn spawn_issuer_refresh(state: &AppState) {
    state.auth.issuers().spawn_refresh();
}

/// Starts the notifier's worker ([`crate::identity::notify::worker`]),
/// which delivers queued sign-in codes until the process ends. `serve`
/// calls it after start-up.
pub fn spawn_notifier(state: &AppState) {
    let worker = crate::identity::notify::worker::Worker {
        db: state.db.clone(),
        clock: state.clock.clone(),
        keys: std::sync::Arc::clone(&state.sign_in.keys),
        delivery: std::sync::Arc::clone(&state.sign_in.delivery),
        wake: state.sign_in.wake_handle(),
        node: uuid::Uuid::now_v7(),
    };
    tokio::spawn(worker.run());
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
                progress: Some(&state.metrics.retention),
            };
            let started = std::time::Instant::now();
            state.metrics.retention.started();
            let outcome = sweep.run().await;
            state
                .metrics
                .retention
                .finished(outcome.is_ok(), started.elapsed());
            match outcome {
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
