//! The two dialects' migrated schemas are the same schema.
//!
//! `migrations/sqlite` and `migrations/postgres` are written by hand, side by
//! side; the names of their files matching (see `storage.rs`) says nothing
//! about what they create. This test migrates a fresh SQLite file and a fresh
//! PostgreSQL database with the vault's own migrations, reads back what each
//! engine holds, and compares, after normalising what the dialects spell
//! differently:
//!
//! - tables (the migration bookkeeping table `_sqlx_migrations` left out);
//! - columns: name, type, nullability and default. Types are mapped to one
//!   name per kind of value (the mapping is [`TYPES`]): SQLite `INTEGER` and
//!   PostgreSQL `bigint` are a 64-bit integer (PostgreSQL `integer` is not:
//!   SQLite has no 32-bit column); `TEXT` and `text` are text; SQLite `BLOB`
//!   is bytes, and so are PostgreSQL `bytea` and `uuid`, because SQLite has no
//!   UUID type and both drivers store a UUID as its 16 bytes. A PostgreSQL
//!   default's cast (`'effective'::text`) is dropped. A SQLite primary-key
//!   column counts as NOT NULL: SQLite lets a primary key that is not an
//!   `INTEGER PRIMARY KEY` hold NULL (a quirk kept for compatibility), while
//!   PostgreSQL does not. The store binds every id from a `Uuid`, so no NULL
//!   id is ever written; rebuilding four tables (one of them referenced by all
//!   the others) to add the constraint would cost an exclusive rewrite of a
//!   large vault for no behaviour (docs/decisions.md);
//! - primary keys and unique constraints (columns, in order), whatever the
//!   engine names their indexes;
//! - foreign keys (columns and the referenced table and columns);
//! - indexes made by `CREATE INDEX`: name, table, columns in order (an
//!   expression column as `(expression)`), unique, and whether partial.
//!
//! Not compared: the text of index expressions, of partial-index predicates
//! and of CHECK constraints (each engine rewrites them in its own words),
//! and constraint names (SQLite does not keep them).
//!
//! It needs both engines, so it is one trial, not one per backend; without
//! `ARKKU_TEST_POSTGRES_URL` it is listed as ignored and the run's opening
//! note says it was skipped.

use std::collections::BTreeSet;

use arkku::store::Db;
use libtest_mimic::Trial;
use sqlx::Row;

use crate::helpers;

/// What only PostgreSQL has, on purpose: the audit log's per-entry customer
/// index, which SQLite replaced by runs in migration 0020 (docs/decisions.md,
/// "The audit log's customer index in runs").
const ONLY_POSTGRES: &[&str] = &["index audit_log_customer on audit_log (customer_id, seq)"];

/// The trial's name, as filters and the skip note see it.
pub const NAME: &str = "both::schema::sqlite_and_postgres_migrate_to_the_same_schema";

/// Declared SQLite type → the kind of value, and PostgreSQL type → the kind.
/// A type in neither list stays as it is, so it never matches the other side.
pub const TYPES: &[(&str, &str)] = &[
    ("sqlite INTEGER", "int64"),
    ("sqlite TEXT", "text"),
    ("sqlite BLOB", "bytes"),
    ("postgres bigint", "int64"),
    ("postgres text", "text"),
    ("postgres bytea", "bytes"),
    ("postgres uuid", "bytes"),
];

