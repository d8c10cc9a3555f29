//! Where bealert may connect: the rule that keeps an outlet's or a
//! gateway's URL from reaching into the home's own network (SSRF).
//!
//! An endpoint is `https` and every address its host resolves to is a
//! public unicast address: not private, loopback, link-local, unique-local,
//! shared (CGNAT), multicast, unspecified, documentation or otherwise
//! reserved. The adapters check the URL when it is registered and again
//! at every send (DNS can change), and connect only to the addresses
//! checked. `allow_private` is the development switch
//! (`BEALERT_ALLOW_PRIVATE_ENDPOINTS`) under which local emulators on
//! `http://127.0.0.1:…` are reachable.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not a public endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotPublic {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    UniqueLocal,
    /// 100.64.0.0/10, carrier-grade NAT.
    Shared,
    Multicast,
    Broadcast,
    Documentation,
    /// Any other special-purpose range (benchmarking, 240/4, 6to4 and
    /// Teredo relays, what is outside IPv6's global unicast 2000::/3).
    Reserved,
}

impl NotPublic {
    pub fn as_str(self) -> &'static str {
        match self {
            NotPublic::Unspecified => "unspecified",
            NotPublic::Loopback => "loopback",
            NotPublic::Private => "private",
            NotPublic::LinkLocal => "link-local",
            NotPublic::UniqueLocal => "unique-local",
            NotPublic::Shared => "shared (carrier-grade NAT)",
            NotPublic::Multicast => "multicast",
            NotPublic::Broadcast => "broadcast",
            NotPublic::Documentation => "documentation",
            NotPublic::Reserved => "reserved",
        }
    }
}

impl fmt::Display for NotPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `None` for a public unicast address; otherwise what it is.
pub fn classify(ip: IpAddr) -> Option<NotPublic> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<NotPublic> {
    let [a, b, c, _] = ip.octets();
    let n = u32::from(ip);
    let within = |net: u32, bits: u32| n >> (32 - bits) == net >> (32 - bits);
    Some(match () {
        _ if a == 0 => NotPublic::Unspecified,
        _ if a == 127 => NotPublic::Loopback,
        _ if a == 10 || within(0xac10_0000, 12) || within(0xc0a8_0000, 16) => NotPublic::Private,
        _ if within(0x6440_0000, 10) => NotPublic::Shared,
        _ if a == 169 && b == 254 => NotPublic::LinkLocal,
        _ if ip == Ipv4Addr::BROADCAST => NotPublic::Broadcast,
        _ if (a, b, c) == (192, 0, 2)
            || (a, b, c) == (198, 51, 100)
            || (a, b, c) == (203, 0, 113) =>
        {
            NotPublic::Documentation
        }
        _ if (224..=239).contains(&a) => NotPublic::Multicast,
        // IETF protocol assignments, benchmarking, 6to4 relay anycast, 240/4.
        _ if (a, b, c) == (192, 0, 0)
            || within(0xc612_0000, 15)
            || (a, b, c) == (192, 88, 99)
            || a >= 240 =>
        {
            NotPublic::Reserved
        }
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<NotPublic> {
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some(NotPublic::Unspecified);
    }
    if ip.is_loopback() {
        return Some(NotPublic::Loopback);
    }
    // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d): the IPv4
    // address is what is reached.
    if (s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff) || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(s[6], s[7]));
    }
    Some(match s[0] {
        0xff00..=0xffff => NotPublic::Multicast,
        0xfe80..=0xfebf => NotPublic::LinkLocal,
        // Site-local, deprecated but still routed inside some networks.
        0xfec0..=0xfeff => NotPublic::Private,
        0xfc00..=0xfdff => NotPublic::UniqueLocal,
        0x2001 if s[1] == 0x0db8 => NotPublic::Documentation,
        0x3fff if s[1] <= 0x0fff => NotPublic::Documentation,
        // Teredo (2001::/32) and 6to4 (2002::/16) tunnel to IPv4 addresses
        // no check sees; ORCHID and other IETF assignments in 2001::/23.
        0x2001 if s[1] < 0x0200 => NotPublic::Reserved,
        0x2002 => NotPublic::Reserved,
        0x2000..=0x3fff => return None,
        _ => NotPublic::Reserved,
    })
}

/// Checks an endpoint URL's scheme and host, as the URL parser gave them
/// (`host` without brackets): `https`, and a host that is not a
/// non-public address or a name reserved for the local machine. A name is
/// checked again once resolved ([`classify`] on every address). With
/// `allow_private` (development only), `http` and local hosts pass.
pub fn check_endpoint(scheme: &str, host: &str, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return if matches!(scheme, "https" | "http") {
            Ok(())
        } else {
            Err(format!("give an http(s) URL, not {scheme}:"))
        };
    }
    if scheme != "https" {
        return Err(format!(
            "give an https:// URL (not {scheme}://): bealert only sends alerts over TLS"
        ));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        if let Some(why) = classify(ip) {
            return Err(format!(
                "{ip} is a {why} address; give the public address or name of the endpoint"
            ));
        }
        return Ok(());
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err("the URL has no host; give https://host/path".into());
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Err(format!(
            "{host} names this machine; give the public address or name of the endpoint"
        ));
    }
    Ok(())
}

