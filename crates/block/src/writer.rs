//! Writing a block: profiles in, one object's bytes out.

use crate::BlockError;
use crate::footer::RollupSection;
use crate::footer::{DatasetInfo, Footer, Section, checksum, trailer};
use crate::series::SeriesBuilder;
use crate::symbols::SymbolsBuilder;
use crate::table::{self, ProfileId, ProfileRow, RollupRow};
use formats::pprof::{IdIndex, Prepared, PreparedView, ProfileView, SeriesProfile};
use model::label_names;
use model::{Labels, ProfileType, TenantId};
use prost::Message;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};

/// Collects the series of many pushed profiles, grouped into datasets by (tenant,
/// `service_name`), and encodes them as one block object.
#[derive(Debug)]
pub struct BlockWriter {
    datasets: BTreeMap<(TenantId, String), DatasetBuilder>,
    profiles: u64,
    drop_duplicates: bool,
    /// zstd level of every section: fast for segments (short-lived, rewritten by compaction),
    /// denser for compacted blocks.
    zstd_level: i32,
    /// The (stack, span) keys of the profile being added, kept between profiles so that its
    /// table is not reallocated for each one.
    seen: rustc_hash::FxHashSet<(u32, u64)>,
    /// Rollup resolutions written with each dataset (compacted blocks; none for segments).
    rollups: &'static [i64],
}

/// The rollups of compacted blocks: per (series, hour) and per (series, day), so a query over
/// days reads a few rows per series and day instead of every profile.
pub const ROLLUP_RESOLUTIONS_MS: [i64; 2] = [3_600_000, 86_400_000];

/// zstd level of segments: the ingest path's cost, kept low.
const SEGMENT_ZSTD_LEVEL: i32 = 1;
/// zstd level of compacted blocks, which stay.
const BLOCK_ZSTD_LEVEL: i32 = 3;

impl Default for BlockWriter {
    fn default() -> Self {
        BlockWriter {
            datasets: BTreeMap::new(),
            profiles: 0,
            drop_duplicates: false,
            zstd_level: SEGMENT_ZSTD_LEVEL,
            seen: rustc_hash::FxHashSet::default(),
            rollups: &[],
        }
    }
}

#[derive(Debug)]
struct DatasetBuilder {
    symbols: SymbolsBuilder,
    series: SeriesBuilder,
    rows: Vec<ProfileRow>,
    min_time: i64,
    max_time: i64,
    profile_types: BTreeSet<String>,
}

impl DatasetBuilder {
    fn new() -> DatasetBuilder {
        DatasetBuilder {
            symbols: SymbolsBuilder::new(),
            series: SeriesBuilder::default(),
            rows: Vec::new(),
            min_time: i64::MAX,
            max_time: i64::MIN,
            profile_types: BTreeSet::new(),
        }
    }
}

/// Where one dataset landed in an encoded block, for the metastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSummary {
    pub tenant: TenantId,
    pub service_name: String,
    pub min_time_nanos: i64,
    pub max_time_nanos: i64,
    pub profile_types: Vec<String>,
    pub offset: u64,
    pub length: u64,
    /// Profiles (rows) stored.
    pub profiles: u64,
}

/// An encoded block and what it holds.
#[derive(Debug, Clone)]
pub struct EncodedBlock {
    pub bytes: Vec<u8>,
    pub datasets: Vec<DatasetSummary>,
}

/// zstd for the protobuf sections (the Parquet section compresses its own pages), with one
/// compressor for a whole block: a zstd context costs more to set up than a small section
/// costs to compress.
fn compress(
    compressor: &mut zstd::bulk::Compressor<'_>,
    data: &[u8],
) -> Result<Vec<u8>, BlockError> {
    compressor
        .compress(data)
        .map_err(|e| BlockError::NotABlock(format!("zstd: {e}")))
}

/// A pprof `span_id` label value (16 hex digits) as Pyroscope reads it: the 8 decoded bytes
/// as a little-endian integer; anything else is no span (0).
pub fn span_id(value: &str) -> u64 {
    if value.len() != 16 || !value.is_ascii() {
        return 0;
    }
    let mut bytes = [0u8; 8];
    for (i, byte) in bytes.iter_mut().enumerate() {
        match u8::from_str_radix(&value[2 * i..2 * i + 2], 16) {
            Ok(b) => *byte = b,
            Err(_) => return 0,
        }
    }
    u64::from_le_bytes(bytes)
}

