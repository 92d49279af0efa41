//! Any text as a pattern: parsing never panics, and an accepted pattern keeps its promises —
//! the codes it draws (one by one and in order) belong to it, rank and nth are inverse, and
//! the sizes agree with the lengths.
#![no_main]

use coupon_core::Pattern;
use libfuzzer_sys::fuzz_target;
use num_traits::ToPrimitive;
use rand::rngs::StdRng;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pattern) = Pattern::parse(source) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(data.len() as u64);
    let sampler = pattern.sampler();
    for _ in 0..16 {
        let code = sampler.sample(&mut rng);
        assert!(pattern.contains(&code), "{source:?} drew {code:?}");
        assert!((pattern.min_len()..=pattern.max_len()).contains(&code.len()));
        let rank = pattern.rank(&code).expect("a drawn code has a rank");
        assert_eq!(pattern.nth(&rank).as_deref(), Some(code.as_str()));
    }
    let mut previous: Option<String> = None;
    let drawn = pattern.sample_sorted(64, &mut rng, |chunk: &mut Vec<String>| {
        for code in chunk.drain(..) {
            assert!(pattern.contains(&code), "{source:?} drew {code:?} in order");
            assert!(previous.as_ref().is_none_or(|p| *p < code), "out of order");
            previous = Some(code);
        }
        Ok::<(), ()>(())
    });
    assert!(drawn.is_ok());
    if pattern.size().to_u64().is_some_and(|size| size <= 64) {
        let all: Vec<String> = pattern.iter_from(&0u8.into()).collect();
        assert_eq!(all.len() as u64, pattern.size().to_u64().unwrap_or(0));
    }
});
