//! The words WowChat shows people, in their language: the emails and the
//! invitation page.
//!
//! - [`Locale`]: the languages WowChat speaks, parsed from and negotiated
//!   against BCP 47 tags, with their writing direction.
//! - [`Catalog`]: Fluent catalogs (`locales/<tag>/<domain>.ftl`, files a
//!   translator edits), embedded in the binary. A unit test holds every
//!   locale to English's messages, attributes and placeholders, so a
//!   missing or misspelt translation fails CI, not an email.
//! - [`dates`]: a moment as the locale writes it, from CLDR's data
//!   (ICU4X), never a hand-written format.

mod catalog;
pub mod dates;
mod locale;

pub use catalog::{Args, Catalog, FormatError, Part, Shape};
pub use locale::Locale;
