//! The per-address connection cap: how many connections each client
//! address (an IPv4 address, an IPv6 /64) has open, and the slot a
//! connection holds until it closes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per client address.
pub(super) struct IpSlots {
    /// 0: no cap.
    pub(super) max: usize,
    pub(super) counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of an address; given back when dropped.
pub(crate) struct IpSlot {
    key: IpAddr,
    slots: Arc<IpSlots>,
}

impl IpSlots {
    /// A slot for `ip`, or how many it already has open.
    pub(super) fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Option<IpSlot>, usize> {
        if self.max == 0 {
            return Ok(None);
        }
        let key = address_key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let open = counts.entry(key).or_insert(0);
        if *open >= self.max {
            return Err(*open);
        }
        *open += 1;
        Ok(Some(IpSlot {
            key,
            slots: self.clone(),
        }))
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = counts.get_mut(&self.key) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// What the per-address cap counts: an IPv4 address, or an IPv6 /64 (one
/// host usually has a whole /64 to pick addresses from).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_address_cap_counts_v4_addresses_and_v6_slash_64s() {
        let key = |s: &str| address_key(s.parse().unwrap()).to_string();
        assert_eq!(key("10.1.2.3"), "10.1.2.3");
        assert_eq!(key("::ffff:10.1.2.3"), "10.1.2.3");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
    }

    #[test]
    fn per_address_slots_are_capped_and_given_back() {
        let slots = Arc::new(IpSlots {
            max: 2,
            counts: Mutex::default(),
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let a = slots.take(ip).unwrap();
        let _b = slots.take(ip).unwrap();
        assert_eq!(slots.take(ip).err(), Some(2));
        assert!(slots.take("192.0.2.8".parse().unwrap()).is_ok());
        drop(a);
        assert!(slots.take(ip).is_ok());
        let unlimited = Arc::new(IpSlots {
            max: 0,
            counts: Mutex::default(),
        });
        assert!((0..1000).all(|_| unlimited.take(ip).is_ok()));
    }
}
