//! A directory's group as a SCIM Group (RFC 7643 §4.2) and back. Members
//! are Users only; each reads back with its `$ref` and `type`.

use serde_json::{Map, Value, json};
use wowchat_users_api::v1 as proto;

use super::{GROUP_SCHEMA, errors::ScimError, user};

/// The SCIM resource of a group; `base` is the SCIM endpoint's URL.
pub fn resource(group: &proto::DirectoryGroup, base: &str) -> Value {
    let fields = group.fields.clone().unwrap_or_default();
    let mut out = Map::new();
    out.insert("schemas".into(), json!([GROUP_SCHEMA]));
    out.insert("id".into(), json!(group.id));
    if let Some(external_id) = &fields.external_id {
        out.insert("externalId".into(), json!(external_id));
    }
    out.insert("displayName".into(), json!(fields.display_name));
    if !fields.member_user_ids.is_empty() {
        let members: Vec<Value> = fields
            .member_user_ids
            .iter()
            .map(|id| json!({"value": id, "$ref": user::location(base, id), "type": "User"}))
            .collect();
        out.insert("members".into(), Value::Array(members));
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": user::time(&group.create_time),
            "lastModified": user::time(&group.update_time),
            "location": location(base, &group.id),
            "version": group.etag,
        }),
    );
    Value::Object(out)
}

pub fn location(base: &str, id: &str) -> String {
    format!("{base}/Groups/{id}")
}

/// The fields a Group resource gives (a POST or PUT body, or a resource
/// after a PATCH). A member is named by its `value`.
pub fn fields(body: &Value) -> Result<proto::DirectoryGroupFields, ScimError> {
    let Value::Object(object) = body else {
        return Err(ScimError::invalid_syntax("the body must be a JSON object"));
    };
    let display_name = match user::get(object, "displayName") {
        Some(Value::String(name)) => name.clone(),
        Some(_) => return Err(ScimError::invalid_value("displayName must be a string")),
        None => return Err(ScimError::invalid_value("displayName is required")),
    };
    let external_id = match user::get(object, "externalId") {
        None => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err(ScimError::invalid_value("externalId must be a string")),
    };
    let member_user_ids = match user::get(object, "members") {
        None => Vec::new(),
        Some(Value::Array(members)) => members
            .iter()
            .map(|member| match member {
                Value::Object(member) => match user::get(member, "value") {
                    Some(Value::String(id)) => Ok(id.clone()),
                    _ => Err(ScimError::invalid_value("members.value is required")),
                },
                _ => Err(ScimError::invalid_value("members must hold objects")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ScimError::invalid_value("members must be an array")),
    };
    Ok(proto::DirectoryGroupFields {
        display_name,
        external_id,
        member_user_ids,
    })
}
