//! The OpenAPI 3.1 document of the gateway's routes, generated from the
//! same descriptors (and their comments) the gateway routes with: paths,
//! parameters, request and response schemas in the proto3 JSON mapping,
//! enums by name, the bearer scheme, and `google.rpc.Status` for errors.
//! `wowchat-gateway openapi` prints it; `docs/openapi.json` is that output,
//! checked in and kept current by CI.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use prost_types::FileDescriptorProto;
use serde_json::{Map, Value as Json, json};

use crate::{
    routes::{Body, Route, Routes, variable_name},
    transcode::SPARSE_RESPONSES,
};

/// RPCs that take no bearer token: the token of an invitation or a join
/// request, a link's secret or a password is their credential, or a
/// stranger asks to join.
pub const PUBLIC_METHODS: &[&str] = &[
    "AcceptInvitation",
    "ConfirmJoinRequest",
    "CreateJoinRequest",
    "GetJwks",
    "JoinByEmail",
    "PreviewInvitation",
    "PreviewInviteLink",
    "RedeemInviteLink",
    "SignIn",
    "Unsubscribe",
];

/// The document as pretty JSON with a final newline, as checked in.
pub fn document_json(pool: &DescriptorPool, routes: &Routes) -> anyhow::Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(&document(pool, routes))?;
    out.push(b'\n');
    Ok(out)
}

/// The OpenAPI document of `routes`.
pub fn document(pool: &DescriptorPool, routes: &Routes) -> Json {
    let mut schemas = Schemas::new(pool, routes);
    let mut paths: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    let mut tags = BTreeSet::new();
    for route in routes.iter() {
        let service = route.method.parent_service();
        tags.insert(service.name().to_owned());
        let operation = operation(route, &mut schemas);
        paths
            .entry(route.template.openapi_path())
            .or_default()
            .insert(route.http_method.as_str().to_ascii_lowercase(), operation);
    }
    if let Some(status) = pool.get_message_by_name("google.rpc.Status") {
        schemas.message(&status);
    }
    // The reasons are part of the contract: listed, each with its meaning.
    if let Some(reasons) = pool.get_enum_by_name("wowchat.users.v1.ErrorReason") {
        schemas.enumeration(&reasons);
    }
    add_examples(&mut paths, &schemas.done);
    let tags = service_tags(routes, tags);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "WowChat Users",
            "version": "v1",
            "description": "The REST mapping of the WowChat Users gRPC API (`wowchat.users.v1`), \
                transcoded by `wowchat-gateway` from the `google.api.http` annotations. \
                Bodies and responses use the proto3 JSON mapping: lowerCamelCase names \
                (the proto's names are accepted too), enums by name, Timestamps as \
                RFC 3339 strings, Durations as strings such as \"3600s\", 64-bit integers \
                as strings. Every error is a google.rpc.Status with decoded details; \
                the HTTP status follows the gRPC code (429 carries Retry-After).",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [
            {
                "url": "http://127.0.0.1:8080",
                "description": "`wowchat-users standalone` on this machine",
            },
            {
                "url": "https://{gateway}",
                "description": "A deployed gateway (WOWCHAT_GATEWAY_PUBLIC_URL)",
                "variables": {"gateway": {"default": "users.example.com"}},
            },
        ],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas.done,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from `POST /v1/auth:signIn` (or `wowchat-users token`).",
                }
            },
            "responses": {
                "Error": {
                    "description": "The call failed: a google.rpc.Status whose details say why: \
                        a google.rpc.ErrorInfo whose domain is `users.wowchat.dev` and whose \
                        reason is one of `wowchat.users.v1.ErrorReason` (see its schema), \
                        BadRequest field violations, RetryInfo.",
                    "headers": {
                        "Retry-After": {
                            "description": "With 429: seconds until a retry may succeed.",
                            "schema": {"type": "integer", "minimum": 0},
                        }
                    },
                    "content": {"application/json": {"schema": reference("google.rpc.Status")}},
                }
            },
        },
        "security": [{"bearer": []}],
    })
}

/// Every request body and answer gets an example, made from its schema.
fn add_examples(paths: &mut BTreeMap<String, Map<String, Json>>, done: &BTreeMap<String, Json>) {
    for operation in paths.values_mut().flat_map(|methods| methods.values_mut()) {
        for pointer in [
            "/requestBody/content/application~1json",
            "/responses/200/content/application~1json",
        ] {
            if let Some(media) = operation.pointer_mut(pointer) {
                let whole = pointer.starts_with("/responses");
                let example = example(&media["schema"], done, whole, 0);
                media["example"] = example;
            }
        }
    }
}

