//! Queries of the retention sweeper: find expired rows in batches, delete
//! them by id, and erase customers with nothing left.
//!
//! Expiry is given as cutoffs computed from the policy (see
//! [`crate::retention`]); this module only knows columns and times.

use std::collections::BTreeMap;

use sqlx::Row;
use uuid::Uuid;

use super::{on_db, sql::Sql, Db, Micros, StoreResult};

/// When each kind of row has expired, as of one sweep's `now`.
#[derive(Debug, Clone, Default)]
pub struct Cutoffs {
    /// (channel, last activity at or before which a contact point is expired)
    pub contacts: Vec<(String, Micros)>,
    /// (channel, kind, recorded/resolved at or before which an interaction is expired)
    pub interactions: Vec<(String, String, Micros)>,
    /// (purpose, max_age in µs): a consent event lapses max_age after it was
    /// given, or at its expires_at if sooner.
    pub consents: Vec<(String, Micros)>,
    /// The sweep's time.
    pub now: Micros,
    /// A customer with no data left is erased once its profile has not
    /// changed since this time.
    pub stale_profile: Micros,
}

/// A row to purge: its id and its customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doomed {
    pub id: Uuid,
    pub customer_id: Uuid,
}

/// The tables the sweeper deletes from by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Contacts,
    Interactions,
    Consents,
}

impl Table {
    /// The table's name (for the audit entry's detail and `/metrics`).
    pub fn name(self) -> &'static str {
        match self {
            Table::Contacts => "contacts",
            Table::Interactions => "interactions",
            Table::Consents => "consents",
        }
    }
}

/// Runs a built statement that selects `(id, customer_id)` pairs.
async fn fetch_pairs(db: &Db, sql: &Sql<'_>) -> StoreResult<Vec<Doomed>> {
    let rows = on_db!(db, pool => {
        let rows = sql.query().fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(Doomed { id: r.try_get(0)?, customer_id: r.try_get(1)? });
        }
        out
    });
    Ok(rows)
}

/// Runs a built `SELECT COUNT(*)`.
async fn count(db: &Db, sql: &Sql<'_>) -> StoreResult<i64> {
    let n = on_db!(db, pool => sql.query().fetch_one(pool).await?.try_get::<i64, _>(0)?);
    Ok(n)
}

/// The time an interaction's retention runs from (see `policy::Retained`).
const INTERACTION_SINCE: &str = "COALESCE(i.resolved_at, i.created_at)";

/// The moment a consent event (table alias `t`) lapses: `age` after it was
/// given, or at its own expires_at if sooner.
fn consent_deadline(sql: &mut Sql<'_>, t: &str, age: Micros) {
    sql.push("(CASE WHEN ")
        .push(t)
        .push(".expires_at IS NOT NULL AND ")
        .push(t)
        .push(".expires_at < ")
        .push(t)
        .push(".at + ")
        .bind(age)
        .push(" THEN ")
        .push(t)
        .push(".expires_at ELSE ")
        .push(t)
        .push(".at + ")
        .bind(age)
        .push(" END)");
}

/// `(` before the first of the terms of an `OR`, ` OR ` before the others.
/// No constant term leads the list: behind one, SQLite would scan the table
/// rather than search an index per term.
fn or_term(sql: &mut Sql<'_>, i: usize) {
    sql.push(if i == 0 { "(" } else { " OR " });
}

/// Closes an `OR` of `n` terms; none is `(1 = 0)`, which nothing matches.
fn or_end(sql: &mut Sql<'_>, n: usize) {
    sql.push(if n == 0 { "(1 = 0)" } else { ")" });
}

/// `((k.channel = $a AND k.last_activity_at <= $b) OR …)`: an expired contact point.
fn contact_expired<'a>(sql: &mut Sql<'a>, contacts: &'a [(String, Micros)]) {
    for (i, (channel, cutoff)) in contacts.iter().enumerate() {
        or_term(sql, i);
        sql.push("(k.channel = ")
            .bind(channel.as_str())
            .push(" AND k.last_activity_at <= ")
            .bind(*cutoff)
            .push(")");
    }
    or_end(sql, contacts.len());
}

