//! Start-up as an operator meets it: a PostgreSQL database that does not
//! exist yet is created (as SQLite creates its file), a database that cannot
//! be opened leaves no key file behind, and the warning for each generated
//! key says what losing that key costs.

use std::path::Path;

use tempfile::TempDir;

use crate::helpers::{
    free_port, spawn_arkku, unborn_postgres_database, Backend, Proc, Scenario, START_LIMIT,
};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        serve_creates_a_database_that_does_not_exist_yet,
        a_database_that_cannot_be_opened_leaves_no_key_file_behind,
        each_generated_key_warns_with_what_losing_it_costs,
    ]
}

/// The key files `serve` generates in an empty data dir.
const KEY_FILES: [&str; 3] = ["root.key", "issuer.key", "audit.key"];

/// A working directory and a log directory, both empty.
struct Dirs {
    work: TempDir,
    logs: TempDir,
}

impl Dirs {
    fn new() -> Self {
        Dirs {
            work: tempfile::tempdir().expect("tempdir"),
            logs: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn data(&self) -> std::path::PathBuf {
        self.work.path().join("arkku-data")
    }

    /// Starts `arkku serve` on a free port with `env`; returns it and its base URL.
    fn serve(&self, name: &str, env: &[(&str, &str)]) -> (Proc, String) {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut vars = vec![("ARKKU_LISTEN", listen.as_str())];
        vars.extend_from_slice(env);
        let proc = spawn_arkku(&["serve"], self.work.path(), self.logs.path(), name, vars);
        (proc, format!("http://{listen}"))
    }
}

fn key_files_in(dir: &Path) -> Vec<&'static str> {
    KEY_FILES
        .into_iter()
        .filter(|k| dir.join(k).exists())
        .collect()
}

async fn serve_creates_a_database_that_does_not_exist_yet(b: Backend) {
    let dirs = Dirs::new();
    let url = match b {
        Backend::Sqlite => format!(
            "sqlite://{}",
            dirs.work.path().join("not/yet/arkku.db").display()
        ),
        Backend::Postgres => unborn_postgres_database(),
    };
    let (mut server, base) = dirs.serve("serve", &[("ARKKU_DATABASE_URL", &url)]);
    server.wait_healthy(&base, START_LIMIT).await;
    let ready = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "{}", server.stderr());
    if b == Backend::Postgres {
        let log = server.stderr();
        assert!(
            log.contains("created the PostgreSQL database"),
            "says it created the database: {log}"
        );
        assert!(
            !log.contains("postgres://"),
            "the URL stays out of the log: {log}"
        );
    }
    assert_eq!(
        key_files_in(&dirs.data()),
        KEY_FILES,
        "keys after the database"
    );
}

async fn a_database_that_cannot_be_opened_leaves_no_key_file_behind(b: Backend) {
    let dirs = Dirs::new();
    let url = match b {
        // The database's directory would have to be created inside a file.
        Backend::Sqlite => {
            let blocker = dirs.work.path().join("a-file");
            std::fs::write(&blocker, b"not a directory").expect("write");
            format!("sqlite://{}", blocker.join("arkku.db").display())
        }
        // Nobody listens there.
        Backend::Postgres => format!("postgres://postgres@127.0.0.1:{}/arkku", free_port()),
    };
    let (server, _) = dirs.serve("serve", &[("ARKKU_DATABASE_URL", &url)]);
    let ran = server.finish().await;
    ran.assert_failed();
    assert!(
        ran.stderr.contains("database"),
        "names the database: {}",
        ran.stderr
    );
    assert!(
        key_files_in(&dirs.data()).is_empty(),
        "no key file is generated for a vault that cannot start: {:?}",
        key_files_in(&dirs.data())
    );
}

/// The one log line that announces the generated key `name`.
fn warning<'a>(log: &'a str, name: &str) -> &'a str {
    let needle = format!("GENERATED A NEW {name} ");
    let mut lines = log.lines().filter(|l| l.contains(&needle));
    let line = lines
        .next()
        .unwrap_or_else(|| panic!("no warning for {name}: {log}"));
    assert!(lines.next().is_none(), "one warning for {name}: {log}");
    assert!(line.contains("WARN"), "{line}");
    line
}

async fn each_generated_key_warns_with_what_losing_it_costs(b: Backend) {
    let dirs = Dirs::new();
    let url = match b {
        Backend::Sqlite => None,
        Backend::Postgres => Some(unborn_postgres_database()),
    };
    let env: Vec<(&str, &str)> = url
        .iter()
        .map(|u| ("ARKKU_DATABASE_URL", u.as_str()))
        .collect();
    let (mut server, base) = dirs.serve("serve", &env);
    server.wait_healthy(&base, START_LIMIT).await;
    let log = server.stderr();

    let root = warning(&log, "ROOT KEY");
    assert!(root.contains("nothing in this vault can be read"), "{root}");

    let issuer = warning(&log, "TOKEN ISSUER KEY");
    assert!(issuer.contains("must be issued again"), "{issuer}");
    let audit = warning(&log, "AUDIT SIGNING KEY");
    assert!(
        audit.contains("cannot be verified with the new key"),
        "{audit}"
    );
    for line in [issuer, audit] {
        assert!(
            !line.contains("can be read") && !line.contains("cannot be read"),
            "only the root key's loss makes the data unreadable: {line}"
        );
        assert!(line.contains("The vault's data is not affected"), "{line}");
    }
}
