//! Blocks round-trip the real test profiles: what the push path makes of each file, written to
//! a block and read back by profile type, has the same stacks; a committed golden block of
//! format version 1 stays readable.

use block::{BlockReader, BlockWriter, SelectQuery};
use bytes::Bytes;
use formats::pprof::{self, LabelLimits, ProfileLimits, SeriesProfile};
use model::{Labels, MatchOp, Matcher, TenantId, Tree, write_collapsed};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

fn shared() -> PathBuf {
    std::env::var("EMBERSCOPE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// The series the push path makes of a test file (window checks off: the files are old).
fn pushed(relative: &str, service: &str) -> Vec<SeriesProfile> {
    let path = shared().join("testdata").join(relative);
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let profile = pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES).expect("valid pprof");
    let limits = ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    };
    let labels = Labels::from_pairs([("__name__", "test"), ("service_name", service)]);
    pprof::prepare_push(
        profile,
        &labels,
        &limits,
        &LabelLimits::default(),
        body.len(),
        1_700_000_000_000_000_000,
    )
    .expect("valid profile")
}

/// Expected collapsed stacks per profile type of a set of series.
fn expected(series: &[SeriesProfile]) -> BTreeMap<String, String> {
    let mut trees: BTreeMap<String, Tree> = BTreeMap::new();
    for one in series {
        for (index, (profile_type, _)) in one.profile_types().into_iter().enumerate() {
            trees
                .entry(profile_type.to_string())
                .or_default()
                .merge(&pprof::to_tree(&one.profile, index));
        }
    }
    trees
        .into_iter()
        .map(|(k, v)| (k, write_collapsed(&v)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

async fn read_back(
    reader: &BlockReader,
    tenant: &TenantId,
    service: &str,
    profile_type: &str,
) -> String {
    let query = SelectQuery {
        tenant: tenant.clone(),
        profile_type: profile_type.to_owned(),
        matchers: vec![Matcher::new("service_name", MatchOp::Equal, service).expect("valid")],
        start_nanos: i64::MIN,
        end_nanos: i64::MAX,
        span_ids: None,
        call_site: Vec::new(),
    };
    let mut tree = Tree::new();
    for selection in reader.select(&query).await.expect("select") {
        selection.add_to_tree(&mut tree);
    }
    write_collapsed(&tree)
}

const FILES: &[&str] = &[
    "pprof/cpu.pprof",
    "pprof/go.cpu.labels.pprof",
    "pprof/heap",
    "pprof/heap_delta",
    "pprof/profile_java",
    "pprof/profile_python",
    "pprof/profile_nodejs",
    "pprof/nodejs-wall.pb.gz",
    "pprof/dotnet-pprof-211.pb.gz",
    "pprof/req_3.pprof",
    "pprof/no_addr_no_line.pb.gz",
    "clients/datadog-pprof-5.14.4_node_wall_cpu.pprof.gz",
    "clients/pyroscope-io-1.4.0_cpu.pprof",
];

#[tokio::test]
async fn real_profiles_round_trip_through_a_block() {
    let tenant = TenantId::new("tenant-a").expect("valid");
    let other = TenantId::new("tenant-b").expect("valid");
    let mut writer = BlockWriter::new();
    let mut wanted = Vec::new();
    for (i, file) in FILES.iter().enumerate() {
        let service = format!("svc-{i}");
        let series = pushed(file, &service);
        for one in &series {
            writer.add(&tenant, one);
        }
        wanted.push((service, expected(&series)));
    }
    // Another tenant's data in the same object must never leak into tenant-a's answers.
    for one in &pushed("pprof/cpu.pprof", "svc-0") {
        writer.add(&other, one);
    }
    let encoded = writer.finish().expect("encode");
    assert_eq!(encoded.datasets.len(), FILES.len() + 1);

    // Through object storage, with ranged reads.
    let dir = tempfile::tempdir().expect("temp dir");
    let store = storage::StorageConfig::Filesystem {
        dir: dir.path().to_path_buf(),
    }
    .open()
    .expect("store");
    let key = storage::paths::segment(0, ulid::Ulid::new());
    storage::ObjectStoreExt::put(&*store, &key, encoded.bytes.clone().into())
        .await
        .expect("put");
    let reader = BlockReader::open(Arc::clone(&store), key)
        .await
        .expect("open");

    let mut compared = 0;
    for (service, by_type) in &wanted {
        assert!(!by_type.is_empty(), "{service} has data");
        for (profile_type, collapsed) in by_type {
            let got = read_back(&reader, &tenant, service, profile_type).await;
            assert_eq!(&got, collapsed, "{service} {profile_type}");
            compared += 1;
        }
    }
    assert!(compared >= 25, "{compared} profile types compared");
    // Tenant b sees only its own cpu.pprof, not tenant a's.
    let cpu = "test:cpu:nanoseconds:cpu:nanoseconds";
    let b = read_back(&reader, &other, "svc-0", cpu).await;
    assert_eq!(b, wanted[0].1[cpu]);
    let nobody = TenantId::new("tenant-c").expect("valid");
    assert!(read_back(&reader, &nobody, "svc-0", cpu).await.is_empty());
}

#[tokio::test]
async fn label_matchers_select_series() {
    let tenant = TenantId::new("t").expect("valid");
    let mut writer = BlockWriter::new();
    let series = pushed("pprof/go.cpu.labels.pprof", "api");
    assert!(series.len() > 1);
    for one in &series {
        writer.add(&tenant, one);
    }
    let encoded = writer.finish().expect("encode");
    let reader = BlockReader::from_bytes(Bytes::from(encoded.bytes))
        .await
        .expect("open");
    // Pick one series by its pprof-label-derived labels.
    let target = &series[0];
    let cpu = "test:cpu:nanoseconds:cpu:nanoseconds";
    let matchers: Vec<Matcher> = target
        .labels
        .iter()
        .map(|p| Matcher::new(p.name.clone(), MatchOp::Equal, p.value.clone()).expect("valid"))
        .collect();
    let query = SelectQuery {
        tenant: tenant.clone(),
        profile_type: cpu.to_owned(),
        matchers,
        start_nanos: i64::MIN,
        end_nanos: i64::MAX,
        span_ids: None,
        call_site: Vec::new(),
    };
    let selections = reader.select(&query).await.expect("select");
    let mut tree = Tree::new();
    for s in &selections {
        s.add_to_tree(&mut tree);
    }
    let index = target
        .profile_types()
        .iter()
        .position(|(t, _)| t.to_string() == cpu)
        .expect("cpu type");
    assert_eq!(
        write_collapsed(&tree),
        write_collapsed(&pprof::to_tree(&target.profile, index))
    );
    // A time range before the profile selects nothing.
    let before = SelectQuery {
        end_nanos: 0,
        start_nanos: -10,
        ..query
    };
    assert!(reader.select(&before).await.expect("select").is_empty());
}

#[tokio::test]
async fn corrupt_blocks_are_errors() {
    let tenant = TenantId::new("t").expect("valid");
    let mut writer = BlockWriter::new();
    for one in &pushed("pprof/cpu.pprof", "api") {
        writer.add(&tenant, one);
    }
    let good = writer.finish().expect("encode").bytes;
    let mut bad_magic = good.clone();
    let last = bad_magic.len() - 1;
    bad_magic[last] ^= 0xff;
    assert!(
        BlockReader::from_bytes(Bytes::from(bad_magic))
            .await
            .is_err()
    );
    let mut bad_footer = good.clone();
    let footer_byte = bad_footer.len() - 20;
    bad_footer[footer_byte] ^= 0xff;
    assert!(
        BlockReader::from_bytes(Bytes::from(bad_footer))
            .await
            .is_err()
    );
    // A flipped byte inside a section fails its checksum when read.
    let mut bad_section = good.clone();
    bad_section[10] ^= 0xff;
    let reader = BlockReader::from_bytes(Bytes::from(bad_section))
        .await
        .expect("footer intact");
    let query = SelectQuery {
        tenant,
        profile_type: "test:cpu:nanoseconds:cpu:nanoseconds".to_owned(),
        matchers: Vec::new(),
        start_nanos: i64::MIN,
        end_nanos: i64::MAX,
        span_ids: None,
        call_site: Vec::new(),
    };
    assert!(reader.select(&query).await.is_err());
    assert!(
        BlockReader::from_bytes(Bytes::from_static(b"short"))
            .await
            .is_err()
    );
    for cut in [1usize, 100, good.len() / 2] {
        let truncated = Bytes::copy_from_slice(&good[..good.len() - cut]);
        assert!(
            BlockReader::from_bytes(truncated).await.is_err(),
            "cut {cut}"
        );
    }
}

/// The committed block of format version 1 (written once from cpu.pprof and heap for tenant
/// `golden`) must stay readable with the same stacks, whatever later versions change.
#[tokio::test]
async fn golden_block_v1_stays_readable() {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/golden-v1.blk");
    let tenant = TenantId::new("golden").expect("valid");
    let sources = [
        ("pprof/cpu.pprof", "cpu-service"),
        ("pprof/heap", "heap-service"),
    ];
    if std::env::var("EMBERSCOPE_WRITE_GOLDEN").is_ok() {
        let mut writer = BlockWriter::new();
        for (file, service) in sources {
            for one in &pushed(file, service) {
                writer.add(&tenant, one);
            }
        }
        std::fs::write(&golden, writer.finish().expect("encode").bytes).expect("write golden");
    }
    let bytes = std::fs::read(&golden).expect("committed golden block");
    let reader = BlockReader::from_bytes(Bytes::from(bytes))
        .await
        .expect("open golden block");
    let mut compared = 0;
    for (file, service) in sources {
        for (profile_type, collapsed) in expected(&pushed(file, service)) {
            assert_eq!(
                read_back(&reader, &tenant, service, &profile_type).await,
                collapsed,
                "{service} {profile_type}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 6);
}
