//! Per-client request limits: a flood from one address gets 429s, cheaply,
//! before it reaches storage, while every other client is served as usual.
//!
//! The client is the peer address of the connection (axum's `ConnectInfo`).
//! `X-Forwarded-For` is believed only when the peer is a configured proxy;
//! then the client is the right-most address in it that is not a proxy.
//!
//! Three budgets, so that no outside load can stop an operator's alert: an
//! anonymous request (public pages, the feed, the signup) spends its
//! address's budget; a request with a key that has worked before spends
//! that key's own budget, which anonymous traffic from the same address (a
//! crisis centre's citizens behind one NAT) cannot touch; a request with a
//! key not yet seen to work spends its address's budget for unknown keys,
//! so random keys cannot buy fresh budgets.

use super::problem::Problem;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How clients are limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLimitConfig {
    /// Requests per second each client address may make, sustained.
    pub per_second: u32,
    /// Requests a client may make at once after a quiet spell.
    pub burst: u32,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for ClientLimitConfig {
    fn default() -> Self {
        Self {
            per_second: 100,
            burst: 200,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The limiter shared by every request of a server.
pub struct ClientLimits {
    /// Anonymous requests, per address.
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Requests with a key not (yet) seen to work, per address.
    unknown_keys: DefaultKeyedRateLimiter<IpAddr>,
    /// Requests with a key that worked, per key (its SHA-256).
    keys: DefaultKeyedRateLimiter<[u8; 32]>,
    /// Keys answered with anything but a 401 lately.
    known: std::sync::Mutex<std::collections::HashSet<[u8; 32]>>,
    trusted: Vec<IpAddr>,
    seen: AtomicU64,
}

/// Keys remembered as working (forgotten all at once past this: they are
/// learnt again on their next answer).
const KNOWN_KEYS: usize = 10_000;

impl ClientLimits {
    pub fn new(config: &ClientLimitConfig) -> Arc<Self> {
        let per_second = NonZeroU32::new(config.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst.max(config.per_second)).unwrap_or(per_second);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Arc::new(Self {
            limiter: RateLimiter::keyed(quota),
            unknown_keys: RateLimiter::keyed(quota),
            keys: RateLimiter::keyed(quota),
            known: Default::default(),
            trusted: config.trusted_proxies.clone(),
            seen: AtomicU64::new(0),
        })
    }

    /// Which budget a request spends: `Err(seconds to wait)` when it is
    /// spent. `key`: the SHA-256 of the request's bearer key, if any.
    pub fn check_request(&self, client: IpAddr, key: Option<[u8; 32]>) -> Result<(), u64> {
        let Some(key) = key else {
            return self.check(client);
        };
        let known = self.known.lock().map(|k| k.contains(&key)).unwrap_or(false);
        let outcome = if known {
            self.keys.check_key(&key)
        } else {
            self.unknown_keys.check_key(&client)
        };
        outcome.map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }

    /// A key's request was answered: anything but a 401 means the key works.
    pub fn answered(&self, key: [u8; 32], status: StatusCode) {
        if status == StatusCode::UNAUTHORIZED {
            return;
        }
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= KNOWN_KEYS {
                known.clear();
            }
            known.insert(key);
        }
    }

    /// The client a request comes from.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&HeaderValue>) -> IpAddr {
        if !self.trusted.contains(&peer) {
            return peer;
        }
        forwarded_for
            .and_then(|v| v.to_str().ok())
            .and_then(|list| {
                list.rsplit(',')
                    .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                    .find(|a| !self.trusted.contains(a))
            })
            .unwrap_or(peer)
    }

    /// `Err(seconds to wait)` when the client is over its limit.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        // Forget idle clients now and then, so the table stays small.
        if self.seen.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.limiter.retain_recent();
            self.unknown_keys.retain_recent();
            self.keys.retain_recent();
        }
        self.limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs().max(1)
        })
    }
}

/// The client address the limit was applied to (the peer, or the
/// forwarded address a trusted proxy gave), for handlers that count per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The middleware: requests without a known peer (Lambda behind API
/// Gateway, whose own throttling applies) pass.
pub async fn limit_clients(
    State(limits): State<Arc<ClientLimits>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = limits.client(peer, request.headers().get("x-forwarded-for"));
        let key = bearer_hash(request.headers());
        if let Err(wait) = limits.check_request(client, key) {
            let mut res = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests from {client}; wait {wait} s and slow down"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return res;
        }
        request.extensions_mut().insert(ClientIp(client));
        let response = next.run(request).await;
        if let Some(key) = key {
            limits.answered(key, response.status());
        }
        return response;
    }
    next.run(request).await
}

/// The SHA-256 of a request's `Authorization: Bearer` key.
fn bearer_hash(headers: &axum::http::HeaderMap) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
        return None;
    }
    Some(Sha256::digest(key.trim().as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn one_flooding_client_is_limited_and_another_is_not() {
        let limits = ClientLimits::new(&ClientLimitConfig {
            per_second: 5,
            burst: 10,
            trusted_proxies: vec![],
        });
        let flood = (0..100)
            .filter(|_| limits.check(ip("10.0.0.1")).is_ok())
            .count();
        assert!(flood <= 11, "{flood} of 100 requests passed");
        assert!(
            limits.check(ip("10.0.0.2")).is_ok(),
            "another client is served"
        );
    }

    #[test]
    fn a_working_key_has_its_own_budget_and_random_keys_share_one() {
        let limits = ClientLimits::new(&ClientLimitConfig {
            per_second: 5,
            burst: 10,
            trusted_proxies: vec![],
        });
        let nat = ip("10.0.0.1");
        let good = [1u8; 32];
        // The key works once; then anonymous traffic from its address
        // spends that address's budget, not the key's.
        assert!(limits.check_request(nat, Some(good)).is_ok());
        limits.answered(good, StatusCode::CREATED);
        let anonymous = (0..100)
            .filter(|_| limits.check_request(nat, None).is_ok())
            .count();
        assert!(anonymous <= 11, "{anonymous}");
        assert!(
            limits.check_request(nat, Some(good)).is_ok(),
            "the key is served"
        );
        // Random keys from one address share one budget.
        let random = (0u8..100)
            .filter(|i| {
                let k = [*i; 32];
                let ok = limits.check_request(nat, Some(k)).is_ok();
                limits.answered(k, StatusCode::UNAUTHORIZED);
                ok
            })
            .count();
        assert!(random <= 11, "{random} random keys were served");
        assert!(
            limits.check_request(nat, Some(good)).is_ok(),
            "still served"
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let limits = ClientLimits::new(&ClientLimitConfig {
            trusted_proxies: vec![ip("127.0.0.1")],
            ..ClientLimitConfig::default()
        });
        let xff = HeaderValue::from_static("203.0.113.9, 198.51.100.7, 127.0.0.1");
        assert_eq!(
            limits.client(ip("127.0.0.1"), Some(&xff)),
            ip("198.51.100.7")
        );
        assert_eq!(limits.client(ip("192.0.2.1"), Some(&xff)), ip("192.0.2.1"));
        assert_eq!(limits.client(ip("127.0.0.1"), None), ip("127.0.0.1"));
    }
}
