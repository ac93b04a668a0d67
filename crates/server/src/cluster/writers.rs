//! Where a distributor's batches go: this process's own segment writer (a process that runs
//! one, as in `all`: in process, without serialisation), or the live segment writers owning
//! each (tenant, `service_name`) on the ring, over the network. A batch is acknowledged only
//! when its writer answers that its segment is stored and recorded; a writer that cannot be
//! reached, times out or answers that it is unavailable is skipped for a lease and the batch
//! goes to the key's next owner.
//!
//! A retry never counts a profile twice. Each request has a UUID, and its profiles' ids start
//! with the request's first 8 bytes (`model::write_request`). A retry says so; the writer
//! that gets it acknowledges at once if the request is recorded already (the first answer was
//! lost), or waits for its own pending write of it. Otherwise it writes the request again; if
//! the first attempt was only slow and records later too, the metastore records whichever
//! segment comes second with the request among its duplicates, and queries and compaction
//! skip that segment's copy by profile id.
//!
//! The segment writer's side of the call ([`push`]) turns the request back into a batch for
//! [`crate::store`].

use super::coalesce::{CallCounts, Coalescer};
use super::membership::Membership;
use super::ring;
use super::{MemberClients, PerMember};
use crate::AppState;
use crate::distributor::{Batch, Body, DistributorConfig, Incoming, Upload};
use crate::error::{ApiError, Code};
use crate::labelset::AppName;
use crate::rpc::{Call, invalid};
use crate::store;
use api::client::ClientError;
use api::proto::segmentwriter::v1 as wire;
use api::proto::types::v1::LabelPair as WirePair;
use bytes::Bytes;
use model::{Labels, TenantId, label_names, write_request};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// `retry = true` (field 4, varint) as protobuf bytes.
const RETRY_FIELD: [u8; 2] = [4 << 3, 1];

/// The method a distributor calls on a segment writer.
pub(crate) const PUSH_PATH: &str = "/segmentwriter.v1.SegmentWriterService/Push";
/// The same for several calls at once ([`super::coalesce`]).
pub(crate) const PUSH_BATCH_PATH: &str = "/segmentwriter.v1.SegmentWriterService/PushBatch";

/// A batch encoded for the segment writers: (ring key, request) pairs.
pub(crate) struct Calls(Vec<(u64, Bytes)>);

/// A distributor's segment writers.
#[derive(Debug)]
pub(crate) enum Writers {
    /// This process runs a segment writer.
    Local,
    /// The cluster's segment writers.
    Remote(RemoteWriters),
}

#[derive(Debug)]
pub(crate) struct RemoteWriters {
    membership: Arc<Membership>,
    /// One client (and its connection pool) per writer address.
    clients: MemberClients,
    /// Writers a call is offered to before it fails.
    attempts: usize,
    /// How long a first call waits for others to share its HTTP call (zero: it does not).
    window: Duration,
    /// One batching queue per writer address.
    coalescers: PerMember<Coalescer>,
    /// HTTP calls made and the calls they carried, for `/metrics`.
    pub counts: Arc<CallCounts>,
}

impl RemoteWriters {
    pub fn new(membership: Arc<Membership>, config: &DistributorConfig) -> RemoteWriters {
        RemoteWriters {
            membership,
            clients: MemberClients::new(config.writer_timeout),
            attempts: config.writer_attempts.max(1),
            window: config.writer_batch_window,
            coalescers: PerMember::new(),
            counts: Arc::default(),
        }
    }

    /// The batching queue of the writer at `address`.
    fn coalescer(&self, address: &str) -> Result<Coalescer, String> {
        self.coalescers.get_or_make(address, || {
            let client = self.clients.get(address)?;
            Ok(Coalescer::start(
                client,
                self.window,
                Arc::clone(&self.counts),
            ))
        })
    }

    /// One attempt of a call: a first one shares an HTTP call with the calls that come
    /// within the window; a retry goes alone, at once.
    async fn attempt(&self, address: &str, request: Bytes, first: bool) -> Result<(), ClientError> {
        let internal = |e: String| ClientError::Setup(e);
        if first && !self.window.is_zero() {
            return self
                .coalescer(address)
                .map_err(internal)?
                .push(request)
                .await;
        }
        let client = self.clients.get(address).map_err(internal)?;
        self.counts.http_calls.fetch_add(1, Ordering::Relaxed);
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        client
            .call_encoded::<wire::PushResponse>(PUSH_PATH, request)
            .await
            .map(|_| ())
    }

    /// Sends each call to the owners of its key, and answers once every call is acknowledged
    /// (or with the first failure).
    pub async fn send_all(&self, calls: Calls) -> Result<(), ApiError> {
        let sends = calls.0.into_iter().map(|(key, body)| self.send(key, body));
        let results = futures::future::join_all(sends).await;
        results.into_iter().collect()
    }

