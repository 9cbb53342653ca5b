//! The baseline: the same axum and sqlx stack on the same database, serving
//! the same customers from plaintext tables with no auth, policy, encryption
//! or audit. What arkku costs is measured against it.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

use arkku::store::Db;

#[derive(Deserialize)]
struct Lookup {
    channel: String,
    value: String,
}

async fn profile(State(db): State<Db>, Path(id): Path<String>) -> Result<Json<Value>, StatusCode> {
    const SQL: &str = "SELECT c.display_name, c.created_at, k.id, k.channel, k.value \
        FROM bench_plain_customers c LEFT JOIN bench_plain_contacts k ON k.customer_id = c.id WHERE c.id = $1";
    let rows = arkku::on_db!(&db, pool => {
        let rows = sqlx::query(SQL).bind(&id).fetch_all(pool).await.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let name: String = r.try_get(0).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            let at: i64 = r.try_get(1).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            let contact: Option<(String, String, String)> = match r.try_get::<Option<String>, _>(2).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)? {
                Some(cid) => Some((cid, r.try_get(3).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?, r.try_get(4).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?)),
                None => None,
            };
            out.push((name, at, contact));
        }
        out
    });
    let Some((name, at, _)) = rows.first() else {
        return Err(StatusCode::NOT_FOUND);
    };
    let contacts: Vec<Value> = rows
        .iter()
        .filter_map(|(_, _, c)| c.as_ref())
        .map(|(cid, channel, value)| json!({"id": cid, "channel": channel, "value": value}))
        .collect();
    Ok(Json(
        json!({"id": id, "display_name": name, "created_at": at, "contacts": contacts}),
    ))
}

async fn lookup(State(db): State<Db>, Json(q): Json<Lookup>) -> Result<Json<Value>, StatusCode> {
    const SQL: &str = "SELECT customer_id, id FROM bench_plain_contacts WHERE channel = $1 AND value = $2 LIMIT 100";
    let matches = arkku::on_db!(&db, pool => {
        let rows = sqlx::query(SQL).bind(&q.channel).bind(&q.value).fetch_all(pool).await.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let customer: String = r.try_get(0).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            let contact: String = r.try_get(1).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            out.push(json!({"customer_id": customer, "contact_id": contact, "channel": q.channel}));
        }
        out
    });
    if matches.is_empty() {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(Json(json!({"matches": matches})))
}

/// Serves the baseline on `listen` until killed.
pub async fn run(database_url: &str, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let db = Db::connect(database_url).await?;
    let app = Router::new()
        .route("/customers/{id}", get(profile))
        .route("/lookup", post(lookup))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
