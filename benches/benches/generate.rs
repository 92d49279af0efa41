//! In-memory generation of 1,000,000 distinct codes of `[A-Z0-9]{12}`, in batches of
//! `GENERATE_BATCH`, with the same CSPRNG the service uses. Memory is bounded by the batch:
//! each batch is dropped before the next is drawn.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use coupon_core::generate::{CodeBatches, GENERATE_BATCH};
use coupon_core::Pattern;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;

const CODES: usize = 1_000_000;

fn generate(c: &mut Criterion) {
    let pattern = Pattern::parse("[A-Z0-9]{12}").expect("valid pattern");
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(CODES as u64));
    group.bench_function("1M codes [A-Z0-9]{12} in memory", |b| {
        let mut batch = Vec::with_capacity(GENERATE_BATCH);
        b.iter(|| {
            let mut batches = CodeBatches::new(&pattern, StdRng::from_os_rng());
            let mut made = 0;
            while made < CODES {
                batch.clear();
                batches.fill(GENERATE_BATCH.min(CODES - made), &mut batch);
                made += batch.len();
            }
            made
        })
    });
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
