//! The audit log's customer index, kept in runs behind the log on SQLite
//! (migration 0020): a customer's entries are all found by the compliance
//! query, oldest first, whether they were filed in a small or a merged run or
//! are still past the watermark, and the migration files an existing log as
//! one run. PostgreSQL keeps its per-entry index and files no runs: the same
//! queries find the same entries there.

use arkku::store::{
    audit::{self, AuditFilter, IndexRun},
    Db,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::audit::{seqs, walk_pages};
use crate::helpers::{self, spawn_app_with, Backend, Scenario, TestApp};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_customers_entries_are_found_in_the_runs_and_past_the_watermark_on_every_page,
        migrating_files_the_existing_log_as_one_run_and_the_query_finds_every_entry,
    ]
}

/// The customer index's watermark: the last seq its runs cover.
async fn watermark(app: &TestApp) -> i64 {
    app.scalar("SELECT COALESCE(MAX(through_seq), 0) FROM audit_customer_runs")
        .await
}

async fn a_customers_entries_are_found_in_the_runs_and_past_the_watermark_on_every_page(
    b: Backend,
) {
    let app = spawn_app_with(b, |c| c.audit_index_run = IndexRun::new(16)).await;
    let svc = app.service();
    let phone = app.agent("phone");
    let a = app
        .create_customer_ok(
            &svc,
            json!({"display_name": "A", "contacts": [{"channel": "phone", "value": "040 123 4567"}]}),
        )
        .await;
    let other = app
        .create_customer_ok(&svc, json!({"display_name": "B"}))
        .await;
    // Interleaved, one by one (single-entry batches) and then concurrently
    // (batches of several entries that cross the run's length inside them),
    // with entries of no customer between them.
    for i in 0..9 {
        app.read_customer(
            &phone,
            if i % 3 == 0 { &other } else { &a },
            "purpose=support",
        )
        .await;
        if i % 4 == 0 {
            app.lookup(&phone, "phone", "0401234567", "support").await;
        }
    }
    let mut reads = tokio::task::JoinSet::new();
    for i in 0..24 {
        let (app_addr, client, token) = (app.address.clone(), app.client.clone(), phone.clone());
        let id = if i % 2 == 0 { a.clone() } else { other.clone() };
        reads.spawn(async move {
            client
                .get(format!("{app_addr}/v1/customers/{id}?purpose=support"))
                .bearer_auth(token)
                .send()
                .await
                .expect("read")
                .status()
        });
    }
    while let Some(status) = reads.join_next().await {
        assert_eq!(status.expect("task"), StatusCode::OK);
    }
    if b == Backend::Postgres {
        assert_eq!(app.count("audit_customer_runs").await, 0, "no runs");
        assert_eq!(app.count("audit_customer_seqs").await, 0, "no runs");
    }
    // Leave the newest of A's entries past the watermark, behind a small run.
    for _ in 0..40 {
        if b == Backend::Postgres {
            break;
        }
        app.read_customer(&phone, &a, "purpose=support").await;
        let small = app
            .scalar("SELECT COUNT(*) FROM audit_customer_runs WHERE level = 0")
            .await;
        if small > 0 && watermark(&app).await < app.audit_count().await {
            break;
        }
    }

    let head = app.audit_count().await;
    let mark = match b {
        Backend::Postgres => head,
        Backend::Sqlite => watermark(&app).await,
    };
    if b == Backend::Sqlite {
        let merged = app
            .scalar("SELECT COUNT(*) FROM audit_customer_runs WHERE level = 1")
            .await;
        let small = app
            .scalar("SELECT COUNT(*) FROM audit_customer_runs WHERE level = 0")
            .await;
        // Merged runs of 16 entries, small runs of 2.
        assert!(merged >= 1, "{merged} merged runs over {head} entries");
        assert!(
            (1..8).contains(&small),
            "{small} small runs after the last merged one"
        );
        assert!(mark < head, "A's newest entry is past the watermark {mark}");
        assert!(
            head - mark < 2,
            "less than a small run past the watermark: {mark} of {head}"
        );
        // Each entry with a customer up to the watermark is filed once.
        let indexed = app
            .scalar("SELECT COUNT(DISTINCT seq) FROM audit_customer_seqs")
            .await;
        assert_eq!(
            indexed,
            app.count("audit_customer_seqs").await,
            "no entry filed twice"
        );
        let expected = app
            .scalar(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE customer_id IS NOT NULL AND seq <= {mark}"
            ))
            .await;
        assert_eq!(
            indexed, expected,
            "every entry with a customer up to {mark}"
        );
    }

    let all = walk_pages(&app, "", 1000).await;
    assert_eq!(all.len() as i64, head);
    for (id, name) in [(&a, "A"), (&other, "B")] {
        let theirs: Vec<Value> = all
            .iter()
            .filter(|e| e["customer_id"].as_str() == Some(id.as_str()))
            .cloned()
            .collect();
        let in_runs = seqs(&theirs).iter().filter(|&&s| s <= mark).count();
        if b == Backend::Sqlite {
            assert!(in_runs >= 3, "{name} has entries in runs: {in_runs}");
        }
        for limit in [1000, 3, 1] {
            let found = walk_pages(&app, &format!("customer_id={id}"), limit).await;
            assert_eq!(
                seqs(&found),
                seqs(&theirs),
                "{name}'s entries, oldest first, {limit} per page"
            );
            assert_eq!(found, theirs, "the same entries as the unfiltered log");
        }
        // Other filters narrow within the customer's entries.
        let denied = walk_pages(&app, &format!("customer_id={id}&decision=deny"), 1000).await;
        assert!(denied.is_empty(), "{name} has no denied reads");
    }
    if b == Backend::Sqlite {
        let past = seqs(&walk_pages(&app, &format!("customer_id={a}"), 1000).await);
        assert!(
            past.last().is_some_and(|&s| s > mark),
            "A's newest entry is past the watermark {mark}: {past:?}"
        );
    }
    let none = walk_pages(&app, &format!("customer_id={}", Uuid::now_v7()), 10).await;
    assert!(none.is_empty(), "an unknown customer has no entries");
    app.assert_chain_verifies().await;
}

