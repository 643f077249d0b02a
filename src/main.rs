//! The `registrar` binary: parse the command line and hand over to [`registrar::cli`].

/// See the `mimalloc` entry of Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // The fault suite's processes take their failpoints from `FAILPOINTS` (test builds only).
    #[cfg(feature = "failpoints")]
    let _failpoints = registrar::faults::from_env();
    registrar::cli::main()
}
