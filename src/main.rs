//! The `rewind` binary: parse the command line and hand off to the library.

fn main() -> std::process::ExitCode {
    rewind::cli::main()
}
