//! Rate limits shared by every replica: the one implementation behind the
//! sign-in, invitation and token-attempt limits.
//!
//! Each limit allows `n` events a minute per key as a token bucket (GCRA):
//! a unit comes back every minute / n, and up to n may be taken at once.
//! The buckets live in Postgres (`store::rate_limits`), so a limit holds
//! across replicas and restarts: one atomic upsert per limit, every limit
//! of a check in one statement, on the connection the operation uses anyway
//! (InviteUser sends it in the pipeline that begins its transaction).
//!
//! Keys are HMAC-SHA256 digests of what they count (an email, an address,
//! an id) under the installation's secret, read once from Postgres: the
//! table holds no email or address, and every replica makes the same key.
//!
//! The store being unreachable fails every limit closed: the check's error
//! (UNAVAILABLE) is the call's. Postgres is also where the operation itself
//! would go next, so failing open would buy nothing but unlimited guesses
//! while it is half-reachable.

use std::{net::IpAddr, time::Duration};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::{
    domain::{Error, pagination::PageKey, suppression::UnsubscribeKey},
    store::{GenericClient, Pool, rate_limits},
};

pub use crate::store::rate_limits::Take;

/// At most `count` events per period (a minute, an hour) per key; 0 turns
/// it off.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Its name in the store: one bucket per name and key.
    name: &'static str,
    count: u32,
    period_secs: f64,
}

impl Limit {
    pub const fn per_minute(name: &'static str, per_minute: u32) -> Self {
        Limit {
            name,
            count: per_minute,
            period_secs: 60.0,
        }
    }

    pub const fn per_hour(name: &'static str, per_hour: u32) -> Self {
        Limit {
            name,
            count: per_hour,
            period_secs: 3600.0,
        }
    }

    pub const fn per_day(name: &'static str, per_day: u32) -> Self {
        Limit {
            name,
            count: per_day,
            period_secs: 86_400.0,
        }
    }

