//! Tauri code generation: reads `tauri.conf.json` and `capabilities/`.

fn main() {
    tauri_build::build();
}
