//! Property test of the whole ZIP rendering: whatever text a bundle holds
//! (names, labels, contact values, bodies, notices, purposes), no cell of
//! any CSV file in the ZIP starts with what a spreadsheet would run, and
//! every stored phone number reads in its bracketed form.

use std::io::Read;

use proptest::prelude::*;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{
    AccessPart, AccessReason, Bundle, ContactPart, CustomerPart, InteractionPart, RetentionPart,
    FORMAT,
};
use crate::{
    domain::{ChannelKind, DisplayZone},
    service::views::{ConsentEventView, Evidence},
};

const AT: &str = "2026-12-02T10:14:00Z";

fn contact(kind: ChannelKind, value: &str, label: &str) -> ContactPart {
    ContactPart {
        id: Uuid::now_v7(),
        channel: "phone".into(),
        value: Zeroizing::new(value.into()),
        label: Some(Zeroizing::new(label.into())),
        created_at: AT.into(),
        last_activity_at: AT.into(),
        kind,
    }
}

fn consent(text: &str) -> ConsentEventView {
    ConsentEventView {
        consent_id: Uuid::now_v7(),
        purpose: text.into(),
        channel: text.into(),
        action: text.into(),
        evidence: Some(Evidence {
            notice_id: text.into(),
            notice_version: text.into(),
        }),
        method: text.into(),
        source_channel: Some(text.into()),
        recorded_by: text.into(),
        at: AT.into(),
        expires_at: Some(text.into()),
        status: text.into(),
        confirms: None,
        review: Some(text.into()),
    }
}

/// A bundle whose every free-text field holds `text`, and a phone number.
fn bundle(text: &str, phone: &str) -> Bundle {
    let contacts = vec![
        contact(ChannelKind::Phone, phone, text),
        contact(ChannelKind::Text, text, text),
        contact(ChannelKind::Phone, text, text),
    ];
    let interaction = InteractionPart {
        id: Uuid::now_v7(),
        channel: text.into(),
        kind: text.into(),
        body: Zeroizing::new(text.into()),
        created_at: AT.into(),
        due_at: Some(text.into()),
        resolved_at: None,
    };
    let retention = contacts
        .iter()
        .map(|c| (c.id, "contact"))
        .chain([(interaction.id, "interaction")])
        .map(|(id, item)| RetentionPart {
            item,
            id,
            channel: text.into(),
            delete_after: Some(AT.into()),
        })
        .collect();
    Bundle {
        format: FORMAT,
        exported_at: AT.into(),
        customer: CustomerPart {
            id: Uuid::now_v7(),
            display_name: Some(Zeroizing::new(text.into())),
            external_ref: Some(Zeroizing::new(text.into())),
            preferred_channel: Some(text.into()),
            created_at: AT.into(),
            updated_at: text.into(),
        },
        contacts,
        interactions: vec![interaction],
        consents: vec![consent(text)],
        access_log: vec![AccessPart {
            seq: 1,
            at: AT.into(),
            action: text.into(),
            role: text.into(),
            purpose: Some(text.into()),
            channel: Some(text.into()),
            decision: text.into(),
            reasons: vec![AccessReason {
                outcome: "withheld",
                channel: Some(text.into()),
                code: text.into(),
            }],
        }],
        retention,
    }
}

/// Every cell of every CSV file in `zip`.
fn cells(zip: &[u8]) -> Vec<String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        if !f.name().unwrap().ends_with(".csv") {
            continue;
        }
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        let text = text.strip_prefix('\u{feff}').unwrap();
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .from_reader(text.as_bytes());
        for rec in r.records() {
            out.extend(rec.unwrap().iter().map(str::to_owned));
        }
    }
    out
}

fn runnable(cell: &str) -> bool {
    cell.starts_with(['\t', '\r'])
        || cell
            .trim_start()
            .starts_with(['=', '+', '-', '@', '＝', '＋', '－', '＠'])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_cell_of_the_zip_runs_as_a_formula(
        text in prop_oneof![
            any::<String>(),
            "[=+@-][A-Z(\"0-9|!' ]{0,16}",
            "[ \t\r]{1,2}[=+@-][0-9]{1,4}",
        ],
        phone in "\\+358(40|50)[0-9]{7}",
    ) {
        let zip = bundle(&text, &phone).to_zip(&DisplayZone::default()).unwrap();
        let cells = cells(&zip);
        for cell in &cells {
            prop_assert!(!runnable(cell), "{:?}", cell);
        }
        prop_assert!(cells.iter().any(|c| c.starts_with("(+358) ")), "{:?}", cells);
        prop_assert!(!cells.iter().any(|c| c.contains(&phone)));
    }
}
