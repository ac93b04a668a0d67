//! This process's view of the cluster: its heartbeat in the metastore, the members heard from
//! within the lease, the ring of segment writers built from them, and the members a call
//! recently failed on (skipped until they are heard from again or a lease has passed).

use super::ClusterConfig;
use super::ring::Ring;
use metastore::{Member, Metastore, MetastoreError};
use model::Clock;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// The role names members record, for the ring and the cluster page.
pub(crate) const SEGMENT_WRITER: &str = "segment-writer";
pub(crate) const DISTRIBUTOR: &str = "distributor";

#[derive(Debug)]
pub(crate) struct Membership {
    me: Member,
    metastore: Arc<dyn Metastore>,
    clock: Arc<dyn Clock>,
    config: ClusterConfig,
    view: RwLock<Arc<View>>,
    /// Members a call failed on, and when.
    suspects: Mutex<HashMap<String, Instant>>,
    failovers: Mutex<BTreeMap<&'static str, u64>>,
}

/// The live members and the ring of segment writers among them.
#[derive(Debug, Default)]
pub(crate) struct View {
    pub members: Vec<Member>,
    pub writers: Ring,
    /// Live distributors (at least 1): each enforces this share of a tenant's ingestion rate.
    pub distributors: usize,
    /// When the members were last read (ms), and whether that read succeeded.
    pub read_ms: i64,
    pub error: Option<String>,
}

impl Membership {
    /// Records this process (`roles` at `address`) and reads the members once, then keeps both
    /// up to date every heartbeat interval on one task, until [`Membership::leave`].
    pub async fn start(
        metastore: Arc<dyn Metastore>,
        clock: Arc<dyn Clock>,
        config: ClusterConfig,
        roles: Vec<String>,
        address: String,
    ) -> Result<(Arc<Membership>, tokio::task::JoinHandle<()>), MetastoreError> {
        let now = clock.now_ms();
        let me = Member {
            id: format!(
                "{}-{}",
                hostname(),
                ulid::Ulid::new().to_string().to_lowercase()
            ),
            roles,
            address,
            started_ms: now,
            heartbeat_ms: now,
        };
        let membership = Arc::new(Membership {
            me,
            metastore,
            clock,
            config,
            view: RwLock::new(Arc::new(View::default())),
            suspects: Mutex::new(HashMap::new()),
            failovers: Mutex::new(BTreeMap::new()),
        });
        membership.beat().await?;
        let task = tokio::spawn({
            let membership = Arc::clone(&membership);
            async move {
                let mut ticker = tokio::time::interval(membership.config.heartbeat_interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    if let Err(error) = membership.beat().await {
                        tracing::warn!(%error, "cluster heartbeat failed");
                        membership.failed_read(&error);
                    }
                }
            }
        });
        Ok((membership, task))
    }

    /// One heartbeat and one read of the members.
    async fn beat(&self) -> Result<(), MetastoreError> {
        self.metastore
            .heartbeat(&self.me, self.clock.now_ms())
            .await?;
        self.read().await
    }

    /// Reads the members again now, rather than at the next heartbeat: a caller whose every
    /// known member failed looks for members that joined since (a rolling restart's new
    /// processes). On a failed read the last view stays.
    pub async fn refresh(&self) -> Arc<View> {
        if let Err(error) = self.read().await {
            tracing::warn!(%error, "cannot read the cluster's members");
        }
        self.view()
    }

    /// One read of the live members into the view.
    async fn read(&self) -> Result<(), MetastoreError> {
        let now = self.clock.now_ms();
        let lease = i64::try_from(self.config.member_lease.as_millis()).unwrap_or(i64::MAX);
        let members = self.metastore.members(now.saturating_sub(lease)).await?;
        let writers = Ring::new(
            members
                .iter()
                .filter(|m| m.has_role(SEGMENT_WRITER))
                .cloned()
                .collect(),
        );
        // A suspect heard from after it failed is trusted again.
        if let Ok(mut suspects) = self.suspects.lock() {
            let lease = self.config.member_lease;
            suspects.retain(|_, since| since.elapsed() < lease);
        }
        let distributors = members
            .iter()
            .filter(|m| m.has_role(DISTRIBUTOR))
            .count()
            .max(1);
        let view = View {
            members,
            writers,
            distributors,
            read_ms: now,
            error: None,
        };
        if let Ok(mut current) = self.view.write() {
            *current = Arc::new(view);
        }
        Ok(())
    }

    /// Keeps the last members read, with the error that stopped the next read.
    fn failed_read(&self, error: &MetastoreError) {
        if let Ok(mut current) = self.view.write() {
            let view = View {
                members: current.members.clone(),
                writers: current.writers.clone(),
                distributors: current.distributors,
                read_ms: current.read_ms,
                error: Some(error.to_string()),
            };
            *current = Arc::new(view);
        }
    }

    /// The members and the ring as last read.
    pub fn view(&self) -> Arc<View> {
        self.view.read().map(|v| Arc::clone(&v)).unwrap_or_default()
    }

    pub fn me(&self) -> &Member {
        &self.me
    }

    /// Notes that a call to `member` (in its `role`) failed and moved on: the member is
    /// skipped for a lease, and the failover is counted for `/metrics`.
    pub fn suspect(&self, member: &str, role: &'static str) {
        if let Ok(mut suspects) = self.suspects.lock() {
            suspects.insert(member.to_owned(), Instant::now());
        }
        if let Ok(mut failovers) = self.failovers.lock() {
            *failovers.entry(role).or_default() += 1;
        }
    }

    /// Failed calls that moved on, by the role called.
    pub fn failovers(&self) -> BTreeMap<&'static str, u64> {
        self.failovers.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Whether a call to `member` failed within the last lease.
    pub fn is_suspect(&self, member: &str) -> bool {
        self.suspects.lock().is_ok_and(|suspects| {
            suspects
                .get(member)
                .is_some_and(|since| since.elapsed() < self.config.member_lease)
        })
    }

    /// Removes this process from the cluster (a clean shutdown), so that its work moves at once.
    pub async fn leave(&self) {
        if let Err(error) = self.metastore.leave(&self.me.id, self.clock.now_ms()).await {
            tracing::warn!(%error, "cannot leave the cluster cleanly");
        }
    }
}

/// This machine's name, for member ids people can read.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "emberscope".to_owned())
}
