//! Encryption for customer contact data, built so one leaked layer does not expose the rest.
//!
//! - A root key (32 bytes, read from a 0600 file) never touches data; it only wraps channel keys.
//! - A channel key (one per channel per version) wraps data keys, so channels rotate independently.
//! - A data key (one per customer per channel) encrypts that customer's fields; deleting it shreds them.
//! - Every wrap and every field is AES-256-GCM with AAD binding where it belongs, so moved ciphertext fails.
//! - Lookups use a blind index: HMAC-SHA256 keyed per channel (HKDF from a stored, root-wrapped PRK).
//! - Audit checkpoints are signed with Ed25519, so anyone holding the public key can check them.
//! - Secrets the vault reads back itself (staff TOTP secrets) are sealed under a key HKDF-derived
//!   from the same root-wrapped PRK ([`secret_seal`]).

pub mod blind_index;
mod envelope;
pub mod field;
pub mod keys;
pub mod secret_seal;
pub mod signing;

pub use blind_index::*;
pub use field::*;
pub use keys::*;
pub use signing::*;

/// Everything that can go wrong in this module; deliberately coarse so errors never leak
/// which part of a ciphertext or key was wrong (or any secret bytes).
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext was tampered with, truncated, moved to another context, or opened with
    /// the wrong key: all of these look the same on purpose.
    #[error("ciphertext failed its integrity check")]
    Integrity,
    /// The leading format byte names a layout this build does not know (e.g. written by a
    /// newer version); reported separately so operators can tell it apart from tampering.
    #[error("unsupported ciphertext format version {0}")]
    UnsupportedFormat(u8),
    /// The operating system's random number generator failed; we refuse to make keys or
    /// nonces without it.
    #[error("the system random number generator failed")]
    Rng,
    /// A key file could not be used; `reason` says why without ever including key material.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The path as given, for the operator.
        path: String,
        /// What was wrong (missing, permissions, bad content, I/O error).
        reason: String,
    },
}
