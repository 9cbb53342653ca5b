//! A provider's verified claims onto the vault's [`Actor`], as auth.toml's
//! `[issuers.claims]` says. Pure, so every rule is unit-tested here.
//!
//! Decisions (README "Trusting an SSO provider"):
//! - The actor's `sub` is `<iss>|<sub>`: the provider's subject qualified by
//!   its issuer, so the audit log shows who vouched for the caller, and two
//!   providers (or a provider and the local issuer) cannot share an actor —
//!   not in the audit log and not in a rate-limit bucket.
//! - The role must be a staff role. `customer` is refused: a customer token
//!   names a customer id that only this vault knows, and a provider able to
//!   assert it could speak for any customer.
//! - Purposes come from an array or a space-separated string (a `scope`-like
//!   claim). Entries that are not purpose names are ignored: they name
//!   nothing the vault knows and can grant nothing.

use serde_json::{Map, Value};

use crate::{
    domain::{Actor, ChannelId, Purpose, Role},
    policy::issuers::{ClaimMap, RoleSource},
    token::TokenError,
};

/// Longest provider `sub` accepted.
const MAX_SUB_CHARS: usize = 256;
/// Most entries read from a purposes claim, and most purposes kept.
const MAX_PURPOSE_ENTRIES: usize = 64;
const MAX_PURPOSES: usize = 32;

/// The actor the claims of a token from `issuer` speak for.
pub fn actor(
    issuer: &str,
    map: &ClaimMap,
    claims: &Map<String, Value>,
) -> Result<Actor, TokenError> {
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.chars().count() <= MAX_SUB_CHARS)
        .ok_or(TokenError::Claim("sub"))?;
    let role = match &map.role {
        RoleSource::Fixed(role) => *role,
        RoleSource::Claim(name) => claims
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Role>().ok())
            .ok_or(TokenError::Claim("role"))?,
    };
    if role == Role::Customer {
        return Err(TokenError::Claim("role"));
    }
    let purposes = match &map.purposes {
        Some(name) => purposes(claims.get(name))?,
        None => Vec::new(),
    };
    let channel = match map.channel.as_ref().and_then(|name| claims.get(name)) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(ChannelId::parse(s).map_err(|_| TokenError::Claim("channel"))?)
        }
        Some(_) => return Err(TokenError::Claim("channel")),
    };
    Ok(Actor {
        sub: format!("{issuer}|{sub}"),
        role,
        purposes,
        channel,
        client: None,
        customer: None,
    })
}

/// The purposes of an array or space-separated string claim.
fn purposes(v: Option<&Value>) -> Result<Vec<Purpose>, TokenError> {
    let entries: Vec<&str> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split_whitespace().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().ok_or(TokenError::Claim("purposes")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(TokenError::Claim("purposes")),
    };
    if entries.len() > MAX_PURPOSE_ENTRIES {
        return Err(TokenError::Claim("purposes"));
    }
    let mut out: Vec<Purpose> = Vec::new();
    for p in entries.into_iter().filter_map(|e| Purpose::parse(e).ok()) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.len() > MAX_PURPOSES {
        return Err(TokenError::Claim("purposes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://sso.example.com/realms/shop";

    fn map() -> ClaimMap {
        ClaimMap {
            role: RoleSource::Claim("arkku_role".into()),
            purposes: Some("arkku_purposes".into()),
            channel: Some("arkku_channel".into()),
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn names(a: &Actor) -> Vec<&str> {
        a.purposes.iter().map(Purpose::as_str).collect()
    }

    #[test]
    fn the_claims_map_onto_role_purposes_and_channel() {
        let a = actor(
            ISS,
            &map(),
            &claims(json!({"sub": "alice", "arkku_role": "agent",
                "arkku_purposes": ["support", "marketing"], "arkku_channel": "phone"})),
        )
        .unwrap();
        assert_eq!(a.sub, format!("{ISS}|alice"));
        assert_eq!(a.role, Role::Agent);
        assert_eq!(names(&a), vec!["support", "marketing"]);
        assert_eq!(a.channel.unwrap().as_str(), "phone");
        assert!(a.client.is_none() && a.customer.is_none());
    }

    #[test]
    fn purposes_may_be_a_space_separated_string_and_other_scopes_are_ignored() {
        let a = actor(
            ISS,
            &map(),
            &claims(json!({"sub": "s", "arkku_role": "service",
                "arkku_purposes": "openid support read:all support  dsr"})),
        )
        .unwrap();
        assert_eq!(names(&a), vec!["openid", "support", "dsr"]);
    }

    #[test]
    fn missing_optional_claims_give_no_purposes_and_no_channel() {
        let a = actor(
            ISS,
            &map(),
            &claims(json!({"sub": "s", "arkku_role": "compliance"})),
        )
        .unwrap();
        assert!(a.purposes.is_empty());
        assert!(a.channel.is_none());
    }

    #[test]
    fn a_fixed_role_ignores_any_role_claim() {
        let mut m = map();
        m.role = RoleSource::Fixed(Role::Agent);
        let a = actor(ISS, &m, &claims(json!({"sub": "s", "arkku_role": "admin"}))).unwrap();
        assert_eq!(a.role, Role::Agent);
    }

    #[test]
    fn a_customer_role_from_a_provider_is_refused() {
        let e = actor(
            ISS,
            &map(),
            &claims(json!({"sub": "s", "arkku_role": "customer"})),
        );
        assert!(matches!(e, Err(TokenError::Claim("role"))));
    }

    #[test]
    fn bad_or_missing_claims_are_named() {
        let cases = [
            (json!({"arkku_role": "agent"}), "sub"),
            (json!({"sub": "", "arkku_role": "agent"}), "sub"),
            (json!({"sub": 5, "arkku_role": "agent"}), "sub"),
            (
                json!({"sub": "x".repeat(257), "arkku_role": "agent"}),
                "sub",
            ),
            (json!({"sub": "s"}), "role"),
            (json!({"sub": "s", "arkku_role": "janitor"}), "role"),
            (json!({"sub": "s", "arkku_role": ["agent"]}), "role"),
            (
                json!({"sub": "s", "arkku_role": "agent", "arkku_purposes": 3}),
                "purposes",
            ),
            (
                json!({"sub": "s", "arkku_role": "agent", "arkku_purposes": [1]}),
                "purposes",
            ),
            (
                json!({"sub": "s", "arkku_role": "agent", "arkku_channel": "Phone!"}),
                "channel",
            ),
            (
                json!({"sub": "s", "arkku_role": "agent", "arkku_channel": ["phone"]}),
                "channel",
            ),
        ];
        for (c, claim) in cases {
            match actor(ISS, &map(), &claims(c.clone())) {
                Err(TokenError::Claim(n)) => assert_eq!(n, claim, "{c}"),
                other => panic!("{c}: {other:?}"),
            }
        }
    }

    #[test]
    fn too_many_purposes_are_refused() {
        let many: Vec<String> = (0..33).map(|i| format!("p{i}")).collect();
        let e = actor(
            ISS,
            &map(),
            &claims(json!({"sub": "s", "arkku_role": "agent", "arkku_purposes": many})),
        );
        assert!(matches!(e, Err(TokenError::Claim("purposes"))));
        let entries = "x ".repeat(65);
        let e = actor(
            ISS,
            &map(),
            &claims(json!({"sub": "s", "arkku_role": "agent", "arkku_purposes": entries})),
        );
        assert!(matches!(e, Err(TokenError::Claim("purposes"))));
    }
}
