//! A SCIM `filter` (RFC 7644 §3.4.2.2) as the service's listing conditions:
//! comparisons on userName, externalId, emails (also as Entra ID writes
//! them: `emails[type eq "work"].value`), displayName and active, joined by
//! `and`. Anything else is `invalidFilter`.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};
use wowchat_users_api::v1::{DirectoryAttribute, DirectoryCondition, DirectoryOperator};

use super::errors::ScimError;

/// The conditions of `filter`, all of which must hold.
pub fn conditions(filter: &str) -> Result<Vec<DirectoryCondition>, ScimError> {
    let parsed: Filter = match filter.parse() {
        Ok(parsed) => parsed,
        // `emails[type eq "work"].value eq "…"` is no filter of the RFC's
        // grammar, but Entra ID sends it: the address is compared.
        Err(first) => without_value_filter(filter)
            .and_then(|rewritten| rewritten.parse().ok())
            .ok_or_else(|| {
                ScimError::invalid_filter(format!("the filter does not parse: {first}"))
            })?,
    };
    let mut out = Vec::new();
    collect(&parsed, &mut out)?;
    Ok(out)
}

fn collect(filter: &Filter, out: &mut Vec<DirectoryCondition>) -> Result<(), ScimError> {
    match filter {
        Filter::Attr(expression) => out.push(condition(expression, None)?),
        Filter::And(operands) => {
            for operand in operands.as_slice() {
                collect(operand, out)?;
            }
        }
        Filter::ValuePath(path) if path.attr.name.eq_ignore_ascii_case("emails") => {
            let before = out.len();
            collect_value_filter(&path.filter, out)?;
            if out.len() == before {
                return Err(ScimError::invalid_filter(
                    "a filter on emails[…] must compare its value",
                ));
            }
        }
        Filter::ValuePath(path) => {
            return Err(ScimError::invalid_filter(format!(
                "{} cannot be filtered by value",
                path.attr.name
            )));
        }
        Filter::Or(_) | Filter::Not(_) => {
            return Err(ScimError::invalid_filter(
                "only `and` joins conditions here; `or` and `not` are not supported",
            ));
        }
    }
    Ok(())
}

/// Inside `emails[…]`: the comparisons of `value`; those on `type` and
/// `primary` narrow which address, and every member has one.
fn collect_value_filter(
    filter: &ValFilter,
    out: &mut Vec<DirectoryCondition>,
) -> Result<(), ScimError> {
    match filter {
        ValFilter::Attr(expression) => {
            let path = match expression {
                AttrExp::Present(path) | AttrExp::Comparison(path, _, _) => path,
            };
            if path.name.eq_ignore_ascii_case("value") {
                out.push(condition(expression, Some(DirectoryAttribute::Email))?);
            } else if !(path.name.eq_ignore_ascii_case("type")
                || path.name.eq_ignore_ascii_case("primary"))
            {
                return Err(ScimError::invalid_filter(format!(
                    "emails has no sub-attribute {}",
                    path.name
                )));
            }
            Ok(())
        }
        ValFilter::And(operands) => {
            for operand in operands.as_slice() {
                collect_value_filter(operand, out)?;
            }
            Ok(())
        }
        ValFilter::Or(_) | ValFilter::Not(_) => Err(ScimError::invalid_filter(
            "only `and` joins conditions here; `or` and `not` are not supported",
        )),
    }
}

fn attribute(path: &AttrPath) -> Result<DirectoryAttribute, ScimError> {
    let name = path.name.to_ascii_lowercase();
    let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
    let core = path
        .uri
        .as_deref()
        .is_none_or(|uri| uri.eq_ignore_ascii_case(super::USER_SCHEMA));
    let attribute = match (core, name.as_str(), sub.as_deref()) {
        (true, "username", None) => DirectoryAttribute::UserName,
        (true, "externalid", None) => DirectoryAttribute::ExternalId,
        (true, "displayname", None) => DirectoryAttribute::DisplayName,
        (true, "active", None) => DirectoryAttribute::Active,
        (true, "emails", None | Some("value")) => DirectoryAttribute::Email,
        _ => {
            return Err(ScimError::invalid_filter(format!(
                "{path} cannot be filtered on (userName, externalId, emails, displayName and \
                 active can)"
            )));
        }
    };
    Ok(attribute)
}

