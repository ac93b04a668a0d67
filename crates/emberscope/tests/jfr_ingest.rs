//! Pyroscope's TestIngestJFR and TestCorruptedJFR422 (`api.md` §8) against `emberscope serve`:
//! every recording of `testdata/jfr` is sent as the Java agent sends it (a multipart
//! form with `jfr` and, where there is one, `labels`), and every expected `*.pb.gz` beside it is
//! reproduced by `SelectMergeProfile` with the label set its hash names — both sides read by
//! Google's pprof. Then recordings made here by the JDK itself, and broken recordings (422).

mod common;

use testkit::oracle;

use api::proto::querier::v1::{
    ProfileTypesRequest, ProfileTypesResponse, SelectMergeProfileRequest,
};
use common::{Server, post_bytes, start};
use prost::Message as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const TENANT: &str = "jfr-tenant";

fn proto_call(server: &Server, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let (status, _, body) = post_bytes(
        server,
        path,
        &[
            ("Content-Type", "application/proto"),
            ("X-Scope-OrgID", TENANT),
        ],
        body,
    );
    (status, body)
}

/// The form the Java agent sends: `jfr` and optional `labels` file fields.
fn multipart(jfr: &[u8], labels: Option<&[u8]>) -> (String, Vec<u8>) {
    let mut fields = vec![("jfr", jfr)];
    fields.extend(labels.map(|labels| ("labels", labels)));
    common::multipart(&fields)
}

fn ingest(server: &Server, service: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let (status, _, body) = post_bytes(
        server,
        &format!("/ingest?name={service}&format=jfr&spyName=javaspy&sampleRate=100"),
        &[("Content-Type", content_type), ("X-Scope-OrgID", TENANT)],
        body,
    );
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn profile_types(server: &Server) -> Vec<String> {
    let (status, body) = proto_call(
        server,
        "/querier.v1.QuerierService/ProfileTypes",
        &ProfileTypesRequest::default().encode_to_vec(),
    );
    assert_eq!(status, 200);
    ProfileTypesResponse::decode(body.as_slice())
        .expect("types")
        .profile_types
        .into_iter()
        .map(|t| t.id)
        .collect()
}

/// `SelectMergeProfile` written to a file for the oracle.
fn select_merge(server: &Server, profile_type: &str, selector: &str, out: &Path) {
    let request = SelectMergeProfileRequest {
        profile_type_id: profile_type.to_owned(),
        label_selector: selector.to_owned(),
        start: 1000,
        end: model::time::now_ms(),
        ..Default::default()
    };
    let (status, merged) = proto_call(
        server,
        "/querier.v1.QuerierService/SelectMergeProfile",
        &request.encode_to_vec(),
    );
    assert_eq!(status, 200, "{profile_type} {selector}");
    std::fs::write(out, merged).expect("write merged");
}

fn oracle_collapsed(path: &Path) -> String {
    let raw = oracle::pprof_raw(path).unwrap_or_else(|| panic!("pprof rejects {}", path.display()));
    oracle::column_as_collapsed(&oracle::oracle_all_values(&raw), 0)
}

/// Pyroscope's label-set hash (`xxhash64` of `name \xff value \xff …`), as the golden names use.
fn label_hash(labels: &[(&str, &str)]) -> u64 {
    let mut bytes = Vec::new();
    for (name, value) in labels {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0xff);
    }
    twox_hash::XxHash64::oneshot(0, &bytes)
}

/// The query selector a golden's hash names: none, or one `thread_name` of the recording.
fn selector_for(service: &str, hash: u64) -> String {
    if hash == label_hash(&[]) {
        return format!("{{service_name=\"{service}\"}}");
    }
    for n in 0..64 {
        let thread = format!("pool-2-thread-{n}");
        if label_hash(&[("thread_name", &thread)]) == hash {
            return format!("{{service_name=\"{service}\",thread_name=\"{thread}\"}}");
        }
    }
    panic!("no label set found for golden hash {hash}");
}

fn testdata(name: &str) -> PathBuf {
    testkit::testdata("jfr").join(name)
}

