//! Loads and validates `channels.toml` and `purposes.toml` (and the
//! optional `limits.toml`, `auth.toml` and `notices.toml`).
//!
//! Every error names the file, the key, the reason and, where a value was
//! wrong, the value (quoted and cut at 40 characters), because an operator
//! reads it at start-up (or from `arkku policy check`) and must fix it quickly.

use std::{collections::BTreeMap, path::Path};

use toml::{Table, Value};

use super::model::*;
use crate::domain::{ChannelId, ChannelKind, Purpose, Role};

mod auth;
mod fields;

use super::notices::{parse_notices, SHIPPED_NOTICES};
pub use auth::parse_auth;
pub use fields::parse_duration;
use fields::{one_of, only_keys, required, string, table, top_table};
pub(super) use fields::{shown, shown_value};

/// The policies shipped in `policies/`, compiled in so the binary runs
/// anywhere; an operator's directory replaces them.
pub const SHIPPED_CHANNELS: &str = include_str!("../../policies/channels.toml");
pub const SHIPPED_PURPOSES: &str = include_str!("../../policies/purposes.toml");

/// The purposes the vault itself relies on; a policy set must define them.
const REQUIRED_PURPOSES: [&str; 4] = ["support", "cross_channel", "marketing", "dsr"];

/// The purposes whose permission comes from the customer's consent ledger.
const CONSENT_PURPOSES: [&str; 2] = ["cross_channel", "marketing"];

/// A policy that cannot be used: which file, which key, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct PolicyError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

fn err(file: &str, key: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        file: file.to_owned(),
        key: key.into(),
        reason: reason.into(),
    }
}

/// Loads `channels.toml` and `purposes.toml` from `dir`.
pub fn load_dir(dir: &Path) -> Result<Policies, PolicyError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path)
            .map_err(|e| {
                err(
                    &path.display().to_string(),
                    "(file)",
                    format!("cannot read: {e}"),
                )
            })
            .map(|text| (path.display().to_string(), text))
    };
    let (cfile, ctext) = read("channels.toml")?;
    let (pfile, ptext) = read("purposes.toml")?;
    let mut policies = parse_without_notices(&cfile, &ctext, &pfile, &ptext)?;
    // Optional: a directory from before limits.toml keeps the shipped limits.
    if dir.join("limits.toml").exists() {
        let (lfile, ltext) = read("limits.toml")?;
        policies.limits = super::limits::parse_limits(&lfile, &ltext)?;
    }
    // Optional: without auth.toml only the local issuer is trusted.
    if dir.join("auth.toml").exists() {
        let (afile, atext) = read("auth.toml")?;
        policies.issuers = parse_auth(&afile, &atext, dir)?;
    }
    // Optional: without notices.toml the shipped notices apply (and must
    // cover the directory's consent-based purposes).
    let (nfile, ntext) = if dir.join("notices.toml").exists() {
        read("notices.toml")?
    } else {
        (SHIPPED_NOTICES_FILE.to_owned(), SHIPPED_NOTICES.to_owned())
    };
    policies.notices = parse_notices(&nfile, &ntext, &policies.purposes)?;
    Ok(policies)
}

/// How errors name the compiled-in notices.
const SHIPPED_NOTICES_FILE: &str = "policies/notices.toml (built in)";

/// The compiled-in default policies.
pub fn load_shipped() -> Result<Policies, PolicyError> {
    parse(
        "policies/channels.toml (built in)",
        SHIPPED_CHANNELS,
        "policies/purposes.toml (built in)",
        SHIPPED_PURPOSES,
    )
}

/// Parses both files' text into validated policies, with the shipped
/// limits and notices.
pub fn parse(cfile: &str, ctext: &str, pfile: &str, ptext: &str) -> Result<Policies, PolicyError> {
    let mut policies = parse_without_notices(cfile, ctext, pfile, ptext)?;
    policies.notices = parse_notices(SHIPPED_NOTICES_FILE, SHIPPED_NOTICES, &policies.purposes)?;
    Ok(policies)
}

/// [`parse`] with no notices yet: a directory brings its own.
fn parse_without_notices(
    cfile: &str,
    ctext: &str,
    pfile: &str,
    ptext: &str,
) -> Result<Policies, PolicyError> {
    let channels = parse_channels(cfile, ctext)?;
    let purposes = parse_purposes(pfile, ptext)?;
    let limits = super::limits::shipped_limits()?;
    Ok(Policies {
        channels,
        purposes,
        limits,
        issuers: Vec::new(),
        notices: BTreeMap::new(),
    })
}