pub fn trial(postgres: bool) -> Trial {
    Trial::test(NAME, || {
        let Some(_) = helpers::postgres_url() else {
            println!("SKIPPED: comparing the schemas needs ARKKU_TEST_POSTGRES_URL");
            return Ok(());
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(the_two_schemas_match());
        Ok(())
    })
    .with_ignored_flag(!postgres)
}

async fn the_two_schemas_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("schema.db").display()
    ))
    .await
    .expect("connect to SQLite");
    sqlite.migrate().await.expect("migrate SQLite");
    let postgres = Db::connect(&helpers::fresh_postgres_database().await)
        .await
        .expect("connect to PostgreSQL");
    postgres.migrate().await.expect("migrate PostgreSQL");

    let (Db::Sqlite(lite, _), Db::Postgres(pg)) = (&sqlite, &postgres) else {
        panic!("the backends were chosen by their URLs");
    };
    let sqlite_facts = sqlite_schema(lite).await;
    let postgres_facts = postgres_schema(pg).await;
    // Each kind of fact was read on both sides (an empty read matches too).
    for (engine, facts) in [("SQLite", &sqlite_facts), ("PostgreSQL", &postgres_facts)] {
        for kind in [" column ", " primary key ", " foreign key ", "index "] {
            assert!(
                facts.iter().any(|f| f.contains(kind)),
                "no{kind}fact was read from {engine}: {facts:#?}"
            );
        }
    }
    let only_sqlite: Vec<_> = sqlite_facts.difference(&postgres_facts).collect();
    let only_postgres: Vec<_> = postgres_facts
        .difference(&sqlite_facts)
        .filter(|f| !ONLY_POSTGRES.contains(&f.as_str()))
        .collect();
    for f in ONLY_POSTGRES {
        assert!(
            postgres_facts.contains(*f) && !sqlite_facts.contains(*f),
            "{f} is listed as PostgreSQL's alone"
        );
    }
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "migrations/sqlite and migrations/postgres create different schemas \
         (types normalised by schema::TYPES).\nonly on SQLite:\n  {}\nonly on PostgreSQL:\n  {}\n\
         Add a migration pair that makes them agree (never edit an applied one).",
        lines(&only_sqlite),
        lines(&only_postgres),
    );
    sqlite.close().await;
    postgres.close().await;
}

