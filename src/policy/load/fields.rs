//! Reading TOML values for the policy loader, with errors that name the
//! file, the key and the offending value (quoted, cut at 40 characters).

use std::time::Duration;

use toml::{Table, Value};

use super::{err, PolicyError};

/// Longest part of an offending value an error repeats, in characters.
const SHOWN_CHARS: usize = 40;

/// An offending string as an error shows it: quoted, cut at 40 characters.
pub(in crate::policy) fn shown(s: &str) -> String {
    cut(s, true)
}

/// An offending TOML value as an error shows it: a string quoted, anything
/// else as written in TOML; cut at 40 characters.
pub(in crate::policy) fn shown_value(v: &Value) -> String {
    v.as_str().map_or_else(|| cut(&v.to_string(), false), shown)
}

fn cut(s: &str, quote: bool) -> String {
    let head: String = s.chars().take(SHOWN_CHARS).collect();
    let more = if head.len() < s.len() { "…" } else { "" };
    if quote {
        format!("{head:?}{more}")
    } else {
        format!("{head}{more}")
    }
}

pub(super) fn table<'a>(file: &str, key: &str, v: &'a Value) -> Result<&'a Table, PolicyError> {
    v.as_table().ok_or_else(|| {
        err(
            file,
            key,
            format!("must be a table, not {}", shown_value(v)),
        )
    })
}

pub(super) fn string<'a>(file: &str, key: &str, v: &'a Value) -> Result<&'a str, PolicyError> {
    v.as_str().ok_or_else(|| {
        err(
            file,
            key,
            format!("must be a string, not {}", shown_value(v)),
        )
    })
}

pub(super) fn only_keys(
    file: &str,
    prefix: &str,
    t: &Table,
    allowed: &[&str],
) -> Result<(), PolicyError> {
    for k in t.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(err(
                file,
                format!("{prefix}.{k}"),
                format!("unknown key (expected one of: {})", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

pub(super) fn required<'a>(
    file: &str,
    prefix: &str,
    t: &'a Table,
    key: &str,
) -> Result<&'a Value, PolicyError> {
    t.get(key)
        .ok_or_else(|| err(file, format!("{prefix}.{key}"), "is required"))
}

/// Parses a retention or age such as `730d`, `12h` or `90 days`.
pub fn parse_duration(file: &str, key: &str, v: &Value) -> Result<Duration, PolicyError> {
    let s = string(file, key, v)?;
    let d = humantime::parse_duration(s).map_err(|e| {
        err(
            file,
            key,
            format!(
                "{} is not a duration like \"730d\" or \"12h\" ({e})",
                shown(s)
            ),
        )
    })?;
    if d.is_zero() {
        return Err(err(file, key, "must be longer than zero"));
    }
    Ok(d)
}

/// `a, b or c`: the choices an error offers.
fn or_list(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The value named `s` among `choices`; otherwise an error naming `s` and
/// the choices, e.g. `unknown integration mode "sometimes" (expected …)`.
pub(super) fn one_of<T: Copy>(
    file: &str,
    key: &str,
    what: &str,
    s: &str,
    choices: &[(&str, T)],
) -> Result<T, PolicyError> {
    choices
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            err(
                file,
                key,
                format!("unknown {what} {} (expected {})", shown(s), or_list(&names)),
            )
        })
}

/// The top-level table `name` of a file that may hold nothing else.
pub(super) fn top_table(file: &str, text: &str, name: &str) -> Result<Table, PolicyError> {
    let mut root: Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(file, "(syntax)", e.message().to_owned()))?;
    if let Some(k) = root.keys().find(|k| k.as_str() != name) {
        return Err(err(
            file,
            k.as_str(),
            format!("unknown key (expected {name})"),
        ));
    }
    match root.remove(name) {
        Some(Value::Table(t)) => Ok(t),
        Some(v) => Err(err(
            file,
            name,
            format!("must be a table, not {}", shown_value(&v)),
        )),
        None => Err(err(file, name, "is required")),
    }
}
