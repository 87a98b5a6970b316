//! HTTP to protobuf and back with the proto3 JSON mapping: the request
//! message from the path's variables, the query string and the body; the
//! response message to JSON (lowerCamelCase names, enums by name, Timestamps
//! and Durations as strings, 64-bit integers as strings).

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, ReflectMessage, SerializeOptions,
    Value,
};
use serde_json::{Map, Value as Json};

use crate::routes::{Body, Matched, field_path};

/// Input the gateway refuses before any call: what is wrong and where.
#[derive(Debug)]
pub struct BadInput {
    /// The field or parameter, as the caller wrote it ("body" for the body as a whole).
    pub field: String,
    pub description: String,
}

impl BadInput {
    fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        BadInput {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// The request message of `matched` from the query string and body.
pub fn request_message(
    matched: &Matched<'_>,
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, BadInput> {
    let route = matched.route;
    let input = route.method.input();
    let mut root = Map::new();
    let body_json = || -> Result<Option<Json>, BadInput> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice::<Json>(body)
            .map(Some)
            .map_err(|e| BadInput::new("body", format!("is not valid JSON: {e}")))
    };
    match &route.body {
        Body::None => {}
        Body::Whole => match body_json()? {
            None => {}
            Some(Json::Object(object)) => root = object,
            Some(_) => return Err(BadInput::new("body", "must be a JSON object")),
        },
        Body::Field(field) => {
            if let Some(value) = body_json()? {
                root.insert(field.name().to_owned(), value);
            }
        }
    }
    if !matches!(route.body, Body::Whole) {
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let fields = field_path(&input, &name)
                .map_err(|_| BadInput::new(&*name, "is not a parameter of this call"))?;
            if fields.iter().any(|f| bound_elsewhere(matched, f)) {
                return Err(BadInput::new(
                    &*name,
                    "is set by the path or the body, not the query",
                ));
            }
            let json = scalar(fields.last(), &value).map_err(|e| BadInput::new(&*name, e))?;
            insert(&mut root, &fields, json, true);
        }
    }
    for (fields, value) in &matched.variables {
        let json = scalar(fields.last(), value)
            .map_err(|e| BadInput::new(crate::routes::variable_name(fields), e))?;
        insert(&mut root, fields, json, false);
    }
    DynamicMessage::deserialize_with_options(
        input,
        Json::Object(root),
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| BadInput::new("body", e.to_string()))
}

/// Whether `field` (a top-level field) is taken by the route's path or body.
fn bound_elsewhere(matched: &Matched<'_>, field: &FieldDescriptor) -> bool {
    let in_path = matched
        .route
        .template
        .variables()
        .any(|fields| fields.first() == Some(field));
    let in_body = matches!(&matched.route.body, Body::Field(body) if body == field);
    in_path || in_body
}

/// A query or path value as the JSON value the proto3 mapping reads for
/// the field's kind.
fn scalar(field: Option<&FieldDescriptor>, text: &str) -> Result<Json, String> {
    let Some(field) = field else {
        return Err("names no field".into());
    };
    if field.is_map() {
        return Err("is a map: send it in a body".into());
    }
    Ok(match field.kind() {
        Kind::Bool => match text {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => return Err("must be true or false".into()),
        },
        Kind::Enum(_) => match text.parse::<i64>() {
            Ok(number) => Json::from(number),
            Err(_) => Json::String(text.to_owned()),
        },
        Kind::Message(message) => match message.full_name() {
            "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value" => Json::String(text.to_owned()),
            "google.protobuf.BoolValue" => return scalar_bool(text),
            "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.FloatValue"
            | "google.protobuf.DoubleValue" => Json::String(text.to_owned()),
            _ => return Err("is a message: send it in a body".into()),
        },
        Kind::Int32
        | Kind::Sint32
        | Kind::Sfixed32
        | Kind::Int64
        | Kind::Sint64
        | Kind::Sfixed64 => {
            text.parse::<i64>().map_err(|_| "must be an integer")?;
            Json::String(text.to_owned())
        }
        Kind::Uint32 | Kind::Fixed32 | Kind::Uint64 | Kind::Fixed64 => {
            text.parse::<u64>()
                .map_err(|_| "must be a non-negative integer")?;
            Json::String(text.to_owned())
        }
        Kind::Float | Kind::Double => {
            text.parse::<f64>().map_err(|_| "must be a number")?;
            Json::String(text.to_owned())
        }
        // Numbers as strings: the proto3 JSON mapping reads both and checks the range.
        Kind::String | Kind::Bytes => Json::String(text.to_owned()),
    })
}

fn scalar_bool(text: &str) -> Result<Json, String> {
    match text {
        "true" => Ok(Json::Bool(true)),
        "false" => Ok(Json::Bool(false)),
        _ => Err("must be true or false".into()),
    }
}

/// Sets `value` at `fields` in `root`, creating the objects on the way.
/// A repeated field collects (`append`), anything else is replaced; the
/// other spelling of each name (lowerCamelCase or as in the proto) is
/// dropped so the value set here is the one read.
fn insert(root: &mut Map<String, Json>, fields: &[FieldDescriptor], value: Json, append: bool) {
    let Some((last, parents)) = fields.split_last() else {
        return;
    };
    let mut object = root;
    for parent in parents {
        if parent.json_name() != parent.name()
            && let Some(moved) = object.remove(parent.json_name())
        {
            object.entry(parent.name().to_owned()).or_insert(moved);
        }
        let entry = object
            .entry(parent.name().to_owned())
            .or_insert_with(|| Json::Object(Map::new()));
        if !entry.is_object() {
            *entry = Json::Object(Map::new());
        }
        let Json::Object(inner) = entry else {
            return;
        };
        object = inner;
    }
    if last.json_name() != last.name() {
        object.remove(last.json_name());
    }
    if last.is_list() && append {
        let entry = object
            .entry(last.name().to_owned())
            .or_insert_with(|| Json::Array(Vec::new()));
        if let Json::Array(items) = entry {
            items.push(value);
        } else {
            *entry = Json::Array(vec![value]);
        }
    } else if last.is_list() {
        object.insert(last.name().to_owned(), Json::Array(vec![value]));
    } else {
        object.insert(last.name().to_owned(), value);
    }
}

/// Responses in a standard's own shape, where a member is absent rather
/// than empty: a JSON Web Key Set (RFC 7517).
pub const SPARSE_RESPONSES: &[&str] = &["wowchat.users.v1.GetJwksResponse"];

/// The proto3 JSON of `message`, or of its `response_body` field. Every
/// field without presence is written, at its default too (`""`, `0`, `[]`),
/// so a response's shape is fixed and the OpenAPI document can list those
/// fields as required; unset messages and `optional` fields stay out (and,
/// in [`SPARSE_RESPONSES`], fields at their defaults).
pub fn response_json(
    message: &DynamicMessage,
    response_body: Option<&FieldDescriptor>,
) -> Result<Vec<u8>, String> {
    let sparse = SPARSE_RESPONSES.contains(&message.descriptor().full_name());
    let options = SerializeOptions::new().skip_default_fields(sparse);
    let mut out = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::new(&mut out);
    match response_body {
        None => message
            .serialize_with_options(&mut serializer, &options)
            .map_err(|e| e.to_string())?,
        Some(field) => match message.get_field(field).as_ref() {
            Value::Message(inner) => inner
                .serialize_with_options(&mut serializer, &options)
                .map_err(|e| e.to_string())?,
            other => {
                // A scalar response body: its JSON through a one-field wrapper.
                let mut wrapper = DynamicMessage::new(message.descriptor());
                wrapper.set_field(field, other.clone());
                let mut whole = Vec::new();
                wrapper
                    .serialize_with_options(&mut serde_json::Serializer::new(&mut whole), &options)
                    .map_err(|e| e.to_string())?;
                let parsed: Json = serde_json::from_slice(&whole).map_err(|e| e.to_string())?;
                let inner = parsed.get(field.json_name()).cloned().unwrap_or(Json::Null);
                return serde_json::to_vec(&inner).map_err(|e| e.to_string());
            }
        },
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::Method;
    use prost_reflect::DescriptorPool;

    use super::*;
    use crate::routes::Routes;

    fn with_route<T>(method: Method, path: &str, f: impl FnOnce(&Matched<'_>) -> T) -> T {
        let pool = DescriptorPool::decode(wowchat_users_api::FILE_DESCRIPTOR_SET).unwrap();
        let routes = Routes::from_pool(&pool).unwrap();
        let matched = routes.find(&method, path).ok().unwrap();
        f(&matched)
    }

    /// The fields a request set, as JSON.
    fn json(message: &DynamicMessage) -> Json {
        let mut out = Vec::new();
        message
            .serialize_with_options(
                &mut serde_json::Serializer::new(&mut out),
                &SerializeOptions::new(),
            )
            .unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn query_parameters_fill_filters_by_either_spelling() {
        let message = with_route(Method::GET, "/v1/users", |m| {
            request_message(
                m,
                Some("pageSize=2&page_token=abc&status=USER_STATUS_ACTIVE&activeSince=2026-01-01T00:00:00Z&reporting_to_user_id=x"),
                b"",
            )
            .unwrap()
        });
        assert_eq!(
            json(&message),
            serde_json::json!({
                "pageSize": 2, "pageToken": "abc", "status": "USER_STATUS_ACTIVE",
                "activeSince": "2026-01-01T00:00:00Z", "reportingToUserId": "x"
            })
        );
    }

    #[test]
    fn the_path_wins_over_the_body_and_either_spelling_is_read() {
        let message = with_route(Method::POST, "/v1/users/from-path:manage", |m| {
            request_message(
                m,
                None,
                br#"{"userId":"from-body","change_role":{"role":"agent"}}"#,
            )
            .unwrap()
        });
        assert_eq!(
            json(&message),
            serde_json::json!({"userId": "from-path", "changeRole": {"role": "agent"}})
        );
    }

    #[test]
    fn a_named_body_fills_its_field() {
        let message = with_route(Method::PUT, "/v1/workspace/settings", |m| {
            request_message(m, None, br#"{"seatLimit":5}"#).unwrap()
        });
        assert_eq!(
            json(&message),
            serde_json::json!({"settings": {"seatLimit": 5}})
        );
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        let error = with_route(Method::GET, "/v1/users", |m| {
            request_message(m, Some("nope=1"), b"").unwrap_err()
        });
        assert_eq!(error.field, "nope");
        let error = with_route(Method::GET, "/v1/users", |m| {
            request_message(m, Some("pageSize=many"), b"").unwrap_err()
        });
        assert_eq!(
            (error.field.as_str(), error.description.as_str()),
            ("pageSize", "must be an integer")
        );
        let error = with_route(Method::POST, "/v1/invitations", |m| {
            request_message(m, None, b"[1]").unwrap_err()
        });
        assert_eq!(error.description, "must be a JSON object");
        let error = with_route(Method::POST, "/v1/invitations", |m| {
            request_message(m, None, br#"{"email": 5}"#).unwrap_err()
        });
        assert_eq!(error.field, "body");
        let error = with_route(Method::POST, "/v1/invitations", |m| {
            request_message(m, None, br#"{"unknown": 5}"#).unwrap_err()
        });
        assert!(error.description.contains("unknown"), "{error:?}");
    }
}
