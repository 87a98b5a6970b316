//! A moment as a locale writes it, from CLDR's data (ICU4X compiled data).
//! The service keeps times in UTC and an email cannot know the reader's
//! zone, so the time is UTC and the message around it says so.

use std::sync::LazyLock;

use icu_datetime::{
    DateTimeFormatter,
    fieldsets::YMDET,
    input::{Date, DateTime, Time},
    options::TimePrecision,
};
use time::{OffsetDateTime, UtcOffset};

use crate::Locale;

/// One formatter a locale, made once: loading CLDR's patterns is the cost.
static LONG: LazyLock<Vec<Option<DateTimeFormatter<YMDET>>>> = LazyLock::new(|| {
    Locale::ALL
        .into_iter()
        .map(|locale| {
            let language: icu_locale_core::Locale = locale.tag().parse().ok()?;
            DateTimeFormatter::try_new(
                language.into(),
                YMDET::long().with_time_precision(TimePrecision::Minute),
            )
            .ok()
        })
        .collect()
});

/// The weekday, date and time of `moment` in UTC, in full as `locale`
/// writes them: "Friday, March 14, 2025 at 9:30 AM" (English),
/// "Freitag, 14. März 2025 um 09:30" (German), "2025年3月14日金曜日 9:30"
/// (Japanese). An ISO 8601 form if the locale's data failed to load.
pub fn long_date_time(locale: Locale, moment: OffsetDateTime) -> String {
    let utc = moment.to_offset(UtcOffset::UTC);
    let input = Date::try_new_iso(utc.year(), u8::from(utc.month()), utc.day())
        .ok()
        .zip(Time::try_new(utc.hour(), utc.minute(), 0, 0).ok());
    match (LONG.get(locale.index()).and_then(Option::as_ref), input) {
        (Some(formatter), Some((date, time))) => {
            formatter.format(&DateTime { date, time }).to_string()
        }
        _ => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            utc.year(),
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute()
        ),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn each_locale_writes_the_moment_its_own_way_in_utc() {
        // 09:30 UTC, given in another zone: the email says UTC.
        let moment = datetime!(2025-03-14 11:30 +02:00);
        let english = long_date_time(Locale::English, moment);
        assert!(
            english.contains("Friday") && english.contains("March 14, 2025"),
            "{english}"
        );
        assert!(english.contains("9:30"), "{english}");
        let german = long_date_time(Locale::German, moment);
        assert!(
            german.contains("Freitag") && german.contains("14. März 2025"),
            "{german}"
        );
        let japanese = long_date_time(Locale::Japanese, moment);
        assert!(japanese.contains("2025年3月14日"), "{japanese}");
        let french = long_date_time(Locale::French, moment);
        assert!(french.contains("vendredi 14 mars 2025"), "{french}");
        let arabic = long_date_time(Locale::Arabic, moment);
        assert!(arabic.contains("الجمعة"), "{arabic}");
        let all: std::collections::BTreeSet<String> = Locale::ALL
            .into_iter()
            .map(|locale| long_date_time(locale, moment))
            .collect();
        assert_eq!(all.len(), Locale::ALL.len(), "{all:?}");
    }
}
