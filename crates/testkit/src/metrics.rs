//! Reading a Prometheus endpoint as a scraper does: `GET /metrics` over a
//! real HTTP/1.1 connection, and the text format's samples by name and labels.

use std::{net::SocketAddr, time::Duration};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scrape of the endpoint at `address`: its samples.
pub struct Scrape {
    pub text: String,
}

/// Scrapes `address`; panics unless it answers 200 with the text format.
pub async fn scrape(address: SocketAddr) -> Scrape {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8(response).unwrap()
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("the metrics endpoint answers");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    Scrape {
        text: body.to_owned(),
    }
}

impl Scrape {
    /// The value of the first sample named `name` carrying every one of
    /// `labels` (others may be there too).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.text.lines().find_map(|line| {
            if line.starts_with('#') {
                return None;
            }
            let (series, value) = line.rsplit_once(' ')?;
            let (sample, label_text) = match series.split_once('{') {
                Some((sample, rest)) => (sample, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if sample != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(key, value)| label_text.contains(&format!("{key}=\"{value}\"")));
            all.then(|| value.parse().ok()).flatten()
        })
    }

    /// Like [`Scrape::value`], 0 when there is no such sample yet.
    pub fn value_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }

    /// Asserts a sample named `name` with `labels` exists, and returns its value.
    #[track_caller]
    pub fn expect(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} with {labels:?} in:\n{}", self.text))
    }
}
