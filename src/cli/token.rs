//! `arkku token`: a development token signed by the local issuer key, checked
//! against the policies first so that the server will not refuse it.

use std::time::Duration;

use anyhow::{bail, Context};

use crate::{
    app,
    clock::Clock,
    config::Config,
    domain::{ChannelId, Role},
    token,
};

#[derive(clap::Args)]
pub struct TokenArgs {
    /// agent | service | compliance | customer | admin
    #[arg(long)]
    role: String,
    /// Subject: the user or system acting (for customer tokens, the customer id).
    #[arg(long)]
    sub: String,
    /// Purposes the token may read for, comma separated.
    #[arg(long, value_delimiter = ',')]
    purposes: Vec<String>,
    /// The channel an agent serves (the channel context of its reads).
    #[arg(long)]
    channel: Option<String>,
    /// Lifetime, e.g. 15m, 1h, 8h; at most the policy's tokens.max_lifetime,
    /// and at most 24h without --allow-long-ttl.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Allow a --ttl over 24h (still at most the policy's tokens.max_lifetime).
    #[arg(long)]
    allow_long_ttl: bool,
}

/// The longest a development token lives unless `--allow-long-ttl` is given:
/// a token printed to a terminal is easily copied, and a day covers a
/// working session.
const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);

pub fn print(config: Config, clock: &Clock, args: TokenArgs) -> anyhow::Result<()> {
    let role: Role = args.role.parse().map_err(|_| {
        anyhow::anyhow!(
            "unknown role {:?} (agent, service, compliance, customer, admin)",
            args.role
        )
    })?;
    if args.sub.trim().is_empty() {
        bail!("--sub must not be empty");
    }
    if role == Role::Customer && uuid::Uuid::parse_str(&args.sub).is_err() {
        bail!("customer tokens need the customer id as --sub");
    }
    let channel = args
        .channel
        .as_deref()
        .map(ChannelId::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
    let policies = config.load_policies()?;
    if let Some(c) = &channel {
        if policies.channel(c.as_str()).is_none() {
            bail!(
                "unknown channel {:?}: channels.toml defines no such channel",
                c.as_str()
            );
        }
    }
    for p in &args.purposes {
        if policies.purpose(p).is_none() {
            bail!("unknown purpose {p:?}");
        }
    }
    check_ttl(&args, policies.limits.token_max_lifetime)?;
    let key = app::key_file(
        &config.issuer_key_file,
        config.auto_keys,
        app::KeyFile::Issuer,
    )
    .context("issuer key")?;
    let jwt = token::issue(
        &key,
        &config.issuer,
        &config.audience,
        &token::TokenRequest {
            role,
            sub: &args.sub,
            purposes: &args.purposes,
            channel: channel.as_ref(),
            ttl: args.ttl,
        },
        clock.now(),
    )?;
    println!("{jwt}");
    Ok(())
}

/// A lifetime the server accepts (longer than zero, at most the policy's)
/// and, unless explicitly allowed, at most a day.
fn check_ttl(args: &TokenArgs, max: Duration) -> anyhow::Result<()> {
    if args.ttl > max {
        bail!(
            "--ttl {} is longer than the policy allows ({}, tokens.max_lifetime in limits.toml): \
             the server would refuse the token",
            humantime::format_duration(args.ttl),
            humantime::format_duration(max)
        );
    }
    if args.ttl > DEFAULT_MAX_TTL && !args.allow_long_ttl {
        bail!(
            "--ttl {} is longer than 24h: add --allow-long-ttl to mint a token that lives longer \
             than a day",
            humantime::format_duration(args.ttl)
        );
    }
    if args.ttl.is_zero() {
        bail!("--ttl must be longer than zero");
    }
    Ok(())
}
