//! The `registrar` binary: parse the command line and hand over to [`registrar::cli`].

fn main() -> std::process::ExitCode {
    registrar::cli::main()
}
