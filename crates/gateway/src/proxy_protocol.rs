//! The PROXY protocol (v1 text and v2 binary, haproxy's specification): a
//! TCP or TLS-terminating balancer (haproxy `send-proxy-v2`, an AWS NLB)
//! writes the client's address before the first byte of HTTP. Parsing is
//! `ppp`'s; this module reads just enough of the stream for it.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use ppp::{HeaderResult, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What the header said and the bytes read past it (the start of HTTP).
#[derive(Debug)]
pub struct ProxyHeader {
    /// The client's address; `None` for a `LOCAL` command or an `UNKNOWN`
    /// or unix-socket source (the balancer's own health check).
    pub source: Option<SocketAddr>,
    pub rest: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    #[error("the connection closed before its PROXY protocol header ended")]
    Closed,
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the PROXY header that must open `stream`.
pub async fn read(stream: &mut (impl AsyncRead + Unpin)) -> Result<ProxyHeader, ProxyHeaderError> {
    let mut buffer = BytesMut::with_capacity(256);
    loop {
        if stream.read_buf(&mut buffer).await? == 0 {
            return Err(ProxyHeaderError::Closed);
        }
        // `ppp` judges a header cut in the middle of an address as wrong,
        // not as incomplete: it is given whole headers only.
        let Some(length) = header_length(&buffer)? else {
            continue;
        };
        let (source, length) = match HeaderResult::parse(&buffer[..length]) {
            HeaderResult::V1(Ok(header)) => (v1_source(&header.addresses), header.header.len()),
            HeaderResult::V2(Ok(header)) => {
                let source = match header.command {
                    v2::Command::Local => None,
                    v2::Command::Proxy => v2_source(&header.addresses),
                };
                (source, header.len())
            }
            HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => {
                return Err(ProxyHeaderError::Missing);
            }
        };
        let rest = buffer.split_off(length).freeze();
        return Ok(ProxyHeader { source, rest });
    }
}

/// The length of the whole header at the start of `buffer`, once all of
/// it is there; `None` while it may still come.
fn header_length(buffer: &[u8]) -> Result<Option<usize>, ProxyHeaderError> {
    let starts = |prefix: &[u8]| {
        let n = buffer.len().min(prefix.len());
        buffer[..n] == prefix[..n]
    };
    if starts(v2::PROTOCOL_PREFIX) {
        // 12 bytes of signature, version and command, family, length (u16).
        if buffer.len() < 16 {
            return Ok(None);
        }
        let length = 16 + usize::from(u16::from_be_bytes([buffer[14], buffer[15]]));
        return Ok((buffer.len() >= length).then_some(length));
    }
    if starts(b"PROXY ") {
        // One line of at most 107 bytes, CRLF included.
        let end = buffer.windows(2).take(106).position(|pair| pair == b"\r\n");
        return match end {
            Some(end) => Ok(Some(end + 2)),
            None if buffer.len() >= 107 => Err(ProxyHeaderError::Missing),
            None => Ok(None),
        };
    }
    Err(ProxyHeaderError::Missing)
}

fn v1_source(addresses: &v1::Addresses) -> Option<SocketAddr> {
    match addresses {
        v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v1::Addresses::Unknown => None,
    }
}

fn v2_source(addresses: &v2::Addresses) -> Option<SocketAddr> {
    match addresses {
        v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn parse(bytes: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
        // One byte at a time: the header may arrive in any number of reads.
        let (mut client, mut server) = tokio::io::duplex(1);
        let bytes = bytes.to_vec();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for byte in bytes {
                if client.write_all(&[byte]).await.is_err() {
                    break;
                }
            }
        });
        read(&mut server).await
    }

    #[tokio::test]
    async fn v1_gives_the_source_and_keeps_what_follows() {
        let header = parse(b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n")
            .await
            .unwrap();
        assert_eq!(header.source, Some("192.0.2.1:56324".parse().unwrap()));
        // Read a byte at a time, the header ends where a read ends.
        assert!(header.rest.is_empty());
        let (mut client, mut server) = tokio::io::duplex(1024);
        use tokio::io::AsyncWriteExt;
        client
            .write_all(b"PROXY TCP4 192.0.2.1 198.51.100.1 1 2\r\nGET / HTTP/1.1\r\n")
            .await
            .unwrap();
        let at_once = read(&mut server).await.unwrap();
        assert_eq!(&at_once.rest[..], b"GET / HTTP/1.1\r\n");
        let v6 = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n")
            .await
            .unwrap();
        assert_eq!(v6.source, Some("[2001:db8::1]:1".parse().unwrap()));
        let unknown = parse(b"PROXY UNKNOWN\r\n").await.unwrap();
        assert_eq!(unknown.source, None);
    }

    #[tokio::test]
    async fn v2_gives_the_source_and_local_gives_none() {
        let addresses: v2::Addresses = (
            "192.0.2.1:56324".parse::<SocketAddr>().unwrap(),
            "198.51.100.1:443".parse::<SocketAddr>().unwrap(),
        )
            .into();
        let mut bytes = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            addresses,
        )
        .write_tlv(v2::Type::NoOp, b"pad")
        .unwrap()
        .build()
        .unwrap();
        bytes.extend_from_slice(b"GET");
        let header = parse(&bytes).await.unwrap();
        assert_eq!(header.source, Some("192.0.2.1:56324".parse().unwrap()));
        let local = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Local,
            v2::Protocol::Unspecified,
            v2::Addresses::Unspecified,
        )
        .build()
        .unwrap();
        assert_eq!(parse(&local).await.unwrap().source, None);
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await,
            Err(ProxyHeaderError::Missing)
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 not an address at all\r\n").await,
            Err(ProxyHeaderError::Missing)
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 192.0.2.1").await,
            Err(ProxyHeaderError::Closed)
        ));
        let endless = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(
            parse(&endless).await,
            Err(ProxyHeaderError::Missing)
        ));
    }
}
