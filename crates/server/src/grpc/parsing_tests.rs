//! Property test of the parsing layer: for every RPC of every service in the
//! contract, arbitrary request messages (built from the descriptors, so a new
//! RPC or field is covered without touching this file, and an RPC without a
//! parser here fails the test) go through the same conversions the handlers
//! use, and through the error-to-status mapping; nothing may panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, net::IpAddr};

use proptest::{
    collection::vec,
    prelude::*,
    test_runner::{Config, TestRunner},
};
use prost::{
    Message,
    encoding::{WireType, encode_key, encode_varint},
};
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};
use tonic::Status;
use wowchat_users_api::{FILE_DESCRIPTOR_SET, v1 as proto};

use super::{convert, directory, joining, roles::permission_field};
use crate::domain::{
    Error,
    invitation::{InvitationToken, InvitationUpdate, NewInvitation},
    joining::LinkSecret,
    permission::{NewRole, RoleDeletion, RoleUpdate},
    user::{AcceptInvitation, ManageUser},
    workspace::SettingsUpdate,
};

/// Nesting below this depth is left empty, so strategies stay finite.
const MAX_DEPTH: usize = 4;

/// What the caller would see of a parse: the status is built too, since
/// building it (violations, retry info) is part of the path.
fn seen<T>(result: Result<T, Error>) {
    if let Err(error) = result {
        let _ = Status::from(error);
    }
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Option<M> {
    M::decode(bytes).ok()
}

/// The parsing each handler does, by method path.
fn parsers() -> HashMap<&'static str, fn(&[u8])> {
    let mut parsers: HashMap<&'static str, fn(&[u8])> = HashMap::new();
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/CreateDirectoryToken",
        |b| {
            if let Some(proto::CreateDirectoryTokenRequest { display_name }) = decode(b) {
                seen(directory::token_name(&display_name));
            }
        },
    );
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/ListDirectoryTokens",
        |b| {
            if let Some(r) = decode::<proto::ListDirectoryTokensRequest>(b) {
                seen(convert::list_page(r.page_size, r.page_token));
            }
        },
    );
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/RevokeDirectoryToken",
        |b| {
            if let Some(proto::RevokeDirectoryTokenRequest { token_id }) = decode(b) {
                seen(convert::id_field("token_id", &token_id));
            }
        },
    );
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/CreateDirectoryUser",
        |b| {
            if let Some(proto::CreateDirectoryUserRequest { fields }) = decode(b) {
                seen(directory::fields(fields));
            }
        },
    );
    parsers.insert("/wowchat.users.v1.DirectoryService/GetDirectoryUser", |b| {
        if let Some(proto::GetDirectoryUserRequest { user_id }) = decode(b) {
            seen(directory::member_id(&user_id));
        }
    });
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/ListDirectoryUsers",
        |b| {
            if let Some(r) = decode::<proto::ListDirectoryUsersRequest>(b) {
                seen(directory::listing(r));
            }
        },
    );
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/ReplaceDirectoryUser",
        |b| {
            if let Some(proto::ReplaceDirectoryUserRequest {
                user_id,
                fields,
                etag,
            }) = decode(b)
            {
                seen(directory::member_id(&user_id));
                seen(directory::expected_version(&etag));
                seen(directory::fields(fields));
            }
        },
    );
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/DeleteDirectoryUser",
        |b| {
            if let Some(proto::DeleteDirectoryUserRequest { user_id }) = decode(b) {
                seen(directory::member_id(&user_id));
            }
        },
    );
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/CreateDirectoryGroup",
        |b| {
            if let Some(proto::CreateDirectoryGroupRequest { fields }) = decode(b) {
                seen(directory::group_fields(fields));
            }
        },
    );
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/GetDirectoryGroup",
        |b| {
            if let Some(proto::GetDirectoryGroupRequest { group_id }) = decode(b) {
                seen(directory::group_id(&group_id));
            }
        },
    );
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/ListDirectoryGroups",
        |b| {
            if let Some(r) = decode::<proto::ListDirectoryGroupsRequest>(b) {
                seen(directory::group_listing(r));
            }
        },
    );
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/ReplaceDirectoryGroup",
        |b| {
            if let Some(proto::ReplaceDirectoryGroupRequest {
                group_id,
                fields,
                etag,
            }) = decode(b)
            {
                seen(directory::group_id(&group_id));
                seen(directory::expected_version(&etag));
                seen(directory::group_fields(fields));
            }
        },
    );
    parsers.insert(
        "/wowchat.users.v1.DirectoryService/DeleteDirectoryGroup",
        |b| {
            if let Some(proto::DeleteDirectoryGroupRequest { group_id }) = decode(b) {
                seen(directory::group_id(&group_id));
            }
        },
    );
    parsers.insert("/wowchat.users.v1.JoinService/CreateInviteLink", |b| {
        if let Some(r) = decode::<proto::CreateInviteLinkRequest>(b) {
            seen(joining::new_link(r));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/ListInviteLinks", |b| {
        if let Some(r) = decode::<proto::ListInviteLinksRequest>(b) {
            seen(joining::link_state(r.state));
            seen(convert::list_page(r.page_size, r.page_token));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/GetInviteLink", |b| {
        if let Some(proto::GetInviteLinkRequest { link_id }) = decode(b) {
            seen(convert::id_field("link_id", &link_id));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/RevokeInviteLink", |b| {
        if let Some(proto::RevokeInviteLinkRequest { link_id }) = decode(b) {
            seen(convert::id_field("link_id", &link_id));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/RotateInviteLink", |b| {
        if let Some(proto::RotateInviteLinkRequest { link_id }) = decode(b) {
            seen(convert::id_field("link_id", &link_id));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/PreviewInviteLink", |b| {
        if let Some(proto::PreviewInviteLinkRequest { secret }) = decode(b) {
            let _ = LinkSecret::parse(&secret);
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/RedeemInviteLink", |b| {
        if let Some(r) = decode::<proto::RedeemInviteLinkRequest>(b) {
            seen(joining::redemption(r));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/CreateJoinRequest", |b| {
        if let Some(r) = decode::<proto::CreateJoinRequestRequest>(b) {
            seen(joining::new_join_request(r));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/ConfirmJoinRequest", |b| {
        if let Some(proto::ConfirmJoinRequestRequest { token }) = decode(b) {
            let _ = InvitationToken::parse(&token);
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/ListJoinRequests", |b| {
        if let Some(r) = decode::<proto::ListJoinRequestsRequest>(b) {
            seen(joining::request_state(r.state));
            seen(convert::list_page(r.page_size, r.page_token));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/GetJoinRequest", |b| {
        if let Some(proto::GetJoinRequestRequest { join_request_id }) = decode(b) {
            seen(convert::id_field("join_request_id", &join_request_id));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/ApproveJoinRequest", |b| {
        if let Some(r) = decode::<proto::ApproveJoinRequestRequest>(b) {
            seen(joining::approval(r));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/DenyJoinRequest", |b| {
        if let Some(r) = decode::<proto::DenyJoinRequestRequest>(b) {
            seen(joining::denial(r));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/AddDomain", |b| {
        if let Some(proto::AddDomainRequest { domain }) = decode(b) {
            let _ = crate::domain::mail_domain::parse_domain_name(&domain);
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/ListDomains", |b| {
        if let Some(r) = decode::<proto::ListDomainsRequest>(b) {
            seen(convert::list_page(r.page_size, r.page_token));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/GetDomain", |b| {
        if let Some(proto::GetDomainRequest { domain_id }) = decode(b) {
            seen(convert::id_field("domain_id", &domain_id));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/VerifyDomain", |b| {
        if let Some(proto::VerifyDomainRequest { domain_id }) = decode(b) {
            seen(convert::id_field("domain_id", &domain_id));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/UpdateDomain", |b| {
        if let Some(r) = decode::<proto::UpdateDomainRequest>(b) {
            seen(joining::domain_update(r));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/RemoveDomain", |b| {
        if let Some(proto::RemoveDomainRequest { domain_id }) = decode(b) {
            seen(convert::id_field("domain_id", &domain_id));
        }
    });
    parsers.insert("/wowchat.users.v1.JoinService/JoinByEmail", |b| {
        if let Some(r) = decode::<proto::JoinByEmailRequest>(b) {
            seen(joining::join_by_email(r));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/InviteUser", |b| {
        if let Some(r) = decode::<proto::InviteUserRequest>(b) {
            seen(NewInvitation::try_from(r));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/AcceptInvitation", |b| {
        if let Some(r) = decode::<proto::AcceptInvitationRequest>(b) {
            seen(AcceptInvitation::try_from(r));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/ManageUser", |b| {
        if let Some(r) = decode::<proto::ManageUserRequest>(b) {
            seen(ManageUser::try_from(r));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/GetUser", |b| {
        if let Some(proto::GetUserRequest { user_id }) = decode(b) {
            seen(convert::id_field("user_id", &user_id));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/ListUsers", |b| {
        if let Some(r) = decode::<proto::ListUsersRequest>(b) {
            seen(convert::list_users(r));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/GetInvitation", |b| {
        if let Some(proto::GetInvitationRequest { invitation_id }) = decode(b) {
            seen(convert::id_field("invitation_id", &invitation_id));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/ListInvitations", |b| {
        if let Some(r) = decode::<proto::ListInvitationsRequest>(b) {
            seen(convert::list_invitations(r));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/ResendInvitation", |b| {
        if let Some(proto::ResendInvitationRequest {
            invitation_id,
            expires_in,
            etag,
        }) = decode(b)
        {
            seen(convert::id_field("invitation_id", &invitation_id));
            seen(convert::resend_validity(expires_in));
            seen(convert::etag_field(&etag));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/RevokeInvitation", |b| {
        if let Some(proto::RevokeInvitationRequest {
            invitation_id,
            etag,
        }) = decode(b)
        {
            seen(convert::id_field("invitation_id", &invitation_id));
            seen(convert::etag_field(&etag));
        }
    });
    parsers.insert(
        "/wowchat.users.v1.UserService/BatchInviteUsers",
        |b| match decode::<proto::BatchInviteUsersRequest>(b).map(convert::batch_invite) {
            Some(Ok(rows)) => rows.into_iter().for_each(seen),
            Some(Err(error)) => seen::<()>(Err(error)),
            None => {}
        },
    );
    parsers.insert("/wowchat.users.v1.UserService/UpdateInvitation", |b| {
        if let Some(r) = decode::<proto::UpdateInvitationRequest>(b) {
            seen(InvitationUpdate::try_from(r));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/PreviewInvitation", |b| {
        if let Some(r) = decode::<proto::PreviewInvitationRequest>(b) {
            let _ = convert::preview_token(r);
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/GetEmailSuppression", |b| {
        if let Some(r) = decode::<proto::GetEmailSuppressionRequest>(b) {
            seen(convert::suppressed_email(r));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/ClearEmailSuppression", |b| {
        if let Some(r) = decode::<proto::ClearEmailSuppressionRequest>(b) {
            seen(convert::clear_email_suppression(r));
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/Unsubscribe", |b| {
        if let Some(r) = decode::<proto::UnsubscribeRequest>(b) {
            // The operation checks the token itself: as it would, under a key.
            if let Ok(token) = convert::unsubscribe_token(r) {
                let key = crate::domain::suppression::UnsubscribeKey::new(b"key").unwrap();
                seen(crate::domain::suppression::Unsubscription::verify(
                    &key,
                    &token,
                    time::OffsetDateTime::now_utc(),
                ));
            }
        }
    });
    parsers.insert("/wowchat.users.v1.UserService/GetWorkspaceSettings", |b| {
        let _: Option<proto::GetWorkspaceSettingsRequest> = decode(b);
    });
    parsers.insert(
        "/wowchat.users.v1.UserService/UpdateWorkspaceSettings",
        |b| {
            if let Some(r) = decode::<proto::UpdateWorkspaceSettingsRequest>(b) {
                seen(SettingsUpdate::try_from(r));
            }
        },
    );
    parsers.insert("/wowchat.users.v1.UserService/ListActivity", |b| {
        if let Some(r) = decode::<proto::ListActivityRequest>(b) {
            seen(convert::list_activity(r));
        }
    });
    parsers.insert("/wowchat.users.v1.RoleService/ListPermissions", |b| {
        if let Some(r) = decode::<proto::ListPermissionsRequest>(b) {
            seen(convert::list_page(r.page_size, r.page_token));
        }
    });
    parsers.insert("/wowchat.users.v1.RoleService/ListRoles", |b| {
        if let Some(r) = decode::<proto::ListRolesRequest>(b) {
            seen(convert::list_page(r.page_size, r.page_token));
        }
    });
    parsers.insert("/wowchat.users.v1.RoleService/CreateRole", |b| {
        if let Some(r) = decode::<proto::CreateRoleRequest>(b) {
            seen(NewRole::try_from(r));
        }
    });
    parsers.insert("/wowchat.users.v1.RoleService/UpdateRole", |b| {
        if let Some(r) = decode::<proto::UpdateRoleRequest>(b) {
            seen(RoleUpdate::try_from(r));
        }
    });
    parsers.insert("/wowchat.users.v1.RoleService/DeleteRole", |b| {
        if let Some(r) = decode::<proto::DeleteRoleRequest>(b) {
            seen(RoleDeletion::try_from(r));
        }
    });
    parsers.insert("/wowchat.users.v1.RoleService/CheckPermission", |b| {
        if let Some(proto::CheckPermissionRequest {
            user_id,
            permission,
        }) = decode(b)
        {
            seen(convert::id_field("user_id", &user_id));
            seen(permission_field(&permission));
        }
    });
    parsers.insert("/wowchat.users.v1.AuthService/SignIn", |b| {
        if let Some(r) = decode::<proto::SignInRequest>(b) {
            seen(convert::sign_in(r, Some(IpAddr::from([127, 0, 0, 1]))));
        }
    });
    // Empty requests: nothing to parse beyond decoding.
    parsers.insert("/wowchat.users.v1.AuthService/SignOut", |b| {
        let _ = decode::<proto::SignOutRequest>(b);
    });
    parsers.insert("/wowchat.users.v1.AuthService/GetJwks", |b| {
        let _ = decode::<proto::GetJwksRequest>(b);
    });
    parsers
}

/// Every message type of the contract (and its imports) by full name.
struct Descriptors {
    messages: HashMap<String, DescriptorProto>,
}

impl Descriptors {
    fn load() -> (Self, FileDescriptorSet) {
        let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let mut messages = HashMap::new();
        for file in &set.file {
            let package = file.package();
            for message in &file.message_type {
                collect(&format!(".{package}"), message, &mut messages);
            }
        }
        (Descriptors { messages }, set)
    }

    /// Encoded messages of type `name`: each field absent or set (repeated
    /// ones 0–3 times) to a value likely to find a bug.
    fn message(&self, name: &str, depth: usize) -> BoxedStrategy<Vec<u8>> {
        let Some(message) = self.messages.get(name) else {
            return Just(Vec::new()).boxed();
        };
        if depth >= MAX_DEPTH {
            return Just(Vec::new()).boxed();
        }
        let fields: Vec<BoxedStrategy<Vec<u8>>> = message
            .field
            .iter()
            .map(|field| {
                let one = self.field(field, depth);
                if field.label() == Label::Repeated {
                    vec(one, 0..4).prop_map(|parts| parts.concat()).boxed()
                } else {
                    proptest::option::of(one)
                        .prop_map(Option::unwrap_or_default)
                        .boxed()
                }
            })
            .collect();
        fields.prop_map(|parts| parts.concat()).boxed()
    }

    fn field(&self, field: &FieldDescriptorProto, depth: usize) -> BoxedStrategy<Vec<u8>> {
        let tag = u32::try_from(field.number()).unwrap();
        let varint = move |value: u64| {
            let mut out = Vec::new();
            encode_key(tag, WireType::Varint, &mut out);
            encode_varint(value, &mut out);
            out
        };
        let delimited = move |bytes: Vec<u8>| {
            let mut out = Vec::new();
            encode_key(tag, WireType::LengthDelimited, &mut out);
            encode_varint(bytes.len() as u64, &mut out);
            out.extend(bytes);
            out
        };
        match field.r#type() {
            // Negative int32s travel as ten-byte varints, like int64s.
            Type::Int64 | Type::Int32 | Type::Enum => interesting_int()
                .prop_map(move |v| varint(v as u64))
                .boxed(),
            Type::Uint64 | Type::Uint32 => interesting_int()
                .prop_map(move |v| varint(v as u64))
                .boxed(),
            Type::Sint64 | Type::Sint32 => interesting_int()
                .prop_map(move |v| varint(((v << 1) ^ (v >> 63)) as u64))
                .boxed(),
            Type::Bool => any::<bool>()
                .prop_map(move |v| varint(u64::from(v)))
                .boxed(),
            Type::String => interesting_string()
                .prop_map(move |s| delimited(s.into_bytes()))
                .boxed(),
            Type::Bytes => vec(any::<u8>(), 0..64).prop_map(delimited).boxed(),
            Type::Message => self
                .message(field.type_name(), depth + 1)
                .prop_map(delimited)
                .boxed(),
            Type::Double | Type::Fixed64 | Type::Sfixed64 => any::<u64>()
                .prop_map(move |v| {
                    let mut out = Vec::new();
                    encode_key(tag, WireType::SixtyFourBit, &mut out);
                    out.extend(v.to_le_bytes());
                    out
                })
                .boxed(),
            Type::Float | Type::Fixed32 | Type::Sfixed32 => any::<u32>()
                .prop_map(move |v| {
                    let mut out = Vec::new();
                    encode_key(tag, WireType::ThirtyTwoBit, &mut out);
                    out.extend(v.to_le_bytes());
                    out
                })
                .boxed(),
            Type::Group => Just(Vec::new()).boxed(),
        }
    }
}

fn collect(scope: &str, message: &DescriptorProto, into: &mut HashMap<String, DescriptorProto>) {
    let name = format!("{scope}.{}", message.name());
    for nested in &message.nested_type {
        collect(&name, nested, into);
    }
    into.insert(name, message.clone());
}

/// Edges (zero, ±1, the limits of every width, a second's nanos) and anything.
fn interesting_int() -> impl Strategy<Value = i64> {
    prop_oneof![
        prop::sample::select(vec![
            0,
            1,
            -1,
            2,
            100,
            101,
            1000,
            999_999_999,
            1_000_000_000,
            -1_000_000_000,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::from(u32::MAX),
            i64::MAX,
            i64::MIN,
            i64::MAX / 1_000_000_000,
            253_402_300_800,
        ]),
        any::<i64>(),
    ]
}

/// Valid-looking values (so parsing reaches the later fields and the domain
/// rules), edge cases, and anything.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            String::new(),
            " ".into(),
            "a@example.com".into(),
            " Mixed.Case@Example.COM ".into(),
            "no-at-sign".into(),
            "owner".into(),
            "admin".into(),
            "agent".into(),
            "users.read".into(),
            "users.manage".into(),
            "roles.manage".into(),
            "*".into(),
            "00000000-0000-0000-0000-000000000000".into(),
            "0192f0c4-7d2e-7cc5-a9f4-3b5b1f1d6a11".into(),
            "last_active_time desc".into(),
            "create_time".into(),
            "email".into(),
            "ACTIVE".into(),
            "AAAA".into(),
            "correct horse battery staple".into(),
            "9223372036854775807".into(),
            "-1".into(),
            "é👍\u{202e}\u{0}".into(),
            "a".repeat(70_000),
            "x@".repeat(300),
        ]),
        "\\PC{0,40}",
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
    ]
}

#[test]
fn no_request_of_any_rpc_makes_the_parsing_layer_panic() {
    let (descriptors, set) = Descriptors::load();
    let parsers = parsers();
    let mut methods = Vec::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package().starts_with("wowchat."))
    {
        for service in &file.service {
            for method in &service.method {
                methods.push((
                    format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    method.input_type().to_owned(),
                ));
            }
        }
    }
    assert!(methods.len() >= 20, "{methods:?}");
    let missing: Vec<_> = methods
        .iter()
        .filter(|(path, _)| !parsers.contains_key(path.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "RPCs without a parser in this test: {missing:?}"
    );

    for (path, input) in &methods {
        let parse = parsers[path.as_str()];
        let mut runner = TestRunner::new(Config {
            cases: 512,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&descriptors.message(input, 0), |bytes| {
            parse(&bytes);
            Ok(())
        });
        if let Err(failure) = result {
            panic!("{path}: {failure}");
        }
    }
}

#[test]
fn an_expiry_past_the_largest_duration_is_a_field_violation_not_a_panic() {
    let request = proto::InviteUserRequest {
        email: "a@example.com".into(),
        role: "agent".into(),
        expires_in: Some(prost_types::Duration {
            seconds: i64::MAX,
            nanos: 1_000_000_000,
        }),
        ..Default::default()
    };
    match NewInvitation::try_from(request) {
        Err(Error::InvalidArgument { violations, .. }) => {
            assert!(
                violations.iter().any(|v| v.field == "expires_in"),
                "{violations:?}"
            );
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

/// The fields of an INVALID_ARGUMENT, or a panic naming what came instead.
fn violated<T>(result: Result<T, Error>) -> Vec<String> {
    match result {
        Err(Error::InvalidArgument { violations, .. }) => {
            violations.into_iter().map(|v| v.field).collect()
        }
        Err(other) => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        Ok(_) => panic!("expected INVALID_ARGUMENT, got a parsed request"),
    }
}

#[test]
fn times_postgres_cannot_store_are_field_violations() {
    let at = |seconds: i64, nanos: i32| Some(prost_types::Timestamp { seconds, nanos });
    // About 5000 BC, year 0, 10000 AD, and nanos outside one second.
    for bad in [
        at(-220_000_000_000, 0),
        at(-62_135_596_801, 999_999_999),
        at(253_402_300_800, 0),
        at(0, -1),
        at(0, 1_000_000_000),
    ] {
        let users = proto::ListUsersRequest {
            active_since: bad,
            ..Default::default()
        };
        assert_eq!(violated(convert::list_users(users)), ["active_since"]);
        let activity = proto::ListActivityRequest {
            start_time: bad,
            end_time: bad,
            ..Default::default()
        };
        assert_eq!(
            violated(convert::list_activity(activity)),
            ["start_time", "end_time"]
        );
    }
    // The first and the last second of the years 1 to 9999 are fine.
    for good in [at(-62_135_596_800, 0), at(253_402_300_799, 999_999_999)] {
        let users = proto::ListUsersRequest {
            active_since: good,
            ..Default::default()
        };
        assert!(convert::list_users(users).is_ok());
    }
}

/// The field and description of the one violation of an INVALID_ARGUMENT.
fn violation<T>(result: Result<T, Error>) -> (String, String) {
    match result {
        Err(Error::InvalidArgument { mut violations, .. }) if violations.len() == 1 => {
            let v = violations.remove(0);
            (v.field, v.description)
        }
        Err(other) => panic!("expected one violation, got {other:?}"),
        Ok(_) => panic!("expected INVALID_ARGUMENT, got a parsed request"),
    }
}

#[test]
fn an_enum_number_the_contract_does_not_know_is_a_violation_of_its_field() {
    let unknown = 99;
    let expected = |field: &str, description: &str| (field.to_owned(), description.to_owned());
    let users = proto::ListUsersRequest {
        status: unknown,
        ..Default::default()
    };
    assert_eq!(
        violation(convert::list_users(users)),
        expected("status", "is not a user status")
    );
    let invitations = proto::ListInvitationsRequest {
        status: unknown,
        ..Default::default()
    };
    assert_eq!(
        violation(convert::list_invitations(invitations)),
        expected("status", "is not an invitation status")
    );
    assert_eq!(
        violation(joining::link_state(unknown)),
        expected("state", "is not an invite link state")
    );
    assert_eq!(
        violation(joining::request_state(unknown)),
        expected("state", "is not a join request state")
    );
    let update = proto::UpdateDomainRequest {
        domain_id: uuid::Uuid::nil().to_string(),
        enrollment_mode: unknown,
        default_role: None,
    };
    assert_eq!(
        violation(joining::domain_update(update)),
        expected("enrollment_mode", "is not an enrollment mode")
    );
}

#[test]
fn an_unspecified_enum_filters_nothing_and_a_known_one_filters_by_its_value() {
    use crate::domain::joining::{InviteLinkState, JoinRequestStatus};
    assert!(matches!(joining::link_state(0), Ok(None)));
    assert!(matches!(
        joining::link_state(proto::InviteLinkState::Exhausted as i32),
        Ok(Some(InviteLinkState::Exhausted))
    ));
    assert!(matches!(joining::request_state(0), Ok(None)));
    assert!(matches!(
        joining::request_state(proto::JoinRequestState::Denied as i32),
        Ok(Some(JoinRequestStatus::Denied))
    ));
    let users = proto::ListUsersRequest {
        status: proto::UserStatus::Deactivated as i32,
        ..Default::default()
    };
    let (filter, _, _) = convert::list_users(users).unwrap();
    assert!(matches!(
        filter.status,
        Some(crate::domain::user::UserStatus::Deactivated)
    ));
    let invitations = proto::ListInvitationsRequest {
        status: proto::InvitationStatus::Revoked as i32,
        ..Default::default()
    };
    let (filter, _) = convert::list_invitations(invitations).unwrap();
    assert!(matches!(
        filter.status,
        Some(crate::domain::invitation::InvitationStatus::Revoked)
    ));
}

#[test]
fn a_locale_is_taken_in_any_case_and_an_unsupported_one_is_a_violation_of_its_field() {
    let invite = |locale: &str| proto::InviteUserRequest {
        email: "ann@example.com".into(),
        role: "agent".into(),
        locale: locale.into(),
        ..Default::default()
    };
    let parsed = NewInvitation::try_from(invite("PT-br")).unwrap();
    assert_eq!(parsed.locale.map(|l| l.tag()), Some("pt-BR"));
    assert_eq!(NewInvitation::try_from(invite("")).unwrap().locale, None);
    let (field, description) = violation(NewInvitation::try_from(invite("xx")));
    assert_eq!(field, "locale");
    assert!(
        description.contains("en, de, fr, es, pt-BR, ja, ar"),
        "{description}"
    );

    let update = proto::UpdateInvitationRequest {
        invitation_id: uuid::Uuid::nil().to_string(),
        locale: Some("klingon".into()),
        ..Default::default()
    };
    assert_eq!(violation(InvitationUpdate::try_from(update)).0, "locale");

    let settings = |default_locale: &str| proto::UpdateWorkspaceSettingsRequest {
        settings: Some(proto::WorkspaceSettings {
            default_locale: default_locale.into(),
            ..Default::default()
        }),
    };
    let parsed = SettingsUpdate::try_from(settings("JA")).unwrap();
    assert_eq!(parsed.settings.default_locale.tag(), "ja");
    let parsed = SettingsUpdate::try_from(settings("")).unwrap();
    assert_eq!(parsed.settings.default_locale.tag(), "en");
    let (field, _) = violation(SettingsUpdate::try_from(settings("xx")));
    assert_eq!(field, "settings.default_locale");
}
