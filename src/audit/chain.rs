//! The hash chain: `hash = SHA-256(label || prev_hash || encode(entry))`.
//!
//! The encoding is canonical and unambiguous: a domain-separation label, then
//! every field in a fixed order, each length-prefixed (u32 big-endian), with a
//! presence byte for optional fields. The `detail` JSON is hashed as the exact
//! text stored, so verification never depends on re-serialising it.

use ring::digest;

use crate::store::audit::AuditRow;

/// The first entry's `prev_hash`: 32 zero bytes.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

const LABEL: &[u8] = b"arkku.audit.v1";

/// An entry's hashed fields, borrowed (from an [`AuditRow`] or straight from
/// a database row buffer, which lets verification avoid copying).
pub struct EntryRef<'a> {
    pub seq: i64,
    pub at: i64,
    pub actor_sub: &'a [u8],
    pub actor_role: &'a [u8],
    pub actor_client: Option<&'a [u8]>,
    pub action: &'a [u8],
    /// The 16 bytes of the customer's UUID.
    pub customer_id: Option<&'a [u8]>,
    pub channel: Option<&'a [u8]>,
    pub purpose: Option<&'a [u8]>,
    pub decision: &'a [u8],
    pub reason: Option<&'a [u8]>,
    pub request_id: &'a [u8],
    pub detail: &'a [u8],
}

impl<'a> EntryRef<'a> {
    pub fn of(row: &'a AuditRow) -> Self {
        EntryRef {
            seq: row.seq,
            at: row.at,
            actor_sub: row.actor_sub.as_bytes(),
            actor_role: row.actor_role.as_bytes(),
            actor_client: row.actor_client.as_deref().map(str::as_bytes),
            action: row.action.as_bytes(),
            customer_id: row.customer_id.as_ref().map(|u| &u.as_bytes()[..]),
            channel: row.channel.as_deref().map(str::as_bytes),
            purpose: row.purpose.as_deref().map(str::as_bytes),
            decision: row.decision.as_bytes(),
            reason: row.reason.as_deref().map(str::as_bytes),
            request_id: row.request_id.as_bytes(),
            detail: row.detail.as_bytes(),
        }
    }
}

fn put(ctx: &mut digest::Context, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    ctx.update(&len.to_be_bytes());
    ctx.update(bytes);
}

fn put_opt(ctx: &mut digest::Context, bytes: Option<&[u8]>) {
    match bytes {
        None => ctx.update(&[0]),
        Some(b) => {
            ctx.update(&[1]);
            put(ctx, b);
        }
    }
}

/// The hash of an entry chained to `prev_hash`.
pub fn hash_entry(prev_hash: &[u8; 32], e: &EntryRef<'_>) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    put(&mut ctx, LABEL);
    ctx.update(prev_hash);
    ctx.update(&e.seq.to_be_bytes());
    ctx.update(&e.at.to_be_bytes());
    put(&mut ctx, e.actor_sub);
    put(&mut ctx, e.actor_role);
    put_opt(&mut ctx, e.actor_client);
    put(&mut ctx, e.action);
    put_opt(&mut ctx, e.customer_id);
    put_opt(&mut ctx, e.channel);
    put_opt(&mut ctx, e.purpose);
    put(&mut ctx, e.decision);
    put_opt(&mut ctx, e.reason);
    put(&mut ctx, e.request_id);
    put(&mut ctx, e.detail);
    let digest = ctx.finish();
    let mut out = [0u8; 32];
    // SHA-256 output is always 32 bytes.
    out.copy_from_slice(digest.as_ref());
    out
}

/// The hash of `row` chained to `prev_hash` (the row's own hash field is ignored).
pub fn entry_hash(prev_hash: &[u8; 32], row: &AuditRow) -> [u8; 32] {
    hash_entry(prev_hash, &EntryRef::of(row))
}
