//! The one way SQL text is put together at run time: [`Sql`].
//!
//! Most statements are constants written out in full (with `$n` placeholders,
//! which both engines accept). A few must be assembled while the program runs:
//! the audit query with only the filters given, the retention sweep with one
//! condition per policy rule, multi-row inserts and updates. They all go
//! through this builder, so that
//!
//! - a value is always bound, never formatted into the text: [`Sql::bind`]
//!   appends the next placeholder and keeps the value beside the text, and
//!   [`Sql::push`] takes only text the code itself wrote (keywords, column
//!   and table names from constants);
//! - placeholders are numbered `$1, $2, …` in the order they appear, each used
//!   once, so positional binding is right on PostgreSQL, on sqlx's SQLite
//!   driver (which maps `$n` to the n-th argument) and on a direct rusqlite
//!   statement (which numbers named parameters by first appearance);
//! - the same built statement binds to either sqlx pool ([`Sql::query`]) and
//!   to the direct SQLite reader ([`Sql::rusqlite_params`]).
//!
//! sqlx's own `QueryBuilder` was the other candidate; it binds into one
//! backend's argument buffer as it goes, so it cannot feed the direct
//! (rusqlite) reader, and it numbers SQLite placeholders `?` while every
//! constant statement here uses `$n` (see docs/decisions.md).

use std::borrow::Cow;

use uuid::Uuid;

/// A value bound to a placeholder. `None` is SQL NULL, typed by its variant
/// (PostgreSQL needs the type of a NULL parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param<'a> {
    Int(Option<i64>),
    Text(Option<Cow<'a, str>>),
    Bytes(Option<Cow<'a, [u8]>>),
    Id(Option<Uuid>),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}

impl From<i32> for Param<'_> {
    fn from(v: i32) -> Self {
        Param::Int(Some(i64::from(v)))
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Param::Text(v.map(Cow::Borrowed))
    }
}

impl From<String> for Param<'_> {
    fn from(v: String) -> Self {
        Param::Text(Some(Cow::Owned(v)))
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Bytes(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<Option<&'a [u8]>> for Param<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Param::Bytes(v.map(Cow::Borrowed))
    }
}

impl From<Uuid> for Param<'_> {
    fn from(v: Uuid) -> Self {
        Param::Id(Some(v))
    }
}

impl From<Option<Uuid>> for Param<'_> {
    fn from(v: Option<Uuid>) -> Self {
        Param::Id(v)
    }
}

/// SQL text with `$n` placeholders and the values bound to them, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sql<'a> {
    text: String,
    params: Vec<Param<'a>>,
}

impl<'a> Sql<'a> {
    /// A statement that starts with `text`.
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            params: Vec::new(),
        }
    }

    /// Appends SQL text written by the code (never a value: see [`Sql::bind`]).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends the next placeholder `$n` and binds `value` to it.
    pub fn bind(&mut self, value: impl Into<Param<'a>>) -> &mut Self {
        self.params.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.params.len().to_string());
        self
    }

    /// Appends one parenthesised tuple per item, comma-separated
    /// (`($1, $2), ($3, $4)`): `each` binds the values of one tuple.
    /// The caller writes the `VALUES` keyword (or uses the tuples elsewhere).
    pub fn values<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Tuple<'_, 'a>, T),
    ) -> &mut Self {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.text.push('(');
            let mut tuple = Tuple {
                sql: self,
                first: true,
            };
            each(&mut tuple, item);
            self.text.push(')');
        }
        self
    }

    /// The statement's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The bound values, in placeholder order.
    pub fn params(&self) -> &[Param<'a>] {
        &self.params
    }

    /// The statement as a sqlx query on either backend, every value bound.
    pub fn query<'q, DB>(
        &'q self,
    ) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
    where
        DB: sqlx::Database,
        Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<&'q [u8]>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<Uuid>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let mut q = sqlx::query::<DB>(&self.text);
        for p in &self.params {
            q = match p {
                Param::Int(v) => q.bind(*v),
                Param::Text(v) => q.bind(v.as_deref()),
                Param::Bytes(v) => q.bind(v.as_deref()),
                Param::Id(v) => q.bind(*v),
            };
        }
        q
    }

    /// The bound values for a direct SQLite (rusqlite) statement of [`Sql::text`].
    pub fn rusqlite_params(&self) -> impl rusqlite::Params + '_ {
        rusqlite::params_from_iter(self.params.iter())
    }
}

