//! Black-box tests through the HTTP API and the CLI, all in one binary.
//!
//! Every scenario runs on SQLite, and again on PostgreSQL when
//! `ARKKU_TEST_POSTGRES_URL` is set (each test gets a fresh database). Without
//! it the PostgreSQL runs are listed as ignored and a note says so. A few
//! scenarios (`one_backend` below: several nodes on one database, copying a
//! SQLite file, PostgreSQL's own backup tools) exist for one database only.

// A panic in a test is a failed assertion. (`allow-unwrap-in-tests` in
// clippy.toml does not reach this binary: with `harness = false` it is not
// compiled with cfg(test).)
#![allow(clippy::unwrap_used)]

mod helpers;

mod audit;
mod audit_export;
mod audit_index;
mod audit_pages;
mod auth;
mod backup;
mod bench;
mod cli;
mod clients;
mod clock;
mod consents;
mod console;
mod customers;
mod dsr;
mod dsr_register;
mod durability;
mod edge;
mod export_zip;
mod fleet;
mod input;
mod interactions;
mod issuers;
mod keys;
mod keys_page;
mod limits;
mod logs;
mod lookup;
mod metrics;
mod oauth;
mod openapi;
mod privacy_page;
mod profile_docs;
mod retention;
mod schema;
mod shards;
mod shutdown;
mod sign_in;
mod startup;
mod storage;
mod subjects;
mod truthful;
mod users;

use helpers::{Backend, Scenario};
use libtest_mimic::{Arguments, Trial};

/// Lists a module's scenarios: `scenarios![a, b]` → `[("a", |b| Box::pin(a(b))), …]`.
#[macro_export]
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|b| Box::pin($name(b))) as $crate::helpers::ScenarioFn)),*]
    };
}

fn main() {
    let args = Arguments::from_args();
    let postgres = helpers::postgres_url();
    if postgres.is_none() {
        println!(
            "\nnote: PostgreSQL run SKIPPED: set ARKKU_TEST_POSTGRES_URL (for example \
             postgres://postgres@127.0.0.1:5432/test) to run every test on PostgreSQL too.\n\
             note: schema comparison SKIPPED: {} needs both databases.\n\
             note: fleet, the pg_dump backup and the projector's row locks SKIPPED: they run on PostgreSQL only.\n",
            schema::NAME
        );
    }
    let all: Vec<(&str, Vec<Scenario>)> = vec![
        ("auth", auth::tests()),
        ("backup", backup::tests()),
        ("consents", consents::tests()),
        ("customers", customers::tests()),
        ("dsr", dsr::tests()),
        ("dsr_register", dsr_register::tests()),
        ("export_zip", export_zip::tests()),
        ("input", input::tests()),
        ("issuers", issuers::tests()),
        ("interactions", interactions::tests()),
        ("keys", keys::tests()),
        ("limits", limits::tests()),
        ("logs", logs::tests()),
        ("lookup", lookup::tests()),
        ("openapi", openapi::tests()),
        ("retention", retention::tests()),
        ("sign_in", sign_in::tests()),
        ("storage", storage::tests()),
        ("truthful", truthful::tests()),
        ("cli", cli::tests()),
        ("startup", startup::tests()),
        ("clock", clock::tests()),
        ("audit", audit::tests()),
        ("audit_export", audit_export::tests()),
        ("audit_index", audit_index::tests()),
        ("bench", bench::tests()),
        ("durability", durability::tests()),
        ("edge", edge::tests()),
        ("users", users::tests()),
        ("clients", clients::tests()),
        ("oauth", oauth::tests()),
        ("console", console::tests()),
        ("privacy_page", privacy_page::tests()),
        ("keys_page", keys_page::tests()),
        ("audit_pages", audit_pages::tests()),
        ("subjects", subjects::tests()),
        ("shards", shards::tests()),
        ("shutdown", shutdown::tests()),
        ("metrics", metrics::tests()),
        ("profile_docs", profile_docs::tests()),
    ];
    // Scenarios of one database only: several hosts on one database
    // (PostgreSQL), copying the database file (SQLite), or the other's tools.
    let one_backend: Vec<(&str, Backend, Vec<Scenario>)> = vec![
        ("fleet", Backend::Postgres, fleet::tests()),
        ("backup", Backend::Postgres, backup::postgres_tests()),
        ("backup", Backend::Sqlite, backup::sqlite_tests()),
        (
            "profile_docs",
            Backend::Postgres,
            profile_docs::postgres_tests(),
        ),
    ];
    let mut trials = Vec::new();
    let all = all
        .into_iter()
        .flat_map(|(module, scenarios)| {
            [Backend::Sqlite, Backend::Postgres].map(|b| (module, b, scenarios.clone()))
        })
        .chain(one_backend);
    for (module, backend, scenarios) in all {
        for (name, f) in scenarios {
            let skip = backend == Backend::Postgres && postgres.is_none();
            let trial = Trial::test(format!("{}::{module}::{name}", backend.name()), move || {
                helpers::run(backend, f);
                Ok(())
            })
            .with_ignored_flag(skip);
            trials.push(trial);
        }
    }
    trials.push(schema::trial(postgres.is_some()));
    let conclusion = libtest_mimic::run(&args, trials);
    helpers::drop_test_databases();
    helpers::remove_unlimited_policies();
    conclusion.exit();
}
