//! API keys in SQL: the [`StoreTx`](coupon_core::store::StoreTx) primitives for the
//! `api_keys` table.

use coupon_core::apikey::{ApiKey, ApiKeyId, Role, StoredApiKey};
use coupon_core::{Error, ErrorKind, Result, Timestamp};
use postgres::Row;

use crate::tx::{get, PgTx};

macro_rules! key_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, role, created_at, revoked_at, key_hash FROM api_keys ",
            $tail
        )
    };
}

const INSERT: &str = "INSERT INTO api_keys (name, role, key_hash, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING id";
const ALL: &str = key_select!("ORDER BY id");
const REVOKE: &str = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const ONE: &str = key_select!("WHERE id = $1");

impl PgTx<'_> {
    pub(crate) fn insert_key(
        &mut self,
        name: Option<&str>,
        role: Role,
        hash: &str,
        now: Timestamp,
    ) -> Result<ApiKey> {
        let row = self.query_one(INSERT, &[&name, &role.as_str(), &hash, &now])?;
        Ok(ApiKey {
            id: get(&row, 0)?,
            name: name.map(str::to_owned),
            role,
            created_at: now,
            revoked_at: None,
        })
    }

    pub(crate) fn keys(&mut self) -> Result<Vec<StoredApiKey>> {
        self.query(ALL, &[])?.iter().map(key_row).collect()
    }

    pub(crate) fn revoke_key(&mut self, id: ApiKeyId, now: Timestamp) -> Result<Option<ApiKey>> {
        self.execute(REVOKE, &[&id, &now])?;
        self.query_opt(ONE, &[&id])?
            .map(|row| key_row(&row).map(|k| k.key))
            .transpose()
    }
}

fn key_row(row: &Row) -> Result<StoredApiKey> {
    let id: i64 = get(row, 0)?;
    let role: String = get(row, 2)?;
    let role = role.parse().map_err(|_| {
        Error::new(
            ErrorKind::Backend,
            format!("API key {id} has an unknown role {role:?}"),
        )
    })?;
    Ok(StoredApiKey {
        key: ApiKey {
            id,
            name: get(row, 1)?,
            role,
            created_at: get(row, 3)?,
            revoked_at: get(row, 4)?,
        },
        hash: get(row, 5)?,
    })
}
