//! Consistent hashing of (tenant, `service_name`) over the live segment writers: each member
//! owns `TOKENS_PER_MEMBER` points of a 64-bit circle (XXH64 of its id), and a key's owners are
//! the distinct members met walking clockwise from the key's point. A member joining or leaving
//! moves only the keys next to its points; the next owners are where a failed write goes.

use metastore::Member;

/// Points per member: enough that three writers share keys within a few per cent.
const TOKENS_PER_MEMBER: u64 = 128;

/// The ring of one role's members.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ring {
    /// (point, index into `members`), sorted by point.
    tokens: Vec<(u64, usize)>,
    members: Vec<Member>,
}

impl Ring {
    pub fn new(mut members: Vec<Member>) -> Ring {
        members.sort_by(|a, b| a.id.cmp(&b.id));
        members.dedup_by(|a, b| a.id == b.id);
        let mut tokens = Vec::with_capacity(members.len() * TOKENS_PER_MEMBER as usize);
        for (index, member) in members.iter().enumerate() {
            for token in 0..TOKENS_PER_MEMBER {
                tokens.push((
                    twox_hash::XxHash64::oneshot(token, member.id.as_bytes()),
                    index,
                ));
            }
        }
        tokens.sort_unstable();
        Ring { tokens, members }
    }

    /// Each member's share of the circle (the keys it is first owner of), by member id.
    pub fn shares(&self) -> Vec<(String, f64)> {
        let mut arcs = vec![0u128; self.members.len()];
        for (i, (point, index)) in self.tokens.iter().enumerate() {
            // A point owns the keys after the previous point, up to and including itself.
            let previous = if i == 0 {
                self.tokens[self.tokens.len() - 1].0
            } else {
                self.tokens[i - 1].0
            };
            arcs[*index] += u128::from(point.wrapping_sub(previous));
        }
        let circle = (u64::MAX as u128) + 1;
        self.members
            .iter()
            .zip(arcs)
            .map(|(m, arc)| (m.id.clone(), arc as f64 / circle as f64))
            .collect()
    }

    /// The members owning `key`, first owner first, each once.
    pub fn owners(&self, key: u64) -> Vec<&Member> {
        let mut owners: Vec<&Member> = Vec::with_capacity(self.members.len());
        if self.tokens.is_empty() {
            return owners;
        }
        let start = self.tokens.partition_point(|(point, _)| *point < key);
        for offset in 0..self.tokens.len() {
            let (_, index) = self.tokens[(start + offset) % self.tokens.len()];
            let member = &self.members[index];
            if !owners.iter().any(|m| m.id == member.id) {
                owners.push(member);
                if owners.len() == self.members.len() {
                    break;
                }
            }
        }
        owners
    }
}

/// The ring key of a tenant's service.
pub(crate) fn key(tenant: &str, service_name: &str) -> u64 {
    let mut bytes = Vec::with_capacity(tenant.len() + service_name.len() + 1);
    bytes.extend_from_slice(tenant.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(service_name.as_bytes());
    twox_hash::XxHash64::oneshot(0, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> Member {
        Member {
            id: id.to_owned(),
            roles: vec!["segment-writer".to_owned()],
            address: format!("http://{id}"),
            started_ms: 0,
            heartbeat_ms: 0,
        }
    }

    fn first_owners(ring: &Ring, keys: &[u64]) -> Vec<String> {
        keys.iter().map(|k| ring.owners(*k)[0].id.clone()).collect()
    }

    #[test]
    fn keys_spread_evenly_and_move_only_when_their_owner_goes() {
        let keys: Vec<u64> = (0..30_000)
            .map(|i| key("tenant", &format!("service-{i}")))
            .collect();
        let three = Ring::new(vec![member("a"), member("b"), member("c")]);
        let owners = first_owners(&three, &keys);
        let shares = three.shares();
        for (id, circle_share) in &shares {
            let share = owners.iter().filter(|o| *o == id).count() as f64 / keys.len() as f64;
            assert!((share - 1.0 / 3.0).abs() < 0.07, "{id} owns {share}");
            assert!(
                (share - circle_share).abs() < 0.02,
                "{id}: {share} vs {circle_share}"
            );
        }
        let total: f64 = shares.iter().map(|(_, s)| s).sum();
        assert!((total - 1.0).abs() < 1e-9);
        // Every key has every member as an owner, each once.
        for k in keys.iter().take(100) {
            let mut ids: Vec<&str> = three.owners(*k).iter().map(|m| m.id.as_str()).collect();
            ids.sort_unstable();
            assert_eq!(ids, ["a", "b", "c"]);
        }
        // Without `b`, its keys go to their second owner and no other key moves.
        let two = Ring::new(vec![member("c"), member("a")]);
        for (k, before) in keys.iter().zip(&owners) {
            let after = &two.owners(*k)[0].id;
            if before == "b" {
                assert_eq!(after, &three.owners(*k)[1].id);
            } else {
                assert_eq!(after, before);
            }
        }
    }

    #[test]
    fn the_order_members_are_read_in_does_not_matter() {
        let one = Ring::new(vec![member("x"), member("y"), member("z")]);
        let other = Ring::new(vec![member("z"), member("x"), member("y"), member("x")]);
        let keys: Vec<u64> = (0..1000).map(|i| key("t", &i.to_string())).collect();
        assert_eq!(first_owners(&one, &keys), first_owners(&other, &keys));
        assert!(Ring::default().owners(1).is_empty());
    }
}