/// An expired interaction.
fn interaction_expired<'a>(sql: &mut Sql<'a>, c: &'a Cutoffs) {
    for (i, (channel, kind, cutoff)) in c.interactions.iter().enumerate() {
        or_term(sql, i);
        sql.push("(i.channel = ")
            .bind(channel.as_str())
            .push(" AND i.kind = ")
            .bind(kind.as_str())
            .push(" AND ")
            .push(INTERACTION_SINCE)
            .push(" <= ")
            .bind(*cutoff)
            .push(")");
    }
    or_end(sql, c.interactions.len());
}

/// A lapsed consent event.
fn consent_lapsed<'a>(sql: &mut Sql<'a>, c: &'a Cutoffs) {
    for (i, (purpose, age)) in c.consents.iter().enumerate() {
        or_term(sql, i);
        sql.push("(x.purpose = ")
            .bind(purpose.as_str())
            .push(" AND ");
        consent_deadline(sql, "x", *age);
        sql.push(" <= ").bind(c.now).push(")");
    }
    or_end(sql, c.consents.len());
}

/// Up to `limit` expired contact points of the given channels (with their
/// cutoffs; see [`Cutoffs::contacts`]) in one statement, grouped by channel:
/// the `i`th list holds the points of `channels[i]`. PostgreSQL returns them
/// in table order (it reads the channels' index ranges into one bitmap),
/// where a customer's contact points usually lie together.
pub async fn expired_contacts(
    db: &Db,
    channels: &[(String, Micros)],
    limit: i64,
) -> StoreResult<Vec<Vec<Doomed>>> {
    // One channel needs no channel column (nor a string per row).
    let one = channels.len() == 1;
    let mut sql = Sql::new(if one {
        "SELECT k.id, k.customer_id FROM contacts k WHERE "
    } else {
        "SELECT k.id, k.customer_id, k.channel FROM contacts k WHERE "
    });
    contact_expired(&mut sql, channels);
    sql.push(" LIMIT ").bind(limit);
    let mut grouped: Vec<Vec<Doomed>> = vec![Vec::new(); channels.len()];
    on_db!(db, pool => {
        for r in sql.query().fetch_all(pool).await? {
            let d = Doomed { id: r.try_get(0)?, customer_id: r.try_get(1)? };
            let i = if one {
                0
            } else {
                let channel: &str = r.try_get(2)?;
                channels.iter().position(|(c, _)| c == channel).ok_or_else(|| {
                    sqlx::Error::Protocol(format!("a contact point of channel {channel:?}, not asked for"))
                })?
            };
            if let Some(list) = grouped.get_mut(i) {
                list.push(d);
            }
        }
    });
    Ok(grouped)
}

/// How many contact points of one channel are expired.
pub async fn count_expired_contacts(db: &Db, channel: &str, cutoff: Micros) -> StoreResult<i64> {
    let mut sql = Sql::new("SELECT COUNT(*) FROM contacts k WHERE k.channel = ");
    sql.bind(channel)
        .push(" AND k.last_activity_at <= ")
        .bind(cutoff);
    count(db, &sql).await
}

fn interactions_where<'a>(sql: &mut Sql<'a>, channel: &'a str, kind: &'a str, cutoff: Micros) {
    sql.push(" FROM interactions i WHERE i.channel = ")
        .bind(channel)
        .push(" AND i.kind = ")
        .bind(kind)
        .push(" AND ")
        .push(INTERACTION_SINCE)
        .push(" <= ")
        .bind(cutoff);
}

/// Up to `limit` expired interactions of one channel and kind.
pub async fn expired_interactions(
    db: &Db,
    channel: &str,
    kind: &str,
    cutoff: Micros,
    limit: i64,
) -> StoreResult<Vec<Doomed>> {
    let mut sql = Sql::new("SELECT i.id, i.customer_id");
    interactions_where(&mut sql, channel, kind, cutoff);
    sql.push(" LIMIT ").bind(limit);
    fetch_pairs(db, &sql).await
}

