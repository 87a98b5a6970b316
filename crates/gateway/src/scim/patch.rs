//! SCIM PATCH (RFC 7644 §3.5.2) on a resource's JSON: `add`, `replace` and
//! `remove`, with attribute paths, sub-attributes, value filters and no
//! path, and the way Microsoft Entra ID writes them (`"Replace"`, dotted
//! keys in a path-less value, members removed by a value list). The patched
//! JSON then goes to the service whole, as a PUT's body would.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

use super::{ENTERPRISE_SCHEMA, USER_SCHEMA, errors::ScimError, user::get};

/// Most operations one PATCH holds.
const MAX_OPERATIONS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Applies the PatchOp `body` to `resource`.
pub fn apply(resource: &mut Map<String, Value>, body: &Value) -> Result<(), ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax(
            "the body must be a PatchOp object",
        ));
    };
    let Some(Value::Array(operations)) = get(body, "Operations") else {
        return Err(ScimError::invalid_syntax(
            "a PatchOp needs an Operations array",
        ));
    };
    if operations.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "at most {MAX_OPERATIONS} operations"
        )));
    }
    for operation in operations {
        let Value::Object(operation) = operation else {
            return Err(ScimError::invalid_syntax(
                "each operation must be an object",
            ));
        };
        let op = op_of(operation)?;
        let value = get(operation, "value");
        match get(operation, "path").and_then(Value::as_str) {
            Some(path) => apply_at(resource, op, path, value)?,
            None => apply_without_path(resource, op, value)?,
        }
    }
    Ok(())
}

/// An operation's `op`, in any case (Entra writes `"Replace"`).
fn op_of(operation: &Map<String, Value>) -> Result<Op, ScimError> {
    match get(operation, "op").and_then(Value::as_str) {
        Some(op) if op.eq_ignore_ascii_case("add") => Ok(Op::Add),
        Some(op) if op.eq_ignore_ascii_case("replace") => Ok(Op::Replace),
        Some(op) if op.eq_ignore_ascii_case("remove") => Ok(Op::Remove),
        _ => Err(ScimError::invalid_syntax(
            "op must be add, replace or remove",
        )),
    }
}

/// An operation without a path: its value's keys are the paths.
fn apply_without_path(
    resource: &mut Map<String, Value>,
    op: Op,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if op == Op::Remove {
        return Err(ScimError::new(
            axum::http::StatusCode::BAD_REQUEST,
            Some("noTarget"),
            "remove needs a path",
        ));
    }
    let Some(Value::Object(values)) = value else {
        return Err(ScimError::invalid_value(
            "an operation without a path needs an object value",
        ));
    };
    for (key, value) in values {
        if key.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) {
            // The extension whole: each of its attributes. Unlike a path
            // naming the extension, it is merged in, not replaced.
            if let Value::Object(extension) = value {
                apply_each_of_extension(resource, op, extension)?;
            }
            continue;
        }
        // A key may be a path of its own (Entra: "name.givenName").
        apply_at(resource, op, key, Some(value))?;
    }
    Ok(())
}

/// Each attribute of an enterprise extension's value, at its own path.
fn apply_each_of_extension(
    resource: &mut Map<String, Value>,
    op: Op,
    extension: &Map<String, Value>,
) -> Result<(), ScimError> {
    for (sub, value) in extension {
        apply_at(
            resource,
            op,
            &format!("{ENTERPRISE_SCHEMA}:{sub}"),
            Some(value),
        )?;
    }
    Ok(())
}

/// The object an attribute path lives in, and its canonical name there;
/// `None` for an attribute of a schema the service does not keep.
fn container<'a>(
    resource: &'a mut Map<String, Value>,
    path: &AttrPath,
) -> Option<&'a mut Map<String, Value>> {
    match path.uri.as_deref() {
        None => Some(resource),
        Some(uri) if uri.eq_ignore_ascii_case(USER_SCHEMA) => Some(resource),
        Some(uri) if uri.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) => {
            let extension = key_of(resource, ENTERPRISE_SCHEMA);
            let slot = resource
                .entry(extension)
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            slot.as_object_mut()
        }
        Some(_) => None,
    }
}

