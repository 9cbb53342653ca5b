//! Key rotation while the vault serves (README and SECURITY.md, "Key
//! rotation"): `arkku serve` keeps answering reads, reveals, lookups and
//! creates while `arkku keys rotate` runs beside it on the same data dir and
//! database; afterwards every data key sits under the new version, the old
//! one is gone, every customer reads back, and the audit chain verifies.
//! Also the crash between a root rotation's commit and its rename, and the
//! refusals.

use std::{
    os::unix::fs::PermissionsExt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use arkku::{
    audit::{ActorRef, Auditor},
    crypto::{self, load_key_file, SecretKey},
    domain::Role,
    store::{self, audit::IndexRun, Db},
    vault::{root_file, rotation, Keyring, RootKey},
};
use reqwest::{Client, Method};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::cli::key_status;
use crate::helpers::{
    db_scalar, http_client, issue_token, no_rate_limits_env, spawn_app_with, Backend, Env, Reply,
    Scenario, Tok,
};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        rotating_a_channel_under_load_moves_every_data_key_to_the_new_version_and_retires_the_old,
        rotating_the_root_under_load_replaces_the_key_file_and_keeps_every_blind_index,
        a_root_rotation_stopped_between_commit_and_rename_is_completed_by_the_next_start,
        a_pending_root_key_that_opens_nothing_is_left_alone_and_blocks_the_next_root_rotation,
        rotation_refuses_an_unknown_channel_the_index_key_a_short_grace_and_an_open_key_file,
        a_write_still_using_a_retired_version_is_wrapped_again_under_the_current_one,
        the_key_service_refuses_a_short_grace_and_rotates_under_the_operators_name,
    ]
}

/// `ARKKU_KEY_REFRESH` of every process here: short, so the grace can be too.
const REFRESH: (&str, &str) = ("ARKKU_KEY_REFRESH", "200ms");
/// The grace of every rotation here: longer than [`REFRESH`].
const GRACE: &str = "1s";

// --- customers and requests ---------------------------------------------------

/// A customer as created: the phone number as typed and as stored (E.164).
#[derive(Debug, Clone)]
struct Customer {
    id: String,
    name: String,
    typed: String,
    e164: String,
}

/// The tokens the load uses.
#[derive(Clone)]
struct Tokens {
    /// An agent of channel phone with purpose support.
    agent: String,
    /// An integration with purpose support (creates customers).
    service: String,
}

impl Tokens {
    fn of(env: &Env) -> Self {
        let key = env.issuer_key();
        let token = |role, sub, channel| {
            issue_token(
                &key,
                Tok {
                    role,
                    sub,
                    purposes: &["support"],
                    channel,
                },
            )
        };
        Tokens {
            agent: token(Role::Agent, "agent-rot", Some("phone")),
            service: token(Role::Service, "crm-sync", None),
        }
    }
}

/// A Finnish mobile number unique to (`series`, `n`).
fn number(series: u32, n: usize) -> (String, String) {
    let digits = format!("{series}{:06}", n % 1_000_000);
    (format!("040 {digits}"), format!("+35840{digits}"))
}

