//! A dataset's series index: its label sets (sorted, so a series id orders series by labels)
//! and, per label pair, the posting list of series holding it.

use crate::BlockError;
use model::{Interner, LabelPair, Labels, MatchOp, Matcher};
use rustc_hash::FxHashMap;

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SeriesProto {
    #[prost(string, repeated, tag = "1")]
    pub strings: Vec<String>,
    #[prost(message, repeated, tag = "2")]
    pub series: Vec<LabelSetProto>,
    #[prost(message, repeated, tag = "3")]
    pub postings: Vec<PostingProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct LabelSetProto {
    /// Name and value string indices, alternating, sorted by name.
    #[prost(uint32, repeated, tag = "1")]
    pub pairs: Vec<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PostingProto {
    #[prost(uint32, tag = "1")]
    pub name: u32,
    #[prost(uint32, tag = "2")]
    pub value: u32,
    /// Series ids holding this pair, ascending.
    #[prost(uint32, repeated, tag = "3")]
    pub series: Vec<u32>,
}

/// Label sets collected for one dataset, in first-seen order until `finish` sorts them.
#[derive(Debug, Default)]
pub(crate) struct SeriesBuilder {
    ids: FxHashMap<Labels, u32>,
    series: Vec<Labels>,
}

impl SeriesBuilder {
    pub fn id(&mut self, labels: &Labels) -> u32 {
        if let Some(&id) = self.ids.get(labels) {
            return id;
        }
        let id = self.series.len() as u32;
        self.series.push(labels.clone());
        self.ids.insert(labels.clone(), id);
        id
    }

    /// The encoded index and, for each first-seen id, its final (sorted) id.
    pub fn finish(self) -> (SeriesProto, Vec<u32>) {
        let mut order: Vec<u32> = (0..self.series.len() as u32).collect();
        order.sort_by(|&a, &b| self.series[a as usize].cmp(&self.series[b as usize]));
        let mut remap = vec![0u32; self.series.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let mut strings = Interner::new();
        strings.intern("");
        let mut postings: std::collections::BTreeMap<(u32, u32), Vec<u32>> = Default::default();
        let mut series = Vec::with_capacity(order.len());
        for (new, &old) in order.iter().enumerate() {
            let mut pairs = Vec::new();
            for pair in self.series[old as usize].iter() {
                let (name, value) = (strings.intern(&pair.name), strings.intern(&pair.value));
                pairs.extend([name, value]);
                postings.entry((name, value)).or_default().push(new as u32);
            }
            series.push(LabelSetProto { pairs });
        }
        let proto = SeriesProto {
            strings: strings.into_strings(),
            series,
            postings: postings
                .into_iter()
                .map(|((name, value), series)| PostingProto {
                    name,
                    value,
                    series,
                })
                .collect(),
        };
        (proto, remap)
    }
}

/// A decoded series index.
#[derive(Debug, Clone)]
pub struct SeriesIndex {
    series: Vec<Labels>,
    /// (name, value) → series ids.
    postings: FxHashMap<(String, String), Vec<u32>>,
}

impl SeriesIndex {
    /// Decodes a series index section as fetched (zstd-compressed); `dataset` names it in
    /// errors.
    pub fn decode_section(bytes: &[u8], dataset: usize) -> Result<SeriesIndex, BlockError> {
        Self::decode(
            &crate::reader::decompress(bytes, dataset, "series")?,
            dataset,
        )
    }

    pub(crate) fn decode(bytes: &[u8], dataset: usize) -> Result<SeriesIndex, BlockError> {
        use prost::Message;
        let proto = SeriesProto::decode(bytes)?;
        let corrupt = |reason: &str| BlockError::Corrupt {
            dataset,
            section: "series",
            reason: reason.to_owned(),
        };
        let string = |i: u32| {
            proto
                .strings
                .get(i as usize)
                .cloned()
                .ok_or_else(|| corrupt("string out of range"))
        };
        let mut series = Vec::with_capacity(proto.series.len());
        for set in &proto.series {
            if set.pairs.len() % 2 != 0 {
                return Err(corrupt("odd label pair list"));
            }
            let pairs: Result<Vec<LabelPair>, BlockError> = set
                .pairs
                .chunks(2)
                .map(|p| Ok(LabelPair::new(string(p[0])?, string(p[1])?)))
                .collect();
            series.push(Labels::from_pairs(
                pairs?.into_iter().map(|p| (p.name, p.value)),
            ));
        }
        let mut postings = FxHashMap::default();
        for posting in &proto.postings {
            if posting.series.iter().any(|&s| s as usize >= series.len()) {
                return Err(corrupt("posting out of range"));
            }
            postings.insert(
                (string(posting.name)?, string(posting.value)?),
                posting.series.clone(),
            );
        }
        Ok(SeriesIndex { series, postings })
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// About how many bytes it holds in memory (for caches bounded in bytes).
    pub fn memory_size(&self) -> usize {
        let labels: usize = self
            .series
            .iter()
            .map(|l| {
                24 + l
                    .iter()
                    .map(|p| p.name.len() + p.value.len() + 48)
                    .sum::<usize>()
            })
            .sum();
        let postings: usize = self
            .postings
            .iter()
            .map(|((n, v), ids)| n.len() + v.len() + 72 + ids.len() * 4)
            .sum();
        labels + postings
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn labels(&self, id: u32) -> Option<&Labels> {
        self.series.get(id as usize)
    }

    /// Ids of the series all `matchers` accept, ascending. Equality matchers on a non-empty
    /// value are answered from the postings; the rest filter the candidates.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<u32> {
        let mut candidates: Option<Vec<u32>> = None;
        for m in matchers
            .iter()
            .filter(|m| m.op == MatchOp::Equal && !m.value.is_empty())
        {
            let list = self
                .postings
                .get(&(m.name.clone(), m.value.clone()))
                .cloned()
                .unwrap_or_default();
            candidates = Some(match candidates {
                None => list,
                Some(current) => current
                    .into_iter()
                    .filter(|id| list.binary_search(id).is_ok())
                    .collect(),
            });
        }
        let candidates = candidates.unwrap_or_else(|| (0..self.series.len() as u32).collect());
        candidates
            .into_iter()
            .filter(|&id| {
                let labels = &self.series[id as usize];
                matchers.iter().all(|m| m.matches_labels(labels))
            })
            .collect()
    }
}
