//! Plain words for the privacy page: dates in the reader's language, the
//! names of channels, roles, purposes and reasons, the access log as
//! sentences ("An agent of the phone channel viewed your phone number on
//! 2 Dec 2026 at 12.14 UTC for support, case T-9."), and a typed contact
//! value masked so that it shows nothing the typist did not know.
//!
//! Every word comes from the catalogs (`i18n/{en,fi}/privacy.toml`); a
//! template there names its blanks in braces (`{who}`), filled in here. A
//! name with no message of its own (a channel an operator added) is shown
//! as it is.

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::{domain::DisplayZone, service::privacy::AccessEvent, web::Lang};

/// `template` with each `{name}` replaced by its value.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The message `prefix` + `name` if the catalog has it, else `fallback`.
fn named(lang: Lang, prefix: &str, name: &str, fallback: &str) -> String {
    let ok = name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    match ok.then(|| lang.t_opt(&format!("{prefix}{name}"))).flatten() {
        Some(text) => text.to_owned(),
        None => fallback.to_owned(),
    }
}

/// A date and time in the display zone (`ARKKU_DISPLAY_TIMEZONE`), named:
/// "2 Dec 2026 at 12.14 (Europe/Helsinki)" / "2.12.2026 klo 12.14 (Europe/Helsinki)".
pub fn date_time(lang: Lang, zone: &DisplayZone, at: OffsetDateTime) -> String {
    let local = zone.to_local(at);
    fill(
        lang.t("privacy_datetime"),
        &[
            ("date", &date(lang, zone, at)),
            ("hour", &format!("{:02}", local.hour())),
            ("minute", &format!("{:02}", local.minute())),
            ("zone", zone.name()),
        ],
    )
}

/// A date in the display zone: "2 Dec 2026" / "2.12.2026".
pub fn date(lang: Lang, zone: &DisplayZone, at: OffsetDateTime) -> String {
    day(lang, zone.to_local(at).date())
}

/// A calendar day in words of `lang`.
fn day(lang: Lang, d: time::Date) -> String {
    let month = u8::from(d.month());
    fill(
        lang.t("privacy_date"),
        &[
            ("day", &d.day().to_string()),
            (
                "month",
                &named(lang, "privacy_month_", month_key(month), ""),
            ),
            ("mnum", &month.to_string()),
            ("year", &d.year().to_string()),
        ],
    )
}

fn month_key(m: u8) -> &'static str {
    const KEYS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    KEYS.get(usize::from(m).saturating_sub(1))
        .copied()
        .unwrap_or("jan")
}

/// An RFC 3339 time of a service view as [`date_time`]; as it is if it
/// does not parse (it always does: the vault wrote it).
pub fn rfc3339_date_time(lang: Lang, zone: &DisplayZone, text: &str) -> String {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_or_else(|_| text.to_owned(), |t| date_time(lang, zone, t))
}

/// An RFC 3339 time, or a calendar date (`2027-01-02`, shown as it is), as [`date`].
pub fn rfc3339_date(lang: Lang, zone: &DisplayZone, text: &str) -> String {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return date(lang, zone, t);
    }
    let calendar = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(text, &calendar) {
        Ok(d) => day(lang, d),
        Err(_) => text.to_owned(),
    }
}

/// A channel's name: "e-mail", "sähköposti".
pub fn channel(lang: Lang, name: &str) -> String {
    named(lang, "privacy_channel_", name, name)
}

/// What a channel's contact value is: "your phone number", "puhelinnumerosi".
pub fn channel_value(lang: Lang, name: &str) -> String {
    let other = fill(lang.t("privacy_noun_other"), &[("channel", name)]);
    named(lang, "privacy_noun_", name, &other)
}

/// A purpose's name: "support", "asiakaspalvelu".
pub fn purpose(lang: Lang, name: &str) -> String {
    named(lang, "privacy_purpose_", name, name)
}

