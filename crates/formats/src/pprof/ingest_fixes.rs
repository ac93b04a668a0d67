//! Repairs Pyroscope applies to pprof sent to the legacy `/ingest` endpoint (`api.md` §2.1):
//! `time_nanos` from 1970 (py-spy and friends send seconds, milliseconds or microseconds),
//! `<file> <function>` names for scripting spies, and broken .NET profiles (function ids 0,
//! `-` in sample type names).

use super::proto::Profile;
use rustc_hash::FxHashMap;

/// 1971-01-01T00:00:00Z in nanoseconds: a `time_nanos` below it (and not negative) is in 1970.
const YEAR_1971_NANOS: i64 = 31_536_000 * 1_000_000_000;

/// Replaces a profile's `time_nanos` that falls in 1970 (zero included) with `start_nanos`, the
/// request's `from` time.
pub fn fix_time(time_nanos: &mut i64, start_nanos: i64) {
    if (0..YEAR_1971_NANOS).contains(time_nanos) {
        *time_nanos = start_nanos;
    }
}

/// Whether a spy's function names are rewritten to `<file> <function>`.
pub fn is_scripting_spy(spy_name: &str) -> bool {
    matches!(spy_name, "pyspy" | "rbspy" | "scripting")
}

/// Renames each function to `<filename> <name>`, as Pyroscope does for scripting spies; for
/// `pyspy`, functions whose file name is absolute keep their name (newer clients send
/// absolute paths and their own names).
pub fn fix_scripting_function_names(profile: &mut Profile, spy_name: &str) {
    if !is_scripting_spy(spy_name) {
        return;
    }
    let mut added: FxHashMap<String, i64> = FxHashMap::default();
    let table_len = profile.string_table.len();
    for function in &mut profile.function {
        let get = |index: i64| {
            usize::try_from(index)
                .ok()
                .filter(|&i| i < table_len)
                .map(|i| profile.string_table[i].as_str())
        };
        let (Some(file), Some(name)) = (get(function.filename), get(function.name)) else {
            continue;
        };
        if spy_name == "pyspy" && file.starts_with('/') {
            continue;
        }
        let renamed = format!("{file} {name}");
        let next = (table_len + added.len()) as i64;
        function.name = *added.entry(renamed).or_insert(next);
    }
    let mut new_strings: Vec<(String, i64)> = added.into_iter().collect();
    new_strings.sort_by_key(|&(_, index)| index);
    profile
        .string_table
        .extend(new_strings.into_iter().map(|(s, _)| s));
}

/// Whether Pyroscope treats an `/ingest` request as coming from the .NET agent.
pub fn is_dotnet_spy(spy_name: &str, sample_type_config_has_inuse_space: bool) -> bool {
    spy_name == "dotnetspy" || (spy_name == "unknown" && sample_type_config_has_inuse_space)
}

/// The .NET repair: when every function id is 0 and there are as many functions as locations,
/// function `i` takes location `i`'s id (the agent wrote lines that point there); `-` in sample
/// type names becomes `_`.
pub fn fix_dotnet(profile: &mut Profile) {
    if profile.function.iter().all(|f| f.id == 0)
        && profile.function.len() == profile.location.len()
    {
        for (function, location) in profile.function.iter_mut().zip(&profile.location) {
            function.id = location.id;
        }
    }
    for sample_type in &profile.sample_type {
        if let Some(s) = usize::try_from(sample_type.r#type)
            .ok()
            .and_then(|i| profile.string_table.get_mut(i))
            && s.contains('-')
        {
            *s = s.replace('-', "_");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::proto::Function;

    #[test]
    fn time_in_1970_is_replaced() {
        let mut p = Profile {
            time_nanos: 1_694_153_500_000_000,
            ..Default::default()
        };
        fix_time(&mut p.time_nanos, 42);
        assert_eq!(p.time_nanos, 42);
        p.time_nanos = 1_694_153_500_000_000_000;
        fix_time(&mut p.time_nanos, 7);
        assert_eq!(p.time_nanos, 1_694_153_500_000_000_000);
    }

    #[test]
    fn scripting_names() {
        let mut p = Profile {
            string_table: vec!["".into(), "main".into(), "qwe.py".into(), "/abs.py".into()],
            function: vec![
                Function {
                    id: 1,
                    name: 1,
                    filename: 2,
                    ..Default::default()
                },
                Function {
                    id: 2,
                    name: 1,
                    filename: 2,
                    ..Default::default()
                },
                Function {
                    id: 3,
                    name: 1,
                    filename: 3,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        fix_scripting_function_names(&mut p, "pyspy");
        assert_eq!(p.string_table[p.function[0].name as usize], "qwe.py main");
        assert_eq!(p.function[0].name, p.function[1].name);
        assert_eq!(p.string_table[p.function[2].name as usize], "main");
        fix_scripting_function_names(&mut p, "gospy");
        assert_eq!(p.string_table.len(), 5);
    }
}
