//! Per-client request limits: a flood from one address gets 429s, cheaply,
//! before it reaches storage, while every other client is served as usual.
//!
//! The client is the peer address of the connection (axum's `ConnectInfo`).
//! `X-Forwarded-For` is believed only when the peer is a configured proxy;
//! then the client is the right-most address in it that is not a proxy.

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
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trusted: Vec<IpAddr>,
    seen: AtomicU64,
}

impl ClientLimits {
    pub fn new(config: &ClientLimitConfig) -> Arc<Self> {
        let per_second = NonZeroU32::new(config.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst.max(config.per_second)).unwrap_or(per_second);
        Arc::new(Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            trusted: config.trusted_proxies.clone(),
            seen: AtomicU64::new(0),
        })
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
        if let Err(wait) = limits.check(client) {
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
    }
    next.run(request).await
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
