//! Safe retries: a caller-chosen request id plus a fingerprint of the request,
//! so a retry returns the first result and a reused id with another request
//! is refused.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub request_id: String,
    pub fingerprint: [u8; 32],
}

impl IdempotencyKey {
    pub const MAX_LEN: usize = 128;

    /// `None` for an empty request id (no retry protection asked for).
    pub fn parse(request_id: &str, request_bytes: &[u8]) -> Result<Option<Self>, String> {
        if request_id.is_empty() {
            return Ok(None);
        }
        if request_id.len() > Self::MAX_LEN || !request_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "must be at most {} printable ASCII characters",
                Self::MAX_LEN
            ));
        }
        Ok(Some(IdempotencyKey {
            request_id: request_id.to_owned(),
            fingerprint: Sha256::digest(request_bytes).into(),
        }))
    }
}
