//! Fluent catalogs: one file a domain (`mail`, `page`) and a locale, under
//! `locales/<tag>/`, compiled into the binary.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::LazyLock,
};

use fluent_bundle::{FluentArgs, FluentResource, FluentValue, concurrent::FluentBundle};
use fluent_syntax::ast;

use crate::Locale;

/// What a domain's catalog says in every locale.
pub struct Catalog {
    /// In `Locale::ALL`'s order.
    bundles: Vec<FluentBundle<FluentResource>>,
    /// Each bundle's messages and their placeholders, in the same order.
    shapes: Vec<Shape>,
    /// What did not parse, for the catalog test.
    parse_errors: Vec<(Locale, String)>,
}

/// Message ids and the variables each references.
pub type Shape = BTreeMap<String, BTreeSet<String>>;

/// A message the catalog could not format: a bug in a template or in a
/// catalog (the catalog test catches the latter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub id: String,
    pub locale: Locale,
    pub why: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message {} in {}: {}", self.id, self.locale, self.why)
    }
}

impl std::error::Error for FormatError {}

/// The values a message's placeholders take.
#[derive(Default)]
pub struct Args<'a> {
    texts: Vec<(&'a str, Cow<'a, str>)>,
    numbers: Vec<(&'a str, i64)>,
}

impl<'a> Args<'a> {
    pub fn new() -> Self {
        Args::default()
    }

    /// A word or name, shown as it is: never translated, never parsed.
    pub fn text(mut self, name: &'a str, value: impl Into<Cow<'a, str>>) -> Self {
        self.texts.push((name, value.into()));
        self
    }

    /// A count, which a message may select a plural form by.
    pub fn number(mut self, name: &'a str, value: i64) -> Self {
        self.numbers.push((name, value));
        self
    }

    /// The names of the text placeholders, in the order they were given.
    pub fn text_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.texts.iter().map(|(name, _)| *name)
    }

    fn fluent(&self, text: impl Fn(usize, &'a str, &Cow<'a, str>) -> String) -> FluentArgs<'a> {
        let mut args = FluentArgs::new();
        for (index, (name, value)) in self.texts.iter().enumerate() {
            args.set(*name, FluentValue::from(text(index, name, value)));
        }
        for (name, value) in &self.numbers {
            args.set(*name, FluentValue::from(*value));
        }
        args
    }
}

/// A formatted message cut at its text placeholders, so that a caller can
/// escape the words and mark up the values apart (an HTML email), or
/// leave the values for a script to fill in (the invitation page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Words(String),
    /// The text placeholder of this name.
    Value(String),
}

/// Marks a text placeholder inside a formatted message: characters of
/// Unicode's private use area, which no catalog and no name holds (names
/// are cleaned of them before they reach a message).
const MARK_OPEN: char = '\u{E000}';
const MARK_CLOSE: char = '\u{E001}';

static MAIL: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::new([
        include_str!("../locales/en/mail.ftl"),
        include_str!("../locales/de/mail.ftl"),
        include_str!("../locales/fr/mail.ftl"),
        include_str!("../locales/es/mail.ftl"),
        include_str!("../locales/pt-BR/mail.ftl"),
        include_str!("../locales/ja/mail.ftl"),
        include_str!("../locales/ar/mail.ftl"),
    ])
});

static PAGE: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::new([
        include_str!("../locales/en/page.ftl"),
        include_str!("../locales/de/page.ftl"),
        include_str!("../locales/fr/page.ftl"),
        include_str!("../locales/es/page.ftl"),
        include_str!("../locales/pt-BR/page.ftl"),
        include_str!("../locales/ja/page.ftl"),
        include_str!("../locales/ar/page.ftl"),
    ])
});

