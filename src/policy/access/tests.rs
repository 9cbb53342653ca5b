//! The matrix as a table: every role × operation × purpose case.

use super::*;
use crate::domain::{ChannelId, Purpose};

fn actor(role: Role, purposes: &[&str]) -> Actor {
    Actor {
        sub: "00000000-0000-7000-8000-000000000001".into(),
        role,
        purposes: purposes
            .iter()
            .map(|p| Purpose::parse(p).unwrap())
            .collect(),
        channel: ChannelId::parse("phone").ok(),
        client: None,
        customer: (role == Role::Customer).then(Uuid::nil),
    }
}

fn outcome(r: Result<Access, Denied>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(Denied::Role) => "forbidden",
        Err(Denied::PurposeMissing) => "missing",
        Err(Denied::Purpose(PurposeDenied::Unknown)) => "unknown_purpose",
        Err(Denied::Purpose(PurposeDenied::NotAllowed)) => "purpose_not_allowed",
    }
}

#[test]
fn every_operation_has_exactly_one_row() {
    for (op, roles, _) in MATRIX {
        assert_eq!(
            MATRIX.iter().filter(|(o, _, _)| o == op).count(),
            1,
            "{op:?}"
        );
        assert!(!roles.is_empty(), "{op:?} has no role");
    }
    assert_eq!(MATRIX.len(), 34);
}

/// The operations that administer the vault rather than touch its data.
const ADMINISTRATION: [Operation; 5] = [
    CreateClient,
    ReadClients,
    RevokeClient,
    RotateClientSecret,
    ReadKeysOverview,
];

#[test]
fn admins_may_call_no_data_operation() {
    let p = crate::policy::load_shipped().unwrap();
    let admin = actor(Role::Admin, &["support", "dsr"]);
    for (op, _, _) in MATRIX {
        let want = if ADMINISTRATION.contains(op) {
            "ok"
        } else {
            "forbidden"
        };
        assert_eq!(
            outcome(authorise(&p, &admin, *op, Some("support"))),
            want,
            "{op:?}"
        );
    }
}

#[test]
fn only_admins_administer() {
    let p = crate::policy::load_shipped().unwrap();
    for role in Role::ALL.into_iter().filter(|r| *r != Role::Admin) {
        for op in ADMINISTRATION {
            assert_eq!(
                outcome(authorise(&p, &actor(role, &["support", "dsr"]), op, None)),
                "forbidden",
                "{role:?} {op:?}"
            );
        }
    }
}

/// Role, its token's purposes, operation, the purpose the request
/// names, and the outcome.
type Case = (
    Role,
    &'static [&'static str],
    Operation,
    Option<&'static str>,
    &'static str,
);

