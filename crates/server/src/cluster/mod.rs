//! The cluster: which processes run which roles, and how a role reaches another. Membership is
//! a heartbeat in the metastore (PostgreSQL's consistency; no protocol of ours): each process
//! records itself every heartbeat interval and sees the members heard from within the lease
//! ([`membership`]). Distributors place each (tenant, `service_name`) on the live segment
//! writers by consistent hashing ([`ring`]) and send them batches ([`writers`]), moving to the
//! next owner when one fails. Query frontends send read tasks to the live query backends
//! ([`backends`]), moving to another when one fails.

pub(crate) mod backends;
pub(crate) mod coalesce;
pub(crate) mod membership;
pub(crate) mod page;
pub(crate) mod ready;
pub(crate) mod ring;
pub(crate) mod writers;

use api::client::{ApiClient, Credentials};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

/// How a process takes part in a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The address other members reach this process at (`http://host:port`); by default the
    /// listening address (with `127.0.0.1` for an unspecified one).
    pub advertise_url: Option<String>,
    /// How often a process records its heartbeat and reads the members.
    pub heartbeat_interval: Duration,
    /// A member not heard from for this long is taken as gone.
    pub member_lease: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            advertise_url: None,
            heartbeat_interval: Duration::from_secs(1),
            member_lease: Duration::from_secs(5),
        }
    }
}

/// The address other members reach a process at when none is configured: its listening
/// address; for an unspecified one (`0.0.0.0`, `::`), the address of the interface its
/// outgoing traffic leaves by (a pod's or container's own IP), else loopback.
pub(crate) fn default_advertise_url(bound: SocketAddr) -> String {
    let ip =
        match bound.ip() {
            ip if !ip.is_unspecified() => ip,
            std::net::IpAddr::V4(_) => outgoing_ip("0.0.0.0:0", "192.0.2.1:9")
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            std::net::IpAddr::V6(_) => outgoing_ip("[::]:0", "[2001:db8::1]:9")
                .unwrap_or(std::net::Ipv6Addr::LOCALHOST.into()),
        };
    format!("http://{}", SocketAddr::new(ip, bound.port()))
}

/// The local address a datagram to `remote` would leave from (a UDP `connect` picks the route;
/// nothing is sent). `remote` is a documentation address (RFC 5737, RFC 3849).
fn outgoing_ip(local: &str, remote: &str) -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind(local).ok()?;
    socket.connect(remote).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advertised_address_is_reachable_from_elsewhere() {
        let bound: SocketAddr = "127.0.0.1:4040".parse().expect("address");
        assert_eq!(default_advertise_url(bound), "http://127.0.0.1:4040");
        // An unspecified address becomes a concrete one: this machine's outgoing interface,
        // or loopback on a machine without a route.
        let any: SocketAddr = "0.0.0.0:4040".parse().expect("address");
        let url = default_advertise_url(any);
        assert!(
            url.starts_with("http://") && url.ends_with(":4040"),
            "{url}"
        );
        assert!(!url.contains("0.0.0.0"), "{url}");
    }
}

/// Something kept per member address (a client, a writer's batching queue). Members come and
/// go (a restarted pod has a new address), so the map is emptied when it passes
/// `MAX_MEMBERS` addresses: what it holds is cheap to make again.
#[derive(Debug)]
pub(crate) struct PerMember<V>(Mutex<HashMap<String, V>>);

const MAX_MEMBERS: usize = 256;

impl<V: Clone> PerMember<V> {
    pub fn new() -> PerMember<V> {
        PerMember(Mutex::new(HashMap::new()))
    }

    /// The value for `address`, made by `make` the first time; an error says why none
    /// could be made.
    pub fn get_or_make(
        &self,
        address: &str,
        make: impl FnOnce() -> Result<V, String>,
    ) -> Result<V, String> {
        let mut map = self
            .0
            .lock()
            .map_err(|_| "member map poisoned".to_owned())?;
        if let Some(found) = map.get(address) {
            return Ok(found.clone());
        }
        let made = make()?;
        if map.len() >= MAX_MEMBERS {
            map.clear();
        }
        map.insert(address.to_owned(), made.clone());
        Ok(made)
    }
}

/// One client (and its connection pool) per member address, for the calls of one role to
/// another.
#[derive(Debug)]
pub(crate) struct MemberClients {
    timeout: Duration,
    clients: PerMember<ApiClient>,
}

impl MemberClients {
    pub fn new(timeout: Duration) -> MemberClients {
        MemberClients {
            timeout,
            clients: PerMember::new(),
        }
    }

    /// The client of the member at `address`; an error says why none could be made.
    pub fn get(&self, address: &str) -> Result<ApiClient, String> {
        self.clients.get_or_make(address, || {
            ApiClient::new(address, Credentials::default(), self.timeout).map_err(|e| e.to_string())
        })
    }
}
