//! The register of data subject requests as plain rules: the kinds of
//! request, the states a request moves through, and its due date.
//!
//! The state machine is a table ([`RequestStatus::next`]): a state with no
//! next step is final, and every other state has at least one, so no request
//! can sit where nothing can happen to it (the tests walk the table).
//!
//! Due dates follow GDPR Art. 12(3) (one month from receipt, extendable by
//! two further months) counted as Regulation (EEC, Euratom) No 1182/71
//! art. 3(2)(c) says: a period of months ends with the last hour of the day
//! of the last month that has the same date as the day of receipt, or, when
//! that month is too short, of its last day (31 January → 28 or 29 February).
//! Months are counted from the receipt, never from an earlier due date, so
//! 31 January plus three months is 30 April, not 28 April. Days are UTC
//! days. The rule of art. 3(4) (a period ending on a public holiday or a
//! weekend runs to the next working day) is not applied: the vault knows no
//! holiday calendar, and the earlier date is the safe side.

use time::{Date, Duration, Month, OffsetDateTime, Time};

/// What the data subject asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// Art. 15 (and 20): a copy of their data.
    Access,
    /// Art. 17: erasure.
    Erasure,
    /// Art. 16: correction of inaccurate data.
    Rectification,
}

impl RequestKind {
    pub const ALL: [RequestKind; 3] = [
        RequestKind::Access,
        RequestKind::Erasure,
        RequestKind::Rectification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Access => "access",
            RequestKind::Erasure => "erasure",
            RequestKind::Rectification => "rectification",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestStatus {
    /// Logged; the requester is not yet known to be the data subject.
    Received,
    /// The requester is the data subject, a customer the register names.
    IdentityVerified,
    /// Being worked on.
    InProgress,
    /// Answered (final).
    Completed,
    /// Refused, with a recorded reason (Art. 12(4), 12(5)) (final).
    Refused,
    /// Withdrawn by the data subject (final).
    Withdrawn,
}

use RequestStatus::*;

impl RequestStatus {
    pub const ALL: [RequestStatus; 6] = [
        Received,
        IdentityVerified,
        InProgress,
        Completed,
        Refused,
        Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Received => "received",
            IdentityVerified => "identity_verified",
            InProgress => "in_progress",
            Completed => "completed",
            Refused => "refused",
            Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The transition table: where a request in this state may go next.
    /// Nothing is completed before the requester's identity is verified,
    /// and anything open may be refused or withdrawn.
    pub fn next(self) -> &'static [RequestStatus] {
        match self {
            Received => &[IdentityVerified, Refused, Withdrawn],
            IdentityVerified => &[InProgress, Completed, Refused, Withdrawn],
            InProgress => &[Completed, Refused, Withdrawn],
            Completed | Refused | Withdrawn => &[],
        }
    }

    /// A final state has no next step.
    pub fn is_final(self) -> bool {
        self.next().is_empty()
    }

    /// May a request in this state move to `to`?
    pub fn may_become(self, to: RequestStatus) -> bool {
        self.next().contains(&to)
    }
}

/// The most a due date may be extended, in months (Art. 12(3)).
pub const MAX_EXTENSION_MONTHS: u8 = 2;

/// `date` plus `months` calendar months, clamped to the end of a shorter
/// month (Regulation 1182/71 art. 3(2)(c)); `None` only past year 9999.
pub fn add_months(date: Date, months: u8) -> Option<Date> {
    let index = i64::from(date.year()) * 12 + i64::from(u8::from(date.month())) - 1;
    let target = index + i64::from(months);
    let year = i32::try_from(target.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(target.rem_euclid(12) + 1).ok()?).ok()?;
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}

/// The last day on which a request received on `received` may be answered,
/// after `extension_months` months of extension.
pub fn due_date(received: Date, extension_months: u8) -> Option<Date> {
    add_months(received, 1u8.checked_add(extension_months)?)
}

/// The instant a request becomes overdue: the end of its due date (UTC).
pub fn due_at(received: OffsetDateTime, extension_months: u8) -> Option<OffsetDateTime> {
    let received = received.to_offset(time::UtcOffset::UTC).date();
    let last = due_date(received, extension_months)?;
    Some(last.next_day()?.with_time(Time::MIDNIGHT).assume_utc())
}

/// How long before its due date an open request counts as due soon.
pub const DUE_SOON: Duration = Duration::days(7);

/// How urgent an open request is at `now`: overdue (its due date has
/// passed), due soon (within [`DUE_SOON`]), or neither. Final requests are
/// neither.
pub fn urgency(status: RequestStatus, due_at: OffsetDateTime, now: OffsetDateTime) -> Urgency {
    if status.is_final() {
        Urgency::None
    } else if now >= due_at {
        Urgency::Overdue
    } else if due_at - now <= DUE_SOON {
        Urgency::DueSoon
    } else {
        Urgency::None
    }
}

/// See [`urgency`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    Overdue,
    DueSoon,
    None,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use time::macros::{date, datetime};

    #[test]
    fn every_open_state_has_a_next_step_and_final_states_have_none() {
        for s in RequestStatus::ALL {
            let finals = [Completed, Refused, Withdrawn];
            assert_eq!(s.is_final(), finals.contains(&s), "{s:?}");
            assert!(!s.may_become(s), "{s:?} may not stay where it is");
            if !s.is_final() {
                // Every open state can still be closed either way.
                assert!(s.may_become(Refused) && s.may_become(Withdrawn), "{s:?}");
            }
        }
    }

    #[test]
    fn every_state_is_reachable_from_received_and_every_open_one_reaches_completion() {
        let mut seen = HashSet::from([Received]);
        let mut todo = vec![Received];
        while let Some(s) = todo.pop() {
            for n in s.next() {
                if seen.insert(*n) {
                    todo.push(*n);
                }
            }
        }
        assert_eq!(seen.len(), RequestStatus::ALL.len());
        for s in [Received, IdentityVerified, InProgress] {
            let mut at = s;
            // Follow the first non-refusing step: it leads to completion.
            while !at.is_final() {
                at = at.next()[0];
            }
            assert_eq!(at, Completed, "from {s:?}");
        }
    }

    #[test]
    fn the_transition_table_is_as_documented() {
        let table: &[(RequestStatus, &[RequestStatus])] = &[
            (Received, &[IdentityVerified, Refused, Withdrawn]),
            (
                IdentityVerified,
                &[InProgress, Completed, Refused, Withdrawn],
            ),
            (InProgress, &[Completed, Refused, Withdrawn]),
            (Completed, &[]),
            (Refused, &[]),
            (Withdrawn, &[]),
        ];
        for (from, to) in table {
            for s in RequestStatus::ALL {
                assert_eq!(from.may_become(s), to.contains(&s), "{from:?} → {s:?}");
            }
        }
        assert!(!Received.may_become(Completed), "identity first");
        assert!(!Received.may_become(InProgress), "identity first");
    }

    #[test]
    fn names_round_trip() {
        for s in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(s.as_str()), Some(s));
        }
        for k in RequestKind::ALL {
            assert_eq!(RequestKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(RequestStatus::parse("Completed"), None);
        assert_eq!(RequestKind::parse(""), None);
    }

    #[test]
    fn a_month_ends_on_the_same_date_or_the_last_day_of_a_shorter_month() {
        assert_eq!(
            due_date(date!(2026 - 01 - 15), 0),
            Some(date!(2026 - 02 - 15))
        );
        assert_eq!(
            due_date(date!(2026 - 01 - 31), 0),
            Some(date!(2026 - 02 - 28))
        );
        assert_eq!(
            due_date(date!(2028 - 01 - 31), 0),
            Some(date!(2028 - 02 - 29))
        );
        assert_eq!(
            due_date(date!(2026 - 03 - 31), 0),
            Some(date!(2026 - 04 - 30))
        );
        assert_eq!(
            due_date(date!(2026 - 12 - 20), 0),
            Some(date!(2027 - 01 - 20))
        );
        // Extensions count from the receipt, not from the first due date.
        assert_eq!(
            due_date(date!(2026 - 01 - 31), 1),
            Some(date!(2026 - 03 - 31))
        );
        assert_eq!(
            due_date(date!(2026 - 01 - 31), 2),
            Some(date!(2026 - 04 - 30))
        );
        assert_eq!(
            due_date(date!(2026 - 11 - 30), 2),
            Some(date!(2027 - 02 - 28))
        );
    }

    #[test]
    fn a_request_is_overdue_once_its_due_date_has_ended() {
        let due = due_at(datetime!(2026-01-31 23:59 UTC), 0).unwrap();
        assert_eq!(due, datetime!(2026-03-01 00:00 UTC));
        let day = Duration::days(1);
        assert_eq!(
            urgency(Received, due, due - Duration::SECOND),
            Urgency::DueSoon
        );
        assert_eq!(urgency(Received, due, due), Urgency::Overdue);
        assert_eq!(urgency(Received, due, due - day * 7), Urgency::DueSoon);
        assert_eq!(
            urgency(Received, due, due - day * 7 - Duration::SECOND),
            Urgency::None
        );
        assert_eq!(urgency(Completed, due, due + day), Urgency::None);
    }

    fn any_date() -> impl Strategy<Value = Date> {
        (1970i32..2500, 1u8..=12, 1u8..=31).prop_map(|(y, m, d)| {
            let month = Month::try_from(m).unwrap();
            Date::from_calendar_date(y, month, d.min(month.length(y))).unwrap()
        })
    }

    proptest! {
        #[test]
        fn adding_months_keeps_the_date_or_ends_the_shorter_month(d in any_date(), n in 0u8..=3) {
            let got = add_months(d, n).unwrap();
            let months = |x: Date| i32::from(u8::from(x.month())) + 12 * x.year();
            prop_assert_eq!(months(got) - months(d), i32::from(n));
            let length = got.month().length(got.year());
            if d.day() <= length {
                prop_assert_eq!(got.day(), d.day());
            } else {
                prop_assert_eq!(got.day(), length);
            }
        }

        #[test]
        fn due_dates_grow_with_extensions_and_stay_within_three_months(d in any_date()) {
            let dates: Vec<Date> = (0..=MAX_EXTENSION_MONTHS).map(|e| due_date(d, e).unwrap()).collect();
            prop_assert!(dates[0] > d);
            prop_assert!(dates.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(dates[2] - d <= Duration::days(92));
            prop_assert!(dates[0] - d >= Duration::days(28));
        }

        #[test]
        fn the_due_instant_is_the_midnight_after_the_due_date(d in any_date(), secs in 0i64..86_400, e in 0u8..=2) {
            let received = d.with_time(Time::MIDNIGHT).assume_utc() + Duration::seconds(secs);
            let at = due_at(received, e).unwrap();
            prop_assert_eq!(at.time(), Time::MIDNIGHT);
            prop_assert_eq!(at.date().previous_day().unwrap(), due_date(d, e).unwrap());
        }
    }
}
