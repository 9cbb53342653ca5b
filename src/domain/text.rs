//! Short free text that one person types and another reads: display names,
//! contact labels, external references, reasons.
//!
//! Such text reaches agents' screens, exports and spreadsheets, so it must
//! look like what it is. Control characters were refused from the start;
//! invisible formatting characters are refused too: bidirectional overrides
//! and isolates (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C) would
//! display "Pena\u{202E}nenatriV" reordered, and zero-width characters
//! (U+200B–U+200D, U+2060, U+FEFF) make two names that look the same differ,
//! or carry hidden text. The rule is general, not a list of known tricks:
//! every character of Unicode's general category Cf (format) is refused,
//! with the tag characters that hide ASCII (U+E0020–U+E007F), and so are
//! the few other characters that render as nothing (Hangul fillers, the
//! combining grapheme joiner, Khmer inherent vowels), line and paragraph
//! separators, private-use and unassigned code points.
//!
//! One exception, decided deliberately: the zero-width joiner and non-joiner
//! (U+200D, U+200C) are part of how people write. ZWJ binds emoji into one
//! (👩‍💻, 🏳️‍🌈) and shapes Indic scripts; ZWNJ is orthographic in Persian and
//! Kurdish. They are accepted between two visible characters that they can
//! join (two letters or marks; for ZWJ also two emoji), neither of them
//! Latin, and refused anywhere else: at either end, twice in a row, next to
//! a space, or next to a Latin letter or any ASCII character (Latin never
//! needs them; there they join nothing and only hide). The price: an emoji
//! flag of a subdivision (🏴 with tag characters) is refused, and a joiner
//! between two letters of a script that has no use for it (Greek, say)
//! passes, displaying the same as without it.
//!
//! The character tables are those of `unicode-properties` (already in the
//! dependency tree through sqlx), so the rule follows Unicode rather than a
//! hand-kept list.

use std::fmt;

use unicode_properties::{
    GeneralCategory, GeneralCategoryGroup, UnicodeEmoji, UnicodeGeneralCategory,
};

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// Why a piece of free text was refused. The messages name the rule, never
/// the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must not contain control characters or line breaks")]
    Control,
    #[error(
        "must not contain invisible formatting characters (bidirectional overrides, \
         zero-width characters and the like)"
    )]
    Invisible,
}

const ZWNJ: char = '\u{200C}';
const ZWJ: char = '\u{200D}';

/// Characters outside category Cf that render as nothing (or as blank
/// space that is not whitespace): Hangul fillers, the combining grapheme
/// joiner and the Khmer inherent vowels.
const BLANK_LOOKING: [char; 7] = [
    '\u{034F}', '\u{115F}', '\u{1160}', '\u{17B4}', '\u{17B5}', '\u{3164}', '\u{FFA0}',
];

/// Why `c` may not appear on its own, if it may not; joiners are judged
/// with their neighbours by [`joins`].
fn refused(c: char) -> Option<TextError> {
    if c.is_control() {
        return Some(TextError::Control);
    }
    match c.general_category() {
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some(TextError::Control)
        }
        GeneralCategory::Format
        | GeneralCategory::PrivateUse
        | GeneralCategory::Unassigned
        | GeneralCategory::Surrogate => Some(TextError::Invisible),
        _ if BLANK_LOOKING.contains(&c) => Some(TextError::Invisible),
        _ => None,
    }
}

/// ASCII and the Latin letter blocks: Latin script never needs a joiner, so
/// next to one a joiner only hides.
fn latin(c: char) -> bool {
    c.is_ascii()
        || matches!(
            c,
            '\u{00C0}'..='\u{024F}'
                | '\u{1E00}'..='\u{1EFF}'
                | '\u{2C60}'..='\u{2C7F}'
                | '\u{A720}'..='\u{A7FF}'
                | '\u{AB30}'..='\u{AB6F}'
        )
}

