//! The plain-language READMEs of the export ZIP: `README.txt` in English and
//! `LUEMINUT.txt` in Finnish. They say what each file and column holds, what
//! every reason code of the access log means, and which zone the times are
//! in. The texts live beside this file; the zone is filled in here.

use crate::domain::DisplayZone;

const ENGLISH: &str = include_str!("readme.en.txt");
const FINNISH: &str = include_str!("readme.fi.txt");

/// `README.txt`, with Windows line ends so every editor shows its lines.
pub fn english(zone: &DisplayZone) -> String {
    fill(ENGLISH, zone)
}

/// `LUEMINUT.txt`.
pub fn finnish(zone: &DisplayZone) -> String {
    fill(FINNISH, zone)
}

/// The moment the READMEs show as an example, in the export's zone.
const EXAMPLE: time::OffsetDateTime = time::macros::datetime!(2026-12-02 10:14 UTC);

fn fill(text: &str, zone: &DisplayZone) -> String {
    text.replace("{zone}", zone.name())
        .replace("{example}", &zone.local(EXAMPLE))
        .replace('\n', "\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        identity::sign_in::Refusal,
        policy::{
            decide::{PermitReason, WithheldReason},
            write::WriteDenied,
        },
        service::{export::csv_files, Error},
    };

    fn both() -> [String; 2] {
        let zone = DisplayZone::parse("Europe/Helsinki").unwrap();
        [english(&zone), finnish(&zone)]
    }

    #[test]
    fn each_readme_explains_every_column_and_names_the_zone() {
        let headers = [
            &csv_files::EXPORT[..],
            &csv_files::CUSTOMER,
            &csv_files::CONTACTS,
            &csv_files::INTERACTIONS,
            &csv_files::CONSENTS,
            &csv_files::ACCESS_LOG,
            &csv_files::RETENTION,
        ];
        for text in both() {
            assert!(text.contains("    2026-12-02 12:14 (Europe/Helsinki, UTC+02:00)\r\n"));
            assert!(!text.contains("{zone}") && !text.contains("{example}"));
            for header in headers.iter().flat_map(|h| h.iter()) {
                assert!(text.contains(&format!("\r\n  {header} ")), "{header}");
            }
        }
    }

    #[test]
    fn each_readme_explains_every_reason_code_the_access_log_can_carry() {
        let mut codes: Vec<&str> = vec![];
        codes.extend(
            [
                PermitReason::SameChannel,
                PermitReason::IntegrationAlways,
                PermitReason::ConsentGranted,
                PermitReason::DataSubject,
            ]
            .map(PermitReason::as_str),
        );
        codes.extend(
            [
                WithheldReason::ConsentRequired,
                WithheldReason::ConsentWithdrawn,
                WithheldReason::ConsentLapsed,
                WithheldReason::IntegrationNever,
                WithheldReason::RetentionExpired,
            ]
            .map(WithheldReason::as_str),
        );
        codes.extend(
            [
                WriteDenied::Role,
                WriteDenied::NoChannelContext,
                WriteDenied::OtherChannel,
                WriteDenied::NotAConsentRecorder,
            ]
            .map(WriteDenied::as_str),
        );
        codes.extend(
            [
                Refusal::Unknown,
                Refusal::Used,
                Refusal::Expired,
                Refusal::Exhausted,
                Refusal::WrongCode,
            ]
            .map(Refusal::as_str),
        );
        let errors = [
            Error::Forbidden,
            Error::PurposeNotAllowed,
            Error::NotFound,
            Error::ContactExists,
            Error::ConsentNotPending,
            Error::CustomerErased,
            Error::CaseReferenceExists,
            Error::InvalidCode,
            Error::AuditUnavailable,
            Error::Internal,
        ];
        codes.extend(errors.iter().map(Error::code));
        for text in both() {
            for code in &codes {
                assert!(text.contains(code), "{code}");
            }
        }
    }
}