/// How many interactions of one channel and kind are expired.
pub async fn count_expired_interactions(
    db: &Db,
    channel: &str,
    kind: &str,
    cutoff: Micros,
) -> StoreResult<i64> {
    let mut sql = Sql::new("SELECT COUNT(*)");
    interactions_where(&mut sql, channel, kind, cutoff);
    count(db, &sql).await
}

/// Events of (customer, purpose) groups in which every event has lapsed.
/// Deleting a whole group never changes a decision (nothing in it permits
/// anything); deleting single events could (a lapsed channel-specific event
/// shadows `*`, and a withdrawal must outlive the grants it withdrew).
fn lapsed_groups<'a>(sql: &mut Sql<'a>, purpose: &'a str, age: Micros, now: Micros) {
    sql.push(" FROM consents x WHERE x.purpose = ")
        .bind(purpose)
        .push(" AND NOT EXISTS (SELECT 1 FROM consents y WHERE y.customer_id = x.customer_id AND y.purpose = x.purpose AND ");
    consent_deadline(sql, "y", age);
    sql.push(" > ").bind(now).push(")");
}

/// Up to `limit` consent events of fully lapsed (customer, purpose) groups.
pub async fn lapsed_consents(
    db: &Db,
    purpose: &str,
    age: Micros,
    now: Micros,
    limit: i64,
) -> StoreResult<Vec<Doomed>> {
    let mut sql = Sql::new("SELECT x.id, x.customer_id");
    lapsed_groups(&mut sql, purpose, age, now);
    sql.push(" LIMIT ").bind(limit);
    fetch_pairs(db, &sql).await
}

/// How many consent events belong to fully lapsed groups.
pub async fn count_lapsed_consents(
    db: &Db,
    purpose: &str,
    age: Micros,
    now: Micros,
) -> StoreResult<i64> {
    let mut sql = Sql::new("SELECT COUNT(*)");
    lapsed_groups(&mut sql, purpose, age, now);
    count(db, &sql).await
}

/// `{column} IN {ids}`, with every id in one parameter: a statement with a
/// parameter per id costs more to bind than to run once batches grow (the
/// SQLite driver looks each one up by name), and its text would change
/// with the batch size.
fn in_ids(sql: &mut Sql<'_>, sqlite: bool, column: &str, ids: &[Uuid]) {
    let simple = ids.iter().map(|id| id.simple().to_string());
    if sqlite {
        let list: Vec<String> = simple.collect();
        let json = serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned());
        sql.push(column)
            .push(" IN (SELECT unhex(value) FROM json_each(")
            .bind(json)
            .push("))");
    } else {
        let array = format!("{{{}}}", simple.collect::<Vec<_>>().join(","));
        // A subquery, not `= ANY(…)`: without statistics (a small or fresh
        // vault) PostgreSQL scans the table and `ANY` would parse the whole
        // text array again for every row it tests; 20 000 data keys took 55 s.
        sql.push(column)
            .push(" IN (SELECT unnest(")
            .bind(array)
            .push("::text::uuid[]))");
    }
}

/// Deletes rows by id; returns how many went.
pub async fn delete(db: &Db, table: Table, ids: &[Uuid]) -> StoreResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut sql = Sql::new("DELETE FROM ");
    sql.push(table.name()).push(" WHERE ");
    in_ids(&mut sql, matches!(db, Db::Sqlite(..)), "id", ids);
    let n = on_db!(db, pool => sql.query().execute(pool).await?.rows_affected());
    Ok(n)
}

/// Deletes contact points by id, given by channel; returns how many went of
/// each channel (rows already gone are not counted). PostgreSQL deletes them
/// in one statement, so that its statement-level triggers mark each
/// customer's document once. SQLite's triggers run per row anyway; there
/// each channel's rows go in a statement of their own, outside any explicit
/// transaction: inside one, SQLite keeps a statement journal of every page
/// the delete changes, which made the sweep's contact pass 10–20 % slower.
pub async fn delete_contacts(
    db: &Db,
    by_channel: &BTreeMap<&str, Vec<Uuid>>,
) -> StoreResult<BTreeMap<String, u64>> {
    let mut gone = BTreeMap::new();
    match db {
        Db::Sqlite(..) => {
            for (channel, ids) in by_channel {
                let n = delete(db, Table::Contacts, ids).await?;
                gone.insert((*channel).to_owned(), n);
            }
        }
        Db::Postgres(pool) => {
            let ids: Vec<Uuid> = by_channel.values().flatten().copied().collect();
            let mut sql = Sql::new("DELETE FROM contacts WHERE ");
            in_ids(&mut sql, false, "id", &ids);
            sql.push(" RETURNING channel");
            for row in sql.query().fetch_all(pool).await? {
                *gone.entry(row.try_get::<String, _>(0)?).or_default() += 1;
            }
        }
    }
    Ok(gone)
}

