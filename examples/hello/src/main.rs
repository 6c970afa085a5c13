//! Arca's bundled example: prints a greeting (louder with `--features shout`).

fn main() {
    let greeting = format!("Hello from {} {}!", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    if cfg!(feature = "shout") {
        println!("{}", greeting.to_uppercase());
    } else {
        println!("{greeting}");
    }
}
