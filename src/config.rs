//! Settings: defaults < `ARKKU_*` environment < flags.
//!
//! Every flag has an `ARKKU_*` twin and the same names serve every subcommand,
//! so one environment configures `serve`, `token`, `keys` and `audit` alike.
//! The resolved [`Config`] is held in application state, never in a global.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;

use crate::{
    domain::{DisplayZone, Region},
    store::audit::IndexRun,
};

/// Options shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Address `serve` listens on.
    #[arg(
        long,
        env = "ARKKU_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,
    /// Address of the separate `GET /metrics` listener (Prometheus text
    /// format); unset: no metrics listener. It has no authentication: bind
    /// it to loopback or a private network.
    #[arg(long, env = "ARKKU_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,
    /// Database URL: sqlite://PATH or postgres://… (default: sqlite://<data-dir>/arkku.db).
    #[arg(long = "database", env = "ARKKU_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Directory for the embedded database and generated keys.
    #[arg(
        long,
        env = "ARKKU_DATA_DIR",
        default_value = "./arkku-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Directory holding channels.toml and purposes.toml, and optionally
    /// limits.toml and auth.toml (default: ./policies if it exists, else the
    /// policies built into the binary).
    #[arg(long, env = "ARKKU_POLICIES", global = true)]
    pub policies: Option<PathBuf>,
    /// Root key file (default: <data-dir>/root.key).
    #[arg(long, env = "ARKKU_ROOT_KEY_FILE", global = true)]
    pub root_key_file: Option<PathBuf>,
    /// Local token issuer key file (default: <data-dir>/issuer.key).
    #[arg(long, env = "ARKKU_ISSUER_KEY_FILE", global = true)]
    pub issuer_key_file: Option<PathBuf>,
    /// Ed25519 seed that signs audit checkpoints (default: <data-dir>/audit.key).
    #[arg(long, env = "ARKKU_AUDIT_KEY_FILE", global = true)]
    pub audit_key_file: Option<PathBuf>,
    /// Directory that receives a copy of every signed audit checkpoint, as
    /// a file, besides the database (default: <data-dir>/checkpoints). Put
    /// it on other storage: a checkpoint kept only inside the database is
    /// restored with it, and cannot tell what a restore lost.
    #[arg(long, env = "ARKKU_CHECKPOINT_DIR", global = true)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Sign an audit checkpoint every N entries.
    #[arg(
        long,
        env = "ARKKU_AUDIT_CHECKPOINT_EVERY",
        default_value_t = 1000,
        global = true
    )]
    pub audit_checkpoint_every: u64,
    /// SQLite: the audit writer files the log's customer index behind it,
    /// in small runs of N/8 entries merged into one every N; a
    /// customer-filtered compliance query seeks once per run and scans fewer
    /// than N/8 of the newest entries. PostgreSQL keeps a per-entry index.
    #[arg(
        long,
        env = "ARKKU_AUDIT_INDEX_RUN",
        default_value_t = 8192,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        global = true
    )]
    pub audit_index_run: u32,
    /// Region for phone numbers written without a country code.
    #[arg(
        long,
        env = "ARKKU_DEFAULT_REGION",
        default_value = "FI",
        global = true
    )]
    pub default_region: String,
    /// IANA time zone of the local times in the export ZIP (the JSON and
    /// the API keep UTC).
    #[arg(
        long,
        env = "ARKKU_DISPLAY_TIMEZONE",
        default_value = crate::domain::DEFAULT_DISPLAY_ZONE,
        global = true
    )]
    pub display_timezone: String,
    /// Create missing key files automatically (turn off in production).
    #[arg(long, env = "ARKKU_AUTO_KEYS", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub auto_keys: bool,
    /// Same as --auto-keys=false.
    #[arg(long, global = true)]
    pub no_auto_keys: bool,
    /// Deadline for one audit append before the request fails with 503.
    #[arg(long, env = "ARKKU_AUDIT_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub audit_timeout: Duration,
    /// How often `serve` runs the retention sweeper ("1h", "15m"; "off" or 0 to
    /// leave it to `arkku retention run`).
    #[arg(long, env = "ARKKU_RETENTION_INTERVAL", default_value = "1h", value_parser = parse_interval, global = true)]
    pub retention_interval: Duration,
    /// How often `serve` verifies the audit chain in the background (from
    /// the newest signed checkpoint to the head; the first pass at start);
    /// "off" or 0 for never. A broken chain makes `/readyz` answer 503.
    #[arg(long, env = "ARKKU_AUDIT_VERIFY_INTERVAL", default_value = "5m", value_parser = parse_interval, global = true)]
    pub audit_verify_interval: Duration,
    /// How often `serve` re-reads the channel-key versions, so a key rotation's
    /// new version is used for new data keys within this time (keep it shorter
    /// than the `keys rotate --grace`).
    #[arg(long, env = "ARKKU_KEY_REFRESH", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub key_refresh: Duration,
    /// How long a request head may take from its first byte to its end
    /// before `serve` closes the connection.
    #[arg(long, env = "ARKKU_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_positive, global = true)]
    pub header_read_timeout: Duration,
    /// How long a whole request body may take to arrive after its head; a
    /// late body is answered 408 `request_timeout`.
    #[arg(long, env = "ARKKU_BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_positive, global = true)]
    pub body_read_timeout: Duration,
    /// How long a connection with no request in progress may stay silent
    /// (keep-alive, or never used) before `serve` closes it.
    #[arg(long, env = "ARKKU_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_positive, global = true)]
    pub idle_timeout: Duration,
    /// Most connections `serve` keeps open at once (lowered to fit the
    /// open-files limit); beyond it a connection gets 503 and is closed.
    #[arg(
        long,
        env = "ARKKU_MAX_CONNECTIONS",
        default_value_t = 10_000,
        global = true
    )]
    pub max_connections: usize,
    /// Most connections one client address (IPv6: one /64) may hold open;
    /// 0 for no per-client cap (behind a reverse proxy).
    #[arg(
        long,
        env = "ARKKU_MAX_CONNECTIONS_PER_PEER",
        default_value_t = 256,
        global = true
    )]
    pub max_connections_per_peer: usize,
    /// On SIGTERM or SIGINT, how long `serve` waits for the requests in
    /// progress to finish and their audit entries to commit before it exits.
    #[arg(long, env = "ARKKU_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_positive, global = true)]
    pub shutdown_timeout: Duration,
    /// How `serve` delivers customer sign-in codes: `webhook` posts them to
    /// --notify-url (the default when that is set), `file` appends them to
    /// <data-dir>/outbox.jsonl (development only), `none` delivers nothing.
    #[arg(long, env = "ARKKU_NOTIFY", global = true)]
    pub notify: Option<String>,
    /// The URL the notifier posts its signed messages to.
    #[arg(long, env = "ARKKU_NOTIFY_URL", global = true)]
    pub notify_url: Option<String>,
    /// Key that signs the notifier's webhook posts, 64 hex characters, mode
    /// 0600 (default: <data-dir>/notify.key, created like the other keys).
    #[arg(long, env = "ARKKU_NOTIFY_SECRET_FILE", global = true)]
    pub notify_secret_file: Option<PathBuf>,
    /// Log line format: `json` (one object a line), `text`, or `auto`: text
    /// when stderr, where the log goes, is a terminal, JSON otherwise.
    #[arg(long, env = "ARKKU_LOG_FORMAT", value_enum, default_value_t = crate::logging::LogFormat::Auto, global = true)]
    pub log_format: crate::logging::LogFormat,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "ARKKU_LOG", default_value = "info", global = true)]
    pub log: String,
}

