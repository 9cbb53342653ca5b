//! The benchmark harness cannot rot: it runs end to end with tiny figures on
//! each backend. No timing is asserted, only that every scenario ran, hit its
//! real path without failures, and reported in the documented JSON shape.
//!
//! arkku-bench needs the `bench` cargo feature; the crate's dev-dependency on
//! itself with that feature (Cargo.toml) is what builds it for `cargo test`,
//! so this runs with the rest of the suite, with no flag to remember.

use serde_json::Value;

use crate::helpers::{postgres_url, Backend, Scenario};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        the_benchmark_harness_runs_every_scenario_end_to_end,
        the_token_burst_scenario_runs_end_to_end,
    ]
}

/// `arkku-bench args…` on backend `b` in `dir`, with no `ARKKU_*` from outside.
fn bench_command(b: Backend, dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_arkku-bench"));
    cmd.args(args).current_dir(dir);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ARKKU_") {
            cmd.env_remove(key);
        }
    }
    match b {
        Backend::Sqlite => {
            cmd.args(["--database", "sqlite"]);
        }
        Backend::Postgres => {
            let url = postgres_url().expect("PostgreSQL runs only when configured");
            cmd.args(["--database", "postgres", "--postgres", &url]);
        }
    }
    cmd
}

async fn the_token_burst_scenario_runs_end_to_end(b: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let json_arg = json.to_str().expect("utf-8 path").to_owned();
    let mut cmd = bench_command(
        b,
        dir.path(),
        &[
            "--customers",
            "30",
            "--seconds",
            "0.3",
            "--concurrency",
            "2",
            "--scenarios",
            "token_burst",
            "--token-bursts",
            "1",
            "--json",
            &json_arg,
        ],
    );
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run arkku-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "arkku-bench failed\n{stderr}");
    // The burst was answered, mostly 429 before argon2 ran.
    assert!(stderr.contains("429 ×"), "{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json file")).expect("JSON");
    let rows = report["scenarios"].as_array().expect("scenarios");
    let names: Vec<&str> = rows.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "profile_backfill",
            "profile_read_alone",
            "read_during_burst",
            "oauth_token",
            "argon2_verify"
        ]
    );
    for s in &rows[1..4] {
        assert_eq!(s["failed"], 0, "{s}");
        assert!(s["p99_ms"].as_f64().is_some_and(|p| p > 0.0), "{s}");
        assert!(s["throughput"].as_f64().unwrap() > 0.0, "{s}");
    }
    assert!(
        rows[4]["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{}",
        rows[4]
    );
}

async fn the_benchmark_harness_runs_every_scenario_end_to_end(b: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let json_arg = json.to_str().expect("utf-8 path").to_owned();
    let mut cmd = bench_command(
        b,
        dir.path(),
        &[
            "--customers",
            "30",
            "--seconds",
            "0.3",
            "--concurrency",
            "2",
            "--export-interactions",
            "12",
            "--sweep-records",
            "200",
            "--audit-entries",
            "500",
            "--json",
            &json_arg,
        ],
    );
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run arkku-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "arkku-bench failed\n{stdout}\n{stderr}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json file")).expect("JSON");
    assert!(
        report["machine"]["cpus"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let all = [
        "profile_backfill",
        "lookup",
        "profile_read",
        "consent_grant",
        "interaction_create",
        "export",
        "export_typical",
        "retention_sweep",
        "audit_append",
        "audit_verify",
    ];
    assert_eq!(names, all, "every scenario by default, in order");
    for name in all {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{name} "))),
            "the table has {name}: {stdout}"
        );
    }
    for s in scenarios {
        for key in [
            "name",
            "backend",
            "throughput",
            "p50_ms",
            "p99_ms",
            "p999_ms",
            "baseline_throughput",
            "ratio",
            "rss_mb",
            "failed",
            "cpu_us_per_op",
            "baseline_cpu_us_per_op",
            "client_cpu_us_per_op",
        ] {
            assert!(s.get(key).is_some(), "{key} missing in {s}");
        }
        assert_eq!(s["backend"], b.name(), "{s}");
        assert!(s["throughput"].as_f64().unwrap() > 0.0, "{s}");
        assert_eq!(s["failed"], 0, "{s}");
        assert!(s["rss_mb"].as_f64().unwrap() > 0.0, "{s}");
        let one_shot = [
            "profile_backfill",
            "retention_sweep",
            "audit_append",
            "audit_verify",
        ]
        .contains(&s["name"].as_str().unwrap());
        assert_eq!(
            s["p99_ms"].is_null(),
            one_shot,
            "latencies for driven scenarios only: {s}"
        );
        for key in ["cpu_us_per_op", "client_cpu_us_per_op"] {
            // Read in ticks of 10 ms, so a tiny run may measure zero.
            let cpu = s[key].as_f64();
            assert_eq!(cpu.is_none(), one_shot, "{key} for driven scenarios: {s}");
            assert!(cpu.unwrap_or(0.0) >= 0.0, "{s}");
        }
    }
    let by_name = |n: &str| &scenarios[names.iter().position(|x| *x == n).unwrap()];
    assert!(
        by_name("lookup")["ratio"].as_f64().is_some(),
        "lookup has a baseline"
    );
    assert!(
        by_name("consent_grant")["ratio"].is_null(),
        "consent_grant has none"
    );
    assert!(by_name("lookup")["baseline_cpu_us_per_op"]
        .as_f64()
        .is_some());
    assert!(by_name("consent_grant")["baseline_cpu_us_per_op"].is_null());
}
