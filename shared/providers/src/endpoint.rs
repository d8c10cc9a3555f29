//! Outbound HTTP that reaches only public endpoints
//! ([`bealert_core::endpoint`]): every outlet's and gateway's request goes
//! through a client whose resolver refuses a host that resolves to any
//! private, loopback, link-local, unique-local, shared, multicast or
//! reserved address and hands the connector only the addresses it checked
//! (so a name that changes between the check and the connection cannot
//! slip through), follows no redirect, and refuses a URL that is not
//! `https` or names such an address itself.
//!
//! `BEALERT_ALLOW_PRIVATE_ENDPOINTS=1` lifts the rule for development and
//! tests against local emulators (`http://127.0.0.1:…`); never in production.

use bealert_core::endpoint::{check_endpoint, check_resolved};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::sync::Arc;
use std::time::Duration;

/// The development switch's environment variable.
pub const ALLOW_PRIVATE_VAR: &str = "BEALERT_ALLOW_PRIVATE_ENDPOINTS";

/// Whether the environment turns the development switch on (`1` or `true`);
/// says so in the log when it does.
pub fn private_allowed_by_env() -> bool {
    let on =
        std::env::var(ALLOW_PRIVATE_VAR).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
    if on {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                "{ALLOW_PRIVATE_VAR} is set: outlets and gateways may be http:// and reach private addresses — for development only"
            );
        });
    }
    on
}

/// Checks a URL as the client will read it: its scheme and host
/// ([`check_endpoint`]); resolution is checked when connecting.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    check_endpoint(parsed.scheme(), host, allow_private).map_err(|e| format!("{url}: {e}"))?;
    Ok(parsed)
}

/// Checks a URL and every address its host resolves to now: what an
/// outlet's registration asks, so a bad URL is refused then.
pub async fn vet(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = check_url(url, allow_private)?;
    if allow_private {
        return Ok(());
    }
    match parsed.domain() {
        Some(name) => {
            let port = parsed.port_or_known_default().unwrap_or(443);
            resolve_checked(name, port, false)
                .await
                .map(|_| ())
                .map_err(|e| format!("{url}: {e}"))
        }
        None => Ok(()),
    }
}

/// A name's addresses, all of them checked; an error if any is not public.
async fn resolve_checked(
    name: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<std::net::SocketAddr>, String> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| format!("{name} does not resolve: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{name} resolves to no address"));
    }
    for a in &addrs {
        check_resolved(name, a.ip(), allow_private)?;
    }
    Ok(addrs)
}

/// The resolver of [`client`]: the system's, with every answer checked.
struct CheckedResolver {
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve_checked(name.as_str(), 0, allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A client builder that connects only to checked addresses and follows
/// no redirect (a redirect could point anywhere). Its requests' URLs are
/// still checked with [`check_url`] (an address in the URL is not resolved).
pub fn builder(allow_private: bool) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(CheckedResolver { allow_private }))
}

/// [`builder`] with a request timeout (and a connect timeout of at most 5 s).
pub fn client(timeout: Duration, allow_private: bool) -> Result<reqwest::Client, String> {
    builder(allow_private)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .build()
        .map_err(|e| format!("an HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_names_and_addresses_are_refused_unless_development_allows_them() {
        for url in [
            "http://127.0.0.1:9/x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/x",
            "https://[::ffff:10.0.0.1]/x",
        ] {
            assert!(vet(url, false).await.is_err(), "{url}");
            assert!(vet(url, true).await.is_ok(), "{url}");
        }
        // A name is checked by what it resolves to ("localhost." skips the
        // name rule: the resolver answers 127.0.0.1).
        let e = resolve_checked("localhost", 443, false).await.unwrap_err();
        assert!(e.contains("loopback"), "{e}");
    }

    #[tokio::test]
    async fn the_client_refuses_to_connect_to_a_name_that_resolves_locally() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(axum::serve(listener, axum::Router::new()).into_future());
        let strict = client(Duration::from_secs(5), false).unwrap();
        let e = strict
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("loopback"), "{e:?}");
        let dev = client(Duration::from_secs(5), true).unwrap();
        let r = dev
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
}
