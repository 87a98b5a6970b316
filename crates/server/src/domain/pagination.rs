//! Keyset pagination: page sizes and opaque page tokens. A token names the
//! last row of a page and the filters it was made with, and ends with a MAC
//! under the page-token key every replica shares ([`PageKey`]): a token
//! used with other filters, altered in any bit, or made under another key is
//! refused, so a listing only ever continues from a cursor the service wrote.
//!
//! Changing a token's layout bumps its version: tokens of an older layout
//! are then refused like any other bad token (the client starts over).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Error, Reason};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

/// 0 means the default; above the maximum is the maximum (AIP-158: a
/// client asking for more is served a full page, not refused); negative is
/// refused.
pub fn page_size(requested: i32) -> Result<i64, String> {
    match i64::from(requested) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err("must not be negative".to_string()),
        n => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// The sort key of the last row of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub time: OffsetDateTime,
    pub id: Uuid,
}

impl Cursor {
    pub fn new(time: OffsetDateTime, id: Uuid) -> Self {
        Cursor { time, id }
    }
}

/// The rows a page reads: those after `after` (from the start when
/// `None`), at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub after: Option<Cursor>,
    pub limit: i64,
}

impl Window {
    /// `after`'s time and id, apart (each `NULL` from the start), as SQL
    /// compares a row's sort key with them.
    pub fn after_time_and_id(&self) -> (Option<OffsetDateTime>, Option<Uuid>) {
        (self.after.map(|c| c.time), self.after.map(|c| c.id))
    }
}

/// A record a listing reads newest first by its creation time and id: the
/// cursor a page after it starts from.
pub trait Listed {
    fn cursor(&self) -> Cursor;
}

/// Digests a list call's filters, so a token only continues the same listing.
pub fn filter_digest(filters: &str) -> [u8; 8] {
    let digest = Sha256::digest(filters.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// The key page tokens are MAC'd under (HMAC-SHA256); every replica derives
/// the same one from the installation's secret.
#[derive(Clone)]
pub struct PageKey(Hmac<Sha256>);

impl PageKey {
    pub fn new(key: &[u8]) -> Self {
        PageKey(Hmac::new_from_slice(key).expect("HMAC takes a key of any length"))
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(body);
        mac
    }
}

/// The bytes of a token's MAC: 128 bits are plenty against forgery.
const TAG_LEN: usize = 16;

/// The one token layout: a version byte, the cursor's bytes, the digest of
/// the filters the listing was made with, then the MAC of all of these.
fn encode_token(key: &PageKey, version: u8, cursor: &[u8], filters: [u8; 8]) -> String {
    let mut bytes = Vec::with_capacity(1 + cursor.len() + filters.len() + TAG_LEN);
    bytes.push(version);
    bytes.extend_from_slice(cursor);
    bytes.extend_from_slice(&filters);
    let tag = key.mac(&bytes).finalize().into_bytes();
    bytes.extend_from_slice(&tag[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The cursor bytes of a token of `version` whose cursor is `N` bytes long;
/// `None` for an empty token (the first page).
fn decode_token<const N: usize>(
    key: &PageKey,
    token: &str,
    version: u8,
    filters: [u8; 8],
) -> Result<Option<[u8; N]>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid_token())?;
    let Some((body, tag)) = bytes.split_last_chunk::<TAG_LEN>() else {
        return Err(invalid_token());
    };
    // In constant time, so the MAC cannot be guessed byte by byte.
    key.mac(body)
        .verify_truncated_left(tag)
        .map_err(|_| invalid_token())?;
    let Some((&[found_version], rest)) = body.split_first_chunk() else {
        return Err(invalid_token());
    };
    let Some((cursor, found_filters)) = rest.split_first_chunk::<N>() else {
        return Err(invalid_token());
    };
    if found_version != version || found_filters != filters {
        return Err(invalid_token());
    }
    Ok(Some(*cursor))
}

fn invalid_token() -> Error {
    Error::invalid_with(
        Reason::InvalidPageToken,
        "page_token",
        "is not a page token of this listing",
    )
}

/// A time from Unix nanoseconds, if it is one the service takes: the years
/// 1 to 9999. Postgres `timestamptz` stores 4713 BC to 294276 AD, so a time
/// outside it is refused here rather than failing the query (INTERNAL).
pub fn storable_time(unix_nanos: i128) -> Result<OffsetDateTime, String> {
    OffsetDateTime::from_unix_timestamp_nanos(unix_nanos)
        .ok()
        .filter(|time| (1..=9999).contains(&time.year()))
        .ok_or_else(|| "must be between the years 1 and 9999".to_string())
}

/// A token's time: the MAC means the service wrote it, checked all the same.
fn time_from(bytes: &[u8]) -> Result<OffsetDateTime, Error> {
    let nanos = i128::from_be_bytes(bytes.try_into().map_err(|_| invalid_token())?);
    storable_time(nanos).map_err(|_| invalid_token())
}

fn id_from(bytes: &[u8]) -> Result<Uuid, Error> {
    Uuid::from_slice(bytes).map_err(|_| invalid_token())
}

/// 1 had no MAC.
const TOKEN_VERSION: u8 = 3;

pub fn encode_page_token(key: &PageKey, cursor: Cursor, filters: [u8; 8]) -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&cursor.time.unix_timestamp_nanos().to_be_bytes());
    bytes[16..].copy_from_slice(cursor.id.as_bytes());
    encode_token(key, TOKEN_VERSION, &bytes, filters)
}

/// `None` for an empty token (the first page).
pub fn decode_page_token(
    key: &PageKey,
    token: &str,
    filters: [u8; 8],
) -> Result<Option<Cursor>, Error> {
    let Some(bytes) = decode_token::<32>(key, token, TOKEN_VERSION, filters)? else {
        return Ok(None);
    };
    let (time, id) = bytes.split_at(16);
    Ok(Some(Cursor {
        time: time_from(time)?,
        id: id_from(id)?,
    }))
}

/// A role name as a page's last key (roles sort by it, built-in ones
/// first): its length, then its bytes (at most 64), zero-padded. 5.
const NAME_TOKEN_VERSION: u8 = 5;
const NAME_CURSOR_LEN: usize = 65;

pub fn encode_name_page_token(key: &PageKey, name: &str, filters: [u8; 8]) -> String {
    let mut bytes = [0u8; NAME_CURSOR_LEN];
    let name = &name.as_bytes()[..name.len().min(NAME_CURSOR_LEN - 1)];
    bytes[0] = u8::try_from(name.len()).unwrap_or(0);
    bytes[1..=name.len()].copy_from_slice(name);
    encode_token(key, NAME_TOKEN_VERSION, &bytes, filters)
}

/// `None` for an empty token (the first page).
pub fn decode_name_page_token(
    key: &PageKey,
    token: &str,
    filters: [u8; 8],
) -> Result<Option<String>, Error> {
    let Some(bytes) = decode_token::<NAME_CURSOR_LEN>(key, token, NAME_TOKEN_VERSION, filters)?
    else {
        return Ok(None);
    };
    let len = usize::from(bytes[0]).min(NAME_CURSOR_LEN - 1);
    String::from_utf8(bytes[1..=len].to_vec())
        .map(Some)
        .map_err(|_| invalid_token())
}

/// The sort key of the last row of a page sorted by a time that may be
/// absent (a user never active): `None` stands for SQL NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalTimeCursor {
    pub time: Option<OffsetDateTime>,
    pub id: Uuid,
}

