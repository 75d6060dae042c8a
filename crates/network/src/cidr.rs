//! IPv4 prefixes and address ranges, as integers: what subnets, pools,
//! the overlap check and the allocator compute with. Parsing is strict (a
//! prefix with host bits set is refused, as EC2 does) because a CIDR read
//! two ways by two components is how networks end up overlapping.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 prefix such as `10.0.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: u32,
    prefix: u8,
}

impl Cidr {
    pub fn new(network: Ipv4Addr, prefix: u8) -> Result<Cidr, &'static str> {
        if prefix > 32 {
            return Err("the prefix length is 0 to 32");
        }
        let n = u32::from(network);
        if n & !mask(prefix) != 0 {
            return Err("host bits are set; give the network address of the prefix");
        }
        Ok(Cidr { network: n, prefix })
    }

    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// The first address (the network address).
    pub fn first(self) -> u32 {
        self.network
    }

    /// The last address (the broadcast address).
    pub fn last(self) -> u32 {
        self.network | !mask(self.prefix)
    }

    pub fn contains(self, a: Ipv4Addr) -> bool {
        let a = u32::from(a);
        a >= self.first() && a <= self.last()
    }

    pub fn overlaps(self, other: Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The addresses an instance may hold: all but the network and
    /// broadcast addresses (none on a /31 or /32, which subnets refuse).
    pub fn usable(self) -> Option<Range> {
        if self.prefix >= 31 {
            return None;
        }
        Some(Range {
            start: self.first() + 1,
            end: self.last() - 1,
        })
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl FromStr for Cidr {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Cidr, &'static str> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or("a CIDR is an address and a prefix length, as 10.0.0.0/24")?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| "the address is not a dotted IPv4 address")?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err("the prefix length is 0 to 32");
        }
        let prefix: u8 = prefix.parse().map_err(|_| "the prefix length is 0 to 32")?;
        Cidr::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// An inclusive range of addresses (an allocation pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    pub start: u32,
    pub end: u32,
}

impl Range {
    pub fn contains(self, a: u32) -> bool {
        a >= self.start && a <= self.end
    }
    pub fn overlaps(self, o: Range) -> bool {
        self.start <= o.end && o.start <= self.end
    }
    pub fn len(self) -> u64 {
        u64::from(self.end - self.start) + 1
    }
    pub fn is_empty(self) -> bool {
        false
    }
}

/// Parses a dotted IPv4 address strictly (no leading zeros, as std).
pub fn parse_ip(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// `usable` without `hole` (the gateway): the default allocation pools.
pub fn pools_without(usable: Range, hole: Option<u32>) -> Vec<Range> {
    match hole {
        Some(h) if usable.contains(h) => {
            let mut out = Vec::new();
            if h > usable.start {
                out.push(Range {
                    start: usable.start,
                    end: h - 1,
                });
            }
            if h < usable.end {
                out.push(Range {
                    start: h + 1,
                    end: usable.end,
                });
            }
            out
        }
        _ => vec![usable],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strictly() {
        let c: Cidr = "10.0.0.0/16".parse().expect("valid");
        assert_eq!(c.to_string(), "10.0.0.0/16");
        assert_eq!(Ipv4Addr::from(c.last()), Ipv4Addr::new(10, 0, 255, 255));
        for bad in [
            "10.0.0.1/16",
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/+8",
            "10.0.0.0/",
            "x/8",
            "10.0.0.0/008",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} must be refused");
        }
        assert_eq!("0.0.0.0/0".parse::<Cidr>().map(|c| c.last()), Ok(u32::MAX));
    }

    #[test]
    fn overlap_and_usable() {
        let a: Cidr = "10.0.0.0/16".parse().expect("a");
        let b: Cidr = "10.0.5.0/24".parse().expect("b");
        let c: Cidr = "10.1.0.0/24".parse().expect("c");
        assert!(a.overlaps(b) && b.overlaps(a));
        assert!(!a.overlaps(c));
        let u = b.usable().expect("usable");
        assert_eq!(u.len(), 254);
        assert!("10.0.0.0/31"
            .parse::<Cidr>()
            .expect("31")
            .usable()
            .is_none());
    }

    #[test]
    fn pools_around_the_gateway() {
        let u = Range { start: 1, end: 10 };
        assert_eq!(pools_without(u, Some(1)), vec![Range { start: 2, end: 10 }]);
        assert_eq!(
            pools_without(u, Some(5)),
            vec![Range { start: 1, end: 4 }, Range { start: 6, end: 10 }]
        );
        assert_eq!(pools_without(u, Some(10)), vec![Range { start: 1, end: 9 }]);
        assert_eq!(pools_without(u, None), vec![u]);
    }
}