/// One tuple of [`Sql::values`].
pub struct Tuple<'s, 'a> {
    sql: &'s mut Sql<'a>,
    first: bool,
}

impl<'a> Tuple<'_, 'a> {
    /// Binds the tuple's next value.
    pub fn bind(&mut self, value: impl Into<Param<'a>>) -> &mut Self {
        if !self.first {
            self.sql.text.push_str(", ");
        }
        self.first = false;
        self.sql.bind(value);
        self
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Param::Int(Some(v)) => ToSqlOutput::Owned(Value::Integer(*v)),
            Param::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Param::Bytes(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            // A UUID is its 16 bytes, as sqlx stores it on SQLite.
            Param::Id(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Blob(v.as_bytes())),
            Param::Int(None) | Param::Text(None) | Param::Bytes(None) | Param::Id(None) => {
                ToSqlOutput::Owned(Value::Null)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order_and_values_kept_beside_the_text() {
        let mut sql = Sql::new("SELECT x FROM t WHERE a = ");
        sql.bind(7)
            .push(" AND b = ")
            .bind("it's")
            .push(" LIMIT ")
            .bind(3);
        assert_eq!(
            sql.text(),
            "SELECT x FROM t WHERE a = $1 AND b = $2 LIMIT $3"
        );
        assert_eq!(
            sql.params(),
            &[Param::from(7), Param::from("it's"), Param::from(3)]
        );
        assert!(!sql.text().contains("it's"), "a value is never in the text");
    }

    #[test]
    fn tuples_number_on_from_what_came_before() {
        let rows = [(1i64, "a"), (2, "b")];
        let mut sql = Sql::new("UPDATE t SET k = ");
        sql.bind(9)
            .push(" FROM (VALUES ")
            .values(rows, |t, (n, s)| {
                t.bind(n).bind(s);
            })
            .push(") AS v");
        assert_eq!(
            sql.text(),
            "UPDATE t SET k = $1 FROM (VALUES ($2, $3), ($4, $5)) AS v"
        );
        assert_eq!(sql.params().len(), 5);
        let mut empty = Sql::new("VALUES ");
        empty.values(std::iter::empty::<i64>(), |t, n| {
            t.bind(n);
        });
        assert_eq!(empty.text(), "VALUES ");
    }

    /// The same statement gives the same rows through sqlx and through a
    /// direct connection, NULLs and UUIDs included.
    #[tokio::test]
    async fn a_built_statement_binds_alike_on_sqlx_and_on_a_direct_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("t.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let pool = sqlx::SqlitePool::connect(&url).await.expect("connect");
        sqlx::query("CREATE TABLE t (id BLOB, n INTEGER, s TEXT, b BLOB)")
            .execute(&pool)
            .await
            .expect("create");
        let id = Uuid::now_v7();
        let mut insert = Sql::new("INSERT INTO t (id, n, s, b) VALUES ");
        insert.values([(Some(id), 1i64), (None, 2)], |t, (id, n)| {
            t.bind(id)
                .bind(n)
                .bind(Some("x").filter(|_| n == 1))
                .bind(Option::<&[u8]>::None);
        });
        insert.query().execute(&pool).await.expect("insert");

        let mut select = Sql::new("SELECT n FROM t WHERE id = ");
        select
            .bind(id)
            .push(" AND s = ")
            .bind("x")
            .push(" AND b IS NULL");
        let via_sqlx: Vec<i64> = select
            .query()
            .fetch_all(&pool)
            .await
            .expect("select")
            .iter()
            .map(|r| sqlx::Row::get(r, 0))
            .collect();
        let conn = rusqlite::Connection::open(&file).expect("open");
        let mut stmt = conn.prepare(select.text()).expect("prepare");
        let direct: Vec<i64> = stmt
            .query_map(select.rusqlite_params(), |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(via_sqlx, vec![1]);
        assert_eq!(direct, via_sqlx);
    }
}
