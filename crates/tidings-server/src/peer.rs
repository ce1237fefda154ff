//! Who is calling: the client's address, read through the proxies the operator trusts.
//!
//! Behind a reverse proxy every socket comes from the proxy's address, so the client's own is read from
//! `X-Forwarded-For`, but only when the socket comes from a trusted proxy (anyone else could write it): the list
//! is walked from the right, past the trusted proxies, to the first address that is not one. Loopback is trusted
//! by default, so a proxy on the same machine works without configuration.
//!
//! `Forwarded` (RFC 7239) is not read: common proxies append to `X-Forwarded-For` but pass a client's own
//! `Forwarded` through untouched, so believing it would let any client name itself.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `limits.trusted_proxies`: addresses (`10.0.0.7`) and networks (`10.0.0.0/8`).
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut nets = Vec::new();
        for entry in entries {
            let net = IpNet::from_str(entry)
                .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                .map_err(|_| anyhow::anyhow!("trusted_proxies: {entry:?} is not an address or a network"))?;
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the socket's peer, or, when the peer is a trusted proxy, the nearest untrusted
    /// address its forwarding headers name.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // The rightmost entries were added by the proxies nearest to us; the first one that is not a trusted
        // proxy is the client as far as anyone we trust can tell. An entry that is not an address stops the
        // walk: what lies left of it was written by someone we cannot vouch for.
        let mut client = peer;
        for hop in x_forwarded_for(headers).iter().rev() {
            let Some(hop) = parse_hop(hop) else { break };
            client = hop.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// Whether a request passed through a proxy that said so.
pub fn forwarded(headers: &HeaderMap) -> bool {
    ["x-forwarded-for", "forwarded", "x-real-ip"].iter().any(|name| headers.contains_key(*name))
}

/// Every entry of every `X-Forwarded-For` line, in order, split on commas in the raw bytes: one entry that is not
/// UTF-8 must not hide the others (the nearest proxy's among them).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(|hop| String::from_utf8_lossy(hop).trim().to_owned())
        .collect()
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, or `[2001:db8::1]:4711`; obfuscated names and
/// `unknown` are not addresses.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return IpAddr::from_str(rest.split(']').next()?).ok();
    }
    let (host, _port) = hop.rsplit_once(':')?;
    IpAddr::from_str(host).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("a header value"));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let trusted = TrustedProxies::parse(&["127.0.0.1".to_owned()]).expect("valid");
        let spoofed = headers(&[("x-forwarded-for", "10.9.9.9")]);
        assert_eq!(trusted.client(ip("203.0.113.5"), &spoofed), ip("203.0.113.5"));
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse(&["127.0.0.0/8".to_owned(), "10.0.0.0/8".to_owned()]).expect("valid");
        // The client wrote a fake first entry; our two proxies appended the real address and their own.
        let forwarded = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.3")]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &forwarded), ip("198.51.100.7"));
        // A client's own `Forwarded`, passed through by the proxy, names no one.
        let mut spoofed = headers(&[("forwarded", "for=127.0.0.1")]);
        spoofed.append("x-forwarded-for", "198.51.100.9".parse().expect("a value"));
        assert_eq!(trusted.client(ip("127.0.0.1"), &spoofed), ip("198.51.100.9"));
        // A mapped IPv4 address is that address, for trust and for counting alike.
        assert_eq!(trusted.client(ip("::ffff:127.0.0.1"), &forwarded), ip("198.51.100.7"));
    }

    #[test]
    fn a_bad_entry_stops_the_walk_and_hides_nothing_to_its_right() {
        let trusted = TrustedProxies::parse(&["127.0.0.1".to_owned()]).expect("valid");
        let mut odd = HeaderMap::new();
        odd.append("x-forwarded-for", axum::http::HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.7").expect("bytes"));
        assert_eq!(trusted.client(ip("127.0.0.1"), &odd), ip("198.51.100.7"), "non-UTF-8 entry to the left");
        let hidden = headers(&[("x-forwarded-for", "198.51.100.1, garbage, 127.0.0.1")]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &hidden), ip("127.0.0.1"), "no client past an entry we cannot read");
    }

    #[test]
    fn a_trusted_peer_without_headers_is_the_client() {
        let trusted = TrustedProxies::parse(&["::1".to_owned()]).expect("valid");
        assert_eq!(trusted.client(ip("::1"), &HeaderMap::new()), ip("::1"));
        let garbage = headers(&[("x-forwarded-for", "unknown, _hidden")]);
        assert_eq!(trusted.client(ip("::1"), &garbage), ip("::1"));
    }

    #[test]
    fn entries_that_are_not_addresses_are_refused() {
        assert!(TrustedProxies::parse(&["proxy.internal".to_owned()]).is_err());
    }
}
