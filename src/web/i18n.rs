//! English and Finnish: the message catalogs (compiled in from
//! `i18n/en/*.toml` and `i18n/fi/*.toml`, one file per area of the pages,
//! merged into one catalog per language), and the choice of language — the
//! `lang` cookie the switch on every page sets, else the browser's
//! `Accept-Language` by its q-values, else English.

use std::{collections::HashMap, sync::OnceLock};

use axum::http::{header, HeaderMap};

/// The cookie the language switch sets.
pub const LANG_COOKIE: &str = "lang";

/// Each language's catalog files, one per area. A new area adds its pair
/// here; a key defined in two files of one language fails a unit test.
const EN: &[&str] = &[
    include_str!("i18n/en/frame.toml"),
    include_str!("i18n/en/audit.toml"),
    include_str!("i18n/en/subjects.toml"),
    include_str!("i18n/en/keys.toml"),
    include_str!("i18n/en/privacy.toml"),
];
const FI: &[&str] = &[
    include_str!("i18n/fi/frame.toml"),
    include_str!("i18n/fi/audit.toml"),
    include_str!("i18n/fi/subjects.toml"),
    include_str!("i18n/fi/keys.toml"),
    include_str!("i18n/fi/privacy.toml"),
];

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Fi,
}

impl Lang {
    /// The BCP 47 tag, for `<html lang>` and the switch's link.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fi => "fi",
        }
    }

    /// The language of a tag's primary subtag (`fi`, `fi-FI`, `EN-gb`).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split('-').next()?.trim();
        if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else if primary.eq_ignore_ascii_case("fi") {
            Some(Lang::Fi)
        } else {
            None
        }
    }

    /// The other language, which the switch offers.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Fi,
            Lang::Fi => Lang::En,
        }
    }

    /// The message `key` in this language (the key itself if the catalog
    /// lacks it, which the unit tests rule out for the shipped templates).
    pub fn t(self, key: &str) -> &'static str {
        let catalog = match self {
            Lang::En => catalog(&EN_CATALOG, EN),
            Lang::Fi => catalog(&FI_CATALOG, FI),
        };
        match catalog.get(key) {
            Some(text) => text.as_str(),
            None => {
                tracing::warn!(key, "a message key is missing from a catalog");
                "?"
            }
        }
    }

    /// The message `key` in this language, if the catalog has it (for
    /// names built at run time, such as a channel's).
    pub fn t_opt(self, key: &str) -> Option<&'static str> {
        let catalog = match self {
            Lang::En => catalog(&EN_CATALOG, EN),
            Lang::Fi => catalog(&FI_CATALOG, FI),
        };
        catalog.get(key).map(String::as_str)
    }

    /// The language for a request: its `lang` cookie, else its
    /// `Accept-Language`, else English.
    pub fn of_request(headers: &HeaderMap) -> Lang {
        let cookie = super::cookies(headers)
            .find(|(name, _)| name == LANG_COOKIE)
            .and_then(|(_, value)| Lang::from_tag(&value));
        cookie.unwrap_or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(negotiate)
                .unwrap_or_default()
        })
    }
}

static EN_CATALOG: OnceLock<HashMap<String, String>> = OnceLock::new();
static FI_CATALOG: OnceLock<HashMap<String, String>> = OnceLock::new();

fn catalog(
    cell: &'static OnceLock<HashMap<String, String>>,
    files: &[&str],
) -> &'static HashMap<String, String> {
    // The catalogs are compiled in and parsed by a unit test, so a parse
    // failure here cannot pass CI; were it to happen, that file's messages
    // show "?".
    cell.get_or_init(|| {
        files
            .iter()
            .flat_map(|text| toml::from_str::<HashMap<String, String>>(text).unwrap_or_default())
            .collect()
    })
}

/// The supported language an `Accept-Language` value prefers most (RFC 9110
/// §12.5.4: highest q first, then the order given; q=0 means "not this").
pub fn negotiate(accept: &str) -> Lang {
    let mut best: Option<(u16, Lang)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::from_tag) else {
            continue;
        };
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q=").map(quality))
            .unwrap_or(Some(1000));
        let Some(q) = q.filter(|&q| q > 0) else {
            continue;
        };
        if best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l).unwrap_or_default()
}

/// A q-value in thousandths; `None` if malformed.
fn quality(text: &str) -> Option<u16> {
    let q: f32 = text.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&q)
        .then(|| (q * 1000.0).round() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(text: &str) -> BTreeSet<String> {
        let map: HashMap<String, String> = toml::from_str(text).expect("catalog parses");
        map.into_keys().collect()
    }

    /// A language's keys; each defined in one file only.
    fn all_keys(files: &[&str]) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for text in files {
            for key in keys(text) {
                assert!(all.insert(key.clone()), "{key} is in two catalog files");
            }
        }
        all
    }

    #[test]
    fn both_catalogs_have_the_same_keys_file_by_file() {
        assert_eq!(EN.len(), FI.len());
        for (en, fi) in EN.iter().zip(FI) {
            assert_eq!(keys(en), keys(fi));
        }
        assert_eq!(all_keys(EN), all_keys(FI));
    }

    #[test]
    fn every_key_a_template_or_handler_uses_is_in_the_catalogs() {
        let known = all_keys(EN);
        // Every template and every Rust file under src/web, walked: handlers
        // name message keys too.
        let mut files = vec![];
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).expect("src/web") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "html" || e == "rs") {
                    files.push(std::fs::read_to_string(&path).expect("readable"));
                }
            }
        }
        assert!(files.len() > 4, "the templates were found");
        for text in files {
            for used in text.split(".t(\"").skip(1) {
                let key = used.split('"').next().unwrap_or_default();
                if !key.contains('{') {
                    assert!(known.contains(key), "unknown message key {key}");
                }
            }
        }
    }

    #[test]
    fn accept_language_is_read_by_its_q_values() {
        assert_eq!(negotiate("fi"), Lang::Fi);
        assert_eq!(negotiate("fi-FI,fi;q=0.9,en;q=0.8"), Lang::Fi);
        assert_eq!(negotiate("en;q=0.5, fi;q=0.8"), Lang::Fi);
        assert_eq!(negotiate("sv, fi;q=0.3, en;q=0.2"), Lang::Fi);
        assert_eq!(negotiate("fi;q=0, en"), Lang::En);
        assert_eq!(negotiate("de, sv"), Lang::En);
        assert_eq!(negotiate("fi;q=bogus, en;q=0.1"), Lang::En);
        assert_eq!(negotiate(""), Lang::En);
        assert_eq!(negotiate("en, fi"), Lang::En);
    }
}