/// Whether a joiner between `prev` and `next` joins something visible.
fn joins(joiner: char, prev: Option<char>, next: Option<char>) -> bool {
    let (Some(prev), Some(next)) = (prev, next) else {
        return false;
    };
    let visible = |c: char| !latin(c) && !c.is_whitespace() && refused(c).is_none();
    if !visible(prev) || !visible(next) {
        return false;
    }
    let letter_or_mark = |c: char| {
        matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter | GeneralCategoryGroup::Mark
        )
    };
    let emoji = |c: char| c.is_emoji_char_or_emoji_component();
    (letter_or_mark(prev) && letter_or_mark(next)) || (joiner == ZWJ && emoji(prev) && emoji(next))
}

/// Checks the characters of `s` (not its length): see the module doc.
pub fn check_chars(s: &str) -> Result<(), TextError> {
    let mut prev = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ZWJ || c == ZWNJ {
            if !joins(c, prev, chars.peek().copied()) {
                return Err(TextError::Invisible);
            }
        } else if let Some(e) = refused(c) {
            return Err(e);
        }
        prev = Some(c);
    }
    Ok(())
}

/// A short single-line text: trimmed, 1 to `max` characters, and free of
/// control and invisible formatting characters. Returns the trimmed text.
pub fn short_text(s: &str, max: usize) -> Result<String, TextError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(TextError::Empty);
    }
    if t.chars().count() > max {
        return Err(TextError::TooLong(max));
    }
    check_chars(t)?;
    Ok(t.to_owned())
}

