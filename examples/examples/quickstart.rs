//! A whole campaign in a few lines, on the in-memory store: create a book, generate codes,
//! hand one to a user, lock it at checkout, redeem it, and read the event log.
//!
//! Run with `cargo run -p coupon-examples --example quickstart`.

use coupon_core::{BookSettings, Coupons, MemoryStore, RedeemRequest};

fn main() -> Result<(), coupon_core::Error> {
    let coupons = Coupons::new(MemoryStore::new());

    let book = coupons.create_book(&BookSettings {
        code_pattern: Some("SPRING-[A-HJ-NP-Z2-9]{8}".into()),
        max_codes_per_user: Some(1),
        ..BookSettings::new("Spring sale")
    })?;
    let report = coupons.generate_codes(book.id, 10_000, false)?;
    println!(
        "generated {} codes from a space of {} (guess probability {:.2e})",
        report.generated, report.space, report.guess_probability
    );

    let coupon = coupons.assign_random(book.id, "user-42", Some("signup-42"))?;
    println!("user-42 got {} ({})", coupon.code, coupon.state);

    let lock = coupons.lock(&coupon.code, "user-42", None, None)?;
    let receipt = coupons.redeem(
        &coupon.code,
        "user-42",
        &RedeemRequest {
            lock_token: Some(lock.token),
            order_id: Some("order-1001".into()),
            ..RedeemRequest::default()
        },
    )?;
    println!(
        "redeemed {} for order {}: {} left",
        receipt.code,
        receipt.order_id.as_deref().unwrap_or("-"),
        receipt.remaining
    );

    let again = coupons.assign_random(book.id, "user-42", None);
    if let Err(err) = again {
        println!(
            "a second code for user-42 is refused: {} ({})",
            err,
            err.kind()
        );
    }

    for event in coupons.events(0, 100)? {
        println!(
            "#{} {} {}",
            event.seq,
            event.kind.as_str(),
            event.code.unwrap_or_default()
        );
    }
    Ok(())
}