/// The matrix as a table.
#[test]
fn the_matrix_decides_as_the_table_says() {
    let p = crate::policy::load_shipped().unwrap();
    let cases: &[Case] = &[
        (Role::Agent, &["support"], CreateCustomer, None, "ok"),
        (
            Role::Compliance,
            &["dsr"],
            CreateCustomer,
            None,
            "forbidden",
        ),
        (Role::Customer, &[], CreateCustomer, None, "forbidden"),
        (
            Role::Agent,
            &["support"],
            ReadCustomer,
            Some("support"),
            "ok",
        ),
        (
            Role::Service,
            &["support"],
            ReadCustomer,
            Some("support"),
            "ok",
        ),
        (Role::Agent, &["support"], ReadCustomer, None, "missing"),
        (
            Role::Agent,
            &["support"],
            ReadCustomer,
            Some("marketing"),
            "purpose_not_allowed",
        ),
        (
            Role::Agent,
            &["support"],
            ReadCustomer,
            Some("nosuch"),
            "unknown_purpose",
        ),
        (
            Role::Compliance,
            &["dsr"],
            ReadCustomer,
            Some("dsr"),
            "forbidden",
        ),
        (Role::Agent, &["support"], Lookup, Some("support"), "ok"),
        (Role::Compliance, &["dsr"], Lookup, Some("dsr"), "ok"),
        (
            Role::Compliance,
            &["dsr"],
            Lookup,
            Some("support"),
            "purpose_not_allowed",
        ),
        (
            Role::Agent,
            &["support", "dsr"],
            Lookup,
            Some("dsr"),
            "purpose_not_allowed",
        ),
        (Role::Customer, &["dsr"], Lookup, Some("dsr"), "forbidden"),
        (Role::Agent, &[], RecordConsent, None, "ok"),
        (Role::Compliance, &[], ListConsents, None, "ok"),
        (
            Role::Service,
            &["support"],
            RecordConsent,
            None,
            "forbidden",
        ),
        (Role::Customer, &[], RecordOwnConsent, None, "ok"),
        (Role::Agent, &[], RecordOwnConsent, None, "forbidden"),
        (Role::Customer, &[], ReadOwnProfile, None, "ok"),
        (Role::Customer, &[], ExportOwnData, None, "ok"),
        (Role::Customer, &[], EraseOwnData, None, "ok"),
        (Role::Customer, &[], ReadOwnAccessLog, None, "ok"),
        (Role::Agent, &[], ReadOwnAccessLog, None, "forbidden"),
        (Role::Compliance, &["dsr"], ExportCustomer, None, "ok"),
        (
            Role::Compliance,
            &[],
            ExportCustomer,
            None,
            "purpose_not_allowed",
        ),
        (Role::Compliance, &["dsr"], EraseCustomer, None, "ok"),
        (Role::Agent, &["dsr"], EraseCustomer, None, "forbidden"),
        (
            Role::Compliance,
            &["dsr"],
            InventoryCustomer,
            Some("dsr"),
            "ok",
        ),
        (
            Role::Compliance,
            &[],
            InventoryCustomer,
            Some("dsr"),
            "purpose_not_allowed",
        ),
        (
            Role::Compliance,
            &["dsr"],
            InventoryCustomer,
            Some("support"),
            "purpose_not_allowed",
        ),
        (
            Role::Agent,
            &["support", "dsr"],
            InventoryCustomer,
            Some("dsr"),
            "forbidden",
        ),
        (Role::Agent, &[], CreateInteraction, None, "ok"),
        (
            Role::Service,
            &["support"],
            CreateInteraction,
            None,
            "forbidden",
        ),
        (
            Role::Agent,
            &["support"],
            ListInteractions,
            Some("support"),
            "ok",
        ),
        (
            Role::Service,
            &["support"],
            ListOverdueInteractions,
            Some("support"),
            "ok",
        ),
        (Role::Agent, &[], ResolveInteraction, None, "ok"),
        (Role::Compliance, &[], ReadAudit, None, "ok"),
        (Role::Compliance, &[], VerifyAudit, None, "ok"),
        (Role::Agent, &["support"], ReadAudit, None, "forbidden"),
        (
            Role::Compliance,
            &["dsr"],
            CreateDsrRequest,
            Some("dsr"),
            "ok",
        ),
        (
            Role::Compliance,
            &["dsr"],
            ListDsrRequests,
            Some("dsr"),
            "ok",
        ),
        (
            Role::Compliance,
            &["dsr"],
            UpdateDsrRequest,
            Some("dsr"),
            "ok",
        ),
        (
            Role::Compliance,
            &["dsr"],
            ExportDsrRequests,
            Some("dsr"),
            "ok",
        ),
        (
            Role::Compliance,
            &[],
            ListDsrRequests,
            Some("dsr"),
            "purpose_not_allowed",
        ),
        (
            Role::Agent,
            &["support", "dsr"],
            ReadDsrRequest,
            Some("dsr"),
            "forbidden",
        ),
        (
            Role::Customer,
            &["dsr"],
            ListDsrRequests,
            Some("dsr"),
            "forbidden",
        ),
        (Role::Customer, &[], ListOwnDsrRequests, None, "ok"),
        (Role::Admin, &[], ReadKeysOverview, None, "ok"),
        (
            Role::Compliance,
            &["dsr"],
            ReadKeysOverview,
            None,
            "forbidden",
        ),
        (
            Role::Service,
            &["support"],
            ReadKeysOverview,
            None,
            "forbidden",
        ),
        (
            Role::Compliance,
            &["dsr"],
            ListOwnDsrRequests,
            None,
            "forbidden",
        ),
    ];
    for (role, purposes, op, purpose, want) in cases {
        let got = outcome(authorise(&p, &actor(*role, purposes), *op, *purpose));
        assert_eq!(got, *want, "{role:?} {purposes:?} {op:?} {purpose:?}");
    }
}
