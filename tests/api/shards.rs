//! A vault split over two databases standing in for two shards: each keeps
//! its own audit chain, `arkku audit tie` binds them with signed ties, and
//! `arkku audit verify --shard …` checks both chains and the ties, finding
//! a tie deleted from one shard, a shard's tail cut back past a kept tie, a
//! tie signed by another key, a shard left out, and an edited entry.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, Ran, TestApp};

pub fn tests() -> Vec<crate::helpers::Scenario> {
    crate::scenarios![two_shards_are_tied_and_verified_together]
}

/// Two vaults whose audit keys are the same file, as every shard of one
/// vault shares its keys.
async fn two_shards(b: Backend, keys: &Path) -> (TestApp, TestApp) {
    let key = keys.join("audit.key");
    let a = spawn_app_with(b, |c| c.audit_key_file = key.clone()).await;
    let key = keys.join("audit.key");
    let shard_b = spawn_app_with(b, |c| c.audit_key_file = key.clone()).await;
    (a, shard_b)
}

fn shard_args<'a>(args: &mut Vec<&'a str>, specs: &'a [String]) {
    for s in specs {
        args.push("--shard");
        args.push(s);
    }
}

/// Runs `arkku audit <cmd> --shard … extra…` with the shared audit key.
async fn audit(app: &TestApp, key: &Path, cmd: &str, specs: &[String], extra: &[&str]) -> Ran {
    let mut args = vec!["audit", cmd];
    shard_args(&mut args, specs);
    args.extend_from_slice(extra);
    let key = key.to_string_lossy().into_owned();
    app.cli_proc_with(&args, &[("ARKKU_AUDIT_KEY_FILE", &key)])
        .finish()
        .await
}

async fn create(app: &TestApp, n: usize) {
    let token = app.agent("email");
    for i in 0..n {
        app.create_customer_ok(
            &token,
            json!({"display_name": format!("Shard customer {i}"),
                   "contacts": [{"channel": "email", "value": format!("s{i}@example.com")}]}),
        )
        .await;
    }
}

/// Makes a tie, asserting success; returns it and the file it was kept in.
async fn tie(app: &TestApp, key: &Path, specs: &[String], keep: &Path) -> (Value, PathBuf) {
    let r = audit(app, key, "tie", specs, &[]).await;
    assert!(r.status.success(), "{}\n{}", r.stdout, r.stderr);
    let t: Value = serde_json::from_str(&r.stdout).expect("a tie as JSON");
    let path = keep.join(format!("tie-{}.json", t["n"]));
    std::fs::write(&path, &r.stdout).expect("keep the tie");
    (t, path)
}

