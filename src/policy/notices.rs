//! `notices.toml`: the consent notice of each consent-based purpose, in
//! English and Finnish. The privacy page shows a purpose's notice beside its
//! switch, and a grant made there records the notice's id and version as its
//! evidence, so the text the customer read can be shown later.
//!
//! Loaded and validated with the other policies (`arkku policy check`): every
//! consent-based purpose needs a notice, and a notice names an existing
//! consent-based purpose.

use std::collections::BTreeMap;

use super::{
    load::{shown, PolicyError},
    model::{LawfulBasis, PurposePolicy},
};
use crate::domain::Purpose;

/// The shipped notices, compiled in; used when a policy directory has none.
pub const SHIPPED_NOTICES: &str = include_str!("../../policies/notices.toml");

/// Longest notice text accepted, per language.
const MAX_TEXT: usize = 2000;

/// One purpose's consent notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The evidence's `notice_id`.
    pub id: String,
    /// The evidence's `notice_version`.
    pub version: String,
    pub text_en: String,
    pub text_fi: String,
}

fn err(file: &str, key: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        file: file.to_owned(),
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Parses `notices.toml` against the purposes it must cover.
pub fn parse_notices(
    file: &str,
    text: &str,
    purposes: &BTreeMap<Purpose, PurposePolicy>,
) -> Result<BTreeMap<Purpose, Notice>, PolicyError> {
    let doc: toml::Table =
        toml::from_str(text).map_err(|e| err(file, "(file)", format!("not TOML: {e}")))?;
    if let Some(other) = doc.keys().find(|k| *k != "notices") {
        return Err(err(
            file,
            other,
            "unknown key (expected [notices.<purpose>])",
        ));
    }
    let empty = toml::Table::new();
    let notices = match doc.get("notices") {
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err(err(file, "notices", "must be a table")),
        None => &empty,
    };
    let mut out = BTreeMap::new();
    for (name, value) in notices {
        let key = format!("notices.{name}");
        let purpose = Purpose::parse(name)
            .ok()
            .filter(|p| purposes.contains_key(p))
            .ok_or_else(|| {
                err(
                    file,
                    &key,
                    format!("no purpose {} in purposes.toml", shown(name)),
                )
            })?;
        if purposes[&purpose].lawful_basis != LawfulBasis::Consent {
            return Err(err(file, &key, "the purpose does not rest on consent"));
        }
        let toml::Value::Table(t) = value else {
            return Err(err(file, &key, "must be a table"));
        };
        out.insert(purpose, parse_notice(file, &key, t)?);
    }
    for (purpose, policy) in purposes {
        if policy.lawful_basis == LawfulBasis::Consent && !out.contains_key(purpose) {
            return Err(err(
                file,
                &format!("notices.{purpose}"),
                "missing: every consent-based purpose needs a notice",
            ));
        }
    }
    Ok(out)
}

fn parse_notice(file: &str, key: &str, t: &toml::Table) -> Result<Notice, PolicyError> {
    if let Some(other) = t
        .keys()
        .find(|k| !["id", "version", "text_en", "text_fi"].contains(&k.as_str()))
    {
        return Err(err(file, &format!("{key}.{other}"), "unknown key"));
    }
    let field = |name: &str, max: usize, ok: fn(char) -> bool| {
        let k = format!("{key}.{name}");
        let v = t
            .get(name)
            .ok_or_else(|| err(file, &k, "required"))?
            .as_str()
            .ok_or_else(|| err(file, &k, "must be a string"))?;
        let good = !v.trim().is_empty() && v.chars().count() <= max && v.chars().all(ok);
        if good {
            Ok(v.to_owned())
        } else {
            Err(err(file, &k, format!("not accepted: {}", shown(v))))
        }
    };
    let name_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c);
    let version_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    let text_char = |c: char| !c.is_control() || c == '\n';
    Ok(Notice {
        id: field("id", 64, name_char)?,
        version: field("version", 32, version_char)?,
        text_en: field("text_en", MAX_TEXT, text_char)?,
        text_fi: field("text_fi", MAX_TEXT, text_char)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load_shipped;

    #[test]
    fn the_shipped_notices_cover_every_consent_purpose() {
        let p = load_shipped().expect("policies");
        for name in ["cross_channel", "marketing"] {
            let notice = p.notice(name).expect(name);
            assert!(!notice.text_fi.is_empty() && !notice.version.is_empty());
        }
        assert!(p.notice("support").is_none());
    }

    #[test]
    fn a_missing_unknown_or_malformed_notice_is_named() {
        let p = load_shipped().expect("policies");
        let only_one = "[notices.cross_channel]\nid = \"a\"\nversion = \"1\"\ntext_en = \"x\"\ntext_fi = \"y\"\n";
        let e = parse_notices("n.toml", only_one, &p.purposes).unwrap_err();
        assert_eq!(e.key, "notices.marketing");
        let unknown = format!("{only_one}[notices.nosuch]\nid = \"b\"\n");
        let e = parse_notices("n.toml", &unknown, &p.purposes).unwrap_err();
        assert_eq!(e.key, "notices.nosuch");
        let support = "[notices.support]\nid = \"a\"\n";
        let e = parse_notices("n.toml", support, &p.purposes).unwrap_err();
        assert!(e.reason.contains("consent"), "{e}");
        let bad_id = only_one.replace("id = \"a\"", "id = \"A B\"");
        let e = parse_notices("n.toml", &bad_id, &p.purposes).unwrap_err();
        assert_eq!(e.key, "notices.cross_channel.id");
    }
}
