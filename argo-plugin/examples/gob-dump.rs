//! Prints the gob values of a recorded stream (debugging aid): `cargo run --example gob-dump FILE`.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: gob-dump FILE");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let mut decoder = rollout_router_argo_plugin::gob::Decoder::new();
    match decoder.decode_stream(&bytes) {
        Ok(values) => {
            for value in values {
                println!("{value:#?}");
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