async fn verify_ok(app: &TestApp, key: &Path, specs: &[String], extra: &[&str]) -> Value {
    let r = audit(app, key, "verify", specs, extra).await;
    assert!(r.status.success(), "{}\n{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).expect("a JSON report")
}

/// Runs verify expecting failure; returns its problems.
async fn verify_fails(app: &TestApp, key: &Path, specs: &[String], extra: &[&str]) -> String {
    let r = audit(app, key, "verify", specs, extra).await;
    r.assert_failed();
    let report: Value = serde_json::from_str(&r.stdout).expect("a JSON report");
    assert_eq!(report["ok"], false, "{report}");
    let problems = report["problems"].to_string();
    assert!(
        r.stderr.contains("does not verify"),
        "the command says so: {}",
        r.stderr
    );
    problems
}

async fn two_shards_are_tied_and_verified_together(b: Backend) {
    // Arrange: two shards with entries of their own, sharing one audit key.
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("audit.key");
    let (a, sb) = two_shards(b, keys.path()).await;
    let specs = vec![
        format!("a={}", a.database_url),
        format!("b={}", sb.database_url),
    ];
    create(&a, 3).await;
    create(&sb, 2).await;

    // Act: tie them, write more, tie again.
    let (t1, _) = tie(&a, &key, &specs, keys.path()).await;
    create(&a, 1).await;
    create(&sb, 2).await;
    let (t2, kept2) = tie(&a, &key, &specs, keys.path()).await;

    // Assert: each tie names each shard's head as it was, and chains to the one before.
    assert_eq!(t1["n"], 1);
    assert_eq!(t1["format"], "arkku-audit-tie/1");
    assert_eq!(t1["prev"], "0".repeat(64));
    let names: Vec<&str> = t1["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(t2["n"], 2);
    assert_ne!(t2["prev"], t1["prev"]);
    for (i, app) in [&a, &sb].into_iter().enumerate() {
        assert_eq!(
            t2["shards"][i]["seq"].as_i64().unwrap(),
            app.audit_count().await,
            "tie 2 names shard {i}'s head: {t2}"
        );
        assert_eq!(
            app.count("audit_ties").await,
            2,
            "every shard holds every tie"
        );
    }
    let report = verify_ok(&a, &key, &specs, &["--tie", kept2.to_str().unwrap()]).await;
    assert_eq!(report["ok"], true);
    assert_eq!(report["ties_checked"], 2);
    assert_eq!(report["last_tie"], 2);
    assert_eq!(report["shards"][0]["name"], "a");
    assert_eq!(
        report["shards"][1]["entries_checked"].as_i64().unwrap(),
        sb.audit_count().await
    );

    // A tie deleted from one shard is found; the next tie run puts it back.
    create(&sb, 2).await;
    sb.exec("DELETE FROM audit_ties WHERE n = 2").await;
    let problems = verify_fails(&a, &key, &specs, &[]).await;
    assert!(
        problems.contains("tie 2 is missing from shard b"),
        "{problems}"
    );
    let (t3, kept3) = tie(&a, &key, &specs, keys.path()).await;
    assert_eq!(t3["n"], 3);
    assert_eq!(sb.count("audit_ties").await, 3, "tie 2 was copied back");
    verify_ok(&a, &key, &specs, &[]).await;

    // A shard's tail cut back, with the newest tie removed from both shards:
    // the stored ties still verify (tie 2 is intact), the kept tie 3 does not.
    let head_b = sb.audit_count().await;
    let cut_to = t2["shards"][1]["seq"].as_i64().unwrap();
    assert!(cut_to < head_b, "entries after tie 2 exist on shard b");
    let cut = format!("DELETE FROM audit_log WHERE seq > {cut_to}");
    sb.exec(&cut).await;
    for app in [&a, &sb] {
        app.exec("DELETE FROM audit_ties WHERE n = 3").await;
    }
    verify_ok(&a, &key, &specs, &[]).await;
    let problems = verify_fails(&a, &key, &specs, &["--tie", kept3.to_str().unwrap()]).await;
    assert!(
        problems.contains("the kept tie 3 is missing from every shard: ties after 2 were lost"),
        "{problems}"
    );
    let lost = head_b - cut_to;
    assert!(
        problems.contains(&format!(
            "shard b: entry {head_b} is missing, though the kept tie 3 covers it (the shard ends \
             at entry {cut_to}: {lost} entries were lost)"
        )),
        "{problems}"
    );

    // A shard left out, or another vault's key, is refused.
    let problems = verify_fails(&a, &key, &specs[..1], &[]).await;
    assert!(
        problems.contains("tie 1 covers the shards a, b, but a were given"),
        "{problems}"
    );
    let r = audit(&a, &key, "tie", &specs[..1], &[]).await;
    r.assert_failed();
    assert!(r.stderr.contains("at least 2"), "{}", r.stderr);
    let other = keys.path().join("other-audit.key");
    let problems = verify_fails(&a, &other, &specs, &[]).await;
    assert!(
        problems.contains("tie 1 is not signed by this vault's audit key"),
        "{problems}"
    );

    // An edited entry on one shard is named with its shard.
    a.exec("UPDATE audit_log SET detail = '{}' WHERE seq = 2")
        .await;
    let problems = verify_fails(&a, &key, &specs, &[]).await;
    assert!(problems.contains("shard a: "), "{problems}");
    assert!(
        problems.contains("shard a: entry 2 holds another hash than tie")
            || problems.contains("content does not match"),
        "{problems}"
    );

    // A bad --shard argument is a clear error, not a panic.
    for bad in ["a", "A=sqlite://x", "a=x"] {
        let r = audit(&a, &key, "verify", &[bad.to_owned()], &[]).await;
        r.assert_failed();
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}