/// A span id as Pyroscope writes it: the 8 bytes of [`span_id`]'s integer, little-endian, as 16
/// hex digits.
pub fn span_id_string(id: u64) -> String {
    id.to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl BlockWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer for compaction: exact duplicate profiles (same series, time and samples, as
    /// replicated or retried writes leave in different segments) are kept once, and every
    /// dataset gets its rollups ([`ROLLUP_RESOLUTIONS_MS`]).
    pub fn for_compaction() -> Self {
        BlockWriter {
            drop_duplicates: true,
            zstd_level: BLOCK_ZSTD_LEVEL,
            rollups: &ROLLUP_RESOLUTIONS_MS,
            ..Self::default()
        }
    }

    /// Number of series profiles added.
    pub fn profiles(&self) -> u64 {
        self.profiles
    }

    pub fn is_empty(&self) -> bool {
        self.datasets.is_empty()
    }

    /// Adds one series profile of `tenant` (one row per sample type with data) under the id of
    /// the pushed profile it came from.
    pub fn add(&mut self, tenant: &TenantId, series: &SeriesProfile, id: ProfileId) {
        let view = ProfileView::from_profile(&series.profile);
        self.add_view(
            tenant,
            &view,
            [(&series.labels, series.profile_types(), None)],
            id,
        );
    }

    /// Adds every series of one prepared profile of `tenant`, whichever form it has; every
    /// row of it carries `id` (one id per pushed profile, as Pyroscope gives one).
    pub fn add_profile(&mut self, tenant: &TenantId, profile: &Prepared<'_>, id: ProfileId) {
        match profile {
            Prepared::View(view) => self.add_prepared(tenant, view, id),
            Prepared::Series(series) => {
                for one in series {
                    self.add(tenant, one, id);
                }
            }
        }
    }

    /// Adds every series of one prepared profile of `tenant`, read from its flat arrays: its
    /// locations are interned and its stacks found once for all its series.
    pub fn add_prepared(&mut self, tenant: &TenantId, prepared: &PreparedView<'_>, id: ProfileId) {
        self.add_view(
            tenant,
            &prepared.profile,
            prepared.series.iter().map(|series| {
                (
                    &series.labels,
                    prepared.profile_types(&series.labels),
                    series.samples.as_deref(),
                )
            }),
            id,
        );
    }

    /// Adds series of `view`: each with its labels, its profile types and its samples (`None`:
    /// all of them).
    fn add_view<'s>(
        &mut self,
        tenant: &TenantId,
        view: &ProfileView<'_>,
        series: impl IntoIterator<Item = (&'s Labels, Vec<(ProfileType, Labels)>, Option<&'s [u32]>)>,
        id: ProfileId,
    ) {
        // The stack and span of each sample, in the dataset of each service met (one, for what
        // `prepare_view` makes: every series of a profile has the request's service).
        let mut stacks_by_service: Vec<(&str, SampleStacks)> = Vec::new();
        for (labels, types, members) in series {
            let service = labels
                .get(label_names::SERVICE_NAME)
                .unwrap_or(label_names::UNKNOWN_SERVICE);
            let dataset = self
                .datasets
                .entry((tenant.clone(), service.to_owned()))
                .or_insert_with(DatasetBuilder::new);
            let at = match stacks_by_service.iter().position(|(s, _)| *s == service) {
                Some(at) => at,
                None => {
                    let mut stacks = Vec::new();
                    sample_stacks(dataset, view, &mut stacks);
                    stacks_by_service.push((service, stacks));
                    stacks_by_service.len() - 1
                }
            };
            let stacks = &stacks_by_service[at].1;
            add_rows(dataset, &mut self.seen, view, stacks, members, &types, id);
            self.profiles += 1;
        }
    }

    /// Adds a whole dataset read from another block (compaction): symbols are re-interned into
    /// this block's dataset of the same (tenant, service), stacks and series remapped.
    pub fn add_dataset(
        &mut self,
        contents: &crate::reader::DatasetContents,
    ) -> Result<(), BlockError> {
        let tenant = TenantId::new(&contents.info.tenant).map_err(|e| BlockError::Corrupt {
            dataset: 0,
            section: "footer",
            reason: e.to_string(),
        })?;
        let dataset = self
            .datasets
            .entry((tenant, contents.info.service_name.clone()))
            .or_insert_with(DatasetBuilder::new);
        let stacks = dataset.symbols.import(&contents.symbols);
        let mut series_map: FxHashMap<u32, u32> = FxHashMap::default();
        for row in &contents.rows {
            let series_id = match series_map.get(&row.series_id) {
                Some(&id) => id,
                None => {
                    let Some(labels) = contents.series.labels(row.series_id) else {
                        continue;
                    };
                    let id = dataset.series.id(labels);
                    series_map.insert(row.series_id, id);
                    id
                }
            };
            let mut copy = row.clone();
            copy.series_id = series_id;
            for stack in &mut copy.stack_ids {
                *stack = stacks.get(*stack as usize).copied().unwrap_or(0);
            }
            dataset.min_time = dataset.min_time.min(copy.time_nanos);
            dataset.max_time = dataset.max_time.max(copy.time_nanos);
            dataset.rows.push(copy);
        }
        dataset
            .profile_types
            .extend(contents.info.profile_types.iter().cloned());
        self.profiles += contents.rows.len() as u64;
        Ok(())
    }

    /// Encodes every dataset with rows into one object.
    pub fn finish(self) -> Result<EncodedBlock, BlockError> {
        let level = self.zstd_level;
        let mut compressor = zstd::bulk::Compressor::new(level)
            .map_err(|e| BlockError::NotABlock(format!("zstd: {e}")))?;
        let mut bytes = Vec::new();
        let mut footer = Footer::default();
        let mut summaries = Vec::new();
        for ((tenant, service_name), dataset) in self.datasets {
            if dataset.rows.is_empty() {
                continue;
            }
            let start = bytes.len() as u64;
            let (series_proto, remap) = dataset.series.finish();
            let mut rows = dataset.rows;
            for row in &mut rows {
                row.series_id = remap[row.series_id as usize];
            }
            if self.drop_duplicates {
                // The same profile twice (a retried or replicated write) is one; its id does
                // not take part, since a retry may carry another.
                rows.sort_by(|a, b| {
                    (a.sort_key(), &a.stack_ids, &a.values, &a.span_ids).cmp(&(
                        b.sort_key(),
                        &b.stack_ids,
                        &b.values,
                        &b.span_ids,
                    ))
                });
                rows.dedup_by(|a, b| {
                    (a.sort_key(), &a.stack_ids, &a.values, &a.span_ids)
                        == (b.sort_key(), &b.stack_ids, &b.values, &b.span_ids)
                });
            } else {
                rows.sort_by_key(ProfileRow::sort_key);
            }
            let section = |data: &[u8], bytes: &mut Vec<u8>| {
                let s = Section {
                    offset: bytes.len() as u64,
                    length: data.len() as u64,
                    crc32: checksum(data),
                };
                bytes.extend_from_slice(data);
                s
            };
            let series = section(
                &compress(&mut compressor, &series_proto.encode_to_vec())?,
                &mut bytes,
            );
            let profiles_table = table::write_profiles(&rows, level)?;
            let profiles_checksums = table::checksums(&profiles_table)?;
            let profiles = section(&profiles_table, &mut bytes);
            drop(profiles_table);
            let mut rollups = Vec::new();
            for (resolution_ms, rollup) in rollups_of(&rows, self.rollups) {
                let rollup_table = table::write_rollup(&rollup, level)?;
                rollups.push(RollupSection {
                    resolution_ms,
                    checksums: Some(table::checksums(&rollup_table)?),
                    section: Some(section(&rollup_table, &mut bytes)),
                });
            }
            let symbols = section(
                &compress(&mut compressor, &dataset.symbols.finish().encode_to_vec())?,
                &mut bytes,
            );
            let profile_types: Vec<String> = dataset.profile_types.into_iter().collect();
            summaries.push(DatasetSummary {
                tenant: tenant.clone(),
                service_name: service_name.clone(),
                min_time_nanos: dataset.min_time,
                max_time_nanos: dataset.max_time,
                profile_types: profile_types.clone(),
                offset: start,
                length: bytes.len() as u64 - start,
                profiles: rows.len() as u64,
            });
            footer.datasets.push(DatasetInfo {
                tenant: tenant.as_str().to_owned(),
                service_name,
                min_time_nanos: dataset.min_time,
                max_time_nanos: dataset.max_time,
                profile_types,
                series: Some(series),
                profiles: Some(profiles),
                symbols: Some(symbols),
                profile_count: rows.len() as u64,
                rollups,
                profiles_checksums: Some(profiles_checksums),
            });
        }
        let encoded = footer.encode_to_vec();
        let length = u32::try_from(encoded.len())
            .map_err(|_| BlockError::NotABlock("footer larger than 4 GiB".to_owned()))?;
        bytes.extend_from_slice(&encoded);
        bytes.extend_from_slice(&trailer(length, checksum(&encoded)));
        Ok(EncodedBlock {
            bytes,
            datasets: summaries,
        })
    }
}

