//! Unit tests of the `auth.toml` loader: every bad value is named with its
//! file, key and the value itself.

use std::path::Path;

use super::*;

const GOOD: &str = r#"
[[issuers]]
issuer = "https://sso.example.com/realms/shop"
audience = "arkku"
jwks_uri = "https://sso.example.com/realms/shop/protocol/openid-connect/certs"
algorithms = ["RS256", "ES256"]
[issuers.claims]
role = "arkku_role"
purposes = "arkku_purposes"
channel = "arkku_channel"
"#;

fn parse(text: &str) -> Result<Vec<IssuerPolicy>, PolicyError> {
    parse_auth("auth.toml", text, Path::new("/etc/arkku/policies"))
}

/// The error for [`GOOD`] with `from` replaced by `to`.
fn error_with(from: &str, to: &str) -> PolicyError {
    assert!(GOOD.contains(from), "{from}");
    parse(&GOOD.replace(from, to)).unwrap_err()
}

#[test]
fn the_design_example_loads() {
    let p = parse(GOOD).expect("valid");
    assert_eq!(p.len(), 1);
    let i = &p[0];
    assert_eq!(i.issuer, "https://sso.example.com/realms/shop");
    assert_eq!(i.audience, "arkku");
    assert_eq!(i.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(i.claims.role, RoleSource::Claim("arkku_role".into()));
    assert_eq!(i.claims.purposes.as_deref(), Some("arkku_purposes"));
    assert_eq!(i.claims.channel.as_deref(), Some("arkku_channel"));
    assert_eq!(i.refresh, DEFAULT_REFRESH);
    assert!(matches!(&i.keys, KeySource::Uri(u) if u.scheme() == "https"));
}

#[test]
fn an_empty_file_trusts_no_issuer() {
    assert!(parse("").unwrap().is_empty());
    assert!(parse("# only comments\n").unwrap().is_empty());
}

#[test]
fn hmac_algorithms_are_refused_with_the_reason() {
    for hs in ["HS256", "HS384", "HS512", "hs256"] {
        let e = error_with("\"ES256\"]", &format!("\"{hs}\"]"));
        assert_eq!(e.file, "auth.toml");
        assert_eq!(e.key, "issuers[0].algorithms");
        assert!(e.reason.contains(&format!("\"{hs}\"")), "{e}");
        assert!(e.reason.contains("shared-secret"), "{e}");
    }
}

#[test]
fn other_algorithms_are_refused_by_name() {
    for alg in ["none", "PS256", "RS512", "ES384", "rs256"] {
        let e = error_with("\"ES256\"]", &format!("\"{alg}\"]"));
        assert_eq!(e.key, "issuers[0].algorithms");
        assert!(
            e.reason
                .contains(&format!("unsupported algorithm \"{alg}\"")),
            "{e}"
        );
    }
    let e = error_with("[\"RS256\", \"ES256\"]", "[]");
    assert_eq!(e.key, "issuers[0].algorithms");
    let e = error_with("[\"RS256\", \"ES256\"]", "\"RS256\"");
    assert!(e.reason.contains("must be a list"), "{e}");
}

#[test]
fn exactly_one_key_source_is_required() {
    let e = error_with("jwks_uri = ", "jwks_file = \"keys.json\"\njwks_uri = ");
    assert_eq!(e.key, "issuers[0].jwks_file");
    let text: String = GOOD
        .lines()
        .filter(|l| !l.starts_with("jwks_uri"))
        .collect::<Vec<_>>()
        .join("\n");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.key, "issuers[0].jwks_uri");
    assert_eq!(e.reason, "is required (or jwks_file)");
}

#[test]
fn a_relative_jwks_file_is_taken_from_the_policy_directory() {
    let text = GOOD.replace(
        "jwks_uri = \"https://sso.example.com/realms/shop/protocol/openid-connect/certs\"",
        "jwks_file = \"sso/keys.json\"",
    );
    let p = parse(&text).unwrap();
    assert_eq!(
        p[0].keys,
        KeySource::File(Path::new("/etc/arkku/policies/sso/keys.json").into())
    );
}

