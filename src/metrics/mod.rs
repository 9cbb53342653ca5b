//! What an operator watches: the vault's Prometheus series, held in one
//! registry per process (in the state, never a global) and served by
//! [`listener`] on its own address (`ARKKU_METRICS_LISTEN`).
//!
//! **No personal data in a label.** Every label value here is either a
//! fixed word chosen in this module, a route *template* (`/v1/customers/{id}`,
//! never the path a caller sent), a reason or error code of the policy and
//! the API, or a name from the policy files (channel-key domains). Customer
//! ids, contact values, subjects, client ids and staff names never become a
//! label: the types below take `&'static str` wherever a value could
//! otherwise come from a request.
//!
//! Counters and histograms move where the work happens; gauges that describe
//! a state (audit queue depth, key ages, database pool) are read when the
//! series are scraped ([`Metrics::render`]).

pub mod listener;

use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

/// Upper bounds of the latency buckets, in seconds: 0.5 ms to about 8 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 15)
}

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// One HTTP request's labels: its route template, method and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: &'static str,
    pub status: u16,
}

/// A latency series: route template and method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub method: &'static str,
}

/// A policy decision on one channel: permitted or withheld, and why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
    reason: &'static str,
}

/// What kind of credential was issued, or refused, and the refusal's code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    kind: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyFileLabel {
    key: &'static str,
}

/// A channel-key domain: a channel of channels.toml, or `_profile`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DomainLabel {
    domain: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    state: &'static str,
}

/// The group-commit writer's series ([`crate::audit::Auditor`]), cloned into
/// its task.
#[derive(Clone)]
pub struct AuditMetrics {
    batch_size: Histogram,
    commit_seconds: Histogram,
    entries: Counter,
    failed_batches: Counter,
}

impl AuditMetrics {
    /// Series that no registry encodes: for an auditor nobody scrapes.
    pub fn unregistered() -> Self {
        AuditMetrics {
            batch_size: Histogram::new(std::iter::once(1.0)),
            commit_seconds: Histogram::new(std::iter::once(1.0)),
            entries: Counter::default(),
            failed_batches: Counter::default(),
        }
    }

    /// A batch of `entries` committed in `took`.
    pub fn committed(&self, entries: usize, took: Duration) {
        self.batch_size.observe(entries as f64);
        self.commit_seconds.observe(took.as_secs_f64());
        self.entries.inc_by(entries as u64);
    }

    /// A batch whose commit failed (every request in it got 503).
    pub fn failed(&self) {
        self.failed_batches.inc();
    }
}

