//! `ip("…")` matching for line filters (`|= ip("10.0.0.0/8")`) and label filters
//! (`| addr = ip("…")`): a single address, a CIDR prefix, or a `from-to` range.
//!
//! The line form scans the text for address-looking runs exactly where Loki's scanner looks
//! (a digit followed by a dot within three bytes, or hex digits followed by a colon), parses
//! each run, and matches if any parsed address is in the pattern. Addresses only match
//! patterns of their own family.

use std::net::IpAddr;

/// What an `ip("…")` pattern accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpPattern {
    Single(IpAddr),
    Prefix { net: IpAddr, bits: u8 },
    Range { from: IpAddr, to: IpAddr },
}

/// Loki's message for a bad pattern.
pub fn invalid_pattern(pattern: &str) -> String {
    format!("ip: invalid pattern: {pattern:?}")
}

fn to_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(*v)),
        IpAddr::V6(v) => u128::from(*v),
    }
}

fn same_family(a: &IpAddr, b: &IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

impl IpPattern {
    pub fn parse(pattern: &str) -> Result<IpPattern, String> {
        if let Ok(a) = pattern.parse::<IpAddr>() {
            return Ok(IpPattern::Single(a));
        }
        if let Some((addr, bits)) = pattern.split_once('/') {
            let net: IpAddr = addr.parse().map_err(|_| invalid_pattern(pattern))?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits
                .parse()
                .ok()
                .filter(|b: &u8| {
                    *b <= max && !bits.starts_with('+') && (bits == "0" || !bits.starts_with('0'))
                })
                .ok_or_else(|| invalid_pattern(pattern))?;
            return Ok(IpPattern::Prefix { net, bits });
        }
        if let Some((from, to)) = pattern.split_once('-') {
            let from: IpAddr = from.parse().map_err(|_| invalid_pattern(pattern))?;
            let to: IpAddr = to.parse().map_err(|_| invalid_pattern(pattern))?;
            if !same_family(&from, &to) || to_u128(&from) > to_u128(&to) {
                return Err(invalid_pattern(pattern));
            }
            return Ok(IpPattern::Range { from, to });
        }
        Err(invalid_pattern(pattern))
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match self {
            IpPattern::Single(a) => a == ip,
            IpPattern::Prefix { net, bits } => {
                if !same_family(net, ip) {
                    return false;
                }
                let width: u32 = if ip.is_ipv4() { 32 } else { 128 };
                let shift = width - u32::from(*bits);
                if shift >= 128 {
                    return true;
                }
                (to_u128(net) >> shift) == (to_u128(ip) >> shift)
            }
            IpPattern::Range { from, to } => {
                same_family(from, ip) && to_u128(from) <= to_u128(ip) && to_u128(ip) <= to_u128(to)
            }
        }
    }

    /// Whether some address in `line` is accepted.
    pub fn matches_in(&self, line: &[u8]) -> bool {
        let n = line.len();
        let at = |i: usize| line.get(i).copied().unwrap_or(0);
        let mut i = 0;
        while i < n {
            let hint = if i + 3 < n && ipv4_hint(&line[i..i + 4]) {
                Some(V4_CHARS)
            } else if ipv6_hint([at(i), at(i + 1), at(i + 2), at(i + 3), at(i + 4)]) {
                Some(V6_CHARS)
            } else {
                None
            };
            if let Some(charset) = hint {
                let len = line[i..]
                    .iter()
                    .position(|c| !charset.contains(c))
                    .unwrap_or(n - i);
                if let Some(ip) = std::str::from_utf8(&line[i..i + len])
                    .ok()
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    && self.contains(&ip)
                {
                    return true;
                }
                i += len;
            }
            i += 1;
        }
        false
    }
}

const V4_CHARS: &[u8] = b"0123456789.";
const V6_CHARS: &[u8] = b"0123456789abcdefABCDEF:.";

fn ipv4_hint(p: &[u8]) -> bool {
    p[0].is_ascii_digit() && (p[1] == b'.' || p[2] == b'.' || p[3] == b'.')
}

fn ipv6_hint(p: [u8; 5]) -> bool {
    let h = |c: u8| c.is_ascii_hexdigit();
    (p[0] == b':' && p[1] == b':' && h(p[2]))
        || (h(p[0]) && p[1] == b':')
        || (h(p[0]) && h(p[1]) && p[2] == b':')
        || (h(p[0]) && h(p[1]) && h(p[2]) && p[3] == b':')
        || (h(p[0]) && h(p[1]) && h(p[2]) && h(p[3]) && p[4] == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = IpPattern::parse("192.168.0.0/16").unwrap();
        assert!(p.matches_in(b"from 192.168.4.5 port 22"));
        assert!(!p.matches_in(b"from 10.0.0.1 port 22"));
        let r = IpPattern::parse("10.0.0.1-10.0.0.9").unwrap();
        assert!(r.matches_in(b"x=10.0.0.5,"));
        assert!(!r.matches_in(b"x=10.0.0.50"));
        let s = IpPattern::parse("::1").unwrap();
        assert!(s.matches_in(b"addr ::1 ok"));
        let v6 = IpPattern::parse("2001:db8::/32").unwrap();
        assert!(v6.matches_in(b"client=2001:db8:abcd::7 "));
        assert!(!v6.matches_in(b"client=192.168.0.1"));
        assert!(IpPattern::parse("300.1.1.1").is_err());
        assert!(IpPattern::parse("10.0.0.9-10.0.0.1").is_err());
        assert_eq!(
            IpPattern::parse("nope").unwrap_err(),
            "ip: invalid pattern: \"nope\""
        );
        let all = IpPattern::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(&"8.8.8.8".parse().unwrap()));
    }
}