/// A customer's display name: 1 to 200 characters after trimming, none of
/// them control or invisible formatting characters.
///
/// `Debug` does not show the name: it is personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses a display name; the only way to build one.
    pub fn parse(s: &str) -> Result<Self, TextError> {
        short_text(s, MAX_DISPLAY_NAME_CHARS).map(DisplayName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a `String`, for sealing.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DisplayName(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The characters the attack used and their relatives, named in the doc.
    const BIDI: [char; 12] = [
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
    ];
    const ZERO_WIDTH: [char; 5] = ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];
    /// More invisible characters of the same kind.
    const OTHER_INVISIBLE: [char; 10] = [
        '\u{00AD}',
        '\u{180E}',
        '\u{2061}',
        '\u{2064}',
        '\u{206A}',
        '\u{FFF9}',
        '\u{E0001}',
        '\u{E0041}',
        '\u{3164}',
        '\u{034F}',
    ];

    fn name(s: &str) -> Result<String, TextError> {
        DisplayName::parse(s).map(DisplayName::into_string)
    }

    #[test]
    fn ordinary_names_in_many_scripts_are_accepted_trimmed() {
        for ok in [
            "Pena Virtanen",
            "  Äijö Öörni ",
            "Ólafur Þórðarson",
            "Zoë O'Brien-Smith",
            "山田 太郎",
            "Мария Иванова",
            "محمد علي",
            "דוד כהן",
            "Nguyễn Văn A",
            "❤\u{FE0F} Pena",
        ] {
            assert_eq!(name(ok), Ok(ok.trim().to_owned()), "{ok:?}");
        }
    }

    #[test]
    fn bidirectional_controls_are_refused_anywhere() {
        for c in BIDI {
            for s in [
                format!("Pena{c}nenatriV"),
                format!("{c}Pena"),
                format!("Pena{c}"),
                format!("محمد{c}علي"),
            ] {
                assert_eq!(name(&s), Err(TextError::Invisible), "{:?}", c);
            }
        }
    }

    #[test]
    fn zero_width_and_other_invisible_characters_are_refused() {
        for c in ZERO_WIDTH.into_iter().chain(OTHER_INVISIBLE) {
            assert_eq!(
                name(&format!("Pe{c}na")),
                Err(TextError::Invisible),
                "{c:?}"
            );
            assert_eq!(name(&format!("{c}")), Err(TextError::Invisible), "{c:?}");
        }
    }

    #[test]
    fn line_breaks_and_control_characters_are_refused_as_such() {
        for s in [
            "Pena\nVirtanen",
            "Pena\u{0}",
            "Pena\u{2028}V",
            "Pena\u{2029}V",
            "a\u{7F}",
        ] {
            assert_eq!(name(s), Err(TextError::Control), "{s:?}");
        }
    }

    #[test]
    fn joiners_are_accepted_only_where_they_join_something() {
        for ok in [
            "Pena 👩\u{200D}💻",                // technologist
            "🏳\u{FE0F}\u{200D}🌈",              // rainbow flag (after VS16)
            "👩\u{1F3FD}\u{200D}🚀",            // skin tone, then ZWJ
            "\u{0645}\u{06CC}\u{200C}\u{062E}", // Persian ZWNJ between letters
            "\u{0915}\u{094D}\u{200D}\u{0937}", // Devanagari: virama, ZWJ, letter
        ] {
            assert!(name(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "Pe\u{200D}na",         // between ASCII letters
            "\u{200D}👩",           // at the start
            "👩\u{200D}",           // at the end
            "👩\u{200D}\u{200D}💻", // twice
            "👩 \u{200D}💻",        // after a space
            "ab\u{200C}c",
            "\u{0645}\u{200C} \u{062E}",
            "1\u{200D}2", // digits are emoji components, but ASCII
            "ä\u{200D}ö", // Latin letters
            "Ä\u{200C}ů",
        ] {
            assert_eq!(name(bad), Err(TextError::Invisible), "{bad:?}");
        }
    }

    #[test]
    fn subdivision_flags_are_refused_for_their_tag_characters() {
        let scotland = "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        assert_eq!(name(scotland), Err(TextError::Invisible));
    }

    #[test]
    fn length_and_emptiness_are_checked_after_trimming() {
        assert_eq!(name(""), Err(TextError::Empty));
        assert_eq!(name(" \t "), Err(TextError::Empty));
        assert!(name(&"ä".repeat(200)).is_ok());
        assert_eq!(name(&"ä".repeat(201)), Err(TextError::TooLong(200)));
        assert_eq!(short_text("abcd", 3), Err(TextError::TooLong(3)));
    }

    #[test]
    fn debug_does_not_show_the_name() {
        let n = DisplayName::parse("Pena Virtanen").expect("valid");
        assert!(!format!("{n:?}").contains("Pena"));
        assert!(!TextError::Invisible.to_string().contains('\u{202E}'));
    }

    fn forbidden() -> impl Strategy<Value = char> {
        prop::sample::select(
            BIDI.iter()
                .chain(ZERO_WIDTH.iter())
                .chain(OTHER_INVISIBLE.iter())
                .copied()
                .collect::<Vec<_>>(),
        )
    }

    proptest! {
        /// A forbidden character anywhere in an otherwise good Latin name
        /// (where no joiner joins anything) gets it refused.
        #[test]
        fn a_forbidden_character_anywhere_is_refused(
            base in "[A-Za-zÄÖÅäöå' -]{0,30}",
            c in forbidden(),
            at in any::<prop::sample::Index>(),
        ) {
            let chars: Vec<char> = base.chars().collect();
            let i = at.index(chars.len() + 1);
            let s: String = chars[..i].iter().chain(std::iter::once(&c)).chain(&chars[i..]).collect();
            prop_assert_eq!(name(&s), Err(TextError::Invisible));
        }

        /// Whatever comes in: no panic; an accepted name is the input
        /// trimmed, parses to itself again, and holds no refused character
        /// and no joiner next to ASCII or whitespace.
        #[test]
        fn accepted_names_are_trimmed_idempotent_and_clean(s in "\\PC{0,40}|.{0,40}") {
            if let Ok(n) = name(&s) {
                prop_assert_eq!(n.as_str(), s.trim());
                prop_assert_eq!(name(&n), Ok(n.clone()));
                prop_assert!(n.chars().all(|c| refused(c).is_none()));
                let v: Vec<char> = n.chars().collect();
                for (i, c) in v.iter().enumerate() {
                    if *c == ZWJ || *c == ZWNJ {
                        prop_assert!(i > 0 && i + 1 < v.len());
                        for d in [v[i - 1], v[i + 1]] {
                            prop_assert!(!latin(d) && !d.is_whitespace());
                        }
                    }
                }
            }
        }
    }
}
