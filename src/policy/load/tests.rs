//! Unit tests of the policy loader: every kind of bad value is named with
//! its file, key and the value itself.

use super::*;

fn channels_with(extra: &str) -> String {
    format!(
        "[channels.email]\nkind = \"email\"\nintegration = \"consent\"\ncontact_retention = \"730d\"\n{extra}\n\
         [channels.email.interactions]\ncontact_request = \"90d\"\ncomplaint = \"730d\"\nfeedback = \"365d\"\ntranscript = \"30d\"\n"
    )
}

fn check_channels(text: &str) -> Result<Policies, PolicyError> {
    parse("channels.toml", text, "purposes.toml", SHIPPED_PURPOSES)
}

#[test]
fn the_shipped_policies_load_with_eight_consent_channels() {
    let p = load_shipped().expect("shipped policies are valid");
    assert_eq!(p.channels.len(), 8);
    assert!(p
        .channels
        .values()
        .all(|c| c.integration == Integration::Consent));
    for name in REQUIRED_PURPOSES {
        assert!(p.purpose(name).is_some(), "{name}");
    }
}

#[test]
fn an_unknown_integration_mode_names_file_key_and_reason() {
    let text =
        channels_with("").replace("integration = \"consent\"", "integration = \"sometimes\"");
    let e = check_channels(&text).unwrap_err();
    assert_eq!(e.file, "channels.toml");
    assert_eq!(e.key, "channels.email.integration");
    assert!(
        e.reason.contains("unknown integration mode \"sometimes\""),
        "{e}"
    );
}

#[test]
fn every_enum_like_value_is_named_in_its_error() {
    let cases = [
        (
            "kind = \"email\"",
            "kind = \"pigeon\"",
            "unknown kind \"pigeon\"",
        ),
        (
            "integration = \"consent\"",
            "integration = 42",
            "must be a string, not 42",
        ),
        (
            "contact_retention = \"730d\"",
            "contact_retention = \"730d\"\nmask = \"sometimes\"",
            "unknown mask mode \"sometimes\"",
        ),
    ];
    for (from, to, reason) in cases {
        let e = check_channels(&channels_with("").replacen(from, to, 1)).unwrap_err();
        assert!(e.reason.contains(reason), "{to}: {e}");
    }
    let text = SHIPPED_PURPOSES.replacen(
        "lawful_basis = \"contract\"",
        "lawful_basis = \"because\"",
        1,
    );
    assert_ne!(text, SHIPPED_PURPOSES);
    let e = parse("channels.toml", SHIPPED_CHANNELS, "purposes.toml", &text).unwrap_err();
    assert!(e.reason.contains("unknown lawful basis \"because\""), "{e}");
}

#[test]
fn a_long_bad_value_is_cut_at_forty_characters() {
    let long = "x".repeat(500);
    let text = channels_with("").replace(
        "integration = \"consent\"",
        &format!("integration = \"{long}\""),
    );
    let e = check_channels(&text).unwrap_err();
    let cut = format!("\"{}\"…", "x".repeat(40));
    assert!(e.reason.contains(&cut), "{e}");
    assert!(!e.reason.contains(&"x".repeat(41)), "{e}");
    assert_eq!(shown_value(&Value::Integer(7)), "7");
    assert_eq!(
        shown("ä".repeat(41).as_str()),
        format!("\"{}\"…", "ä".repeat(40))
    );
}

#[test]
fn an_unknown_kind_is_rejected() {
    let text = channels_with("").replace("kind = \"email\"", "kind = \"pigeon\"");
    assert_eq!(
        check_channels(&text).unwrap_err().key,
        "channels.email.kind"
    );
}

#[test]
fn a_duration_that_does_not_parse_is_rejected() {
    let text = channels_with("").replace("\"730d\"\n", "\"forever\"\n");
    let e = check_channels(&text).unwrap_err();
    assert_eq!(e.key, "channels.email.contact_retention");
    assert!(e.reason.contains("forever"));
}

#[test]
fn an_unknown_key_is_rejected() {
    let e = check_channels(&channels_with("colour = \"red\"")).unwrap_err();
    assert_eq!(e.key, "channels.email.colour");
}

#[test]
fn an_unknown_role_is_rejected() {
    let text = SHIPPED_PURPOSES.replace(
        "roles = [\"agent\", \"service\"]",
        "roles = [\"agent\", \"janitor\"]",
    );
    let e = parse("channels.toml", SHIPPED_CHANNELS, "purposes.toml", &text).unwrap_err();
    assert!(e.key.ends_with(".roles"), "{e}");
    assert!(e.reason.contains("janitor"));
}

#[test]
fn a_missing_required_purpose_is_rejected() {
    let text = SHIPPED_PURPOSES.replace("[purposes.dsr]", "[purposes.other]");
    let e = parse("channels.toml", SHIPPED_CHANNELS, "purposes.toml", &text).unwrap_err();
    assert_eq!(e.key, "purposes.dsr");
}

