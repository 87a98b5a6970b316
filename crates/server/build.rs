// `refinery::embed_migrations!` reads migrations/ when the crate compiles,
// but cargo does not know it: without this, a new migration file leaves the
// crate as it was built, and the service runs without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