/// A tag per service, described by the service's comment.
fn service_tags(routes: &Routes, names: BTreeSet<String>) -> Vec<Json> {
    names
        .into_iter()
        .filter_map(|name| {
            let service = routes
                .iter()
                .map(|r| r.method.parent_service())
                .find(|s| s.name() == name)?;
            let description = comment(
                service.parent_file().file_descriptor_proto(),
                service.path(),
            );
            Some(json!({"name": name, "description": description}))
        })
        .collect()
}

fn operation(route: &Route, schemas: &mut Schemas) -> Json {
    let method = &route.method;
    let input = method.input();
    let file = method.parent_file();
    let description = comment(file.file_descriptor_proto(), method.path());
    let summary = first_sentence(&description);
    let path_fields: Vec<&[FieldDescriptor]> = route.template.variables().collect();
    let mut parameters = path_parameters(&path_fields, schemas);
    let path_top: Vec<&FieldDescriptor> = path_fields.iter().filter_map(|f| f.first()).collect();
    if !matches!(route.body, Body::Whole) {
        parameters.extend(query_parameters(route, &path_top, schemas));
    }
    let request_body = match &route.body {
        Body::None => None,
        Body::Whole => Some(schemas.message_without(&input, &path_top)),
        Body::Field(field) => Some(schemas.field(field)),
    };
    let response_schema = match &route.response_body {
        Some(field) => schemas.field(field),
        None => schemas.message(&method.output()),
    };
    let mut operation = json!({
        "operationId": format!("{}_{}", method.parent_service().name(), method.name()),
        "tags": [method.parent_service().name()],
        "summary": summary,
        "description": description,
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": response_schema}},
            },
            "default": {"$ref": "#/components/responses/Error"},
        },
    });
    if let Some(schema) = request_body {
        operation["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": schema}},
        });
    }
    if PUBLIC_METHODS.contains(&method.name()) {
        operation["security"] = json!([]);
    }
    operation
}

/// The path's variables, each named by its field path.
fn path_parameters(path_fields: &[&[FieldDescriptor]], schemas: &mut Schemas) -> Vec<Json> {
    let mut parameters = Vec::new();
    for fields in path_fields {
        let Some(field) = fields.last() else { continue };
        parameters.push(json!({
            "name": variable_name(fields),
            "in": "path",
            "required": true,
            "description": field_comment(field),
            "schema": schemas.scalar_or_field(field),
        }));
    }
    parameters
}

/// The input's fields a query string carries: those neither in the path
/// (`path_top`) nor the body, of a type a query can hold.
fn query_parameters(
    route: &Route,
    path_top: &[&FieldDescriptor],
    schemas: &mut Schemas,
) -> Vec<Json> {
    let mut parameters = Vec::new();
    for field in route.method.input().fields() {
        if path_top.contains(&&field)
            || matches!(&route.body, Body::Field(body) if *body == field)
            || !query_friendly(&field)
        {
            continue;
        }
        let mut parameter = json!({
            "name": field.json_name(),
            "in": "query",
            "required": false,
            "description": field_comment(&field),
            "schema": schemas.field(&field),
        });
        if field.is_list() {
            parameter["explode"] = json!(true);
            parameter["style"] = json!("form");
        }
        parameters.push(parameter);
    }
    parameters
}

