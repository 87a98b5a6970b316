//! Compiles the `.proto` contract with a vendored `protoc`, so a fresh machine needs no system protoc.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", protoc)
    };
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let well_known = protoc_bin_vendored::include_path()?;

    // Every message gets `prost::Name`, so events name their type from the
    // contract instead of a hand-kept string.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("wowchat_users_descriptor.bin"))
        .compile_with_config(
            config,
            &[
                PathBuf::from("proto/wowchat/users/v1/users.proto"),
                PathBuf::from("proto/wowchat/users/v1/roles.proto"),
                PathBuf::from("proto/wowchat/users/v1/auth.proto"),
                PathBuf::from("proto/wowchat/users/v1/directory.proto"),
                PathBuf::from("proto/wowchat/users/v1/joining.proto"),
                PathBuf::from("proto/wowchat/users/v1/errors.proto"),
                PathBuf::from("proto/wowchat/users/events/v1/events.proto"),
                // Compiled for the descriptor set: reflection then describes
                // the error details every status carries, and the gateway
                // decodes them to JSON.
                PathBuf::from("proto/third_party/googleapis/google/rpc/code.proto"),
                PathBuf::from("proto/third_party/googleapis/google/rpc/status.proto"),
                PathBuf::from("proto/third_party/googleapis/google/rpc/error_details.proto"),
            ],
            &[
                // Google's HTTP annotations and google.rpc errors, vendored as
                // Google publishes them. First: protoc names a file by the
                // first include holding it, and these must be `google/…`.
                PathBuf::from("proto/third_party/googleapis"),
                PathBuf::from("proto"),
                well_known,
            ],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
