//! The chain watch of `serve`: verifies the audit chain in the background,
//! at start and then every `ARKKU_AUDIT_VERIFY_INTERVAL`, and holds the
//! outcome for `/readyz` and the logs.
//!
//! Without it a vault served happily on a chain with an edited entry, and
//! `/readyz` said `audit: ok`: tampering was found only when someone ran
//! `arkku audit verify`. Each pass starts after the newest stored checkpoint
//! whose signature is valid ([`verify::verify_after`]), so it costs what was
//! appended since that checkpoint (at most `ARKKU_AUDIT_CHECKPOINT_EVERY`
//! entries plus the tail), not the whole log, and start-up never waits for
//! it: until the first pass is done readiness says `verifying` and the vault
//! serves. A broken chain makes the vault not ready and is logged as an
//! error on every pass; it stays broken until a restart, because a chain that
//! verifies again later was changed again, which is no reason to trust it.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use super::verify::{self, VerifyReport};
use crate::store::Db;

/// How soon a pass that could not read the log (database unavailable) is
/// tried again, at most; the interval applies if it is shorter.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// What the watch knows about the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainState {
    /// No watch runs (`ARKKU_AUDIT_VERIFY_INTERVAL=off`, or an embedding that
    /// did not start one).
    Off,
    /// The first pass since start has not finished.
    Verifying,
    /// The last pass verified every entry it walked, up to `head_seq`.
    Intact { head_seq: i64 },
    /// A pass found the chain broken at `first_bad_seq`.
    Broken { first_bad_seq: i64, problem: String },
}

impl ChainState {
    /// The word `/readyz` shows.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChainState::Off => "off",
            ChainState::Verifying => "verifying",
            ChainState::Intact { .. } => "intact",
            ChainState::Broken { .. } => "broken",
        }
    }
}

/// The shared outcome of the watch's passes.
#[derive(Debug)]
pub struct ChainWatch {
    state: Mutex<ChainState>,
}

impl Default for ChainWatch {
    fn default() -> Self {
        ChainWatch {
            state: Mutex::new(ChainState::Off),
        }
    }
}

impl ChainWatch {
    /// The current state (a copy).
    pub fn state(&self) -> ChainState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn set(&self, next: ChainState) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Broken is final for this process (see the module doc).
        if !matches!(*s, ChainState::Broken { .. }) {
            *s = next;
        }
    }

    /// Starts the passes: the first at once, then one every `every`.
    /// `trusted_key` is the vault's checkpoint public key.
    pub fn start(self: &Arc<Self>, db: Db, trusted_key: Vec<u8>, every: Duration) {
        if every.is_zero() {
            return;
        }
        self.set(ChainState::Verifying);
        let watch = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let wait = match pass(&db, &trusted_key).await {
                    Ok(report) => {
                        watch.record(&report);
                        every
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the audit chain could not be verified; trying again");
                        every.min(RETRY_AFTER_ERROR)
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// Takes a pass's findings into the state and the logs.
    fn record(&self, report: &VerifyReport) {
        match (report.ok, report.first_bad_seq) {
            (true, _) => {
                tracing::debug!(
                    head_seq = report.head_seq,
                    entries_checked = report.entries_checked,
                    "audit chain verified since the last signed checkpoint"
                );
                self.set(ChainState::Intact {
                    head_seq: report.head_seq,
                });
            }
            (false, seq) => {
                let first_bad_seq = seq.unwrap_or(report.head_seq + 1);
                let problem = report.problem.clone().unwrap_or_default();
                tracing::error!(
                    first_bad_seq,
                    problem = %problem,
                    "THE AUDIT CHAIN DOES NOT VERIFY: entries were changed, removed or inserted; \
                     run `arkku audit verify` with a kept checkpoint and investigate"
                );
                self.set(ChainState::Broken {
                    first_bad_seq,
                    problem,
                });
            }
        }
    }
}

/// One pass: from the newest validly signed stored checkpoint to the head.
async fn pass(db: &Db, trusted_key: &[u8]) -> Result<VerifyReport, crate::store::StoreError> {
    let anchor = verify::last_signed_checkpoint(db, trusted_key).await?;
    verify::verify_after(db, trusted_key, anchor).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ok: bool, bad: Option<i64>) -> VerifyReport {
        VerifyReport {
            ok,
            entries_checked: 3,
            head_seq: 7,
            head_hash: String::new(),
            first_bad_seq: bad,
            problem: (!ok).then(|| "the entry's content does not match its hash".to_owned()),
            checkpoints_checked: 0,
        }
    }

    #[test]
    fn a_broken_chain_stays_broken_until_restart() {
        let watch = ChainWatch::default();
        assert_eq!(watch.state(), ChainState::Off);
        watch.set(ChainState::Verifying);
        watch.record(&report(true, None));
        assert_eq!(watch.state(), ChainState::Intact { head_seq: 7 });
        watch.record(&report(false, Some(5)));
        let broken = watch.state();
        assert!(
            matches!(
                broken,
                ChainState::Broken {
                    first_bad_seq: 5,
                    ..
                }
            ),
            "{broken:?}"
        );
        watch.record(&report(true, None));
        assert_eq!(watch.state(), broken);
    }
}
