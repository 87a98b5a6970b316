//! How often strangers may knock: every public call of the ways in (an
//! invite link's preview and redemption, a join request and its
//! confirmation) counts towards a limit per client address; redemptions
//! count per link as well, and join requests per email address, so no
//! mailbox is flooded with confirmation emails. Caps bound what one
//! workspace holds: usable links, open requests.

use std::{net::IpAddr, time::Duration};

use super::limits::{Limit, SharedLimits, address_bytes};
use crate::{
    domain::{Error, Reason, invitation::TokenHash},
    store::GenericClient,
};

/// The settings; a limit of 0 is off.
#[derive(Debug, Clone)]
pub struct JoiningPolicySettings {
    /// Public calls (preview, redeem, request, confirm) per client address.
    pub attempts_per_address_per_minute: u32,
    /// Redemptions per invite link.
    pub redemptions_per_link_per_minute: u32,
    /// Join requests (direct or through a link) per email address.
    pub requests_per_email_per_hour: u32,
    /// Most links of one workspace that work at once.
    pub max_usable_links: i64,
    /// Most open (unconfirmed or pending) join requests of one workspace.
    pub max_open_requests: i64,
    /// How long after a denial a request from the same address is ignored.
    pub request_cooldown: Duration,
}

impl Default for JoiningPolicySettings {
    fn default() -> Self {
        JoiningPolicySettings {
            attempts_per_address_per_minute: 30,
            redemptions_per_link_per_minute: 60,
            requests_per_email_per_hour: 5,
            max_usable_links: 50,
            max_open_requests: 500,
            request_cooldown: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

pub struct JoiningPolicy {
    pub max_usable_links: i64,
    pub max_open_requests: i64,
    pub request_cooldown: time::Duration,
    attempts_by_address: Limit,
    redemptions_by_link: Limit,
    requests_by_email: Limit,
}

impl JoiningPolicy {
    pub fn new(settings: &JoiningPolicySettings) -> Self {
        JoiningPolicy {
            max_usable_links: settings.max_usable_links,
            max_open_requests: settings.max_open_requests,
            request_cooldown: time::Duration::try_from(settings.request_cooldown)
                .unwrap_or(time::Duration::MAX),
            attempts_by_address: Limit::per_minute(
                "joining.attempts_by_address",
                settings.attempts_per_address_per_minute,
            ),
            redemptions_by_link: Limit::per_minute(
                "joining.redemptions_by_link",
                settings.redemptions_per_link_per_minute,
            ),
            requests_by_email: Limit::per_hour(
                "joining.requests_by_email",
                settings.requests_per_email_per_hour,
            ),
        }
    }

    /// Counts one public call from `client` (the address's limit) and, when
    /// it names a link, one use of that link's secret (hashed, so an unknown
    /// secret is counted like a known one).
    pub async fn admit(
        &self,
        limits: &SharedLimits,
        db: &impl GenericClient,
        client: Option<IpAddr>,
        link: Option<TokenHash>,
    ) -> Result<(), Error> {
        let address = client.map(address_bytes);
        let by_address = self.attempts_by_address.only_if(address.is_some());
        let address = address.unwrap_or_default();
        let by_link = self.redemptions_by_link.only_if(link.is_some());
        let link = link.map(|hash| hash.0).unwrap_or_default();
        let checks: [(Limit, &[&[u8]]); 2] = [(by_address, &[&address]), (by_link, &[&link])];
        let takes = limits.takes(&checks).await?;
        limits.take(db, &takes).await?.map_err(|wait| {
            Error::rate_limited(
                Reason::JoiningRateLimited,
                "too many attempts to join; retry later",
                wait,
            )
        })
    }

    /// Whether one more join request (and its confirmation email) may go
    /// to `email_normalized` this hour. A refusal is not told to the
    /// requester: their answer is the same either way.
    pub async fn may_email(
        &self,
        limits: &SharedLimits,
        db: &impl GenericClient,
        email_normalized: &str,
    ) -> Result<bool, Error> {
        let checks: [(Limit, &[&[u8]]); 1] =
            [(self.requests_by_email, &[email_normalized.as_bytes()])];
        let takes = limits.takes(&checks).await?;
        Ok(limits.take(db, &takes).await?.is_ok())
    }
}
