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

/// The hash of `row` chained to `prev_hash` (the row's own hash field is ignored).
pub fn entry_hash(prev_hash: &[u8; 32], row: &AuditRow) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    put(&mut ctx, LABEL);
    ctx.update(prev_hash);
    ctx.update(&row.seq.to_be_bytes());
    ctx.update(&row.at.to_be_bytes());
    put(&mut ctx, row.actor_sub.as_bytes());
    put(&mut ctx, row.actor_role.as_bytes());
    put_opt(&mut ctx, row.actor_client.as_deref().map(str::as_bytes));
    put(&mut ctx, row.action.as_bytes());
    put_opt(
        &mut ctx,
        row.customer_id.as_ref().map(|u| &u.as_bytes()[..]),
    );
    put_opt(&mut ctx, row.channel.as_deref().map(str::as_bytes));
    put_opt(&mut ctx, row.purpose.as_deref().map(str::as_bytes));
    put(&mut ctx, row.decision.as_bytes());
    put_opt(&mut ctx, row.reason.as_deref().map(str::as_bytes));
    put(&mut ctx, row.request_id.as_bytes());
    put(&mut ctx, row.detail.as_bytes());
    let digest = ctx.finish();
    let mut out = [0u8; 32];
    // SHA-256 output is always 32 bytes.
    out.copy_from_slice(digest.as_ref());
    out
}
