//! The served scenarios: N seeded customers, `arkku serve` and the plaintext
//! baseline as child processes on one database, each driven over loopback by
//! the closed-loop client. Before a scenario is driven, one answer is checked
//! (four masked channels, one lookup match, a receipt, an export of the right
//! size), so a figure never measures an error path.

use std::{path::Path, process::Command, sync::Arc, time::Duration};

use anyhow::Context;
use hyper::{body::Bytes, Method};
use serde_json::{json, Value};

use arkku::{
    config::Config,
    crypto::SecretKey,
    domain::{ChannelId, Role},
    store::Db,
    token::{self, TokenRequest},
};

use crate::{
    burst,
    load::{self, Call, MakeCall},
    procs::{free_addr, Server},
    row, seed, Args, Row, Scenario,
};

/// The shipped policies without rate limits: one bench token makes
/// thousands of lookups and reveals a second, which measures the vault's work
/// only if the per-actor limits do not answer 429 first.
fn unlimited_policies(data: &Path) -> anyhow::Result<std::path::PathBuf> {
    use arkku::policy::load::{SHIPPED_CHANNELS, SHIPPED_PURPOSES};
    let dir = data.join("bench-policies");
    std::fs::create_dir_all(&dir).context("bench policy directory")?;
    std::fs::write(dir.join("channels.toml"), SHIPPED_CHANNELS)?;
    std::fs::write(dir.join("purposes.toml"), SHIPPED_PURPOSES)?;
    std::fs::write(
        dir.join("limits.toml"),
        "[tokens]\nmax_lifetime = \"12h\"\n",
    )?;
    Ok(dir)
}

/// Customers the export rows spread their calls over. Every export is itself
/// audited and so grows the customer's access log, which the next export
/// carries: a typical customer exported a few hundred times in a run would
/// no longer be typical. Large customers are dearer to record (the seeding
/// goes through the API), and a few hundred entries more change their
/// export less.
const EXPORT_LARGE: usize = 4;
const EXPORT_TYPICAL: usize = 64;
/// A typical customer: four channels and this many interactions.
const TYPICAL_INTERACTIONS: usize = 20;

/// What a right answer looks like.
type Expect = Box<dyn Fn(u16, &Value) -> bool + Send + Sync>;

/// One driven scenario.
struct Plan {
    name: &'static str,
    concurrency: usize,
    mine: MakeCall,
    theirs: Option<MakeCall>,
    expect: Expect,
}

/// The seeded database and both servers, alive until dropped.
pub struct Served {
    arkku: Server,
    plain: Server,
    /// How `arkku serve` was started, for a second one with metrics on.
    policies: std::path::PathBuf,
    data: std::path::PathBuf,
    url: String,
    issuer: SecretKey,
    agent: Arc<str>,
    ids: Arc<Vec<String>>,
    /// The profile documents of the seeded vault, built before the servers
    /// start (what `serve` does at start on a vault that has none); `None`
    /// with `--online-backfill`, where serve builds them while serving.
    pub backfill: Option<Row>,
    /// With `--online-backfill`: serve's log, where it says when it is done.
    serve_log: Option<std::path::PathBuf>,
}