/// The key `name` has in `object` (matched ignoring case), else `name`.
fn key_of(object: &Map<String, Value>, name: &str) -> String {
    object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

fn apply_at(
    resource: &mut Map<String, Value>,
    op: Op,
    path: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    // The extension whole, by its URN: each of its attributes.
    if path.trim().eq_ignore_ascii_case(ENTERPRISE_SCHEMA) {
        if op == Op::Remove {
            let key = key_of(resource, ENTERPRISE_SCHEMA);
            resource.remove(&key);
            return Ok(());
        }
        let Some(Value::Object(extension)) = value else {
            return Err(ScimError::invalid_value(
                "the extension's value must be an object",
            ));
        };
        if op == Op::Replace {
            let key = key_of(resource, ENTERPRISE_SCHEMA);
            resource.remove(&key);
        }
        return apply_each_of_extension(resource, op, extension);
    }
    let parsed: PatchPath = path
        .parse()
        .map_err(|e| ScimError::invalid_path(format!("the path {path:?} does not parse: {e}")))?;
    let (attr, filter, sub) = match &parsed {
        PatchPath::Attr(attr) => (attr, None, attr.sub_attr.as_deref()),
        PatchPath::Value(value_path) => (
            &value_path.attr,
            Some(&value_path.filter),
            value_path.sub_attr.as_deref(),
        ),
    };
    // The extension's manager as a plain id (Entra): `{"value": id}`.
    let value = match (attr.uri.as_deref(), value) {
        (Some(uri), Some(Value::String(id)))
            if uri.eq_ignore_ascii_case(ENTERPRISE_SCHEMA)
                && attr.name.eq_ignore_ascii_case("manager")
                && sub.is_none() =>
        {
            Some(serde_json::json!({"value": id}))
        }
        (_, value) => value.cloned(),
    };
    let Some(object) = container(resource, attr) else {
        return Ok(());
    };
    let key = key_of(object, &attr.name);
    match filter {
        None => apply_plain(object, &key, sub, op, value),
        Some(filter) => apply_filtered(object, &key, filter, sub, op, value),
    }
}

/// `attr` or `attr.sub`.
fn apply_plain(
    object: &mut Map<String, Value>,
    key: &str,
    sub: Option<&str>,
    op: Op,
    value: Option<Value>,
) -> Result<(), ScimError> {
    if let Some(sub) = sub {
        return apply_to_sub_attribute(object, key, sub, op, value);
    }
    match op {
        Op::Remove => match (object.get_mut(key), value) {
            // Entra: remove only the listed members (by their value).
            (Some(Value::Array(items)), Some(Value::Array(listed))) => {
                items.retain(|item| !listed.iter().any(|l| same_value(item, l)));
            }
            _ => {
                object.remove(key);
            }
        },
        Op::Replace => {
            object.insert(key.to_owned(), required(value)?);
        }
        Op::Add => add(object, key, required(value)?),
    }
    Ok(())
}

/// `attr.sub`; an object left empty goes.
fn apply_to_sub_attribute(
    object: &mut Map<String, Value>,
    key: &str,
    sub: &str,
    op: Op,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let parent = object
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(parent) = parent else {
        return Err(ScimError::invalid_path(format!(
            "{key} has no sub-attributes"
        )));
    };
    let sub_key = key_of(parent, sub);
    match op {
        Op::Remove => {
            parent.remove(&sub_key);
        }
        Op::Add | Op::Replace => {
            parent.insert(sub_key, required(value)?);
        }
    }
    if parent.is_empty() {
        object.remove(key);
    }
    Ok(())
}

/// `add` at `attr` (RFC 7644 §3.5.2.1): a list gains the items it lacks,
/// an object the attributes given; anything else is set.
fn add(object: &mut Map<String, Value>, key: &str, value: Value) {
    match (object.get_mut(key), value) {
        (Some(Value::Array(items)), Value::Array(new)) => {
            for item in new {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
        }
        (Some(Value::Array(items)), item) => {
            if !items.contains(&item) {
                items.push(item);
            }
        }
        (Some(Value::Object(existing)), Value::Object(new)) => {
            for (k, v) in new {
                let k = key_of(existing, &k);
                existing.insert(k, v);
            }
        }
        (_, value) => {
            object.insert(key.to_owned(), value);
        }
    }
}

/// `attr[filter]` or `attr[filter].sub`. An add or replace that matches
/// no element makes one from the filter's `eq` terms (Entra ID sets a
/// first work address as `emails[type eq "work"].value`).
fn apply_filtered(
    object: &mut Map<String, Value>,
    key: &str,
    filter: &ValFilter,
    sub: Option<&str>,
    op: Op,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let items = object
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(items) = items else {
        return Err(ScimError::invalid_path(format!(
            "{key} is not multi-valued"
        )));
    };
    let mut matched = false;
    let mut kept = Vec::with_capacity(items.len());
    for mut item in items.drain(..) {
        if !matches(&item, filter) {
            kept.push(item);
            continue;
        }
        matched = true;
        match (op, sub) {
            (Op::Remove, None) => continue,
            (Op::Remove, Some(sub)) => {
                if let Value::Object(element) = &mut item {
                    let k = key_of(element, sub);
                    element.remove(&k);
                }
            }
            (Op::Add | Op::Replace, Some(sub)) => {
                if let Value::Object(element) = &mut item {
                    let k = key_of(element, sub);
                    element.insert(k, required(value.clone())?);
                }
            }
            (Op::Replace, None) => item = required(value.clone())?,
            (Op::Add, None) => {
                if let (Value::Object(element), Some(Value::Object(new))) = (&mut item, &value) {
                    for (k, v) in new {
                        let k = key_of(element, k);
                        element.insert(k, v.clone());
                    }
                }
            }
        }
        kept.push(item);
    }
    *items = kept;
    if !matched && op != Op::Remove {
        items.push(element_from_filter(filter, sub, value)?);
    }
    if items.is_empty() {
        object.remove(key);
    }
    Ok(())
}

/// The element an add or replace that matched none makes: the filter's
/// `eq` terms, and the value (at `sub`, or merged in).
fn element_from_filter(
    filter: &ValFilter,
    sub: Option<&str>,
    value: Option<Value>,
) -> Result<Value, ScimError> {
    let mut element = Map::new();
    equalities(filter, &mut element);
    match (sub, required(value)?) {
        (Some(sub), value) => {
            element.insert(sub.to_owned(), value);
        }
        (None, Value::Object(new)) => element.extend(new),
        (None, _) => return Err(ScimError::invalid_value("the value must be an object")),
    }
    Ok(Value::Object(element))
}

fn required(value: Option<Value>) -> Result<Value, ScimError> {
    value.ok_or_else(|| ScimError::invalid_value("the operation needs a value"))
}

/// Two elements of a multi-valued attribute name the same thing.
fn same_value(item: &Value, listed: &Value) -> bool {
    match (item, listed) {
        (Value::Object(item), Value::Object(listed)) => {
            match (get(item, "value"), get(listed, "value")) {
                (Some(a), Some(b)) => a == b,
                _ => item == listed,
            }
        }
        (a, b) => a == b,
    }
}

/// The `attr eq "x"` terms of a filter, as an element's attributes.
fn equalities(filter: &ValFilter, element: &mut Map<String, Value>) {
    match filter {
        ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, value)) => {
            let value = match value {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::True => Value::Bool(true),
                CompValue::False => Value::Bool(false),
                _ => return,
            };
            element.insert(path.name.clone(), value);
        }
        ValFilter::And(operands) => {
            for operand in operands.as_slice() {
                equalities(operand, element);
            }
        }
        _ => {}
    }
}

