//! Any bytes as a JFR recording: conversion must never panic, must stay within its limits,
//! and every profile it returns must be a well-formed pprof that survives a round trip.
#![no_main]

use formats::jfr::{self, JfrInput, JfrLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = JfrInput {
        body: data,
        labels: None,
        sample_rate: 100,
        start_time_nanos: 0,
        duration_nanos: 0,
        limits: JfrLimits {
            max_bytes: 4 << 20,
            max_chunk_bytes: 2 << 20,
        },
    };
    let Ok(recording) = jfr::convert(input) else {
        return;
    };
    for converted in recording.profiles {
        let profile = &converted.profile;
        assert_eq!(profile.string_table.first().map(String::as_str), Some(""));
        assert!(!profile.sample.is_empty());
        for sample in &profile.sample {
            assert_eq!(sample.value.len(), profile.sample_type.len());
            let known = |id: u64| id >= 1 && id <= profile.location.len() as u64;
            assert!(sample.location_id.iter().all(|&id| known(id)));
        }
        let encoded = formats::pprof::encode_gzip(profile);
        let decoded = formats::pprof::decode(&encoded, usize::MAX).expect("our own pprof");
        assert_eq!(&decoded, profile);
    }
});
