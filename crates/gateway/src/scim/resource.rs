//! The two kinds of resource SCIM reaches on the service, Users and Groups,
//! behind one trait: each kind's JSON and its DirectoryService RPCs. Reading,
//! creating, replacing, patching, deleting and listing are then one code
//! path for both (in `scim`), so a rule of the protocol is written once.

use std::future::Future;

use serde_json::Value;
use tonic::{Status, metadata::MetadataMap, transport::Channel};
use wowchat_users_api::v1::{self as proto, directory_service_client::DirectoryServiceClient};

use super::{errors::ScimError, filter, group, user};

pub(super) type Client = DirectoryServiceClient<Channel>;
/// A DirectoryService answer, its message reduced to what SCIM reads of it.
pub(super) type Reply<T> = Result<tonic::Response<T>, Status>;
/// A page of a listing and how many match in all.
pub(super) type Page<R> = (Vec<R>, i32);

/// A kind of resource: its message (`Self`) and what differs between the
/// kinds. The RPCs take the caller's metadata and owned arguments, as a
/// call may be tried twice (on another replica).
pub(super) trait Resource: Sized + Send {
    /// What a POST or PUT body (or a patched resource) gives.
    type Fields: Clone + Send + Sync;
    /// A `filter=` as the kind's listing takes it; the default: everything.
    type Filter: Clone + Default + Send + Sync;
    /// The detail of the 404 when the service answers without one.
    const MISSING: &'static str;

    fn etag(&self) -> &str;
    /// The SCIM resource; `base` is the SCIM endpoint's URL.
    fn json(&self, base: &str) -> Value;
    /// Where it is read: its `Location` when created.
    fn location(&self, base: &str) -> String;
    fn fields(body: &Value) -> Result<Self::Fields, ScimError>;
    fn filter(text: &str) -> Result<Self::Filter, ScimError>;

    fn get(
        client: Client,
        metadata: MetadataMap,
        id: String,
    ) -> impl Future<Output = Reply<Option<Self>>> + Send;
    fn list(
        client: Client,
        metadata: MetadataMap,
        filter: Self::Filter,
        start_index: i32,
        count: i32,
    ) -> impl Future<Output = Reply<Page<Self>>> + Send;
    fn create(
        client: Client,
        metadata: MetadataMap,
        fields: Self::Fields,
    ) -> impl Future<Output = Reply<Option<Self>>> + Send;
    /// Replaces it whole, if it is still at `etag` (empty: any version).
    fn replace(
        client: Client,
        metadata: MetadataMap,
        id: String,
        fields: Self::Fields,
        etag: String,
    ) -> impl Future<Output = Reply<Option<Self>>> + Send;
    fn delete(
        client: Client,
        metadata: MetadataMap,
        id: String,
    ) -> impl Future<Output = Reply<()>> + Send;
}

fn request<T>(metadata: MetadataMap, message: T) -> tonic::Request<T> {
    tonic::Request::from_parts(metadata, Default::default(), message)
}

impl Resource for proto::DirectoryUser {
    type Fields = proto::DirectoryUserFields;
    type Filter = Vec<proto::DirectoryCondition>;
    const MISSING: &'static str = "no such user";

    fn etag(&self) -> &str {
        &self.etag
    }

    fn json(&self, base: &str) -> Value {
        user::resource(self, base)
    }

    fn location(&self, base: &str) -> String {
        user::location(base, &self.id)
    }

    fn fields(body: &Value) -> Result<Self::Fields, ScimError> {
        user::fields(body)
    }

    fn filter(text: &str) -> Result<Self::Filter, ScimError> {
        filter::conditions(text)
    }

    async fn get(
        mut client: Client,
        metadata: MetadataMap,
        user_id: String,
    ) -> Reply<Option<Self>> {
        let message = proto::GetDirectoryUserRequest { user_id };
        let reply = client
            .get_directory_user(request(metadata, message))
            .await?;
        Ok(reply.map(|reply| reply.user))
    }

