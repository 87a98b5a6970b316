//! The route table: every `google.api.http` binding of the API's services,
//! read from the descriptor set, and the matching of a request's method and
//! path against it (path templates with variables and a `:verb` suffix).

use anyhow::{Context, bail};
use axum::http::Method;
use percent_encoding::percent_decode_str;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};
use tonic::codegen::http::uri::PathAndQuery;
use wowchat_users_api::google::api::{HttpRule, http_rule::Pattern};

/// The services the gateway exposes.
pub const SERVICES: &[&str] = &[
    "wowchat.users.v1.UserService",
    "wowchat.users.v1.RoleService",
    "wowchat.users.v1.AuthService",
    "wowchat.users.v1.DirectoryService",
    "wowchat.users.v1.JoinService",
];

/// Where the HTTP body goes in the request message.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body: every field not in the path comes from the query string.
    None,
    /// `body: "*"`: the body is the request message (less the path's fields).
    Whole,
    /// `body: "field"`: the body is that field; the rest from the query.
    Field(FieldDescriptor),
}

/// One segment of a path template.
#[derive(Debug, Clone)]
pub enum Segment {
    Literal(String),
    /// `{field.path}`: one path segment into that (string-like) field.
    Variable(Vec<FieldDescriptor>),
}

/// A path template such as `/v1/users/{user_id}:manage`.
#[derive(Debug, Clone)]
pub struct PathTemplate {
    /// As written in the proto.
    pub text: String,
    pub segments: Vec<Segment>,
    pub verb: Option<String>,
}

/// One HTTP binding of one RPC.
#[derive(Debug, Clone)]
pub struct Route {
    pub http_method: Method,
    pub template: PathTemplate,
    pub body: Body,
    /// `response_body`: the field of the response sent as the HTTP body.
    pub response_body: Option<FieldDescriptor>,
    pub method: MethodDescriptor,
    /// `/package.Service/Method`.
    pub grpc_path: PathAndQuery,
}

/// A route matched, with the path's variables (percent-decoded).
pub struct Matched<'a> {
    pub route: &'a Route,
    /// Its position in [`Routes::iter`].
    pub index: usize,
    pub variables: Vec<(&'a [FieldDescriptor], String)>,
}

/// Why no route answers a request.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// No template matches the path.
    NotFound,
    /// Templates match the path, with other methods.
    MethodNotAllowed(Vec<Method>),
}

/// Every route of the exposed services.
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// Reads the `google.api.http` options of every method of [`SERVICES`].
    pub fn from_pool(pool: &DescriptorPool) -> anyhow::Result<Routes> {
        let http = pool
            .get_extension_by_name("google.api.http")
            .context("the descriptor set lacks google.api.http")?;
        let mut routes = Vec::new();
        for service_name in SERVICES {
            let service = pool
                .get_service_by_name(service_name)
                .with_context(|| format!("the descriptor set lacks {service_name}"))?;
            for method in service.methods() {
                if method.is_client_streaming() || method.is_server_streaming() {
                    continue;
                }
                let options = method.options();
                if !options.has_extension(&http) {
                    continue;
                }
                let rule: HttpRule = options
                    .get_extension(&http)
                    .as_message()
                    .context("google.api.http is a message")?
                    .transcode_to()
                    .context("decoding google.api.http")?;
                let grpc_path = format!("/{}/{}", service.full_name(), method.name())
                    .parse::<PathAndQuery>()
                    .context("gRPC path")?;
                let mut bindings = vec![rule.clone()];
                bindings.extend(rule.additional_bindings.iter().cloned());
                for binding in bindings {
                    let route = Route::new(&binding, &method, grpc_path.clone())
                        .with_context(|| format!("route of {}", method.full_name()))?;
                    routes.push(route);
                }
            }
        }
        // Templates with a verb first: `/v1/users/{id}:checkPermission` must
        // not be read as `/v1/users/{id}` with an id ending in the verb.
        routes.sort_by_key(|route| route.template.verb.is_none());
        Ok(Routes { routes })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The route for `method` and the (still percent-encoded) `path`.
    pub fn find(&self, method: &Method, path: &str) -> Result<Matched<'_>, NoRoute> {
        let mut allowed = Vec::new();
        for (index, route) in self.routes.iter().enumerate() {
            let Some(variables) = route.template.matches(path) else {
                continue;
            };
            if route.http_method == *method {
                return Ok(Matched {
                    route,
                    index,
                    variables,
                });
            }
            if !allowed.contains(&route.http_method) {
                allowed.push(route.http_method.clone());
            }
        }
        if allowed.is_empty() {
            Err(NoRoute::NotFound)
        } else {
            Err(NoRoute::MethodNotAllowed(allowed))
        }
    }
}

