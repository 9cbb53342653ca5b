//! The `arkku` binary: parse the arguments, set up tracing, run the command
//! ([`arkku::cli`]). No logic lives here.

/// glibc's allocator spends a fifth of a busy server's time in malloc and
/// free (measured with perf under profile reads); mimalloc's per-thread
/// free lists do the same work in a fraction of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

use arkku::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    arkku::logging::init(&cli.global.log, cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