/// Why an address a host resolved to may not be connected to, if it may not.
pub fn check_resolved(host: &str, ip: IpAddr, allow_private: bool) -> Result<(), String> {
    match classify(ip) {
        Some(why) if !allow_private => Err(format!(
            "{host} resolves to {ip}, a {why} address; bealert connects only to public addresses"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_named_ranges_are_refused_and_public_ones_pass() {
        for (ip, why) in [
            ("127.0.0.1", NotPublic::Loopback),
            ("10.1.2.3", NotPublic::Private),
            ("172.31.255.255", NotPublic::Private),
            ("192.168.0.1", NotPublic::Private),
            ("169.254.169.254", NotPublic::LinkLocal),
            ("100.64.0.1", NotPublic::Shared),
            ("100.127.255.255", NotPublic::Shared),
            ("224.0.0.1", NotPublic::Multicast),
            ("0.0.0.0", NotPublic::Unspecified),
            ("255.255.255.255", NotPublic::Broadcast),
            ("::", NotPublic::Unspecified),
            ("::1", NotPublic::Loopback),
            ("fe80::1", NotPublic::LinkLocal),
            ("fd00::1", NotPublic::UniqueLocal),
            ("ff02::1", NotPublic::Multicast),
            ("::ffff:127.0.0.1", NotPublic::Loopback),
            ("::ffff:169.254.169.254", NotPublic::LinkLocal),
            ("64:ff9b::10.0.0.1", NotPublic::Private),
            ("2002:7f00:1::", NotPublic::Reserved),
            ("2001:db8::1", NotPublic::Documentation),
        ] {
            assert_eq!(classify(ip.parse().unwrap()), Some(why), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "193.191.244.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "2a02:2c40::1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(classify(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn urls_are_https_to_public_hosts_unless_development_allows_local_ones() {
        assert!(check_endpoint("https", "signs.example.be", false).is_ok());
        assert!(check_endpoint("https", "[2a02:2c40::1]", false).is_ok());
        let e = check_endpoint("http", "signs.example.be", false).unwrap_err();
        assert!(e.contains("https://"), "{e}");
        for host in [
            "127.0.0.1",
            "[::1]",
            "169.254.169.254",
            "localhost",
            "a.localhost.",
        ] {
            let e = check_endpoint("https", host, false).unwrap_err();
            assert!(e.contains("give the public"), "{host}: {e}");
        }
        assert!(check_endpoint("http", "127.0.0.1", true).is_ok());
        assert!(check_endpoint("ftp", "127.0.0.1", true).is_err());
        let e = check_resolved("evil.example", "10.0.0.5".parse().unwrap(), false).unwrap_err();
        assert!(e.contains("10.0.0.5, a private address"), "{e}");
        assert!(check_resolved("dev.local", "10.0.0.5".parse().unwrap(), true).is_ok());
    }

    proptest! {
        /// Whatever the standard library knows to be non-public is refused,
        /// and an IPv4 address is judged alike when mapped into IPv6.
        #[test]
        fn no_address_the_standard_library_calls_special_passes(n in any::<u32>()) {
            let v4 = Ipv4Addr::from(n);
            let special = v4.is_private() || v4.is_loopback() || v4.is_link_local()
                || v4.is_multicast() || v4.is_unspecified() || v4.is_broadcast()
                || v4.is_documentation() || v4.octets()[0] == 0
                || (v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]));
            if special {
                prop_assert!(classify(IpAddr::V4(v4)).is_some(), "{}", v4);
            }
            prop_assert_eq!(classify(IpAddr::V4(v4)), classify(IpAddr::V6(v4.to_ipv6_mapped())));
            let nat64 = Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(n));
            prop_assert_eq!(classify(IpAddr::V4(v4)), classify(IpAddr::V6(nat64)));
        }

        #[test]
        fn no_ipv6_address_the_standard_library_calls_special_passes(n in any::<u128>()) {
            let v6 = Ipv6Addr::from(n);
            let special = v6.is_loopback() || v6.is_unspecified() || v6.is_multicast()
                || v6.is_unique_local() || v6.is_unicast_link_local()
                || v6.segments()[0] & 0xe000 != 0x2000;
            let nat64 = v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            if special && v6.to_ipv4_mapped().is_none() && !nat64 {
                prop_assert!(classify(IpAddr::V6(v6)).is_some(), "{}", v6);
            }
            // Under the development switch every resolved address passes.
            prop_assert!(check_resolved("h", IpAddr::V6(v6), true).is_ok());
        }
    }
}
