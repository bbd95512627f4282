//! Prints the error-code table for the README: `cargo run -p orfeas-vocab --example error_table`.

fn main() {
    let table = orfeas_vocab::error_code::markdown_table();
    std::io::Write::write_all(&mut std::io::stdout(), table.as_bytes()).ok();
}
