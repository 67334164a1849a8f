//! Embeds every model card under `models/` into the binary, so that adding a model of a known
//! architecture is adding one file (no list in the code to keep in step).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read when the script runs, not when it is compiled: cargo may reuse one compiled build
    // script for two checkouts sharing a target directory.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("models");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut cards: Vec<_> = std::fs::read_dir(&dir)
        .expect("models/ directory")
        .map(|e| e.expect("readable models/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cards.sort();
    let mut code = String::from("/// Model cards from `models/`: (file name, contents).\npub const EMBEDDED: &[(&str, &str)] = &[\n");
    for path in &cards {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().unwrap().to_string_lossy();
        writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("cards.rs");
    std::fs::write(out, code).expect("write cards.rs");
}
