//! PostgreSQL's binary `COPY` for the verifier: each range of the log streams
//! in PostgreSQL's binary row format, and each row is handed over where it
//! lies in the received buffer. Decoding a million rows one by one through
//! the driver cost more than hashing them.

use futures_util::TryStreamExt;

use super::{columns, scan::RangeVisitor, RawEntry};
use crate::store::{StoreError, StoreResult};

/// Streams the visitor's range of the log to it.
pub(super) async fn walk<V: RangeVisitor>(pool: &sqlx::PgPool, mut span: V) -> StoreResult<V> {
    use sqlx::postgres::PgPoolCopyExt;
    let (lo, hi) = span.bounds();
    // COPY takes no parameters, so the one statement here that is not built
    // by `store::sql::Sql` formats its bounds in: two i64 that the verifier
    // computed (never input), written as decimal integers.
    let copy = format!(
        concat!(
            "COPY (SELECT ",
            columns!(),
            " FROM audit_log WHERE seq > {} AND seq <= {} ORDER BY seq) TO STDOUT (FORMAT binary)"
        ),
        lo, hi
    );
    let mut stream = pool.copy_out_raw(&copy).await?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let (mut at, mut in_header, mut done) = (0, true, false);
    let mut malformed = None;
    // The stream is read to its end even after the span stops (or the data
    // is malformed): a COPY left half read would leave its pooled connection
    // unusable.
    while let Some(chunk) = stream.try_next().await? {
        if done {
            continue;
        }
        if at > 0 && at * 2 > buf.len() {
            buf.drain(..at);
            at = 0;
        }
        buf.extend_from_slice(&chunk);
        let mut step = || -> StoreResult<()> {
            if in_header {
                match header(&buf)? {
                    Some(n) => (at, in_header) = (n, false),
                    None => return Ok(()),
                }
            }
            while let Some((fields, used)) = tuple(&buf[at..])? {
                at += used;
                // None: the trailer, the end of the span.
                let Some(f) = fields else {
                    done = true;
                    return Ok(());
                };
                if !span.visit(&entry(&f)?) {
                    done = true;
                    return Ok(());
                }
            }
            Ok(())
        };
        if let Err(e) = step() {
            (malformed, done) = (Some(e), true);
        }
    }
    match malformed {
        Some(e) => Err(e),
        None => Ok(span),
    }
}

// The binary `COPY` format of PostgreSQL, as far as an audit row needs it.

/// The first bytes of every binary COPY stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// The columns of an audit row.
const COLUMNS: usize = 15;
/// A row's fields: `None` is SQL NULL.
type Fields<'a> = [Option<&'a [u8]>; COLUMNS];

fn bad() -> StoreError {
    StoreError::Corrupt("the audit log's COPY stream is malformed")
}

fn be_i32(b: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// The header's length once it is all in `buf`.
fn header(buf: &[u8]) -> StoreResult<Option<usize>> {
    let fixed = SIGNATURE.len() + 8;
    if buf.len() < fixed {
        return Ok(None);
    }
    if &buf[..SIGNATURE.len()] != SIGNATURE {
        return Err(bad());
    }
    let ext = be_i32(&buf[SIGNATURE.len() + 4..]).ok_or_else(bad)?;
    let len = fixed + usize::try_from(ext).map_err(|_| bad())?;
    Ok((buf.len() >= len).then_some(len))
}

/// The next whole tuple in `buf` and the bytes it took; `Some((None, _))`
/// is the trailer; `None` means more bytes are needed.
#[allow(clippy::type_complexity)]
fn tuple(buf: &[u8]) -> StoreResult<Option<(Option<Fields<'_>>, usize)>> {
    let Some(count) = buf.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]])) else {
        return Ok(None);
    };
    if count == -1 {
        return Ok(Some((None, 2)));
    }
    if usize::try_from(count).ok() != Some(COLUMNS) {
        return Err(bad());
    }
    let mut fields: Fields<'_> = [None; COLUMNS];
    let mut at = 2;
    for field in &mut fields {
        let Some(len) = buf.get(at..).and_then(be_i32) else {
            return Ok(None);
        };
        at += 4;
        if len == -1 {
            continue;
        }
        let len = usize::try_from(len).map_err(|_| bad())?;
        let Some(value) = buf.get(at..at + len) else {
            return Ok(None);
        };
        *field = Some(value);
        at += len;
    }
    Ok(Some((Some(fields), at)))
}

