//! Codes of the bundle said in words for the export ZIP (English; the
//! README explains them in English and Finnish). The JSON keeps the codes.

use crate::domain::ChannelKind;

/// What an audit action means to the customer it is about.
pub fn action(code: &str) -> String {
    let words = match code {
        "customer.create" => "your customer record was created",
        "customer.read" => "your details were viewed",
        "customer.update" => "your details were changed",
        "customer.erase" => "your data was erased",
        "contact.add" => "a contact point was added",
        "contact.remove" => "a contact point was removed",
        "contact.reveal" => "a contact point was shown in full",
        "lookup" => "you were searched for by a contact point",
        "consent.grant" => "a consent was recorded",
        "consent.withdraw" => "a consent was withdrawn",
        "interaction.create" => "a message or request was recorded",
        "interaction.read" => "your messages and requests were viewed",
        "interaction.resolve" => "a request was marked resolved",
        "export" => "your data was exported",
        "request.replay" => "a repeated request got its earlier answer",
        "retention.purge" => "data past its retention period was deleted",
        "auth.sign_in_start" => "a sign-in code was sent",
        "auth.sign_in" => "a sign-in code was entered",
        "dsr.request.create" => "a data request of yours was registered",
        "dsr.request.update" => "a data request of yours was updated",
        other => return other.to_owned(),
    };
    words.to_owned()
}

/// `allow` or `deny`, in words.
pub fn decision(code: &str) -> &str {
    match code {
        "allow" => "allowed",
        "deny" => "refused",
        other => other,
    }
}

/// The reason codes of one entry: `email withheld: consent_required; …`.
pub fn reasons(reasons: &[super::AccessReason]) -> String {
    reasons
        .iter()
        .map(|r| match &r.channel {
            Some(ch) => format!("{ch} {}: {}", r.outcome, r.code),
            None => format!("{}: {}", r.outcome, r.code),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What kind of contact point a channel holds.
pub fn contact_type(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Email => "e-mail address",
        ChannelKind::Phone => "phone number",
        ChannelKind::Handle => "user name",
        ChannelKind::Text => "text",
    }
}

/// An interaction kind or consent action code as words:
/// `contact_request` → `contact request`.
pub fn code(code: &str) -> String {
    code.replace('_', " ")
}

/// A consent event's action.
pub fn consent_action(code: &str) -> &str {
    match code {
        "grant" => "given",
        "withdraw" => "withdrawn",
        "confirm" => "confirmed",
        other => other,
    }
}

/// Who acted, by role (never the person).
pub fn role(code: &str) -> &str {
    match code {
        "agent" => "a customer service agent",
        "service" => "a system of the shop",
        "compliance" => "a privacy (compliance) officer",
        "customer" => "you",
        "admin" => "an administrator",
        "none" => "the vault itself",
        other => other,
    }
}
