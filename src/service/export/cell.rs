//! What goes into one cell of the export ZIP's CSV files, so that nothing a
//! spreadsheet opens from it runs as a formula (CSV injection, CWE-1236), and
//! what a customer reads looks like their data (SECURITY.md, "Formulas in
//! the export ZIP").
//!
//! Two rules:
//! - a phone number the vault stored (E.164, `+358407654321`) is written in
//!   a natural international form that cannot start a formula, the country
//!   code in brackets: `(+358) 40 7654321`. A bare leading `+` would make
//!   Excel read the cell as a formula (mangled to a number or an error) and
//!   is on every list of formula triggers, so the `+` never leads;
//! - any other cell that starts, after whitespace, with `=`, `+`, `-`, `@`
//!   (or their full-width forms), a tab or a carriage return gets a leading
//!   apostrophe, the mark OWASP advises and spreadsheets read as "text" —
//!   the same rule as the audit export's ([`neutralise`]).

use phonenumber::Mode;
use zeroize::Zeroizing;

use crate::audit::export::csv::neutralise;

/// A cell holding a value that may be a stored phone number.
pub fn value(v: &str) -> Zeroizing<String> {
    match phone(v) {
        Some(p) => p,
        None => text(v),
    }
}

/// A cell of any other text: `'` + `v` when a spreadsheet would run `v`.
pub fn text(v: &str) -> Zeroizing<String> {
    Zeroizing::new(neutralise(v).into_owned())
}

/// `v` as `(+<country code>) <national number>` if it is exactly an E.164
/// number (what the vault stores for a phone), else `None`. The result is
/// checked to hold only brackets, `+`, digits, spaces and hyphens, and to
/// start with `(`: inert in every spreadsheet, and not a number either, so it
/// is shown as written.
pub fn phone(v: &str) -> Option<Zeroizing<String>> {
    let digits = v.strip_prefix('+')?;
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = phonenumber::parse(None, v).ok()?;
    if number.format().mode(Mode::E164).to_string() != v {
        return None;
    }
    let code = number.code().value().to_string();
    let international = Zeroizing::new(number.format().mode(Mode::International).to_string());
    let national = international
        .strip_prefix('+')?
        .strip_prefix(code.as_str())?
        .trim_start_matches([' ', '-']);
    let out = Zeroizing::new(format!("(+{code}) {national}"));
    let inert = out
        .bytes()
        .all(|b| b"()+- ".contains(&b) || b.is_ascii_digit());
    (inert && national.starts_with(|c: char| c.is_ascii_digit())).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a spreadsheet runs when it leads a cell (after whitespace).
    const TRIGGERS: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];

    fn runnable(cell: &str) -> bool {
        cell.starts_with(['\t', '\r']) || cell.trim_start().starts_with(TRIGGERS)
    }

    #[test]
    fn phone_numbers_read_naturally_without_a_leading_plus_or_quote() {
        assert_eq!(value("+358407654321").as_str(), "(+358) 40 7654321");
        assert_eq!(value("+12025550123").as_str(), "(+1) 202-555-0123");
        assert_eq!(value("+442079460958").as_str(), "(+44) 20 7946 0958");
    }

    #[test]
    fn other_cells_a_spreadsheet_would_run_get_an_apostrophe() {
        for (v, cell) in [
            (
                "=HYPERLINK(\"http://evil\")",
                "'=HYPERLINK(\"http://evil\")",
            ),
            ("@pena_export", "'@pena_export"),
            ("-1", "'-1"),
            ("+358 40 not a number", "'+358 40 not a number"),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("\t=1", "'\t=1"),
            ("pena@example.com", "pena@example.com"),
            ("040 765 4321", "040 765 4321"),
            ("", ""),
        ] {
            assert_eq!(value(v).as_str(), cell, "{v:?}");
        }
    }

    proptest! {
        /// No cell starts with what a spreadsheet runs, whatever the value.
        #[test]
        fn no_cell_starts_with_a_formula(v in any::<String>()) {
            prop_assert!(!runnable(&value(&v)));
            prop_assert!(!runnable(&text(&v)));
        }

        /// Formula-shaped values are never taken for phone numbers.
        #[test]
        fn formula_shaped_values_are_marked(
            t in "[=+@-]", rest in "[0-9A-Za-z(),|!' .=+-]{0,20}"
        ) {
            let v = format!("{t}{rest}");
            let cell = value(&v);
            prop_assert!(cell.starts_with('\'') || cell.starts_with("(+"), "{}", cell.as_str());
            prop_assert!(!runnable(&cell));
        }

        /// Every number the vault could store reads in the bracketed form,
        /// digits intact, with no character a formula could use.
        #[test]
        fn stored_phone_numbers_are_written_inert_and_whole(
            national in "[1-9][0-9]{6,9}", region in prop::sample::select(vec!["FI", "SE", "GB", "US", "DE"])
        ) {
            let Ok(country) = region.parse::<phonenumber::country::Id>() else { return Ok(()) };
            let Ok(n) = phonenumber::parse(Some(country), &national) else { return Ok(()) };
            let e164 = n.format().mode(Mode::E164).to_string();
            if let Some(cell) = phone(&e164) {
                prop_assert!(cell.starts_with("(+"));
                let digits: String = cell.chars().filter(char::is_ascii_digit).collect();
                prop_assert_eq!(format!("+{digits}"), e164);
                prop_assert!(!runnable(&cell));
            }
        }
    }
}
