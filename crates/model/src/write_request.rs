//! Distributors' write requests and the ids of the profiles they carry.
//!
//! A write request (a distributor's call to a segment writer) is named by a UUID. The profiles
//! it carries get ids that start with the request's first 8 bytes and end with their position
//! in it, so that a reader told to skip one copy of a request (a segment that recorded it
//! second, after a retry on another writer) finds its profiles by their id alone.

/// The first 8 bytes of a request id (a UUID, hyphenated or not), with which the ids of the
/// request's profiles start; `None` when the id is not a UUID.
pub fn request_prefix(request: &str) -> Option<u64> {
    let hex: Vec<u8> = request.bytes().filter(|&b| b != b'-').collect();
    if hex.len() != 32 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let first = std::str::from_utf8(&hex[..16]).ok()?;
    u64::from_str_radix(first, 16).ok()
}

/// The [`request_prefix`]es of `requests`, sorted and without repeats, for a reader to skip
/// their profiles. (Segment writers take only UUIDs as request ids; another id names no
/// profile.)
pub fn prefixes(requests: &[String]) -> Vec<u64> {
    let mut prefixes: Vec<u64> = requests.iter().filter_map(|r| request_prefix(r)).collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    prefixes
}

/// The id of the `index`th profile of the request whose [`request_prefix`] is `prefix`.
pub fn profile_id(prefix: u64, index: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&prefix.to_be_bytes());
    id[8..].copy_from_slice(&index.to_be_bytes());
    id
}

/// The request prefix of a profile id made by [`profile_id`].
pub fn prefix_of(id: &[u8; 16]) -> u64 {
    let mut high = [0u8; 8];
    high.copy_from_slice(&id[..8]);
    u64::from_be_bytes(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_ids_carry_their_request() {
        let request = "0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b";
        let prefix = request_prefix(request).expect("a UUID");
        assert_eq!(prefix, 0x0193_a5b2_7c4d_7e8f);
        assert_eq!(
            request_prefix("0193a5b27c4d7e8f9a0b1c2d3e4f5a6b"),
            Some(prefix)
        );
        for index in [0, 1, u64::MAX] {
            let id = profile_id(prefix, index);
            assert_eq!(prefix_of(&id), prefix);
            assert_eq!(id[8..], index.to_be_bytes());
        }
        for bad in [
            "",
            "r",
            "0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6",
            "g193a5b27c4d7e8f9a0b1c2d3e4f5a6b",
        ] {
            assert_eq!(request_prefix(bad), None, "{bad}");
        }
    }
}