/// The retention sweeper's progress ([`crate::retention::Sweep`]).
#[derive(Clone)]
pub struct RetentionMetrics {
    sweeps: Family<OutcomeLabel, Counter>,
    purged: Family<TableLabel, Counter>,
    customers_erased: Counter,
    batches: Counter,
    running: Gauge,
    last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
    last_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl RetentionMetrics {
    /// `n` rows deleted from `table` (`contacts`, `interactions`, `consents`).
    pub fn purged(&self, table: &'static str, n: u64) {
        self.purged.get_or_create(&TableLabel { table }).inc_by(n);
    }

    /// One audited batch of a purge.
    pub fn batch(&self) {
        self.batches.inc();
    }

    /// Customers left with nothing, erased.
    pub fn customers_erased(&self, n: u64) {
        self.customers_erased.inc_by(n);
    }

    /// A sweep begins (the running gauge goes up until [`Self::finished`]).
    pub fn started(&self) {
        self.running.inc();
    }

    /// A sweep ended, after `took`; `ok` when it ran to the end.
    pub fn finished(&self, ok: bool, took: Duration) {
        self.running.dec();
        let outcome = if ok { "ok" } else { "failed" };
        self.sweeps.get_or_create(&OutcomeLabel { outcome }).inc();
        self.last_seconds.set(took.as_secs_f64());
        if ok {
            let now = time::OffsetDateTime::now_utc();
            self.last_success
                .set(now.unix_timestamp_nanos() as f64 / 1_000_000_000.0);
        }
    }
}

/// Every series of the vault, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    pub audit: AuditMetrics,
    audit_queue: Gauge,
    decisions: Family<DecisionLabels, Counter>,
    tokens: Family<KindLabel, Counter>,
    auth_failures: Family<AuthLabels, Counter>,
    pub retention: RetentionMetrics,
    key_file_age: Family<KeyFileLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    channel_key_age: Family<DomainLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pool: Family<PoolLabel, Gauge>,
    pool_max: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every series declared (and no sample yet).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("arkku");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request reaching the router to its response head",
            request_seconds.clone(),
        );
        let audit = AuditMetrics {
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            commit_seconds: latency_histogram(),
            entries: Counter::default(),
            failed_batches: Counter::default(),
        };
        registry.register(
            "audit_batch_size",
            "Entries per group-commit batch of the audit writer",
            audit.batch_size.clone(),
        );
        registry.register(
            "audit_commit_duration_seconds",
            "Time to chain and durably commit one audit batch",
            audit.commit_seconds.clone(),
        );
        registry.register(
            "audit_entries",
            "Audit entries committed",
            audit.entries.clone(),
        );
        registry.register(
            "audit_failed_batches",
            "Audit batches whose commit failed",
            audit.failed_batches.clone(),
        );
        let audit_queue = Gauge::default();
        registry.register(
            "audit_queue_depth",
            "Entries waiting for the audit writer (at scrape time)",
            audit_queue.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "policy_decisions",
            "Integration-rule decisions on a channel's data, by outcome and reason code",
            decisions.clone(),
        );
        let tokens = Family::<KindLabel, Counter>::default();
        registry.register(
            "tokens_issued",
            "Tokens the vault issued: client (POST /oauth/token) or customer (sign-in by code)",
            tokens.clone(),
        );
        let auth_failures = Family::<AuthLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Refused credentials: bearer_token, client, customer_code or staff_sign_in, by code",
            auth_failures.clone(),
        );
        let retention = RetentionMetrics {
            sweeps: Family::default(),
            purged: Family::default(),
            customers_erased: Counter::default(),
            batches: Counter::default(),
            running: Gauge::default(),
            last_success: Gauge::default(),
            last_seconds: Gauge::default(),
        };
        registry.register(
            "retention_sweeps",
            "Retention sweeps finished, by outcome",
            retention.sweeps.clone(),
        );
        registry.register(
            "retention_purged_rows",
            "Rows the retention sweeper deleted, by table",
            retention.purged.clone(),
        );
        registry.register(
            "retention_erased_customers",
            "Customers the retention sweeper erased (nothing left to keep)",
            retention.customers_erased.clone(),
        );
        registry.register(
            "retention_batches",
            "Audited purge batches of the retention sweeper",
            retention.batches.clone(),
        );
        registry.register(
            "retention_sweep_running",
            "Retention sweeps in progress",
            retention.running.clone(),
        );
        registry.register(
            "retention_last_success_timestamp_seconds",
            "When the last retention sweep that ran to the end finished (Unix time)",
            retention.last_success.clone(),
        );
        registry.register(
            "retention_last_duration_seconds",
            "How long the last retention sweep took",
            retention.last_seconds.clone(),
        );
        let key_file_age = Family::default();
        registry.register(
            "key_file_age_seconds",
            "Age of the root, issuer and audit key files (since last modified)",
            key_file_age.clone(),
        );
        let channel_key_age = Family::default();
        registry.register(
            "channel_key_age_seconds",
            "Age of the current channel-key version of each domain",
            channel_key_age.clone(),
        );
        let pool = Family::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections, idle or in use",
            pool.clone(),
        );
        let pool_max = Gauge::default();
        registry.register(
            "db_pool_max_connections",
            "Most connections the database pool opens",
            pool_max.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            audit,
            audit_queue,
            decisions,
            tokens,
            auth_failures,
            retention,
            key_file_age,
            channel_key_age,
            pool,
            pool_max,
        }
    }

    /// One answered HTTP request.
    pub fn request(&self, route: RouteLabels, status: u16, took: Duration) {
        self.request_seconds
            .get_or_create(&route)
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                route: route.route,
                method: route.method,
                status,
            })
            .inc();
    }

    /// One channel decided by the integration rule.
    pub fn decision(&self, d: &crate::policy::ChannelDecision) {
        let decision = match d {
            crate::policy::ChannelDecision::Permit(_) => "permit",
            crate::policy::ChannelDecision::Withhold(_) => "withhold",
        };
        self.decisions
            .get_or_create(&DecisionLabels {
                decision,
                reason: d.reason_code(),
            })
            .inc();
    }

    /// A token issued: `client` or `customer`.
    pub fn token_issued(&self, kind: &'static str) {
        self.tokens.get_or_create(&KindLabel { kind }).inc();
    }

    /// A credential refused: `kind` says which, `code` the refusal's code.
    pub fn auth_failure(&self, kind: &'static str, code: &'static str) {
        self.auth_failures
            .get_or_create(&AuthLabels { kind, code })
            .inc();
    }

    /// The series in the Prometheus text format (0.0.4), with the gauges
    /// that describe a state read now.
    pub async fn render(&self, svc: &crate::service::Services) -> String {
        self.audit_queue
            .set(i64::try_from(svc.audit.queue_depth()).unwrap_or(i64::MAX));
        let (size, idle, max) = svc.db.pool_use();
        self.pool
            .get_or_create(&PoolLabel { state: "idle" })
            .set(i64::from(idle));
        self.pool
            .get_or_create(&PoolLabel { state: "in_use" })
            .set(i64::from(size.saturating_sub(idle)));
        self.pool_max.set(i64::from(max));
        self.key_ages(svc).await;
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }

    /// Key ages: the key files by modification time, the current version of
    /// each channel-key domain by its creation time (metadata only).
    async fn key_ages(&self, svc: &crate::service::Services) {
        let now = svc.clock.now();
        let config = &svc.config;
        for (key, path) in [
            ("root", &config.root_key_file),
            ("issuer", &config.issuer_key_file),
            ("audit", &config.audit_key_file),
        ] {
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if let Some(modified) = modified {
                let age = (now - time::OffsetDateTime::from(modified)).as_seconds_f64();
                self.key_file_age
                    .get_or_create(&KeyFileLabel { key })
                    .set(age.max(0.0));
            }
        }
        match crate::store::keys::channel_keys(&svc.db).await {
            Ok(keys) => {
                let now = crate::store::to_micros(now);
                let mut newest: std::collections::BTreeMap<&str, (u32, i64)> = Default::default();
                for k in &keys {
                    let e = newest.entry(k.channel.as_str()).or_insert((0, 0));
                    if k.version >= e.0 {
                        *e = (k.version, k.created_at);
                    }
                }
                for (domain, (_, created)) in newest {
                    let age = (now - created).max(0) as f64 / 1_000_000.0;
                    self.channel_key_age
                        .get_or_create(&DomainLabel {
                            domain: domain.to_owned(),
                        })
                        .set(age);
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: channel-key ages not read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_rendered_with_their_labels() {
        let m = Metrics::new();
        m.request(
            RouteLabels {
                route: "/v1/customers/{id}".into(),
                method: "GET",
            },
            200,
            Duration::from_millis(3),
        );
        m.auth_failure("bearer_token", "expired");
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry)
            .expect("encode");
        assert!(
            out.contains(
                "arkku_http_requests_total{route=\"/v1/customers/{id}\",method=\"GET\",status=\"200\"} 1"
            ),
            "{out}"
        );
        assert!(
            out.contains("arkku_auth_failures_total{kind=\"bearer_token\",code=\"expired\"} 1"),
            "{out}"
        );
    }
}
