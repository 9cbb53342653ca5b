//! A filtered view of the audit log taken away as a file: the CSV rows
//! ([`csv`]), the signed manifest beside them ([`manifest`]) and their
//! offline verification ([`verify`], `arkku audit verify-export`).
//!
//! The vault renders the same rows for the same filters and upper bound
//! (`through`) every time, so the CSV download and its manifest, fetched
//! one after the other, describe the same bytes.

pub mod csv;
pub mod manifest;
pub mod verify;

pub use manifest::{ExportFilters, Manifest};
pub use verify::{verify_export, ExportCheck};
