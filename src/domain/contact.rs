//! Contact values: parsing into a canonical form, and masking for display.
//!
//! Every contact value enters the vault through [`normalise`], which both
//! validates it and computes the canonical `index_key` that the blind index
//! is built on, so equal contacts written differently find each other.
//! [`mask`] produces the redacted form shown to callers without clearance.
//!
//! Longer than 500 lines because of its tests: the parsers are under 450 lines,
//! and their unit and property tests stay beside them.

use std::fmt;

use phonenumber::{country, Mode};

use crate::domain::ChannelKind;

/// What a masked part (or a whole value that cannot be masked safely) becomes.
const MASK: &str = "***";
/// Longest phone input we hand to the phone number library, in characters.
const MAX_PHONE_INPUT_CHARS: usize = 64;
/// Longest E.164 number: `+` and at most 15 digits.
const MAX_E164_DIGITS: usize = 15;
/// Longest e-mail local part, in characters (RFC 5321 limit, counted in chars).
const MAX_EMAIL_LOCAL_CHARS: usize = 64;
/// Longest e-mail domain, in characters.
const MAX_EMAIL_DOMAIN_CHARS: usize = 253;
/// Longest DNS label, in characters.
const MAX_EMAIL_LABEL_CHARS: usize = 63;
/// Longest e-mail address, in characters.
const MAX_EMAIL_CHARS: usize = 254;
/// Longest handle, in characters (after normalisation).
const MAX_HANDLE_CHARS: usize = 64;
/// Longest free-text value, in characters (after trimming).
const MAX_TEXT_CHARS: usize = 1024;
/// Characters that may not appear anywhere in an e-mail address: quoting,
/// comments, routing and list separators that only cause ambiguity here.
const EMAIL_FORBIDDEN: &[char] = &['"', '<', '>', ',', ';', '(', ')', '[', ']', '\\', ':'];
/// Punctuation that people use when writing phone numbers; everything else
/// (besides digits and whitespace) is rejected before the library sees it.
const PHONE_PUNCTUATION: &[char] = &['+', '-', '(', ')', '.', '/'];
/// Longest region code we echo back in an error, in characters.
const MAX_REGION_ECHO_CHARS: usize = 16;

/// Default region for phone numbers written without a country code.
///
/// A national number such as `040 123 4567` only means something together
/// with a region; the service is configured with one (Finland by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(country::Id);

impl Region {
    /// Parses a two-letter ISO 3166 code (`FI`, `fi`, `SE`…) that the phone
    /// number library has metadata for; the only way to build a region, so
    /// phone parsing can never be handed a region it cannot handle.
    pub fn parse(s: &str) -> Result<Self, ContactError> {
        let code = s.trim().to_ascii_uppercase();
        let id = if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            code.parse::<country::Id>().ok()
        } else {
            None
        };
        match id {
            Some(id) if phonenumber::metadata::DATABASE.by_id(id.as_ref()).is_some() => {
                Ok(Self(id))
            }
            _ => Err(ContactError::UnknownRegion(
                s.chars().take(MAX_REGION_ECHO_CHARS).collect(),
            )),
        }
    }

    /// Finland, the default region of the service.
    pub fn default_fi() -> Self {
        Self(country::Id::FI)
    }

    /// The upper-case ISO code, for configuration dumps and log lines.
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