#[test]
fn every_recording_reproduces_pyroscopes_goldens() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = start(data.path(), &["--auth.multitenancy-enabled"]);
    let goldens = testkit::jfr_goldens();
    let mut recordings = Vec::new();
    for entry in std::fs::read_dir(testkit::testdata("jfr")).expect("list") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(recording) = name.strip_suffix(".jfr.gz") {
            recordings.push(recording.to_owned());
        }
    }
    recordings.sort();
    assert!(recordings.len() >= 8, "recordings: {recordings:?}");
    for recording in &recordings {
        let jfr = std::fs::read(testdata(&format!("{recording}.jfr.gz"))).expect("jfr");
        let labels = std::fs::read(testdata(&format!("{recording}.labels.pb.gz"))).ok();
        let (content_type, body) = multipart(&jfr, labels.as_deref());
        let service = format!("jfr-{}", recording.replace("__", "-"));
        let (status, text) = ingest(&server, &service, &content_type, &body);
        assert_eq!(status, 200, "{recording}: {text}");
    }
    let types = profile_types(&server);
    let mut compared = 0;
    let total: usize = goldens.values().map(Vec::len).sum();
    assert!(total >= 25, "goldens: {goldens:?}");
    for (recording, expected) in &goldens {
        let service = format!("jfr-{}", recording.replace("__", "-"));
        for (kind, hash, path) in expected {
            let profile_type = types
                .iter()
                .find(|t| t.replace(':', "_") == *kind)
                .unwrap_or_else(|| panic!("{recording}: type {kind} not stored ({types:?})"));
            let out = data.path().join(format!("merged-{compared}.pb"));
            select_merge(&server, profile_type, &selector_for(&service, *hash), &out);
            let (ours, theirs) = (oracle_collapsed(&out), oracle_collapsed(path));
            assert!(!theirs.is_empty(), "{}: empty golden", path.display());
            assert!(
                ours == theirs,
                "{recording} {kind} {hash}: stacks differ from the golden"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, total);
}

#[test]
fn corrupted_and_truncated_recordings_are_422_and_the_server_stays_up() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = start(data.path(), &[]);
    let gz = std::fs::read(testdata("cortex-dev-01__kafka-0__cpu__0.jfr.gz")).expect("jfr");
    let raw = formats::compression::decompress(&gz, 1 << 30)
        .expect("gunzip")
        .into_owned();
    let mut first_byte_zeroed = raw.clone();
    first_byte_zeroed[0] = 0;
    let truncated = &raw[..raw.len() / 2];
    let mut garbled_pool = raw.clone();
    let len = garbled_pool.len();
    for byte in &mut garbled_pool[len - 2000..len - 1000] {
        *byte = 0xff;
    }
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "first byte zeroed",
            &first_byte_zeroed,
            "not a JFR recording",
        ),
        ("truncated chunk", truncated, "truncated JFR"),
        ("garbled constant pool", &garbled_pool, "JFR"),
        ("not JFR at all", b"hello, world", "not a JFR recording"),
    ];
    for (what, body, message) in cases {
        let (content_type, form) = multipart(body, None);
        let (status, text) = ingest(&server, "broken", &content_type, &form);
        assert_eq!(status, 422, "{what}: {text}");
        assert!(text.contains(message), "{what}: {text}");
        // The raw body form too.
        let (status, text) = ingest(&server, "broken", "application/octet-stream", body);
        assert_eq!(status, 422, "{what} (raw): {text}");
    }
    let (content_type, form) = multipart(b"", None);
    let (status, text) = ingest(&server, "broken", &content_type, &form);
    assert_eq!(status, 422, "empty jfr field: {text}");
    assert!(text.contains("jfr field is required"), "{text}");
    // Still serving, and nothing was stored.
    assert!(profile_types(&server).is_empty());
    let (status, _) = ingest(&server, "fine", "application/octet-stream", &gz);
    assert_eq!(status, 200);
    assert_eq!(
        profile_types(&server),
        ["process_cpu:cpu:nanoseconds:cpu:nanoseconds"]
    );
}

/// Compiles and runs a small busy Java program with the JDK's own recorder.
fn record_with_the_jdk(dir: &Path) -> Vec<u8> {
    let source = dir.join("Busy.java");
    std::fs::write(
        &source,
        r#"public class Busy {
    static long spinHard(long n) { long x = 0; for (long i = 0; i < n; i++) { x += i * 31 ^ (x >>> 3); } return x; }
    static int allocateLots(int n) { Object[] a = new Object[n]; for (int i = 0; i < n; i++) a[i] = new byte[64 + i % 4096]; return a.length; }
    public static void main(String[] args) {
        long end = System.currentTimeMillis() + Long.parseLong(args[0]);
        long sink = 0;
        while (System.currentTimeMillis() < end) { sink += spinHard(40_000_000); sink += allocateLots(20_000); }
        System.out.println(sink);
    }
}
"#,
    )
    .expect("write Busy.java");
    let javac = Command::new("javac")
        .arg("-d")
        .arg(dir)
        .arg(&source)
        .status()
        .expect("javac (a JDK; scripts/test.sh installs it)");
    assert!(javac.success());
    let recording = dir.join("busy.jfr");
    let java = Command::new("java")
        .arg(format!(
            "-XX:StartFlightRecording=filename={},settings=profile",
            recording.display()
        ))
        .arg("-cp")
        .arg(dir)
        .args(["Busy", "3000"])
        .output()
        .expect("java");
    assert!(
        java.status.success(),
        "{}",
        String::from_utf8_lossy(&java.stderr)
    );
    std::fs::read(&recording).expect("recording")
}

