//! Where a benchmark run keeps its data: a private working directory, and
//! one fresh database per group of scenarios, dropped at the end.

use std::path::{Path, PathBuf};

use anyhow::Context;

use arkku::store::Db;

use crate::{Args, Engine};

/// A private working directory, removed when dropped.
pub struct WorkDir(PathBuf);

impl WorkDir {
    pub fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("arkku-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(WorkDir(dir))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The databases of a run, each created fresh on first use: `main` (the
/// seeded customers, served), `sweep` and `audit` (one-shot scenarios).
/// SQLite files live in the work directory; PostgreSQL databases are dropped
/// at the end.
pub struct Databases {
    engine: Engine,
    dir: PathBuf,
    postgres: String,
    admin: Option<Db>,
    created: Vec<String>,
}

/// The PostgreSQL database of this run named `name`.
fn pg_name(name: &str) -> String {
    format!("arkku_bench_{}_{name}", std::process::id())
}

impl Databases {
    pub async fn new(args: &Args, dir: &Path) -> anyhow::Result<Self> {
        let admin = match args.database {
            Engine::Sqlite => None,
            Engine::Postgres => Some(
                Db::connect(&args.postgres)
                    .await
                    .with_context(|| format!("connecting to {}", args.postgres))?,
            ),
        };
        Ok(Databases {
            engine: args.database,
            dir: dir.to_owned(),
            postgres: args.postgres.clone(),
            admin,
            created: Vec::new(),
        })
    }

    /// Creates the database `name` and returns its URL.
    pub async fn create(&mut self, name: &str) -> anyhow::Result<String> {
        let (url, pg_name) = match self.engine {
            Engine::Sqlite => (
                format!("sqlite://{}", self.dir.join(format!("{name}.db")).display()),
                None,
            ),
            Engine::Postgres => {
                let db = pg_name(name);
                let base = self
                    .postgres
                    .rsplit_once('/')
                    .map_or(self.postgres.as_str(), |(b, _)| b);
                (format!("{base}/{db}"), Some(db))
            }
        };
        if let (Some(admin), Some(db)) = (&self.admin, pg_name) {
            arkku::on_db!(admin, pool => sqlx::query(&format!("CREATE DATABASE {db}")).execute(pool).await.map(drop))?;
            self.created.push(db);
        }
        Ok(url)
    }

    /// Drops the database `name` once its scenario is done, so that what the
    /// server does after a mass delete (autovacuum, checkpoints) does not run
    /// under the next scenario.
    pub async fn retire(&mut self, name: &str) {
        match (&self.admin, self.engine) {
            (Some(admin), Engine::Postgres) => {
                let db = pg_name(name);
                let dropped = arkku::on_db!(admin, pool => sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(pool).await.map(drop));
                if dropped.is_ok() {
                    self.created.retain(|c| *c != db);
                }
            }
            _ => {
                for ext in ["db", "db-wal", "db-shm"] {
                    let _ = std::fs::remove_file(self.dir.join(format!("{name}.{ext}")));
                }
            }
        }
    }

    pub async fn drop_all(&self) {
        if let Some(admin) = &self.admin {
            for db in &self.created {
                let _ = arkku::on_db!(admin, pool => sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(pool).await.map(drop));
            }
        }
    }
}
