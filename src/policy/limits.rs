//! `limits.toml`: how fast one actor may look up and reveal contact values,
//! how often customer sign-in codes may be asked for and checked, and how
//! long a token may live. Loaded and validated with the other
//! policies; every error names file, key and reason.
//!
//! Rate limits stop a valid but misused token from enumerating the vault
//! (testing phone numbers against `POST /v1/lookup`, or revealing profile
//! after profile). The token lifetime cap keeps a leaked token from being
//! good for years.

use std::{collections::HashMap, num::NonZeroU32, time::Duration};

use toml::{Table, Value};

use super::load::{parse_duration, shown, shown_value, PolicyError};
use crate::domain::Role;

/// The shipped limits, compiled in; used when a policy directory has no
/// `limits.toml` (so an older policy directory does not silently lose them).
pub const SHIPPED_LIMITS: &str = include_str!("../../policies/limits.toml");

/// An operation with a per-actor rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitedAction {
    /// `POST /v1/lookup`.
    Lookup,
    /// `GET /v1/customers/{id}?reveal=true`.
    Reveal,
}

impl LimitedAction {
    pub const ALL: [LimitedAction; 2] = [LimitedAction::Lookup, LimitedAction::Reveal];

    pub fn as_str(self) -> &'static str {
        match self {
            LimitedAction::Lookup => "lookup",
            LimitedAction::Reveal => "reveal",
        }
    }
}

/// A sustained rate with a burst allowance (a token bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

/// `[sign_in]`: customer sign-in by one-time code, which no token guards,
/// limited per contact value and per client address (IPv4 address, IPv6
/// /64). A key left out is not limited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignInLimits {
    /// Codes asked for one contact value (whoever asks, known or not).
    pub start_per_value: Option<RateLimit>,
    /// Codes asked for from one client address.
    pub start_per_peer: Option<RateLimit>,
    /// Codes checked from one client address.
    pub verify_per_peer: Option<RateLimit>,
}

/// The keys of `[sign_in]`.
const SIGN_IN_KEYS: [&str; 3] = ["start_per_value", "start_per_peer", "verify_per_peer"];

/// The validated `limits.toml`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Per action and role; a role without an entry is not limited.
    pub rates: HashMap<(LimitedAction, Role), RateLimit>,
    /// Customer sign-in (`[sign_in]`).
    pub sign_in: SignInLimits,
    /// Longest token lifetime accepted (`exp - iat`, or `exp - now` without `iat`).
    pub token_max_lifetime: Duration,
    /// How old a key may grow before it is due for rotation (`[keys]
    /// rotate_after`); `None` when the policy names no interval. Nothing
    /// rotates by itself: the keys and policies page marks older keys.
    pub key_rotate_after: Option<Duration>,
}

impl Limits {
    /// The rate limit of `role` for `action`, if any.
    pub fn rate(&self, action: LimitedAction, role: Role) -> Option<RateLimit> {
        self.rates.get(&(action, role)).copied()
    }
}

fn err(file: &str, key: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        file: file.to_owned(),
        key: key.into(),
        reason: reason.into(),
    }
}

fn positive(file: &str, key: &str, v: Option<&Value>) -> Result<NonZeroU32, PolicyError> {
    let v = v.ok_or_else(|| err(file, key, "is required"))?;
    v.as_integer()
        .and_then(|n| u32::try_from(n).ok())
        .and_then(NonZeroU32::new)
        .ok_or_else(|| {
            err(
                file,
                key,
                format!(
                    "must be a whole number from 1 to 4294967295, not {}",
                    shown_value(v)
                ),
            )
        })
}

/// `[rate_limits.<action>]`: a token bucket per role.
fn parse_rates(
    file: &str,
    v: &Value,
) -> Result<HashMap<(LimitedAction, Role), RateLimit>, PolicyError> {
    let mut rates = HashMap::new();
    let t = v
        .as_table()
        .ok_or_else(|| err(file, "rate_limits", "must be a table"))?;
    for (name, v) in t {
        let prefix = format!("rate_limits.{name}");
        let action = LimitedAction::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| {
                err(
                    file,
                    &prefix,
                    format!("unknown action {} (expected lookup or reveal)", shown(name)),
                )
            })?;
        let roles = v
            .as_table()
            .ok_or_else(|| err(file, &prefix, "must be a table of roles"))?;
        for (role_name, v) in roles {
            let key = format!("{prefix}.{role_name}");
            let role: Role = role_name.parse().map_err(|_| {
                err(
                    file,
                    &key,
                    format!(
                        "unknown role {} (expected agent, service, compliance, customer or admin)",
                        shown(role_name)
                    ),
                )
            })?;
            rates.insert((action, role), rate_limit(file, &key, v)?);
        }
    }
    Ok(rates)
}

