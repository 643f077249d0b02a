//! Build script of the server: `sqlx::migrate!` embeds `migrations/` at compile time but
//! does not tell cargo to watch the folder, so a migration added without touching a
//! source file would be left out of the binary. This is the build script sqlx documents
//! for that (`sqlx migrate build-script`).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
