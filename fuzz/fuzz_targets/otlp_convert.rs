//! Any bytes as an OTLP profiles export request (protobuf, or protojson when they parse as
//! JSON): conversion to pprof and then the push pipeline must never panic; errors are values.
#![no_main]

use formats::otlp::{self, ExportProfilesServiceRequest};
use formats::pprof::{LabelLimits, ProfileLimits, prepare_push};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

const NOW: i64 = 1_700_000_000_000_000_000;

fuzz_target!(|data: &[u8]| {
    let mut requests = Vec::new();
    if let Ok(request) = ExportProfilesServiceRequest::decode(data) {
        // Our protojson writer must handle whatever the wire can carry.
        let _ = serde_json::to_vec(&request);
        requests.push(request);
    }
    if let Ok(request) = serde_json::from_slice::<ExportProfilesServiceRequest>(data) {
        requests.push(request);
    }
    let limits = ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    };
    for request in &requests {
        let Ok(all) = otlp::convert(request, NOW) else {
            continue;
        };
        for series in all {
            let labels = model::Labels::from_pairs(series.labels);
            let _ = prepare_push(
                series.profile,
                &labels,
                &limits,
                &LabelLimits::default(),
                series.raw_size,
                NOW,
            );
        }
    }
});