#[test]
fn cross_channel_and_marketing_must_rest_on_consent() {
    let text = SHIPPED_PURPOSES.replacen(
        "[purposes.cross_channel]\nlawful_basis = \"consent\"\nmax_age = \"365d\"",
        "[purposes.cross_channel]\nlawful_basis = \"contract\"",
        1,
    );
    assert_ne!(text, SHIPPED_PURPOSES);
    let e = parse("channels.toml", SHIPPED_CHANNELS, "purposes.toml", &text).unwrap_err();
    assert_eq!(e.key, "purposes.cross_channel.lawful_basis");
}

fn purposes_with(cross_channel_extra: &str) -> Result<Policies, PolicyError> {
    let text = SHIPPED_PURPOSES.replacen(
        "[purposes.cross_channel]\n",
        &format!("[purposes.cross_channel]\n{cross_channel_extra}\n"),
        1,
    );
    let text = text.replacen(
        "consent_recorders = [\"agent\", \"compliance\"]\nimmediate_agent_attestation = false\n",
        "",
        1,
    );
    parse("channels.toml", SHIPPED_CHANNELS, "purposes.toml", &text)
}

#[test]
fn the_shipped_policies_let_agents_and_compliance_record_consent_with_confirmation() {
    let p = load_shipped().expect("policies");
    for name in CONSENT_PURPOSES {
        let (_, purpose) = p.purpose(name).expect("purpose");
        assert_eq!(
            purpose.consent_recorders,
            [Role::Agent, Role::Compliance],
            "{name}"
        );
        assert!(!purpose.immediate_agent_attestation, "{name}");
    }
}

#[test]
fn without_consent_recorders_only_the_customer_records() {
    let p = purposes_with("").expect("valid");
    let (_, purpose) = p.purpose("cross_channel").expect("purpose");
    assert!(purpose.consent_recorders.is_empty());
    assert!(!purpose.immediate_agent_attestation);
}

#[test]
fn a_service_customer_or_admin_cannot_be_a_consent_recorder() {
    for role in ["service", "customer", "admin", "janitor"] {
        let e = purposes_with(&format!("consent_recorders = [\"{role}\"]")).unwrap_err();
        assert_eq!(e.key, "purposes.cross_channel.consent_recorders", "{e}");
        assert!(e.reason.contains(role), "{e}");
    }
}

#[test]
fn immediate_attestation_needs_agents_among_the_recorders_and_a_boolean() {
    let e = purposes_with("immediate_agent_attestation = true").unwrap_err();
    assert_eq!(e.key, "purposes.cross_channel.immediate_agent_attestation");
    let e = purposes_with("consent_recorders = [\"agent\"]\nimmediate_agent_attestation = \"yes\"")
        .unwrap_err();
    assert!(e.reason.contains("true or false"), "{e}");
    let p = purposes_with("consent_recorders = [\"agent\"]\nimmediate_agent_attestation = true")
        .expect("valid");
    assert!(
        p.purpose("cross_channel")
            .expect("purpose")
            .1
            .immediate_agent_attestation
    );
}

#[test]
fn a_purpose_not_resting_on_consent_records_none() {
    let text = SHIPPED_PURPOSES.replacen(
        "[purposes.support]\n",
        "[purposes.support]\nconsent_recorders = [\"agent\"]\n",
        1,
    );
    let e = parse("channels.toml", SHIPPED_CHANNELS, "purposes.toml", &text).unwrap_err();
    assert_eq!(e.key, "purposes.support.consent_recorders");
}

#[test]
fn bad_toml_syntax_is_reported() {
    let e = check_channels("[channels.email\n").unwrap_err();
    assert_eq!(e.key, "(syntax)");
}

#[test]
fn sign_in_is_off_unless_a_channel_says_true() {
    let p = check_channels(&channels_with("")).expect("valid");
    assert!(p.channels.values().all(|c| !c.sign_in));
    let p = check_channels(&channels_with("sign_in = true")).expect("valid");
    assert!(p.channels.values().all(|c| c.sign_in));
}

#[test]
fn a_sign_in_that_is_not_a_boolean_is_named() {
    let e = check_channels(&channels_with("sign_in = \"yes\"")).unwrap_err();
    assert_eq!(e.key, "channels.email.sign_in");
    assert_eq!(e.reason, "must be true or false, not \"yes\"");
}

#[test]
fn the_shipped_policies_allow_sign_in_on_email_phone_and_sms_only() {
    let p = load_shipped().expect("shipped policies are valid");
    let mut on: Vec<&str> = p
        .channels
        .iter()
        .filter(|(_, c)| c.sign_in)
        .map(|(id, _)| id.as_str())
        .collect();
    on.sort_unstable();
    assert_eq!(on, ["email", "phone", "sms"]);
}
