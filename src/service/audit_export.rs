//! A filtered view of the audit log as a CSV download with a signed
//! manifest beside it (`GET /v1/audit/export` and `GET
//! /v1/audit/export/manifest`; the console's download links call the same
//! two operations). Compliance role, as for reading the log.
//!
//! Both take the same filters plus an upper bound `through=<seq>`
//! (default: the last entry when the request arrives, which the CSV
//! response names in its `Arkku-Audit-Through` header). Entries up to a seq
//! never change, so the same query gives the same bytes every time: the
//! manifest is computed by rendering the CSV again and hashing it, and
//! neither download is held in memory whole (the rows are read and sent a
//! page at a time).
//!
//! The CSV download is audited (`audit.export`, with the filters and the
//! bound in the detail): unlike a page read, it is a copy of the record of
//! who saw which customer leaving the vault, and it happens rarely. The
//! manifest holds no entries (hashes, counts, the filters), so it is not.

use futures_util::Stream;
use ring::digest;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{audit_review::Filters, Caller, Error, Services};
use crate::{
    audit::{
        checkpoint::CheckpointFile,
        export::{csv, manifest::FORMAT, ExportFilters, Manifest},
        Action,
    },
    crypto::hex,
    domain::time::rfc3339,
    policy::Operation,
    store::{self, audit::AuditFilter, Db, StoreError},
};

/// Entries read and rendered per chunk of the download.
const PAGE: i64 = 1000;

/// Filters of `GET /v1/audit/export` and its manifest.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Entries about this customer.
    pub customer_id: Option<Uuid>,
    /// The actor's `sub`.
    pub actor: Option<String>,
    /// e.g. `customer.read`.
    pub action: Option<String>,
    /// `allow` or `deny`.
    #[param(value_type = Option<crate::http::openapi::AuditDecision>, inline)]
    pub decision: Option<String>,
    /// The purpose the request named (a purpose name).
    pub purpose: Option<String>,
    /// The channel acted on or the agent's channel (a channel name).
    pub channel: Option<String>,
    /// The reason or case reference recorded, exactly.
    pub reason: Option<String>,
    /// RFC 3339, inclusive.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// The highest seq to include (default: the last entry now). Pass the
    /// same value to the CSV and the manifest download.
    // Text, so that a bad value is refused naming `through`.
    #[param(minimum = 1, value_type = Option<i64>)]
    pub through: Option<String>,
}

impl ExportQuery {
    fn split(self) -> (Filters, Option<String>) {
        let f = Filters {
            customer_id: self.customer_id,
            actor: self.actor,
            action: self.action,
            decision: self.decision,
            purpose: self.purpose,
            channel: self.channel,
            reason: self.reason,
            since: self.since,
            until: self.until,
        };
        (f, self.through)
    }
}

/// A CSV download: its bound, a file name, and the rows to send.
pub struct CsvDownload {
    pub through: i64,
    pub file_name: String,
    pub rows: CsvRows,
}

/// The CSV file of one filtered view, rendered a page of entries at a
/// time; what it has rendered so far is counted for the manifest.
pub struct CsvRows {
    db: Db,
    /// The request that asked for the file: the body is sent after the
    /// request's scope has ended, so a failure names it explicitly.
    request_id: String,
    filter: AuditFilter,
    started: bool,
    done: bool,
    count: u64,
    first: Option<i64>,
    last: Option<(i64, Vec<u8>)>,
}

impl CsvRows {
    fn new(db: Db, filter: AuditFilter) -> Self {
        CsvRows {
            db,
            request_id: super::request::id(),
            filter,
            started: false,
            done: false,
            count: 0,
            first: None,
            last: None,
        }
    }

    /// The next part of the file (the first holds the byte-order mark and
    /// the header), or `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let rows = store::audit::query(&self.db, &self.filter).await?;
        let first = !self.started;
        self.started = true;
        let mut w = csv::writer(if first { csv::BOM.to_vec() } else { Vec::new() });
        if first {
            csv::write_header(&mut w).map_err(csv_failed)?;
        }
        for r in &rows {
            csv::write_row(&mut w, r).map_err(csv_failed)?;
        }
        if (rows.len() as i64) < self.filter.limit {
            self.done = true;
        }
        if let Some(last) = rows.last() {
            self.filter.after_seq = last.seq;
            self.first.get_or_insert(rows[0].seq);
            self.last = Some((last.seq, last.hash.clone()));
            self.count += rows.len() as u64;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| csv_failed(e.into_error().into()))?;
        Ok(Some(bytes))
    }

    /// The file as a stream of chunks, for a response body.
    pub fn into_stream(self) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
        futures_util::stream::unfold(self, |mut rows| async move {
            match rows.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), rows)),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(
                        request_id = %rows.request_id,
                        error = %e,
                        "audit export stopped: the download is cut short"
                    );
                    rows.done = true;
                    Some((Err(std::io::Error::other("audit export failed")), rows))
                }
            }
        })
    }
}

/// Rendering into memory fails only on a bug; reported as a store failure.
fn csv_failed(e: ::csv::Error) -> StoreError {
    StoreError::Durability(format!("rendering the audit CSV: {e}"))
}