/// Whether an element of a multi-valued attribute matches a value filter.
/// Text compares ignoring case (the attributes kept are not case-exact).
fn matches(item: &Value, filter: &ValFilter) -> bool {
    match filter {
        ValFilter::Attr(AttrExp::Present(path)) => field(item, path).is_some(),
        ValFilter::Attr(AttrExp::Comparison(path, op, expected)) => {
            let found = field(item, path);
            compare(found, op, expected)
        }
        ValFilter::And(operands) => operands.as_slice().iter().all(|f| matches(item, f)),
        ValFilter::Or(operands) => operands.as_slice().iter().any(|f| matches(item, f)),
        ValFilter::Not(inner) => !matches(item, inner),
    }
}

fn field<'a>(item: &'a Value, path: &AttrPath) -> Option<&'a Value> {
    let Value::Object(element) = item else {
        return None;
    };
    get(element, &path.name)
}

fn compare(found: Option<&Value>, op: &CompareOp, expected: &CompValue) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let expected = match expected {
        CompValue::Str(s) => s.to_lowercase(),
        CompValue::True => "true".into(),
        CompValue::False => "false".into(),
        CompValue::Number(n) => n.to_string(),
        CompValue::Null => return matches!(op, CompareOp::Eq) == found.is_none(),
    };
    let Some(found) = found.and_then(text) else {
        return matches!(op, CompareOp::Ne);
    };
    match op {
        CompareOp::Eq => found == expected,
        CompareOp::Ne => found != expected,
        CompareOp::Co => found.contains(&expected),
        CompareOp::Sw => found.starts_with(&expected),
        CompareOp::Ew => found.ends_with(&expected),
        CompareOp::Gt => found > expected,
        CompareOp::Lt => found < expected,
        CompareOp::Ge => found >= expected,
        CompareOp::Le => found <= expected,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    fn patched(resource: Value, operations: Value) -> Value {
        let Value::Object(mut resource) = resource else {
            panic!("an object")
        };
        apply(
            &mut resource,
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": operations,
            }),
        )
        .expect("applies");
        Value::Object(resource)
    }

    #[test]
    fn entra_without_the_compliance_flag_is_understood() {
        let user = json!({"userName": "ann", "active": true, "emails": [{"value": "a@x.test", "type": "work", "primary": true}]});
        let out = patched(
            user.clone(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        );
        assert_eq!(out["active"], json!("False"));
        let out = patched(
            user.clone(),
            json!([{"op": "Add", "value": {"name.givenName": "Ann", "displayName": "Ann L."}}]),
        );
        assert_eq!(out["name"], json!({"givenName": "Ann"}));
        assert_eq!(out["displayName"], json!("Ann L."));
        let out = patched(
            user.clone(),
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x.test"}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "b@x.test", "type": "work", "primary": true}])
        );
        let out = patched(
            json!({"userName": "ann"}),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "c@x.test"}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"type": "work", "value": "c@x.test"}])
        );
        let out = patched(
            user,
            json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-1"}]),
        );
        assert_eq!(out[ENTERPRISE_SCHEMA]["manager"], json!({"value": "m-1"}));
    }

    #[test]
    fn removing_members_by_a_value_list_removes_only_those() {
        let group = json!({"displayName": "g", "members": [{"value": "a"}, {"value": "b"}, {"value": "c"}]});
        let out = patched(
            group,
            json!([{"op": "Remove", "path": "members", "value": [{"value": "b"}]}]),
        );
        assert_eq!(out["members"], json!([{"value": "a"}, {"value": "c"}]));
    }

    #[test]
    fn add_replace_and_remove_follow_the_rfc() {
        let user = json!({"userName": "ann", "emails": [{"value": "a@x.test", "type": "work"}]});
        let out = patched(
            user.clone(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "h@x.test", "type": "home"}]}]),
        );
        assert_eq!(out["emails"].as_array().map(Vec::len), Some(2));
        let out = patched(
            user.clone(),
            json!([{"op": "replace", "path": "userName", "value": "bob"}]),
        );
        assert_eq!(out["userName"], json!("bob"));
        let out = patched(
            user.clone(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
        );
        assert!(out.get("emails").is_none());
        let out = patched(
            user.clone(),
            json!([{"op": "add", "path": "name", "value": {"givenName": "A", "familyName": "L"}}]),
        );
        assert_eq!(out["name"], json!({"givenName": "A", "familyName": "L"}));
        let out = patched(out, json!([{"op": "remove", "path": "name.familyName"}]));
        assert_eq!(out["name"], json!({"givenName": "A"}));
        let Value::Object(mut resource) = user else {
            panic!()
        };
        let refused = apply(&mut resource, &json!({"Operations": [{"op": "remove"}]}));
        assert_eq!(refused.expect_err("no target").scim_type, Some("noTarget"));
        let refused = apply(
            &mut resource,
            &json!({"Operations": [{"op": "move", "path": "x"}]}),
        );
        assert!(refused.is_err());
    }
}
