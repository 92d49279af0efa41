//! Benchmarks of the coupon workspace; see `benches/` and BENCHMARKS.md.
