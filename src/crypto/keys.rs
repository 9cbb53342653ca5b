//! Key material and the upper two layers of the hierarchy: the root key file, and wrapping of
//! channel keys (under the root) and data keys (under a channel key).
//!
//! Wrapped keys use the shared envelope with AAD that names exactly where the key belongs, so
//! a wrapped key copied to another channel, version or customer refuses to unwrap.
//!
//! Longer than 500 lines because of its tests: the code is under 400 lines, and
//! the tests of every wrapping and file-format failure stay beside it.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::crypto::envelope::{self, AadBuilder};
use crate::crypto::CryptoError;

/// AAD label for channel keys wrapped under the root key.
const CHANNEL_KEY_LABEL: &[u8] = b"arkku.channel-key.v1";
/// AAD label for data keys wrapped under a channel key.
const DATA_KEY_LABEL: &[u8] = b"arkku.data-key.v1";
/// Length of a key in bytes (AES-256).
const KEY_LEN: usize = 32;
/// The largest key file we accept: 64 hex characters and one newline.
const MAX_KEY_FILE_LEN: usize = 2 * KEY_LEN + 1;

/// 32 secret bytes, zeroised on drop; Debug prints `SecretKey(<redacted>)` so keys cannot
/// leak through logs or panics.
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut_slice())
            .map_err(|_| CryptoError::Rng)?;
        Ok(Self(bytes))
    }

    /// Wraps existing key bytes (e.g. from a key file or a test vector).
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key bytes. The name is a warning: only use this to set up a cipher, MAC or key
    /// derivation, never to store, log or compare keys.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Clone for SecretKey {
    /// Copies into a new zeroising buffer, so both copies are wiped independently.
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Whether [`load_or_create_key_file`] found an existing key or made a new one, so the caller
/// can log loudly when a fresh root key appears (old data would be unreadable under it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFileOutcome {
    /// The key file already existed and was read.
    Loaded,
    /// The key file was missing, so a new key was generated and written.
    Created,
}

fn key_file_error(path: &Path, reason: impl Into<String>) -> CryptoError {
    CryptoError::KeyFile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Reads a key file: 64 hex chars (optionally followed by one newline) or exactly 32 raw bytes.
///
/// Refuses (with a [`CryptoError::KeyFile`] that says why) a file whose mode grants any
/// permission to group or others, a missing file, or bad content, because a root key that
/// others can read is already compromised. Never puts key bytes in the error.
pub fn load_key_file(path: &Path) -> Result<SecretKey, CryptoError> {
    try_load_key_file(path)?.ok_or_else(|| key_file_error(path, "missing"))
}

/// Loads the key file, or creates it on first start when `create_if_missing` is set.
///
/// A new key is written as lowercase hex and a newline, mode 0600, to a temporary file in the
/// same directory which is fsynced and then hard-linked into place. Linking fails if the name
/// already exists (like `O_EXCL`), so two processes racing never clobber each other and the
/// loser loads the winner's complete key; a crash never leaves a half-written key file.
/// Parent directories it creates get mode 0700. When the file is missing and
/// `create_if_missing` is off, it fails with "missing (automatic key creation is off)".
pub fn load_or_create_key_file(
    path: &Path,
    create_if_missing: bool,
) -> Result<(SecretKey, KeyFileOutcome), CryptoError> {
    if let Some(key) = try_load_key_file(path)? {
        return Ok((key, KeyFileOutcome::Loaded));
    }
    if !create_if_missing {
        return Err(key_file_error(
            path,
            "missing (automatic key creation is off)",
        ));
    }
    let parent = parent_dir(path);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| key_file_error(path, format!("cannot create parent directory: {e}")))?;
    let key = SecretKey::generate()?;
    match publish_key_file(path, &key)? {
        Published::Written => Ok((key, KeyFileOutcome::Created)),
        Published::AlreadyExists => Ok((load_key_file(path)?, KeyFileOutcome::Loaded)),
    }
}