    /// One call, offered to the key's owners in turn.
    async fn send(&self, key: u64, body: Bytes) -> Result<(), ApiError> {
        let mut attempts = self.attempts;
        let mut tried: Vec<String> = Vec::new();
        let mut last: Option<ClientError> = None;
        // The owners on the ring as last read; when all of them failed, the owners on the ring
        // of the members read again (writers that joined since the last heartbeat).
        for round in 0..2 {
            if attempts == 0 {
                break;
            }
            let view = if round == 0 {
                self.membership.view()
            } else {
                self.membership.refresh().await
            };
            // Owners a call recently failed on go last, so they are tried only when all
            // others have failed too.
            let (fresh, suspects): (Vec<_>, Vec<_>) = view
                .writers
                .owners(key)
                .into_iter()
                .filter(|m| !tried.contains(&m.id))
                .partition(|m| !self.membership.is_suspect(&m.id));
            for owner in fresh.into_iter().chain(suspects) {
                if attempts == 0 {
                    break;
                }
                attempts -= 1;
                // Every attempt after the first says it is a retry: the field appended to the
                // encoded request (a later field wins when protobuf decodes).
                let first = tried.is_empty();
                let request = if first {
                    body.clone()
                } else {
                    Bytes::from([&body[..], &RETRY_FIELD[..]].concat())
                };
                tried.push(owner.id.clone());
                match self.attempt(&owner.address, request, first).await {
                    Ok(()) => return Ok(()),
                    Err(ClientError::Setup(error)) => {
                        return Err(ApiError::new(Code::Internal, error));
                    }
                    Err(error) if error.is_retryable() => {
                        tracing::warn!(writer = %owner.id, %error, "segment writer failed; trying the next owner");
                        self.membership
                            .suspect(&owner.id, super::membership::SEGMENT_WRITER);
                        last = Some(error);
                    }
                    Err(error) => {
                        return Err(ApiError::new(
                            error.code().unwrap_or(Code::Internal),
                            error.message(),
                        ));
                    }
                }
            }
        }
        if tried.is_empty() {
            return Err(ApiError::new(
                Code::Unavailable,
                "no segment writer is available: none has a live heartbeat in the metastore",
            ));
        }
        Err(ApiError::new(
            Code::Unavailable,
            format!(
                "no segment writer stored the profiles: {}",
                last.map_or_else(|| "none answered".to_owned(), |e| e.to_string())
            ),
        ))
    }
}

impl Calls {
    /// `batch` as the calls that carry it: one per ring key (its profiles), to send with
    /// [`RemoteWriters::send_all`]. CPU work (a copy of every profile): off the runtime.
    pub fn encode(tenant: &TenantId, batch: Batch) -> Result<Calls, ApiError> {
        encode(tenant.as_str(), batch).map(Calls)
    }

    /// The bytes the calls hold.
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|(_, body)| body.len()).sum()
    }
}

/// The batch's profiles grouped by ring key, each group an encoded request.
fn encode(tenant: &str, batch: Batch) -> Result<Vec<(u64, Bytes)>, ApiError> {
    let mut groups: Vec<(u64, Vec<wire::Profile>)> = Vec::new();
    for incoming in batch.profiles {
        let key = ring::key(tenant, &service_name(&incoming.body));
        let profile = to_wire(incoming);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, profiles)) => profiles.push(profile),
            None => groups.push((key, vec![profile])),
        }
    }
    Ok(groups
        .into_iter()
        .map(|(key, mut profiles)| {
            // The profiles' ids carry the request's, so that a segment holding a second copy
            // of it (a retry that raced its slow first attempt) can skip them.
            let request_id = uuid::Uuid::new_v4().to_string();
            let prefix = write_request::request_prefix(&request_id).unwrap_or_default();
            for (index, profile) in profiles.iter_mut().enumerate() {
                profile.id = write_request::profile_id(prefix, index as u64).to_vec();
            }
            let request = wire::PushRequest {
                tenant: tenant.to_owned(),
                profiles,
                request_id,
                retry: false,
            };
            (key, Bytes::from(prost::Message::encode_to_vec(&request)))
        })
        .collect())
}

/// The `service_name` a profile will be stored under, as far as the distributor knows it.
fn service_name(body: &Body) -> String {
    let labels = match body {
        Body::Pprof { labels, .. } | Body::Profile { labels, .. } => labels,
        Body::Upload { upload, .. } => {
            return upload
                .name
                .labels
                .iter()
                .find(|(k, _)| k == label_names::SERVICE_NAME)
                .map_or_else(|| upload.name.name.clone(), |(_, v)| v.clone());
        }
    };
    labels
        .get(label_names::SERVICE_NAME)
        .unwrap_or_default()
        .to_owned()
}

fn pairs(labels: &Labels) -> Vec<WirePair> {
    labels
        .iter()
        .map(|pair| WirePair {
            name: pair.name.clone(),
            value: pair.value.clone(),
        })
        .collect()
}

