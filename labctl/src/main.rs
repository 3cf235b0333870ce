//! The `labctl` binary: parse arguments, render events, map outcomes to exit codes.
//! All the work happens in the `labctl` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
