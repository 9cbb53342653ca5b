//! The read hot paths of a customer: the whole profile with its contact
//! points and consent facts, and the lookup by blind index.
//!
//! A profile is read from its document in `profile_docs` and its facts in
//! `consent_facts`, both in one statement (see [`super::projection`]). A
//! missing or stale document is read from the tables, in one snapshot with
//! the row's `gen`: on SQLite three statements on the direct reader's one
//! transaction, on PostgreSQL one statement with the facts folded into a JSON
//! column. Missing or stale facts beside a good document are read from the
//! consent ledger alone, likewise with their row's `gen`.

use std::collections::{hash_map::Entry, HashMap};

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use super::{
    projection::{self, Part, Refresh},
    wrapped, ContactRow, CustomerRow,
};
use crate::store::{
    consents::{self, facts_json_pg, ConsentFact},
    Db, Micros, StoreResult,
};

/// A customer as read for a request: the row, its contact points and the
/// consent facts that decide which of them may be shown.
#[derive(Debug, Serialize, Deserialize)]
pub struct Profile {
    pub customer: CustomerRow,
    pub contacts: Vec<ContactRow>,
    pub consents: Vec<ConsentFact>,
}

/// The profile statement of the customer `$id` (an SQL expression, a
/// literal): the customer's columns, then one contact point's per row;
/// `$extra` adds a column (PostgreSQL's consent facts).
macro_rules! profile_sql {
    ($id:literal $(, $extra:expr)?) => {
        concat!(
            "SELECT c.display_name, c.external_ref, c.preferred_channel, c.created_at, c.updated_at, c.erased_at, \
             pk.key_version, pk.wrapped, \
             ct.id, ct.channel, ct.value, ct.label, ct.created_at, ct.last_activity_at, dk.key_version, dk.wrapped"
            $(, ", ", $extra)?,
            " FROM customers c \
             LEFT JOIN data_keys pk ON pk.customer_id = c.id AND pk.channel = $2 \
             LEFT JOIN contacts ct ON ct.customer_id = c.id \
             LEFT JOIN data_keys dk ON dk.customer_id = c.id AND dk.channel = ct.channel \
             WHERE c.id = ", $id, " ORDER BY ct.created_at, ct.id"
        )
    };
}

/// The `gen` of the customer `$id`'s document and facts rows, as two
/// columns (NULL where there is no row).
macro_rules! gens_sql {
    ($id:literal) => {
        concat!(
            "(SELECT gen FROM profile_docs WHERE customer_id = ",
            $id,
            "), (SELECT gen FROM consent_facts WHERE customer_id = ",
            $id,
            ")"
        )
    };
}

const PROFILE_SQLITE: &str = profile_sql!("$1");
const PROFILE_POSTGRES: &str =
    profile_sql!("$1", concat!(facts_json_pg!("$1"), ", ", gens_sql!("$1")));

/// The profile statement of every customer in `$1` (a `uuid[]`), each run as
/// a lateral subquery, with the customer's id last. A lateral reference can
/// only be a key probe per id: a join on `c.id = ANY($1)` was planned as a
/// hash join over every contact point on a freshly loaded database without
/// statistics (600 customers/s at a million). Each customer's rows come
/// together; one statement is one snapshot.
const PROFILES_POSTGRES: &str = concat!(
    "SELECT x.*, b.id FROM unnest($1::uuid[]) AS b (id) CROSS JOIN LATERAL (",
    profile_sql!(
        "b.id",
        concat!(facts_json_pg!("b.id"), ", ", gens_sql!("b.id"))
    ),
    ") x"
);
/// Where [`PROFILES_POSTGRES`] puts the customer's id.
const PROFILES_ID_COLUMN: usize = 19;

/// A customer's document and facts, each with its row's `gen` (no row: no
/// document row, which a customer that exists has once it has been read).
const DOC_SQLITE: &str = "SELECT d.gen, d.doc, f.gen, f.facts FROM profile_docs d \
     LEFT JOIN consent_facts f ON f.customer_id = d.customer_id WHERE d.customer_id = $1";
const DOC_POSTGRES: &str = "SELECT d.doc, f.facts FROM profile_docs d \
     LEFT JOIN consent_facts f ON f.customer_id = d.customer_id WHERE d.customer_id = $1";
