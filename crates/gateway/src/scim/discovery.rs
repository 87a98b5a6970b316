//! What a SCIM client reads before anything else (RFC 7643 §5–7): the
//! service provider's configuration, its resource types and their schemas.
//! The schemas declare only what the service keeps, so what a client writes
//! reads back unchanged; other attributes a directory sends are ignored.

use serde_json::{Value, json};

use super::{ENTERPRISE_SCHEMA, GROUP_SCHEMA, LIST_SCHEMA, USER_SCHEMA};
use crate::scim::MAX_COUNT;

const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// One attribute definition (RFC 7643 §7).
fn attribute(name: &str, kind: &str, description: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "required": false,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        "description": description,
    })
}

fn with(mut attribute: Value, key: &str, value: Value) -> Value {
    attribute[key] = value;
    attribute
}

/// The User schema: what the service keeps of a member.
pub fn user_schema(base: &str) -> Value {
    let emails = with(
        with(
            with(
                attribute(
                    "emails",
                    "complex",
                    "The member's addresses; the member's email is the primary one, else the \
                     work one, else the first.",
                ),
                "multiValued",
                json!(true),
            ),
            "required",
            json!(true),
        ),
        "subAttributes",
        json!([
            with(
                attribute("value", "string", "The address."),
                "required",
                json!(true)
            ),
            with(
                attribute("type", "string", "A label: work, home or other."),
                "canonicalValues",
                json!(["work", "home", "other"]),
            ),
            attribute("primary", "boolean", "Whether this is the member's email."),
        ]),
    );
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A member of the workspace.",
        "attributes": [
            with(
                with(
                    attribute("userName", "string", "The directory's unique login name (Okta: the email; Entra ID: the UPN)."),
                    "required",
                    json!(true),
                ),
                "uniqueness",
                json!("server"),
            ),
            with(
                attribute("name", "complex", "The member's name."),
                "subAttributes",
                json!([
                    attribute("givenName", "string", "The given name."),
                    attribute("familyName", "string", "The family name."),
                ]),
            ),
            attribute("displayName", "string", "The name shown to colleagues."),
            emails,
            with(
                attribute("active", "boolean", "Whether the member may sign in; false deactivates."),
                "required",
                json!(true),
            ),
        ],
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base}/Schemas/{USER_SCHEMA}"),
        },
    })
}

/// The enterprise extension (RFC 7643 §4.3): of it, the service keeps the
/// manager (the member's reporting-to).
pub fn enterprise_schema(base: &str) -> Value {
    let manager = with(
        attribute(
            "manager",
            "complex",
            "The member's manager: a member of the workspace (the member's reporting-to).",
        ),
        "subAttributes",
        json!([
            attribute("value", "string", "The manager's id."),
            with(
                with(
                    attribute("$ref", "reference", "The manager's URI."),
                    "referenceTypes",
                    json!(["User"]),
                ),
                "caseExact",
                json!(true),
            ),
        ]),
    );
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": ENTERPRISE_SCHEMA,
        "name": "EnterpriseUser",
        "description": "Enterprise User",
        "attributes": [manager],
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base}/Schemas/{ENTERPRISE_SCHEMA}"),
        },
    })
}

/// The Group schema: a name and members (Users).
pub fn group_schema(base: &str) -> Value {
    let immutable = |attribute: Value| with(attribute, "mutability", json!("immutable"));
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A group of members; one named as a role gives its members that role.",
        "attributes": [
            with(
                with(
                    attribute("displayName", "string", "The group's name, unique in the workspace; a role's name makes it give that role."),
                    "required",
                    json!(true),
                ),
                "uniqueness",
                json!("server"),
            ),
            with(
                with(
                    attribute("members", "complex", "The group's members."),
                    "multiValued",
                    json!(true),
                ),
                "subAttributes",
                json!([
                    immutable(attribute("value", "string", "The member's id.")),
                    immutable(with(
                        with(attribute("$ref", "reference", "The member's URI."), "referenceTypes", json!(["User"])),
                        "caseExact",
                        json!(true),
                    )),
                    immutable(with(
                        attribute("type", "string", "The member's resource type."),
                        "canonicalValues",
                        json!(["User"]),
                    )),
                ]),
            ),
        ],
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base}/Schemas/{GROUP_SCHEMA}"),
        },
    })
}

/// Every schema, by id.
pub fn schemas(base: &str) -> Vec<Value> {
    vec![
        user_schema(base),
        enterprise_schema(base),
        group_schema(base),
    ]
}

/// Every resource type.
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "The workspace's members.",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": false}],
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base}/ResourceTypes/User"),
            },
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "The directory's groups; one named as a role gives its members that role.",
            "schema": GROUP_SCHEMA,
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base}/ResourceTypes/Group"),
            },
        }),
    ]
}

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/wowchat/users#scim",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Directory token",
            "description": "A workspace's directory token, minted by an owner \
                            (DirectoryService.CreateDirectoryToken), as `Authorization: Bearer <token>`.",
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// A ListResponse of all of `resources`.
pub fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