/// A value `schema` accepts, as documentation: every property of an answer
/// (`whole`), the required ones of a request; ids and times in their
/// formats, an enum's first real value, one item per list.
fn example(schema: &Json, done: &BTreeMap<String, Json>, whole: bool, depth: usize) -> Json {
    if depth > 6 {
        return json!({});
    }
    if let Some(name) = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        return done
            .get(name)
            .map(|target| example(target, done, whole, depth + 1))
            .unwrap_or(json!({}));
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .find(|v| !v.as_str().is_some_and(|s| s.ends_with("_UNSPECIFIED")))
            .or(values.first())
            .cloned()
            .unwrap_or(Json::Null);
    }
    match schema["type"].as_str() {
        Some("object") => {
            let properties = schema["properties"].as_object();
            let wanted: Vec<&str> = match schema["required"].as_array() {
                Some(required) => required.iter().filter_map(Json::as_str).collect(),
                None => Vec::new(),
            };
            let mut out = Map::new();
            for (name, property) in properties.into_iter().flatten() {
                if whole || wanted.contains(&name.as_str()) {
                    out.insert(name.clone(), example(property, done, whole, depth + 1));
                }
            }
            Json::Object(out)
        }
        Some("array") => json!([example(&schema["items"], done, whole, depth + 1)]),
        Some("boolean") => json!(false),
        Some("integer") => json!(1),
        Some("number") => json!(1.0),
        Some("string") => match schema["format"].as_str() {
            Some("uuid") => json!("0196a7a0-0000-7000-8000-000000000001"),
            Some("email") => json!("alice@example.com"),
            Some("date-time") => json!("2026-12-07T09:30:00Z"),
            Some("int64") => json!("1"),
            // A Duration: digits then `s`.
            _ if schema["pattern"]
                .as_str()
                .is_some_and(|p| p.ends_with("s$")) =>
            {
                json!("3600s")
            }
            _ => json!("string"),
        },
        _ => json!({}),
    }
}

/// The first sentence of a comment, its lines joined: up to the first
/// period that ends a word (`e.g.` and the like aside).
fn first_sentence(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = joined.len();
    for (at, _) in joined.match_indices(". ") {
        let word = joined[..at].rsplit(' ').next().unwrap_or_default();
        if !matches!(word, "e.g" | "i.e" | "etc") {
            end = at + 1;
            break;
        }
    }
    joined[..end].trim().to_owned()
}

/// AIP-203's field behaviors (`google.api.field_behavior`), as numbered in
/// google/api/field_behavior.proto.
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;

fn behaviors(field: &FieldDescriptor) -> Vec<i32> {
    let Some(extension) = field
        .parent_pool()
        .get_extension_by_name("google.api.field_behavior")
    else {
        return Vec::new();
    };
    let options = field.options();
    if !options.has_extension(&extension) {
        return Vec::new();
    }
    match options.get_extension(&extension).as_ref() {
        prost_reflect::Value::List(values) => {
            values.iter().filter_map(|v| v.as_enum_number()).collect()
        }
        _ => Vec::new(),
    }
}

/// Whether the JSON mapping writes a field in every response (no presence:
/// not a message, not `optional`, not a oneof member; see
/// `transcode::response_json`).
fn always_written(field: &FieldDescriptor) -> bool {
    !field.supports_presence()
}

/// The format a string field's values have, by its name: emails are
/// emails; ids are UUIDs where one is always there (a resource's own id, its
/// workspace, a list of ids, an id a request requires), not where the
/// JSON mapping writes `""` for none (`targetUserId` of an entry about an
/// invitation); a request id or a directory's externalId is no UUID.
fn string_format(field: &FieldDescriptor, behaviors: &[i32]) -> Option<&'static str> {
    if !matches!(field.kind(), Kind::String) {
        return None;
    }
    let name = field.name();
    if name == "email" || name.ends_with("_email") {
        return Some("email");
    }
    let always_an_id = matches!(name, "id" | "workspace_id")
        || name.ends_with("_ids")
        || (name.ends_with("_id") && behaviors.contains(&REQUIRED));
    (always_an_id && !matches!(name, "request_id" | "external_id")).then_some("uuid")
}

/// The messages reachable from `roots` through message fields.
fn reachable(roots: impl IntoIterator<Item = MessageDescriptor>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<MessageDescriptor> = roots.into_iter().collect();
    while let Some(message) = stack.pop() {
        if !seen.insert(message.full_name().to_owned()) {
            continue;
        }
        for field in message.fields() {
            if let Kind::Message(inner) = field.kind() {
                stack.push(inner);
            }
        }
    }
    seen
}

/// Whether a field can be sent as a query parameter: a scalar, an enum,
/// a string-like well-known type, or a list of those.
fn query_friendly(field: &FieldDescriptor) -> bool {
    if field.is_map() {
        return false;
    }
    match field.kind() {
        Kind::Message(message) => matches!(
            message.full_name(),
            "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
        ),
        _ => true,
    }
}

fn reference(full_name: &str) -> Json {
    json!({"$ref": format!("#/components/schemas/{full_name}")})
}

/// The component schemas, each message and enum once.
struct Schemas {
    done: BTreeMap<String, Json>,
    /// Messages a request may carry.
    in_requests: BTreeSet<String>,
    /// Messages a response may carry.
    in_responses: BTreeSet<String>,
    /// Messages a response writes every field of (`transcode::response_json`).
    in_dense_responses: BTreeSet<String>,
}