/// A database migrated up to 0019, with a log written before the runs.
async fn database_before_the_runs(b: Backend, dir: &std::path::Path) -> Db {
    let url = match b {
        Backend::Sqlite => format!("sqlite://{}", dir.join("before.db").display()),
        Backend::Postgres => helpers::fresh_postgres_database().await,
    };
    let db = Db::connect(&url).await.expect("connect");
    let before = |mut m: sqlx::migrate::Migrator| {
        m.migrations = m
            .migrations
            .iter()
            .filter(|m| m.version < 20)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        m
    };
    match &db {
        Db::Sqlite(pool, _) => before(sqlx::migrate!("./migrations/sqlite"))
            .run(pool)
            .await
            .expect("migrate to 0019"),
        Db::Postgres(pool) => before(sqlx::migrate!("./migrations/postgres"))
            .run(pool)
            .await
            .expect("migrate to 0019"),
    }
    db
}

async fn migrating_files_the_existing_log_as_one_run_and_the_query_finds_every_entry(b: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database_before_the_runs(b, dir.path()).await;
    let customers = [Uuid::now_v7(), Uuid::now_v7()];
    // 40 entries: customer 0, customer 1 and no customer in turn. Only the
    // columns matter here, not the chain.
    const INSERT: &str = "INSERT INTO audit_log (seq, at, actor_sub, actor_role, action, \
                          customer_id, decision, request_id, detail, prev_hash, hash) \
                          VALUES ($1, 0, 'test', 'admin', 'customer.read', $2, 'allow', 'r', \
                          '{}', $3, $3)";
    for seq in 1..=40_i64 {
        let customer = customers.get(seq as usize % 3).copied();
        arkku::on_db!(&db, pool => sqlx::query(INSERT)
            .bind(seq)
            .bind(customer)
            .bind(vec![0u8; 32])
            .execute(pool)
            .await
            .map(drop))
        .expect("insert");
    }
    db.migrate().await.expect("migrate");
    let runs = arkku::on_db!(&db, pool =>
        sqlx::query_as::<_, (i64, i64)>("SELECT through_seq, level FROM audit_customer_runs")
            .fetch_all(pool)
            .await)
    .expect("runs");
    match b {
        Backend::Sqlite => assert_eq!(runs, vec![(40, 1)], "the whole log, as one merged run"),
        Backend::Postgres => assert!(runs.is_empty(), "PostgreSQL files no runs"),
    }
    for (i, c) in customers.iter().enumerate() {
        let expected: Vec<i64> = (1..=40).filter(|s| s % 3 == i as i64).collect();
        for after in [0, 17] {
            let filter = AuditFilter {
                after_seq: after,
                customer_id: Some(*c),
                limit: 100,
                ..AuditFilter::default()
            };
            let found: Vec<i64> = audit::query(&db, &filter)
                .await
                .expect("query")
                .iter()
                .map(|r| r.seq)
                .collect();
            let want: Vec<i64> = expected.iter().copied().filter(|&s| s > after).collect();
            assert_eq!(found, want, "customer {i} after {after}");
        }
    }
    let filed = arkku::on_db!(&db, pool =>
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_customer_seqs")
            .fetch_one(pool)
            .await)
    .expect("count");
    let expected = if b == Backend::Sqlite { 27 } else { 0 };
    assert_eq!(
        filed, expected,
        "each of the 27 entries with a customer, once (SQLite)"
    );
    db.close().await;
}