/// `{ per_minute = N, burst = M }` at `key`.
fn rate_limit(file: &str, key: &str, v: &Value) -> Result<RateLimit, PolicyError> {
    let t = v.as_table().ok_or_else(|| {
        err(
            file,
            key,
            "must be a table like { per_minute = 60, burst = 20 }",
        )
    })?;
    if let Some(k) = t
        .keys()
        .find(|k| !["per_minute", "burst"].contains(&k.as_str()))
    {
        return Err(err(
            file,
            format!("{key}.{k}"),
            "unknown key (expected per_minute, burst)",
        ));
    }
    let per_minute = positive(file, &format!("{key}.per_minute"), t.get("per_minute"))?;
    let burst = positive(file, &format!("{key}.burst"), t.get("burst"))?;
    Ok(RateLimit { per_minute, burst })
}

/// `[sign_in]`: one rate per key, each optional.
fn parse_sign_in(file: &str, v: &Value) -> Result<SignInLimits, PolicyError> {
    let t = v
        .as_table()
        .ok_or_else(|| err(file, "sign_in", "must be a table"))?;
    if let Some(k) = t.keys().find(|k| !SIGN_IN_KEYS.contains(&k.as_str())) {
        return Err(err(
            file,
            format!("sign_in.{k}"),
            format!("unknown key (expected one of: {})", SIGN_IN_KEYS.join(", ")),
        ));
    }
    let rate = |name: &str| {
        t.get(name)
            .map(|v| rate_limit(file, &format!("sign_in.{name}"), v))
            .transpose()
    };
    Ok(SignInLimits {
        start_per_value: rate("start_per_value")?,
        start_per_peer: rate("start_per_peer")?,
        verify_per_peer: rate("verify_per_peer")?,
    })
}

/// Parses and validates the text of `limits.toml`.
pub fn parse_limits(file: &str, text: &str) -> Result<Limits, PolicyError> {
    let root: Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(file, "(syntax)", e.message().to_owned()))?;
    if let Some(k) = root
        .keys()
        .find(|k| !["rate_limits", "sign_in", "tokens", "keys"].contains(&k.as_str()))
    {
        return Err(err(
            file,
            k.as_str(),
            "unknown key (expected rate_limits, sign_in, tokens or keys)",
        ));
    }
    let rates = match root.get("rate_limits") {
        Some(v) => parse_rates(file, v)?,
        None => HashMap::new(),
    };
    let sign_in = match root.get("sign_in") {
        Some(v) => parse_sign_in(file, v)?,
        None => SignInLimits::default(),
    };
    let tokens = root
        .get("tokens")
        .ok_or_else(|| err(file, "tokens", "is required"))?
        .as_table()
        .ok_or_else(|| err(file, "tokens", "must be a table"))?;
    if let Some(k) = tokens.keys().find(|k| k.as_str() != "max_lifetime") {
        return Err(err(
            file,
            format!("tokens.{k}"),
            "unknown key (expected max_lifetime)",
        ));
    }
    let key = "tokens.max_lifetime";
    let token_max_lifetime = parse_duration(
        file,
        key,
        tokens
            .get("max_lifetime")
            .ok_or_else(|| err(file, key, "is required"))?,
    )?;
    Ok(Limits {
        rates,
        sign_in,
        token_max_lifetime,
        key_rotate_after: parse_keys(file, root.get("keys"))?,
    })
}

/// `[keys]`: the optional rotation interval.
fn parse_keys(file: &str, v: Option<&Value>) -> Result<Option<Duration>, PolicyError> {
    let Some(v) = v else { return Ok(None) };
    let t = v
        .as_table()
        .ok_or_else(|| err(file, "keys", "must be a table"))?;
    if let Some(k) = t.keys().find(|k| k.as_str() != "rotate_after") {
        return Err(err(
            file,
            format!("keys.{k}"),
            "unknown key (expected rotate_after)",
        ));
    }
    t.get("rotate_after")
        .map(|v| parse_duration(file, "keys.rotate_after", v))
        .transpose()
}

