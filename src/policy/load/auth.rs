//! Parses and validates `auth.toml`, the trusted external issuers. Like the
//! other policy files, every error names the file, the key (`issuers[0].…`,
//! counted from 0 in file order) and the offending value.

use std::{net::IpAddr, path::Path};

use toml::{Table, Value};

use super::{
    err,
    fields::{only_keys, required, string, table},
    parse_duration, shown, shown_value, PolicyError,
};
use crate::{
    config::LOCAL_ISSUER,
    domain::Role,
    policy::issuers::{
        Algorithm, ClaimMap, IssuerPolicy, KeySource, RoleSource, DEFAULT_REFRESH, MIN_REFRESH,
    },
};

/// Longest issuer, audience or claim name accepted.
const MAX_NAME_CHARS: usize = 256;

const ISSUER_KEYS: [&str; 7] = [
    "issuer",
    "audience",
    "jwks_uri",
    "jwks_file",
    "algorithms",
    "claims",
    "refresh",
];

/// Parses the text of `auth.toml`; a relative `jwks_file` is taken from `dir`
/// (the directory auth.toml is in). A file without `issuers` trusts none.
pub fn parse_auth(file: &str, text: &str, dir: &Path) -> Result<Vec<IssuerPolicy>, PolicyError> {
    let root: Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(file, "(syntax)", e.message().to_owned()))?;
    if let Some(k) = root.keys().find(|k| k.as_str() != "issuers") {
        return Err(err(file, k.as_str(), "unknown key (expected issuers)"));
    }
    let Some(v) = root.get("issuers") else {
        return Ok(Vec::new());
    };
    let list = v.as_array().ok_or_else(|| {
        err(
            file,
            "issuers",
            format!(
                "must be a list of [[issuers]] tables, not {}",
                shown_value(v)
            ),
        )
    })?;
    let mut out: Vec<IssuerPolicy> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let prefix = format!("issuers[{i}]");
        let p = parse_issuer(file, &prefix, table(file, &prefix, v)?, dir)?;
        if out.iter().any(|o| o.issuer == p.issuer) {
            return Err(err(
                file,
                format!("{prefix}.issuer"),
                format!("{} is listed twice", shown(&p.issuer)),
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// One `[[issuers]]` table.
fn parse_issuer(
    file: &str,
    prefix: &str,
    t: &Table,
    dir: &Path,
) -> Result<IssuerPolicy, PolicyError> {
    only_keys(file, prefix, t, &ISSUER_KEYS)?;
    let key = format!("{prefix}.issuer");
    let issuer = name(file, &key, required(file, prefix, t, "issuer")?)?;
    if issuer == LOCAL_ISSUER {
        return Err(err(
            file,
            key,
            format!(
                "{} is the vault's own issuer (the tokens of `arkku token`); \
                 a foreign issuer cannot take its name",
                shown(&issuer)
            ),
        ));
    }
    let key = format!("{prefix}.audience");
    let audience = name(file, &key, required(file, prefix, t, "audience")?)?;
    let keys = match (t.get("jwks_uri"), t.get("jwks_file")) {
        (Some(_), Some(_)) => {
            return Err(err(
                file,
                format!("{prefix}.jwks_file"),
                "set jwks_uri or jwks_file, not both",
            ))
        }
        (None, None) => {
            return Err(err(
                file,
                format!("{prefix}.jwks_uri"),
                "is required (or jwks_file)",
            ))
        }
        (Some(v), None) => KeySource::Uri(jwks_uri(file, &format!("{prefix}.jwks_uri"), v)?),
        (None, Some(v)) => {
            let key = format!("{prefix}.jwks_file");
            let s = string(file, &key, v)?;
            if s.trim().is_empty() {
                return Err(err(file, key, "must name a file"));
            }
            KeySource::File(dir.join(s))
        }
    };
    let key = format!("{prefix}.algorithms");
    let algorithms = algorithms(file, &key, required(file, prefix, t, "algorithms")?)?;
    let key = format!("{prefix}.claims");
    let claims = claim_map(
        file,
        &key,
        table(file, &key, required(file, prefix, t, "claims")?)?,
    )?;
    let key = format!("{prefix}.refresh");
    let refresh = match t.get("refresh") {
        None => DEFAULT_REFRESH,
        Some(v) => {
            let d = parse_duration(file, &key, v)?;
            if d < MIN_REFRESH {
                return Err(err(
                    file,
                    key,
                    format!("{} is too often: at least \"30s\"", shown_value(v)),
                ));
            }
            d
        }
    };
    Ok(IssuerPolicy {
        issuer,
        audience,
        keys,
        algorithms,
        claims,
        refresh,
    })
}

/// A non-empty string of at most [`MAX_NAME_CHARS`] characters.
fn name(file: &str, key: &str, v: &Value) -> Result<String, PolicyError> {
    let s = string(file, key, v)?;
    if s.trim().is_empty() {
        return Err(err(file, key, "must not be empty"));
    }
    if s.chars().count() > MAX_NAME_CHARS || s.chars().any(char::is_control) {
        return Err(err(
            file,
            key,
            format!(
                "{} must be at most {MAX_NAME_CHARS} printable characters",
                shown(s)
            ),
        ));
    }
    Ok(s.to_owned())
}

/// The JWKS address: HTTPS, or plain HTTP to a loopback host only (a key
/// set fetched in the clear could be replaced on the way, and whoever
/// replaces it mints tokens); no credentials in the URL (it is logged).
fn jwks_uri(file: &str, key: &str, v: &Value) -> Result<reqwest::Url, PolicyError> {
    let s = string(file, key, v)?;
    let url = reqwest::Url::parse(s)
        .map_err(|e| err(file, key, format!("{} is not a URL ({e})", shown(s))))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err(
            file,
            key,
            "must not carry credentials (a JWKS is public)",
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(err(
            file,
            key,
            format!(
                "{} must be https (plain http only to a loopback host such as \
                 127.0.0.1 or localhost): keys fetched in the clear can be replaced on the way",
                shown(s)
            ),
        )),
        _ => Err(err(file, key, format!("{} must be an https URL", shown(s)))),
    }
}

/// `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The allow-list: RS256, ES256 and EdDSA only; HS* refused with its reason.
fn algorithms(file: &str, key: &str, v: &Value) -> Result<Vec<Algorithm>, PolicyError> {
    let list = v.as_array().ok_or_else(|| {
        err(
            file,
            key,
            format!(
                "must be a list such as [\"RS256\", \"ES256\"], not {}",
                shown_value(v)
            ),
        )
    })?;
    if list.is_empty() {
        return Err(err(file, key, "must list at least one algorithm"));
    }
    let mut out = Vec::new();
    for v in list {
        let s = string(file, key, v)?;
        let alg = match s {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            "EdDSA" => Algorithm::EdDSA,
            hs if hs.to_ascii_uppercase().starts_with("HS") => {
                return Err(err(
                    file,
                    key,
                    format!(
                        "{} is a shared-secret (HMAC) algorithm: whoever can verify its \
                         tokens can also mint them, so a foreign issuer may never use it \
                         (expected RS256, ES256 or EdDSA)",
                        shown(hs)
                    ),
                ))
            }
            other => {
                return Err(err(
                    file,
                    key,
                    format!(
                        "unsupported algorithm {} (expected RS256, ES256 or EdDSA)",
                        shown(other)
                    ),
                ))
            }
        };
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    Ok(out)
}

/// `[issuers.claims]`: `role` or `fixed_role`, and optionally `purposes`
/// and `channel`, each the name of a claim in the provider's tokens.
fn claim_map(file: &str, prefix: &str, t: &Table) -> Result<ClaimMap, PolicyError> {
    only_keys(
        file,
        prefix,
        t,
        &["role", "fixed_role", "purposes", "channel"],
    )?;
    let claim = |k: &str| -> Result<Option<String>, PolicyError> {
        t.get(k)
            .map(|v| name(file, &format!("{prefix}.{k}"), v))
            .transpose()
    };
    let role = match (claim("role")?, t.get("fixed_role")) {
        (Some(_), Some(_)) => {
            return Err(err(
                file,
                format!("{prefix}.fixed_role"),
                "set role (a claim name) or fixed_role, not both",
            ))
        }
        (None, None) => {
            return Err(err(
                file,
                format!("{prefix}.role"),
                "is required (the claim holding the role), or fixed_role",
            ))
        }
        (Some(c), None) => RoleSource::Claim(c),
        (None, Some(v)) => RoleSource::Fixed(fixed_role(file, &format!("{prefix}.fixed_role"), v)?),
    };
    Ok(ClaimMap {
        role,
        purposes: claim("purposes")?,
        channel: claim("channel")?,
    })
}

/// A staff role; `customer` is refused (see [`crate::identity::issuers`]).
fn fixed_role(file: &str, key: &str, v: &Value) -> Result<Role, PolicyError> {
    let s = string(file, key, v)?;
    match s.parse::<Role>() {
        Ok(Role::Customer) => Err(err(
            file,
            key,
            "\"customer\" cannot come from a foreign issuer: a customer token names a \
             customer id only this vault knows (customers sign in with a one-time code)",
        )),
        Ok(role) => Ok(role),
        Err(_) => Err(err(
            file,
            key,
            format!(
                "unknown role {} (expected agent, service, compliance or admin)",
                shown(s)
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
