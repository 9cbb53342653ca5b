//! Signed checkpoints `{seq, hash, at}`: written every N entries and on
//! demand, signed with the vault's Ed25519 key. Whoever kept a checkpoint can
//! later prove that the log still contains that entry with that hash, so a
//! truncated tail or a rewritten history is detectable.

use serde::{Deserialize, Serialize};

use crate::{
    crypto::{hex, unhex, verify_signature, CheckpointSigner},
    store::{self, audit::AuditRow, audit::CheckpointRow, Db, StoreError},
};

/// The file format name of an exported checkpoint.
pub const FORMAT: &str = "arkku-checkpoint/1";

/// The signed message: a domain label, then seq, hash and time.
pub fn message(seq: i64, hash: &[u8], at: i64) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(b"arkku.audit.checkpoint.v1");
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&at.to_be_bytes());
    m
}

/// A checkpoint as exported to a file (JSON), verifiable away from the server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CheckpointFile {
    pub format: String,
    pub seq: i64,
    /// SHA-256 chain hash of entry `seq`, hex.
    pub hash: String,
    /// When it was signed (RFC 3339), for people.
    pub at: String,
    /// When it was signed (microseconds since the epoch), as signed.
    pub at_micros: i64,
    /// Ed25519 signature over [`message`], hex.
    pub signature: String,
    /// The vault's Ed25519 public key, hex.
    pub public_key: String,
}

impl CheckpointFile {
    pub fn from_row(r: &CheckpointRow) -> Self {
        CheckpointFile {
            format: FORMAT.to_owned(),
            seq: r.seq,
            hash: hex(&r.hash),
            at: crate::domain::time::rfc3339(store::from_micros(r.at)),
            at_micros: r.at,
            signature: hex(&r.signature),
            public_key: hex(&r.public_key),
        }
    }

    /// The checkpoint as bytes, if its fields are well-formed.
    pub fn to_row(&self) -> Option<CheckpointRow> {
        if self.format != FORMAT {
            return None;
        }
        Some(CheckpointRow {
            seq: self.seq,
            hash: unhex(&self.hash).filter(|h| h.len() == 32)?,
            at: self.at_micros,
            signature: unhex(&self.signature).filter(|s| s.len() == 64)?,
            public_key: unhex(&self.public_key).filter(|k| k.len() == 32)?,
        })
    }
}

/// Whether a checkpoint's signature is valid under `trusted` (or, without a
/// trusted key, under the key it names).
pub fn signature_valid(c: &CheckpointRow, trusted: Option<&[u8]>) -> bool {
    if let Some(t) = trusted {
        if t != c.public_key.as_slice() {
            return false;
        }
    }
    verify_signature(&c.public_key, &message(c.seq, &c.hash, c.at), &c.signature)
}

/// Signs and stores checkpoints: in the database, and as files in a
/// directory outside it when one is set ([`super::checkpoint_files`]).
pub struct Checkpointer {
    signer: CheckpointSigner,
    every: i64,
    dir: Option<std::path::PathBuf>,
}

impl Checkpointer {
    pub fn new(signer: CheckpointSigner, every: u64) -> Self {
        Checkpointer {
            signer,
            every: i64::try_from(every.max(1)).unwrap_or(i64::MAX),
            dir: None,
        }
    }

    /// Also writes every checkpoint it signs into `dir`, as a file.
    pub fn with_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Writes `c` to the checkpoint directory, if there is one, off the
    /// async threads. A failure is logged and returned; the checkpoint in
    /// the database stands either way.
    async fn write_file(&self, c: &CheckpointRow) -> std::io::Result<()> {
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        let file = CheckpointFile::from_row(c);
        let seq = c.seq;
        let written =
            tokio::task::spawn_blocking(move || super::checkpoint_files::write(&dir, &file))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r);
        if let Err(e) = &written {
            tracing::warn!(seq, error = %e, "audit checkpoint file not written");
        }
        written.map(drop)
    }

    /// The vault's public key.
    pub fn public_key(&self) -> &[u8] {
        self.signer.public_key()
    }

    fn sign(&self, seq: i64, hash: &[u8], at: i64) -> CheckpointRow {
        CheckpointRow {
            seq,
            hash: hash.to_vec(),
            at,
            signature: self.signer.sign(&message(seq, hash, at)).to_vec(),
            public_key: self.signer.public_key().to_vec(),
        }
    }

    /// Called by the writer after a batch committed: checkpoints every
    /// `every`-th entry in it. A failure is logged, not fatal: the entries
    /// themselves are durable and a later checkpoint covers them.
    pub async fn after_append(&self, db: &Db, rows: &[AuditRow]) {
        for r in rows.iter().filter(|r| r.seq % self.every == 0) {
            let c = self.sign(
                r.seq,
                &r.hash,
                store::to_micros(time::OffsetDateTime::now_utc()),
            );
            if let Err(e) = store::audit::insert_checkpoint(db, &c).await {
                tracing::warn!(seq = r.seq, error = %e, "audit checkpoint not written");
                continue;
            }
            // Logged inside; the next checkpoint writes its own file.
            let _ = self.write_file(&c).await;
        }
    }

    /// Signs and stores a checkpoint of the current head (on demand).
    pub async fn checkpoint_head(&self, db: &Db) -> Result<Option<CheckpointFile>, StoreError> {
        self.checkpoint_head_at(db, time::OffsetDateTime::now_utc())
            .await
    }

    /// [`Checkpointer::checkpoint_head`], signed as made at `at` (the
    /// service's clock).
    pub async fn checkpoint_head_at(
        &self,
        db: &Db,
        at: time::OffsetDateTime,
    ) -> Result<Option<CheckpointFile>, StoreError> {
        let Some((seq, hash)) = store::audit::head(db).await? else {
            return Ok(None);
        };
        let c = self.sign(seq, &hash, store::to_micros(at));
        store::audit::insert_checkpoint(db, &c).await?;
        // Logged inside: the caller still gets the checkpoint to keep.
        let _ = self.write_file(&c).await;
        Ok(Some(CheckpointFile::from_row(&c)))
    }

    /// Signs a tie between shards with the same key (its message has its
    /// own domain label, see [`super::tie::Tie::message`]).
    pub fn sign_tie(&self, tie: &mut super::tie::Tie) -> Result<(), super::tie::TieError> {
        tie.public_key = hex(self.signer.public_key());
        tie.signature = hex(&self.signer.sign(&tie.message()?));
        Ok(())
    }

    /// Signs an export manifest with the same key (see
    /// [`super::export::Manifest::signed_message`], whose domain label
    /// keeps it apart from a checkpoint's message).
    pub fn sign_manifest(&self, manifest: &mut super::export::Manifest) {
        manifest.public_key = hex(self.signer.public_key());
        manifest.signature = hex(&self.signer.sign(&manifest.signed_message()));
    }
}