    async fn list(
        mut client: Client,
        metadata: MetadataMap,
        conditions: Self::Filter,
        start_index: i32,
        count: i32,
    ) -> Reply<Page<Self>> {
        let message = proto::ListDirectoryUsersRequest {
            conditions,
            start_index,
            count: Some(count),
        };
        let reply = client
            .list_directory_users(request(metadata, message))
            .await?;
        Ok(reply.map(|reply| (reply.users, reply.total_results)))
    }

    async fn create(
        mut client: Client,
        metadata: MetadataMap,
        fields: Self::Fields,
    ) -> Reply<Option<Self>> {
        let message = proto::CreateDirectoryUserRequest {
            fields: Some(fields),
        };
        let reply = client
            .create_directory_user(request(metadata, message))
            .await?;
        Ok(reply.map(|reply| reply.user))
    }

    async fn replace(
        mut client: Client,
        metadata: MetadataMap,
        user_id: String,
        fields: Self::Fields,
        etag: String,
    ) -> Reply<Option<Self>> {
        let message = proto::ReplaceDirectoryUserRequest {
            user_id,
            fields: Some(fields),
            etag,
        };
        let reply = client
            .replace_directory_user(request(metadata, message))
            .await?;
        Ok(reply.map(|reply| reply.user))
    }

    async fn delete(mut client: Client, metadata: MetadataMap, user_id: String) -> Reply<()> {
        let message = proto::DeleteDirectoryUserRequest { user_id };
        let reply = client
            .delete_directory_user(request(metadata, message))
            .await?;
        Ok(reply.map(drop))
    }
}

impl Resource for proto::DirectoryGroup {
    type Fields = proto::DirectoryGroupFields;
    /// `displayName` and `externalId`, the only attributes a group is found by.
    type Filter = (Option<String>, Option<String>);
    const MISSING: &'static str = "no such group";

    fn etag(&self) -> &str {
        &self.etag
    }

    fn json(&self, base: &str) -> Value {
        group::resource(self, base)
    }

    fn location(&self, base: &str) -> String {
        group::location(base, &self.id)
    }

    fn fields(body: &Value) -> Result<Self::Fields, ScimError> {
        group::fields(body)
    }

    fn filter(text: &str) -> Result<Self::Filter, ScimError> {
        filter::group_conditions(text)
    }

    async fn get(
        mut client: Client,
        metadata: MetadataMap,
        group_id: String,
    ) -> Reply<Option<Self>> {
        let message = proto::GetDirectoryGroupRequest { group_id };
        let reply = client
            .get_directory_group(request(metadata, message))
            .await?;
        Ok(reply.map(|reply| reply.group))
    }

    async fn list(
        mut client: Client,
        metadata: MetadataMap,
        (display_name, external_id): Self::Filter,
        start_index: i32,
        count: i32,
    ) -> Reply<Page<Self>> {
        let message = proto::ListDirectoryGroupsRequest {
            display_name,
            external_id,
            start_index,
            count: Some(count),
        };
        let reply = client
            .list_directory_groups(request(metadata, message))
            .await?;
        Ok(reply.map(|reply| (reply.groups, reply.total_results)))
    }

    async fn create(
        mut client: Client,
        metadata: MetadataMap,
        fields: Self::Fields,
    ) -> Reply<Option<Self>> {
        let message = proto::CreateDirectoryGroupRequest {
            fields: Some(fields),
        };
        let reply = client
            .create_directory_group(request(metadata, message))
            .await?;
        Ok(reply.map(|reply| reply.group))
    }

    async fn replace(
        mut client: Client,
        metadata: MetadataMap,
        group_id: String,
        fields: Self::Fields,
        etag: String,
    ) -> Reply<Option<Self>> {
        let message = proto::ReplaceDirectoryGroupRequest {
            group_id,
            fields: Some(fields),
            etag,
        };
        let reply = client
            .replace_directory_group(request(metadata, message))
            .await?;
        Ok(reply.map(|reply| reply.group))
    }

    async fn delete(mut client: Client, metadata: MetadataMap, group_id: String) -> Reply<()> {
        let message = proto::DeleteDirectoryGroupRequest { group_id };
        let reply = client
            .delete_directory_group(request(metadata, message))
            .await?;
        Ok(reply.map(drop))
    }
}
