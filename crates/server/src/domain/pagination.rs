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

/// Digests a list call's filters, so a token only continues the same listing.
pub fn filter_digest(filters: &str) -> [u8; 8] {
    let digest = Sha256::digest(filters.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// The one token layout: a version byte, the cursor's bytes, then the
/// digest of the filters the listing was made with.
fn encode_token(version: u8, cursor: &[u8], filters: [u8; 8]) -> String {
    let mut bytes = Vec::with_capacity(1 + cursor.len() + filters.len());
    bytes.push(version);
    bytes.extend_from_slice(cursor);
    bytes.extend_from_slice(&filters);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The cursor bytes of a token of `version` whose cursor is `N` bytes long;
/// `None` for an empty token (the first page).
fn decode_token<const N: usize>(
    token: &str,
    version: u8,
    filters: [u8; 8],
) -> Result<Option<[u8; N]>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid_token())?;
    let Some((&[found_version], rest)) = bytes.split_first_chunk() else {
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

fn time_from(bytes: &[u8]) -> Result<OffsetDateTime, Error> {
    let nanos = i128::from_be_bytes(bytes.try_into().map_err(|_| invalid_token())?);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid_token())
}

fn id_from(bytes: &[u8]) -> Result<Uuid, Error> {
    Uuid::from_slice(bytes).map_err(|_| invalid_token())
}

const TOKEN_VERSION: u8 = 1;

pub fn encode_page_token(cursor: Cursor, filters: [u8; 8]) -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&cursor.time.unix_timestamp_nanos().to_be_bytes());
    bytes[16..].copy_from_slice(cursor.id.as_bytes());
    encode_token(TOKEN_VERSION, &bytes, filters)
}

/// `None` for an empty token (the first page).
pub fn decode_page_token(token: &str, filters: [u8; 8]) -> Result<Option<Cursor>, Error> {
    let Some(bytes) = decode_token::<32>(token, TOKEN_VERSION, filters)? else {
        return Ok(None);
    };
    let (time, id) = bytes.split_at(16);
    Ok(Some(Cursor {
        time: time_from(time)?,
        id: id_from(id)?,
    }))
}

/// The sort key of the last row of a page sorted by a time that may be
/// absent (a user never active): `None` stands for SQL NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalTimeCursor {
    pub time: Option<OffsetDateTime>,
    pub id: Uuid,
}

/// Its cursor: whether the time is present (0 or 1), the time (zero when
/// absent), the id.
const OPTIONAL_TOKEN_VERSION: u8 = 2;

pub fn encode_optional_page_token(cursor: OptionalTimeCursor, filters: [u8; 8]) -> String {
    let mut bytes = [0u8; 33];
    bytes[0] = u8::from(cursor.time.is_some());
    let nanos = cursor.time.map_or(0, OffsetDateTime::unix_timestamp_nanos);
    bytes[1..17].copy_from_slice(&nanos.to_be_bytes());
    bytes[17..].copy_from_slice(cursor.id.as_bytes());
    encode_token(OPTIONAL_TOKEN_VERSION, &bytes, filters)
}

/// `None` for an empty token (the first page).
pub fn decode_optional_page_token(
    token: &str,
    filters: [u8; 8],
) -> Result<Option<OptionalTimeCursor>, Error> {
    let Some(bytes) = decode_token::<33>(token, OPTIONAL_TOKEN_VERSION, filters)? else {
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
