//! An issuer's public keys, parsed from its JWKS (RFC 7517) with the
//! algorithm pinned per key.
//!
//! Each key is given the one algorithm its type allows — RSA → RS256,
//! P-256 → ES256, Ed25519 → EdDSA — and is kept only if that algorithm is on
//! the issuer's allow-list and agrees with the key's own `alg`, if it names
//! one. A token is then verified only with the algorithm of the key its
//! `kid` picks, so an `alg` header cannot choose how a key is used (no
//! HS256 with a public key as the secret, no RS256 against an EC key).
//! Symmetric (`oct`) keys, encryption keys, other curves and keys this
//! version cannot read are skipped, so one odd key does not cost the others.

use std::sync::Arc;

use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse},
    Algorithm, DecodingKey,
};
use serde::Deserialize;

/// Most keys read from one JWKS; providers publish a handful.
pub const MAX_KEYS: usize = 64;

/// One usable verification key.
pub struct VerifyKey {
    pub kid: Option<String>,
    /// The one algorithm this key verifies.
    pub alg: Algorithm,
    pub key: DecodingKey,
    /// As published, to recognise the same key in the next fetch.
    jwk: Jwk,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The usable keys of one issuer at one time.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyKey>>,
}

/// Why a JWKS gave no keys.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("not a JWKS: {0}")]
    NotJwks(String),
    #[error("no usable key ({0} skipped: wrong type, curve, use or algorithm)")]
    NoUsableKey(usize),
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// The key a token's `kid` names; a token without `kid` is verified
    /// only when the set holds exactly one key.
    pub fn find(&self, kid: Option<&str>) -> Option<&Arc<VerifyKey>> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }

    /// Whether `key` is still one of this set's keys (the very same one,
    /// not merely one with the same `kid`).
    pub fn holds(&self, key: &Arc<VerifyKey>) -> bool {
        self.keys.iter().any(|k| Arc::ptr_eq(k, key))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `kid`s, for logs.
    pub fn kids(&self) -> Vec<&str> {
        self.keys
            .iter()
            .map(|k| k.kid.as_deref().unwrap_or("-"))
            .collect()
    }

    /// Parses a JWKS document, keeping the keys usable with `allowed`. A
    /// key equal to one of `previous` keeps its identity, so tokens cached
    /// as verified by it stay cached across a refresh. Also returns how many
    /// keys were skipped.
    pub fn parse(
        bytes: &[u8],
        allowed: &[Algorithm],
        previous: &KeySet,
    ) -> Result<(KeySet, usize), JwksError> {
        let raw: RawSet =
            serde_json::from_slice(bytes).map_err(|e| JwksError::NotJwks(e.to_string()))?;
        let mut keys: Vec<Arc<VerifyKey>> = Vec::new();
        let mut skipped = 0;
        for value in raw.keys.into_iter().take(MAX_KEYS) {
            let Some(key) = usable(value, allowed) else {
                skipped += 1;
                continue;
            };
            // Two keys under one kid: which one a token means is ambiguous;
            // the first wins, as most libraries do.
            if keys.iter().any(|k| k.kid == key.kid) {
                skipped += 1;
                continue;
            }
            let kept = previous.keys.iter().find(|k| k.jwk == key.jwk).cloned();
            keys.push(kept.unwrap_or_else(|| Arc::new(key)));
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey(skipped));
        }
        Ok((KeySet { keys }, skipped))
    }
}

/// The key in `value`, if it is a signature key of a type we pin and its
/// algorithm is allowed.
fn usable(value: serde_json::Value, allowed: &[Algorithm]) -> Option<VerifyKey> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    if jwk
        .common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return None;
    }
    let alg = pinned_algorithm(&jwk)?;
    if !allowed.contains(&alg) {
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
        jwk,
    })
}

