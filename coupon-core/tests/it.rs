//! The conformance suite on the in-memory reference store.
mod memory {
    coupon_core::store_tests!(|| Some(coupon_core::MemoryStore::new().into()));
}
