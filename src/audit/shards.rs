//! The audit log of a vault split over several databases (shards): each
//! shard's own chain, and the signed [`Tie`]s that bind them.
//!
//! [`tie`] reads every shard's head and stores one signed tie in all of
//! them; [`verify`] checks every chain whole, then every tie: present and
//! identical in every shard, numbered without gaps, each naming the digest
//! of the one before, signed by the vault, naming exactly the shards given,
//! and each shard still holding the entry the tie names with that hash.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{
    checkpoint::Checkpointer,
    tie::{ShardHead, Tie},
    verify::{verify as verify_chain, VerifyReport},
    GENESIS_HASH,
};
use crate::{
    crypto::hex,
    store::{self, audit::TieRow, Db, StoreError},
};

/// One shard: its name (as the ties know it) and its database.
pub struct Shard {
    pub name: String,
    pub db: Db,
}

/// Why a tie could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TieRunError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
}

/// The ties every shard holds, by number, with the shards holding each body.
type Stored = BTreeMap<i64, BTreeMap<String, Vec<String>>>;

async fn stored_ties(
    shards: &[Shard],
) -> Result<(Stored, BTreeMap<String, Vec<TieRow>>), StoreError> {
    let mut by_n: Stored = BTreeMap::new();
    let mut rows = BTreeMap::new();
    for s in shards {
        let ties = store::audit::ties(&s.db).await?;
        for t in &ties {
            by_n.entry(t.n)
                .or_default()
                .entry(t.body.clone())
                .or_default()
                .push(s.name.clone());
        }
        rows.insert(s.name.clone(), ties);
    }
    Ok((by_n, rows))
}

/// Makes tie `n + 1` over every shard and stores it in each; returns it.
///
/// A tie run that stopped halfway (stored in some shards only) is finished
/// first: the signed tie is copied to the shards that lack it. Ties that
/// differ between shards, or a shard set other than the last tie's, stop
/// the run: `arkku audit verify --shard …` says what is wrong.
pub async fn tie(
    shards: &[Shard],
    signer: &Checkpointer,
    at_micros: i64,
) -> Result<Tie, TieRunError> {
    let refuse = |why: String| Err(TieRunError::Refused(why));
    let (stored, _) = stored_ties(shards).await?;
    let mut last: Option<Tie> = None;
    for (n, bodies) in &stored {
        if bodies.len() > 1 {
            return refuse(format!(
                "tie {n} differs between shards: run `arkku audit verify` with the same --shard \
                 arguments to see which"
            ));
        }
        let Some(body) = bodies.keys().next() else {
            continue;
        };
        let Ok(t) = serde_json::from_str::<Tie>(body) else {
            return refuse(format!("tie {n} is malformed: run `arkku audit verify`"));
        };
        if !t.signature_valid(signer.public_key()) {
            return refuse(format!(
                "tie {n} is not signed by this vault's audit key: run `arkku audit verify`"
            ));
        }
        let Ok(digest) = t.digest() else {
            return refuse(format!("tie {n} is malformed: run `arkku audit verify`"));
        };
        for s in shards {
            store::audit::insert_tie(
                &s.db,
                &TieRow {
                    n: *n,
                    digest: digest.to_vec(),
                    body: body.clone(),
                },
            )
            .await?;
        }
        last = Some(t);
    }
    let mut heads = Vec::with_capacity(shards.len());
    for s in shards {
        let (seq, hash) = store::audit::head(&s.db)
            .await?
            .unwrap_or((0, GENESIS_HASH));
        heads.push(ShardHead {
            name: s.name.clone(),
            seq,
            hash: hex(&hash),
        });
    }
    let (n, prev) = match &last {
        None => (1, None),
        Some(t) => {
            let given: BTreeSet<&str> = shards.iter().map(|s| s.name.as_str()).collect();
            let tied: BTreeSet<&str> = t.names().into_iter().collect();
            if given != tied {
                return refuse(format!(
                    "tie {} covers the shards {}, not {}: a shard cannot be added or left out \
                     silently (docs/SCALING.md says how to add one)",
                    t.n,
                    join(&tied),
                    join(&given)
                ));
            }
            let digest = t
                .digest()
                .map_err(|e| TieRunError::Refused(format!("tie {}: {e}", t.n)))?;
            (t.n + 1, Some(digest))
        }
    };
    let mut t = Tie::new(n, prev, at_micros, heads);
    signer
        .sign_tie(&mut t)
        .map_err(|e| TieRunError::Refused(format!("the new tie: {e}")))?;
    let row = TieRow {
        n,
        digest: t
            .digest()
            .map_err(|e| TieRunError::Refused(format!("the new tie: {e}")))?
            .to_vec(),
        body: serde_json::to_string(&t).map_err(|e| TieRunError::Refused(e.to_string()))?,
    };
    for s in shards {
        if !store::audit::insert_tie(&s.db, &row).await? {
            return refuse(format!(
                "shard {} already holds a tie {n}: another `arkku audit tie` ran at the same \
                 time; run this one again",
                s.name
            ));
        }
    }
    Ok(t)
}