impl Catalog {
    /// The emails' words.
    pub fn mail() -> &'static Catalog {
        &MAIL
    }

    /// The invitation page's words.
    pub fn page() -> &'static Catalog {
        &PAGE
    }

    /// A catalog from one source a locale, in `Locale::ALL`'s order. A
    /// source that does not parse keeps the entries that do (Fluent's
    /// recovery); the catalog test fails on any parse error.
    fn new(sources: [&'static str; 7]) -> Catalog {
        let mut shapes = Vec::new();
        let mut parse_errors = Vec::new();
        let bundles = Locale::ALL
            .into_iter()
            .zip(sources)
            .map(|(locale, source)| {
                let resource = FluentResource::try_new(source.to_owned()).unwrap_or_else(
                    |(partial, errors)| {
                        parse_errors.extend(errors.iter().map(|e| (locale, e.to_string())));
                        partial
                    },
                );
                shapes.push(shape(&resource));
                let language = locale.tag().parse().unwrap_or_default();
                let mut bundle = FluentBundle::new_concurrent(vec![language]);
                // Isolation marks keep a Latin name from reordering an
                // Arabic sentence; in a left-to-right text they would be
                // invisible noise in every copied line.
                bundle.set_use_isolating(locale.is_right_to_left());
                // Both errors are impossible here: one resource a bundle,
                // and duplicates are a catalog-test failure.
                let _ = bundle.add_resource(resource);
                bundle
            })
            .collect();
        Catalog {
            bundles,
            shapes,
            parse_errors,
        }
    }

    fn bundle(&self, locale: Locale) -> &FluentBundle<FluentResource> {
        &self.bundles[locale.index()]
    }

    /// The message `id` in `locale` (English when the locale lacks it),
    /// its placeholders filled from `args`.
    pub fn format(&self, locale: Locale, id: &str, args: &Args) -> Result<String, FormatError> {
        self.format_with(locale, id, &args.fluent(|_, _, value| value.to_string()))
    }

    /// The message `id` cut at its text placeholders (see [`Part`]).
    pub fn format_parts(
        &self,
        locale: Locale,
        id: &str,
        args: &Args,
    ) -> Result<Vec<Part>, FormatError> {
        let names: Vec<&str> = args.text_names().collect();
        let marked = self.format_with(
            locale,
            id,
            &args.fluent(|index, _, _| format!("{MARK_OPEN}{index}{MARK_CLOSE}")),
        )?;
        let mut parts = Vec::new();
        let mut rest = marked.as_str();
        while let Some(open) = rest.find(MARK_OPEN) {
            let after = &rest[open + MARK_OPEN.len_utf8()..];
            let Some(close) = after.find(MARK_CLOSE) else {
                break;
            };
            let name = after[..close]
                .parse::<usize>()
                .ok()
                .and_then(|index| names.get(index));
            let Some(name) = name else { break };
            if open > 0 {
                parts.push(Part::Words(rest[..open].to_owned()));
            }
            parts.push(Part::Value((*name).to_owned()));
            rest = &after[close + MARK_CLOSE.len_utf8()..];
        }
        if !rest.is_empty() {
            parts.push(Part::Words(rest.to_owned()));
        }
        Ok(parts)
    }

    fn format_with(
        &self,
        locale: Locale,
        id: &str,
        args: &FluentArgs,
    ) -> Result<String, FormatError> {
        let error = |why: String| FormatError {
            id: id.to_owned(),
            locale,
            why,
        };
        let (bundle, message) = match self.bundle(locale).get_message(id) {
            Some(message) => (self.bundle(locale), message),
            None => {
                let english = self.bundle(Locale::English);
                let message = english
                    .get_message(id)
                    .ok_or_else(|| error("no such message".to_owned()))?;
                (english, message)
            }
        };
        let pattern = message
            .value()
            .ok_or_else(|| error("the message has no value".to_owned()))?;
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, Some(args), &mut errors);
        match errors.first() {
            Some(first) => Err(error(first.to_string())),
            None => Ok(text.into_owned()),
        }
    }

    /// What did not parse, by locale: nothing, as the catalog test holds.
    pub fn parse_errors(&self) -> &[(Locale, String)] {
        &self.parse_errors
    }

    /// Every message id, with the placeholders English's message uses.
    pub fn messages(&self) -> &Shape {
        &self.shapes[0]
    }
}

/// Each message of a resource and the variables it references.
fn shape(resource: &FluentResource) -> Shape {
    let mut found = Shape::new();
    for entry in resource.entries() {
        if let ast::Entry::Message(message) = entry {
            let mut variables = BTreeSet::new();
            if let Some(pattern) = &message.value {
                pattern_variables(pattern, &mut variables);
            }
            found.insert(message.id.name.to_owned(), variables);
        }
    }
    found
}