impl Schemas {
    fn new(pool: &DescriptorPool, routes: &Routes) -> Self {
        let status = pool.get_message_by_name("google.rpc.Status");
        Schemas {
            done: BTreeMap::new(),
            in_requests: reachable(routes.iter().map(|r| r.method.input())),
            in_responses: reachable(
                routes
                    .iter()
                    .map(|r| r.method.output())
                    .chain(status.clone()),
            ),
            in_dense_responses: reachable(
                routes
                    .iter()
                    .map(|r| r.method.output())
                    .filter(|output| !SPARSE_RESPONSES.contains(&output.full_name()))
                    .chain(status),
            ),
        }
    }

    /// A `$ref` to `message`'s schema (or the inline schema of a well-known type).
    fn message(&mut self, message: &MessageDescriptor) -> Json {
        if let Some(known) = well_known(message.full_name()) {
            return known;
        }
        let name = message.full_name().to_owned();
        if !self.done.contains_key(&name) {
            // Placeholder first: messages may refer to themselves.
            self.done.insert(name.clone(), Json::Null);
            let schema = self.object(message, &[]);
            self.done.insert(name.clone(), schema);
        }
        reference(&name)
    }

    /// `message` less the fields the path sets, inline.
    fn message_without(&mut self, message: &MessageDescriptor, skip: &[&FieldDescriptor]) -> Json {
        if skip.is_empty() {
            return self.message(message);
        }
        self.object(message, skip)
    }

    /// A message's schema. A message only requests carry is strict (no
    /// unknown property); one a response may carry is open, so a client
    /// generated today still reads a response that gains a field. Required:
    /// what AIP-203 marks REQUIRED, and in a message only responses carry,
    /// every field the JSON mapping always writes. OUTPUT_ONLY is readOnly.
    fn object(&mut self, message: &MessageDescriptor, skip: &[&FieldDescriptor]) -> Json {
        let name = message.full_name();
        let response_only =
            !self.in_requests.contains(name) && self.in_dense_responses.contains(name);
        let request_only = !self.in_responses.contains(name);
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            if skip.contains(&&field) {
                continue;
            }
            let behaviors = behaviors(&field);
            let mut schema = self.field(&field);
            if let Some(format) = string_format(&field, &behaviors) {
                if field.is_list() {
                    schema["items"]["format"] = json!(format);
                } else {
                    schema["format"] = json!(format);
                }
            }
            if behaviors.contains(&OUTPUT_ONLY) {
                schema["readOnly"] = json!(true);
            }
            let description = field_comment(&field);
            if !description.is_empty() {
                schema = with_description(schema, description);
            }
            if behaviors.contains(&REQUIRED) || (response_only && always_written(&field)) {
                required.push(json!(field.json_name()));
            }
            properties.insert(field.json_name().to_owned(), schema);
        }
        let mut schema = json!({
            "type": "object",
            "properties": properties,
        });
        if request_only {
            schema["additionalProperties"] = json!(false);
        }
        if !required.is_empty() {
            schema["required"] = Json::Array(required);
        }
        let description = comment(message.parent_file_descriptor_proto(), message.path());
        if !description.is_empty() {
            schema["description"] = json!(description);
        }
        // At most one member of each (real) oneof.
        let oneofs: Vec<Json> = message
            .oneofs()
            .filter(|oneof| !oneof.is_synthetic())
            .map(|oneof| {
                let names: Vec<Json> = oneof
                    .fields()
                    .map(|f| json!({"required": [f.json_name()]}))
                    .collect();
                json!({"not": {"anyOf": pairs(&names)}})
            })
            .filter(|rule| {
                rule["not"]["anyOf"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            })
            .collect();
        if !oneofs.is_empty() {
            schema["allOf"] = Json::Array(oneofs);
        }
        schema
    }

