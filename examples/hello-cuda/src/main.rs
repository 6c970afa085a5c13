//! Arca's CUDA example: the same greeting, on an NVIDIA CUDA runtime base.

fn main() {
    let greeting = format!("Hello from {} {}!", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    if cfg!(feature = "shout") {
        println!("{}", greeting.to_uppercase());
    } else {
        println!("{greeting}");
    }
}
