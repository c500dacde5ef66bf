//! Tauri code generation: reads `tauri.conf.json`.

fn main() {
    tauri_build::build();
}