/// A NOT NULL field.
fn bytes(f: Option<&[u8]>) -> StoreResult<&[u8]> {
    f.ok_or_else(bad)
}

fn int(f: Option<&[u8]>) -> StoreResult<i64> {
    let b: [u8; 8] = bytes(f)?.try_into().map_err(|_| bad())?;
    Ok(i64::from_be_bytes(b))
}

/// An entry's column bytes (text in UTF-8 and a UUID's 16 bytes are the
/// same bytes in binary COPY as in the row the writer hashed).
fn entry<'a>(f: &Fields<'a>) -> StoreResult<RawEntry<'a>> {
    Ok(RawEntry {
        seq: int(f[0])?,
        at: int(f[1])?,
        actor_sub: bytes(f[2])?,
        actor_role: bytes(f[3])?,
        actor_client: f[4],
        action: bytes(f[5])?,
        customer_id: f[6],
        channel: f[7],
        purpose: f[8],
        decision: bytes(f[9])?,
        reason: f[10],
        request_id: bytes(f[11])?,
        detail: bytes(f[12])?,
        prev_hash: bytes(f[13])?,
        hash: bytes(f[14])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary COPY stream: header, one tuple with NULLs, the trailer;
    /// every prefix short of a whole part asks for more bytes.
    #[test]
    fn binary_copy_tuples_are_read_whole_or_not_at_all() {
        let mut stream = b"PGCOPY\n\xff\r\n\0".to_vec();
        stream.extend_from_slice(&0i32.to_be_bytes()); // flags
        stream.extend_from_slice(&0i32.to_be_bytes()); // no extension
        let header_len = stream.len();
        let mut row = 15i16.to_be_bytes().to_vec();
        let fields: [Option<&[u8]>; 15] = [
            Some(&7i64.to_be_bytes()),
            Some(&70i64.to_be_bytes()),
            Some(b"agent-1"),
            Some(b"agent"),
            None,
            Some(b"profile.read"),
            Some(&[0x11; 16]),
            Some(b"email"),
            None,
            Some(b"allow"),
            None,
            Some(b"req-7"),
            Some(b"{}"),
            Some(&[1; 32]),
            Some(&[2; 32]),
        ];
        for f in fields {
            match f {
                None => row.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    row.extend_from_slice(&i32::try_from(v.len()).unwrap().to_be_bytes());
                    row.extend_from_slice(v);
                }
            }
        }
        stream.extend_from_slice(&row);
        stream.extend_from_slice(&(-1i16).to_be_bytes());

        assert_eq!(header(&stream[..5]).unwrap(), None);
        assert_eq!(header(&stream).unwrap(), Some(header_len));
        assert!(header(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0").is_err());
        let body = &stream[header_len..];
        for cut in 0..row.len() {
            assert!(tuple(&body[..cut]).unwrap().is_none(), "cut {cut}");
        }
        let (f, used) = tuple(body).unwrap().unwrap();
        assert_eq!(used, row.len());
        let f = f.unwrap();
        let e = entry(&f).unwrap();
        assert_eq!((e.prev_hash, e.hash), (&[1; 32][..], &[2; 32][..]));
        assert_eq!((e.seq, e.at), (7, 70));
        assert_eq!(e.actor_client, None);
        assert_eq!(e.customer_id, Some(&[0x11; 16][..]));
        assert_eq!(e.purpose, None);
        assert_eq!(e.detail, b"{}");
        let (trailer, used) = tuple(&body[row.len()..]).unwrap().unwrap();
        assert!(trailer.is_none());
        assert_eq!(used, 2);
        // A row of another shape is refused, not misread.
        let mut short = row.clone();
        short[..2].copy_from_slice(&14i16.to_be_bytes());
        assert!(tuple(&short).is_err());
    }
}
