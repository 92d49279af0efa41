//! The `coupon` command: a thin shell around [`coupon_cli::run`].

use std::process::ExitCode;

fn main() -> ExitCode {
    coupon_cli::run(std::env::args_os())
}
