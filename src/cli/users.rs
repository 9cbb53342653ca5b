//! `arkku users`: staff accounts of the console (README, "Staff accounts").
//!
//! Every command calls [`crate::service::staff`] as the operator, and is
//! audited there. A password is read from standard input when that is not a
//! terminal (its first line), and otherwise prompted for twice without echo.
//! `add` and `reset-totp` print the TOTP secret once, as a QR code for an
//! authenticator app and as its `otpauth://` URI (the last line of stdout).

use std::io::{BufRead, IsTerminal, Read};

use anyhow::{bail, Context};
use clap::Subcommand;
use qrcode::{render::unicode::Dense1x2, QrCode};
use zeroize::Zeroizing;

use crate::{
    app,
    clock::Clock,
    config::Config,
    domain::time::rfc3339,
    identity::password::{check_new_password, MAX_PASSWORD_CHARS},
    service::{
        operator::Operator,
        request,
        staff::{self, Enrolment, StaffAccount},
        Error, Services,
    },
};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add a staff account; prints its TOTP enrolment (QR code and otpauth:// URI) once.
    /// The password (at least 12 characters) is read from stdin, or prompted for.
    Add {
        /// The account's name: a-z, 0-9, '.', '_', '-', '@' (letters are lower-cased).
        name: String,
        /// What the account is in the console.
        #[arg(long, value_parser = ["compliance", "admin"])]
        role: String,
    },
    /// List the staff accounts (never a password or secret).
    List,
    /// Disable an account for good: it can no longer sign in, its sessions end.
    Disable { name: String },
    /// Set a new password (read like `add`'s); clears a lockout, ends the account's sessions.
    ResetPassword { name: String },
    /// Make a new TOTP secret and print its enrolment; clears a lockout, ends the sessions.
    ResetTotp { name: String },
}

pub async fn run(config: Config, clock: Clock, command: UsersCommand) -> anyhow::Result<()> {
    // Read before opening the vault, so that a prompt comes at once.
    let password = match &command {
        UsersCommand::Add { .. } | UsersCommand::ResetPassword { .. } => Some(read_password()?),
        _ => None,
    };
    let state = app::open_with_clock(config, clock)
        .await
        .context("opening the vault")?;
    let svc: &Services = &state;
    let op = Operator::cli(match &command {
        UsersCommand::Add { .. } => "users add",
        UsersCommand::List => "users list",
        UsersCommand::Disable { .. } => "users disable",
        UsersCommand::ResetPassword { .. } => "users reset-password",
        UsersCommand::ResetTotp { .. } => "users reset-totp",
    });
    let id = uuid::Uuid::now_v7().to_string();
    request::scope(id, execute(svc, &op, command, password)).await
}

async fn execute(
    svc: &Services,
    op: &Operator,
    command: UsersCommand,
    password: Option<Zeroizing<String>>,
) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add { name, role } => {
            let e = staff::add(svc, op, &name, &role, password.unwrap_or_default())
                .await
                .map_err(|e| explain(e, &name))?;
            let a = &e.account;
            println!("added staff account {} ({}), id {}", a.name, a.role, a.id);
            print_enrolment(&e);
        }
        UsersCommand::List => {
            let accounts = staff::list(svc, op).await.map_err(|e| explain(e, ""))?;
            print!("{}", table(&accounts, svc.clock.now()));
        }
        UsersCommand::Disable { name } => {
            let a = staff::disable(svc, op, &name)
                .await
                .map_err(|e| explain(e, &name))?;
            println!(
                "disabled staff account {}: it can no longer sign in, and its console sessions end",
                a.name
            );
        }
        UsersCommand::ResetPassword { name } => {
            let a = staff::reset_password(svc, op, &name, password.unwrap_or_default())
                .await
                .map_err(|e| explain(e, &name))?;
            println!(
                "set a new password for {}; its lockout is cleared and its console sessions end",
                a.name
            );
        }
        UsersCommand::ResetTotp { name } => {
            let e = staff::reset_totp(svc, op, &name)
                .await
                .map_err(|e| explain(e, &name))?;
            println!(
                "made a new TOTP secret for {}: the old one's codes no longer work, its lockout \
                 is cleared and its console sessions end",
                e.account.name
            );
            print_enrolment(&e);
        }
    }
    Ok(())
}