/// The rollups of a dataset's profiles at each of `resolutions` (ascending), each coarser one
/// summed from the finer; a resolution is left out when it would not hold fewer than half the
/// rows of the one below it (nothing to gain).
fn rollups_of(rows: &[ProfileRow], resolutions: &[i64]) -> Vec<(i64, Vec<RollupRow>)> {
    let mut out: Vec<(i64, Vec<RollupRow>)> = Vec::new();
    if resolutions.is_empty() {
        return out;
    }
    let mut profiles: Vec<&ProfileRow> = rows.iter().collect();
    profiles.sort_by_key(|row| (row.series_id, row.time_nanos));
    for &resolution_ms in resolutions {
        let width = resolution_ms.saturating_mul(1_000_000);
        let (rolled, below) = match out.last() {
            None => (roll_up(&profiles, width), profiles.len()),
            Some((_, finer)) => (roll_up(finer, width), finer.len()),
        };
        if rolled.len() * 2 <= below {
            out.push((resolution_ms, rolled));
        }
    }
    out
}

/// What a rollup sums: a profile, or a finer rollup's bucket.
trait Summable {
    fn series_id(&self) -> u32;
    fn time_nanos(&self) -> i64;
    fn profiles(&self) -> u64;
    fn total(&self) -> i64;
    fn stacks(&self) -> (&[u32], &[i64]);
}

