//! The `registrar` binary: parse the command line and hand over to [`registrar::cli`].

fn main() -> std::process::ExitCode {
    // The fault suite's processes take their failpoints from `FAILPOINTS` (test builds only).
    #[cfg(feature = "failpoints")]
    let _failpoints = registrar::faults::from_env();
    registrar::cli::main()
}