/// A consent state's name: "allowed", "sallittu".
pub fn consent_status(lang: Lang, status: &str) -> String {
    named(lang, "privacy_state_", status, status)
}

/// A request's kind or status: "erasure", "received".
pub fn request_word(lang: Lang, word: &str) -> String {
    named(lang, "privacy_request_", word, word)
}

/// An interaction's kind: "complaint", "reklamaatio".
pub fn kind(lang: Lang, kind: &str) -> String {
    named(lang, "privacy_kind_", kind, kind)
}

/// Who acted, by role and channel, never by name.
fn who(lang: Lang, e: &AccessEvent) -> String {
    match (e.role.as_str(), e.channel.as_deref()) {
        ("agent", Some(ch)) => fill(
            lang.t("privacy_who_agent_of"),
            &[("channel", &channel(lang, ch))],
        ),
        (role, _) => named(
            lang,
            "privacy_who_",
            role,
            &fill(lang.t("privacy_who_other"), &[("role", role)]),
        ),
    }
}

/// "your phone number and your e-mail address".
fn list(lang: Lang, items: &[String]) -> String {
    match items {
        [] => lang.t("privacy_what_your_data").to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {} {last}", init.join(", "), lang.t("privacy_and")),
    }
}

/// Why: " for support, case T-9" (whichever of the two is known).
fn why(lang: Lang, e: &AccessEvent) -> String {
    let mut out = String::new();
    if let Some(p) = &e.purpose {
        out += &fill(
            lang.t("privacy_why_purpose"),
            &[("purpose", &purpose(lang, p))],
        );
    }
    if let Some(c) = &e.case_reference {
        out += &fill(lang.t("privacy_why_case"), &[("case", c)]);
    }
    out
}

/// The sentences of one access-log entry: what was done or refused.
pub fn sentences(lang: Lang, zone: &DisplayZone, e: &AccessEvent) -> Vec<String> {
    let who = who(lang, e);
    let when = date_time(lang, zone, e.at);
    let why = why(lang, e);
    let base = [
        ("who", who.as_str()),
        ("when", when.as_str()),
        ("why", why.as_str()),
    ];
    let sentence = |key: &str, extra: &[(&str, &str)]| {
        let mut values = base.to_vec();
        values.extend_from_slice(extra);
        capitalised(fill(lang.t(key), &values))
    };
    let reads = matches!(
        e.action.as_str(),
        "customer.read" | "contact.reveal" | "interaction.read"
    );
    let mut out = Vec::new();
    if !e.allowed {
        let reason = named(
            lang,
            "privacy_refusal_",
            e.refusal.as_deref().unwrap_or("other"),
            lang.t("privacy_refusal_other"),
        );
        let key = if reads {
            "privacy_log_refused_see"
        } else {
            "privacy_log_refused_other"
        };
        out.push(sentence(key, &[("reason", &reason)]));
        return out;
    }
    if reads {
        let seen: Vec<String> = e.released.iter().map(|c| channel_value(lang, c)).collect();
        if !seen.is_empty() || e.withheld.is_empty() {
            out.push(sentence(
                "privacy_log_viewed",
                &[("what", &list(lang, &seen))],
            ));
        }
        for (ch, reason) in &e.withheld {
            let what = channel_value(lang, ch);
            let reason = named(lang, "privacy_withheld_", reason, reason);
            out.push(sentence(
                "privacy_log_withheld",
                &[("what", &what), ("reason", &reason)],
            ));
        }
    } else {
        let act = e.action.replace('.', "_");
        let fallback = fill(lang.t("privacy_act_other"), &[("action", &e.action)]);
        let act = named(lang, "privacy_act_", &act, &fallback);
        out.push(sentence("privacy_log_acted", &[("act", &act)]));
    }
    out
}

