//! `arkku policy check`: loads and validates the policies without starting
//! the server, and prints what they define.

use clap::Subcommand;

use crate::{
    config::{Config, PolicySource},
    policy::{issuers::IssuerPolicy, PolicyError},
};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Load and validate the policies without starting the server.
    Check,
}

pub fn run(config: Config, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Check => check(&config),
    }
}

fn check(config: &Config) -> anyhow::Result<()> {
    let p = config.load_policies()?;
    let names = |it: &mut dyn Iterator<Item = &str>| it.collect::<Vec<_>>().join(", ");
    println!(
        "policies ok: {} channels ({}), {} purposes ({})",
        p.channels.len(),
        names(&mut p.channels.keys().map(|c| c.as_str())),
        p.purposes.len(),
        names(&mut p.purposes.keys().map(|c| c.as_str())),
    );
    let mut rates: Vec<String> = p
        .limits
        .rates
        .iter()
        .map(|((action, role), r)| {
            format!(
                "{} {}: {}/min, burst {}",
                action.as_str(),
                role.as_str(),
                r.per_minute,
                r.burst
            )
        })
        .collect();
    rates.sort();
    println!(
        "limits ok: tokens live at most {}; keys are due for rotation after {}; rate limits: {}",
        humantime::format_duration(p.limits.token_max_lifetime),
        p.limits
            .key_rotate_after
            .map_or("(no interval set)".to_owned(), |d| {
                humantime::format_duration(d).to_string()
            }),
        if rates.is_empty() {
            "none".to_owned()
        } else {
            rates.join("; ")
        }
    );
    let notices: Vec<String> = p
        .notices
        .iter()
        .map(|(purpose, n)| format!("{purpose} ({} v{})", n.id, n.version))
        .collect();
    println!("notices ok: {}", notices.join(", "));
    check_issuers(config, &p.issuers)?;
    Ok(())
}

/// Prints the trusted external issuers; the key file of a `jwks_file`
/// issuer is read and must hold a usable key (a URL is not fetched: the
/// check runs offline).
fn check_issuers(config: &Config, issuers: &[IssuerPolicy]) -> anyhow::Result<()> {
    if issuers.is_empty() {
        println!("auth ok: only the local issuer (no external issuer in auth.toml)");
        return Ok(());
    }
    let file = match &config.policies {
        PolicySource::Dir(dir) => dir.join("auth.toml").display().to_string(),
        PolicySource::BuiltIn => "auth.toml".to_owned(),
    };
    let mut lines = Vec::new();
    for (i, issuer) in issuers.iter().enumerate() {
        let keys =
            crate::identity::issuers::check_key_source(issuer).map_err(|reason| PolicyError {
                file: file.clone(),
                key: format!("issuers[{i}].jwks_file"),
                reason,
            })?;
        lines.push(format!("  {}: {keys}", issuer.issuer));
    }
    println!(
        "auth ok: {} external issuer(s)\n{}",
        issuers.len(),
        lines.join("\n")
    );
    Ok(())
}