fn pattern_variables(pattern: &ast::Pattern<&str>, found: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            expression_variables(expression, found);
        }
    }
}

fn expression_variables(expression: &ast::Expression<&str>, found: &mut BTreeSet<String>) {
    match expression {
        ast::Expression::Inline(inline) => inline_variables(inline, found),
        ast::Expression::Select { selector, variants } => {
            inline_variables(selector, found);
            for variant in variants {
                pattern_variables(&variant.value, found);
            }
        }
    }
}

fn inline_variables(inline: &ast::InlineExpression<&str>, found: &mut BTreeSet<String>) {
    match inline {
        ast::InlineExpression::VariableReference { id } => {
            found.insert(id.name.to_owned());
        }
        ast::InlineExpression::Placeable { expression } => expression_variables(expression, found),
        ast::InlineExpression::FunctionReference { arguments, .. } => {
            for argument in &arguments.positional {
                inline_variables(argument, found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogs() -> [(&'static str, &'static Catalog); 2] {
        [("mail", Catalog::mail()), ("page", Catalog::page())]
    }

    /// The check a translator's change must pass: every locale parses,
    /// has every message English has and no other, each with the same
    /// placeholders, and formats.
    #[test]
    fn every_locale_has_every_message_with_every_placeholder() {
        for (domain, catalog) in catalogs() {
            assert_eq!(catalog.parse_errors(), [], "{domain}: parse errors");
            let english = &catalog.shapes[0];
            assert!(!english.is_empty(), "{domain}: no messages");
            for (locale, shape) in Locale::ALL.into_iter().zip(&catalog.shapes) {
                let missing: Vec<_> = english
                    .keys()
                    .filter(|id| !shape.contains_key(*id))
                    .collect();
                let extra: Vec<_> = shape
                    .keys()
                    .filter(|id| !english.contains_key(*id))
                    .collect();
                assert!(
                    missing.is_empty() && extra.is_empty(),
                    "{domain}/{locale}: missing {missing:?}, not in English {extra:?}"
                );
                for (id, variables) in english {
                    assert_eq!(
                        &shape[id], variables,
                        "{domain}/{locale}: {id} has other placeholders than English's"
                    );
                    let args = variables
                        .iter()
                        .fold(Args::new(), |args, name| args.text(name, "Ada"));
                    let text = catalog
                        .format(locale, id, &args)
                        .unwrap_or_else(|e| panic!("{domain}: {e}"));
                    assert!(!text.trim().is_empty(), "{domain}/{locale}: {id} is empty");
                }
            }
        }
    }

    #[test]
    fn a_message_is_cut_at_its_text_placeholders() {
        let args = Args::new()
            .text("inviter", "Ada <ada@example.com>")
            .text("workspace", "Acme & Co");
        let parts = Catalog::mail()
            .format_parts(Locale::English, "invitation-subject", &args)
            .expect("formats");
        assert_eq!(
            parts,
            vec![
                Part::Value("inviter".into()),
                Part::Words(" invited you to ".into()),
                Part::Value("workspace".into()),
                Part::Words(" on WowChat".into()),
            ]
        );
        let text = Catalog::mail()
            .format(Locale::English, "invitation-subject", &args)
            .expect("formats");
        assert_eq!(
            text,
            "Ada <ada@example.com> invited you to Acme & Co on WowChat"
        );
    }

    #[test]
    fn arabic_isolates_its_placeholders_and_english_does_not() {
        let args = Args::new().text("inviter", "Ada").text("workspace", "Acme");
        let arabic = Catalog::mail()
            .format(Locale::Arabic, "invitation-subject", &args)
            .expect("formats");
        assert!(arabic.contains("\u{2068}Ada\u{2069}"), "{arabic}");
        let english = Catalog::mail()
            .format(Locale::English, "invitation-subject", &args)
            .expect("formats");
        assert!(!english.contains('\u{2068}'), "{english}");
    }

    #[test]
    fn an_unknown_message_is_an_error_not_a_blank() {
        let error = Catalog::mail()
            .format(Locale::German, "no-such-message", &Args::new())
            .expect_err("unknown");
        assert_eq!(error.id, "no-such-message");
    }
}
