//! Seeding: N customers with four contact points each, sealed through the
//! vault and inserted in bulk through the store (no HTTP), plus the same rows
//! in plaintext for the baseline server, and a cross_channel consent on `*`
//! per customer so a phone agent's profile read releases all four channels.

use std::{io::Write, ops::Range, time::Instant};

use arkku::{
    store::{
        self,
        customers::{NewContact, NewCustomer},
        keys::WrappedDataKey,
        sql::Sql,
        Db,
    },
    vault::records::{self, field},
    AppState,
};
use uuid::Uuid;

/// The channels every seeded customer has, and how its value is written.
pub const CHANNELS: [&str; 4] = ["phone", "email", "sms", "chat"];

/// The phone number of seeded customer `i` (also the lookup key).
pub fn phone(i: usize) -> String {
    format!("+35840{i:07}")
}

fn value(channel: &str, i: usize) -> String {
    match channel {
        "phone" => phone(i),
        "email" => format!("customer{i}@example.com"),
        "sms" => format!("+35850{i:07}"),
        _ => format!("visitor-{i}"),
    }
}

/// Creates the baseline's plaintext tables (not part of arkku's schema).
pub async fn baseline_schema(db: &Db) -> anyhow::Result<()> {
    for sql in [
        "CREATE TABLE IF NOT EXISTS bench_plain_customers (id TEXT PRIMARY KEY, display_name TEXT NOT NULL, created_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS bench_plain_contacts (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, channel TEXT NOT NULL, value TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS bench_plain_contacts_customer ON bench_plain_contacts (customer_id)",
        "CREATE INDEX IF NOT EXISTS bench_plain_contacts_value ON bench_plain_contacts (channel, value)",
    ] {
        arkku::on_db!(db, pool => sqlx::query(sql).execute(pool).await.map(drop))?;
    }
    Ok(())
}

/// One batch of customers, sealed and ready to insert.
struct Sealed {
    ids: Vec<Uuid>,
    names: Vec<Vec<u8>>,
    keys: Vec<Vec<WrappedDataKey>>,
    contacts: Vec<Vec<NewContact>>,
}

/// Seals customers `range` (keys, values, blind indexes, display names).
async fn seal(state: AppState, range: Range<usize>, now: i64) -> anyhow::Result<Sealed> {
    let mut out = Sealed {
        ids: Vec::with_capacity(range.len()),
        names: Vec::with_capacity(range.len()),
        keys: Vec::with_capacity(range.len()),
        contacts: Vec::with_capacity(range.len()),
    };
    for k in range {
        let id = Uuid::now_v7();
        let mut wrapped = Vec::new();
        let mut rows = Vec::new();
        for channel in CHANNELS {
            let (key, w) = state.keyring.new_data_key(&state.db, id, channel).await?;
            let key = records::field_key(&key)?;
            wrapped.push(w);
            let cid = Uuid::now_v7();
            let v = value(channel, k);
            let kind = state
                .policies
                .channel(channel)
                .map(|(_, p)| p.kind)
                .ok_or_else(|| anyhow::anyhow!("policy lacks channel {channel}"))?;
            let nv = arkku::domain::normalise(kind, &v, state.config.default_region)?;
            rows.push(NewContact {
                id: cid,
                customer_id: id,
                channel: channel.to_owned(),
                blind_index: state.blind.compute(channel, nv.index_key()),
                value: records::seal(&key, id, channel, cid, field::VALUE, nv.value())?,
                label: None,
                now,
            });
        }
        let (pkey, pw) = state
            .keyring
            .new_data_key(&state.db, id, arkku::vault::PROFILE_DOMAIN)
            .await?;
        let pkey = records::field_key(&pkey)?;
        wrapped.push(pw);
        out.names.push(records::seal(
            &pkey,
            id,
            arkku::vault::PROFILE_DOMAIN,
            id,
            field::DISPLAY_NAME,
            &format!("Customer {k}"),
        )?);
        out.ids.push(id);
        out.keys.push(wrapped);
        out.contacts.push(rows);
    }
    Ok(out)
}