fn join(names: &BTreeSet<&str>) -> String {
    names.iter().copied().collect::<Vec<_>>().join(", ")
}

/// One shard's chain, as verified.
#[derive(Debug, Serialize)]
pub struct ShardReport {
    pub name: String,
    #[serde(flatten)]
    pub chain: VerifyReport,
}

/// The outcome of `arkku audit verify --shard …`.
#[derive(Debug, Serialize)]
pub struct ShardsReport {
    pub ok: bool,
    pub shards: Vec<ShardReport>,
    /// How many ties were checked against every shard.
    pub ties_checked: u64,
    /// The newest tie the shards hold.
    pub last_tie: Option<i64>,
    /// Every problem found, in words (empty when ok).
    pub problems: Vec<String>,
}

/// Verifies every shard's chain and every tie between them; with `kept`
/// (a tie kept outside the databases), also that no shard, and no tie, was
/// cut back past it.
pub async fn verify(
    shards: &[Shard],
    trusted: &[u8],
    kept: Option<&Tie>,
) -> Result<ShardsReport, StoreError> {
    let mut problems = Vec::new();
    let mut reports = Vec::with_capacity(shards.len());
    for s in shards {
        let chain = verify_chain(&s.db, Some(trusted), None).await?;
        if let Some(p) = chain.problem.as_ref().filter(|_| !chain.ok) {
            problems.push(format!("shard {}: {p}", s.name));
        }
        reports.push(ShardReport {
            name: s.name.clone(),
            chain,
        });
    }
    let given: BTreeSet<&str> = shards.iter().map(|s| s.name.as_str()).collect();
    let (stored, rows) = stored_ties(shards).await?;
    let last_tie = stored.keys().next_back().copied();
    let mut checked = 0;
    let mut prev: Option<[u8; 32]> = None;
    for n in 1..=last_tie.unwrap_or(0) {
        let Some(bodies) = stored.get(&n) else {
            problems.push(format!("tie {n} is missing from every shard"));
            prev = None;
            continue;
        };
        for s in shards {
            if !bodies.values().any(|holders| holders.contains(&s.name)) {
                problems.push(format!("tie {n} is missing from shard {}", s.name));
            }
        }
        if bodies.len() > 1 {
            let who: Vec<String> = bodies.values().map(|h| h.join(" and ")).collect();
            problems.push(format!(
                "tie {n} differs between shards ({})",
                who.join(" / ")
            ));
        }
        let mut next_prev = None;
        for body in bodies.keys() {
            let digest = rows
                .values()
                .flatten()
                .find(|r| r.n == n && &r.body == body)
                .map(|r| r.digest.clone());
            let found =
                check_tie(n, body, digest.as_deref(), prev, trusted, &given, shards).await?;
            problems.extend(found.problems);
            next_prev = next_prev.or(found.digest);
        }
        prev = next_prev;
        checked += 1;
    }
    if let Some(k) = kept {
        problems.extend(check_kept(k, &stored, last_tie, trusted, &given, shards).await?);
    }
    Ok(ShardsReport {
        ok: problems.is_empty(),
        shards: reports,
        ties_checked: checked,
        last_tie,
        problems,
    })
}