/// The compiled-in limits.
pub fn shipped_limits() -> Result<Limits, PolicyError> {
    parse_limits("policies/limits.toml (built in)", SHIPPED_LIMITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_limits_load_and_limit_agents_lookups_and_reveals() {
        let l = shipped_limits().expect("valid");
        assert!(l.rate(LimitedAction::Lookup, Role::Agent).is_some());
        assert!(l.rate(LimitedAction::Reveal, Role::Agent).is_some());
        assert!(l.token_max_lifetime <= Duration::from_secs(24 * 3600));
        assert_eq!(l.key_rotate_after, Some(Duration::from_secs(365 * 86_400)));
    }

    #[test]
    fn an_unknown_action_is_named() {
        let e = parse_limits(
            "limits.toml",
            "[rate_limits.export]\nagent = { per_minute = 1, burst = 1 }\n[tokens]\nmax_lifetime = \"1h\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "rate_limits.export");
    }

    #[test]
    fn an_unknown_role_is_named() {
        let e = parse_limits(
            "limits.toml",
            "[rate_limits.lookup]\njanitor = { per_minute = 1, burst = 1 }\n[tokens]\nmax_lifetime = \"1h\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "rate_limits.lookup.janitor");
    }

    #[test]
    fn a_zero_or_negative_rate_is_refused() {
        for bad in ["0", "-5", "\"ten\"", "5000000000"] {
            let text = format!(
                "[rate_limits.reveal]\nagent = {{ per_minute = {bad}, burst = 1 }}\n[tokens]\nmax_lifetime = \"1h\"\n"
            );
            let e = parse_limits("limits.toml", &text).unwrap_err();
            assert_eq!(e.key, "rate_limits.reveal.agent.per_minute", "{bad}");
        }
    }

    #[test]
    fn a_missing_burst_is_required() {
        let e = parse_limits(
            "limits.toml",
            "[rate_limits.reveal]\nagent = { per_minute = 5 }\n[tokens]\nmax_lifetime = \"1h\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "rate_limits.reveal.agent.burst");
        assert_eq!(e.reason, "is required");
    }

    #[test]
    fn the_token_lifetime_cap_is_required_and_must_parse() {
        let e = parse_limits("limits.toml", "").unwrap_err();
        assert_eq!(e.key, "tokens");
        let e = parse_limits("limits.toml", "[tokens]\nmax_lifetime = \"forever\"\n").unwrap_err();
        assert_eq!(e.key, "tokens.max_lifetime");
    }

    #[test]
    fn the_shipped_limits_limit_sign_in_per_value_and_per_peer() {
        let s = shipped_limits().expect("valid").sign_in;
        assert!(s.start_per_value.is_some());
        assert!(s.start_per_peer.is_some());
        assert!(s.verify_per_peer.is_some());
    }

    #[test]
    fn a_bad_sign_in_limit_is_named() {
        let tokens = "[tokens]\nmax_lifetime = \"1h\"\n";
        let e = parse_limits(
            "limits.toml",
            &format!("[sign_in]\nper_value = {{ per_minute = 1, burst = 1 }}\n{tokens}"),
        )
        .unwrap_err();
        assert_eq!(e.key, "sign_in.per_value");
        let e = parse_limits(
            "limits.toml",
            &format!("[sign_in]\nstart_per_peer = {{ per_minute = 0, burst = 1 }}\n{tokens}"),
        )
        .unwrap_err();
        assert_eq!(e.key, "sign_in.start_per_peer.per_minute");
        let l = parse_limits(
            "limits.toml",
            &format!("[sign_in]\nverify_per_peer = {{ per_minute = 9, burst = 3 }}\n{tokens}"),
        )
        .unwrap();
        assert_eq!(
            l.sign_in.start_per_value, None,
            "a key left out is not limited"
        );
        assert_eq!(
            l.sign_in
                .verify_per_peer
                .map(|r| (r.per_minute.get(), r.burst.get())),
            Some((9, 3))
        );
    }

    #[test]
    fn no_rate_limits_at_all_is_allowed() {
        let l = parse_limits("limits.toml", "[tokens]\nmax_lifetime = \"8h\"\n").unwrap();
        assert!(l.rates.is_empty());
        assert_eq!(l.sign_in, SignInLimits::default());
        assert_eq!(l.token_max_lifetime, Duration::from_secs(8 * 3600));
    }
}