fn lines(facts: &[&String]) -> String {
    if facts.is_empty() {
        return "(nothing)".to_owned();
    }
    facts
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// The kind of value a column of `engine` holds (see [`TYPES`]).
fn kind(engine: &str, declared: &str) -> String {
    let key = format!("{engine} {declared}");
    TYPES
        .iter()
        .find(|(t, _)| *t == key)
        .map_or(key.clone(), |(_, k)| (*k).to_owned())
}

fn column_fact(
    table: &str,
    name: &str,
    kind: &str,
    not_null: bool,
    default: Option<&str>,
) -> String {
    let null = if not_null { "not null" } else { "null" };
    match default {
        Some(d) => format!("table {table} column {name} {kind} {null} default {d}"),
        None => format!("table {table} column {name} {kind} {null}"),
    }
}

fn index_fact(name: &str, table: &str, columns: &[String], unique: bool, partial: bool) -> String {
    format!(
        "index {name} on {table} ({}){}{}",
        columns.join(", "),
        if unique { " unique" } else { "" },
        if partial { " partial" } else { "" }
    )
}

/// What the SQLite file holds, as normalised facts.
async fn sqlite_schema(pool: &sqlx::SqlitePool) -> BTreeSet<String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .expect("SQLite tables");
    let mut facts = BTreeSet::new();
    for table in &tables {
        facts.insert(format!("table {table}"));
        let columns = sqlx::query(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info($1) ORDER BY pk",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .expect("SQLite columns");
        let mut key = Vec::new();
        for c in &columns {
            let name: String = c.get(0);
            let declared: String = c.get(1);
            let not_null: i64 = c.get(2);
            let default: Option<String> = c.get(3);
            let pk: i64 = c.get(4);
            if pk > 0 {
                key.push(name.clone());
            }
            let kind = kind("sqlite", &declared.to_ascii_uppercase());
            // A primary-key column counts as NOT NULL (see the module comment).
            let not_null = not_null == 1 || pk > 0;
            facts.insert(column_fact(
                table,
                &name,
                &kind,
                not_null,
                default.as_deref(),
            ));
        }
        if !key.is_empty() {
            facts.insert(format!("table {table} primary key ({})", key.join(", ")));
        }
        sqlite_keys_and_indexes(pool, table, &mut facts).await;
    }
    facts
}

async fn sqlite_keys_and_indexes(
    pool: &sqlx::SqlitePool,
    table: &str,
    facts: &mut BTreeSet<String>,
) {
    let fks = sqlx::query(
        "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list($1) ORDER BY id, seq",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .expect("SQLite foreign keys");
    let mut grouped: Vec<(i64, String, Vec<String>, Vec<String>)> = Vec::new();
    for r in &fks {
        let id: i64 = r.get(0);
        if grouped.last().map(|g| g.0) != Some(id) {
            grouped.push((id, r.get(1), Vec::new(), Vec::new()));
        }
        if let Some(g) = grouped.last_mut() {
            g.2.push(r.get(2));
            g.3.push(r.get(3));
        }
    }
    for (_, target, from, to) in grouped {
        facts.insert(format!(
            "table {table} foreign key ({}) references {target} ({})",
            from.join(", "),
            to.join(", ")
        ));
    }
    let indexes =
        sqlx::query("SELECT name, \"unique\", origin, partial FROM pragma_index_list($1)")
            .bind(table)
            .fetch_all(pool)
            .await
            .expect("SQLite indexes");
    for i in &indexes {
        let name: String = i.get(0);
        let unique: i64 = i.get(1);
        let origin: String = i.get(2);
        let partial: i64 = i.get(3);
        let columns: Vec<String> =
            sqlx::query("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                .bind(&name)
                .fetch_all(pool)
                .await
                .expect("SQLite index columns")
                .iter()
                .map(|c| {
                    c.get::<Option<String>, _>(0)
                        .unwrap_or_else(|| "(expression)".to_owned())
                })
                .collect();
        match origin.as_str() {
            // The primary key's own index: compared as the primary key.
            "pk" => {}
            "u" => {
                facts.insert(format!("table {table} unique ({})", columns.join(", ")));
            }
            _ => {
                facts.insert(index_fact(
                    &name,
                    table,
                    &columns,
                    unique == 1,
                    partial == 1,
                ));
            }
        }
    }
}

/// What the PostgreSQL schema holds, as normalised facts.
async fn postgres_schema(pool: &sqlx::PgPool) -> BTreeSet<String> {
    let mut facts = BTreeSet::new();
    let columns = sqlx::query(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text, \
                c.is_nullable::text = 'NO', c.column_default::text \
         FROM information_schema.columns c \
         JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
           AND c.table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("PostgreSQL columns");
    for c in &columns {
        let table: String = c.get(0);
        let name: String = c.get(1);
        let declared: String = c.get(2);
        let not_null: bool = c.get(3);
        // `'effective'::text` is `'effective'` in SQLite's words.
        let default: Option<String> =
            c.get::<Option<String>, _>(4)
                .map(|d| match d.rsplit_once("::") {
                    Some((value, _)) => value.to_owned(),
                    None => d,
                });
        facts.insert(format!("table {table}"));
        facts.insert(column_fact(
            &table,
            &name,
            &kind("postgres", &declared),
            not_null,
            default.as_deref(),
        ));
    }
    postgres_keys_and_indexes(pool, &mut facts).await;
    facts
}

async fn postgres_keys_and_indexes(pool: &sqlx::PgPool, facts: &mut BTreeSet<String>) {
    let indexes = sqlx::query(
        "SELECT i.relname::text, t.relname::text, ix.indisunique, ix.indisprimary, \
                ix.indpred IS NOT NULL, \
                EXISTS (SELECT 1 FROM pg_constraint k \
                        WHERE k.conindid = ix.indexrelid AND k.conrelid = ix.indrelid \
                          AND k.contype IN ('p', 'u', 'x')), \
                ARRAY(SELECT COALESCE(a.attname::text, '(expression)') \
                      FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                      LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
                      ORDER BY k.ord) \
         FROM pg_index ix \
         JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND t.relname <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("PostgreSQL indexes");
    for r in &indexes {
        let name: String = r.get(0);
        let table: String = r.get(1);
        let unique: bool = r.get(2);
        let primary: bool = r.get(3);
        let partial: bool = r.get(4);
        let constraint: bool = r.get(5);
        let columns: Vec<String> = r.get(6);
        let fact = match (primary, constraint) {
            (true, _) => format!("table {table} primary key ({})", columns.join(", ")),
            (false, true) => format!("table {table} unique ({})", columns.join(", ")),
            (false, false) => index_fact(&name, &table, &columns, unique, partial),
        };
        facts.insert(fact);
    }
    let fks = sqlx::query(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, \
                ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) \
                      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
                      ORDER BY k.ord), \
                ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord) \
                      JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum \
                      ORDER BY k.ord) \
         FROM pg_constraint c \
         WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace",
    )
    .fetch_all(pool)
    .await
    .expect("PostgreSQL foreign keys");
    for r in &fks {
        let table: String = r.get(0);
        let target: String = r.get(1);
        let from: Vec<String> = r.get(2);
        let to: Vec<String> = r.get(3);
        facts.insert(format!(
            "table {table} foreign key ({}) references {target} ({})",
            from.join(", "),
            to.join(", ")
        ));
    }
}
