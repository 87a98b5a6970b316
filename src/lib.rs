//! The gRPC contract of WowChat Users, generated from `proto/`: the messages,
//! the `UserService` client other Rust services call it with, and the server
//! trait the service implements.

pub mod topology;

/// The `google.rpc.ErrorInfo` domain of every error the service and its
/// gateway return (AIP-193: the service's name). Each reason is a value of
/// `v1::ErrorReason`.
pub const ERROR_DOMAIN: &str = "users.wowchat.dev";

/// `wowchat.users.v1`: the service and its resources.
pub use wowchat::users::v1;

/// `wowchat.users.events.v1`: the events and commands published to
/// RabbitMQ, in a package of their own so no language generates a service
/// stub beside them.
pub use wowchat::users::events;

/// The packages as nested in the proto, so generated references between
/// packages (`google.rpc.Code` in `InviteRefusal`) resolve.
pub mod wowchat {
    pub mod users {
        /// `wowchat.users.v1`: the service and its resources.
        pub mod v1 {
            tonic::include_proto!("wowchat.users.v1");
        }
        /// `wowchat.users.events.v1`: what the service publishes.
        pub mod events {
            pub mod v1 {
                tonic::include_proto!("wowchat.users.events.v1");
            }
        }
    }
}

/// Google's types the contract uses: the `google.api` HTTP annotations the
/// REST gateway transcodes with, and the `google.rpc` status and error
/// details every error carries (compiled so that the descriptor set, hence
/// reflection and the gateway, describes them).
pub mod google {
    pub mod api {
        tonic::include_proto!("google.api");
    }
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// The encoded descriptors of every file above, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("wowchat_users_descriptor");
