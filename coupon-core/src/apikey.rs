//! API keys for the HTTP service: who may call it, and with which [`Role`].
//!
//! A key is a random secret shown once, when it is created; the store keeps only its SHA-256
//! [`hash`](hash_key), so a stolen database does not give working keys. Keys are never
//! deleted, only revoked, so the log of who held access stays readable.

use std::fmt;
use std::str::FromStr;

use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::CouponStore;
use crate::{Coupons, Error, Result, Timestamp};

/// The id of an API key, given by the store.
pub type ApiKeyId = i64;

/// The longest name of an API key, in characters.
pub const MAX_API_KEY_NAME_LEN: usize = 200;

/// What the holder of a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything: books, codes, voids, events, and what a client may do.
    Admin,
    /// Assign, lock, unlock, redeem and read books and a user's coupons.
    Client,
}

impl Role {
    /// The snake_case name, `"admin"` or `"client"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Client => "client",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "client" => Ok(Role::Client),
            other => Err(Error::invalid_input(format!(
                "role {other:?} is unknown; use admin or client"
            ))),
        }
    }
}

/// An API key as listed: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The store's id, used to revoke the key.
    pub id: ApiKeyId,
    /// A name for people and logs, e.g. `"checkout-service"`.
    pub name: Option<String>,
    /// What the key may do.
    pub role: Role,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked; a revoked key opens nothing.
    pub revoked_at: Option<Timestamp>,
}

/// An API key as the store keeps it: the listed fields and the hash of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    /// The listed fields.
    pub key: ApiKey,
    /// [`hash_key`] of the secret.
    pub hash: String,
}

/// A key just created: the only time its secret is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedApiKey {
    /// The store's id.
    pub id: ApiKeyId,
    /// Its name.
    pub name: Option<String>,
    /// Its role.
    pub role: Role,
    /// The secret, to send as `Authorization: Bearer KEY`. It cannot be shown again.
    pub key: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// The prefix of every key, so that a leaked key is easy to recognise (and to scan for).
pub const API_KEY_PREFIX: &str = "cpn_";

/// A new random secret: [`API_KEY_PREFIX`] then 40 alphanumeric characters (about 238 bits).
pub fn new_secret() -> String {
    format!(
        "{API_KEY_PREFIX}{}",
        Alphanumeric.sample_string(&mut rand::rng(), 40)
    )
}

/// The SHA-256 of a secret, in lowercase hex: what the store keeps and what a presented key is
/// looked up by. A fast hash is enough because secrets are long and random.
///
/// ```
/// let hash = coupon_core::apikey::hash_key("cpn_example");
/// assert_eq!(hash.len(), 64);
/// assert_eq!(hash, coupon_core::apikey::hash_key("cpn_example"));
/// ```
pub fn hash_key(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks an API key's name: trimmed, 1 to [`MAX_API_KEY_NAME_LEN`] characters, no control
/// characters. Returns it trimmed.
///
/// # Errors
/// `invalid_input`.
pub fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid_input(
            "API key name cannot be empty; leave it out or give 1 to 200 characters",
        ));
    }
    if name.chars().count() > MAX_API_KEY_NAME_LEN {
        return Err(Error::invalid_input(format!(
            "API key name is longer than {MAX_API_KEY_NAME_LEN} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid_input(
            "API key name contains a control character; use printable text",
        ));
    }
    Ok(name.to_owned())
}

/// API keys: created, listed and revoked by admins (`coupon apikey …`), read by the HTTP service.
impl<S: CouponStore> Coupons<S> {
    /// Creates an API key with `role` and an optional `name`, and returns it with its secret,
    /// which is shown only this once.
    ///
    /// ```
    /// use coupon_core::{apikey::Role, Coupons, MemoryStore};
    /// let coupons = Coupons::new(MemoryStore::new());
    /// let created = coupons.create_api_key(Role::Client, Some("checkout"))?;
    /// assert!(created.key.starts_with("cpn_"));
    /// let listed = coupons.api_keys()?;
    /// assert_eq!((listed[0].id, listed[0].name.as_deref()), (created.id, Some("checkout")));
    /// coupons.revoke_api_key(created.id)?;
    /// assert!(coupons.active_api_keys()?.is_empty());
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// `invalid_input` for a bad name.
    pub fn create_api_key(&self, role: Role, name: Option<&str>) -> Result<CreatedApiKey> {
        let name = name.map(validate_name).transpose()?;
        let secret = new_secret();
        let hash = hash_key(&secret);
        let key = self.write(|tx, now| tx.insert_api_key(name.as_deref(), role, &hash, now))?;
        Ok(CreatedApiKey {
            id: key.id,
            name: key.name,
            role: key.role,
            key: secret,
            created_at: key.created_at,
        })
    }

    /// Every API key, revoked ones included, by id, without secrets.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>> {
        self.read(|tx, _| Ok(tx.api_keys()?.into_iter().map(|k| k.key).collect()))
    }

    /// The keys that are not revoked, with their hashes: what an authenticator checks presented
    /// keys against (by [`hash_key`]).
    pub fn active_api_keys(&self) -> Result<Vec<StoredApiKey>> {
        self.read(|tx, _| {
            let mut keys = tx.api_keys()?;
            keys.retain(|k| k.key.revoked_at.is_none());
            Ok(keys)
        })
    }

    /// Revokes the key `id`; revoking a revoked key changes nothing. Returns the key.
    ///
    /// # Errors
    /// `not_found` for an unknown id.
    pub fn revoke_api_key(&self, id: ApiKeyId) -> Result<ApiKey> {
        self.write(|tx, now| tx.revoke_api_key(id, now))?
            .ok_or_else(|| Error::not_found(format!("API key {id} does not exist")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(a.len(), API_KEY_PREFIX.len() + 40);
        assert!(a[API_KEY_PREFIX.len()..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn roles_parse_and_print() {
        for role in [Role::Admin, Role::Client] {
            assert_eq!(role.as_str().parse::<Role>().expect("parse"), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(validate_name("  checkout ").expect("valid"), "checkout");
        assert!(validate_name("   ").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(201)).is_err());
        assert!(validate_name(&"é".repeat(200)).is_ok());
    }
}
