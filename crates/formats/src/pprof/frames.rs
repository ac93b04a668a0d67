//! Frame names of a profile's locations, as Google's pprof names them at its default
//! "functions" granularity: one frame per line (inlined calls expanded, outermost caller first),
//! the function name, or `[basename of the mapping file]` / `<unknown>` for a location or line
//! without a name.

use super::id_index::IdIndex;
use super::proto::Profile;
use super::view::ProfileView;
use std::borrow::Cow;

/// For every location of a profile, its frame names, outermost caller first.
#[derive(Debug)]
pub struct FrameNames<'a> {
    offsets: Vec<u32>,
    names: Vec<Cow<'a, str>>,
    locations: IdIndex,
}

/// The string at `index` of the profile's table, or "" when out of range.
pub(crate) fn string_at(profile: &Profile, index: i64) -> &str {
    usize::try_from(index)
        .ok()
        .and_then(|i| profile.string_table.get(i))
        .map_or("", String::as_str)
}

/// pprof's name for a frame without a function name: `[basename of the mapping file]`, or
/// `<unknown>` without one.
pub fn unnamed_frame<'a>(mapping_file: &'a str) -> Cow<'a, str> {
    if mapping_file.is_empty() {
        return Cow::Borrowed("<unknown>");
    }
    let base = mapping_file.rsplit('/').next().unwrap_or(mapping_file);
    Cow::Owned(format!("[{base}]"))
}

impl<'a> FrameNames<'a> {
    pub fn new(profile: &ProfileView<'a>) -> FrameNames<'a> {
        let functions = IdIndex::new(profile.functions.iter().map(|f| f.id));
        let mappings = IdIndex::new(profile.mappings.iter().map(|m| m.id));
        let locations = IdIndex::new(profile.locations.iter().map(|l| l.id));
        let mut offsets = Vec::with_capacity(profile.locations.len() + 1);
        let mut names = Vec::with_capacity(profile.locations.len());
        offsets.push(0);
        for location in &profile.locations {
            let mapping_file = mappings
                .get(location.mapping_id)
                .map_or("", |m| profile.string(profile.mappings[m].filename));
            let lines = profile.location_lines(location);
            if lines.is_empty() {
                names.push(unnamed_frame(mapping_file));
            }
            for line in lines.iter().rev() {
                let name = functions
                    .get(line.function_id)
                    .map_or("", |f| profile.string(profile.functions[f].name));
                if name.is_empty() {
                    names.push(unnamed_frame(mapping_file));
                } else {
                    names.push(Cow::Borrowed(name));
                }
            }
            offsets.push(names.len() as u32);
        }
        FrameNames {
            offsets,
            names,
            locations,
        }
    }

    /// Number of locations.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Position of the location with pprof id `id`.
    #[inline]
    pub fn location_position(&self, id: u64) -> Option<usize> {
        self.locations.get(id)
    }

    /// Frame names of the location at `position`, outermost caller first.
    #[inline]
    pub fn frames(&self, position: usize) -> &[Cow<'a, str>] {
        let start = self.offsets[position] as usize;
        let end = self.offsets[position + 1] as usize;
        &self.names[start..end]
    }
}
