//! The audit log's customer index, filed in runs behind the log by the
//! audit writer (migration 0020 and docs/decisions.md, "The audit log's
//! customer index in runs").
//!
//! `audit_customer_seqs (run, customer_id, seq)` holds, per run, the seqs of
//! the entries the run covers, sorted by customer; `run` is the last seq it
//! covers. `audit_customer_runs (through_seq, level)` lists the runs, and
//! its highest `through_seq` is the watermark: every entry up to it is in
//! exactly one listed run. Small runs (level 0) keep the part of the log
//! that a customer-filtered query must scan short; a merged run (level 1)
//! replaces each eight of them, so that such a query makes one seek per
//! [`IndexRun`] entries of the log rather than one per small run.
//!
//! Runs are filed in the writer's transaction, from the log's own rows: the
//! run's rows land at the end of the index in key order, a handful of pages
//! instead of one random page per entry. SQLite only: PostgreSQL keeps the
//! per-entry index (migrations/postgres/0020 says why).

use super::super::StoreResult;

/// Small runs that make one merged run.
const FAN_IN: i64 = 8;

/// The length of a merged run of the customer index, in entries of the log;
/// small runs are an eighth of it. Longer runs cost the writer less and a
/// customer-filtered query one seek fewer per run, but leave more of the log
/// to scan past the watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexRun(i64);

impl IndexRun {
    /// `serve`'s default (`--audit-index-run`).
    pub const DEFAULT: IndexRun = IndexRun(8192);

    /// Merged runs of `entries` (at least 1).
    pub fn new(entries: u32) -> Self {
        IndexRun(i64::from(entries.max(1)))
    }

    fn small(self) -> i64 {
        (self.0 / FAN_IN).max(1)
    }
}

/// Where the runs end: the watermark, and the end of the last merged run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Marks {
    mark: i64,
    merged: i64,
}

/// What the batch that brought the log's head to `head` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filing {
    Nothing,
    /// A small run of the entries in (`from`, `head`].
    Small {
        from: i64,
    },
    /// One merged run of the entries in (`from`, `head`], in place of the
    /// small runs after `from`.
    Merged {
        from: i64,
    },
}

impl Filing {
    fn due(run: IndexRun, marks: Marks, head: i64) -> Filing {
        if head - marks.merged >= run.0 {
            Filing::Merged { from: marks.merged }
        } else if head - marks.mark >= run.small() {
            Filing::Small { from: marks.mark }
        } else {
            Filing::Nothing
        }
    }

    /// The marks once this filing is committed.
    #[cfg(test)]
    fn after(self, marks: Marks, head: i64) -> Marks {
        match self {
            Filing::Nothing => marks,
            Filing::Small { .. } => Marks {
                mark: head,
                ..marks
            },
            Filing::Merged { .. } => Marks {
                mark: head,
                merged: head,
            },
        }
    }
}

/// The marks, read in one statement.
const MARKS: &str = "SELECT COALESCE(MAX(through_seq), 0), \
     COALESCE((SELECT through_seq FROM audit_customer_runs WHERE level = 1 \
               ORDER BY through_seq DESC LIMIT 1), 0) \
     FROM audit_customer_runs";
/// A merged run replaces the small runs after the last merged one (`$1`).
const DROP_SMALL_SEQS: &str = "DELETE FROM audit_customer_seqs WHERE run > $1";
const DROP_SMALL_RUNS: &str = "DELETE FROM audit_customer_runs WHERE through_seq > $1";
/// Files the log's entries in (`$2`, `$1`] as run `$1`, sorted by customer.
const FILE_SEQS: &str = "INSERT INTO audit_customer_seqs (run, customer_id, seq) \
     SELECT $1, customer_id, seq FROM audit_log \
     WHERE seq > $2 AND seq <= $1 AND customer_id IS NOT NULL \
     ORDER BY customer_id, seq";
const FILE_RUN: &str = "INSERT INTO audit_customer_runs (through_seq, level) VALUES ($1, $2)";

/// Files what is due at `head`, inside the writer's transaction (which
/// holds SQLite's write lock, so the marks read here are the truth).
pub(super) fn file_sqlite(
    tx: &rusqlite::Transaction<'_>,
    head: i64,
    run: IndexRun,
) -> StoreResult<()> {
    let marks = tx.prepare_cached(MARKS)?.query_row([], |r| {
        Ok(Marks {
            mark: r.get(0)?,
            merged: r.get(1)?,
        })
    })?;
    let (from, level) = match Filing::due(run, marks, head) {
        Filing::Nothing => return Ok(()),
        Filing::Small { from } => (from, 0),
        Filing::Merged { from } => {
            tx.prepare_cached(DROP_SMALL_SEQS)?.execute([from])?;
            tx.prepare_cached(DROP_SMALL_RUNS)?.execute([from])?;
            (from, 1)
        }
    };
    tx.prepare_cached(FILE_SEQS)?
        .execute(rusqlite::params![head, from])?;
    tx.prepare_cached(FILE_RUN)?
        .execute(rusqlite::params![head, level])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files batches of the given sizes and returns the runs listed after
    /// each, as (through_seq, level), checking that they always cover the
    /// log up to the watermark without a gap or an overlap.
    fn simulate(run: IndexRun, batches: &[i64]) -> Vec<(i64, i64)> {
        let mut runs: Vec<(i64, i64)> = Vec::new();
        let mut marks = Marks::default();
        let mut head = 0;
        for b in batches {
            head += b;
            let filing = Filing::due(run, marks, head);
            match filing {
                Filing::Nothing => {}
                Filing::Small { from } => {
                    assert_eq!(from, marks.mark);
                    runs.push((head, 0));
                }
                Filing::Merged { from } => {
                    assert_eq!(from, marks.merged);
                    runs.retain(|&(t, _)| t <= from);
                    runs.push((head, 1));
                }
            }
            marks = filing.after(marks, head);
            assert_eq!(runs.last().map_or(0, |r| r.0), marks.mark);
            assert!(head - marks.mark < run.small(), "the tail is short");
            assert!(
                runs.iter().filter(|r| r.1 == 0).count() < FAN_IN as usize,
                "at most seven small runs"
            );
        }
        runs
    }

    #[test]
    fn small_runs_are_filed_every_eighth_of_a_run_and_merged_every_run() {
        let runs = simulate(IndexRun::new(16), &[1; 37]);
        assert_eq!(runs, vec![(16, 1), (32, 1), (34, 0), (36, 0)]);
    }

    #[test]
    fn a_batch_that_crosses_several_marks_files_one_run_up_to_its_head() {
        let runs = simulate(IndexRun::new(16), &[5, 30, 1, 3]);
        assert_eq!(runs, vec![(35, 1), (39, 0)]);
    }

    #[test]
    fn a_run_of_one_files_every_batch_as_merged() {
        let runs = simulate(IndexRun::new(1), &[2, 1, 4]);
        assert_eq!(runs, vec![(2, 1), (3, 1), (7, 1)]);
        assert_eq!(IndexRun::new(0), IndexRun::new(1));
    }

    #[test]
    fn the_default_files_small_runs_of_1024() {
        assert_eq!(IndexRun::DEFAULT.small(), 1024);
        let runs = simulate(IndexRun::DEFAULT, &[100; 100]);
        assert_eq!(runs, vec![(8200, 1), (9300, 0)]);
    }
}
