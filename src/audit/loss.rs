//! What a database lacks, measured against a checkpoint kept outside it.
//!
//! After a restore the question is not only "does the chain verify" (a
//! restored chain is intact, merely shorter) but "what did the restore
//! lose". A checkpoint signed later than the backup answers it: the
//! entries it covers beyond the restored head are missing. The answer is
//! stated in words for the operator ([`Comparison::statement`]) and as a
//! count for scripts.

use serde::Serialize;

/// How the database stands against a kept checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "entries")]
pub enum Loss {
    /// The database holds the checkpoint's entry with the signed hash.
    Nothing,
    /// The database ends before the checkpoint: this many entries are missing.
    Missing(i64),
    /// The database holds another entry at the checkpoint's seq: it went on
    /// from an earlier point (a restore followed by new writes), so the
    /// entries the checkpoint covers past that point are gone, replaced.
    Diverged,
}

/// A kept checkpoint set against the database's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The seq the checkpoint covers up to.
    pub checkpoint_seq: i64,
    /// When it was signed (RFC 3339).
    pub checkpoint_at: String,
    /// The last seq in the database (0 for an empty log).
    pub head_seq: i64,
    pub loss: Loss,
}

impl Comparison {
    /// Compares a kept checkpoint (`seq`, `hash`, signed `at`) with the
    /// database's last seq and the hash it holds at `seq` (if it has that entry).
    pub fn new(seq: i64, hash: &[u8], at: &str, head_seq: i64, hash_at_seq: Option<&[u8]>) -> Self {
        let loss = if head_seq < seq {
            Loss::Missing(seq - head_seq)
        } else if hash_at_seq == Some(hash) {
            Loss::Nothing
        } else {
            Loss::Diverged
        };
        Comparison {
            checkpoint_seq: seq,
            checkpoint_at: at.to_owned(),
            head_seq,
            loss,
        }
    }

    /// True when entries the checkpoint covers are not in the database.
    pub fn lost(&self) -> bool {
        self.loss != Loss::Nothing
    }

    /// The finding in one sentence.
    pub fn statement(&self) -> String {
        let (s, at, h) = (self.checkpoint_seq, &self.checkpoint_at, self.head_seq);
        match self.loss {
            Loss::Nothing => format!(
                "nothing is missing: the checkpoint of {at} covers up to seq {s}, and this \
                 database holds that entry with the signed hash (it ends at seq {h})"
            ),
            Loss::Missing(n) => format!(
                "{n} {} after the restored head {} missing (the checkpoint of {at} covers up \
                 to seq {s}; this database ends at seq {h})",
                if n == 1 { "entry" } else { "entries" },
                if n == 1 { "is" } else { "are" },
            ),
            Loss::Diverged => format!(
                "entries are missing: this database holds another entry at seq {s} than the \
                 checkpoint of {at} signed (it ends at seq {h}), so it went on writing from an \
                 earlier point, as after a restore, and the entries that checkpoint covers \
                 after that point are gone"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "2026-12-03T09:00:00Z";

    #[test]
    fn a_database_ending_before_the_checkpoint_misses_the_difference() {
        let c = Comparison::new(120, &[1; 32], AT, 100, None);
        assert_eq!(c.loss, Loss::Missing(20));
        assert!(c.lost());
        assert_eq!(
            c.statement(),
            "20 entries after the restored head are missing (the checkpoint of \
             2026-12-03T09:00:00Z covers up to seq 120; this database ends at seq 100)"
        );
        let empty = Comparison::new(1, &[1; 32], AT, 0, None);
        assert_eq!(empty.loss, Loss::Missing(1));
        assert!(empty
            .statement()
            .starts_with("1 entry after the restored head is missing"));
    }

    #[test]
    fn a_database_holding_the_signed_entry_misses_nothing() {
        let c = Comparison::new(120, &[1; 32], AT, 150, Some(&[1; 32]));
        assert_eq!(c.loss, Loss::Nothing);
        assert!(!c.lost());
        assert!(c.statement().starts_with("nothing is missing"));
        let exact = Comparison::new(120, &[1; 32], AT, 120, Some(&[1; 32]));
        assert_eq!(exact.loss, Loss::Nothing);
    }

    #[test]
    fn another_entry_at_the_checkpoint_means_the_history_went_on_from_an_earlier_point() {
        let c = Comparison::new(120, &[1; 32], AT, 150, Some(&[2; 32]));
        assert_eq!(c.loss, Loss::Diverged);
        assert!(c.lost());
        assert!(c.statement().starts_with("entries are missing"));
    }
}