/// Writes a new key file (lowercase hex and newline, mode 0600, fsynced, published atomically);
/// refuses to overwrite an existing one, because replacing a root key orphans all data.
pub fn write_new_key_file(path: &Path, key: &SecretKey) -> Result<(), CryptoError> {
    match publish_key_file(path, key)? {
        Published::Written => Ok(()),
        Published::AlreadyExists => Err(key_file_error(
            path,
            "already exists; refusing to overwrite",
        )),
    }
}

/// Reads and validates a key file; `Ok(None)` means it does not exist.
fn try_load_key_file(path: &Path) -> Result<Option<SecretKey>, CryptoError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(key_file_error(path, format!("cannot open: {e}"))),
    };
    // Check the opened file itself, not the path, so the checked and the read file are one.
    let meta = file
        .metadata()
        .map_err(|e| key_file_error(path, format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(key_file_error(path, "not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_file_error(
            path,
            format!(
                "permissions {mode:04o} are too open: group and others must have no access (chmod 600)"
            ),
        ));
    }

    // Read into a fixed zeroising buffer (no reallocation copies); one byte more than the
    // longest valid file tells us when it is too long.
    let mut buf = Zeroizing::new([0u8; MAX_KEY_FILE_LEN + 1]);
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(key_file_error(path, format!("cannot read: {e}"))),
        }
    }
    parse_key(&buf[..len])
        .map(Some)
        .map_err(|reason| key_file_error(path, reason))
}

/// Parses key file content; the error is a reason that never includes the content.
fn parse_key(content: &[u8]) -> Result<SecretKey, String> {
    const EXPECTED: &str =
        "expected 64 hex characters (optionally followed by one newline) or exactly 32 raw bytes";
    let hex = match content {
        // 32 bytes that are all hex digits are almost surely a short hex key by mistake
        // (e.g. `openssl rand -hex 16`), not 32 random bytes: refuse rather than accept
        // a key with half the intended strength.
        raw if raw.len() == KEY_LEN && looks_like_hex_text(raw) => {
            return Err(format!(
                "bad content: 32 bytes of hex text (a 16-byte key?), {EXPECTED}"
            ))
        }
        raw if raw.len() == KEY_LEN => {
            let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
            bytes.copy_from_slice(raw);
            return Ok(SecretKey(bytes));
        }
        [hex @ .., b'\n'] if hex.len() == 2 * KEY_LEN => hex,
        hex if hex.len() == 2 * KEY_LEN => hex,
        other if other.len() > MAX_KEY_FILE_LEN => {
            return Err(format!(
                "bad content: more than {MAX_KEY_FILE_LEN} bytes, {EXPECTED}"
            ))
        }
        other => return Err(format!("bad content: {} bytes, {EXPECTED}", other.len())),
    };
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    for (out, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(hi), Some(lo)) => *out = (hi << 4) | lo,
            _ => return Err(format!("bad content: not valid hex, {EXPECTED}")),
        }
    }
    Ok(SecretKey(bytes))
}

fn looks_like_hex_text(content: &[u8]) -> bool {
    let text = content.strip_suffix(b"\n").unwrap_or(content);
    text.iter().all(u8::is_ascii_hexdigit)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex and a trailing newline, in a zeroising buffer.
fn encode_key_file(key: &SecretKey) -> Zeroizing<Vec<u8>> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN));
    for byte in key.expose_secret() {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0x0f)]);
    }
    out.push(b'\n');
    out
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

enum Published {
    Written,
    AlreadyExists,
}