fn to_wire(incoming: Incoming) -> wire::Profile {
    let (pprof, labels, upload) = match incoming.body {
        Body::Pprof { bytes, labels } => (bytes, pairs(&labels), None),
        Body::Profile { profile, labels } => (
            Bytes::from(prost::Message::encode_to_vec(&profile)),
            pairs(&labels),
            None,
        ),
        Body::Upload { bytes, upload } => (
            bytes,
            Vec::new(),
            Some(wire::Upload {
                app_name: upload.name.name,
                name_labels: upload
                    .name
                    .labels
                    .into_iter()
                    .map(|(name, value)| WirePair { name, value })
                    .collect(),
                spy: upload.spy,
                from_nanos: upload.from_nanos,
                dotnet: upload.dotnet,
                renames: upload
                    .renames
                    .into_iter()
                    .map(|(name, value)| WirePair { name, value })
                    .collect(),
            }),
        ),
    };
    wire::Profile {
        size: incoming.size as u64,
        pprof,
        labels,
        upload,
        id: incoming.id.to_vec(),
    }
}

/// A request back into a batch; refused whole if any profile is malformed.
fn from_wire(request: wire::PushRequest) -> Result<Batch, ApiError> {
    let request_id = request.request_id;
    let mut profiles = Vec::with_capacity(request.profiles.len());
    for profile in request.profiles {
        let id: [u8; 16] = profile
            .id
            .as_slice()
            .try_into()
            .map_err(|_| invalid("a profile id is not 16 bytes"))?;
        let size = usize::try_from(profile.size).map_err(|_| invalid("profile size"))?;
        let bytes = profile.pprof;
        let body = match profile.upload {
            Some(upload) => Body::Upload {
                bytes,
                upload: Upload {
                    name: AppName {
                        name: upload.app_name,
                        labels: upload
                            .name_labels
                            .into_iter()
                            .map(|p| (p.name, p.value))
                            .collect(),
                    },
                    spy: upload.spy,
                    from_nanos: upload.from_nanos,
                    dotnet: upload.dotnet,
                    renames: upload
                        .renames
                        .into_iter()
                        .map(|p| (p.name, p.value))
                        .collect(),
                },
            },
            None => Body::Pprof {
                bytes,
                labels: Labels::from_pairs(profile.labels.into_iter().map(|p| (p.name, p.value))),
            },
        };
        profiles.push(Incoming { body, size, id });
    }
    let mut batch = Batch::summed(profiles);
    batch.request = (!request_id.is_empty()).then_some(request_id);
    Ok(batch)
}

/// `segmentwriter.v1.SegmentWriterService/Push`: a distributor's batch, answered once durable.
/// The distributor already counted it against the tenant's rate.
pub async fn push(call: Call, request: wire::PushRequest) -> Result<wire::PushResponse, ApiError> {
    push_one(&call.state, request).await?;
    Ok(wire::PushResponse {})
}

/// `segmentwriter.v1.SegmentWriterService/PushBatch`: several calls a distributor coalesced,
/// each handled as its own [`push`] (side by side) and answered in order.
pub async fn push_batch(
    call: Call,
    request: wire::PushBatchRequest,
) -> Result<wire::PushBatchResponse, ApiError> {
    let answers = futures::future::join_all(
        request
            .requests
            .into_iter()
            .map(|r| push_one(&call.state, r)),
    )
    .await;
    Ok(wire::PushBatchResponse {
        results: answers
            .into_iter()
            .map(|answer| match answer {
                Ok(()) => wire::PushResult::default(),
                Err(error) => wire::PushResult {
                    code: error.code.name().to_owned(),
                    message: error.message,
                },
            })
            .collect(),
    })
}

/// One distributor call: stored and recorded, or why not.
async fn push_one(state: &Arc<AppState>, request: wire::PushRequest) -> Result<(), ApiError> {
    let tenant =
        TenantId::new(&request.tenant).map_err(|e| invalid(format!("invalid tenant: {e}")))?;
    if !request.request_id.is_empty()
        && write_request::request_prefix(&request.request_id).is_none()
    {
        return Err(invalid("a request id is not a UUID"));
    }
    // A retry of a call whose answer was lost, or of one still being written: if its segment
    // is recorded, it is stored. (If it is being written here, wait for it first, so that its
    // profiles are not added twice to one segment; a copy in another writer's segment is
    // recorded as a duplicate and skipped by readers.)
    if request.retry && !request.request_id.is_empty() {
        if let Some(writer) = &state.writer
            && writer.holds_request(&request.request_id).await
        {
            writer.flush().await;
        }
        let recorded = state
            .metastore
            .recorded_requests(std::slice::from_ref(&request.request_id))
            .await
            .map_err(|e| ApiError::new(Code::Unavailable, format!("metastore: {e}")))?;
        if !recorded.is_empty() {
            return Ok(());
        }
    }
    let batch = from_wire(request)?;
    let reservation = state.inflight.reserve(batch.total).await;
    let added = store::write(state, &tenant, batch).await;
    drop(reservation);
    store::release_ingest_permit();
    added?.durable(state, &tenant).await
}