impl Served {
    /// Seeds `args.customers` customers into `url` and starts both servers on it.
    pub async fn start(args: &Args, url: &str, data: &Path) -> anyhow::Result<Self> {
        let config = Config::for_data_dir(data.to_owned(), url.to_owned());
        let state = arkku::app::open(config.clone())
            .await
            .context("opening the vault to seed it")?;
        let ids = seed::seed(&state, args.customers.max(1))
            .await
            .context("seeding")?;
        // The documents every profile read uses, built as `serve` builds them
        // on a vault that has none (migration 0017), timed; or left to serve.
        let backfill = if args.online_backfill {
            None
        } else {
            let done = arkku::store::customers::projection::backfill(&state.db)
                .await
                .context("building the profile documents")?;
            let secs = done.elapsed.as_secs_f64().max(1e-3);
            eprintln!(
                "profile_backfill: {} documents and facts of {} customers in {secs:.2} s",
                done.stored, done.seen
            );
            // Customers per second (each has a document and, since
            // migration 0019, a facts row; before it the two counts were one).
            Some(Row::one_shot(
                "profile_backfill",
                args.database.name(),
                done.seen as f64 / secs,
                crate::procs::peak_rss_mb(std::process::id()),
            ))
        };
        // The bulk-loaded database as it is once the load has settled, not
        // while its aftermath runs under the first scenario: on PostgreSQL
        // vacuumed, analysed and checkpointed; on SQLite its WAL copied into
        // the database file and synced.
        let settle: &[&str] = match &state.db {
            Db::Postgres(_) => &["VACUUM ANALYZE", "CHECKPOINT"],
            Db::Sqlite(..) => &["PRAGMA wal_checkpoint(TRUNCATE)"],
        };
        for sql in settle {
            arkku::on_db!(&state.db, pool => sqlx::query(sql).execute(pool).await.map(drop))
                .with_context(|| format!("{sql} after seeding"))?;
        }
        state.db.close().await;
        drop(state);

        let exe = std::env::current_exe()?;
        let addr = free_addr()?;
        let policies = unlimited_policies(data)?;
        let mut serve = Command::new(crate::arkku_bin()?);
        serve
            .arg("serve")
            .env("ARKKU_POLICIES", &policies)
            .env("ARKKU_DATA_DIR", data)
            .env("ARKKU_DATABASE_URL", url)
            .env("ARKKU_LISTEN", addr.to_string())
            .env("ARKKU_RETENTION_INTERVAL", "off")
            .env("ARKKU_LOG", "warn");
        let serve_log = if args.online_backfill {
            let log = data.join("serve.log");
            serve
                .env("ARKKU_LOG", "warn,arkku::app=info")
                .env("ARKKU_LOG_FORMAT", "json")
                .stderr(std::fs::File::create(&log).context("serve log")?);
            Some(log)
        } else {
            None
        };
        let mut arkku = Server::spawn(&mut serve, addr)?;
        arkku.wait_up("arkku serve").await?;
        let addr = free_addr()?;
        let mut plain = Server::spawn(
            Command::new(&exe).args(["baseline", "--database", url, "--listen", &addr.to_string()]),
            addr,
        )?;
        plain.wait_up("the baseline").await?;

        let issuer =
            arkku::app::key_file(&config.issuer_key_file, false, arkku::app::KeyFile::Issuer)?;
        let agent = token(&issuer, Role::Agent, &["support"], Some("phone"))?;
        Ok(Served {
            arkku,
            plain,
            policies,
            data: data.to_owned(),
            url: url.to_owned(),
            issuer,
            agent,
            ids: Arc::new(ids.iter().map(|u| u.to_string()).collect()),
            backfill,
            serve_log,
        })
    }