impl Summable for &ProfileRow {
    fn series_id(&self) -> u32 {
        self.series_id
    }
    fn time_nanos(&self) -> i64 {
        self.time_nanos
    }
    fn profiles(&self) -> u64 {
        1
    }
    fn total(&self) -> i64 {
        self.total
    }
    fn stacks(&self) -> (&[u32], &[i64]) {
        (&self.stack_ids, &self.values)
    }
}

impl Summable for RollupRow {
    fn series_id(&self) -> u32 {
        self.series_id
    }
    fn time_nanos(&self) -> i64 {
        self.bucket_nanos
    }
    fn profiles(&self) -> u64 {
        self.profiles
    }
    fn total(&self) -> i64 {
        self.total
    }
    fn stacks(&self) -> (&[u32], &[i64]) {
        (&self.stack_ids, &self.values)
    }
}

/// Sums parts (sorted by series, time) into buckets of `width` nanoseconds aligned to the
/// epoch; each bucket's stacks ascending.
fn roll_up<T: Summable>(parts: &[T], width: i64) -> Vec<RollupRow> {
    let bucket_of = |t: i64| t.div_euclid(width).saturating_mul(width);
    let mut out: Vec<RollupRow> = Vec::new();
    let mut sums: FxHashMap<u32, i64> = FxHashMap::default();
    let mut start = 0;
    while start < parts.len() {
        let series = parts[start].series_id();
        let bucket = bucket_of(parts[start].time_nanos());
        let (mut profiles, mut total) = (0u64, 0i64);
        sums.clear();
        let mut end = start;
        while let Some(part) = parts
            .get(end)
            .filter(|p| p.series_id() == series && bucket_of(p.time_nanos()) == bucket)
        {
            profiles += part.profiles();
            total = total.wrapping_add(part.total());
            let (stacks, values) = part.stacks();
            for (&stack, &value) in stacks.iter().zip(values) {
                let slot = sums.entry(stack).or_insert(0);
                *slot = slot.wrapping_add(value);
            }
            end += 1;
        }
        let mut stacks: Vec<(u32, i64)> = sums.iter().map(|(&s, &v)| (s, v)).collect();
        stacks.sort_unstable();
        out.push(RollupRow {
            series_id: series,
            bucket_nanos: bucket,
            profiles,
            total,
            stack_ids: stacks.iter().map(|s| s.0).collect(),
            values: stacks.iter().map(|s| s.1).collect(),
        });
        start = end;
    }
    out
}

/// Each sample's (stack id, span id) in one dataset, by sample position; `None` where a
/// reference is broken.
type SampleStacks = Vec<Option<(u32, u64)>>;