    /// This limit when `on`, else the same turned off (a key that is not
    /// known, such as a client address the transport does not give).
    pub const fn only_if(self, on: bool) -> Self {
        Limit {
            count: if on { self.count } else { 0 },
            ..self
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn is_off(&self) -> bool {
        self.count == 0
    }

    fn take(&self, key: [u8; 32]) -> Take {
        let emission = self.period_secs / f64::from(self.count.max(1));
        Take {
            limit: self.name,
            key,
            emission,
            tolerance: emission * f64::from(self.count.saturating_sub(1)),
        }
    }
}

/// Makes the keys of the shared limits and takes their units.
pub struct SharedLimits {
    pool: Pool,
    /// The installation's key, read on first use.
    mac: OnceCell<Hmac<Sha256>>,
}

impl SharedLimits {
    pub fn new(pool: Pool) -> Self {
        SharedLimits {
            pool,
            mac: OnceCell::new(),
        }
    }

    /// The unit of each limit that is on, for the key made of `parts`, in
    /// order; off limits are left out.
    pub async fn takes(&self, checks: &[(Limit, &[&[u8]])]) -> Result<Vec<Take>, Error> {
        if checks.iter().all(|(limit, _)| limit.is_off()) {
            return Ok(Vec::new());
        }
        let mac = self.mac().await?;
        Ok(checks
            .iter()
            .filter(|(limit, _)| !limit.is_off())
            .map(|(limit, parts)| limit.take(key(mac.clone(), limit.name, parts)))
            .collect())
    }

    /// The digest of `parts` under the installation's key, named `name`:
    /// what the store keeps instead of an email or an address.
    pub async fn digest(&self, name: &str, parts: &[&[u8]]) -> Result<[u8; 32], Error> {
        Ok(key(self.mac().await?.clone(), name, parts))
    }

    /// The page-token key, HMAC(secret, "page-token"): the same on every
    /// replica, and no limit's key (those begin with a length prefix).
    pub async fn page_key(&self) -> Result<PageKey, Error> {
        let mut mac = self.mac().await?.clone();
        mac.update(b"page-token");
        Ok(PageKey::new(&mac.finalize().into_bytes()))
    }

    /// The unsubscribe-token key, HMAC(secret, "unsubscribe-token"): the
    /// same on every replica, and no other key (a limit's begins with a
    /// length prefix, the page-token key is another label). On first use
    /// the secret is read through `client`, the connection the caller
    /// holds: a change holding one must not wait for another from the pool.
    pub async fn unsubscribe_key(
        &self,
        client: &impl GenericClient,
    ) -> Result<UnsubscribeKey, Error> {
        let mut mac = self
            .mac
            .get_or_try_init(|| async { key_of(&rate_limits::secret(client).await?) })
            .await?
            .clone();
        mac.update(b"unsubscribe-token");
        UnsubscribeKey::new(&mac.finalize().into_bytes())
    }

    async fn mac(&self) -> Result<&Hmac<Sha256>, Error> {
        self.mac
            .get_or_try_init(|| async {
                let client = self.pool.get().await?;
                key_of(&rate_limits::secret(&client).await?)
            })
            .await
    }

    /// Takes one unit of each of `takes` in turn, stopping at the first
    /// that has none; `Err(wait)` says how long until it has one.
    pub async fn take(
        &self,
        client: &impl GenericClient,
        takes: &[Take],
    ) -> Result<Result<(), Duration>, Error> {
        if takes.is_empty() {
            return Ok(Ok(()));
        }
        rate_limits::take(client, takes).await
    }

    /// Whether `take`'s bucket is empty now (read on a connection of its
    /// own, nothing taken): which of a refused check's limits refused it.
    pub async fn exhausted(&self, take: &Take) -> Result<bool, Error> {
        let client = self.pool.get().await?;
        rate_limits::exhausted(&client, take).await
    }

    /// Gives a unit taken by [`Self::take`] back.
    pub async fn give_back(&self, client: &impl GenericClient, take: &Take) -> Result<(), Error> {
        rate_limits::give_back(client, take).await
    }
}

/// The installation's key, from its secret.
fn key_of(secret: &[u8]) -> Result<Hmac<Sha256>, Error> {
    Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|e| Error::Unexpected(anyhow::anyhow!("the rate limit key: {e}")))
}

/// The digest of a limit's key: each part length-prefixed, so no two
/// different keys run together into the same bytes.
fn key(mut mac: Hmac<Sha256>, limit: &str, parts: &[&[u8]]) -> [u8; 32] {
    for part in std::iter::once(limit.as_bytes()).chain(parts.iter().copied()) {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A client address as limits count it: IPv4 as is, IPv6 by its /64 (what
/// one subscriber usually holds), so rotating addresses within it does not
/// help.
pub fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// The bytes of an address's key.
pub fn address_bytes(address: IpAddr) -> Vec<u8> {
    match address_key(address) {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_of_n_a_minute_gives_a_unit_back_every_minute_over_n_and_a_burst_of_n() {
        let take = Limit::per_minute("x", 4).take([0; 32]);
        assert_eq!(take.emission, 15.0);
        assert_eq!(take.tolerance, 45.0);
        let one = Limit::per_minute("x", 1).take([0; 32]);
        assert_eq!((one.emission, one.tolerance), (60.0, 0.0));
        let hourly = Limit::per_hour("x", 30).take([0; 32]);
        assert_eq!((hourly.emission, hourly.tolerance), (120.0, 3480.0));
    }

    #[test]
    fn keys_differ_by_limit_secret_and_part_boundaries() {
        let mac = |secret: &[u8]| Hmac::<Sha256>::new_from_slice(secret).expect("any length");
        let a = key(mac(b"one"), "sign_in.email", &[b"ab", b"c"]);
        assert_eq!(a, key(mac(b"one"), "sign_in.email", &[b"ab", b"c"]));
        assert_ne!(a, key(mac(b"one"), "sign_in.email", &[b"a", b"bc"]));
        assert_ne!(a, key(mac(b"one"), "sign_in.address", &[b"ab", b"c"]));
        assert_ne!(a, key(mac(b"two"), "sign_in.email", &[b"ab", b"c"]));
    }

    #[test]
    fn ipv6_addresses_share_a_key_per_64_and_mapped_ipv4_is_ipv4() {
        let parse = |text: &str| text.parse::<IpAddr>().expect("an address");
        assert_eq!(
            address_key(parse("2001:db8:1:2:aaaa::1")),
            address_key(parse("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            address_key(parse("2001:db8:1:2::1")),
            address_key(parse("2001:db8:1:3::1"))
        );
        assert_eq!(
            address_key(parse("::ffff:192.0.2.7")),
            IpAddr::from([192, 0, 2, 7])
        );
    }
}
