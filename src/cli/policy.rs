//! `arkku policy check`: loads and validates the policies without starting
//! the server, and prints what they define.

use clap::Subcommand;

use crate::config::Config;

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
        "limits ok: tokens live at most {}; rate limits: {}",
        humantime::format_duration(p.limits.token_max_lifetime),
        if rates.is_empty() {
            "none".to_owned()
        } else {
            rates.join("; ")
        }
    );
    Ok(())
}