/// The validated filter bounded by `through` (default: the last entry),
/// and its record for the manifest.
async fn bounded(
    svc: &Services,
    query: ExportQuery,
) -> Result<(AuditFilter, ExportFilters, i64), Error> {
    let (filters, through) = query.split();
    let (filter, record) = filters.validate()?;
    let last = store::audit::max_seq(&svc.db).await?.unwrap_or(0);
    let range = || {
        Error::InvalidRequest(format!(
            "through must be a seq from 1 to the last entry ({last})"
        ))
    };
    let through = through
        .map(|t| t.parse::<i64>().map_err(|_| range()))
        .transpose()?;
    let through = match through {
        None if last == 0 => {
            return Err(Error::InvalidRequest(
                "through: the audit log has no entries yet".into(),
            ))
        }
        None => last,
        Some(t) if (1..=last).contains(&t) => t,
        Some(_) => return Err(range()),
    };
    let filter = AuditFilter {
        through: Some(through),
        limit: PAGE,
        ..filter
    };
    Ok((filter, record, through))
}

/// The seq of the last entry now (`None` for an empty log): the bound a page
/// pins in its CSV and manifest links so that both describe the same file.
pub async fn current_through(svc: &Services, caller: &Caller) -> Result<Option<i64>, Error> {
    let actor = caller.as_ref().map_err(Clone::clone)?;
    svc.authorise_unlogged(actor, Operation::ReadAudit)?;
    Ok(store::audit::max_seq(&svc.db).await?)
}

/// The CSV file's name for exports up to `through`.
pub fn csv_file_name(through: i64) -> String {
    format!("arkku-audit-{through}.csv")
}

/// The manifest's file name for exports up to `through`.
pub fn manifest_file_name(through: i64) -> String {
    format!("arkku-audit-{through}.manifest.json")
}

/// `GET /v1/audit/export`: the filtered view as CSV, audited as
/// `audit.export` before the first byte leaves.
pub async fn export_csv(
    svc: &Services,
    caller: &Caller,
    query: Result<ExportQuery, Error>,
) -> Result<CsvDownload, Error> {
    svc.audited(caller, Action::AuditExport, async |actor, scope| {
        svc.authorise(actor, Operation::ReadAudit, None, scope)?;
        let (filter, record, through) = bounded(svc, query?).await?;
        scope.detail("through", through);
        scope.detail("format", "csv");
        let filters = serde_json::to_value(&record).unwrap_or_default();
        let set: serde_json::Map<_, _> = filters
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        scope.detail("filters", set);
        Ok(CsvDownload {
            through,
            file_name: csv_file_name(through),
            rows: CsvRows::new(svc.db.clone(), filter),
        })
    })
    .await
}

/// `GET /v1/audit/export/manifest`: the signed manifest of the CSV file the
/// same query downloads (not logged: it holds no entries).
pub async fn export_manifest(
    svc: &Services,
    caller: &Caller,
    query: Result<ExportQuery, Error>,
) -> Result<Manifest, Error> {
    let actor = caller.as_ref().map_err(Clone::clone)?;
    svc.authorise_unlogged(actor, Operation::ReadAudit)?;
    let (filter, record, through) = bounded(svc, query?).await?;
    let mut rows = CsvRows::new(svc.db.clone(), filter);
    let mut sha = digest::Context::new(&digest::SHA256);
    let mut bytes = 0u64;
    while let Some(chunk) = rows.next_chunk().await? {
        sha.update(&chunk);
        bytes += chunk.len() as u64;
    }
    let covers = rows.last.as_ref().map_or(through, |(s, _)| *s);
    let checkpoint = covering_checkpoint(svc, covers).await?;
    let mut manifest = Manifest {
        format: FORMAT.to_owned(),
        csv_sha256: hex(sha.finish().as_ref()),
        csv_bytes: bytes,
        entries: rows.count,
        filters: record,
        through,
        first_seq: rows.first,
        last_seq: rows.last.as_ref().map(|(s, _)| *s),
        last_hash: rows.last.as_ref().map(|(_, h)| hex(h)),
        checkpoint,
        signed_at: rfc3339(svc.clock.now()),
        public_key: String::new(),
        signature: String::new(),
    };
    svc.checkpoints.sign_manifest(&mut manifest);
    Ok(manifest)
}

/// The first checkpoint at or after `seq`; one of the head is signed and
/// stored when none exists yet. Read back from the store, so that two
/// requests racing to make it name the same one.
async fn covering_checkpoint(svc: &Services, seq: i64) -> Result<CheckpointFile, Error> {
    if let Some(c) = store::audit::checkpoint_from(&svc.db, seq).await? {
        return Ok(CheckpointFile::from_row(&c));
    }
    svc.checkpoints
        .checkpoint_head_at(&svc.db, svc.clock.now())
        .await?;
    let c = store::audit::checkpoint_from(&svc.db, seq)
        .await?
        .ok_or(Error::Internal)?;
    Ok(CheckpointFile::from_row(&c))
}