/// A duration, or `off` for none (zero).
fn parse_interval(s: &str) -> Result<Duration, String> {
    match s.trim() {
        "off" | "0" => Ok(Duration::ZERO),
        other => humantime::parse_duration(other).map_err(|e| e.to_string()),
    }
}

/// A duration longer than zero (a zero timeout would close everything).
fn parse_positive(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(d)
}

/// The token issuer name of tokens made by `arkku token`.
pub const LOCAL_ISSUER: &str = "arkku-local";
/// The audience every token must name.
pub const AUDIENCE: &str = "arkku";

/// How the notifier delivers (README "How a customer signs in").
#[derive(Clone, PartialEq, Eq)]
pub enum NotifyMode {
    /// Nothing is delivered: messages wait in the outbox until they expire.
    None,
    /// Appended to `<data-dir>/outbox.jsonl` (development).
    File,
    /// Posted, signed, to this URL.
    Webhook(String),
}

impl std::fmt::Debug for NotifyMode {
    /// A webhook URL may carry a token of the receiver's: not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotifyMode::None => "None",
            NotifyMode::File => "File",
            NotifyMode::Webhook(_) => "Webhook(<url>)",
        })
    }
}

impl NotifyMode {
    /// `ARKKU_NOTIFY` and `ARKKU_NOTIFY_URL` together.
    pub fn from_args(mode: Option<&str>, url: Option<&str>) -> Result<Self, String> {
        let url = url.map(str::trim).filter(|u| !u.is_empty());
        match (mode.map(str::trim).unwrap_or(""), url) {
            ("", None) | ("none", None) => Ok(NotifyMode::None),
            ("" | "webhook", Some(u)) => Ok(NotifyMode::Webhook(u.to_owned())),
            ("file", None) => Ok(NotifyMode::File),
            ("webhook", None) => Err("ARKKU_NOTIFY=webhook needs ARKKU_NOTIFY_URL".to_owned()),
            ("file" | "none", Some(_)) => Err(format!(
                "ARKKU_NOTIFY={} and ARKKU_NOTIFY_URL are both set: choose one",
                mode.unwrap_or("").trim()
            )),
            (other, _) => Err(format!(
                "ARKKU_NOTIFY: unknown value {:?} (expected webhook, file or none)",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// Where the policies come from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    Dir(PathBuf),
    BuiltIn,
}

/// Resolved settings. Holds paths, never key material.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The metrics listener's address; `None`: off.
    pub metrics_listen: Option<SocketAddr>,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub policies: PolicySource,
    pub root_key_file: PathBuf,
    pub issuer_key_file: PathBuf,
    pub audit_key_file: PathBuf,
    /// Where signed checkpoints are also written as files.
    pub checkpoint_dir: PathBuf,
    pub audit_checkpoint_every: u64,
    /// How the audit writer files the customer index.
    pub audit_index_run: IndexRun,
    pub default_region: Region,
    /// The zone of the export ZIP's local times.
    pub display_zone: DisplayZone,
    pub auto_keys: bool,
    pub audit_timeout: Duration,
    /// Zero: no sweeper in `serve`.
    pub retention_interval: Duration,
    /// Zero: no background verification of the audit chain in `serve`.
    pub audit_verify_interval: Duration,
    pub key_refresh: Duration,
    /// Connection limits of `serve` (timeouts and caps).
    pub edge: crate::server::EdgeLimits,
    pub issuer: String,
    pub audience: String,
    /// How the notifier delivers sign-in codes.
    pub notify: NotifyMode,
    /// The key that signs webhook posts (read only when `notify` is a webhook).
    pub notify_secret_file: PathBuf,
}

impl Config {
    /// Resolves defaults that depend on other settings (paths under the data dir).
    pub fn from_args(a: &GlobalArgs) -> Result<Self, String> {
        let data_dir = a.data_dir.clone();
        let database_url = a
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("arkku.db").display()));
        let policies = match &a.policies {
            Some(dir) => PolicySource::Dir(dir.clone()),
            None if PathBuf::from("policies/channels.toml").exists() => {
                PolicySource::Dir(PathBuf::from("policies"))
            }
            None => PolicySource::BuiltIn,
        };
        let default_region =
            Region::parse(&a.default_region).map_err(|e| format!("ARKKU_DEFAULT_REGION: {e}"))?;
        let display_zone = DisplayZone::parse(&a.display_timezone)
            .map_err(|e| format!("ARKKU_DISPLAY_TIMEZONE: {e}"))?;
        let notify = NotifyMode::from_args(a.notify.as_deref(), a.notify_url.as_deref())?;
        let notify_secret_file = a
            .notify_secret_file
            .clone()
            .unwrap_or_else(|| data_dir.join("notify.key"));
        Ok(Config {
            listen: a.listen,
            metrics_listen: a.metrics_listen,
            database_url,
            root_key_file: a
                .root_key_file
                .clone()
                .unwrap_or_else(|| data_dir.join("root.key")),
            issuer_key_file: a
                .issuer_key_file
                .clone()
                .unwrap_or_else(|| data_dir.join("issuer.key")),
            audit_key_file: a
                .audit_key_file
                .clone()
                .unwrap_or_else(|| data_dir.join("audit.key")),
            checkpoint_dir: a
                .checkpoint_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("checkpoints")),
            audit_checkpoint_every: a.audit_checkpoint_every,
            audit_index_run: IndexRun::new(a.audit_index_run),
            data_dir,
            policies,
            default_region,
            display_zone,
            auto_keys: a.auto_keys && !a.no_auto_keys,
            audit_timeout: a.audit_timeout,
            retention_interval: a.retention_interval,
            audit_verify_interval: a.audit_verify_interval,
            key_refresh: a.key_refresh,
            edge: crate::server::EdgeLimits {
                header_read_timeout: a.header_read_timeout,
                body_read_timeout: a.body_read_timeout,
                idle_timeout: a.idle_timeout,
                max_connections: a.max_connections,
                max_connections_per_peer: a.max_connections_per_peer,
                shutdown_timeout: a.shutdown_timeout,
            },
            issuer: LOCAL_ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            notify,
            notify_secret_file,
        })
    }

