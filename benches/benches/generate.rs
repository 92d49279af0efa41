//! In-memory generation of 1,000,000 codes of `[A-Z0-9]{12}` in code order, handed out a few
//! thousand at a time, with the same CSPRNG the service uses. Memory is bounded by the chunk:
//! each is dropped before the next is drawn.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::convert::Infallible;

use coupon_core::Pattern;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;

const CODES: u64 = 1_000_000;

fn generate(c: &mut Criterion) {
    let pattern = Pattern::parse("[A-Z0-9]{12}").expect("valid pattern");
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(CODES));
    group.bench_function("1M codes [A-Z0-9]{12} in memory, in order", |b| {
        b.iter(|| {
            let mut made = 0;
            let mut rng = StdRng::from_os_rng();
            let drawn = pattern.sample_sorted(CODES, &mut rng, |chunk: &mut Vec<String>| {
                made += chunk.len();
                chunk.clear();
                Ok::<(), Infallible>(())
            });
            drawn.map(|()| made)
        })
    });
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