/// Writes the key to a private temporary file, fsyncs it, then hard-links it to `path`,
/// which fails rather than replacing an existing file. The directory is fsynced afterwards
/// so the new name survives a crash.
fn publish_key_file(path: &Path, key: &SecretKey) -> Result<Published, CryptoError> {
    let dir = parent_dir(path);
    let file_name = path
        .file_name()
        .ok_or_else(|| key_file_error(path, "path has no file name"))?;
    let mut suffix = [0u8; 8];
    SystemRandom::new()
        .fill(&mut suffix)
        .map_err(|_| CryptoError::Rng)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(
        ".tmp-{}-{:016x}",
        std::process::id(),
        u64::from_be_bytes(suffix)
    ));
    let tmp = TempPath(dir.join(tmp_name));

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp.0)
        .map_err(|e| key_file_error(path, format!("cannot create: {e}")))?;
    file.write_all(&encode_key_file(key))
        .and_then(|()| file.sync_all())
        .map_err(|e| key_file_error(path, format!("cannot write: {e}")))?;
    drop(file);

    let outcome = match std::fs::hard_link(&tmp.0, path) {
        Ok(()) => Published::Written,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Published::AlreadyExists,
        Err(e) => return Err(key_file_error(path, format!("cannot create: {e}"))),
    };
    drop(tmp);
    if let Published::Written = outcome {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| key_file_error(path, format!("cannot sync directory: {e}")))?;
    }
    Ok(outcome)
}

/// Removes the temporary key file however publishing ends.
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        // Best effort: a leftover temp file is private (0600) and never read as a key.
        let _ = std::fs::remove_file(&self.0);
    }
}

fn channel_key_aad(channel: &str, version: u32) -> Result<Vec<u8>, CryptoError> {
    Ok(AadBuilder::new(CHANNEL_KEY_LABEL)?
        .part(channel.as_bytes())?
        .part_u32(version)?
        .finish())
}

fn data_key_aad(
    customer_id: uuid::Uuid,
    channel: &str,
    channel_key_version: u32,
) -> Result<Vec<u8>, CryptoError> {
    Ok(AadBuilder::new(DATA_KEY_LABEL)?
        .part(customer_id.as_bytes())?
        .part(channel.as_bytes())?
        .part_u32(channel_key_version)?
        .finish())
}