    /// With `--online-backfill`: waits until serve says it has built every
    /// document (its `profile documents built` line), and reports its rate.
    pub async fn online_backfill(&self, args: &Args) -> anyhow::Result<Row> {
        let log = self.serve_log.as_ref().context("serve log")?;
        for _ in 0..36_000 {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let built = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["message"] == "profile documents built");
            if let Some(v) = built {
                let seen = v["customers"].as_f64().unwrap_or(0.0);
                let secs = v["seconds"].as_f64().unwrap_or(0.0).max(1e-3);
                eprintln!("profile_backfill_online: serve built the documents of {seen} customers in {secs:.1} s while serving");
                return Ok(Row::one_shot(
                    "profile_backfill_online",
                    args.database.name(),
                    seen / secs,
                    self.arkku.peak_rss_mb(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("serve did not finish building the profile documents within an hour")
    }

    /// Runs one served scenario; `export` gives two rows (large and typical customers).
    pub async fn run(&self, scenario: Scenario, args: &Args) -> anyhow::Result<Vec<Row>> {
        let plans = match scenario {
            Scenario::Export => self.export_plans(args).await?,
            Scenario::TokenBurst => return self.token_burst(args).await,
            Scenario::MetricsOverhead => return self.metrics_overhead(args).await,
            _ => vec![self.plan(scenario, args.concurrency)?],
        };
        let mut rows = Vec::new();
        for plan in plans {
            rows.push(self.drive(plan, args).await?);
        }
        Ok(rows)
    }

    fn plan(&self, scenario: Scenario, concurrency: usize) -> anyhow::Result<Plan> {
        let n = self.ids.len() as u64;
        let (a, ids) = (Arc::clone(&self.agent), Arc::clone(&self.ids));
        let pick = move |r: u64| ids[(r % n) as usize].clone();
        let (mine, theirs, expect): (MakeCall, Option<MakeCall>, Expect) = match scenario {
            Scenario::Lookup => (
                Arc::new(move |r| {
                    let body = json!({"channel": "phone", "value": seed::phone((r % n) as usize), "purpose": "support"});
                    call(Method::POST, "/v1/lookup".into(), Some(&a), Some(body))
                }),
                Some(Arc::new(move |r| {
                    let body = json!({"channel": "phone", "value": seed::phone((r % n) as usize)});
                    call(Method::POST, "/lookup".into(), None, Some(body))
                })),
                Box::new(|status, v| {
                    status == 200 && v["matches"].as_array().is_some_and(|m| m.len() == 1)
                }),
            ),
            Scenario::ProfileRead => {
                let plain = pick.clone();
                (
                    Arc::new(move |r| {
                        let path = format!("/v1/customers/{}?purpose=support", pick(r));
                        call(Method::GET, path, Some(&a), None)
                    }),
                    Some(Arc::new(move |r| {
                        call(Method::GET, format!("/customers/{}", plain(r)), None, None)
                    })),
                    Box::new(|status, v| {
                        status == 200
                            && v["contacts"].as_array().is_some_and(|c| {
                                c.len() == 4 && c.iter().all(|c| c["masked"] == true)
                            })
                    }),
                )
            }
            Scenario::ConsentGrant => (
                post_to_each(
                    a,
                    pick,
                    "consents",
                    json!({"purpose": "marketing", "channel": "email", "action": "grant", "method": "spoken",
                           "evidence": {"notice_id": "bench", "notice_version": "1"}}),
                ),
                None,
                Box::new(|status, v| status == 201 && v["consent_id"].is_string()),
            ),
            Scenario::ConsentGrantCustomer => {
                let tokens = self
                    .ids
                    .iter()
                    .take(CUSTOMER_TOKENS)
                    .map(|id| customer_token(&self.issuer, id))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let m = tokens.len() as u64;
                let body = Bytes::from(
                    json!({"purpose": "marketing", "channel": "email", "action": "grant",
                           "method": "spoken",
                           "evidence": {"notice_id": "bench", "notice_version": "1"}})
                    .to_string(),
                );
                (
                    Arc::new(move |r| Call {
                        method: Method::POST,
                        path: "/v1/me/consents".into(),
                        token: Some(Arc::clone(&tokens[(r % m) as usize])),
                        body: Some(body.clone()),
                        oauth: None,
                    }),
                    None,
                    Box::new(|status, v| {
                        status == 201 && v["consent_id"].is_string() && v["status"] == "effective"
                    }),
                )
            }
            // The phone agent records a callback promise on its own channel.
            Scenario::InteractionCreate => (
                post_to_each(
                    a,
                    pick,
                    "interactions",
                    json!({"channel": "phone", "kind": "contact_request",
                           "body": "Call back about the invoice: the customer was charged twice."}),
                ),
                None,
                Box::new(|status, v| status == 201 && v["id"].is_string()),
            ),
            Scenario::Export
            | Scenario::TokenBurst
            | Scenario::MetricsOverhead
            | Scenario::RetentionSweep
            | Scenario::AuditAppend
            | Scenario::AuditVerify => {
                anyhow::bail!("{} is not a plain served scenario", scenario.name())
            }
        };
        Ok(Plan {
            name: scenario.name(),
            concurrency,
            mine,
            theirs,
            expect,
        })
    }

    /// Records the export scenario's customers through the API, then plans a
    /// compliance export (`GET /v1/customers/{id}/export?purpose=dsr`) of the
    /// large ones and of the typical ones.
    async fn export_plans(&self, args: &Args) -> anyhow::Result<Vec<Plan>> {
        let large = self
            .record_customers(0, EXPORT_LARGE, args.export_interactions, args.concurrency)
            .await?;
        let typical = self
            .record_customers(
                EXPORT_LARGE,
                EXPORT_TYPICAL,
                TYPICAL_INTERACTIONS,
                args.concurrency,
            )
            .await?;
        let compliance = token(&self.issuer, Role::Compliance, &["dsr"], None)?;
        // One export at a time, as a compliance officer runs them: the targets
        // are latencies of one export, and on two cores more connections only
        // queue (four connections gave 48 exports/s instead of 38, with p99
        // 174 ms instead of 52).
        let concurrency = 1;
        let mut plans = Vec::new();
        for (name, ids, count) in [
            ("export", large, args.export_interactions),
            ("export_typical", typical, TYPICAL_INTERACTIONS),
        ] {
            let n = ids.len() as u64;
            let t = Arc::clone(&compliance);
            plans.push(Plan {
                name,
                concurrency,
                mine: Arc::new(move |r| {
                    let path = format!(
                        "/v1/customers/{}/export?purpose=dsr&reason=bench",
                        ids[(r % n) as usize]
                    );
                    call(Method::GET, path, Some(&t), None)
                }),
                theirs: None,
                expect: Box::new(move |status, v| {
                    status == 200
                        && v["format"] == "arkku-export/1"
                        && v["contacts"].as_array().is_some_and(|c| c.len() == 4)
                        && v["interactions"]
                            .as_array()
                            .is_some_and(|i| i.len() == count)
                }),
            });
        }
        Ok(plans)
    }

    /// Records `count` customers of four channels with `interactions` each
    /// through the API, so each carries the audit trail of its recording as
    /// a real one would. Their values lie outside the seeded ones (lookups
    /// still find one match). Returns their ids.
    async fn record_customers(
        &self,
        first: usize,
        count: usize,
        interactions: usize,
        concurrency: usize,
    ) -> anyhow::Result<Arc<Vec<String>>> {
        eprintln!("export: recording {count} customers with {interactions} interactions each …");
        let service = token(&self.issuer, Role::Service, &["support"], None)?;
        let mut ids = Vec::with_capacity(count);
        for c in first..first + count {
            let body = json!({"display_name": format!("Export {c}"), "contacts": [
                {"channel": "phone", "value": format!("+35845{c:07}")},
                {"channel": "email", "value": format!("export{c}@example.com")},
                {"channel": "sms", "value": format!("+35846{c:07}")},
                {"channel": "chat", "value": format!("export-visitor-{c}")}]});
            let create = call(
                Method::POST,
                "/v1/customers".into(),
                Some(&service),
                Some(body),
            );
            let (status, answer) = load::fetch(self.arkku.addr, create).await?;
            let v: Value = serde_json::from_slice(&answer).unwrap_or_default();
            let id = v["id"]
                .as_str()
                .filter(|_| status == 201)
                .ok_or_else(|| anyhow::anyhow!("creating a customer to export: {status} {v}"))?;
            ids.push(id.to_owned());
        }
        let agents = seed::CHANNELS
            .iter()
            .map(|c| token(&self.issuer, Role::Agent, &["support"], Some(c)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut calls = Vec::with_capacity(count * interactions);
        for i in 0..interactions {
            let c = i % seed::CHANNELS.len();
            let body = json!({"channel": seed::CHANNELS[c], "kind": "complaint",
                              "body": format!("Interaction {i}: the parcel was late and the customer asked for a refund.")});
            for id in &ids {
                let path = format!("/v1/customers/{id}/interactions");
                calls.push(call(
                    Method::POST,
                    path,
                    Some(&agents[c]),
                    Some(body.clone()),
                ));
            }
        }
        load::send_all(self.arkku.addr, concurrency, calls)
            .await
            .context("recording interactions to export")?;
        Ok(Arc::new(ids))
    }

    /// The `token_burst` rows: the profile-read p99 of a parallel reader
    /// alone and while [`burst::BURST`] wrong secrets of one client hit
    /// `POST /oauth/token`, over `--token-bursts` rounds (each a fresh
    /// client, [`burst::ALONE_SECONDS`] alone right before its burst, so
    /// that both figures come from the same minutes of a machine whose speed
    /// drifts); then the client's own token requests (its secret, verified
    /// once, is recognised without argon2); then one argon2id verification.
    async fn token_burst(&self, args: &Args) -> anyhow::Result<Vec<Row>> {
        let (addr, pid) = (self.arkku.addr, self.arkku.pid());
        let admin = token(&self.issuer, Role::Admin, &[], None)?;
        let reader = self.plan(Scenario::ProfileRead, args.concurrency)?;
        let (status, body) = load::fetch(addr, (reader.mine)(1)).await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        anyhow::ensure!((reader.expect)(status, &v), "profile_read answers {status}");
        let c = args.concurrency;
        let (alone, during, client) = burst::rounds(
            addr,
            pid,
            (c, args.token_bursts),
            Arc::clone(&reader.mine),
            &admin,
        )
        .await?;
        eprintln!(
            "token_burst: reader p99 {:.2} ms alone, {:.2} ms during the bursts ({:.2}×)",
            alone.quantile_ms(0.99),
            during.quantile_ms(0.99),
            during.quantile_ms(0.99) / alone.quantile_ms(0.99).max(1e-9)
        );
        eprintln!(
            "oauth_token: a known client's token requests, {c} connections, {} s …",
            args.seconds
        );
        let tokens = load::drive(addr, pid, c, args.seconds, client.right_secret()).await?;
        let argon2 = burst::argon2_ms().await?;
        eprintln!("argon2_verify: {argon2:.1} ms per argon2id verification (m=19 MiB, t=2, p=1)");
        let backend = args.database.name();
        let rss = self.arkku.peak_rss_mb();
        let mut verify = Row::one_shot("argon2_verify", backend, 1000.0 / argon2, 0.0);
        verify.p50_ms = Some(argon2);
        Ok(vec![
            row("profile_read_alone", backend, &alone, None, rss),
            row("read_during_burst", backend, &during, None, rss),
            row("oauth_token", backend, &tokens, None, rss),
            verify,
        ])
    }

    /// Profile reads with and without the metrics listener: a second `arkku
    /// serve` with `ARKKU_METRICS_LISTEN`, scraped every second while it is
    /// driven, and the first (no metrics) driven just before or after it,
    /// the order swapped each round so that the machine's drift favours
    /// neither. One row per round: "ours" is metrics on, "baseline" off.
    async fn metrics_overhead(&self, args: &Args) -> anyhow::Result<Vec<Row>> {
        let addr = free_addr()?;
        let scrape_at = free_addr()?;
        let mut on = Server::spawn(
            Command::new(crate::arkku_bin()?)
                .arg("serve")
                .env("ARKKU_POLICIES", &self.policies)
                .env("ARKKU_DATA_DIR", &self.data)
                .env("ARKKU_DATABASE_URL", &self.url)
                .env("ARKKU_LISTEN", addr.to_string())
                .env("ARKKU_METRICS_LISTEN", scrape_at.to_string())
                .env("ARKKU_RETENTION_INTERVAL", "off")
                .env("ARKKU_LOG", "warn"),
            addr,
        )?;
        on.wait_up("arkku serve with metrics").await?;
        let scrape = || Call {
            method: Method::GET,
            path: "/metrics".into(),
            token: None,
            body: None,
            oauth: None,
        };
        // Both servers warmed alike (their SQLite page caches start cold),
        // so that the first round does not measure a cold start.
        for server in [&on, &self.arkku] {
            let plan = self.plan(Scenario::ProfileRead, args.concurrency)?;
            load::drive(server.addr, server.pid(), args.concurrency, 3.0, plan.mine).await?;
        }
        let mut rows = Vec::new();
        for round in 0..args.metrics_rounds.max(1) {
            let reads = |server: &Server| {
                let plan = self.plan(Scenario::ProfileRead, args.concurrency)?;
                anyhow::Ok((server.addr, server.pid(), plan.mine))
            };
            let drive = |(addr, pid, make): (std::net::SocketAddr, u32, MakeCall)| {
                load::drive(addr, pid, args.concurrency, args.seconds, make)
            };
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let scraper = {
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let mut scrapes = 0u32;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if let Ok((200, _)) = load::fetch(scrape_at, scrape()).await {
                            scrapes += 1;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    scrapes
                })
            };
            eprintln!(
                "metrics_overhead: round {} of {}, {} s each …",
                round + 1,
                args.metrics_rounds.max(1),
                args.seconds
            );
            let (with, without) = if round % 2 == 0 {
                let with = drive(reads(&on)?).await?;
                (with, drive(reads(&self.arkku)?).await?)
            } else {
                let without = drive(reads(&self.arkku)?).await?;
                (drive(reads(&on)?).await?, without)
            };
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let scrapes = scraper.await.unwrap_or(0);
            let (status, body) = load::fetch(scrape_at, scrape()).await?;
            let text = String::from_utf8_lossy(&body);
            anyhow::ensure!(
                status == 200
                    && text.contains(
                        "arkku_http_requests_total{route=\"/v1/customers/{id}\",method=\"GET\",status=\"200\"}"
                    ),
                "the metrics listener does not count the profile reads: {status}"
            );
            eprintln!("metrics_overhead: {scrapes} scrapes while driven");
            rows.push(row(
                Scenario::MetricsOverhead.name(),
                args.database.name(),
                &with,
                Some(&without),
                on.peak_rss_mb(),
            ));
        }
        Ok(rows)
    }

    /// Checks one answer, then drives arkku and (if the scenario has one) the baseline.
    async fn drive(&self, plan: Plan, args: &Args) -> anyhow::Result<Row> {
        let (status, body) = load::fetch(self.arkku.addr, (plan.mine)(1)).await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        if !(plan.expect)(status, &v) {
            let shown: String = v.to_string().chars().take(600).collect();
            anyhow::bail!(
                "{} does not answer as expected: {status} {shown}",
                plan.name
            );
        }
        eprintln!(
            "{}: arkku, {} connection{}, {} s …",
            plan.name,
            plan.concurrency,
            if plan.concurrency == 1 { "" } else { "s" },
            args.seconds
        );
        let ours = load::drive(
            self.arkku.addr,
            self.arkku.pid(),
            plan.concurrency,
            args.seconds,
            plan.mine,
        )
        .await?;
        let base = match plan.theirs {
            Some(make) => {
                eprintln!("{}: baseline …", plan.name);
                Some(
                    load::drive(
                        self.plain.addr,
                        self.plain.pid(),
                        plan.concurrency,
                        args.seconds,
                        make,
                    )
                    .await?,
                )
            }
            None => None,
        };
        Ok(row(
            plan.name,
            args.database.name(),
            &ours,
            base.as_ref(),
            self.arkku.peak_rss_mb(),
        ))
    }
}

fn call(method: Method, path: String, token: Option<&Arc<str>>, body: Option<Value>) -> Call {
    Call {
        method,
        path,
        token: token.map(Arc::clone),
        body: body.map(|b| Bytes::from(b.to_string())),
        oauth: None,
    }
}

/// The same `body` POSTed by `agent` to `/v1/customers/{id}/{what}` of
/// customer after customer.
fn post_to_each(
    agent: Arc<str>,
    pick: impl Fn(u64) -> String + Send + Sync + 'static,
    what: &'static str,
    body: Value,
) -> MakeCall {
    let body = Bytes::from(body.to_string());
    Arc::new(move |r| Call {
        method: Method::POST,
        path: format!("/v1/customers/{}/{what}", pick(r)),
        token: Some(Arc::clone(&agent)),
        body: Some(body.clone()),
        oauth: None,
    })
}

/// Customers of `consent_grant_customer`, each with a token of its own.
const CUSTOMER_TOKENS: usize = 20_000;

/// A token of the subject `bench`, signed by the local issuer key, as
/// `arkku token` makes them.
fn token(
    issuer: &SecretKey,
    role: Role,
    purposes: &[&str],
    channel: Option<&str>,
) -> anyhow::Result<Arc<str>> {
    token_of(issuer, "bench", role, purposes, channel)
}

/// A customer's own token.
fn customer_token(issuer: &SecretKey, customer: &str) -> anyhow::Result<Arc<str>> {
    token_of(issuer, customer, Role::Customer, &[], None)
}

fn token_of(
    issuer: &SecretKey,
    sub: &str,
    role: Role,
    purposes: &[&str],
    channel: Option<&str>,
) -> anyhow::Result<Arc<str>> {
    let purposes: Vec<String> = purposes.iter().map(|p| (*p).to_owned()).collect();
    let channel = channel.map(ChannelId::parse).transpose()?;
    Ok(Arc::from(token::issue(
        issuer,
        arkku::config::LOCAL_ISSUER,
        arkku::config::AUDIENCE,
        &TokenRequest {
            role,
            sub,
            purposes: &purposes,
            channel: channel.as_ref(),
            ttl: Duration::from_secs(7200),
        },
        time::OffsetDateTime::now_utc(),
    )?))
}