/// The `gen`s of [`gens_sql`] alone.
const GENS_SQLITE: &str = concat!("SELECT ", gens_sql!("$1"));
/// A customer's facts from the ledger, with the facts row's `gen`: one
/// statement, one snapshot.
const FACTS_POSTGRES: &str = concat!(
    "SELECT ",
    facts_json_pg!("$1"),
    ", (SELECT gen FROM consent_facts WHERE customer_id = $1)"
);

/// The `gen`s of a customer's document and facts rows as one snapshot saw
/// them (`None`: no row).
#[derive(Debug, Clone, Copy, Default)]
struct Gens {
    doc: Option<i64>,
    facts: Option<i64>,
}

/// The customer, all contact points with their wrapped keys, and the consent
/// facts (the read hot path).
pub async fn profile(db: &Db, id: Uuid) -> StoreResult<Option<Profile>> {
    Ok(profile_read(db, id).await?.map(|(p, _)| p))
}

/// As [`profile`], and what to store of what had to be read from the tables
/// or the ledger (hand each to [`projection::Projector::offer`]).
///
/// With a document and facts: one statement on SQLite's direct reader, one
/// round trip on PostgreSQL. Without a document: the tables, in the same
/// snapshot as the rows' `gen` on SQLite; one more round trip on PostgreSQL
/// (a single statement for both measured dearer for the reads that find a
/// document, docs/PERFORMANCE.md). Without facts (after each consent
/// change): the ledger, in the same transaction on SQLite, one more round
/// trip on PostgreSQL.
pub async fn profile_read(db: &Db, id: Uuid) -> StoreResult<Option<(Profile, Vec<Refresh>)>> {
    let domain = crate::vault::PROFILE_DOMAIN;
    let (doc, facts) = match db {
        Db::Sqlite(_, reader) => {
            let read = reader.read(|tx| {
                type Row = (i64, Option<Vec<u8>>, Option<i64>, Option<Vec<u8>>);
                let row: Option<Row> = tx
                    .prepare_cached(DOC_SQLITE)?
                    .query_row(rusqlite::named_params! {"$1": id}, |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()?;
                match row {
                    Some((_, Some(doc), _, Some(facts))) => {
                        Ok(Read::Doc(doc, Facts::Stored(facts)))
                    }
                    Some((_, Some(doc), gen, None)) => Ok(Read::Doc(
                        doc,
                        Facts::Ledger(consents::facts_sqlite(tx, id)?, gen),
                    )),
                    _ => {
                        let (rows, consents) = profile_sqlite(tx, id, domain)?;
                        Ok(Read::Tables(rows, consents, gens_sqlite(tx, id)?))
                    }
                }
            })?;
            match read {
                Read::Doc(doc, facts) => (doc, facts),
                Read::Tables(rows, consents, gens) => {
                    return with_refreshes(id, gens, rows, consents)
                }
            }
        }
        Db::Postgres(pool) => {
            let row: Option<Stored> = sqlx::query_as(DOC_POSTGRES)
                .bind(id)
                .fetch_optional(pool)
                .await?;
            match row {
                Some((Some(doc), Some(facts))) => (doc, Facts::Stored(facts)),
                Some((Some(doc), None)) => {
                    let (json, gen): (Option<String>, Option<i64>) = sqlx::query_as(FACTS_POSTGRES)
                        .bind(id)
                        .fetch_one(pool)
                        .await?;
                    let facts = consents::facts_from_json(json.as_deref())?;
                    (doc, Facts::Ledger(facts, gen))
                }
                _ => return profile_from_tables(db, id).await,
            }
        }
    };
    let Some((customer, contacts)) = projection::decode(&doc) else {
        return profile_from_tables(db, id).await;
    };
    let (consents, refreshes) = match facts {
        Facts::Stored(stored) => match projection::decode_facts(&stored) {
            Some(facts) => (facts, Vec::new()),
            None => return profile_from_tables(db, id).await,
        },
        Facts::Ledger(facts, gen) => {
            let refresh = facts_refresh(id, gen, &facts);
            (facts, refresh.into_iter().collect())
        }
    };
    Ok(Some((
        Profile {
            customer,
            contacts,
            consents,
        },
        refreshes,
    )))
}

/// A customer's stored document and facts (each NULL if stale).
type Stored = (Option<Vec<u8>>, Option<Vec<u8>>);

/// What the SQLite read transaction found: a document, or the tables' rows
/// and the projection rows' `gen`s.
enum Read {
    Doc(Vec<u8>, Facts),
    Tables(Vec<ProfileRaw>, Vec<ConsentFact>, Gens),
}

/// A customer's facts as read beside its document: stored, or read from the
/// ledger in the same snapshot as the facts row's `gen`.
enum Facts {
    Stored(Vec<u8>),
    Ledger(Vec<ConsentFact>, Option<i64>),
}

fn gens_sqlite(tx: &rusqlite::Connection, id: Uuid) -> rusqlite::Result<Gens> {
    tx.prepare_cached(GENS_SQLITE)?
        .query_row(rusqlite::named_params! {"$1": id}, |r| {
            Ok(Gens {
                doc: r.get(0)?,
                facts: r.get(1)?,
            })
        })
}

/// The profile from the tables, never the projection, with the document and
/// facts to store: read in one snapshot with the projection rows' `gen`s.
pub(super) async fn profile_from_tables(
    db: &Db,
    id: Uuid,
) -> StoreResult<Option<(Profile, Vec<Refresh>)>> {
    let domain = crate::vault::PROFILE_DOMAIN;
    let (rows, consents, gens) = match db {
        Db::Sqlite(_, reader) => reader.read(|tx| {
            let (rows, consents) = profile_sqlite(tx, id, domain)?;
            Ok((rows, consents, gens_sqlite(tx, id)?))
        })?,
        Db::Postgres(pool) => profile_postgres(pool, id, domain).await?,
    };
    with_refreshes(id, gens, rows, consents)
}

fn facts_refresh(id: Uuid, gen: Option<i64>, facts: &[ConsentFact]) -> Option<Refresh> {
    projection::encode_facts(facts).map(|value| Refresh {
        part: Part::Facts,
        customer_id: id,
        gen,
        value,
    })
}

/// The profile of the tables' rows, with its document and facts to store.
fn with_refreshes(
    id: Uuid,
    gens: Gens,
    rows: Vec<ProfileRaw>,
    consents: Vec<ConsentFact>,
) -> StoreResult<Option<(Profile, Vec<Refresh>)>> {
    let Some(profile) = assemble(id, rows, consents)? else {
        return Ok(None);
    };
    let doc = projection::encode(&profile.customer, &profile.contacts).map(|value| Refresh {
        part: Part::Doc,
        customer_id: id,
        gen: gens.doc,
        value,
    });
    let facts = facts_refresh(id, gens.facts, &profile.consents);
    let refreshes = doc.into_iter().chain(facts).collect();
    Ok(Some((profile, refreshes)))
}

/// The profile of the profile statement's rows; `None` if there are none
/// (no such customer).
fn assemble(
    id: Uuid,
    rows: Vec<ProfileRaw>,
    consents: Vec<ConsentFact>,
) -> StoreResult<Option<Profile>> {
    let domain = crate::vault::PROFILE_DOMAIN;
    let mut iter = rows.into_iter();
    let Some((head, first)) = iter.next() else {
        return Ok(None);
    };
    let (
        display_name,
        external_ref,
        preferred_channel,
        created_at,
        updated_at,
        erased_at,
        pk_version,
        pk_wrapped,
    ) = head;
    let customer = CustomerRow {
        id,
        display_name,
        external_ref,
        preferred_channel,
        created_at,
        updated_at,
        erased_at,
        profile_key: wrapped(domain, pk_version, pk_wrapped)?,
    };
    let mut contacts = Vec::new();
    for raw in std::iter::once(first).chain(iter.map(|(_, c)| c)).flatten() {
        let (cid, channel, value, label, created_at, last_activity_at, v, w) = raw;
        let key = wrapped(&channel, v, w)?;
        contacts.push(ContactRow {
            id: cid,
            channel,
            value,
            label,
            created_at,
            last_activity_at,
            key,
        });
    }
    Ok(Some(Profile {
        customer,
        contacts,
        consents,
    }))
}

fn profile_sqlite(
    tx: &rusqlite::Connection,
    id: Uuid,
    domain: &str,
) -> rusqlite::Result<(Vec<ProfileRaw>, Vec<ConsentFact>)> {
    let mut stmt = tx.prepare_cached(PROFILE_SQLITE)?;
    let rows = stmt
        .query_map(rusqlite::named_params! {"$1": id, "$2": domain}, |r| {
            let head = (
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            );
            let contact = match r.get::<_, Option<Uuid>>(8)? {
                Some(cid) => Some((
                    cid,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                    r.get(13)?,
                    r.get(14)?,
                    r.get(15)?,
                )),
                None => None,
            };
            Ok((head, contact))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let consents = if rows.is_empty() {
        Vec::new()
    } else {
        consents::facts_sqlite(tx, id)?
    };
    Ok((rows, consents))
}

async fn profile_postgres(
    pool: &sqlx::PgPool,
    id: Uuid,
    domain: &str,
) -> StoreResult<(Vec<ProfileRaw>, Vec<ConsentFact>, Gens)> {
    let rows = sqlx::query(PROFILE_POSTGRES)
        .bind(id)
        .bind(domain)
        .fetch_all(pool)
        .await?;
    let (consents, gens) = match rows.first() {
        Some(r) => facts_and_gens(r)?,
        None => (Vec::new(), Gens::default()),
    };
    let out = rows.iter().map(raw_pg).collect::<StoreResult<_>>()?;
    Ok((out, consents, gens))
}

/// The documents and facts of `ids` built from the tables, each with the
/// `gen` it was read with (customers that do not exist are left out): on SQLite in one
/// read transaction, on PostgreSQL in one statement ([`PROFILES_POSTGRES`]).
/// The batch form of [`profile_from_tables`], for [`projection::backfill`].
pub(super) async fn refreshes_from_tables(db: &Db, ids: &[Uuid]) -> StoreResult<Vec<Refresh>> {
    let domain = crate::vault::PROFILE_DOMAIN;
    let mut read = Vec::with_capacity(ids.len());
    match db {
        Db::Sqlite(_, reader) => {
            read = reader.read(|tx| {
                let mut read = Vec::with_capacity(ids.len());
                for &id in ids {
                    let (rows, consents) = profile_sqlite(tx, id, domain)?;
                    read.push((id, rows, consents, gens_sqlite(tx, id)?));
                }
                Ok(read)
            })?;
        }
        Db::Postgres(pool) => {
            let rows = sqlx::query(PROFILES_POSTGRES)
                .bind(ids)
                .bind(domain)
                .fetch_all(pool)
                .await?;
            let mut by_id: HashMap<Uuid, TablesRead> = HashMap::with_capacity(ids.len());
            for r in &rows {
                let id: Uuid = r.try_get(PROFILES_ID_COLUMN)?;
                let customer = match by_id.entry(id) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        let (consents, gens) = facts_and_gens(r)?;
                        e.insert((Vec::new(), consents, gens))
                    }
                };
                customer.0.push(raw_pg(r)?);
            }
            for &id in ids {
                if let Some((mut rows, consents, gens)) = by_id.remove(&id) {
                    // The profile statement's order, whatever order the
                    // outer statement's plan gives the rows in.
                    rows.sort_by(|(_, a), (_, b)| {
                        let key = |c: &Option<ContactRaw>| c.as_ref().map(|c| (c.4, c.0));
                        key(a).cmp(&key(b))
                    });
                    read.push((id, rows, consents, gens));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(read.len());
    for (id, rows, consents, gens) in read {
        if let Some((_, refreshes)) = with_refreshes(id, gens, rows, consents)? {
            out.extend(refreshes);
        }
    }
    Ok(out)
}

/// The consent facts and the projection rows' `gen`s of a PostgreSQL
/// profile row.
fn facts_and_gens(r: &sqlx::postgres::PgRow) -> StoreResult<(Vec<ConsentFact>, Gens)> {
    Ok((
        consents::facts_from_json(r.try_get::<Option<&str>, _>(16)?)?,
        Gens {
            doc: r.try_get(17)?,
            facts: r.try_get(18)?,
        },
    ))
}

/// The customer's and the contact point's columns of a PostgreSQL profile row.
fn raw_pg(r: &sqlx::postgres::PgRow) -> StoreResult<ProfileRaw> {
    let head = (
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
    );
    let contact = match r.try_get::<Option<Uuid>, _>(8)? {
        Some(cid) => Some((
            cid,
            r.try_get(9)?,
            r.try_get(10)?,
            r.try_get(11)?,
            r.try_get(12)?,
            r.try_get(13)?,
            r.try_get(14)?,
            r.try_get(15)?,
        )),
        None => None,
    };
    Ok((head, contact))
}

/// One row of the profile statement: the customer's columns, then one
/// contact point's (none if the customer has no contact points).
type ProfileRaw = (
    (
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<String>,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<Vec<u8>>,
    ),
    Option<ContactRaw>,
);

/// A customer's rows of the profile statement, consent facts and projection
/// rows' `gen`s, as one snapshot read them.
type TablesRead = (Vec<ProfileRaw>, Vec<ConsentFact>, Gens);

/// A contact point's columns of the profile statement: id, channel, value,
/// label, created_at, last_activity_at, and its data key's version and
/// wrapped key.
type ContactRaw = (
    Uuid,
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    i64,
    i64,
    Option<i64>,
    Option<Vec<u8>>,
);

/// A lookup hit: which customer holds the value, on which contact point,
/// and the customer's consent facts that decide whether it may be shown.
#[derive(Debug, Clone)]
pub struct LookupHit {
    pub customer_id: Uuid,
    pub contact_id: Uuid,
    pub last_activity_at: Micros,
    pub consents: Vec<ConsentFact>,
}

/// The lookup statement: each hit with its customer's stored consent facts
/// (NULL if stale); `$extra` adds a column (PostgreSQL's facts from the
/// ledger, only where the stored ones are stale).
macro_rules! lookup_sql {
    ($($extra:expr)?) => {
        concat!(
            "SELECT ct.customer_id, ct.id, ct.last_activity_at, f.facts"
            $(, ", ", $extra)?,
            " FROM contacts ct JOIN customers c ON c.id = ct.customer_id \
             LEFT JOIN consent_facts f ON f.customer_id = ct.customer_id \
             WHERE ct.channel = $1 AND ct.blind_index = $2 AND c.erased_at IS NULL \
             ORDER BY ct.customer_id, ct.id LIMIT $3"
        )
    };
}

const LOOKUP_SQLITE: &str = lookup_sql!();
const LOOKUP_POSTGRES: &str = lookup_sql!(concat!(
    "CASE WHEN f.facts IS NULL THEN ",
    facts_json_pg!("ct.customer_id"),
    " END"
));

/// Contact points whose blind index matches, on live customers; at most
/// `limit`. One statement (on SQLite's direct reader, or one round trip), as
/// [`profile`]: each hit's consent facts come from `consent_facts`, or from
/// the ledger in the same snapshot where they are stale. A lookup stores no
/// facts; the next profile read of the customer does.
pub async fn lookup(
    db: &Db,
    channel: &str,
    blind_index: &[u8; 32],
    limit: i64,
) -> StoreResult<Vec<LookupHit>> {
    let hits = match db {
        Db::Sqlite(_, reader) => reader.read(|tx| {
            type Hit = (Uuid, Uuid, i64, Option<Vec<u8>>);
            let mut stmt = tx.prepare_cached(LOOKUP_SQLITE)?;
            let rows = stmt
                .query_map(
                    rusqlite::named_params! {"$1": channel, "$2": &blind_index[..], "$3": limit},
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?
                .collect::<rusqlite::Result<Vec<Hit>>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (customer_id, contact_id, last_activity_at, stored) in rows {
                let consents = match stored.as_deref().and_then(projection::decode_facts) {
                    Some(facts) => facts,
                    None => consents::facts_sqlite(tx, customer_id)?,
                };
                out.push(LookupHit {
                    customer_id,
                    contact_id,
                    last_activity_at,
                    consents,
                });
            }
            Ok(out)
        })?,
        Db::Postgres(pool) => {
            let rows = sqlx::query(LOOKUP_POSTGRES)
                .bind(channel)
                .bind(&blind_index[..])
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let customer_id: Uuid = r.try_get(0)?;
                let stored = r.try_get::<Option<&[u8]>, _>(3)?;
                let consents = match stored {
                    None => consents::facts_from_json(r.try_get::<Option<&str>, _>(4)?)?,
                    Some(stored) => match projection::decode_facts(stored) {
                        Some(facts) => facts,
                        // Another format: the ledger, as for a stale row.
                        None => {
                            let (json, _): (Option<String>, Option<i64>) =
                                sqlx::query_as(FACTS_POSTGRES)
                                    .bind(customer_id)
                                    .fetch_one(pool)
                                    .await?;
                            consents::facts_from_json(json.as_deref())?
                        }
                    },
                };
                out.push(LookupHit {
                    customer_id,
                    contact_id: r.try_get(1)?,
                    last_activity_at: r.try_get(2)?,
                    consents,
                });
            }
            out
        }
    };
    Ok(hits)
}