/// The one algorithm a key of this type verifies, if the key's own `alg`
/// (when it names one) agrees.
fn pinned_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let (alg, named) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
        }
        // Symmetric keys, and curves we do not pin.
        _ => return None,
    };
    match jwk.common.key_algorithm {
        Some(a) if a != named => None,
        _ => Some(alg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALL: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    /// A made-up but well-formed RSA public key (the verifier reads n and e
    /// only when it verifies).
    fn rsa(kid: &str) -> serde_json::Value {
        json!({"kty": "RSA", "kid": kid, "use": "sig", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"})
    }

    fn ec(kid: &str) -> serde_json::Value {
        json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    fn set(keys: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }

    fn parse(
        keys: Vec<serde_json::Value>,
        allowed: &[Algorithm],
    ) -> Result<(KeySet, usize), JwksError> {
        KeySet::parse(&set(keys), allowed, &KeySet::default())
    }

    #[test]
    fn each_key_type_is_pinned_to_one_algorithm() {
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let (ks, skipped) = parse(vec![rsa("r"), ec("e"), ed], &ALL).unwrap();
        assert_eq!(skipped, 0);
        assert_eq!(ks.find(Some("r")).unwrap().alg, Algorithm::RS256);
        assert_eq!(ks.find(Some("e")).unwrap().alg, Algorithm::ES256);
        assert_eq!(ks.find(Some("ed")).unwrap().alg, Algorithm::EdDSA);
    }

    #[test]
    fn keys_outside_the_allow_list_are_skipped() {
        let (ks, skipped) = parse(vec![rsa("r"), ec("e")], &[Algorithm::ES256]).unwrap();
        assert_eq!(skipped, 1);
        assert!(ks.find(Some("r")).is_none());
        assert!(ks.find(Some("e")).is_some());
    }

    #[test]
    fn symmetric_keys_are_never_used() {
        let oct = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0", "alg": "HS256"});
        let e = parse(vec![oct], &ALL).unwrap_err();
        assert!(matches!(e, JwksError::NoUsableKey(1)), "{e}");
    }

    #[test]
    fn a_key_whose_own_alg_disagrees_is_skipped() {
        let mut r = rsa("r");
        r["alg"] = json!("PS256");
        let mut e = ec("e");
        e["alg"] = json!("RS256");
        let mut ok = rsa("ok");
        ok["alg"] = json!("RS256");
        let (ks, skipped) = parse(vec![r, e, ok], &ALL).unwrap();
        assert_eq!(skipped, 2);
        assert_eq!(ks.kids(), vec!["ok"]);
    }

    #[test]
    fn encryption_keys_other_curves_and_unreadable_keys_are_skipped() {
        let mut enc = rsa("enc");
        enc["use"] = json!("enc");
        let mut p384 = ec("p384");
        p384["crv"] = json!("P-384");
        let odd = json!({"kty": "AKP", "kid": "pq"});
        let (ks, skipped) = parse(vec![enc, p384, odd, ec("e")], &ALL).unwrap();
        assert_eq!(skipped, 3);
        assert_eq!(ks.kids(), vec!["e"]);
    }

    #[test]
    fn a_token_without_kid_needs_a_single_key() {
        let (one, _) = parse(vec![ec("e")], &ALL).unwrap();
        assert!(one.find(None).is_some());
        let (two, _) = parse(vec![ec("e"), rsa("r")], &ALL).unwrap();
        assert!(two.find(None).is_none());
    }

    #[test]
    fn an_unchanged_key_keeps_its_identity_across_a_refresh() {
        let (first, _) = parse(vec![ec("e"), rsa("r")], &ALL).unwrap();
        let kept = Arc::clone(first.find(Some("e")).unwrap());
        let (second, _) = KeySet::parse(&set(vec![ec("e")]), &ALL, &first).unwrap();
        assert!(second.holds(&kept));
        let gone = Arc::clone(first.find(Some("r")).unwrap());
        assert!(!second.holds(&gone));
    }

    #[test]
    fn garbage_is_not_a_jwks() {
        assert!(matches!(
            KeySet::parse(b"<html>", &ALL, &KeySet::default()),
            Err(JwksError::NotJwks(_))
        ));
        assert!(matches!(
            KeySet::parse(b"{\"keys\": 5}", &ALL, &KeySet::default()),
            Err(JwksError::NotJwks(_))
        ));
    }
}
