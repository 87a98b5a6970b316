//! Keyset pagination: page sizes and opaque page tokens. A token names the
//! last row of a page and the filters it was made with; a token used with
//! other filters, or tampered with, is refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Error, Reason};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

/// 0 means the default; negative or above the maximum is refused.
pub fn page_size(requested: i32) -> Result<i64, String> {
    match i64::from(requested) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        _ => Err(format!("must be between 0 and {MAX_PAGE_SIZE}")),
    }
}

/// The sort key of the last row of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub time: OffsetDateTime,
    pub id: Uuid,
}

const TOKEN_VERSION: u8 = 1;
const TOKEN_LEN: usize = 1 + 16 + 16 + 8;

/// Digests a list call's filters, so a token only continues the same listing.
pub fn filter_digest(filters: &str) -> [u8; 8] {
    let digest = Sha256::digest(filters.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

pub fn encode_page_token(cursor: Cursor, filters: [u8; 8]) -> String {
    let mut bytes = Vec::with_capacity(TOKEN_LEN);
    bytes.push(TOKEN_VERSION);
    bytes.extend_from_slice(&cursor.time.unix_timestamp_nanos().to_be_bytes());
    bytes.extend_from_slice(cursor.id.as_bytes());
    bytes.extend_from_slice(&filters);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `None` for an empty token (the first page).
pub fn decode_page_token(token: &str, filters: [u8; 8]) -> Result<Option<Cursor>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Error::invalid_with(
            Reason::InvalidPageToken,
            "page_token",
            "is not a page token of this listing",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if bytes.len() != TOKEN_LEN || bytes[0] != TOKEN_VERSION || bytes[33..] != filters {
        return Err(invalid());
    }
    let nanos = i128::from_be_bytes(bytes[1..17].try_into().map_err(|_| invalid())?);
    let id = Uuid::from_slice(&bytes[17..33]).map_err(|_| invalid())?;
    let time = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid())?;
    Ok(Some(Cursor { time, id }))
}

/// The sort key of the last row of a page sorted by a time that may be
/// absent (a user never active): `None` stands for SQL NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalTimeCursor {
    pub time: Option<OffsetDateTime>,
    pub id: Uuid,
}

const OPTIONAL_TOKEN_VERSION: u8 = 2;
/// Version, presence of the time, the time, the id, the filters.
const OPTIONAL_TOKEN_LEN: usize = 1 + 1 + 16 + 16 + 8;

pub fn encode_optional_page_token(cursor: OptionalTimeCursor, filters: [u8; 8]) -> String {
    let mut bytes = Vec::with_capacity(OPTIONAL_TOKEN_LEN);
    bytes.push(OPTIONAL_TOKEN_VERSION);
    bytes.push(u8::from(cursor.time.is_some()));
    let nanos = cursor.time.map_or(0, OffsetDateTime::unix_timestamp_nanos);
    bytes.extend_from_slice(&nanos.to_be_bytes());
    bytes.extend_from_slice(cursor.id.as_bytes());
    bytes.extend_from_slice(&filters);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `None` for an empty token (the first page).
pub fn decode_optional_page_token(
    token: &str,
    filters: [u8; 8],
) -> Result<Option<OptionalTimeCursor>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Error::invalid_with(
            Reason::InvalidPageToken,
            "page_token",
            "is not a page token of this listing",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if bytes.len() != OPTIONAL_TOKEN_LEN
        || bytes[0] != OPTIONAL_TOKEN_VERSION
        || bytes[1] > 1
        || bytes[34..] != filters
    {
        return Err(invalid());
    }
    let nanos = i128::from_be_bytes(bytes[2..18].try_into().map_err(|_| invalid())?);
    let id = Uuid::from_slice(&bytes[18..34]).map_err(|_| invalid())?;
    let time = if bytes[1] == 1 {
        Some(OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid())?)
    } else {
        None
    };
    Ok(Some(OptionalTimeCursor { time, id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_and_are_bounded() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(200), Ok(200));
        assert!(page_size(-1).is_err());
        assert!(page_size(i32::MAX).is_err());
    }

    #[test]
    fn tokens_round_trip_only_with_their_filters() {
        let cursor = Cursor {
            time: OffsetDateTime::now_utc(),
            id: Uuid::now_v7(),
        };
        let filters = filter_digest("status=ACTIVE");
        let token = encode_page_token(cursor, filters);
        assert_eq!(decode_page_token(&token, filters).ok(), Some(Some(cursor)));
        assert!(decode_page_token(&token, filter_digest("status=")).is_err());
        assert!(decode_page_token("garbage!", filters).is_err());
        assert!(decode_page_token(&token[..10], filters).is_err());
    }

    #[test]
    fn optional_time_tokens_keep_an_absent_time_apart_from_any_time() {
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
            let token = encode_optional_page_token(cursor, filters);
            assert_eq!(
                decode_optional_page_token(&token, filters).ok(),
                Some(Some(cursor))
            );
            assert!(decode_optional_page_token(&token, filter_digest("other")).is_err());
            assert!(decode_page_token(&token, filters).is_err());
        }
    }
}
