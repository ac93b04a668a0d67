//! Reading a block: the footer first, then only the sections a query needs.

use crate::BlockError;
use crate::footer::{DatasetInfo, Footer, Section, TRAILER_LEN, checksum, parse_trailer};
use crate::profiles;
use crate::series::SeriesIndex;
use crate::symbols::Symbols;
use bytes::Bytes;
use model::label_names;
use model::{Labels, MatchOp, Matcher, TenantId, Tree};
use prost::Message;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use storage::object_store::ObjectStore;
use storage::{ObjectStoreExt, Path};

/// Largest decompressed protobuf section accepted (a corrupt size field is an error, not an
/// allocation).
const MAX_SECTION_BYTES: usize = 1 << 30;

fn decompress(bytes: &[u8], dataset: usize, section: &'static str) -> Result<Vec<u8>, BlockError> {
    let mut out = Vec::new();
    formats::compression::decompress_into(bytes, MAX_SECTION_BYTES, &mut out).map_err(|e| {
        BlockError::Corrupt {
            dataset,
            section,
            reason: e.to_string(),
        }
    })?;
    Ok(out)
}

/// How much of an object's tail is fetched first, hoping the footer fits in it.
const TAIL_FETCH: u64 = 64 * 1024;

#[derive(Debug, Clone)]
enum Source {
    Store(Arc<dyn ObjectStore>, Path),
    Bytes(Bytes),
}

impl Source {
    async fn range(&self, range: std::ops::Range<u64>) -> Result<Bytes, BlockError> {
        match self {
            Source::Store(store, path) => Ok(store.get_range(path, range).await?),
            Source::Bytes(bytes) => {
                let (start, end) = (range.start as usize, range.end as usize);
                bytes
                    .get(start..end)
                    .map(|_| bytes.slice(start..end))
                    .ok_or_else(|| {
                        BlockError::NotABlock(format!("range {start}..{end} past the end"))
                    })
            }
        }
    }
}

/// An open block: its footer, and the means to fetch sections.
#[derive(Debug, Clone)]
pub struct BlockReader {
    source: Source,
    size: u64,
    datasets: Vec<DatasetInfo>,
}

/// Which profiles to read from a block.
#[derive(Debug, Clone)]
pub struct SelectQuery {
    pub tenant: TenantId,
    /// Profile type id (`process_cpu:cpu:nanoseconds:cpu:nanoseconds`).
    pub profile_type: String,
    /// Label matchers on the series (including `service_name`).
    pub matchers: Vec<Matcher>,
    pub start_nanos: i64,
    pub end_nanos: i64,
    /// Only samples carrying one of these span ids (`SelectMergeSpanProfile`); `None`: all.
    pub span_ids: Option<Vec<u64>>,
    /// Only stacks whose frames, root first, start with these names; empty: all.
    pub call_site: Vec<String>,
}

impl SelectQuery {
    /// Every profile of `profile_type` matching `matchers` in the range, unfiltered.
    pub fn new(
        tenant: TenantId,
        profile_type: String,
        matchers: Vec<Matcher>,
        start_nanos: i64,
        end_nanos: i64,
    ) -> SelectQuery {
        SelectQuery {
            tenant,
            profile_type,
            matchers,
            start_nanos,
            end_nanos,
            span_ids: None,
            call_site: Vec::new(),
        }
    }
}

/// One selected profile's place on the time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfilePoint {
    /// Index into [`Selection::series`].
    pub series: usize,
    pub time_nanos: i64,
    /// Sum of the profile's selected samples.
    pub value: i64,
}

/// What one dataset contributed to a query: its symbols and the summed value per stack.
#[derive(Debug, Clone)]
pub struct Selection {
    pub service_name: String,
    /// The matching series that hold profiles in range, with how many profiles each.
    pub series: Vec<(Labels, usize)>,
    pub symbols: Symbols,
    /// (stack id, summed value), by stack id.
    pub samples: Vec<(u32, i64)>,
    /// Profiles (rows) read.
    pub profiles: usize,
    /// Every selected profile with its value, for time series.
    pub points: Vec<ProfilePoint>,
}

impl Selection {
    /// Adds this selection's stacks, named by their frames, into `tree`.
    pub fn add_to_tree(&self, tree: &mut Tree) {
        self.symbols.add_to_tree(&self.samples, tree);
    }
}

/// Everything one dataset holds, for compaction.
#[derive(Debug, Clone)]
pub struct DatasetContents {
    pub info: DatasetInfo,
    pub series: SeriesIndex,
    pub symbols: Symbols,
    pub(crate) rows: Vec<profiles::ProfileRow>,
}