async fn call(
    client: &Client,
    method: Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> Result<Reply, String> {
    let mut rb = client.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.map_err(|e| format!("no answer: {e}"))?;
    Reply::try_read(r)
        .await
        .map_err(|e| format!("unreadable answer: {e}"))
}

/// Creates a customer with a phone number, an e-mail address and a name.
async fn create(
    client: &Client,
    base: &str,
    t: &Tokens,
    series: u32,
    n: usize,
) -> Result<Customer, String> {
    let (typed, e164) = number(series, n);
    let name = format!("Asiakas {series}-{n}");
    let body = json!({
        "display_name": name,
        "contacts": [
            {"channel": "phone", "value": typed, "label": "mobile"},
            {"channel": "email", "value": format!("c{series}-{n}@example.com")}
        ]
    });
    let url = format!("{base}/v1/customers");
    let r = call(client, Method::POST, url, &t.service, Some(body)).await?;
    if r.status != 201 {
        return Err(format!("create: {} {}", r.status, r.text));
    }
    let id = r.json["id"].as_str().ok_or("create: no id")?.to_owned();
    Ok(Customer {
        id,
        name,
        typed,
        e164,
    })
}

/// Reads the customer as the phone agent, revealed: the number and the name
/// must come back in plaintext (so both the phone and the profile data keys open).
async fn reveal(client: &Client, base: &str, t: &Tokens, c: &Customer) -> Result<(), String> {
    let url = format!(
        "{base}/v1/customers/{}?purpose=support&reveal=true&reason=T-1",
        c.id
    );
    let r = call(client, Method::GET, url, &t.agent, None).await?;
    let phone = &r.json["contacts"][0];
    if r.status != 200
        || phone["channel"] != "phone"
        || phone["value"] != c.e164.as_str()
        || r.json["display_name"] != c.name.as_str()
    {
        return Err(format!("reveal {}: {} {}", c.id, r.status, r.text));
    }
    Ok(())
}

/// Reads the customer masked, as the phone agent.
async fn read(client: &Client, base: &str, t: &Tokens, c: &Customer) -> Result<(), String> {
    let url = format!("{base}/v1/customers/{}?purpose=support", c.id);
    let r = call(client, Method::GET, url, &t.agent, None).await?;
    if r.status != 200 || r.json["contacts"][0]["masked"] != true {
        return Err(format!("read {}: {} {}", c.id, r.status, r.text));
    }
    Ok(())
}

/// Looks the customer up by the number as typed: exactly that customer.
async fn lookup(client: &Client, base: &str, t: &Tokens, c: &Customer) -> Result<(), String> {
    let body = json!({"channel": "phone", "value": c.typed, "purpose": "support"});
    let url = format!("{base}/v1/lookup");
    let r = call(client, Method::POST, url, &t.agent, Some(body)).await?;
    let ids: Vec<&str> = r.json["matches"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["customer_id"].as_str()).collect())
        .unwrap_or_default();
    if r.status != 200 || ids != [c.id.as_str()] {
        return Err(format!("lookup {}: {} {}", c.typed, r.status, r.text));
    }
    Ok(())
}

/// Creates `n` customers one after another.
async fn seed(base: &str, t: &Tokens, n: usize) -> Vec<Customer> {
    let client = http_client();
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        out.push(
            create(&client, base, t, 1, k)
                .await
                .unwrap_or_else(|e| panic!("seed: {e}")),
        );
    }
    out
}

/// What the load saw.
#[derive(Default)]
struct Seen {
    requests: usize,
    failures: Vec<String>,
    created: Vec<Customer>,
}

/// Clients that create, read, reveal and look up until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<Seen>,
}

impl Load {
    fn start(base: &str, t: &Tokens, seeds: &[Customer], clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        let seeds = Arc::new(seeds.to_vec());
        for task in 0..clients {
            let (base, t, seeds, stop) = (
                base.to_owned(),
                t.clone(),
                Arc::clone(&seeds),
                Arc::clone(&stop),
            );
            tasks.spawn(async move {
                let client = http_client();
                let mut seen = Seen::default();
                let mut j = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let seed = &seeds[(task * 7 + j) % seeds.len()];
                    // Series 2..: one per client task, so numbers never collide.
                    let series = 2 + u32::try_from(task).unwrap_or(0);
                    let outcome = match j % 4 {
                        0 => create(&client, &base, &t, series, j)
                            .await
                            .map(|c| seen.created.push(c)),
                        1 => reveal(&client, &base, &t, seed).await,
                        2 => lookup(&client, &base, &t, seed).await,
                        _ => read(&client, &base, &t, seed).await,
                    };
                    seen.requests += 1;
                    if let Err(e) = outcome {
                        seen.failures.push(e);
                    }
                    j += 1;
                }
                seen
            });
        }
        Load { stop, tasks }
    }

    /// Stops the clients and asserts that every request got the answer it should.
    async fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Seen::default();
        while let Some(r) = self.tasks.join_next().await {
            let seen = r.expect("load task");
            all.requests += seen.requests;
            all.failures.extend(seen.failures);
            all.created.extend(seen.created);
        }
        assert!(
            all.failures.is_empty(),
            "{} of {} requests failed during the rotation, e.g. {:?}",
            all.failures.len(),
            all.requests,
            &all.failures[..all.failures.len().min(5)]
        );
        assert!(
            all.requests >= 20,
            "the load ran: {} requests",
            all.requests
        );
        all
    }
}

