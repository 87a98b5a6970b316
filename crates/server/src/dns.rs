//! DNS, as domain verification needs it: the TXT strings at a name, from the
//! configured resolver (`WOWCHAT_DNS_RESOLVER`, e.g. a local dnsmasq in the
//! tests) or the system's. Nothing is cached here: a verification or a
//! re-check sees the record as it is now.

use std::{net::SocketAddr, time::Duration};

use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts},
    net::runtime::TokioRuntimeProvider,
    proto::rr::RData,
};

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtAnswer {
    /// The TXT strings at the name (each record's strings joined).
    Found(Vec<String>),
    /// The name has no TXT record, or does not exist: an authoritative no.
    Missing,
}

/// Why a lookup gave no answer (a timeout, a server failure): not a no.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {name} failed: {reason}")]
pub struct LookupFailed {
    pub name: String,
    pub reason: String,
}

pub struct TxtResolver {
    /// `None` until configured: every lookup fails (a state no server runs
    /// with; see `startup`).
    resolver: Option<TokioResolver>,
}

impl TxtResolver {
    /// Through `server` (UDP, then TCP) when set, else the system's
    /// resolvers (`/etc/resolv.conf`).
    pub fn new(server: Option<SocketAddr>) -> anyhow::Result<Self> {
        let mut options = ResolverOpts::default();
        options.cache_size = 0;
        options.timeout = Duration::from_secs(3);
        options.attempts = 2;
        let builder = match server {
            Some(server) => {
                let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
                name_server.connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut connection| {
                        connection.port = server.port();
                        connection
                    })
                    .collect();
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], vec![name_server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()?,
        };
        Ok(TxtResolver {
            resolver: Some(builder.with_options(options).build()?),
        })
    }

    /// A resolver that answers nothing (every lookup fails).
    pub fn unconfigured() -> Self {
        TxtResolver { resolver: None }
    }

    pub async fn txt(&self, name: &str) -> Result<TxtAnswer, LookupFailed> {
        // Fully qualified: no search domain is tried.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let Some(resolver) = &self.resolver else {
            return Err(LookupFailed {
                name: name.to_owned(),
                reason: "no DNS resolver is configured".into(),
            });
        };
        match resolver.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(TxtAnswer::Found(
                lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::TXT(txt) => Some(
                            txt.txt_data
                                .iter()
                                .map(|part| String::from_utf8_lossy(part))
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect(),
            )),
            Err(err) if err.is_no_records_found() => Ok(TxtAnswer::Missing),
            Err(err) => Err(LookupFailed {
                name: name.to_owned(),
                reason: err.to_string(),
            }),
        }
    }
}