/// Its cursor: whether the time is present (0 or 1), the time (zero when
/// absent), the id. 2 had no MAC.
const OPTIONAL_TOKEN_VERSION: u8 = 4;

pub fn encode_optional_page_token(
    key: &PageKey,
    cursor: OptionalTimeCursor,
    filters: [u8; 8],
) -> String {
    let mut bytes = [0u8; 33];
    bytes[0] = u8::from(cursor.time.is_some());
    let nanos = cursor.time.map_or(0, OffsetDateTime::unix_timestamp_nanos);
    bytes[1..17].copy_from_slice(&nanos.to_be_bytes());
    bytes[17..].copy_from_slice(cursor.id.as_bytes());
    encode_token(key, OPTIONAL_TOKEN_VERSION, &bytes, filters)
}

/// `None` for an empty token (the first page).
pub fn decode_optional_page_token(
    key: &PageKey,
    token: &str,
    filters: [u8; 8],
) -> Result<Option<OptionalTimeCursor>, Error> {
    let Some(bytes) = decode_token::<33>(key, token, OPTIONAL_TOKEN_VERSION, filters)? else {
        return Ok(None);
    };
    let (present, rest) = bytes.split_at(1);
    let (time, id) = rest.split_at(16);
    let time = match present[0] {
        0 => None,
        1 => Some(time_from(time)?),
        _ => return Err(invalid_token()),
    };
    Ok(Some(OptionalTimeCursor {
        time,
        id: id_from(id)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_and_are_bounded() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(200), Ok(200));
        assert!(page_size(-1).is_err());
        assert!(page_size(i32::MIN).is_err());
        assert_eq!(page_size(201), Ok(MAX_PAGE_SIZE));
        assert_eq!(page_size(i32::MAX), Ok(MAX_PAGE_SIZE));
    }

    fn key() -> PageKey {
        PageKey::new(b"the installation's page-token key")
    }

    #[test]
    fn tokens_round_trip_only_with_their_filters() {
        let key = key();
        let cursor = Cursor {
            time: OffsetDateTime::now_utc(),
            id: Uuid::now_v7(),
        };
        let filters = filter_digest("status=ACTIVE");
        let token = encode_page_token(&key, cursor, filters);
        assert_eq!(
            decode_page_token(&key, &token, filters).ok(),
            Some(Some(cursor))
        );
        assert!(decode_page_token(&key, &token, filter_digest("status=")).is_err());
        assert!(decode_page_token(&key, "garbage!", filters).is_err());
        assert!(decode_page_token(&key, &token[..10], filters).is_err());
    }

    #[test]
    fn optional_time_tokens_keep_an_absent_time_apart_from_any_time() {
        let key = key();
        let filters = filter_digest("users|last_active_time desc");
        for time in [
            None,
            Some(OffsetDateTime::UNIX_EPOCH),
            Some(OffsetDateTime::now_utc()),
        ] {
            let cursor = OptionalTimeCursor {
                time,
                id: Uuid::now_v7(),
            };
            let token = encode_optional_page_token(&key, cursor, filters);
            assert_eq!(
                decode_optional_page_token(&key, &token, filters).ok(),
                Some(Some(cursor))
            );
            assert!(decode_optional_page_token(&key, &token, filter_digest("other")).is_err());
            assert!(decode_page_token(&key, &token, filters).is_err());
        }
    }

    fn refused<T: std::fmt::Debug>(result: Result<T, Error>) -> bool {
        matches!(
            result,
            Err(Error::InvalidArgument {
                reason: Reason::InvalidPageToken,
                ..
            })
        )
    }

    /// The token with bit `bit` of its bytes flipped.
    fn flipped(token: &str, bit: usize) -> String {
        let mut bytes = URL_SAFE_NO_PAD.decode(token).expect("a token");
        bytes[bit / 8] ^= 1 << (bit % 8);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn a_token_with_any_bit_flipped_is_refused() {
        let key = key();
        let filters = filter_digest("activity|");
        let cursor = Cursor {
            time: OffsetDateTime::now_utc(),
            id: Uuid::now_v7(),
        };
        let token = encode_page_token(&key, cursor, filters);
        let optional = OptionalTimeCursor {
            time: Some(cursor.time),
            id: cursor.id,
        };
        let optional_token = encode_optional_page_token(&key, optional, filters);
        for bit in 0..(1 + 32 + 8 + TAG_LEN) * 8 {
            let altered = flipped(&token, bit);
            assert!(
                refused(decode_page_token(&key, &altered, filters)),
                "bit {bit}"
            );
        }
        for bit in 0..(1 + 33 + 8 + TAG_LEN) * 8 {
            let altered = flipped(&optional_token, bit);
            assert!(
                refused(decode_optional_page_token(&key, &altered, filters)),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn a_token_made_under_another_key_is_refused() {
        let filters = filter_digest("users|");
        let cursor = OptionalTimeCursor {
            time: None,
            id: Uuid::now_v7(),
        };
        let other = PageKey::new(b"another installation");
        let token = encode_optional_page_token(&other, cursor, filters);
        assert!(decode_optional_page_token(&other, &token, filters).is_ok());
        assert!(refused(decode_optional_page_token(&key(), &token, filters)));
        let token = encode_page_token(
            &other,
            Cursor {
                time: OffsetDateTime::UNIX_EPOCH,
                id: cursor.id,
            },
            filters,
        );
        assert!(refused(decode_page_token(&key(), &token, filters)));
    }

    #[test]
    fn a_time_outside_the_years_1_to_9999_is_refused() {
        let nanos = |seconds: i64| i128::from(seconds) * 1_000_000_000;
        // 0001-01-01 and 9999-12-31T23:59:59.
        assert!(storable_time(nanos(-62_135_596_800)).is_ok());
        assert!(storable_time(nanos(253_402_300_799)).is_ok());
        assert!(storable_time(nanos(-62_135_596_801)).is_err());
        assert!(storable_time(nanos(253_402_300_800)).is_err());
        // About 5000 BC: a time `time` holds but Postgres does not.
        assert!(storable_time(nanos(-220_000_000_000)).is_err());
        assert!(storable_time(i128::MAX).is_err());
        // A MAC'd token still holds only such times.
        let key = key();
        let cursor = Cursor {
            time: storable_time(nanos(-62_135_596_800)).expect("year 1"),
            id: Uuid::now_v7(),
        };
        let filters = filter_digest("");
        let token = encode_page_token(&key, cursor, filters);
        assert_eq!(
            decode_page_token(&key, &token, filters).ok(),
            Some(Some(cursor))
        );
    }

    #[test]
    fn a_role_name_token_round_trips_and_refuses_another_listing_or_an_edit() {
        let key = PageKey::new(b"test key");
        let filters = filter_digest("roles");
        let token = encode_name_page_token(&key, "night-shift", filters);
        assert_eq!(
            decode_name_page_token(&key, &token, filters).expect("its own token"),
            Some("night-shift".to_owned())
        );
        assert_eq!(
            decode_name_page_token(&key, "", filters).expect("the first page"),
            None
        );
        assert!(decode_name_page_token(&key, &token, filter_digest("users")).is_err());
        let mut edited = token.into_bytes();
        edited[5] = if edited[5] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(edited).expect("base64 stays ASCII");
        assert!(decode_name_page_token(&key, &edited, filters).is_err());
    }
}