    /// A configuration for tests and embedding: everything under `data_dir`.
    pub fn for_data_dir(data_dir: PathBuf, database_url: String) -> Self {
        let notify_secret_file = data_dir.join("notify.key");
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: None,
            database_url,
            root_key_file: data_dir.join("root.key"),
            issuer_key_file: data_dir.join("issuer.key"),
            audit_key_file: data_dir.join("audit.key"),
            checkpoint_dir: data_dir.join("checkpoints"),
            audit_checkpoint_every: 1000,
            audit_index_run: IndexRun::DEFAULT,
            data_dir,
            policies: PolicySource::BuiltIn,
            default_region: Region::default(),
            display_zone: DisplayZone::default(),
            auto_keys: true,
            audit_timeout: Duration::from_secs(2),
            retention_interval: Duration::ZERO,
            audit_verify_interval: Duration::ZERO,
            key_refresh: Duration::from_secs(2),
            edge: crate::server::EdgeLimits {
                header_read_timeout: Duration::from_secs(10),
                body_read_timeout: Duration::from_secs(30),
                idle_timeout: Duration::from_secs(60),
                max_connections: 10_000,
                max_connections_per_peer: 256,
                shutdown_timeout: Duration::from_secs(10),
            },
            issuer: LOCAL_ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            notify: NotifyMode::None,
            notify_secret_file,
        }
    }

    /// The file `ARKKU_NOTIFY=file` appends to.
    pub fn notify_file(&self) -> PathBuf {
        self.data_dir.join(crate::identity::notify::file::FILE_NAME)
    }

    /// Loads the configured policies.
    pub fn load_policies(&self) -> Result<crate::policy::Policies, crate::policy::PolicyError> {
        match &self.policies {
            PolicySource::Dir(dir) => crate::policy::load_dir(dir),
            PolicySource::BuiltIn => crate::policy::load_shipped(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NotifyMode;

    #[test]
    fn the_notifier_is_chosen_by_arkku_notify_and_its_url() {
        let url = Some("https://notify.example.com/hook");
        assert_eq!(NotifyMode::from_args(None, None), Ok(NotifyMode::None));
        assert_eq!(
            NotifyMode::from_args(Some("none"), None),
            Ok(NotifyMode::None)
        );
        assert_eq!(
            NotifyMode::from_args(Some("file"), None),
            Ok(NotifyMode::File)
        );
        let hook = Ok(NotifyMode::Webhook(
            "https://notify.example.com/hook".into(),
        ));
        assert_eq!(NotifyMode::from_args(None, url), hook);
        assert_eq!(NotifyMode::from_args(Some("webhook"), url), hook);
        assert!(NotifyMode::from_args(Some("webhook"), None).is_err());
        assert!(NotifyMode::from_args(Some("file"), url).is_err());
        assert!(NotifyMode::from_args(Some("carrier-pigeon"), None).is_err());
    }

    #[test]
    fn debug_never_prints_a_webhook_url() {
        let m = NotifyMode::Webhook("https://h.example/?token=s3cret".into());
        assert_eq!(format!("{m:?}"), "Webhook(<url>)");
    }
}
