//! The cluster: which processes run which roles, and how a role reaches another. Membership is
//! a heartbeat in the metastore (PostgreSQL's consistency; no protocol of ours): each process
//! records itself every heartbeat interval and sees the members heard from within the lease
//! ([`membership`]). Distributors place each (tenant, `service_name`) on the live segment
//! writers by consistent hashing ([`ring`]) and send them batches ([`writers`]), moving to the
//! next owner when one fails. Query frontends send read tasks to the live query backends
//! ([`backends`]), moving to another when one fails.

pub(crate) mod backends;
pub(crate) mod membership;
pub(crate) mod page;
pub(crate) mod ready;
pub(crate) mod ring;
pub(crate) mod writers;

use std::net::SocketAddr;
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
    /// How long a distributor waits for a segment writer's answer (the segment stored and
    /// recorded) before it sends the batch to the next owner.
    pub writer_timeout: Duration,
    /// How many segment writers a batch is offered to before the client gets 503.
    pub writer_attempts: usize,
    /// How long a query frontend waits for a query backend's answer to one read task before
    /// it sends the task to another backend.
    pub backend_timeout: Duration,
    /// How many query backends a read task is offered to before the query fails (503).
    pub backend_attempts: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            advertise_url: None,
            heartbeat_interval: Duration::from_secs(1),
            member_lease: Duration::from_secs(5),
            writer_timeout: Duration::from_secs(10),
            writer_attempts: 3,
            backend_timeout: Duration::from_secs(30),
            backend_attempts: 3,
        }
    }
}

/// The address other members reach a process at when none is configured: its listening
/// address, with loopback for an unspecified one (`0.0.0.0`, `::`).
pub(crate) fn default_advertise_url(bound: SocketAddr) -> String {
    let ip = match bound.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    format!("http://{}", SocketAddr::new(ip, bound.port()))
}
