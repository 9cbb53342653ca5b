//! Rebuild when a migration is added: `sqlx::migrate!` embeds the files of
//! `migrations/` but cannot ask Cargo to watch the folder itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
