//! The gRPC contract of WowChat Users, generated from `proto/`: the messages,
//! the `UserService` client other Rust services call it with, and the server
//! trait the service implements.

#![deny(clippy::unwrap_used)]

pub mod topology;

/// `wowchat.users.v1`: the service, its resources and its events.
pub mod v1 {
    tonic::include_proto!("wowchat.users.v1");
}

/// The `google.api` HTTP annotations the REST gateway transcodes with.
pub mod google {
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

/// The encoded descriptors of every file above, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("wowchat_users_descriptor");