fn parse_channels(
    file: &str,
    text: &str,
) -> Result<BTreeMap<ChannelId, ChannelPolicy>, PolicyError> {
    let channels = top_table(file, text, "channels")?;
    let mut out = BTreeMap::new();
    for (name, v) in &channels {
        let prefix = format!("channels.{name}");
        let id = ChannelId::parse(name).map_err(|e| {
            err(
                file,
                &prefix,
                format!("bad channel name {}: {e}", shown(name)),
            )
        })?;
        out.insert(id, parse_channel(file, &prefix, table(file, &prefix, v)?)?);
    }
    if out.is_empty() {
        return Err(err(file, "channels", "defines no channel"));
    }
    Ok(out)
}

/// One `[channels.<name>]` table.
fn parse_channel(file: &str, prefix: &str, t: &Table) -> Result<ChannelPolicy, PolicyError> {
    only_keys(
        file,
        prefix,
        t,
        &[
            "kind",
            "integration",
            "mask",
            "contact_retention",
            "interactions",
            "sign_in",
        ],
    )?;
    let key = format!("{prefix}.kind");
    let kind = string(file, &key, required(file, prefix, t, "kind")?)?;
    let kind: ChannelKind = kind.parse().map_err(|_| {
        err(
            file,
            &key,
            format!(
                "unknown kind {} (expected email, phone, handle or text)",
                shown(kind)
            ),
        )
    })?;
    let key = format!("{prefix}.integration");
    let integration = one_of(
        file,
        &key,
        "integration mode",
        string(file, &key, required(file, prefix, t, "integration")?)?,
        &[
            ("always", Integration::Always),
            ("consent", Integration::Consent),
            ("never", Integration::Never),
        ],
    )?;
    let key = format!("{prefix}.mask");
    let mask = match t.get("mask") {
        None => MaskMode::Default,
        Some(v) => one_of(
            file,
            &key,
            "mask mode",
            string(file, &key, v)?,
            &[
                ("default", MaskMode::Default),
                ("always", MaskMode::Always),
                ("never", MaskMode::Never),
            ],
        )?,
    };
    let key = format!("{prefix}.contact_retention");
    let contact_retention =
        parse_duration(file, &key, required(file, prefix, t, "contact_retention")?)?;
    let mut interaction_retention = BTreeMap::new();
    let ikey = format!("{prefix}.interactions");
    let itable = table(file, &ikey, required(file, prefix, t, "interactions")?)?;
    only_keys(file, &ikey, itable, &INTERACTION_KINDS)?;
    for kind in INTERACTION_KINDS {
        let key = format!("{ikey}.{kind}");
        let v = required(file, &ikey, itable, kind)?;
        interaction_retention.insert(kind.to_owned(), parse_duration(file, &key, v)?);
    }
    let key = format!("{prefix}.sign_in");
    let sign_in = match t.get("sign_in") {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| {
            err(
                file,
                &key,
                format!("must be true or false, not {}", shown_value(v)),
            )
        })?,
    };
    Ok(ChannelPolicy {
        kind,
        integration,
        mask,
        contact_retention,
        interaction_retention,
        sign_in,
    })
}

fn parse_purposes(file: &str, text: &str) -> Result<BTreeMap<Purpose, PurposePolicy>, PolicyError> {
    let purposes = top_table(file, text, "purposes")?;
    let mut out = BTreeMap::new();
    for (name, v) in &purposes {
        let prefix = format!("purposes.{name}");
        let id = Purpose::parse(name).map_err(|e| {
            err(
                file,
                &prefix,
                format!("bad purpose name {}: {e}", shown(name)),
            )
        })?;
        let t = table(file, &prefix, v)?;
        out.insert(id, parse_purpose(file, name, &prefix, t)?);
    }
    for p in REQUIRED_PURPOSES {
        let id = Purpose::parse(p).map_err(|e| err(file, p, e.to_string()))?;
        let Some(policy) = out.get(&id) else {
            return Err(err(
                file,
                format!("purposes.{p}"),
                "this purpose must exist: arkku relies on it",
            ));
        };
        // The integration rule asks the customer's consent for these two; any
        // other basis would make the ledger decide nothing.
        if CONSENT_PURPOSES.contains(&p) && policy.lawful_basis != LawfulBasis::Consent {
            return Err(err(
                file,
                format!("purposes.{p}.lawful_basis"),
                "must be \"consent\": the integration rule asks the customer's consent for it",
            ));
        }
    }
    Ok(out)
}

