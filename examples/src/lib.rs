//! Runnable examples of embedding the coupon library: `cargo run -p coupon-examples --example NAME`.
