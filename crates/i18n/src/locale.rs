//! The languages WowChat speaks.

use std::fmt;

/// A supported language. English is the fallback for everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Locale {
    #[default]
    English,
    German,
    French,
    Spanish,
    BrazilianPortuguese,
    Japanese,
    /// Written right to left.
    Arabic,
}

impl Locale {
    /// Every supported locale, English first.
    pub const ALL: [Locale; 7] = [
        Locale::English,
        Locale::German,
        Locale::French,
        Locale::Spanish,
        Locale::BrazilianPortuguese,
        Locale::Japanese,
        Locale::Arabic,
    ];

    /// The BCP 47 tag, as the API, the catalogs' folders and HTML's `lang`
    /// spell it.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::English => "en",
            Locale::German => "de",
            Locale::French => "fr",
            Locale::Spanish => "es",
            Locale::BrazilianPortuguese => "pt-BR",
            Locale::Japanese => "ja",
            Locale::Arabic => "ar",
        }
    }

    /// Its place in [`Locale::ALL`], for tables kept in that order.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The locale `tag` names, English for an empty tag or one not
    /// supported (any more): how a stored or sent tag is read.
    pub fn from_tag_or_english(tag: &str) -> Locale {
        Locale::from_tag(tag).unwrap_or_default()
    }

    /// A supported tag, matched without regard to case or `_` for `-`
    /// (`pt_br`, `PT-BR`). Nothing else: an API that stores a locale takes
    /// only what it can render.
    pub fn from_tag(tag: &str) -> Option<Locale> {
        let tag = tag.trim().replace('_', "-");
        Locale::ALL
            .into_iter()
            .find(|locale| locale.tag().eq_ignore_ascii_case(&tag))
    }

    /// The supported locale nearest to `tag`: the exact one, else the one of
    /// its language (`de-AT` → German, `pt-PT` → Brazilian Portuguese, the
    /// one Portuguese we have). None when the language is not supported.
    pub fn nearest(tag: &str) -> Option<Locale> {
        if let Some(exact) = Locale::from_tag(tag) {
            return Some(exact);
        }
        let language = tag.trim().split(['-', '_']).next()?;
        Locale::ALL.into_iter().find(|locale| {
            let ours = locale.tag().split('-').next().unwrap_or_default();
            ours.eq_ignore_ascii_case(language)
        })
    }

    /// The best locale for an HTTP `Accept-Language` header (RFC 9110
    /// §12.5.4): the highest-weighted supported language, English when
    /// none is.
    pub fn negotiate(accept_language: &str) -> Locale {
        let mut ranges: Vec<(f32, &str)> = accept_language
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';');
                let tag = parts.next()?.trim();
                let weight = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (!tag.is_empty() && weight > 0.0).then_some((weight, tag))
            })
            .collect();
        // Stable: among equal weights the header's order wins.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .into_iter()
            .find_map(|(_, tag)| Locale::nearest(tag))
            .unwrap_or_default()
    }

    /// Arabic is written right to left; HTML says so with `dir="rtl"`.
    pub fn is_right_to_left(self) -> bool {
        self == Locale::Arabic
    }

    /// HTML's `dir` attribute.
    pub fn direction(self) -> &'static str {
        if self.is_right_to_left() {
            "rtl"
        } else {
            "ltr"
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_names_its_locale_in_any_case_and_nothing_else() {
        for locale in Locale::ALL {
            assert_eq!(Locale::from_tag(locale.tag()), Some(locale));
            assert_eq!(
                Locale::from_tag(&locale.tag().to_ascii_uppercase()),
                Some(locale)
            );
        }
        assert_eq!(Locale::from_tag("pt_br"), Some(Locale::BrazilianPortuguese));
        for unsupported in ["", "pt", "en-US", "zz", "de-DE-x", "english"] {
            assert_eq!(Locale::from_tag(unsupported), None, "{unsupported}");
        }
    }

    #[test]
    fn a_regional_tag_falls_back_to_its_language() {
        assert_eq!(Locale::nearest("de-AT"), Some(Locale::German));
        assert_eq!(Locale::nearest("pt-PT"), Some(Locale::BrazilianPortuguese));
        assert_eq!(Locale::nearest("ar-EG"), Some(Locale::Arabic));
        assert_eq!(Locale::nearest("ko"), None);
    }

    #[test]
    fn accept_language_picks_the_highest_weighted_supported_language() {
        assert_eq!(
            Locale::negotiate("fr-CH, fr;q=0.9, en;q=0.8"),
            Locale::French
        );
        assert_eq!(
            Locale::negotiate("ko, ja;q=0.5, en;q=0.4"),
            Locale::Japanese
        );
        assert_eq!(Locale::negotiate("en;q=0.1, ar"), Locale::Arabic);
        assert_eq!(Locale::negotiate("de;q=0, es"), Locale::Spanish);
        assert_eq!(Locale::negotiate("ko, zh"), Locale::English);
        assert_eq!(Locale::negotiate(""), Locale::English);
        assert_eq!(Locale::negotiate(";;,q=,,"), Locale::English);
    }

    #[test]
    fn a_locale_s_index_is_its_place_in_all() {
        for (place, locale) in Locale::ALL.into_iter().enumerate() {
            assert_eq!(locale.index(), place);
        }
        assert_eq!(
            Locale::from_tag_or_english("PT-br"),
            Locale::BrazilianPortuguese
        );
        assert_eq!(Locale::from_tag_or_english("tlh"), Locale::English);
        assert_eq!(Locale::from_tag_or_english(""), Locale::English);
    }

    #[test]
    fn only_arabic_is_right_to_left() {
        for locale in Locale::ALL {
            assert_eq!(locale.is_right_to_left(), locale == Locale::Arabic);
        }
        assert_eq!(Locale::Arabic.direction(), "rtl");
        assert_eq!(Locale::Japanese.direction(), "ltr");
    }
}