impl Route {
    fn new(
        rule: &HttpRule,
        method: &MethodDescriptor,
        grpc_path: PathAndQuery,
    ) -> anyhow::Result<Route> {
        let (http_method, path) = match &rule.pattern {
            Some(Pattern::Get(path)) => (Method::GET, path),
            Some(Pattern::Put(path)) => (Method::PUT, path),
            Some(Pattern::Post(path)) => (Method::POST, path),
            Some(Pattern::Delete(path)) => (Method::DELETE, path),
            Some(Pattern::Patch(path)) => (Method::PATCH, path),
            Some(Pattern::Custom(custom)) => (
                Method::from_bytes(custom.kind.as_bytes()).context("custom HTTP method")?,
                &custom.path,
            ),
            None => bail!("google.api.http without a pattern"),
        };
        let input = method.input();
        let template = PathTemplate::parse(path, &input)?;
        let body = match rule.body.as_str() {
            "" => Body::None,
            "*" => Body::Whole,
            name => Body::Field(
                input
                    .get_field_by_name(name)
                    .with_context(|| format!("body field {name}"))?,
            ),
        };
        let response_body = match rule.response_body.as_str() {
            "" => None,
            name => Some(
                method
                    .output()
                    .get_field_by_name(name)
                    .with_context(|| format!("response_body field {name}"))?,
            ),
        };
        Ok(Route {
            http_method,
            template,
            body,
            response_body,
            method: method.clone(),
            grpc_path,
        })
    }
}

impl PathTemplate {
    /// Parses the subset of the template syntax a REST API uses: literal
    /// segments, `{field}` (or `{field=*}`) variables of one segment, and an
    /// optional `:verb` after the last segment.
    pub fn parse(text: &str, input: &MessageDescriptor) -> anyhow::Result<PathTemplate> {
        let Some(rest) = text.strip_prefix('/') else {
            bail!("template {text} does not start with /");
        };
        // The verb is after the last `:` that is outside braces and past the last `/`.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let last_brace = rest.rfind('}').map_or(0, |i| i + 1);
        let (path, verb) = match rest[last_slash.max(last_brace)..].rfind(':') {
            Some(offset) => {
                let at = last_slash.max(last_brace) + offset;
                (&rest[..at], Some(rest[at + 1..].to_owned()))
            }
            None => (rest, None),
        };
        let mut segments = Vec::new();
        for segment in path.split('/') {
            if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let (name, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                if pattern != "*" {
                    bail!("template {text}: only single-segment variables are supported");
                }
                segments.push(Segment::Variable(field_path(input, name)?));
            } else if segment.is_empty() || segment.contains(['{', '}', '*']) {
                bail!("template {text}: unsupported segment {segment:?}");
            } else {
                segments.push(Segment::Literal(segment.to_owned()));
            }
        }
        Ok(PathTemplate {
            text: text.to_owned(),
            segments,
            verb,
        })
    }

    /// The variables of `path` when it matches, percent-decoded.
    pub fn matches(&self, path: &str) -> Option<Vec<(&[FieldDescriptor], String)>> {
        let rest = path.strip_prefix('/')?;
        let rest = match &self.verb {
            Some(verb) => rest.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => rest,
        };
        let mut variables = Vec::new();
        let mut parts = rest.split('/');
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(literal) => {
                    if part != literal {
                        return None;
                    }
                }
                Segment::Variable(fields) => {
                    let value = percent_decode_str(part).decode_utf8().ok()?;
                    if value.is_empty() {
                        return None;
                    }
                    variables.push((fields.as_slice(), value.into_owned()));
                }
            }
        }
        if parts.next().is_some() {
            return None;
        }
        Some(variables)
    }

    /// The template with its variables as OpenAPI writes them: `{user_id}`.
    pub fn openapi_path(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            match segment {
                Segment::Literal(literal) => out.push_str(literal),
                Segment::Variable(fields) => {
                    out.push('{');
                    out.push_str(&variable_name(fields));
                    out.push('}');
                }
            }
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        out
    }

    /// The fields the path sets.
    pub fn variables(&self) -> impl Iterator<Item = &[FieldDescriptor]> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Variable(fields) => Some(fields.as_slice()),
            Segment::Literal(_) => None,
        })
    }
}