#[test]
fn the_jwks_uri_must_be_https_except_to_a_loopback_host() {
    let uri = "https://sso.example.com/realms/shop/protocol/openid-connect/certs";
    for ok in [
        "http://127.0.0.1:8081/certs",
        "http://127.9.9.9/certs",
        "http://localhost:9000/certs",
        "http://[::1]:9000/certs",
    ] {
        let p = parse(&GOOD.replace(uri, ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert!(matches!(&p[0].keys, KeySource::Uri(_)));
    }
    for bad in [
        "http://sso.example.com/certs",
        "http://10.0.0.1/certs",
        "http://localhost.example.com/certs",
        "ftp://sso.example.com/certs",
        "file:///etc/keys.json",
        "not a url",
        "https://user:pw@sso.example.com/certs",
    ] {
        let e = error_with(uri, bad);
        assert_eq!(e.key, "issuers[0].jwks_uri", "{bad}");
    }
    let e = error_with(uri, "http://sso.example.com/certs");
    assert!(
        e.reason
            .contains("\"http://sso.example.com/certs\" must be https"),
        "{e}"
    );
}

#[test]
fn the_local_issuers_name_cannot_be_taken() {
    let e = error_with("https://sso.example.com/realms/shop\"", "arkku-local\"");
    assert_eq!(e.key, "issuers[0].issuer");
    assert!(e.reason.contains("\"arkku-local\""), "{e}");
}

#[test]
fn an_issuer_listed_twice_is_named() {
    let text = format!("{GOOD}\n{GOOD}");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.key, "issuers[1].issuer");
    assert!(e.reason.contains("listed twice"), "{e}");
}

#[test]
fn role_or_fixed_role_exactly_one() {
    let e = error_with(
        "role = \"arkku_role\"",
        "fixed_role = \"agent\"\nrole = \"r\"",
    );
    assert_eq!(e.key, "issuers[0].claims.fixed_role");
    let e = error_with("role = \"arkku_role\"\n", "");
    assert_eq!(e.key, "issuers[0].claims.role");
    let p = parse(&GOOD.replace("role = \"arkku_role\"", "fixed_role = \"compliance\"")).unwrap();
    assert_eq!(p[0].claims.role, RoleSource::Fixed(Role::Compliance));
}

#[test]
fn a_fixed_customer_role_is_refused() {
    let e = error_with("role = \"arkku_role\"", "fixed_role = \"customer\"");
    assert_eq!(e.key, "issuers[0].claims.fixed_role");
    assert!(e.reason.contains("\"customer\""), "{e}");
    let e = error_with("role = \"arkku_role\"", "fixed_role = \"janitor\"");
    assert!(e.reason.contains("unknown role \"janitor\""), "{e}");
}

#[test]
fn unknown_keys_are_named() {
    let e = error_with("audience = ", "audiences = \"x\"\naudience = ");
    assert_eq!(e.key, "issuers[0].audiences");
    let e = error_with("channel = ", "scope = \"x\"\nchannel = ");
    assert_eq!(e.key, "issuers[0].claims.scope");
    let e = parse("trust_everyone = true\n").unwrap_err();
    assert_eq!(e.key, "trust_everyone");
}

#[test]
fn missing_and_empty_fields_are_named() {
    let e = error_with("audience = \"arkku\"\n", "");
    assert_eq!(e.key, "issuers[0].audience");
    assert_eq!(e.reason, "is required");
    let e = error_with("audience = \"arkku\"", "audience = \" \"");
    assert_eq!(e.key, "issuers[0].audience");
    let e = error_with("audience = \"arkku\"", "audience = 7");
    assert_eq!(e.reason, "must be a string, not 7");
}

#[test]
fn the_refresh_interval_is_optional_and_at_least_thirty_seconds() {
    let p = parse(&GOOD.replace("audience = ", "refresh = \"15m\"\naudience = ")).unwrap();
    assert_eq!(p[0].refresh, std::time::Duration::from_secs(900));
    let e = error_with("audience = ", "refresh = \"5s\"\naudience = ");
    assert_eq!(e.key, "issuers[0].refresh");
    assert!(e.reason.contains("\"5s\""), "{e}");
    let e = error_with("audience = ", "refresh = \"often\"\naudience = ");
    assert_eq!(e.key, "issuers[0].refresh");
}