/// Interns the locations of `view` into `dataset` and sets `stacks` to each sample's (stack id,
/// span id), `None` where a reference is broken.
fn sample_stacks(dataset: &mut DatasetBuilder, view: &ProfileView<'_>, stacks: &mut SampleStacks) {
    let location_map = dataset.symbols.add_locations(view);
    let locations = IdIndex::new(view.locations.iter().map(|l| l.id));
    let span_key = view
        .strings
        .iter()
        .position(|s| *s == label_names::SPAN_ID)
        .map(|p| p as i64);
    stacks.reserve(view.samples.len());
    let mut root_first = Vec::new();
    for sample in &view.samples {
        root_first.clear();
        let mut complete = true;
        for &id in view.sample_locations(sample).iter().rev() {
            match locations
                .get(id)
                .and_then(|p| location_map.get(p).copied().flatten())
            {
                Some(location) => root_first.push(location),
                None => {
                    complete = false;
                    break;
                }
            }
        }
        let stack = if complete {
            dataset.symbols.stack_id(&root_first)
        } else {
            None
        };
        let span = view
            .sample_labels(sample)
            .iter()
            .find(|l| Some(l.key) == span_key)
            .map_or(0, |l| span_id(view.string(l.str)));
        stacks.push(stack.map(|s| (s, span)));
    }
}

/// One row per sample type of one series: the values of its `members` (sample positions;
/// `None`: every sample) by stack and span.
fn add_rows(
    dataset: &mut DatasetBuilder,
    seen: &mut rustc_hash::FxHashSet<(u32, u64)>,
    view: &ProfileView<'_>,
    stacks: &[Option<(u32, u64)>],
    members: Option<&[u32]>,
    types: &[(ProfileType, Labels)],
    profile_id: ProfileId,
) {
    let (listed, all) = match members {
        Some(listed) => (listed, 0..0),
        None => (&[][..], 0..view.samples.len()),
    };
    let count = listed.len() + all.len();
    let member_stacks = || {
        let positions = listed.iter().map(|&m| m as usize).chain(all.clone());
        positions.filter_map(|m| Some((view.samples.get(m)?, (*stacks.get(m)?)?)))
    };
    // Samples are unique by stack and span after normalisation, unless two pprof locations
    // became one dataset location: check once, and merge only then.
    seen.clear();
    seen.reserve(count);
    let unique = member_stacks().all(|(_, key)| seen.insert(key));
    for (index, (profile_type, labels)) in types.iter().enumerate() {
        let mut row = ProfileRow {
            series_id: dataset.series.id(labels),
            time_nanos: view.time_nanos,
            total: 0,
            stack_ids: Vec::with_capacity(count),
            values: Vec::with_capacity(count),
            span_ids: Vec::with_capacity(count),
            profile_id,
        };
        if unique {
            for (sample, (stack, span)) in member_stacks() {
                let value = view.sample_values(sample).get(index).copied().unwrap_or(0);
                if value != 0 {
                    row.total = row.total.wrapping_add(value);
                    row.stack_ids.push(stack);
                    row.span_ids.push(span);
                    row.values.push(value);
                }
            }
        } else {
            let mut sums: FxHashMap<(u32, u64), i64> = FxHashMap::default();
            let mut order: Vec<(u32, u64)> = Vec::new();
            for (sample, key) in member_stacks() {
                let value = view.sample_values(sample).get(index).copied().unwrap_or(0);
                if value == 0 {
                    continue;
                }
                let slot = sums.entry(key).or_insert_with(|| {
                    order.push(key);
                    0
                });
                *slot = slot.wrapping_add(value);
            }
            for key in order {
                let value = sums[&key];
                if value != 0 {
                    row.total = row.total.wrapping_add(value);
                    row.stack_ids.push(key.0);
                    row.span_ids.push(key.1);
                    row.values.push(value);
                }
            }
        }
        if row.values.is_empty() {
            continue;
        }
        row.stack_ids.shrink_to_fit();
        row.values.shrink_to_fit();
        row.span_ids.shrink_to_fit();
        dataset.profile_types.insert(profile_type.to_string());
        dataset.min_time = dataset.min_time.min(view.time_nanos);
        dataset.max_time = dataset.max_time.max(view.time_nanos);
        dataset.rows.push(row);
    }
}

#[cfg(test)]
mod tests {
    use super::{span_id, span_id_string};

    #[test]
    fn span_ids_read_as_pyroscope_reads_them() {
        assert_eq!(span_id("0100000000000000"), 1);
        assert_eq!(span_id("00000000000000ff"), 0xff << 56);
        assert_eq!(span_id("xyz"), 0);
        assert_eq!(span_id("zz00000000000000"), 0);
        for text in ["0100000000000000", "00000000000000ff", "0123456789abcdef"] {
            assert_eq!(span_id_string(span_id(text)), text);
        }
    }
}
