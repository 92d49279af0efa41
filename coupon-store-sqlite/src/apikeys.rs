//! API keys in SQL: the [`StoreTx`](coupon_core::store::StoreTx) primitives for the
//! `api_keys` table.

use coupon_core::apikey::{ApiKey, ApiKeyId, Role, StoredApiKey};
use coupon_core::{Error, ErrorKind, Result, Timestamp};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::classify;
use crate::tx::{micros, opt_time, time};

const COLUMNS: &str = "id, name, role, created_at, revoked_at, key_hash";

pub(crate) fn insert(
    tx: &Connection,
    name: Option<&str>,
    role: Role,
    hash: &str,
    now: Timestamp,
) -> Result<ApiKey> {
    tx.prepare_cached(
        "INSERT INTO api_keys (name, role, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut stmt| stmt.execute(params![name, role.as_str(), hash, micros(now)]))
    .map_err(classify)?;
    Ok(ApiKey {
        id: tx.last_insert_rowid(),
        name: name.map(str::to_owned),
        role,
        created_at: now,
        revoked_at: None,
    })
}

pub(crate) fn all(tx: &Connection) -> Result<Vec<StoredApiKey>> {
    let mut stmt = tx
        .prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY id"))
        .map_err(classify)?;
    let rows = stmt.query_map([], row).map_err(classify)?;
    rows.map(|r| r.map_err(classify)?).collect()
}

pub(crate) fn revoke(tx: &Connection, id: ApiKeyId, now: Timestamp) -> Result<Option<ApiKey>> {
    tx.prepare_cached("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
        .and_then(|mut stmt| stmt.execute(params![id, micros(now)]))
        .map_err(classify)?;
    let key = tx
        .prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"))
        .and_then(|mut stmt| stmt.query_row([id], row).optional())
        .map_err(classify)?;
    key.transpose().map(|k| k.map(|k| k.key))
}

/// A row, or an error naming the bad role (the table's CHECK keeps it from happening).
fn row(r: &Row<'_>) -> rusqlite::Result<Result<StoredApiKey>> {
    let role: String = r.get(2)?;
    let key = ApiKey {
        id: r.get(0)?,
        name: r.get(1)?,
        role: Role::Client,
        created_at: time(r.get(3)?)?,
        revoked_at: opt_time(r.get(4)?)?,
    };
    let hash = r.get(5)?;
    Ok(match role.parse() {
        Ok(role) => Ok(StoredApiKey {
            key: ApiKey { role, ..key },
            hash,
        }),
        Err(_) => Err(Error::new(
            ErrorKind::Backend,
            format!("API key {} has an unknown role {role:?}", key.id),
        )),
    })
}