/// The operation's error, in the operator's words.
fn explain(e: Error, name: &str) -> anyhow::Error {
    match e {
        Error::NotFound => anyhow::anyhow!("there is no staff account named {name:?}"),
        other => anyhow::anyhow!("{other}"),
    }
}

/// Reads a new password: the first line of stdin when it is not a terminal,
/// else a prompt (twice, without echo). Checked here too, so that a typist
/// learns of a short password before typing it again.
fn read_password() -> anyhow::Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let limit = u64::try_from(MAX_PASSWORD_CHARS * 4 + 2).unwrap_or(u64::MAX);
        let mut line = Zeroizing::new(String::with_capacity(MAX_PASSWORD_CHARS * 4 + 2));
        stdin
            .lock()
            .take(limit)
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let end = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(end);
        return Ok(line);
    }
    let first = Zeroizing::new(
        rpassword::prompt_password("New password (at least 12 characters): ")
            .context("reading the password")?,
    );
    check_new_password(&first)?;
    let again = Zeroizing::new(
        rpassword::prompt_password("The same password again: ").context("reading the password")?,
    );
    if first != again {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

/// Prints the enrolment: how to use it, the QR code, and the URI last.
fn print_enrolment(e: &Enrolment) {
    println!(
        "\nThe TOTP secret of {name} follows, once: as a QR code for an authenticator app \
         (Aegis, FreeOTP, Google Authenticator, 1Password, …) and as its otpauth:// URI. \
         Let {name} scan it, check that the app shows a 6-digit code for \"arkku ({name})\", \
         then clear the screen. Whoever sees it can make {name}'s codes.\n",
        name = e.account.name
    );
    match qr(&e.otpauth_uri) {
        Ok(code) => println!("{}", code.as_str()),
        Err(err) => eprintln!("warning: the QR code could not be drawn ({err}); use the URI"),
    }
    println!("{}", e.otpauth_uri.as_str());
}

/// The URI as a QR code of Unicode half blocks. On a terminal it is drawn
/// black on white whatever the terminal's colours (a scanner wants dark
/// modules on a light ground); elsewhere (a file, a pipe) without colour.
fn qr(uri: &str) -> anyhow::Result<Zeroizing<String>> {
    let code = QrCode::new(uri.as_bytes()).context("encoding the QR code")?;
    let drawn = Zeroizing::new(code.render::<Dense1x2>().quiet_zone(true).build());
    let coloured = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if !coloured {
        return Ok(drawn);
    }
    let mut out = Zeroizing::new(String::with_capacity(drawn.len() * 2));
    for line in drawn.lines() {
        out.push_str("\x1b[30;107m");
        out.push_str(line);
        out.push_str("\x1b[0m\n");
    }
    Ok(out)
}

/// `users list` as a table.
fn table(accounts: &[StaffAccount], now: time::OffsetDateTime) -> String {
    let mut out = format!(
        "{:<24} {:<11} {:<40} {:<28} {}\n",
        "NAME", "ROLE", "STATUS", "CREATED", "ID"
    );
    for a in accounts {
        let status = match (a.disabled_at, a.locked_until) {
            (Some(at), _) => format!("disabled {}", rfc3339(at)),
            (None, Some(until)) if a.locked_at(now) => format!("locked until {}", rfc3339(until)),
            _ => "enabled".to_owned(),
        };
        out.push_str(&format!(
            "{:<24} {:<11} {:<40} {:<28} {}\n",
            a.name,
            a.role,
            status,
            rfc3339(a.created_at),
            a.id
        ));
    }
    if accounts.is_empty() {
        out.push_str(
            "(no staff accounts; add one with `arkku users add NAME --role compliance`)\n",
        );
    }
    out
}
