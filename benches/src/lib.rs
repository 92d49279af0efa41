//! Benchmarks of the coupon workspace; see `benches/` and BENCHMARKS.md. This library holds
//! what the benchmark programs share.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The result type of the benchmark programs.
pub type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The `coupon` binary: `COUPON_BENCH_CLI`, or the current source built in release mode into
/// the target directory the calling program runs from (`<target>/release/deps/..`), so the
/// binary timed is always the current source, built with the same profile.
///
/// # Errors
/// When cargo fails or the binary cannot be found.
pub fn coupon_cli() -> Res<PathBuf> {
    if let Some(path) = std::env::var_os("COUPON_BENCH_CLI") {
        return Ok(PathBuf::from(path));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "coupon-cli"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("cannot run cargo to build the coupon CLI ({e})"))?;
    if !status.success() {
        return Err("building the coupon CLI failed".into());
    }
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(|release| release.join(format!("coupon{}", std::env::consts::EXE_SUFFIX)))
        .filter(|cli| cli.is_file())
        .ok_or_else(|| {
            "cannot find the coupon binary beside this program; set COUPON_BENCH_CLI".into()
        })
}

/// The whole number in the environment variable `name`, or `default` when it is unset.
///
/// # Errors
/// When it is set to something else than a whole number.
pub fn env_number(name: &str, default: u64) -> Res<u64> {
    match std::env::var(name) {
        Ok(text) => Ok(text
            .parse()
            .map_err(|_| format!("{name} must be a whole number, not {text:?}"))?),
        Err(_) => Ok(default),
    }
}

/// An error and its causes, `: `-separated.
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The `p`-th percentile (0 to 100) of `sorted` values, by the nearest rank; 0 when empty.
///
/// ```
/// let v = [1.0, 2.0, 3.0, 4.0];
/// assert_eq!(coupon_benches::percentile(&v, 50.0), 2.0);
/// assert_eq!(coupon_benches::percentile(&v, 99.0), 4.0);
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