/// Live customers after `after` (keyset order) with no live data left: every
/// contact point and interaction expired, every consent lapsed, and a
/// profile unchanged since `stale_profile`. Rows on channels or kinds the
/// policy does not name count as live: the sweeper never deletes what no
/// rule covers.
pub async fn empty_customers(
    db: &Db,
    c: &Cutoffs,
    after: Option<Uuid>,
    limit: i64,
) -> StoreResult<Vec<Uuid>> {
    let mut sql = Sql::new(
        "SELECT c.id, c.id FROM customers c WHERE c.erased_at IS NULL AND c.updated_at <= ",
    );
    sql.bind(c.stale_profile);
    if let Some(after) = after {
        sql.push(" AND c.id > ").bind(after);
    }
    sql.push(" AND NOT EXISTS (SELECT 1 FROM contacts k WHERE k.customer_id = c.id AND NOT ");
    contact_expired(&mut sql, &c.contacts);
    sql.push(") AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id AND NOT ");
    interaction_expired(&mut sql, c);
    sql.push(") AND NOT EXISTS (SELECT 1 FROM consents x WHERE x.customer_id = c.id AND NOT ");
    consent_lapsed(&mut sql, c);
    sql.push(") ORDER BY c.id LIMIT ").bind(limit);
    Ok(fetch_pairs(db, &sql)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect())
}

/// What [`erase_empty`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ErasedEmpty {
    /// Customers erased (a tombstone stays).
    pub customers: u64,
    /// Expired rows that went with them, by table: a sweep whose contact
    /// pass ran just before a row expired finds its customer empty in the
    /// customer pass and deletes the row here instead.
    pub rows: [(&'static str, u64); 3],
}

/// Erases customers that hold nothing but their profile and data keys:
/// data keys (and any expired rows left) go, the profile fields are cleared,
/// a tombstone stays. One transaction per batch; customers erased meanwhile
/// are skipped.
pub async fn erase_empty(db: &Db, ids: &[Uuid], now: Micros) -> StoreResult<ErasedEmpty> {
    const TABLES: [&str; 4] = ["data_keys", "contacts", "interactions", "consents"];
    if ids.is_empty() {
        return Ok(ErasedEmpty::default());
    }
    let sqlite = matches!(db, Db::Sqlite(..));
    let mut statements: Vec<Sql<'_>> = TABLES
        .into_iter()
        .map(|table| {
            let mut sql = Sql::new("DELETE FROM ");
            sql.push(table).push(" WHERE ");
            in_ids(&mut sql, sqlite, "customer_id", ids);
            sql
        })
        .collect();
    let mut erase = Sql::new(
        "UPDATE customers SET display_name = NULL, external_ref = NULL, preferred_channel = NULL, updated_at = ",
    );
    erase
        .bind(now)
        .push(", erased_at = ")
        .bind(now)
        .push(" WHERE erased_at IS NULL AND ");
    in_ids(&mut erase, sqlite, "id", ids);
    statements.push(erase);
    let affected: Vec<u64> = on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let mut affected = Vec::with_capacity(statements.len());
        for sql in &statements {
            affected.push(sql.query().execute(&mut *tx).await?.rows_affected());
        }
        tx.commit().await?;
        affected
    });
    let n = |i: usize| affected.get(i).copied().unwrap_or(0);
    Ok(ErasedEmpty {
        customers: n(TABLES.len()),
        rows: [(TABLES[1], n(1)), (TABLES[2], n(2)), (TABLES[3], n(3))],
    })
}
