//! The `edgenvr` binary: a thin wrapper over [`edgenvr::cli::main`].

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(edgenvr::cli::main(args));
}