impl DatasetContents {
    /// Number of profiles (rows).
    pub fn profiles(&self) -> usize {
        self.rows.len()
    }
}

impl BlockReader {
    /// Reads dataset `index` whole.
    pub async fn read_dataset(&self, index: usize) -> Result<DatasetContents, BlockError> {
        let info = self
            .datasets
            .get(index)
            .cloned()
            .ok_or_else(|| BlockError::NotABlock(format!("no dataset {index}")))?;
        let series_bytes = self.section(index, "series", info.series).await?;
        let series = SeriesIndex::decode(&decompress(&series_bytes, index, "series")?, index)?;
        let all: Vec<u32> = (0..series.len() as u32).collect();
        let profile_bytes = self.section(index, "profiles", info.profiles).await?;
        let rows = profiles::read(profile_bytes, &all, i64::MIN, i64::MAX, index)?;
        let symbol_bytes = self.section(index, "symbols", info.symbols).await?;
        let symbols = Symbols::decode(&decompress(&symbol_bytes, index, "symbols")?, index)?;
        Ok(DatasetContents {
            info,
            series,
            symbols,
            rows,
        })
    }

    /// Opens the block at `path`: one ranged read of its tail (two if the footer is large).
    pub async fn open(store: Arc<dyn ObjectStore>, path: Path) -> Result<BlockReader, BlockError> {
        let size = store.head(&path).await?.size;
        Self::with_source(Source::Store(store, path), size).await
    }

    /// A block held in memory (a freshly written one, or a test's).
    pub async fn from_bytes(bytes: Bytes) -> Result<BlockReader, BlockError> {
        let size = bytes.len() as u64;
        Self::with_source(Source::Bytes(bytes), size).await
    }

