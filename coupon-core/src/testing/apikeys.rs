//! Cases for API keys: create, list, revoke.

use std::time::Duration;

use super::{start, Ctx};
use crate::apikey::{hash_key, Role};
use crate::store::CouponStore;
use crate::ErrorKind;

/// A created key is listed without its secret, stored only as its hash, and has its own id.
pub fn api_key_create_lists_it_with_its_hash<S: CouponStore>(t: &Ctx<S>) {
    let admin = t
        .coupons
        .create_api_key(Role::Admin, Some(" ops "))
        .expect("create");
    let client = t
        .coupons
        .create_api_key(Role::Client, None)
        .expect("create");
    assert_ne!(admin.id, client.id);
    assert_ne!(admin.key, client.key);
    assert_eq!(
        (admin.name.as_deref(), admin.role, admin.created_at),
        (Some("ops"), Role::Admin, start())
    );
    let listed = t.coupons.api_keys().expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[0].id, listed[0].role), (admin.id, Role::Admin));
    assert_eq!(
        (
            listed[1].id,
            listed[1].name.as_deref(),
            listed[1].revoked_at
        ),
        (client.id, None, None)
    );
    let active = t.coupons.active_api_keys().expect("active");
    assert_eq!(active[0].hash, hash_key(&admin.key));
    assert_eq!(active[1].hash, hash_key(&client.key));
    assert!(
        active
            .iter()
            .all(|k| k.hash != admin.key && k.hash != client.key),
        "the secret itself is never stored"
    );
}

/// A revoked key stays listed with its revocation time and leaves the active keys; revoking it
/// again keeps the first time; an unknown id is `not_found`.
pub fn api_key_revoke_keeps_it_listed<S: CouponStore>(t: &Ctx<S>) {
    let kept = t
        .coupons
        .create_api_key(Role::Client, Some("kept"))
        .expect("create");
    let gone = t
        .coupons
        .create_api_key(Role::Client, Some("gone"))
        .expect("create");
    t.clock.advance(Duration::from_secs(60));
    let revoked = t.coupons.revoke_api_key(gone.id).expect("revoke");
    let at = start() + Duration::from_secs(60);
    assert_eq!(revoked.revoked_at, Some(at));
    t.clock.advance(Duration::from_secs(60));
    let again = t.coupons.revoke_api_key(gone.id).expect("revoke again");
    assert_eq!(
        again.revoked_at,
        Some(at),
        "the first revocation time stays"
    );
    let listed = t.coupons.api_keys().expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].revoked_at, Some(at));
    let active = t.coupons.active_api_keys().expect("active");
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].key.id, kept.id);
    let err = t.coupons.revoke_api_key(gone.id + 1000).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = t
        .coupons
        .create_api_key(Role::Admin, Some("bad\u{7}name"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(t.coupons.api_keys().expect("list").len(), 2);
    assert_eq!(
        t.coupons.events(0, 10).expect("events"),
        vec![],
        "keys are not coupon events"
    );
}