/// Turns an opened envelope back into a key; anything but 32 bytes means it was never a key.
fn key_from_plaintext(plain: &[u8]) -> Result<SecretKey, CryptoError> {
    if plain.len() != KEY_LEN {
        return Err(CryptoError::Integrity);
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    bytes.copy_from_slice(plain);
    Ok(SecretKey(bytes))
}

/// Encrypts a channel key under the root key, bound to its channel and version so it cannot
/// be swapped for another channel's or version's key in storage.
pub fn wrap_channel_key(
    root: &SecretKey,
    channel: &str,
    version: u32,
    key: &SecretKey,
) -> Result<Vec<u8>, CryptoError> {
    envelope::seal(
        root,
        &channel_key_aad(channel, version)?,
        key.expose_secret(),
    )
}

/// Decrypts a channel key wrapped by [`wrap_channel_key`] for the same channel and version.
pub fn unwrap_channel_key(
    root: &SecretKey,
    channel: &str,
    version: u32,
    wrapped: &[u8],
) -> Result<SecretKey, CryptoError> {
    let plain = envelope::open(root, &channel_key_aad(channel, version)?, wrapped)?;
    key_from_plaintext(&plain)
}

/// Encrypts a customer's data key under a channel key, bound to the customer, the channel and
/// the channel key's version, so it cannot be reused for another customer or channel.
pub fn wrap_data_key(
    channel_key: &SecretKey,
    customer_id: uuid::Uuid,
    channel: &str,
    channel_key_version: u32,
    key: &SecretKey,
) -> Result<Vec<u8>, CryptoError> {
    let aad = data_key_aad(customer_id, channel, channel_key_version)?;
    envelope::seal(channel_key, &aad, key.expose_secret())
}

/// Decrypts a data key wrapped by [`wrap_data_key`] for the same customer, channel and version.
pub fn unwrap_data_key(
    channel_key: &SecretKey,
    customer_id: uuid::Uuid,
    channel: &str,
    channel_key_version: u32,
    wrapped: &[u8],
) -> Result<SecretKey, CryptoError> {
    let aad = data_key_aad(customer_id, channel, channel_key_version)?;
    let plain = envelope::open(channel_key, &aad, wrapped)?;
    key_from_plaintext(&plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use uuid::Uuid;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn test_key() -> SecretKey {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        SecretKey::from_bytes(bytes)
    }

    fn write_with_mode(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
        fs::write(path, content)?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }

    fn mode_of(path: &Path) -> io::Result<u32> {
        Ok(fs::metadata(path)?.permissions().mode() & 0o777)
    }

    fn key_file_reason(err: CryptoError) -> String {
        match err {
            CryptoError::KeyFile { reason, .. } => reason,
            other => panic!("expected a KeyFile error, got {other:?}"),
        }
    }

    #[test]
    fn generated_keys_are_random() -> TestResult {
        let a = SecretKey::generate()?;
        let b = SecretKey::generate()?;
        assert_ne!(a.expose_secret(), b.expose_secret());
        Ok(())
    }

    #[test]
    fn a_clone_holds_the_same_bytes() {
        let key = test_key();
        assert_eq!(key.clone().expose_secret(), key.expose_secret());
    }

    #[test]
    fn debug_of_a_secret_key_is_redacted() {
        let key = SecretKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains("SecretKey(<redacted>)"));
        assert!(!shown.contains("ab"));
        assert!(!shown.contains("171"));
    }

    #[test]
    fn a_hex_key_file_with_mode_0600_loads() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("root.key");
        write_with_mode(&path, format!("{KEY_HEX}\n").as_bytes(), 0o600)?;
        assert_eq!(
            load_key_file(&path)?.expose_secret(),
            test_key().expose_secret()
        );
        write_with_mode(&path, KEY_HEX.as_bytes(), 0o600)?;
        assert_eq!(
            load_key_file(&path)?.expose_secret(),
            test_key().expose_secret()
        );
        write_with_mode(&path, KEY_HEX.to_uppercase().as_bytes(), 0o400)?;
        assert_eq!(
            load_key_file(&path)?.expose_secret(),
            test_key().expose_secret()
        );
        Ok(())
    }

    #[test]
    fn a_raw_32_byte_key_file_loads() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("root.key");
        write_with_mode(&path, test_key().expose_secret(), 0o600)?;
        assert_eq!(
            load_key_file(&path)?.expose_secret(),
            test_key().expose_secret()
        );
        Ok(())
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused_without_leaking_the_key() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("root.key");
        for mode in [0o644, 0o640, 0o604, 0o660, 0o601] {
            write_with_mode(&path, format!("{KEY_HEX}\n").as_bytes(), mode)?;
            let err = load_key_file(&path)
                .err()
                .ok_or("loaded an open key file")?;
            let message = err.to_string();
            assert!(message.contains("permissions"), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(!message.contains(KEY_HEX), "{message}");
        }
        Ok(())
    }

    #[test]
    fn a_missing_key_file_is_refused() -> TestResult {
        let dir = tempfile::tempdir()?;
        let err = load_key_file(&dir.path().join("nope.key"))
            .err()
            .ok_or("loaded a missing key file")?;
        assert!(key_file_reason(err).contains("missing"));
        Ok(())
    }

    #[test]
    fn bad_key_file_content_is_refused_without_leaking_it() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("root.key");
        let almost = &KEY_HEX[..62];
        let bad_contents: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\n".to_vec(),
            format!("{almost}zz\n").into_bytes(),
            format!("{almost}\n").into_bytes(),
            format!("{KEY_HEX}\n\n").into_bytes(),
            format!("{KEY_HEX}\r\n").into_bytes(),
            format!(" {KEY_HEX}").into_bytes(),
            format!("{KEY_HEX}{KEY_HEX}").into_bytes(),
            format!("{}\n", &KEY_HEX[..31]).into_bytes(),
            KEY_HEX.as_bytes()[..32].to_vec(),
            vec![0u8; 31],
            vec![0u8; 33],
        ];
        for content in bad_contents {
            write_with_mode(&path, &content, 0o600)?;
            let err = load_key_file(&path).err().ok_or("loaded bad content")?;
            let message = err.to_string();
            assert!(message.contains("bad content"), "{message}");
            assert!(!message.contains(almost), "{message}");
        }
        Ok(())
    }

    #[test]
    fn a_directory_is_not_a_key_file() -> TestResult {
        let dir = tempfile::tempdir()?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        let err = load_key_file(dir.path())
            .err()
            .ok_or("loaded a directory")?;
        assert!(key_file_reason(err).contains("not a regular file"));
        Ok(())
    }

    #[test]
    fn a_missing_key_file_is_created_once_then_loaded() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("new").join("deeper").join("root.key");
        let (created, outcome) = load_or_create_key_file(&path, true)?;
        assert_eq!(outcome, KeyFileOutcome::Created);
        assert_eq!(mode_of(&path)?, 0o600);
        assert_eq!(mode_of(&dir.path().join("new"))?, 0o700);
        assert_eq!(mode_of(&dir.path().join("new").join("deeper"))?, 0o700);

        let content = fs::read_to_string(&path)?;
        assert_eq!(content.len(), 65);
        assert!(content.ends_with('\n'));
        assert_eq!(content.trim_end(), content.trim_end().to_lowercase());

        let (loaded, outcome) = load_or_create_key_file(&path, true)?;
        assert_eq!(outcome, KeyFileOutcome::Loaded);
        assert_eq!(loaded.expose_secret(), created.expose_secret());

        // Only the key file is left behind: no temporary files.
        let names: Vec<_> = fs::read_dir(path.parent().ok_or("no parent")?)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names, vec![std::ffi::OsString::from("root.key")]);
        Ok(())
    }

    #[test]
    fn a_missing_key_file_is_refused_when_creation_is_off() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("root.key");
        let err = load_or_create_key_file(&path, false)
            .err()
            .ok_or("created a key file")?;
        assert_eq!(
            key_file_reason(err),
            "missing (automatic key creation is off)"
        );
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn load_or_create_still_refuses_an_open_key_file() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("root.key");
        write_with_mode(&path, KEY_HEX.as_bytes(), 0o644)?;
        let err = load_or_create_key_file(&path, true)
            .err()
            .ok_or("loaded an open key file")?;
        assert!(key_file_reason(err).contains("permissions"));
        Ok(())
    }

    #[test]
    fn racing_creators_all_end_up_with_the_same_key() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("root.key");
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_key_file(&path, true)))
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        let mut keys = Vec::new();
        let mut created = 0;
        for result in results {
            let (key, outcome) = result.map_err(|_| "thread panicked")??;
            if outcome == KeyFileOutcome::Created {
                created += 1;
            }
            keys.push(*key.expose_secret());
        }
        assert_eq!(created, 1);
        assert!(keys.iter().all(|k| k == &keys[0]));
        assert_eq!(load_key_file(&path)?.expose_secret(), &keys[0]);
        Ok(())
    }

    #[test]
    fn write_new_key_file_writes_a_loadable_0600_file_and_never_overwrites() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("root.key");
        write_new_key_file(&path, &test_key())?;
        assert_eq!(mode_of(&path)?, 0o600);
        assert_eq!(fs::read_to_string(&path)?, format!("{KEY_HEX}\n"));

        let err = write_new_key_file(&path, &SecretKey::generate()?)
            .err()
            .ok_or("overwrote a key file")?;
        assert!(key_file_reason(err).contains("already exists"));
        assert_eq!(
            load_key_file(&path)?.expose_secret(),
            test_key().expose_secret()
        );
        Ok(())
    }

    #[test]
    fn a_channel_key_unwraps_for_its_own_channel_and_version() -> TestResult {
        let root = SecretKey::generate()?;
        let channel_key = SecretKey::generate()?;
        let wrapped = wrap_channel_key(&root, "email", 1, &channel_key)?;
        let unwrapped = unwrap_channel_key(&root, "email", 1, &wrapped)?;
        assert_eq!(unwrapped.expose_secret(), channel_key.expose_secret());
        Ok(())
    }

    #[test]
    fn a_channel_key_does_not_unwrap_for_another_channel_version_or_root() -> TestResult {
        let root = SecretKey::generate()?;
        let wrapped = wrap_channel_key(&root, "email", 1, &SecretKey::generate()?)?;
        for (channel, version) in [("phone", 1), ("email", 2), ("email", 0)] {
            assert!(matches!(
                unwrap_channel_key(&root, channel, version, &wrapped),
                Err(CryptoError::Integrity)
            ));
        }
        assert!(matches!(
            unwrap_channel_key(&SecretKey::generate()?, "email", 1, &wrapped),
            Err(CryptoError::Integrity)
        ));
        Ok(())
    }

    #[test]
    fn a_data_key_unwraps_for_its_own_customer_channel_and_version() -> TestResult {
        let channel_key = SecretKey::generate()?;
        let data_key = SecretKey::generate()?;
        let customer = Uuid::now_v7();
        let wrapped = wrap_data_key(&channel_key, customer, "email", 3, &data_key)?;
        let unwrapped = unwrap_data_key(&channel_key, customer, "email", 3, &wrapped)?;
        assert_eq!(unwrapped.expose_secret(), data_key.expose_secret());
        Ok(())
    }

    #[test]
    fn a_data_key_is_bound_to_customer_channel_version_and_channel_key() -> TestResult {
        let channel_key = SecretKey::generate()?;
        let customer = Uuid::now_v7();
        let wrapped = wrap_data_key(&channel_key, customer, "email", 3, &SecretKey::generate()?)?;
        let other_customer = Uuid::now_v7();
        for (who, channel, version) in [
            (other_customer, "email", 3),
            (customer, "phone", 3),
            (customer, "email", 2),
        ] {
            assert!(matches!(
                unwrap_data_key(&channel_key, who, channel, version, &wrapped),
                Err(CryptoError::Integrity)
            ));
        }
        assert!(matches!(
            unwrap_data_key(&SecretKey::generate()?, customer, "email", 3, &wrapped),
            Err(CryptoError::Integrity)
        ));
        Ok(())
    }

    #[test]
    fn a_wrapped_channel_key_cannot_be_opened_as_a_data_key() -> TestResult {
        // Domain labels keep the layers apart even under the same wrapping key.
        let key = SecretKey::generate()?;
        let wrapped = wrap_channel_key(&key, "email", 1, &SecretKey::generate()?)?;
        assert!(matches!(
            unwrap_data_key(&key, Uuid::nil(), "email", 1, &wrapped),
            Err(CryptoError::Integrity)
        ));
        Ok(())
    }

    #[test]
    fn tampered_or_truncated_wrapped_keys_fail() -> TestResult {
        let root = SecretKey::generate()?;
        let wrapped = wrap_channel_key(&root, "email", 1, &SecretKey::generate()?)?;
        for i in 1..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x80;
            assert!(matches!(
                unwrap_channel_key(&root, "email", 1, &bad),
                Err(CryptoError::Integrity)
            ));
        }
        for len in 0..wrapped.len() {
            assert!(matches!(
                unwrap_channel_key(&root, "email", 1, &wrapped[..len]),
                Err(CryptoError::Integrity)
            ));
        }
        Ok(())
    }

    #[test]
    fn two_wraps_of_the_same_key_differ() -> TestResult {
        let root = SecretKey::generate()?;
        let key = SecretKey::generate()?;
        assert_ne!(
            wrap_channel_key(&root, "email", 1, &key)?,
            wrap_channel_key(&root, "email", 1, &key)?
        );
        Ok(())
    }
}