// --- the database and the audit log, read directly ---------------------------

async fn key_rotate_entries(db: &Db) -> Vec<Value> {
    let rows = store::audit::entries_after(db, 0, 1_000_000)
        .await
        .expect("audit");
    rows.iter()
        .filter(|r| r.action == "key.rotate")
        .map(|r| serde_json::from_str(&r.detail).expect("detail is JSON"))
        .collect()
}

/// Whether `root` opens every stored channel key.
async fn opens_every_channel_key(db: &Db, root: &SecretKey) -> bool {
    let keys = store::keys::channel_keys(db).await.expect("channel keys");
    assert!(!keys.is_empty());
    keys.iter()
        .all(|k| crypto::unwrap_channel_key(root, &k.channel, k.version, &k.wrapped).is_ok())
}

/// Whether `root` opens any stored channel key.
async fn opens_any_channel_key(db: &Db, root: &SecretKey) -> bool {
    let keys = store::keys::channel_keys(db).await.expect("channel keys");
    keys.iter()
        .any(|k| crypto::unwrap_channel_key(root, &k.channel, k.version, &k.wrapped).is_ok())
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

// --- the scenarios ---------------------------------------------------------------

async fn rotating_a_channel_under_load_moves_every_data_key_to_the_new_version_and_retires_the_old(
    b: Backend,
) {
    let env = Env::new(b).await;
    let server = env.serve_with(&[REFRESH, no_rate_limits_env()]).await;
    let t = Tokens::of(&env);
    let seeds = seed(&server.base, &t, 24).await;

    // Act: rotate phone while clients create, read, reveal and look up.
    let load = Load::start(&server.base, &t, &seeds, 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A small batch, so the rewrap takes several batches per pass.
    let rotated = env
        .run_ok(
            &[
                "keys",
                "rotate",
                "--channel",
                "phone",
                "--grace",
                GRACE,
                "--batch",
                "7",
            ],
            &[REFRESH],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = load.finish().await;

    // Assert: every request succeeded (Load::finish), and the rotation says what it did.
    assert!(
        rotated.stdout.contains("rotated phone: v1 -> v2") && rotated.stdout.contains("retired v1"),
        "{}",
        rotated.stdout
    );
    assert!(!seen.created.is_empty(), "customers were created meanwhile");
    let everyone: Vec<Customer> = seeds.iter().chain(&seen.created).cloned().collect();
    let n = everyone.len() as i64;

    let db = env.db().await;
    let count = |sql: &'static str| db_scalar(&db, sql);
    assert_eq!(
        count("SELECT COUNT(*) FROM data_keys WHERE channel = 'phone' AND key_version = 2").await,
        n,
        "every phone data key, old and new, is at v2"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM data_keys WHERE channel = 'phone'").await,
        n
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM channel_keys WHERE channel = 'phone' AND version <> 2").await,
        0,
        "v1 is retired"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM data_keys WHERE channel <> 'phone' AND key_version <> 1").await,
        0,
        "other channels are untouched"
    );

    // Every customer reads back in plaintext and is found, on the running server.
    let client = http_client();
    for c in &everyone {
        reveal(&client, &server.base, &t, c)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        lookup(&client, &server.base, &t, c)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    // keys status shows the one phone version with every phone data key.
    let status = env.run_ok(&["keys", "status"], &[]).await;
    let rows = key_status(&status.stdout);
    let phone: Vec<_> = rows.iter().filter(|r| r.0 == "phone").collect();
    assert_eq!(
        phone,
        [&("phone".to_owned(), "2".to_owned(), n.to_string())],
        "{}",
        status.stdout
    );

    // The rotation is in the verified audit chain: start and finish, no key material.
    env.verify_ok().await;
    let entries = key_rotate_entries(&db).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["phase"], "start");
    let done = &entries[1];
    assert_eq!(
        (
            &done["phase"],
            &done["outcome"],
            &done["domain"],
            &done["from"],
            &done["to"],
            &done["retired"]
        ),
        (
            &json!("finish"),
            &json!("ok"),
            &json!("phone"),
            &json!([1]),
            &json!(2),
            &json!([1])
        ),
        "{done}"
    );
    assert!(done["rewrapped"].as_u64().unwrap_or(0) >= seeds.len() as u64);
    let root_hex = std::fs::read_to_string(env.root_key_file()).expect("root key");
    let audit = format!("{entries:?}");
    assert!(!audit.contains(root_hex.trim()), "no key material");
    db.close().await;
}

async fn rotating_the_root_under_load_replaces_the_key_file_and_keeps_every_blind_index(
    b: Backend,
) {
    let env = Env::new(b).await;
    let server = env.serve_with(&[REFRESH, no_rate_limits_env()]).await;
    let t = Tokens::of(&env);
    let seeds = seed(&server.base, &t, 12).await;
    let file = env.root_key_file();
    let old_text = std::fs::read_to_string(&file).expect("root key");
    let old = load_key_file(&file).expect("root key");

    // Act: rotate the root while clients keep working.
    let load = Load::start(&server.base, &t, &seeds, 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rotated = env.run_ok(&["keys", "rotate", "--root"], &[REFRESH]).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let seen = load.finish().await;

    // Assert: a new key file, private, nothing pending.
    assert!(
        rotated.stdout.contains("rotated the root key"),
        "{}",
        rotated.stdout
    );
    let new_text = std::fs::read_to_string(&file).expect("root key");
    assert_ne!(new_text, old_text, "the key file changed");
    assert_eq!(mode(&file), 0o600);
    assert!(!root_file::pending_path(&file).exists(), "nothing pending");
    assert!(
        !rotated.stdout.contains(new_text.trim()) && !rotated.stderr.contains(new_text.trim()),
        "the new key is never printed"
    );
    // The old key opens no channel key any more; the new one opens them all.
    let db = env.db().await;
    let new = load_key_file(&file).expect("root key");
    assert!(
        !opens_any_channel_key(&db, &old).await,
        "the old root opens nothing"
    );
    assert!(opens_every_channel_key(&db, &new).await);

    // The running server picked the new root up when it re-read the keys.
    let client = http_client();
    let late = create(&client, &server.base, &t, 9, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    reveal(&client, &server.base, &t, &late)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let log = server.proc.stderr();
    assert!(log.contains("the root key was rotated"), "{log}");
    drop(server);

    // A restarted server opens everything with the new file, and every
    // customer made before is still found: the blind indexes did not change.
    let server = env.serve_with(&[REFRESH, no_rate_limits_env()]).await;
    let everyone: Vec<Customer> = seeds
        .iter()
        .chain(&seen.created)
        .chain(std::iter::once(&late))
        .cloned()
        .collect();
    for c in &everyone {
        lookup(&client, &server.base, &t, c)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        reveal(&client, &server.base, &t, c)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    env.verify_ok().await;
    let entries = key_rotate_entries(&db).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1]["outcome"], "ok", "{entries:?}");
    assert_eq!(entries[1]["root"], true);
    let audit = format!("{entries:?}");
    assert!(!audit.contains(new_text.trim()) && !audit.contains(old_text.trim()));
    db.close().await;
}

async fn a_root_rotation_stopped_between_commit_and_rename_is_completed_by_the_next_start(
    b: Backend,
) {
    let env = Env::new(b).await;
    let server = env.serve().await;
    let t = Tokens::of(&env);
    let seeds = seed(&server.base, &t, 3).await;
    drop(server);

    // Arrange: the state a root rotation leaves when it dies after its
    // commit: <file>.new holds the new key and every channel key is wrapped
    // under it, but the key file still holds the old one.
    let file = env.root_key_file();
    let old = load_key_file(&file).expect("root key");
    let new = SecretKey::generate().expect("key");
    root_file::write_pending(&file, &new).expect("write <file>.new");
    let db = env.db().await;
    let rewrapped = store::keys::rewrap_channel_keys(&db, |k| {
        let key = crypto::unwrap_channel_key(&old, &k.channel, k.version, &k.wrapped)?;
        crypto::wrap_channel_key(&new, &k.channel, k.version, &key)
    })
    .await
    .expect("database")
    .expect("rewrap");
    assert!(rewrapped >= 10, "every domain: {rewrapped}");
    assert!(!opens_any_channel_key(&db, &old).await);

    // Act: the next start.
    let server = env.serve().await;

    // Assert: it took the new key over, said so, and serves every customer.
    let log = server.proc.stderr();
    assert!(
        log.contains("WARN") && log.contains("completed an interrupted root key rotation"),
        "{log}"
    );
    assert_eq!(
        load_key_file(&file).expect("root key").expose_secret(),
        new.expose_secret(),
        "the key file now holds the new key"
    );
    assert_eq!(mode(&file), 0o600);
    assert!(
        !root_file::pending_path(&file).exists(),
        "<file>.new is gone"
    );
    let client = http_client();
    for c in &seeds {
        lookup(&client, &server.base, &t, c)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        reveal(&client, &server.base, &t, c)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    db.close().await;
}

async fn a_pending_root_key_that_opens_nothing_is_left_alone_and_blocks_the_next_root_rotation(
    b: Backend,
) {
    let env = Env::new(b).await;
    env.run_ok(&["keys", "init"], &[]).await;
    // Arrange: a rotation that died before its commit left its new key behind.
    let file = env.root_key_file();
    let root_text = std::fs::read_to_string(&file).expect("root key");
    let stray = SecretKey::generate().expect("key");
    let pending = root_file::write_pending(&file, &stray).expect("write <file>.new");
    let pending_text = std::fs::read_to_string(&pending).expect("pending key");

    // Act + Assert: serve starts with the old key and leaves the stray file alone …
    let server = env.serve().await;
    let t = Tokens::of(&env);
    let seeds = seed(&server.base, &t, 1).await;
    reveal(&http_client(), &server.base, &t, &seeds[0])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(server);
    assert_eq!(std::fs::read_to_string(&file).expect("root"), root_text);
    assert_eq!(
        std::fs::read_to_string(&pending).expect("pending"),
        pending_text
    );

    // … status points it out, and a root rotation refuses to run over it.
    let status = env.run_ok(&["keys", "status"], &[]).await;
    assert!(
        status.stdout.contains("pending root key") && status.stdout.contains("root.key.new"),
        "{}",
        status.stdout
    );
    let r = env.run(&["keys", "rotate", "--root"], &[]).await;
    r.assert_failed();
    assert!(
        r.stderr.contains("root.key.new") && r.stderr.contains("exists"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).expect("root"), root_text);
    assert_eq!(
        std::fs::read_to_string(&pending).expect("pending"),
        pending_text
    );

    // Once the operator removes it, the rotation runs.
    std::fs::remove_file(&pending).expect("remove");
    env.run_ok(&["keys", "rotate", "--root"], &[]).await;
    assert_ne!(std::fs::read_to_string(&file).expect("root"), root_text);
}

async fn rotation_refuses_an_unknown_channel_the_index_key_a_short_grace_and_an_open_key_file(
    b: Backend,
) {
    let env = Env::new(b).await;
    env.run_ok(&["keys", "init"], &[]).await;
    let file = env.root_key_file();
    let root_text = std::fs::read_to_string(&file).expect("root key");
    let refused: [(&[&str], &[&str]); 5] = [
        (
            &["--channel", "fax", "--grace", GRACE],
            &["unknown key domain \"fax\"", "phone", "_profile"],
        ),
        (
            &["--channel", "_index", "--grace", GRACE],
            &["_index", "blind-index"],
        ),
        (
            &["--channel", "phone", "--grace", "150ms"],
            &["--grace", "ARKKU_KEY_REFRESH"],
        ),
        (&[], &["--channel", "--root"]),
        (&["--channel", "phone", "--root"], &["cannot be used with"]),
    ];
    for (args, needles) in refused {
        let r = env
            .run(&[&["keys", "rotate"][..], args].concat(), &[REFRESH])
            .await;
        r.assert_failed();
        for needle in needles {
            assert!(
                r.stderr.contains(needle),
                "{args:?}: {needle:?} not in {}",
                r.stderr
            );
        }
    }

    // A root key file that group or others may read is refused, as by serve.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let r = env.run(&["keys", "rotate", "--root"], &[]).await;
    r.assert_failed();
    assert!(
        r.stderr.contains("permissions") && r.stderr.contains("0640"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(root_text.trim()), "never prints the key");
    assert_eq!(mode(&file), 0o640, "the mode is not silently fixed");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(std::fs::read_to_string(&file).expect("root"), root_text);

    // Nothing changed and nothing was audited.
    let db = env.db().await;
    assert_eq!(
        db_scalar(&db, "SELECT COUNT(*) FROM channel_keys WHERE version <> 1").await,
        0
    );
    assert!(key_rotate_entries(&db).await.is_empty());

    // Every flag of `keys rotate` has an env twin, and the twins work.
    let help = env.run_ok(&["keys", "rotate", "--help"], &[]).await.stdout;
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        match line.trim_start().strip_prefix("--") {
            Some(rest) => {
                let flag = rest.split([' ', '=', '<']).next().unwrap_or("");
                blocks.push((flag.to_owned(), String::new()));
            }
            None => {
                if let Some((_, text)) = blocks.last_mut() {
                    text.push_str(line);
                }
            }
        }
    }
    for flag in ["channel", "root", "grace", "batch"] {
        let (_, text) = blocks
            .iter()
            .find(|(f, _)| f == flag)
            .unwrap_or_else(|| panic!("--{flag} in {help}"));
        assert!(text.contains("[env: ARKKU_ROTATE_"), "--{flag}: {text}");
    }
    let r = env
        .run_ok(
            &["keys", "rotate"],
            &[
                REFRESH,
                ("ARKKU_ROTATE_CHANNEL", "_profile"),
                ("ARKKU_ROTATE_GRACE", "400ms"),
                ("ARKKU_ROTATE_BATCH", "5"),
            ],
        )
        .await;
    assert!(
        r.stdout.contains("rotated _profile: v1 -> v2"),
        "{}",
        r.stdout
    );
    assert_eq!(key_rotate_entries(&db).await.len(), 2);
    db.close().await;
}

async fn a_write_still_using_a_retired_version_is_wrapped_again_under_the_current_one(b: Backend) {
    // Arrange: a vault whose keyring will not look for new versions for an
    // hour, as if a rotation's grace period were too short for it.
    let app = spawn_app_with(b, |c| c.key_refresh = Duration::from_secs(3600)).await;
    let service = app.service();
    let emailed = app
        .create_customer_ok(
            &service,
            json!({"contacts": [{"channel": "email", "value": "vain@example.com"}]}),
        )
        .await;
    // Another process rotates phone (v1 -> v2, v1 retired) under its own keyring.
    let file = app.dir.path().join("data").join("root.key");
    let root = RootKey {
        key: load_key_file(&file).expect("root key"),
        file: Some(file),
    };
    let other = Keyring::open(app.db(), root, std::iter::empty(), Duration::from_secs(2))
        .await
        .expect("keyring");
    let auditor = Auditor::start(
        app.db().clone(),
        Duration::from_secs(5),
        IndexRun::DEFAULT,
        None,
    );
    let actor = ActorRef {
        sub: "test".to_owned(),
        role: "admin".to_owned(),
        client: None,
    };
    let how = rotation::ChannelRotation {
        grace: Duration::ZERO,
        batch: 100,
    };
    let report = rotation::rotate_channel(app.db(), &other, &auditor, &actor, "phone", how)
        .await
        .expect("rotation");
    assert_eq!((report.to, report.retired.clone()), (2, vec![1]));

    // Act: the vault still believes phone v1 is current. A new customer and a
    // new phone contact both need a new phone data key.
    let created = app
        .create_customer_ok(
            &service,
            json!({"contacts": [{"channel": "phone", "value": "040 111 2233"}]}),
        )
        .await;
    let added = app
        .add_contact(
            &app.agent("phone"),
            &emailed,
            json!({"channel": "phone", "value": "040 444 5566"}),
        )
        .await;

    // Assert: the database refused v1, the keys were wrapped under v2, and
    // both read back.
    assert_eq!(added.status.as_u16(), 201, "{}", added.text);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM data_keys WHERE channel = 'phone' AND key_version = 2")
            .await,
        2
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM data_keys WHERE key_version <> 1 AND channel <> 'phone'")
            .await,
        0
    );
    let agent = app.agent("phone");
    for (id, e164) in [(&created, "+358401112233"), (&emailed, "+358404445566")] {
        let r = app
            .read_customer(&agent, id, "purpose=support&reveal=true&reason=T-2")
            .await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
        assert_eq!(r.json["contacts"][0]["value"], e164, "{}", r.text);
    }
    app.assert_chain_verifies().await;
}

/// The key operations as the CLI calls them ([`arkku::service::keys`]): a
/// grace no longer than the key refresh is refused before anything changes;
/// a rotation is audited under the operator's name; the status shows the new
/// version as current.
async fn the_key_service_refuses_a_short_grace_and_rotates_under_the_operators_name(b: Backend) {
    use arkku::service::{keys, operator::Operator};

    let app = spawn_app_with(b, |c| c.key_refresh = Duration::from_millis(200)).await;
    let config = &app.state.config;
    let vault = keys::KeyVault::open(config).await.expect("open the keys");
    let operator = Operator::cli("keys rotate");
    let short = rotation::ChannelRotation {
        grace: Duration::from_millis(200),
        batch: 100,
    };
    let refused = keys::rotate_channel(&vault, &operator, "phone", short).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("--grace") && message.contains("ARKKU_KEY_REFRESH"),
        "{message}"
    );
    assert!(key_rotate_entries(app.db()).await.is_empty());

    let how = rotation::ChannelRotation {
        grace: Duration::from_millis(300),
        batch: 100,
    };
    let report = keys::rotate_channel(&vault, &operator, "phone", how)
        .await
        .expect("rotation");
    assert_eq!((report.to, report.retired.clone()), (2, vec![1]));
    let actors: Vec<(String, String, Option<String>)> =
        store::audit::entries_after(app.db(), 0, 1_000_000)
            .await
            .expect("audit")
            .into_iter()
            .filter(|r| r.action == "key.rotate")
            .map(|r| (r.actor_sub, r.actor_role, r.actor_client))
            .collect();
    let cli = (
        "arkku-cli".to_owned(),
        "admin".to_owned(),
        Some("keys rotate".to_owned()),
    );
    assert_eq!(actors, vec![cli.clone(), cli]);

    let status = keys::status(config, &arkku::clock::Clock::system())
        .await
        .expect("status");
    let phone: Vec<(u32, bool)> = status
        .versions
        .iter()
        .filter(|v| v.domain == "phone")
        .map(|v| (v.version, v.current))
        .collect();
    assert_eq!(phone, vec![(2, true)]);
}