impl Default for Region {
    /// Finland, so an unconfigured service reads `040…` as a Finnish number.
    fn default() -> Self {
        Self::default_fi()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a contact value (or a region) was rejected.
///
/// The payload of the value variants is a fixed reason, never the value
/// itself: errors end up in logs and API responses, contact data must not.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContactError {
    /// The value of an e-mail channel is not an acceptable address.
    #[error("not a valid e-mail address: {0}")]
    InvalidEmail(&'static str),
    /// The value of a phone channel is not a valid phone number.
    #[error("not a valid phone number: {0}")]
    InvalidPhone(&'static str),
    /// The value of a handle channel is not an acceptable handle.
    #[error("not a valid handle: {0}")]
    InvalidHandle(&'static str),
    /// The value of a text channel is not acceptable text.
    #[error("not a valid value: {0}")]
    InvalidText(&'static str),
    /// The configured default region is not a known region code (this is
    /// configuration, not contact data, so it is echoed, truncated).
    #[error("unknown region {0:?}")]
    UnknownRegion(String),
}

/// A contact value after parsing.
///
/// `value` is what is stored (encrypted) and shown to cleared callers;
/// `index_key` is the canonical form that the blind index is computed on.
/// Only [`normalise`] builds one, so holding it proves the value was checked.
/// `Debug` prints `NormalisedValue(<redacted>)` and there is no `Display` or
/// `Serialize`, because contact values must never reach logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct NormalisedValue {
    value: String,
    index_key: String,
}

impl NormalisedValue {
    /// The value to store and to show unmasked.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The canonical form to compute the blind index on.
    pub fn index_key(&self) -> &str {
        &self.index_key
    }

    /// For kinds whose stored value is already canonical.
    fn canonical(value: String) -> Self {
        Self {
            index_key: value.clone(),
            value,
        }
    }
}

impl fmt::Debug for NormalisedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NormalisedValue(<redacted>)")
    }
}

/// Parses a contact value of the given kind into its stored and indexed forms.
///
/// This is the single gate for contact data: e-mail is trimmed and
/// lower-cased, phone numbers become E.164 (national numbers read in
/// `region`), handles lose surrounding space, case and one leading `@`, and
/// text keeps its case but is indexed case- and whitespace-insensitively.
/// Normalising the stored value again yields the same result.
pub fn normalise(
    kind: ChannelKind,
    input: &str,
    region: Region,
) -> Result<NormalisedValue, ContactError> {
    match kind {
        ChannelKind::Email => normalise_email(input),
        ChannelKind::Phone => normalise_phone(input, region),
        ChannelKind::Handle => normalise_handle(input),
        ChannelKind::Text => normalise_text(input),
    }
}

/// Masks a stored value of the given kind for callers without clearance.
///
/// E-mail keeps the first character of the local part and the domain
/// (`p***@example.com`), phone keeps `+`, the country code and the last two
/// digits (`+358*******67`), handles keep two characters (`pe***`), text
/// becomes `***`. Anything that does not look like a stored value of its
/// kind becomes `***`, and the result never equals the input unless the
/// input is `***` itself.
pub fn mask(kind: ChannelKind, stored_value: &str) -> String {
    let masked = match kind {
        ChannelKind::Email => mask_email(stored_value),
        ChannelKind::Phone => mask_phone(stored_value),
        ChannelKind::Handle => mask_handle(stored_value),
        ChannelKind::Text => MASK.to_owned(),
    };
    // A value that already looks masked (`ab***`) must not come back unmasked.
    if masked == stored_value {
        MASK.to_owned()
    } else {
        masked
    }
}

/// Zero-width and bidirectional formatting characters: invisible, so they
/// would make equal-looking values index differently or display reordered.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200E}' | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Joiners are legitimate in some scripts and emoji, but never in
/// identifiers such as e-mail addresses and handles.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// Characters that may never appear in an identifier-like value.
fn is_forbidden_in_identifier(c: char) -> bool {
    c.is_control() || is_invisible_format(c) || is_joiner(c)
}

fn normalise_email(input: &str) -> Result<NormalisedValue, ContactError> {
    use ContactError::InvalidEmail;

    let address = input.trim().to_lowercase();
    if address.is_empty() {
        return Err(InvalidEmail("empty"));
    }
    if address.chars().count() > MAX_EMAIL_CHARS {
        return Err(InvalidEmail("too long"));
    }
    if address.chars().any(char::is_whitespace) {
        return Err(InvalidEmail("contains whitespace"));
    }
    if address.chars().any(is_forbidden_in_identifier) {
        return Err(InvalidEmail("contains control or invisible characters"));
    }
    if address.contains(EMAIL_FORBIDDEN) {
        return Err(InvalidEmail("contains characters that are not allowed"));
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err(InvalidEmail("missing @"));
    };
    if domain.contains('@') {
        return Err(InvalidEmail("more than one @"));
    }
    if local.is_empty() {
        return Err(InvalidEmail("empty local part"));
    }
    if local.chars().count() > MAX_EMAIL_LOCAL_CHARS {
        return Err(InvalidEmail("local part too long"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(InvalidEmail("misplaced dot in local part"));
    }
    if domain.is_empty() {
        return Err(InvalidEmail("empty domain"));
    }
    if domain.chars().count() > MAX_EMAIL_DOMAIN_CHARS {
        return Err(InvalidEmail("domain too long"));
    }
    if !domain.contains('.') {
        return Err(InvalidEmail("domain has no dot"));
    }
    if domain.split('.').any(str::is_empty) {
        return Err(InvalidEmail("empty domain label"));
    }
    if domain
        .split('.')
        .any(|label| label.chars().count() > MAX_EMAIL_LABEL_CHARS)
    {
        return Err(InvalidEmail("domain label too long"));
    }
    Ok(NormalisedValue::canonical(address))
}

fn normalise_phone(input: &str, region: Region) -> Result<NormalisedValue, ContactError> {
    use ContactError::InvalidPhone;

    // Pre-filter so the library only ever sees short ASCII digit strings
    // with common punctuation: it has had panics on odd inputs before, and
    // it would silently read letters (vanity numbers, `ext.`) we do not want.
    if input.chars().count() > MAX_PHONE_INPUT_CHARS {
        return Err(InvalidPhone("too long"));
    }
    if input.chars().any(char::is_alphabetic) {
        return Err(InvalidPhone("contains letters"));
    }
    let cleaned: String = input
        .trim()
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    if cleaned.is_empty() {
        return Err(InvalidPhone("empty"));
    }
    if !cleaned
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || PHONE_PUNCTUATION.contains(&c))
    {
        return Err(InvalidPhone("contains characters that are not allowed"));
    }
    if !cleaned.chars().any(|c| c.is_ascii_digit()) {
        return Err(InvalidPhone("no digits"));
    }
    let number = phonenumber::parse(Some(region.0), &cleaned)
        .map_err(|_| InvalidPhone("not a phone number"))?;
    if number.extension().is_some() {
        return Err(InvalidPhone("extensions are not supported"));
    }
    if !phonenumber::is_valid(&number) {
        return Err(InvalidPhone("not a valid number"));
    }
    let e164 = number.format().mode(Mode::E164).to_string();
    // Belt and braces: the stored form must be exactly `+` and 1–15 digits.
    if !is_e164_shaped(&e164) {
        return Err(InvalidPhone("not a valid number"));
    }
    // The stored form must read back as itself: it is what lookups index and
    // what a later edit sends back. The library can read a dialling prefix
    // (e.g. a Brazilian carrier code before "00") into a number whose E.164
    // form it then calls invalid; such input is refused, not stored.
    let reread = phonenumber::parse(None, &e164)
        .ok()
        .filter(phonenumber::is_valid)
        .map(|n| n.format().mode(Mode::E164).to_string());
    if reread.as_deref() != Some(e164.as_str()) {
        return Err(InvalidPhone("not a valid number"));
    }
    Ok(NormalisedValue::canonical(e164))
}

/// `+` followed by 1 to 15 ASCII digits.
fn is_e164_shaped(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|digits| {
        !digits.is_empty()
            && digits.len() <= MAX_E164_DIGITS
            && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn normalise_handle(input: &str) -> Result<NormalisedValue, ContactError> {
    use ContactError::InvalidHandle;

    let trimmed = input.trim();
    let stripped = trimmed.strip_prefix('@').unwrap_or(trimmed);
    // Only one `@` is dropped; a second one would be dropped by the next
    // normalisation, which would break idempotence, so it is an error.
    if stripped.starts_with('@') {
        return Err(InvalidHandle("more than one leading @"));
    }
    let handle = stripped.to_lowercase();
    if handle.is_empty() {
        return Err(InvalidHandle("empty"));
    }
    if handle.chars().count() > MAX_HANDLE_CHARS {
        return Err(InvalidHandle("too long"));
    }
    if handle.chars().any(char::is_whitespace) {
        return Err(InvalidHandle("contains whitespace"));
    }
    if handle.chars().any(is_forbidden_in_identifier) {
        return Err(InvalidHandle("contains control or invisible characters"));
    }
    Ok(NormalisedValue::canonical(handle))
}

fn normalise_text(input: &str) -> Result<NormalisedValue, ContactError> {
    use ContactError::InvalidText;

    let value = input.trim();
    if value.is_empty() {
        return Err(InvalidText("empty"));
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(InvalidText("too long"));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(InvalidText("contains control characters"));
    }
    if value.chars().any(is_invisible_format) {
        return Err(InvalidText("contains invisible formatting characters"));
    }
    let index_key = value
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(NormalisedValue {
        value: value.to_owned(),
        index_key,
    })
}

fn mask_email(stored: &str) -> String {
    let Some((local, domain)) = stored.rsplit_once('@') else {
        return MASK.to_owned();
    };
    if domain.is_empty() {
        return MASK.to_owned();
    }
    match local.chars().next() {
        Some(first) if !first.is_whitespace() && !is_forbidden_in_identifier(first) => {
            format!("{first}{MASK}@{domain}")
        }
        _ => format!("{MASK}@{domain}"),
    }
}

fn mask_phone(stored: &str) -> String {
    mask_e164(stored).unwrap_or_else(|| MASK.to_owned())
}

/// Masks an E.164 string, or `None` when it is not one we can mask safely.
fn mask_e164(stored: &str) -> Option<String> {
    if !is_e164_shaped(stored) {
        return None;
    }
    let digits = stored.strip_prefix('+')?;
    let code = calling_code(digits)?;
    // Keep the country code and two digits; at least one digit must be hidden.
    let hidden = digits.len().checked_sub(code.len() + 2)?;
    if hidden == 0 {
        return None;
    }
    let tail = digits.get(code.len() + hidden..)?;
    let mut masked = String::with_capacity(stored.len());
    masked.push('+');
    masked.push_str(code);
    masked.extend(std::iter::repeat_n('*', hidden));
    masked.push_str(tail);
    Some(masked)
}

/// The country calling code the digits of an E.164 number start with, by
/// the phone-number library's own rule (calling codes are prefix-free: the
/// first prefix of one to three digits, not starting with 0, that its
/// metadata knows). A profile read masks every phone number it returns;
/// parsing each one through the library's regular expressions, only to learn
/// this, cost more than decrypting it.
fn calling_code(digits: &str) -> Option<&str> {
    if digits.starts_with('0') {
        return None;
    }
    (1..=3).find_map(|len| {
        let prefix = digits.get(..len)?;
        let code: u16 = prefix.parse().ok()?;
        phonenumber::metadata::DATABASE
            .by_code(&code)
            .map(|_| prefix)
    })
}

fn mask_handle(stored: &str) -> String {
    let mut chars = stored.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some(a), Some(b), Some(_)) => format!("{a}{b}{MASK}"),
        _ => MASK.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fi() -> Region {
        Region::default_fi()
    }

    fn phone(input: &str, region: Region) -> Result<String, ContactError> {
        normalise(ChannelKind::Phone, input, region).map(|n| n.value().to_owned())
    }

    fn norm(kind: ChannelKind, input: &str) -> Result<NormalisedValue, ContactError> {
        normalise(kind, input, fi())
    }

    // --- regions ---

    #[test]
    fn regions_parse_case_insensitively_and_default_to_finland() {
        assert_eq!(Region::parse("FI"), Ok(Region::default_fi()));
        assert_eq!(Region::parse("fi"), Ok(Region::default_fi()));
        assert_eq!(Region::default(), Region::default_fi());
        assert_eq!(Region::parse("se").map(|r| r.to_string()), Ok("SE".into()));
    }

    #[test]
    fn unknown_regions_are_rejected() {
        for bad in ["", "X", "FIN", "XX", "1A", "ö", "+358"] {
            assert_eq!(
                Region::parse(bad),
                Err(ContactError::UnknownRegion(bad.into())),
                "{bad:?}"
            );
        }
    }

    // --- phone ---

    #[test]
    fn a_number_whose_canonical_form_does_not_read_back_is_refused() {
        // Found by the idempotency property: read with Brazil's dialling
        // prefixes this became a number whose E.164 form is not valid.
        let br = Region::parse("BR").expect("BR");
        match phone("00900000000", br) {
            Err(_) => {}
            Ok(v) => assert_eq!(phone(&v, br), Ok(v.clone()), "{v} must read back as itself"),
        }
    }

    #[test]
    fn the_three_finnish_spellings_normalise_to_one_e164_number() {
        for input in ["040 123 4567", "+358 40 1234567", "+358401234567"] {
            assert_eq!(phone(input, fi()), Ok("+358401234567".into()), "{input:?}");
        }
    }

    #[test]
    fn the_international_dialling_prefix_00_is_understood_in_finland() {
        assert_eq!(phone("00358401234567", fi()), Ok("+358401234567".into()));
    }

    #[test]
    fn common_phone_punctuation_is_accepted() {
        for input in [
            "040-123 45 67",
            "+358 (0)40 123 4567",
            " 040 1234567\n",
            "040\u{a0}1234567",
        ] {
            assert_eq!(phone(input, fi()), Ok("+358401234567".into()), "{input:?}");
        }
    }

    #[test]
    fn the_region_changes_the_meaning_of_a_national_number() {
        let se = Region::parse("SE").expect("SE is a known region");
        assert_eq!(phone("040 123 4567", se), Ok("+46401234567".into()));
        assert_eq!(phone("070 123 4567", se), Ok("+46701234567".into()));
        assert_ne!(phone("070 123 4567", fi()), phone("070 123 4567", se));
        // International numbers do not depend on the region.
        assert_eq!(phone("+358401234567", se), Ok("+358401234567".into()));
    }

    #[test]
    fn invalid_phone_inputs_are_invalid_phone_errors() {
        let too_long = "1".repeat(65);
        for input in [
            "",
            "   ",
            "040 123 4567 ext 12",
            "abc",
            "040 CALL ME",
            "12",
            "+3584012",
            "+",
            "---",
            "040#1234567",
            "tel:+358401234567",
            too_long.as_str(),
        ] {
            assert!(
                matches!(phone(input, fi()), Err(ContactError::InvalidPhone(_))),
                "{input:?} -> {:?}",
                phone(input, fi())
            );
        }
    }

    // --- e-mail ---

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let n = norm(ChannelKind::Email, " Pena@Example.COM ").expect("valid address");
        assert_eq!(n.value(), "pena@example.com");
        assert_eq!(n.index_key(), "pena@example.com");
    }

    #[test]
    fn invalid_emails_are_rejected() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", "b".repeat(260));
        for input in [
            "",
            "pena.example.com",
            "pena@@example.com",
            "pena@kalle@example.com",
            "pena@localhost",
            "pe na@example.com",
            "pena@exa mple.com",
            "@example.com",
            "pena@",
            "pena@example..com",
            "pena@.example.com",
            "pena@example.com.",
            ".pena@example.com",
            "pena.@example.com",
            "pe..na@example.com",
            "\"pena\"@example.com",
            "<pena@example.com>",
            "pena@example.com,kalle@example.com",
            "pena@example.com;",
            "pe\u{0}na@example.com",
            "pe\u{200B}na@example.com",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            assert!(
                matches!(
                    norm(ChannelKind::Email, input),
                    Err(ContactError::InvalidEmail(_))
                ),
                "{input:?}"
            );
        }
    }

    // --- handle ---

    #[test]
    fn handle_loses_the_at_sign_case_and_surrounding_space() {
        let n = norm(ChannelKind::Handle, " @Pena_K ").expect("valid handle");
        assert_eq!(n.value(), "pena_k");
        assert_eq!(n.index_key(), "pena_k");
        assert_eq!(norm(ChannelKind::Handle, "pena_k"), Ok(n));
    }

    #[test]
    fn invalid_handles_are_rejected() {
        let too_long = "a".repeat(65);
        for input in [
            "",
            "@",
            "  @ ",
            "@@pena",
            "pena k",
            "@ pena",
            "pe\tna",
            too_long.as_str(),
        ] {
            assert!(
                matches!(
                    norm(ChannelKind::Handle, input),
                    Err(ContactError::InvalidHandle(_))
                ),
                "{input:?}"
            );
        }
    }

    // --- text ---

    #[test]
    fn text_keeps_its_case_but_indexes_case_and_space_insensitively() {
        let n = norm(
            ChannelKind::Text,
            "  Mannerheimintie 1 A\n00100   Helsinki ",
        )
        .expect("valid text");
        assert_eq!(n.value(), "Mannerheimintie 1 A\n00100   Helsinki");
        assert_eq!(n.index_key(), "mannerheimintie 1 a 00100 helsinki");
    }

    #[test]
    fn invalid_texts_are_rejected() {
        let too_long = "a".repeat(1025);
        for input in [
            "",
            " \n ",
            "a\tb",
            "a\rb",
            "a\u{7}b",
            "a\u{202E}b",
            too_long.as_str(),
        ] {
            assert!(
                matches!(
                    norm(ChannelKind::Text, input),
                    Err(ContactError::InvalidText(_))
                ),
                "{input:?}"
            );
        }
        assert!(norm(ChannelKind::Text, &"ä".repeat(1024)).is_ok());
    }

    // --- masking and redaction ---

    #[test]
    fn masks_match_the_contract_examples() {
        assert_eq!(
            mask(ChannelKind::Email, "pena@example.com"),
            "p***@example.com"
        );
        assert_eq!(mask(ChannelKind::Phone, "+358401234567"), "+358*******67");
        assert_eq!(mask(ChannelKind::Handle, "pena_k"), "pe***");
        assert_eq!(mask(ChannelKind::Text, "Mannerheimintie 1"), "***");
    }

    #[test]
    fn masks_degrade_to_stars_on_odd_stored_values() {
        assert_eq!(mask(ChannelKind::Email, "@example.com"), "***@example.com");
        assert_eq!(mask(ChannelKind::Email, "no-at-sign"), "***");
        assert_eq!(mask(ChannelKind::Email, "pena@"), "***");
        assert_eq!(mask(ChannelKind::Email, "ä@x.fi"), "ä***@x.fi");
        assert_eq!(mask(ChannelKind::Email, "a***@x.fi"), "***");
        assert_eq!(mask(ChannelKind::Phone, "040 123 4567"), "***");
        assert_eq!(mask(ChannelKind::Phone, "+"), "***");
        assert_eq!(mask(ChannelKind::Phone, ""), "***");
        assert_eq!(mask(ChannelKind::Phone, "+1"), "***");
        // No calling code starts with 0 (though "01" would read as 1).
        assert_eq!(mask(ChannelKind::Phone, "+0123456789"), "***");
        assert_eq!(mask(ChannelKind::Phone, "+12025550143"), "+1********43");
        assert_eq!(mask(ChannelKind::Handle, "pe"), "***");
        assert_eq!(mask(ChannelKind::Handle, "äöå"), "äö***");
        assert_eq!(mask(ChannelKind::Handle, "ab***"), "***");
    }

    #[test]
    fn debug_of_a_normalised_value_does_not_contain_the_value() {
        let n = norm(ChannelKind::Email, "pena@example.com").expect("valid address");
        let debug = format!("{n:?}");
        assert_eq!(debug, "NormalisedValue(<redacted>)");
        assert!(!debug.contains("pena"));
        let result = format!("{:?}", norm(ChannelKind::Phone, "040 123 4567"));
        assert!(!result.contains("401234567"), "{result}");
    }

    #[test]
    fn contact_errors_name_a_reason_not_the_value() {
        let err = norm(ChannelKind::Email, "secret-pena.example.com").expect_err("no @");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert_eq!(err.to_string(), "not a valid e-mail address: missing @");
    }

    // --- properties ---

    fn any_region() -> impl Strategy<Value = Region> {
        prop_oneof![
            Just(Region::default_fi()),
            Just(Region(country::Id::SE)),
            Just(Region(country::Id::US)),
            Just(Region(country::Id::DE)),
            Just(Region(country::Id::GB)),
            Just(Region(country::Id::BR)),
            Just(Region(country::Id::IT)),
            Just(Region(country::Id::AR)),
        ]
    }

    fn any_kind() -> impl Strategy<Value = ChannelKind> {
        prop::sample::select(ChannelKind::ALL.to_vec())
    }

    /// Strings that look a bit like phone numbers, to push the library hard.
    fn phoneish() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9 +()./-]{0,70}",
            "\\+?[0-9]{1,17}",
            "(00|0|\\+)[0-9]{1,3}[ -]?[0-9 ]{1,14}",
            "[0-9+()]{0,6}",
        ]
    }

    /// International numbers under calling codes of one, two and three
    /// digits, many of them valid.
    fn international_numbers() -> impl Strategy<Value = String> {
        "\\+(1|7|20|27|3[0-9]|4[0-9]|55|61|81|86|91|212|234|358|354|372|880|971)[0-9]{5,11}"
    }

    /// Strings that look a bit like e-mail addresses.
    fn emailish() -> impl Strategy<Value = String> {
        "\\s{0,2}[a-zA-Z0-9._%+ä-]{0,12}@{0,2}[a-zA-Z0-9.-]{0,10}(\\.[a-zA-Z]{1,4}){0,2}\\s{0,2}"
    }

    /// Strings that look a bit like handles or free text.
    fn handleish() -> impl Strategy<Value = String> {
        "\\s{0,2}@{0,2}[a-zA-Z0-9_.äÖİß ]{0,20}\\s{0,2}"
    }

    /// Valid ASCII e-mail addresses in lower case.
    fn valid_email() -> impl Strategy<Value = String> {
        "[a-z0-9_%+-]{1,10}(\\.[a-z0-9_%+-]{1,8}){0,2}@[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,8}){1,3}"
    }

    /// Seven digits after `+358 40` / `040`: Finnish mobile numbers.
    fn fi_mobile_tail() -> impl Strategy<Value = String> {
        "[0-9]{7}"
    }

    fn assert_idempotent(
        kind: ChannelKind,
        input: &str,
        region: Region,
    ) -> Result<(), TestCaseError> {
        if let Ok(first) = normalise(kind, input, region) {
            let again = normalise(kind, first.value(), region);
            prop_assert!(again.is_ok(), "{kind}: re-normalising failed");
            if let Ok(again) = again {
                prop_assert_eq!(again.value(), first.value());
                prop_assert_eq!(again.index_key(), first.index_key());
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn normalise_never_panics_on_arbitrary_strings(
            kind in any_kind(),
            region in any_region(),
            s in any::<String>(),
        ) {
            let _ = normalise(kind, &s, region);
            let _ = mask(kind, &s);
        }

        #[test]
        fn normalise_never_panics_on_phone_like_strings(s in phoneish(), region in any_region()) {
            let _ = normalise(ChannelKind::Phone, &s, region);
            let _ = mask(ChannelKind::Phone, &s);
        }

        #[test]
        fn normalisation_is_idempotent_for_every_kind(
            kind in any_kind(),
            region in any_region(),
            s in prop_oneof![any::<String>(), phoneish(), emailish(), handleish()],
        ) {
            assert_idempotent(kind, &s, region)?;
        }

        #[test]
        fn a_phone_mask_keeps_the_calling_code_the_library_reads(
            s in prop_oneof![phoneish(), international_numbers()],
            region in any_region(),
        ) {
            // Every stored phone number, masked, keeps exactly the calling
            // code a full parse finds, and hides all but two digits.
            if let Ok(n) = normalise(ChannelKind::Phone, &s, region) {
                let stored = n.value();
                let code = phonenumber::parse(None, stored)
                    .expect("a stored number parses")
                    .code()
                    .value()
                    .to_string();
                let digits = &stored[1..];
                let expected = match digits.len().checked_sub(code.len() + 2) {
                    Some(hidden) if hidden > 0 => format!(
                        "+{code}{}{}",
                        "*".repeat(hidden),
                        &digits[digits.len() - 2..]
                    ),
                    _ => MASK.to_owned(),
                };
                prop_assert_eq!(mask(ChannelKind::Phone, stored), expected);
            }
        }

        #[test]
        fn phone_normalisation_is_idempotent(s in phoneish(), region in any_region()) {
            assert_idempotent(ChannelKind::Phone, &s, region)?;
        }

        #[test]
        fn email_index_key_ignores_case_and_surrounding_whitespace(
            email in valid_email(),
            flips in prop::collection::vec(any::<bool>(), 64),
            before in "[ \t\n]{0,3}",
            after in "[ \t\n]{0,3}",
        ) {
            let base = normalise(ChannelKind::Email, &email, fi());
            prop_assert!(base.is_ok(), "generated address was rejected");
            let mixed: String = email
                .chars()
                .zip(flips.iter().cycle())
                .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            let variant = normalise(ChannelKind::Email, &format!("{before}{mixed}{after}"), fi());
            prop_assert_eq!(
                variant.map(|n| n.index_key().to_owned()),
                base.map(|n| n.index_key().to_owned())
            );
        }

        #[test]
        fn finnish_mobile_numbers_normalise_the_same_in_national_and_international_form(
            tail in fi_mobile_tail(),
            spaces in prop::collection::vec(any::<bool>(), 10),
        ) {
            let expected = format!("+35840{tail}");
            let national: String = format!("040{tail}")
                .chars()
                .zip(spaces.iter())
                .flat_map(|(c, &space)| if space { vec![c, ' '] } else { vec![c] })
                .collect();
            prop_assert_eq!(phone(&expected, fi()), Ok(expected.clone()));
            prop_assert_eq!(phone(&national, fi()), Ok(expected.clone()));
            prop_assert_eq!(phone(&format!("+358 40 {tail}"), fi()), Ok(expected));
        }

        #[test]
        fn phone_masks_keep_length_and_last_two_digits_and_hide_the_middle(tail in fi_mobile_tail()) {
            let e164 = format!("+35840{tail}");
            let masked = mask(ChannelKind::Phone, &e164);
            prop_assert_eq!(masked.len(), e164.len());
            prop_assert!(masked.starts_with("+358"));
            prop_assert_eq!(&masked[masked.len() - 2..], &e164[e164.len() - 2..]);
            let middle = &e164[4..e164.len() - 2];
            prop_assert!(!masked.contains(middle), "{masked} contains {middle}");
            prop_assert_eq!(masked.matches('*').count(), middle.len());
        }

        #[test]
        fn masks_never_equal_values_longer_than_three_chars(
            kind in any_kind(),
            s in prop_oneof![any::<String>(), phoneish(), emailish(), handleish(), "[a-z*@.]{4,8}"],
        ) {
            if s.chars().count() > 3 {
                prop_assert_ne!(mask(kind, &s), s.clone());
            }
            if let Ok(n) = normalise(kind, &s, fi()) {
                if n.value().chars().count() > 3 {
                    prop_assert_ne!(mask(kind, n.value()), n.value());
                }
            }
        }
    }
}