/// What the JDK's own `jfr print --json` reads from a recording for one event type: per leaf
/// function (`class.method`, as our frames are named), the event count and the sum of `field`
/// (when given), counting only events whose thread `state` is not sleeping.
fn jdk_oracle(recording: &Path, event: &str, field: Option<&str>) -> BTreeMap<String, (i64, i64)> {
    let output = Command::new("jfr")
        .args(["print", "--json", "--events", event])
        .arg(recording)
        .output()
        .expect("jfr (the JDK's tool)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("jfr --json");
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let events = json["recording"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for event in events {
        let values = &event["values"];
        if values["state"].as_str() == Some("STATE_SLEEPING") {
            continue;
        }
        let Some(leaf) = values["stackTrace"]["frames"].get(0) else {
            continue;
        };
        let name = format!(
            "{}.{}",
            leaf["method"]["type"]["name"].as_str().unwrap_or(""),
            leaf["method"]["name"].as_str().unwrap_or("")
        );
        let entry = out.entry(name).or_default();
        entry.0 += 1;
        entry.1 += field.map_or(0, |f| values[f].as_i64().unwrap_or(0));
    }
    out
}

/// Per leaf function, the sum of each value column of a merged pprof (by the oracle).
fn leaf_totals(path: &Path) -> BTreeMap<String, Vec<i64>> {
    let raw = oracle::pprof_raw(path).unwrap_or_else(|| panic!("pprof rejects {}", path.display()));
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (stack, values) in oracle::oracle_all_values(&raw) {
        let leaf = stack.rsplit(';').next().unwrap_or(&stack).to_owned();
        let sums = out.entry(leaf).or_insert_with(|| vec![0; values.len()]);
        for (sum, value) in sums.iter_mut().zip(values) {
            *sum += value;
        }
    }
    out
}

#[test]
fn jdk_recordings_agree_with_the_jdks_own_reader() {
    let work = tempfile::tempdir().expect("tempdir");
    let recording_bytes = record_with_the_jdk(work.path());
    let recording = work.path().join("busy.jfr");
    let server = start(work.path().join("data").as_path(), &[]);
    let (status, text) = ingest(
        &server,
        "busy-java",
        "application/octet-stream",
        &recording_bytes,
    );
    assert_eq!(status, 200, "{text}");
    let types = profile_types(&server);

    // CPU: one sample of each running execution sample, 10 ms each at the default rate.
    let cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    assert!(types.iter().any(|t| t == cpu), "{types:?}");
    let out = work.path().join("cpu.pb");
    select_merge(&server, cpu, "{service_name=\"busy-java\"}", &out);
    let ours = leaf_totals(&out);
    let jdk = jdk_oracle(&recording, "jdk.ExecutionSample", None);
    let busy = ["Busy.spinHard", "Busy.allocateLots"];
    for method in busy {
        let samples = jdk.get(method).map_or(0, |e| e.0);
        assert!(samples > 10, "{method}: {samples} samples by the JDK");
        assert_eq!(ours[method][0], samples * 10_000_000, "{method} CPU time");
    }
    let total: i64 = jdk.values().map(|e| e.0).sum();
    assert_eq!(ours.values().map(|v| v[0]).sum::<i64>(), total * 10_000_000);
    // The busy methods are where the time went.
    let busy_share: i64 = busy.iter().map(|m| ours[*m][0]).sum();
    assert!(busy_share * 10 > total * 10_000_000 * 9, "{ours:?}");

    // Allocation samples: count and weight per leaf, as the JDK reads them.
    let alloc = "memory:alloc_sample_objects:count:space:bytes";
    let bytes = "memory:alloc_sample_bytes:bytes:space:bytes";
    assert!(
        types.iter().any(|t| t == alloc) && types.iter().any(|t| t == bytes),
        "{types:?}"
    );
    let jdk = jdk_oracle(&recording, "jdk.ObjectAllocationSample", Some("weight"));
    for (profile_type, column) in [(alloc, 0), (bytes, 1)] {
        let out = work.path().join(format!("alloc-{column}.pb"));
        select_merge(&server, profile_type, "{service_name=\"busy-java\"}", &out);
        let ours = leaf_totals(&out);
        let theirs = |e: &(i64, i64)| if column == 0 { e.0 } else { e.1 };
        let jdk_busy = jdk.get("Busy.allocateLots").map(theirs).unwrap_or(0);
        assert!(jdk_busy > 0, "no allocation samples in Busy.allocateLots");
        assert_eq!(ours["Busy.allocateLots"][0], jdk_busy, "{profile_type}");
        assert_eq!(
            ours.values().map(|v| v[0]).sum::<i64>(),
            jdk.values().map(theirs).sum::<i64>(),
            "{profile_type} total"
        );
    }
}
