//! A member as a SCIM User (RFC 7643 §4.1) and back: the resource the
//! service's `DirectoryUser` makes, and the fields a POST or PUT body (or a
//! patched resource) gives. Attribute names are matched ignoring case, as
//! SCIM asks; attributes the service does not keep are ignored.

use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use wowchat_users_api::v1 as proto;

use super::{ENTERPRISE_SCHEMA, USER_SCHEMA, errors::ScimError};

/// The SCIM resource of a member; `base` is the SCIM endpoint's URL.
pub fn resource(user: &proto::DirectoryUser, base: &str) -> Value {
    let fields = user.fields.clone().unwrap_or_default();
    let mut out = Map::new();
    let mut schemas = vec![json!(USER_SCHEMA)];
    out.insert("id".into(), json!(user.id));
    if let Some(external_id) = &fields.external_id {
        out.insert("externalId".into(), json!(external_id));
    }
    out.insert("userName".into(), json!(fields.user_name));
    if let Some(name) = &fields.name {
        let mut parts = Map::new();
        if let Some(given) = &name.given_name {
            parts.insert("givenName".into(), json!(given));
        }
        if let Some(family) = &name.family_name {
            parts.insert("familyName".into(), json!(family));
        }
        out.insert("name".into(), Value::Object(parts));
    }
    if let Some(display_name) = &fields.display_name {
        out.insert("displayName".into(), json!(display_name));
    }
    if !fields.emails.is_empty() {
        let emails: Vec<Value> = fields
            .emails
            .iter()
            .map(|email| {
                let mut e = Map::new();
                e.insert("value".into(), json!(email.value));
                if let Some(kind) = &email.r#type {
                    e.insert("type".into(), json!(kind));
                }
                if let Some(primary) = email.primary {
                    e.insert("primary".into(), json!(primary));
                }
                Value::Object(e)
            })
            .collect();
        out.insert("emails".into(), Value::Array(emails));
    }
    out.insert("active".into(), json!(fields.active));
    if let Some(manager) = &fields.manager_user_id {
        schemas.push(json!(ENTERPRISE_SCHEMA));
        out.insert(
            ENTERPRISE_SCHEMA.into(),
            json!({"manager": {"value": manager, "$ref": format!("{base}/Users/{manager}")}}),
        );
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": time(&user.create_time),
            "lastModified": time(&user.update_time),
            "location": location(base, &user.id),
            "version": user.etag,
        }),
    );
    out.insert("schemas".into(), Value::Array(schemas));
    Value::Object(out)
}

pub fn location(base: &str, id: &str) -> String {
    format!("{base}/Users/{id}")
}

/// A time as SCIM's `meta` shows it (RFC 3339, whole seconds).
pub fn time(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The value of `key` in `object`, its name matched ignoring case.
pub fn get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn string(value: Option<&Value>, attribute: &str) -> Result<Option<String>, ScimError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::invalid_value(format!(
            "{attribute} must be a string"
        ))),
    }
}

/// A boolean as SCIM sends it, or as Entra ID does: `"True"`, `"False"`.
pub fn boolean(value: &Value, attribute: &str) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_value(format!(
            "{attribute} must be a boolean"
        ))),
    }
}

/// The fields a User resource gives (a POST or PUT body, or a resource
/// after a PATCH). `active` defaults to true.
pub fn fields(body: &Value) -> Result<proto::DirectoryUserFields, ScimError> {
    let Value::Object(object) = body else {
        return Err(ScimError::invalid_syntax("the body must be a JSON object"));
    };
    // Each field parsed in place; the first invalid one, in this order, is
    // the error.
    Ok(proto::DirectoryUserFields {
        user_name: string(get(object, "userName"), "userName")?
            .ok_or_else(|| ScimError::invalid_value("userName is required"))?,
        external_id: string(get(object, "externalId"), "externalId")?,
        name: name(get(object, "name"))?,
        display_name: string(get(object, "displayName"), "displayName")?,
        emails: emails(get(object, "emails"))?,
        active: get(object, "active")
            .map(|a| boolean(a, "active"))
            .transpose()?
            .unwrap_or(true),
        password: string(get(object, "password"), "password")?,
        manager_user_id: match get(object, ENTERPRISE_SCHEMA) {
            Some(Value::Object(enterprise)) => manager(get(enterprise, "manager"))?,
            _ => None,
        },
    })
}

/// A User's `name`: an object of `givenName` and `familyName`, if given.
fn name(value: Option<&Value>) -> Result<Option<proto::DirectoryName>, ScimError> {
    match value {
        None => Ok(None),
        Some(Value::Object(name)) => Ok(Some(proto::DirectoryName {
            given_name: string(get(name, "givenName"), "name.givenName")?,
            family_name: string(get(name, "familyName"), "name.familyName")?,
        })),
        Some(_) => Err(ScimError::invalid_value("name must be an object")),
    }
}

/// A User's `emails`: an array of objects with a `value` each; none when absent.
fn emails(value: Option<&Value>) -> Result<Vec<proto::DirectoryEmail>, ScimError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(emails)) => emails
            .iter()
            .map(|email| {
                let Value::Object(email) = email else {
                    return Err(ScimError::invalid_value("emails must hold objects"));
                };
                Ok(proto::DirectoryEmail {
                    value: string(get(email, "value"), "emails.value")?
                        .ok_or_else(|| ScimError::invalid_value("emails.value is required"))?,
                    r#type: string(get(email, "type"), "emails.type")?,
                    primary: get(email, "primary")
                        .map(|p| boolean(p, "emails.primary"))
                        .transpose()?,
                })
            })
            .collect(),
        Some(_) => Err(ScimError::invalid_value("emails must be an array")),
    }
}

/// The enterprise extension's manager: `{"value": id}`, or the id alone
/// (as Entra ID sends it in a PATCH); empty for none.
pub fn manager(value: Option<&Value>) -> Result<Option<String>, ScimError> {
    match value {
        None => Ok(None),
        Some(Value::String(id)) => Ok((!id.is_empty()).then(|| id.clone())),
        Some(Value::Object(manager)) => {
            Ok(string(get(manager, "value"), "manager.value")?.filter(|id| !id.is_empty()))
        }
        Some(_) => Err(ScimError::invalid_value(
            "manager must be an object with a value",
        )),
    }
}