/// A variable's name as the template writes it: `user_id`, `a.b`.
pub fn variable_name(fields: &[FieldDescriptor]) -> String {
    fields
        .iter()
        .map(|field| field.name())
        .collect::<Vec<_>>()
        .join(".")
}

/// The fields along `a.b.c` from `message`, each but the last a message.
pub fn field_path(
    message: &MessageDescriptor,
    dotted: &str,
) -> anyhow::Result<Vec<FieldDescriptor>> {
    let mut current = message.clone();
    let mut fields = Vec::new();
    let mut names = dotted.split('.').peekable();
    while let Some(name) = names.next() {
        let field = current
            .get_field_by_name(name)
            .or_else(|| current.get_field_by_json_name(name))
            .with_context(|| format!("{} has no field {name}", current.full_name()))?;
        if names.peek().is_some() {
            match field.kind() {
                Kind::Message(inner) if !field.is_list() && !field.is_map() => current = inner,
                _ => bail!("{dotted}: {name} is not a message"),
            }
        }
        fields.push(field);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn routes() -> Routes {
        let pool = DescriptorPool::decode(wowchat_users_api::FILE_DESCRIPTOR_SET).unwrap();
        Routes::from_pool(&pool).unwrap()
    }

    fn rpc(routes: &Routes, method: Method, path: &str) -> Result<(String, Vec<String>), NoRoute> {
        routes.find(&method, path).map(|m| {
            (
                m.route.method.name().to_owned(),
                m.variables.into_iter().map(|(_, v)| v).collect(),
            )
        })
    }

    #[test]
    fn a_verb_after_a_variable_selects_its_own_route() {
        let routes = routes();
        assert_eq!(
            rpc(&routes, Method::POST, "/v1/users/abc:manage").unwrap(),
            ("ManageUser".into(), vec!["abc".into()])
        );
        assert_eq!(
            rpc(&routes, Method::GET, "/v1/users/abc:checkPermission").unwrap(),
            ("CheckPermission".into(), vec!["abc".into()])
        );
        assert_eq!(
            rpc(&routes, Method::GET, "/v1/users/a%20b").unwrap(),
            ("GetUser".into(), vec!["a b".into()])
        );
        assert_eq!(
            rpc(&routes, Method::POST, "/v1/auth:signIn").unwrap().0,
            "SignIn"
        );
        assert_eq!(
            rpc(&routes, Method::POST, "/v1/invitations:accept")
                .unwrap()
                .0,
            "AcceptInvitation"
        );
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        let routes = routes();
        assert_eq!(
            rpc(&routes, Method::GET, "/v1/nothing"),
            Err(NoRoute::NotFound)
        );
        assert_eq!(
            rpc(&routes, Method::GET, "/v1/users/"),
            Err(NoRoute::NotFound)
        );
        assert_eq!(
            rpc(&routes, Method::GET, "/v1/users/a/b"),
            Err(NoRoute::NotFound)
        );
        assert_eq!(
            rpc(&routes, Method::DELETE, "/v1/users"),
            Err(NoRoute::MethodNotAllowed(vec![Method::GET]))
        );
    }

    #[test]
    fn every_annotated_rpc_has_a_route() {
        let routes = routes();
        let names: Vec<_> = routes.iter().map(|r| r.method.name().to_owned()).collect();
        for name in [
            "InviteUser",
            "UpdateWorkspaceSettings",
            "SignIn",
            "DeleteRole",
            "ListActivity",
        ] {
            assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
        }
        let settings = routes
            .iter()
            .find(|r| r.method.name() == "UpdateWorkspaceSettings")
            .unwrap();
        assert!(matches!(&settings.body, Body::Field(f) if f.name() == "settings"));
    }
}