    async fn with_source(source: Source, size: u64) -> Result<BlockReader, BlockError> {
        if size < TRAILER_LEN as u64 {
            return Err(BlockError::NotABlock("shorter than its trailer".to_owned()));
        }
        let tail_start = size.saturating_sub(TAIL_FETCH);
        let tail = source.range(tail_start..size).await?;
        let (footer_len, footer_crc) = parse_trailer(&tail)?;
        let footer_start = size
            .checked_sub(TRAILER_LEN as u64 + u64::from(footer_len))
            .ok_or_else(|| BlockError::NotABlock("footer longer than the object".to_owned()))?;
        let footer_bytes = if footer_start >= tail_start {
            let from = (footer_start - tail_start) as usize;
            tail.slice(from..from + footer_len as usize)
        } else {
            source
                .range(footer_start..footer_start + u64::from(footer_len))
                .await?
        };
        if checksum(&footer_bytes) != footer_crc {
            return Err(BlockError::NotABlock("footer checksum mismatch".to_owned()));
        }
        let footer = Footer::decode(footer_bytes)?;
        for (index, dataset) in footer.datasets.iter().enumerate() {
            for (name, section) in [
                ("series", dataset.series),
                ("profiles", dataset.profiles),
                ("symbols", dataset.symbols),
            ] {
                let ok = section.is_some_and(|s| {
                    s.offset
                        .checked_add(s.length)
                        .is_some_and(|end| end <= footer_start)
                });
                if !ok {
                    return Err(BlockError::Corrupt {
                        dataset: index,
                        section: name,
                        reason: "missing or out of the object's range".to_owned(),
                    });
                }
            }
        }
        Ok(BlockReader {
            source,
            size,
            datasets: footer.datasets,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn datasets(&self) -> &[DatasetInfo] {
        &self.datasets
    }

    async fn section(
        &self,
        index: usize,
        name: &'static str,
        section: Option<Section>,
    ) -> Result<Bytes, BlockError> {
        let corrupt = |reason: &str| BlockError::Corrupt {
            dataset: index,
            section: name,
            reason: reason.to_owned(),
        };
        let section = section.ok_or_else(|| corrupt("missing"))?;
        let bytes = self
            .source
            .range(section.offset..section.offset + section.length)
            .await?;
        if checksum(&bytes) != section.crc32 {
            return Err(corrupt("checksum mismatch"));
        }
        Ok(bytes)
    }

    /// Whether dataset `info` can hold what `query` asks for, from the footer alone.
    fn may_match(info: &DatasetInfo, query: &SelectQuery) -> bool {
        info.tenant == query.tenant.as_str()
            && info.min_time_nanos <= query.end_nanos
            && info.max_time_nanos >= query.start_nanos
            && info
                .profile_types
                .binary_search(&query.profile_type)
                .is_ok()
            && query
                .matchers
                .iter()
                .filter(|m| m.name == label_names::SERVICE_NAME)
                .all(|m| m.matches(Some(&info.service_name)))
    }

    /// The label sets of `tenant`'s series that all `matchers` accept, in datasets overlapping
    /// `[start_nanos, end_nanos]`; reads only footers and series indexes.
    pub async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start_nanos: i64,
        end_nanos: i64,
    ) -> Result<Vec<Labels>, BlockError> {
        let mut out = Vec::new();
        for (index, info) in self.datasets.iter().enumerate() {
            let may_match = info.tenant == tenant.as_str()
                && info.min_time_nanos <= end_nanos
                && info.max_time_nanos >= start_nanos
                && matchers
                    .iter()
                    .filter(|m| m.name == label_names::SERVICE_NAME)
                    .all(|m| m.matches(Some(&info.service_name)));
            if !may_match {
                continue;
            }
            let bytes = self.section(index, "series", info.series).await?;
            let series_index = SeriesIndex::decode(&decompress(&bytes, index, "series")?, index)?;
            out.extend(
                series_index
                    .select(matchers)
                    .into_iter()
                    .filter_map(|id| series_index.labels(id).cloned()),
            );
        }
        Ok(out)
    }

    /// Reads what `query` selects, dataset by dataset, fetching only datasets that may match
    /// (and, of those, profiles and symbols only when some series matches).
    pub async fn select(&self, query: &SelectQuery) -> Result<Vec<Selection>, BlockError> {
        let profile_type = Matcher::new(
            label_names::PROFILE_TYPE,
            MatchOp::Equal,
            query.profile_type.clone(),
        )
        .map_err(|e| BlockError::NotABlock(e.to_string()))?;
        let mut matchers = query.matchers.clone();
        matchers.push(profile_type);
        let mut out = Vec::new();
        for (index, info) in self.datasets.iter().enumerate() {
            if !Self::may_match(info, query) {
                continue;
            }
            let index_bytes = self.section(index, "series", info.series).await?;
            let series_index =
                SeriesIndex::decode(&decompress(&index_bytes, index, "series")?, index)?;
            let series = series_index.select(&matchers);
            if series.is_empty() {
                continue;
            }
            let profile_bytes = self.section(index, "profiles", info.profiles).await?;
            let rows = profiles::read(
                profile_bytes,
                &series,
                query.start_nanos,
                query.end_nanos,
                index,
            )?;
            if rows.is_empty() {
                continue;
            }
            let symbol_bytes = self.section(index, "symbols", info.symbols).await?;
            let symbols = Symbols::decode(&decompress(&symbol_bytes, index, "symbols")?, index)?;
            let under_call_site =
                (!query.call_site.is_empty()).then(|| symbols.stacks_under(&query.call_site));
            let spans: Option<rustc_hash::FxHashSet<u64>> =
                query.span_ids.as_ref().map(|s| s.iter().copied().collect());
            let filtered = under_call_site.is_some() || spans.is_some();
            let mut sums: FxHashMap<u32, i64> = FxHashMap::default();
            let mut series_slots: FxHashMap<u32, usize> = FxHashMap::default();
            let mut selected_series: Vec<(Labels, usize)> = Vec::new();
            let mut points = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut value = 0i64;
                for (i, (&stack, &sample)) in row.stack_ids.iter().zip(&row.values).enumerate() {
                    if let Some(spans) = &spans
                        && !row.span_ids.get(i).is_some_and(|span| spans.contains(span))
                    {
                        continue;
                    }
                    if let Some(under) = &under_call_site
                        && !under.get(stack as usize).copied().unwrap_or(false)
                    {
                        continue;
                    }
                    let slot = sums.entry(stack).or_insert(0);
                    *slot = slot.wrapping_add(sample);
                    value = value.wrapping_add(sample);
                }
                if filtered && value == 0 {
                    continue;
                }
                let Some(labels) = series_index.labels(row.series_id) else {
                    continue;
                };
                let slot = *series_slots.entry(row.series_id).or_insert_with(|| {
                    selected_series.push((labels.clone(), 0));
                    selected_series.len() - 1
                });
                selected_series[slot].1 += 1;
                points.push(ProfilePoint {
                    series: slot,
                    time_nanos: row.time_nanos,
                    value,
                });
            }
            if points.is_empty() {
                continue;
            }
            let mut samples: Vec<(u32, i64)> = sums.into_iter().filter(|&(_, v)| v != 0).collect();
            samples.sort_unstable();
            out.push(Selection {
                service_name: info.service_name.clone(),
                series: selected_series,
                symbols,
                samples,
                profiles: points.len(),
                points,
            });
        }
        Ok(out)
    }
}