/// Customers per batch: sealed while the previous batch is written.
const BATCH: usize = 1000;

/// Seeds `n` customers; returns their ids (index i ↔ phone(i)). The crypto
/// of the next two batches runs on other tasks while one is written, so both
/// cores work.
pub async fn seed(state: &AppState, n: usize) -> anyhow::Result<Vec<Uuid>> {
    baseline_schema(&state.db).await?;
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    let now = store::to_micros(time::OffsetDateTime::now_utc());
    let spawn = |i: usize| {
        let range = i..(i + BATCH).min(n);
        tokio::spawn(seal(state.clone(), range, now))
    };
    // Two batches sealing ahead: one per core, besides the writes.
    let mut ahead = std::collections::VecDeque::new();
    let mut sealed_up_to = 0;
    let mut i = 0;
    loop {
        while ahead.len() < 2 && sealed_up_to < n {
            ahead.push_back(spawn(sealed_up_to));
            sealed_up_to = (sealed_up_to + BATCH).min(n);
        }
        let Some(pending) = ahead.pop_front() else {
            break;
        };
        let batch = pending.await??;
        let end = i + batch.ids.len();
        let new: Vec<NewCustomer<'_>> = batch
            .ids
            .iter()
            .zip(&batch.names)
            .map(|(id, name)| NewCustomer {
                id: *id,
                display_name: Some(name),
                external_ref: None,
                preferred_channel: Some("phone"),
                now,
            })
            .collect();
        store::customers::create_many(
            &state.db,
            new.iter()
                .zip(&batch.keys)
                .zip(&batch.contacts)
                .map(|((c, k), r)| (c, k.as_slice(), r.as_slice())),
        )
        .await?;
        plain_and_consents(&state.db, &batch.ids, i, now).await?;
        ids.extend(batch.ids);
        i = end;
        eprint!(
            "\rseeding: {end}/{n} customers ({:.0}/s)",
            end as f64 / started.elapsed().as_secs_f64().max(1e-9)
        );
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    Ok(ids)
}

/// The baseline's plaintext copy of a batch, and each customer's consent,
/// in multi-row statements (one round trip each), built with the store's
/// statement builder.
async fn plain_and_consents(db: &Db, ids: &[Uuid], first: usize, now: i64) -> anyhow::Result<()> {
    for (c, chunk) in ids.chunks(100).enumerate() {
        let base = first + c * 100;
        let rows: Vec<(usize, String)> = chunk
            .iter()
            .enumerate()
            .map(|(k, id)| (base + k, id.to_string()))
            .collect();
        let mut customers =
            Sql::new("INSERT INTO bench_plain_customers (id, display_name, created_at) VALUES ");
        customers.values(&rows, |t, (i, id)| {
            t.bind(id.as_str()).bind(format!("Customer {i}")).bind(now);
        });
        let mut contacts =
            Sql::new("INSERT INTO bench_plain_contacts (id, customer_id, channel, value) VALUES ");
        let each = rows
            .iter()
            .flat_map(|(i, id)| CHANNELS.iter().map(move |ch| (*i, id, *ch)));
        contacts.values(each, |t, (i, id, channel)| {
            t.bind(Uuid::now_v7().to_string())
                .bind(id.as_str())
                .bind(channel)
                .bind(value(channel, i));
        });
        let mut consents = Sql::new(
            "INSERT INTO consents (id, customer_id, purpose, channel, action, notice_id, \
             notice_version, method, actor_sub, actor_role, at) VALUES ",
        );
        consents.values(chunk, |t, id| {
            t.bind(Uuid::now_v7())
                .bind(*id)
                .bind("cross_channel")
                .bind("*")
                .bind("grant")
                .bind("bench-notice")
                .bind("1")
                .bind("web_form")
                .bind("bench")
                .bind("customer")
                .bind(now);
        });
        arkku::on_db!(db, pool => {
            let mut tx = pool.begin().await?;
            for sql in [&customers, &contacts, &consents] {
                sql.query().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
    }
    Ok(())
}
