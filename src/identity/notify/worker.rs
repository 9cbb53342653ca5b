//! The notifier's background worker, one per `serve` process: it drains the
//! outbox, woken when this process queues a message and otherwise every
//! [`POLL`] (for messages other nodes queued, and for retries).
//!
//! Each pass drops expired messages and challenges, then claims due
//! messages for [`LEASE`] (longer than a delivery may take), delivers them
//! and deletes each one delivered. A failed delivery is released for a
//! retry after 1 s, 2 s, 4 s, … capped at [`BACKOFF_CAP`], until the message
//! expires with its code. The outbox is in the database, so what a process
//! had not delivered when it stopped is delivered after a restart, or by
//! another node once the lease runs out.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;
use uuid::Uuid;

use super::{file, open, Delivery, Outgoing};
use crate::{
    clock::Clock,
    identity::sign_in::SignInKeys,
    store::{self, outbox::Claimed, Db, StoreError},
};

/// How often the outbox is looked at without a wake-up.
pub const POLL: Duration = Duration::from_secs(1);
/// How long a claim keeps other nodes off a message.
pub const LEASE: Duration = Duration::from_secs(60);
/// Messages claimed at once.
const BATCH: i64 = 16;
/// The longest wait between two attempts at one message.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// What the worker needs; cheap clones of the vault's own handles.
pub struct Worker {
    pub db: Db,
    pub clock: Clock,
    pub keys: Arc<SignInKeys>,
    pub delivery: Arc<Delivery>,
    pub wake: Arc<Notify>,
    /// This process, as its claims name it.
    pub node: Uuid,
}

/// The wait before attempt `attempts + 1`: 1 s, doubling, at most [`BACKOFF_CAP`].
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    Duration::from_secs(1u64 << doublings).min(BACKOFF_CAP)
}

impl Worker {
    /// Runs until the process ends.
    pub async fn run(self) {
        if matches!(*self.delivery, Delivery::None) {
            // Not a warning: a vault whose customers do not sign in needs none.
            tracing::info!(
                "no notifier configured (ARKKU_NOTIFY_URL, or ARKKU_NOTIFY=file for development): \
                 customer sign-in codes are queued but not delivered by this process"
            );
        } else {
            tracing::info!(delivery = self.delivery.name(), "notifier started");
        }
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "notifier pass failed; retrying");
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One pass: expired messages and challenges dropped, due messages delivered.
    pub async fn pass(&self) -> Result<(), StoreError> {
        let now = store::to_micros(self.clock.now());
        let dropped = store::outbox::drop_expired(&self.db, now).await?;
        if dropped > 0 {
            tracing::info!(dropped, "dropped notifier messages past their expiry");
        }
        store::sign_in::purge_expired(&self.db, now).await?;
        if matches!(*self.delivery, Delivery::None) {
            return Ok(());
        }
        let lease_until = now.saturating_add(micros(LEASE));
        loop {
            let claimed =
                store::outbox::claim(&self.db, self.node, now, lease_until, BATCH).await?;
            let full = i64::try_from(claimed.len()).unwrap_or(BATCH) >= BATCH;
            futures_util::future::join_all(claimed.into_iter().map(|m| self.deliver(m))).await;
            if !full {
                return Ok(());
            }
        }
    }

    /// Delivers one claimed message and records the outcome.
    async fn deliver(&self, m: Claimed) {
        let outgoing = match open(self.keys.outbox(), &m) {
            Ok(o) => o,
            Err(e) => {
                // It can never be delivered: a tampered or foreign row.
                tracing::error!(message_id = %m.id, error = %e, "an outbox message does not open; dropped");
                self.settle(store::outbox::delivered(&self.db, m.id, self.node).await);
                return;
            }
        };
        match self.send(&outgoing).await {
            Ok(()) => {
                tracing::info!(
                    message_id = %m.id,
                    channel = %m.channel,
                    attempt = m.attempts,
                    "notifier delivered a sign-in code message"
                );
                self.settle(store::outbox::delivered(&self.db, m.id, self.node).await);
            }
            Err(e) => {
                // The retry is recorded before it is logged, so that the line
                // never promises a retry that a crash right after it would
                // leave behind this node's lease.
                let wait = backoff(m.attempts);
                let next = store::to_micros(self.clock.now()).saturating_add(micros(wait));
                let recorded = store::outbox::retry_at(&self.db, m.id, self.node, next).await;
                tracing::warn!(
                    message_id = %m.id,
                    channel = %m.channel,
                    attempt = m.attempts,
                    retry_in = ?wait,
                    error = %e,
                    "notifier delivery failed; will retry"
                );
                self.settle(recorded.map(|()| true));
            }
        }
    }

    async fn send(&self, o: &Outgoing) -> Result<(), String> {
        match &*self.delivery {
            Delivery::None => Err("no notifier configured".to_owned()),
            Delivery::Webhook(w) => w.send(&o.body, self.clock.unix_seconds()).await,
            Delivery::File(path) => {
                let (to, body) = (path.clone(), o.body.clone());
                tokio::task::spawn_blocking(move || file::append(&to, &body))
                    .await
                    .map_err(|e| e.to_string())??;
                tracing::info!(
                    message_id = %o.id,
                    channel = %o.channel,
                    file = %path.display(),
                    "appended a sign-in code message to the outbox file"
                );
                Ok(())
            }
        }
    }

    /// Logs an outcome that could not be recorded: the lease then runs out
    /// and the message is tried again (delivered at least once).
    fn settle(&self, recorded: Result<bool, StoreError>) {
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "notifier could not record a delivery outcome");
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_the_cap() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(i64::MAX), BACKOFF_CAP);
    }
}
