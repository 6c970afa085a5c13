//! The `arca` binary: parses the command line and hands off to [`arca::cli`].

fn main() -> std::process::ExitCode {
    arca::cli::main()
}