    fn field(&mut self, field: &FieldDescriptor) -> Json {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                return json!({"type": "object"});
            };
            let value = entry
                .get_field_by_name("value")
                .map(|value| self.scalar_or_field(&value))
                .unwrap_or_else(|| json!({}));
            return json!({"type": "object", "additionalProperties": value});
        }
        let item = self.scalar_or_field(field);
        if field.is_list() {
            json!({"type": "array", "items": item})
        } else {
            item
        }
    }

    /// The schema of one value of `field`.
    fn scalar_or_field(&mut self, field: &FieldDescriptor) -> Json {
        match field.kind() {
            Kind::Message(message) => self.message(&message),
            Kind::Enum(enumeration) => self.enumeration(&enumeration),
            kind => scalar(&kind),
        }
    }

    fn enumeration(&mut self, enumeration: &EnumDescriptor) -> Json {
        let name = enumeration.full_name().to_owned();
        if !self.done.contains_key(&name) {
            let file = enumeration.parent_file_descriptor_proto();
            let values: Vec<Json> = enumeration.values().map(|v| json!(v.name())).collect();
            let described: Vec<String> = enumeration
                .values()
                .map(|v| format!("- `{}`: {}", v.name(), comment(file, v.path())))
                .collect();
            let mut description = comment(file, enumeration.path());
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&described.join("\n"));
            self.done.insert(
                name.clone(),
                json!({"type": "string", "enum": values, "description": description}),
            );
        }
        reference(&name)
    }
}

/// Every pair of `items`, each pair as `{"allOf": [a, b]}`.
fn pairs(items: &[Json]) -> Vec<Json> {
    let mut out = Vec::new();
    for (i, a) in items.iter().enumerate() {
        for b in items.iter().skip(i + 1) {
            out.push(json!({"allOf": [a, b]}));
        }
    }
    out
}

fn with_description(schema: Json, description: String) -> Json {
    if schema.get("$ref").is_some() {
        // 3.1 allows siblings of $ref.
        let mut schema = schema;
        schema["description"] = json!(description);
        return schema;
    }
    let mut schema = schema;
    if schema.get("description").is_none() {
        schema["description"] = json!(description);
    }
    schema
}

fn scalar(kind: &Kind) -> Json {
    match kind {
        Kind::Bool => json!({"type": "boolean"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32", "minimum": i32::MIN, "maximum": i32::MAX})
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX})
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"})
        }
        Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "pattern": "^[0-9]+$"}),
        Kind::Float => json!({"type": "number", "format": "float"}),
        Kind::Double => json!({"type": "number", "format": "double"}),
        Kind::Message(_) | Kind::Enum(_) => json!({}),
    }
}

/// The JSON mapping's own shapes of the well-known types.
fn well_known(full_name: &str) -> Option<Json> {
    Some(match full_name {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => json!({
            "type": "string",
            "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
            "description": "A duration in seconds with an `s` suffix, e.g. \"3600s\".",
        }),
        "google.protobuf.FieldMask" => json!({"type": "string"}),
        "google.protobuf.Empty" => json!({"type": "object", "additionalProperties": false}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": true,
        }),
        "google.protobuf.Struct" => json!({"type": "object"}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array"}),
        _ => return None,
    })
}

fn field_comment(field: &FieldDescriptor) -> String {
    comment(field.parent_file().file_descriptor_proto(), field.path())
}

/// The leading comment of the element at `path` in `file`, trimmed.
fn comment(file: &FileDescriptorProto, path: &[i32]) -> String {
    let Some(info) = &file.source_code_info else {
        return String::new();
    };
    info.location
        .iter()
        .find(|location| location.path == path)
        .and_then(|location| location.leading_comments.as_deref())
        .map(|text| {
            text.lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_document_has_every_route_with_comments_and_the_error_schema() {
        let pool = DescriptorPool::decode(wowchat_users_api::FILE_DESCRIPTOR_SET).unwrap();
        let routes = Routes::from_pool(&pool).unwrap();
        let doc = document(&pool, &routes);
        let manage = &doc["paths"]["/v1/users/{user_id}:manage"]["post"];
        assert_eq!(manage["operationId"], "UserService_ManageUser");
        assert_eq!(manage["parameters"][0]["in"], "path");
        assert!(
            manage["requestBody"]["content"]["application/json"]["schema"]["properties"]
                .get("userId")
                .is_none(),
            "the path's field is not in the body"
        );
        let list = &doc["paths"]["/v1/users"]["get"];
        let names: Vec<&str> = list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"pageToken") && names.contains(&"activeSince"),
            "{names:?}"
        );
        assert!(
            doc["components"]["schemas"]["wowchat.users.v1.User"]["properties"]["email"]
                ["description"]
                .as_str()
                .unwrap()
                .contains("email"),
        );
        assert!(doc["components"]["schemas"]["google.rpc.Status"].is_object());
        assert_eq!(
            doc["paths"]["/v1/auth:signIn"]["post"]["security"],
            json!([])
        );
    }
}
