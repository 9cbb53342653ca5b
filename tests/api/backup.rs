//! Backup and restore through the real binary (README "Backup and restore"):
//! an online SQLite backup under write load holds every write acknowledged
//! before it began and restores into a new data dir whose chain verifies;
//! `audit verify --checkpoint last` says how many entries a restore lost;
//! restore refuses a served vault, a vault holding data and a file that is
//! not an arkku database; backup never overwrites. On PostgreSQL the
//! commands point to pg_dump and pg_restore, and the README's procedure
//! with them is run end to end.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use arkku::{crypto::SecretKey, domain::Role};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::helpers::{
    fresh_postgres_database, http_client, issue_token, send, Backend, Env, Ran, Scenario, Tok,
};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![verify_against_the_last_checkpoint_says_nothing_is_missing_or_how_many_entries_are]
}

/// `arkku backup` and `restore` copy SQLite files; on PostgreSQL they point
/// to pg_dump, tested in [`postgres_tests`].
pub fn sqlite_tests() -> Vec<Scenario> {
    scenarios![
        a_backup_under_write_load_restores_every_write_acknowledged_before_it_and_the_last_checkpoint_counts_what_was_lost,
        restore_refuses_a_served_vault_a_vault_holding_data_and_files_that_are_not_arkku_databases,
    ]
}

/// PostgreSQL's backup procedure (README): pg_dump, pg_restore, migrate, verify.
pub fn postgres_tests() -> Vec<Scenario> {
    scenarios![
        on_postgresql_backup_and_restore_point_to_pg_dump_and_its_procedure_restores_everything
    ]
}

const KEY_FILES: [&str; 3] = ["root.key", "issuer.key", "audit.key"];

/// Settings that point `arkku` at another data dir and its SQLite file.
fn vault_at(data: &Path) -> [(&'static str, String); 2] {
    [
        ("ARKKU_DATA_DIR", data.display().to_string()),
        (
            "ARKKU_DATABASE_URL",
            format!("sqlite://{}", data.join("arkku.db").display()),
        ),
    ]
}

fn pairs<'a>(v: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn service(key: &SecretKey) -> String {
    issue_token(
        key,
        Tok {
            role: Role::Service,
            sub: "crm-sync",
            purposes: &["support"],
            channel: None,
        },
    )
}

fn agent(key: &SecretKey) -> String {
    issue_token(
        key,
        Tok {
            role: Role::Agent,
            sub: "agent-1",
            purposes: &["support"],
            channel: Some("phone"),
        },
    )
}

fn customer(key: &SecretKey, id: &str) -> String {
    issue_token(
        key,
        Tok {
            role: Role::Customer,
            sub: id,
            purposes: &[],
            channel: None,
        },
    )
}

/// A write the server acknowledged with a 2xx.
#[derive(Debug, Clone)]
enum Write {
    Customer { id: String, name: String },
    Consent { customer: String, consent: String },
}

/// Creates a customer; `Some(id)` on 201.
async fn create(
    client: &Client,
    base: &str,
    token: &str,
    name: &str,
    phone: &str,
) -> Option<String> {
    let body = json!({"display_name": name, "contacts": [
        {"channel": "phone", "value": phone},
        {"channel": "email", "value": format!("{}@example.com", name.replace(' ', "."))}
    ]});
    let r = send(
        client
            .post(format!("{base}/v1/customers"))
            .bearer_auth(token)
            .json(&body),
    )
    .await;
    assert!(r.status.as_u16() < 500, "create: {} {}", r.status, r.text);
    (r.status == StatusCode::CREATED).then(|| r.json["id"].as_str().expect("id").to_owned())
}

/// An agent records the customer's spoken grant; `Some(consent_id)` on 201.
async fn grant(client: &Client, base: &str, token: &str, id: &str) -> Option<String> {
    let body = json!({"purpose": "cross_channel", "channel": "email", "action": "grant",
        "method": "spoken", "evidence": {"notice_id": "privacy-2026", "notice_version": "3"}});
    let r = send(
        client
            .post(format!("{base}/v1/customers/{id}/consents"))
            .bearer_auth(token)
            .json(&body),
    )
    .await;
    assert!(r.status.as_u16() < 500, "grant: {} {}", r.status, r.text);
    (r.status == StatusCode::CREATED).then(|| {
        r.json["consent_id"]
            .as_str()
            .expect("consent_id")
            .to_owned()
    })
}

