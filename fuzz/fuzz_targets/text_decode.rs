//! Any bytes as each `/ingest` text format (folded, lines, trie, tree, speedscope): conversion
//! must never panic, must stay within its limits, and what it returns must be a pprof the
//! write path accepts as well-formed.
#![no_main]

use formats::text::{self, TextFormat, TextInput, TextLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = TextLimits {
        max_nodes: 100_000,
        max_sample_frames: 1_000_000,
        max_expansion_bytes: 10_000_000,
    };
    for format in TextFormat::ALL {
        let mut input = TextInput::new(format, data, "fuzz");
        input.limits = limits;
        let Ok(profiles) = text::convert(input) else {
            continue;
        };
        for converted in profiles {
            let profile = &converted.profile;
            assert_eq!(profile.string_table.first().map(String::as_str), Some(""));
            assert_eq!(profile.sample_type.len(), 1);
            let frames: usize = profile.sample.iter().map(|s| s.location_id.len()).sum();
            assert!(frames <= limits.max_sample_frames);
            for sample in &profile.sample {
                assert_ne!(sample.value, [0]);
                let known = |id: u64| id >= 1 && id <= profile.location.len() as u64;
                assert!(sample.location_id.iter().all(|&id| known(id)));
            }
            let encoded = formats::pprof::encode_gzip(profile);
            let decoded = formats::pprof::decode(&encoded, usize::MAX).expect("our own pprof");
            assert_eq!(&decoded, profile);
        }
    }
});
