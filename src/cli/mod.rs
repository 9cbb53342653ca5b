//! The `arkku` command line: the commands, their arguments and what each
//! prints, one file per command group.
//!
//! It lives in the library rather than in the binary so that `src/main.rs`
//! stays a few lines (parse, set up tracing, dispatch), so that the commands
//! reach the vault through the same public modules as the HTTP API and the
//! tests do, and so that clippy and the unit tests see it like any other
//! module. `anyhow` is used here and nowhere else in the library: a command
//! ends in a message for the operator, not in a typed error for a caller.

mod audit;
mod audit_shards;
mod backup;
mod clients;
mod keys;
mod policy;
mod retention;
mod serve;
mod token;
mod users;

use clap::{Parser, Subcommand};

use crate::{
    clock::Clock,
    config::{Config, GlobalArgs},
};

/// The arguments of `arkku`.
#[derive(Parser)]
#[command(
    name = "arkku",
    version,
    about = "A privacy vault for customer contact data"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (creates keys and applies migrations as needed).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage the key hierarchy.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Print a development token signed by the local issuer key (last line of stdout).
    Token(token::TokenArgs),
    /// Validate policies.
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// Verify, checkpoint and export the audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Purge what the retention rules no longer allow to keep.
    Retention {
        #[command(subcommand)]
        command: retention::RetentionCommand,
    },
    /// Manage the staff accounts that sign in to the console (password + TOTP).
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Manage integration clients (their tokens come from POST /oauth/token).
    Clients {
        #[command(subcommand)]
        command: clients::ClientsCommand,
    },
    /// Copy the SQLite vault, consistently, while it serves (PostgreSQL: pg_dump).
    Backup(backup::BackupArgs),
    /// Put a backup in place as the SQLite vault of this data dir (PostgreSQL: pg_restore).
    Restore(backup::RestoreArgs),
}

/// Runs one command to its end. Tracing must be set up before, so that the
/// clock's start-up warning (see [`Clock::from_env`]) is seen.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_args(&cli.global).map_err(anyhow::Error::msg)?;
    let clock = Clock::from_env();
    match cli.command {
        Command::Serve => serve::serve(config, clock).await,
        Command::Migrate => serve::migrate(config).await,
        Command::Keys { command } => keys::run(config, command).await,
        Command::Token(args) => token::print(config, &clock, args),
        Command::Policy { command } => policy::run(config, command),
        Command::Audit { command } => audit::run(config, command).await,
        Command::Retention { command } => retention::run(config, &clock, command).await,
        Command::Users { command } => users::run(config, clock, command).await,
        Command::Clients { command } => clients::run(config, clock, command).await,
        Command::Backup(args) => backup::backup(&config, args).await,
        Command::Restore(args) => backup::restore(&config, args).await,
    }
}