/// Asserts the command succeeded and returns its stdout as JSON.
#[track_caller]
fn ok_json(r: &Ran, what: &str) -> Value {
    assert!(
        r.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        r.status,
        r.stdout,
        r.stderr
    );
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{what} prints JSON ({e}): {}", r.stdout))
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

/// Copies the key files, as an operator restores them from their own backup.
fn copy_keys(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for k in KEY_FILES {
        std::fs::copy(from.join(k), to.join(k)).expect("copy key file");
    }
}

async fn a_backup_under_write_load_restores_every_write_acknowledged_before_it_and_the_last_checkpoint_counts_what_was_lost(
    b: Backend,
) {
    let env = Env::new(b).await;
    // Checkpoint files go outside the data dir, as on other storage.
    let kept = env.dir.path().join("kept-checkpoints");
    let kept_env = [("ARKKU_CHECKPOINT_DIR", kept.display().to_string())];
    let mut server = env.serve_with(&pairs(&kept_env)).await;
    let key = env.issuer_key();
    let (service, agent) = (service(&key), agent(&key));

    // Arrange: four clients create customers and record consents until stopped.
    let started = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut load = JoinSet::new();
    for task in 0..4 {
        let (client, base) = (http_client(), server.base.clone());
        let (service, agent) = (service.clone(), agent.clone());
        let (started, stop, acked) = (started.clone(), stop.clone(), acked.clone());
        load.spawn(async move {
            // (write, acknowledged before the backup began)
            let mut writes: Vec<(Write, bool)> = Vec::new();
            for j in 0..2_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let name = format!("Backup Customer {task} {j}");
                let phone = format!("040 5{task:02}{j:04}");
                if let Some(id) = create(&client, &base, &service, &name, &phone).await {
                    let before = !started.load(Ordering::SeqCst);
                    writes.push((
                        Write::Customer {
                            id: id.clone(),
                            name,
                        },
                        before,
                    ));
                    acked.fetch_add(1, Ordering::SeqCst);
                    if let Some(consent) = grant(&client, &base, &agent, &id).await {
                        let before = !started.load(Ordering::SeqCst);
                        writes.push((
                            Write::Consent {
                                customer: id,
                                consent,
                            },
                            before,
                        ));
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            writes
        });
    }
    let wait = Instant::now();
    while acked.load(Ordering::SeqCst) < 40 {
        assert!(wait.elapsed() < Duration::from_secs(30), "the load runs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Act: back up while the load runs, then let it run on a little.
    let file = env.dir.path().join("vault.backup");
    let file_arg = file.display().to_string();
    started.store(true, Ordering::SeqCst);
    let at_start = acked.load(Ordering::SeqCst);
    let backup = env.run(&["backup", "--to", &file_arg], &[]).await;
    let summary = ok_json(&backup, "arkku backup");
    let at_end = acked.load(Ordering::SeqCst);
    let wait = Instant::now();
    while acked.load(Ordering::SeqCst) < at_end + 20 {
        assert!(wait.elapsed() < Duration::from_secs(30), "the load goes on");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut writes = Vec::new();
    while let Some(w) = load.join_next().await {
        writes.extend(w.expect("load task"));
    }
    let before: Vec<Write> = writes
        .iter()
        .filter(|(_, before)| *before)
        .map(|(w, _)| w.clone())
        .collect();
    assert!(
        before.len() >= 40,
        "{} writes before the backup",
        before.len()
    );
    assert!(
        writes.len() > before.len(),
        "writes were acknowledged during and after the backup too"
    );
    eprintln!(
        "backup under load: {} writes acknowledged before it ({at_start} counted at its start), \
         {} in all; backup: {summary}",
        before.len(),
        writes.len()
    );

    // The backup is owner-only, holds no key, and is never overwritten.
    assert_eq!(mode(&file), 0o600, "the backup is owner-only");
    let bytes = std::fs::read(&file).expect("read backup");
    for k in KEY_FILES {
        let key = std::fs::read(env.data.join(k)).expect("key file");
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_slice()),
            "{k} is not in the backup"
        );
    }
    assert!(backup.stderr.contains("NOT in it"), "{}", backup.stderr);
    let again = env.run(&["backup", "--to", &file_arg], &[]).await;
    again.assert_failed();
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(
        std::fs::read(&file).expect("read backup"),
        bytes,
        "unchanged"
    );

    // A checkpoint after the backup, kept outside the data dir; then the vault stops.
    let cp = ok_json(
        &env.run(&["audit", "checkpoint"], &pairs(&kept_env)).await,
        "arkku audit checkpoint",
    );
    server.proc.sigkill();
    let restored_head = summary["audit_head_seq"].as_i64().expect("head");
    let checkpoint_seq = cp["seq"].as_i64().expect("seq");
    assert!(
        checkpoint_seq > restored_head,
        "{checkpoint_seq} > {restored_head}"
    );

    // Restore into a new data dir, with the key files restored beside it.
    let data2 = env.dir.path().join("restored");
    copy_keys(&env.data, &data2);
    let mut at2: Vec<(&str, String)> = vault_at(&data2).to_vec();
    at2.extend(kept_env.iter().cloned());
    let restored = env
        .run(&["restore", "--from", &file_arg], &pairs(&at2))
        .await;
    let r = ok_json(&restored, "arkku restore");
    assert_eq!(r["audit_head_seq"], restored_head, "{r}");
    assert_eq!(mode(&data2.join("arkku.db")), 0o600);

    // Before serving: the last checkpoint says exactly how much is missing.
    let lost = env
        .run(&["audit", "verify", "--checkpoint", "last"], &pairs(&at2))
        .await;
    lost.assert_failed();
    let missing = checkpoint_seq - restored_head;
    let expected = format!(
        "{missing} {} after the restored head {} missing (the checkpoint of {} covers up to seq \
         {checkpoint_seq}; this database ends at seq {restored_head})",
        if missing == 1 { "entry" } else { "entries" },
        if missing == 1 { "is" } else { "are" },
        cp["at"].as_str().expect("at")
    );
    assert!(
        lost.stderr.contains(&expected),
        "{expected}\n{}",
        lost.stderr
    );
    let report: Value = serde_json::from_str(&lost.stdout).expect("verify prints JSON");
    assert_eq!(
        report["kept_checkpoint"]["loss"],
        json!({"state": "missing", "entries": missing}),
        "{report}"
    );

    // A server on the restored vault holds every write acknowledged before the backup.
    let mut server2 = env.serve_with(&pairs(&at2)).await;
    let client = http_client();
    for w in &before {
        match w {
            Write::Customer { id, name } => {
                let r = send(
                    client
                        .get(format!(
                            "{}/v1/customers/{id}?purpose=support",
                            server2.base
                        ))
                        .bearer_auth(&agent),
                )
                .await;
                assert_eq!(r.status, StatusCode::OK, "customer {id}: {}", r.text);
                assert_eq!(r.json["display_name"], name.as_str(), "{}", r.text);
            }
            Write::Consent {
                customer: id,
                consent,
            } => {
                let r = send(
                    client
                        .get(format!("{}/v1/me/consents", server2.base))
                        .bearer_auth(self::customer(&key, id)),
                )
                .await;
                assert_eq!(r.status, StatusCode::OK, "consents of {id}: {}", r.text);
                let history = r.json["history"].as_array().expect("history");
                assert!(
                    history.iter().any(|e| e["consent_id"] == consent.as_str()),
                    "consent {consent} of {id} is restored: {}",
                    r.text
                );
            }
        }
    }
    server2.proc.sigkill();

    // The restored chain verifies; the restore's loss is still reported.
    ok_json(
        &env.run(&["audit", "verify"], &pairs(&at2)).await,
        "arkku audit verify",
    );
    let still = env
        .run(&["audit", "verify", "--checkpoint", "last"], &pairs(&at2))
        .await;
    still.assert_failed();
    assert!(still.stderr.contains("missing"), "{}", still.stderr);
}

async fn restore_refuses_a_served_vault_a_vault_holding_data_and_files_that_are_not_arkku_databases(
    b: Backend,
) {
    let env = Env::new(b).await;
    let mut server = env.serve().await;
    let key = env.issuer_key();
    let id = create(
        &http_client(),
        &server.base,
        &service(&key),
        "Pena Virtanen",
        "040 123 4567",
    )
    .await
    .expect("created");
    let file = env.dir.path().join("one.backup");
    let file_arg = file.display().to_string();
    ok_json(
        &env.run(&["backup", "--to", &file_arg], &[]).await,
        "backup",
    );
    let db = env.data.join("arkku.db");

    // While served: refused, naming what to do.
    let r = env.run(&["restore", "--from", &file_arg], &[]).await;
    r.assert_failed();
    assert!(r.stderr.contains("is being served"), "{}", r.stderr);
    assert!(
        r.stderr.contains("Stop every `arkku serve`"),
        "{}",
        r.stderr
    );

    // Files that are not arkku databases, into a new data dir: refused, nothing written.
    let other = env.dir.path().join("other");
    let text = env.dir.path().join("notes.txt");
    std::fs::write(&text, "not a database at all, just some text".repeat(200)).expect("write");
    let foreign = env.dir.path().join("foreign.db");
    {
        let c = rusqlite::Connection::open(&foreign).expect("sqlite");
        c.execute_batch("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');")
            .expect("foreign schema");
    }
    for (path, why) in [
        (&text, "file is not a database"),
        (&foreign, "it has no migrations table"),
    ] {
        let r = env
            .run(
                &["restore", "--from", &path.display().to_string()],
                &pairs(&vault_at(&other)),
            )
            .await;
        r.assert_failed();
        assert!(
            r.stderr.contains("is not an arkku SQLite database") && r.stderr.contains(why),
            "{}",
            r.stderr
        );
        assert!(!other.join("arkku.db").exists(), "nothing is put in place");
    }

    // Stopped but holding data: refused without --force, and left as it was.
    server.proc.sigkill();
    let before = std::fs::read(&db).expect("read db");
    let r = env.run(&["restore", "--from", &file_arg], &[]).await;
    r.assert_failed();
    assert!(
        r.stderr.contains("already holds a vault") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert!(std::fs::read(&db).expect("read db") == before, "untouched");

    // With --force it is replaced, and the old file is kept aside.
    let r = env
        .run(&["restore", "--from", &file_arg, "--force"], &[])
        .await;
    ok_json(&r, "restore --force");
    let aside: Vec<PathBuf> = std::fs::read_dir(&env.data)
        .expect("data dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains("arkku.db.replaced-"))
        .collect();
    assert!(!aside.is_empty(), "the replaced file is kept aside");
    let server = env.serve().await;
    let r = send(
        http_client()
            .get(format!("{}/v1/customers/{id}?purpose=support", server.base))
            .bearer_auth(agent(&key)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    drop(server);
    env.verify_ok().await;
}

/// Deletes the audit entries (and stored checkpoints) after `seq`, as a
/// restore of an older copy would leave the log.
async fn cut_tail(env: &Env, seq: i64) {
    let db = env.db().await;
    arkku::on_db!(&db, pool => {
        sqlx::query("DELETE FROM audit_checkpoints WHERE seq > $1")
            .bind(seq)
            .execute(pool)
            .await
            .expect("delete checkpoints");
        sqlx::query("DELETE FROM audit_log WHERE seq > $1")
            .bind(seq)
            .execute(pool)
            .await
            .expect("delete tail");
    });
    db.close().await;
}

async fn verify_against_the_last_checkpoint_says_nothing_is_missing_or_how_many_entries_are(
    b: Backend,
) {
    let env = Env::new(b).await;
    let kept = env.dir.path().join("kept");
    let kept_env = [("ARKKU_CHECKPOINT_DIR", kept.display().to_string())];
    // Also a checkpoint every 4 entries, written by serve itself.
    let mut serve_env = kept_env.to_vec();
    serve_env.push(("ARKKU_AUDIT_CHECKPOINT_EVERY", "4".to_owned()));
    let mut server = env.serve_with(&pairs(&serve_env)).await;
    let token = service(&env.issuer_key());
    for k in 0..9 {
        create(
            &http_client(),
            &server.base,
            &token,
            &format!("Tail {k}"),
            &format!("040 77{k:05}"),
        )
        .await
        .expect("created");
    }
    server.proc.sigkill();
    let written: Vec<String> = std::fs::read_dir(&kept)
        .expect("serve writes checkpoint files")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        written
            .iter()
            .any(|n| n.starts_with("checkpoint-00000000000000000004-")),
        "serve wrote the checkpoint of seq 4: {written:?}"
    );
    let cp = ok_json(
        &env.run(&["audit", "checkpoint"], &pairs(&kept_env)).await,
        "audit checkpoint",
    );
    let head = cp["seq"].as_i64().expect("seq");
    assert!(head >= 9, "{cp}");

    // Intact: nothing is missing.
    let r = env
        .run(
            &["audit", "verify", "--checkpoint", "last"],
            &pairs(&kept_env),
        )
        .await;
    let report = ok_json(&r, "verify --checkpoint last");
    assert!(r.stderr.contains("nothing is missing"), "{}", r.stderr);
    assert_eq!(
        report["kept_checkpoint"]["loss"],
        json!({"state": "nothing"})
    );

    // The last three entries gone: three are missing, and the exit code says so.
    cut_tail(&env, head - 3).await;
    let r = env
        .run(
            &["audit", "verify", "--checkpoint", "last"],
            &pairs(&kept_env),
        )
        .await;
    r.assert_failed();
    let expected = format!(
        "3 entries after the restored head are missing (the checkpoint of {} covers up to seq \
         {head}; this database ends at seq {})",
        cp["at"].as_str().expect("at"),
        head - 3
    );
    assert!(r.stderr.contains(&expected), "{expected}\n{}", r.stderr);
    // The same checkpoint passed as a file says the same.
    let file = kept.join(format!(
        "checkpoint-{head:020}-{:020}.json",
        cp["at_micros"].as_i64().expect("at_micros")
    ));
    let r = env
        .run(
            &[
                "audit",
                "verify",
                "--checkpoint",
                &file.display().to_string(),
            ],
            &[],
        )
        .await;
    r.assert_failed();
    assert!(r.stderr.contains(&expected), "{}", r.stderr);

    // No checkpoint directory: a clear error, not a pass.
    let r = env
        .run(
            &["audit", "verify", "--checkpoint", "last"],
            &[("ARKKU_CHECKPOINT_DIR", "nowhere")],
        )
        .await;
    r.assert_failed();
    assert!(r.stderr.contains("checkpoint directory"), "{}", r.stderr);
}

async fn on_postgresql_backup_and_restore_point_to_pg_dump_and_its_procedure_restores_everything(
    b: Backend,
) {
    let env = Env::new(b).await;
    let out = env.dir.path().join("arkku.dump");
    let out_arg = out.display().to_string();
    let r = env.run(&["backup", "--to", &out_arg], &[]).await;
    r.assert_failed();
    assert!(r.stderr.contains("pg_dump -Fc"), "{}", r.stderr);
    assert!(!out.exists(), "nothing written");
    let r = env.run(&["restore", "--from", &out_arg], &[]).await;
    r.assert_failed();
    assert!(
        r.stderr.contains("pg_restore") && r.stderr.contains("arkku migrate"),
        "{}",
        r.stderr
    );

    // The README's procedure: pg_dump -Fc, pg_restore into a new database,
    // arkku migrate, arkku audit verify --checkpoint last.
    let kept = env.dir.path().join("kept");
    let kept_env = [("ARKKU_CHECKPOINT_DIR", kept.display().to_string())];
    let mut server = env.serve_with(&pairs(&kept_env)).await;
    let key = env.issuer_key();
    let mut ids = Vec::new();
    for k in 0..5 {
        let id = create(
            &http_client(),
            &server.base,
            &service(&key),
            &format!("Dump {k}"),
            &format!("040 66{k:05}"),
        )
        .await
        .expect("created");
        grant(&http_client(), &server.base, &agent(&key), &id)
            .await
            .expect("granted");
        ids.push(id);
    }
    ok_json(
        &env.run(&["audit", "checkpoint"], &pairs(&kept_env)).await,
        "audit checkpoint",
    );
    let dump = std::process::Command::new("pg_dump")
        .args(["-Fc", "-f", &out_arg, &env.database_url])
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    server.proc.sigkill();
    let target = fresh_postgres_database().await;
    let restore = std::process::Command::new("pg_restore")
        .args(["--no-owner", "-d", &target, &out_arg])
        .output()
        .expect("pg_restore runs");
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let mut at = vec![("ARKKU_DATABASE_URL", target.clone())];
    at.extend(kept_env.iter().cloned());
    let r = env.run(&["migrate"], &pairs(&at)).await;
    assert!(r.status.success(), "{}", r.stderr);
    let r = env
        .run(&["audit", "verify", "--checkpoint", "last"], &pairs(&at))
        .await;
    ok_json(&r, "verify --checkpoint last on the restored database");
    assert!(r.stderr.contains("nothing is missing"), "{}", r.stderr);
    let server = env.serve_with(&pairs(&at)).await;
    for id in &ids {
        let r = send(
            http_client()
                .get(format!("{}/v1/customers/{id}?purpose=support", server.base))
                .bearer_auth(agent(&key)),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}