fn condition(
    expression: &AttrExp,
    attribute_is: Option<DirectoryAttribute>,
) -> Result<DirectoryCondition, ScimError> {
    let (path, operator, value) = match expression {
        AttrExp::Present(path) => (path, DirectoryOperator::Present, String::new()),
        AttrExp::Comparison(path, op, value) => {
            let operator = match op {
                CompareOp::Eq => DirectoryOperator::Equal,
                CompareOp::Ne => DirectoryOperator::NotEqual,
                CompareOp::Co => DirectoryOperator::Contains,
                CompareOp::Sw => DirectoryOperator::StartsWith,
                CompareOp::Ew => DirectoryOperator::EndsWith,
                other => {
                    return Err(ScimError::invalid_filter(format!(
                        "{other:?} compares ordered values; these attributes are text"
                    )));
                }
            };
            let value = match value {
                CompValue::Str(text) => text.clone(),
                CompValue::True => "true".into(),
                CompValue::False => "false".into(),
                CompValue::Null | CompValue::Number(_) => {
                    return Err(ScimError::invalid_filter(
                        "compare with a string (or true/false for active)",
                    ));
                }
            };
            (path, operator, value)
        }
    };
    let attribute = match attribute_is {
        Some(attribute) => attribute,
        None => attribute(path)?,
    };
    Ok(DirectoryCondition {
        attribute: attribute.into(),
        operator: operator.into(),
        value,
    })
}

/// A Groups filter: `displayName eq "…"` and/or `externalId eq "…"`, what
/// Okta and Entra ID look groups up by.
pub fn group_conditions(filter: &str) -> Result<(Option<String>, Option<String>), ScimError> {
    let parsed: Filter = filter
        .parse()
        .map_err(|e| ScimError::invalid_filter(format!("the filter does not parse: {e}")))?;
    let terms: Vec<&Filter> = match &parsed {
        Filter::And(operands) => operands.as_slice().iter().collect(),
        single => vec![single],
    };
    let (mut display_name, mut external_id) = (None, None);
    for term in terms {
        let Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(value))) = term
        else {
            return Err(ScimError::invalid_filter(
                "groups are found by displayName eq or externalId eq",
            ));
        };
        match (path.name.to_ascii_lowercase().as_str(), &path.sub_attr) {
            ("displayname", None) => display_name = Some(value.clone()),
            ("externalid", None) => external_id = Some(value.clone()),
            _ => {
                return Err(ScimError::invalid_filter(
                    "groups are found by displayName eq or externalId eq",
                ));
            }
        }
    }
    Ok((display_name, external_id))
}

/// `emails[…].value` made `emails.value`; `None` when there is none.
fn without_value_filter(filter: &str) -> Option<String> {
    let lower = filter.to_ascii_lowercase();
    let start = lower.find("emails[")?;
    let close = start + lower[start..].find("].value")?;
    Some(format!(
        "{}emails.value{}",
        &filter[..start],
        &filter[close + "].value".len()..]
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn one(filter: &str) -> (DirectoryAttribute, DirectoryOperator, String) {
        let found = conditions(filter).unwrap_or_else(|e| panic!("{filter}: {e:?}"));
        assert_eq!(found.len(), 1, "{filter}");
        let c = &found[0];
        (c.attribute(), c.operator(), c.value.clone())
    }

    #[test]
    fn the_filters_okta_and_entra_send_become_conditions() {
        use DirectoryAttribute as A;
        use DirectoryOperator as O;
        assert_eq!(
            one(r#"userName eq "ann@example.com""#),
            (A::UserName, O::Equal, "ann@example.com".into())
        );
        assert_eq!(
            one(r#"externalId eq "00u1""#),
            (A::ExternalId, O::Equal, "00u1".into())
        );
        assert_eq!(
            one(r#"emails[type eq "work"].value eq "ann@example.com""#),
            (A::Email, O::Equal, "ann@example.com".into())
        );
        assert_eq!(
            one(r#"emails[type eq "work" and value co "@example.com"]"#),
            (A::Email, O::Contains, "@example.com".into())
        );
        assert_eq!(
            one(r#"emails.value sw "ann""#),
            (A::Email, O::StartsWith, "ann".into())
        );
        assert_eq!(
            one(r#"displayName co "Lee""#),
            (A::DisplayName, O::Contains, "Lee".into())
        );
        assert_eq!(one("active eq true"), (A::Active, O::Equal, "true".into()));
        assert_eq!(
            conditions(r#"userName sw "a" and active eq false"#)
                .map(|c| c.len())
                .ok(),
            Some(2)
        );
    }

    #[test]
    fn other_filters_are_invalid() {
        for filter in [
            r#"userName eq "a" or userName eq "b""#,
            r#"not (userName eq "a")"#,
            r#"title eq "boss""#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"userName eq"#,
            r#"userName eq 12"#,
        ] {
            let refused = conditions(filter).expect_err(filter);
            assert_eq!(refused.scim_type, Some("invalidFilter"), "{filter}");
        }
    }
}