/// `text` with its first letter in upper case (for a heading).
pub fn capitalised(text: String) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// A typed e-mail address or phone number, masked so that the page shows
/// no more than the typist already knew and a shoulder-surfer learns
/// little: `p•••@example.com`, `+358 •• ••• 4567`.
pub fn masked(typed: &str) -> String {
    let typed = typed.trim();
    if let Some((local, domain)) = typed.rsplit_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}•••@{domain}");
    }
    let digits = typed.chars().filter(char::is_ascii_digit).count();
    // Kept: a leading + with up to three digits of country code, and the last four digits.
    let lead = if typed.starts_with('+') { 3 } else { 0 };
    let mut seen = 0;
    typed
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen <= lead || seen > digits.saturating_sub(4) {
                c
            } else {
                '•'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn event() -> AccessEvent {
        AccessEvent {
            at: datetime!(2026-12-02 12:14 UTC),
            action: "customer.read".into(),
            role: "agent".into(),
            channel: Some("phone".into()),
            purpose: Some("support".into()),
            case_reference: Some("T-9".into()),
            allowed: true,
            refusal: None,
            released: vec!["phone".into()],
            withheld: vec![("email".into(), "consent_required".into())],
        }
    }

    #[test]
    fn an_agents_read_is_told_in_plain_words_in_both_languages() {
        let helsinki = DisplayZone::parse("Europe/Helsinki").unwrap();
        let en = sentences(Lang::En, &helsinki, &event());
        assert_eq!(
            en[0],
            "An agent of the phone channel viewed your phone number on 2 Dec 2026 at 14.14 (Europe/Helsinki) for support, case T-9."
        );
        assert!(
            en[1].contains("your e-mail address") && en[1].contains("refused"),
            "{en:?}"
        );
        let fi = sentences(Lang::Fi, &helsinki, &event());
        assert!(
            fi[0].contains("puhelinnumero") && fi[0].contains("2.12.2026 klo 14.14"),
            "{fi:?}"
        );
        assert!(fi.iter().all(|s| !s.contains('{')), "{fi:?}");
        // A day boundary falls by the zone, not by UTC.
        let tokyo = DisplayZone::parse("Asia/Tokyo").unwrap();
        let mut late = event();
        late.at = time::macros::datetime!(2026-12-02 20:00 UTC);
        let en = sentences(Lang::En, &tokyo, &late);
        assert!(
            en[0].contains("on 3 Dec 2026 at 05.00 (Asia/Tokyo)"),
            "{en:?}"
        );
    }

    #[test]
    fn every_word_the_page_names_exists_in_both_languages() {
        for lang in [Lang::En, Lang::Fi] {
            for m in 1..=12 {
                assert!(lang
                    .t_opt(&format!("privacy_month_{}", month_key(m)))
                    .is_some());
            }
            for ch in [
                "email",
                "phone",
                "sms",
                "chat",
                "whatsapp",
                "messenger",
                "instagram",
                "postal",
            ] {
                assert!(
                    lang.t_opt(&format!("privacy_channel_{ch}")).is_some(),
                    "{ch}"
                );
                assert!(lang.t_opt(&format!("privacy_noun_{ch}")).is_some(), "{ch}");
            }
            for p in ["support", "cross_channel", "marketing", "dsr"] {
                assert!(lang.t_opt(&format!("privacy_purpose_{p}")).is_some(), "{p}");
            }
            for r in [
                "consent_required",
                "consent_withdrawn",
                "consent_lapsed",
                "integration_never",
                "retention_expired",
            ] {
                assert!(
                    lang.t_opt(&format!("privacy_withheld_{r}")).is_some(),
                    "{r}"
                );
            }
        }
    }

    #[test]
    fn a_typed_value_is_masked_to_what_the_typist_knew() {
        assert_eq!(masked("pena@example.com"), "p•••@example.com");
        assert_eq!(masked("+358 40 123 4567"), "+358 •• ••• 4567");
        assert_eq!(masked("040 123 4567"), "••• ••• 4567");
        assert_eq!(masked("123"), "123");
    }
}