/// One `[purposes.<name>]` table.
fn parse_purpose(
    file: &str,
    name: &str,
    prefix: &str,
    t: &Table,
) -> Result<PurposePolicy, PolicyError> {
    only_keys(
        file,
        prefix,
        t,
        &[
            "lawful_basis",
            "max_age",
            "roles",
            "consent_recorders",
            "immediate_agent_attestation",
            "description",
        ],
    )?;
    let key = format!("{prefix}.lawful_basis");
    let lawful_basis = one_of(
        file,
        &key,
        "lawful basis",
        string(file, &key, required(file, prefix, t, "lawful_basis")?)?,
        &[
            ("consent", LawfulBasis::Consent),
            ("contract", LawfulBasis::Contract),
            ("legal_obligation", LawfulBasis::LegalObligation),
            ("vital_interests", LawfulBasis::VitalInterests),
            ("public_task", LawfulBasis::PublicTask),
            ("legitimate_interests", LawfulBasis::LegitimateInterests),
        ],
    )?;
    // Reported here, before the keys that only consent-based purposes
    // may carry, so the operator is told the cause rather than a symptom.
    if CONSENT_PURPOSES.contains(&name) && lawful_basis != LawfulBasis::Consent {
        return Err(err(
            file,
            key,
            "must be \"consent\": the integration rule asks the customer's consent for it",
        ));
    }
    let key = format!("{prefix}.max_age");
    let max_age = t
        .get("max_age")
        .map(|v| parse_duration(file, &key, v))
        .transpose()?;
    if max_age.is_some() && lawful_basis != LawfulBasis::Consent {
        return Err(err(file, key, "only consent-based purposes can lapse"));
    }
    let key = format!("{prefix}.roles");
    let roles = role_list(file, &key, required(file, prefix, t, "roles")?)?;
    let (consent_recorders, immediate_agent_attestation) =
        parse_consent_recording(file, prefix, t, lawful_basis)?;
    let key = format!("{prefix}.description");
    let description = t
        .get("description")
        .map(|v| string(file, &key, v).map(str::to_owned))
        .transpose()?;
    Ok(PurposePolicy {
        lawful_basis,
        max_age,
        roles,
        consent_recorders,
        immediate_agent_attestation,
        description,
    })
}

/// A list of role names such as `["agent", "service"]`.
fn role_list(file: &str, key: &str, v: &Value) -> Result<Vec<Role>, PolicyError> {
    let list = v.as_array().ok_or_else(|| {
        err(
            file,
            key,
            format!("must be a list of roles, not {}", shown_value(v)),
        )
    })?;
    list.iter()
        .map(|r| {
            let s = string(file, key, r)?;
            s.parse().map_err(|_| {
                err(
                    file,
                    key,
                    format!(
                        "unknown role {} (expected agent, service, compliance, customer or admin)",
                        shown(s)
                    ),
                )
            })
        })
        .collect()
}

/// The staff roles that may record a customer's consent: an agent the
/// customer is talking to, and compliance staff acting on a documented
/// request. A service has no customer in front of it, the customer is always
/// allowed (so listing it would suggest it could be taken away), and an admin
/// does not act on customer data.
const CONSENT_RECORDER_ROLES: [Role; 2] = [Role::Agent, Role::Compliance];

/// `consent_recorders` and `immediate_agent_attestation` of one purpose.
fn parse_consent_recording(
    file: &str,
    prefix: &str,
    t: &Table,
    lawful_basis: LawfulBasis,
) -> Result<(Vec<Role>, bool), PolicyError> {
    let rkey = format!("{prefix}.consent_recorders");
    let fkey = format!("{prefix}.immediate_agent_attestation");
    if lawful_basis != LawfulBasis::Consent {
        for (k, key) in [
            ("consent_recorders", &rkey),
            ("immediate_agent_attestation", &fkey),
        ] {
            if t.contains_key(k) {
                return Err(err(
                    file,
                    key.as_str(),
                    "only consent-based purposes record consent",
                ));
            }
        }
        return Ok((Vec::new(), false));
    }
    let mut recorders = Vec::new();
    if let Some(v) = t.get("consent_recorders") {
        let list = v.as_array().ok_or_else(|| {
            err(
                file,
                &rkey,
                format!("must be a list of roles, not {}", shown_value(v)),
            )
        })?;
        for r in list {
            let s = string(file, &rkey, r)?;
            let role = s
                .parse::<Role>()
                .ok()
                .filter(|r| CONSENT_RECORDER_ROLES.contains(r))
                .ok_or_else(|| {
                    err(
                        file,
                        &rkey,
                        format!(
                            "{} may not record consent (expected agent or compliance; \
                             the customer always may)",
                            shown(s)
                        ),
                    )
                })?;
            if !recorders.contains(&role) {
                recorders.push(role);
            }
        }
    }
    let immediate = match t.get("immediate_agent_attestation") {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| {
            err(
                file,
                &fkey,
                format!("must be true or false, not {}", shown_value(v)),
            )
        })?,
    };
    if immediate && !recorders.contains(&Role::Agent) {
        return Err(err(
            file,
            fkey,
            "agents do not record consent for this purpose (add \"agent\" to consent_recorders)",
        ));
    }
    Ok((recorders, immediate))
}

#[cfg(test)]
mod tests;
