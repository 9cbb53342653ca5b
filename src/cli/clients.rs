//! `arkku clients`: register integration clients, list and read them, revoke
//! them and rotate their secrets, on the vault host. Each command runs the
//! same operation as `/v1/admin/clients`, as the operator (audited as
//! `arkku-cli`, role `admin`, with the command as client).

use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use uuid::Uuid;

use crate::{
    app,
    clock::Clock,
    config::Config,
    service::{
        clients::{admin, ClientView, NewClient, RotateSecret},
        operator::Operator,
    },
};

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Register a client and print its id and secret (the secret only now).
    Add(AddArgs),
    /// List every client, revoked ones included.
    List,
    /// Show one client (never its secret).
    Show { id: Uuid },
    /// Revoke a client: its secret stops working and every `serve` refuses its tokens within 2 s.
    Revoke { id: Uuid },
    /// Make a new secret (printed only now); the old one works for the grace period, then not.
    RotateSecret {
        id: Uuid,
        /// How long the old secret keeps working (0s: not at all; at most 30 days).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: Duration,
    },
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// A name for people, e.g. the help desk's product.
    name: String,
    /// agent | service | compliance
    #[arg(long)]
    role: String,
    /// The purposes its tokens may read for, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    purposes: Vec<String>,
    /// For agents: the channel it serves.
    #[arg(long)]
    channel: Option<String>,
    /// How long its tokens live (at least 1m, at most the policy's tokens.max_lifetime).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    token_ttl: Duration,
}

pub async fn run(config: Config, clock: Clock, command: ClientsCommand) -> anyhow::Result<()> {
    let state = app::open_with_clock(config, clock)
        .await
        .context("opening the vault")?;
    let said = |e: crate::service::Error| anyhow::anyhow!("{e}");
    match command {
        ClientsCommand::Add(a) => {
            let caller = admin::operator_caller(&Operator::cli("clients add"));
            let new = NewClient {
                name: a.name,
                role: a.role,
                purposes: a.purposes,
                channel: a.channel,
                token_ttl_seconds: Some(a.token_ttl.as_secs()),
            };
            let made = admin::create(&state, &caller, Ok(new))
                .await
                .map_err(said)?;
            print!("{}", describe(&made.client));
            println!("client_secret: {}", made.client_secret.as_str());
            eprintln!("The secret is shown only now: the vault keeps only a hash of it.");
        }
        ClientsCommand::List => {
            let caller = admin::operator_caller(&Operator::cli("clients list"));
            let list = admin::list(&state, &caller).await.map_err(said)?;
            println!(
                "{:<36}  {:<8}  {:<10}  {:<24}  NAME",
                "CLIENT_ID", "STATUS", "ROLE", "PURPOSES"
            );
            for c in &list.clients {
                println!(
                    "{:<36}  {:<8}  {:<10}  {:<24}  {}",
                    c.client_id,
                    if c.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                    c.role,
                    c.purposes.join(","),
                    c.name
                );
            }
        }
        ClientsCommand::Show { id } => {
            let caller = admin::operator_caller(&Operator::cli("clients show"));
            let c = admin::show(&state, &caller, Ok(id)).await.map_err(said)?;
            print!("{}", describe(&c));
        }
        ClientsCommand::Revoke { id } => {
            let caller = admin::operator_caller(&Operator::cli("clients revoke"));
            let c = admin::revoke(&state, &caller, Ok(id)).await.map_err(said)?;
            print!("{}", describe(&c));
            eprintln!("Revoked: every running serve refuses its tokens within 2 seconds.");
        }
        ClientsCommand::RotateSecret { id, grace } => {
            let caller = admin::operator_caller(&Operator::cli("clients rotate-secret"));
            let body = RotateSecret {
                grace_seconds: Some(grace.as_secs()),
            };
            let made = admin::rotate_secret(&state, &caller, Ok(id), Ok(body))
                .await
                .map_err(said)?;
            print!("{}", describe(&made.client));
            println!("client_secret: {}", made.client_secret.as_str());
            eprintln!(
                "The new secret is shown only now. The old one works until {}; tokens already \
                 issued stay valid until they expire.",
                made.client
                    .previous_secret_valid_until
                    .as_deref()
                    .unwrap_or("now (no grace)")
            );
        }
    }
    Ok(())
}

/// A client as `name: value` lines (never a secret).
fn describe(c: &ClientView) -> String {
    let mut out = format!(
        "client_id: {}\nname: {}\nrole: {}\npurposes: {}\n",
        c.client_id,
        c.name,
        c.role,
        c.purposes.join(",")
    );
    if let Some(ch) = &c.channel {
        out.push_str(&format!("channel: {ch}\n"));
    }
    out.push_str(&format!(
        "token_ttl: {}\ncreated_at: {}\n",
        humantime::format_duration(Duration::from_secs(c.token_ttl_seconds)),
        c.created_at
    ));
    for (k, v) in [
        ("secret_rotated_at", &c.secret_rotated_at),
        (
            "previous_secret_valid_until",
            &c.previous_secret_valid_until,
        ),
        ("revoked_at", &c.revoked_at),
    ] {
        if let Some(v) = v {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    out
}