/// What checking one stored tie found.
struct TieCheck {
    digest: Option<[u8; 32]>,
    problems: Vec<String>,
}

async fn check_tie(
    n: i64,
    body: &str,
    stored_digest: Option<&[u8]>,
    prev: Option<[u8; 32]>,
    trusted: &[u8],
    given: &BTreeSet<&str>,
    shards: &[Shard],
) -> Result<TieCheck, StoreError> {
    let mut problems = Vec::new();
    let Ok(t) = serde_json::from_str::<Tie>(body) else {
        problems.push(format!("tie {n} is malformed"));
        return Ok(TieCheck {
            digest: None,
            problems,
        });
    };
    let digest = match t.digest() {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("tie {n}: {e}"));
            return Ok(TieCheck {
                digest: None,
                problems,
            });
        }
    };
    if t.n != n {
        problems.push(format!("the tie stored as {n} says it is tie {}", t.n));
    }
    if stored_digest != Some(digest.as_slice()) {
        problems.push(format!("tie {n}'s stored digest does not match the tie"));
    }
    if !t.signature_valid(trusted) {
        problems.push(format!("tie {n} is not signed by this vault's audit key"));
    }
    let expected_prev = if n == 1 { Some([0; 32]) } else { prev };
    if let Some(p) = expected_prev {
        if t.prev_digest().ok() != Some(p) {
            problems.push(format!(
                "tie {n} does not name the digest of tie {} before it",
                n - 1
            ));
        }
    }
    let tied: BTreeSet<&str> = t.names().into_iter().collect();
    if &tied != given {
        problems.push(format!(
            "tie {n} covers the shards {}, but {} were given",
            join(&tied),
            join(given)
        ));
    }
    problems.extend(heads_present(&t, shards, &format!("tie {n}")).await?);
    Ok(TieCheck {
        digest: Some(digest),
        problems,
    })
}

/// Whether every shard still holds the entry `t` names for it, with that hash.
async fn heads_present(t: &Tie, shards: &[Shard], what: &str) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    for s in shards {
        let Some(h) = t.head(&s.name) else { continue };
        if h.seq == 0 {
            continue;
        }
        let stored = store::audit::hash_at(&s.db, h.seq).await?;
        match (stored, h.hash_bytes()) {
            (None, _) => {
                let head = store::audit::max_seq(&s.db).await?.unwrap_or(0);
                problems.push(format!(
                    "shard {}: entry {} is missing, though {what} covers it (the shard ends at \
                     entry {head}: {} entries were lost)",
                    s.name,
                    h.seq,
                    h.seq - head
                ));
            }
            (Some(stored), Ok(hash)) if stored.as_slice() == hash.as_slice() => {}
            _ => problems.push(format!(
                "shard {}: entry {} holds another hash than {what} names: the history was \
                 rewritten",
                s.name, h.seq
            )),
        }
    }
    Ok(problems)
}

async fn check_kept(
    k: &Tie,
    stored: &Stored,
    last_tie: Option<i64>,
    trusted: &[u8],
    given: &BTreeSet<&str>,
    shards: &[Shard],
) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    if !k.signature_valid(trusted) {
        problems.push(format!(
            "the kept tie {} is not signed by this vault's audit key",
            k.n
        ));
        return Ok(problems);
    }
    let tied: BTreeSet<&str> = k.names().into_iter().collect();
    if &tied != given {
        problems.push(format!(
            "the kept tie covers the shards {}, but {} were given",
            join(&tied),
            join(given)
        ));
    }
    match stored.get(&k.n) {
        None if last_tie.is_none_or(|l| l < k.n) => problems.push(format!(
            "the kept tie {} is missing from every shard: ties after {} were lost",
            k.n,
            last_tie.unwrap_or(0)
        )),
        None => problems.push(format!("the kept tie {} is missing from every shard", k.n)),
        Some(bodies) => {
            let body = serde_json::to_string(k).unwrap_or_default();
            if !bodies.contains_key(&body) {
                problems.push(format!("the shards' tie {} differs from the kept one", k.n));
            }
        }
    }
    problems.extend(heads_present(k, shards, &format!("the kept tie {}", k.n)).await?);
    Ok(problems)
}
