//! A borrowed, low-allocation view of a pprof: decoded straight from the protobuf bytes by hand,
//! strings borrowed from the buffer, samples and lines in flat arrays. The read paths (trees,
//! merges) read it; ingest edits it in place (`prepare_view`: validation, repairs,
//! normalisation and the split work on its arrays) and hands it to the segment writer as it is.
//! It is several times faster to build than prost's decoding, and a push is never copied into
//! prost's owned types (`to_profile` is there for the rare repairs that need them).

use super::decode::PprofError;
use super::proto::{Mapping, Profile};

/// One location; its lines are `view.lines[lines.0..lines.1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocationView {
    pub id: u64,
    pub mapping_id: u64,
    pub address: u64,
    pub is_folded: bool,
    pub lines: (u32, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineView {
    pub function_id: u64,
    pub line: i64,
    pub column: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FunctionView {
    pub id: u64,
    pub name: i64,
    pub system_name: i64,
    pub filename: i64,
    pub start_line: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LabelView {
    pub key: i64,
    pub str: i64,
    pub num: i64,
    pub num_unit: i64,
}

/// One sample's ranges into the flat arrays of its view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleView {
    pub locations: (u32, u32),
    pub values: (u32, u32),
    pub labels: (u32, u32),
}

/// A pprof profile borrowed from its bytes (or from an owned [`Profile`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProfileView<'a> {
    pub sample_type: Vec<(i64, i64)>,
    pub samples: Vec<SampleView>,
    pub location_ids: Vec<u64>,
    pub values: Vec<i64>,
    pub labels: Vec<LabelView>,
    pub mappings: Vec<Mapping>,
    pub locations: Vec<LocationView>,
    pub lines: Vec<LineView>,
    pub functions: Vec<FunctionView>,
    pub strings: Vec<&'a str>,
    pub time_nanos: i64,
    pub duration_nanos: i64,
    pub period_type: Option<(i64, i64)>,
    pub period: i64,
    pub default_sample_type: i64,
}

/// The arrays of a [`ProfileView`] without its borrowed strings, kept between decodes.
#[derive(Debug, Default)]
pub struct ViewBuffers {
    samples: Vec<SampleView>,
    location_ids: Vec<u64>,
    values: Vec<i64>,
    labels: Vec<LabelView>,
    mappings: Vec<Mapping>,
    locations: Vec<LocationView>,
    lines: Vec<LineView>,
    functions: Vec<FunctionView>,
}

fn range(start: usize, end: usize) -> (u32, u32) {
    (start as u32, end as u32)
}

impl<'a> ProfileView<'a> {
    /// The string at `index`, or "" when out of range.
    #[inline]
    pub fn string(&self, index: i64) -> &'a str {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.strings.get(i).copied())
            .unwrap_or("")
    }

    /// Index of the sample type whose type string is `name`.
    pub fn sample_type_index(&self, name: &str) -> Option<usize> {
        self.sample_type
            .iter()
            .position(|&(t, _)| self.string(t) == name)
    }

    #[inline]
    pub fn sample_locations(&self, sample: &SampleView) -> &[u64] {
        &self.location_ids[sample.locations.0 as usize..sample.locations.1 as usize]
    }

    #[inline]
    pub fn sample_values(&self, sample: &SampleView) -> &[i64] {
        &self.values[sample.values.0 as usize..sample.values.1 as usize]
    }

    #[inline]
    pub fn sample_labels(&self, sample: &SampleView) -> &[LabelView] {
        &self.labels[sample.labels.0 as usize..sample.labels.1 as usize]
    }

    #[inline]
    pub fn location_lines(&self, location: &LocationView) -> &[LineView] {
        &self.lines[location.lines.0 as usize..location.lines.1 as usize]
    }

    /// Decodes uncompressed protobuf bytes. Strings must be UTF-8 (Pyroscope's message otherwise).
    pub fn decode(bytes: &'a [u8]) -> Result<ProfileView<'a>, PprofError> {
        Self::decode_with(bytes, ViewBuffers::default())
    }

    /// As [`ProfileView::decode`], filling the arrays of an earlier view (see
    /// [`ProfileView::into_buffers`]) so that a loop over many profiles allocates once.
    pub fn decode_with(
        bytes: &'a [u8],
        buffers: ViewBuffers,
    ) -> Result<ProfileView<'a>, PprofError> {
        let mut view = ProfileView {
            samples: buffers.samples,
            location_ids: buffers.location_ids,
            values: buffers.values,
            labels: buffers.labels,
            mappings: buffers.mappings,
            locations: buffers.locations,
            lines: buffers.lines,
            functions: buffers.functions,
            ..ProfileView::default()
        };
        if view.samples.capacity() == 0 {
            view.reserve_for(bytes);
        }
        let mut reader = Reader::new(bytes);
        while let Some((field, wire)) = reader.key()? {
            match (field, wire) {
                (1, LEN) => view
                    .sample_type
                    .push(value_type_onto(reader.bytes()?, (0, 0))?),
                (2, LEN) => view.decode_sample(reader.bytes()?)?,
                (3, LEN) => view.mappings.push(mapping(reader.bytes()?)?),
                (4, LEN) => view.decode_location(reader.bytes()?)?,
                (5, LEN) => view.functions.push(function(reader.bytes()?)?),
                (6, LEN) => {
                    let raw = reader.bytes()?;
                    let s = std::str::from_utf8(raw).map_err(|_| PprofError::InvalidUtf8 {
                        hex: raw.iter().map(|b| format!("{b:02x}")).collect(),
                    })?;
                    view.strings.push(s);
                }
                (9, VARINT) => view.time_nanos = reader.varint()? as i64,
                (10, VARINT) => view.duration_nanos = reader.varint()? as i64,
                (11, LEN) => {
                    let start = view.period_type.unwrap_or_default();
                    view.period_type = Some(value_type_onto(reader.bytes()?, start)?);
                }
                (12, VARINT) => view.period = reader.varint()? as i64,
                (14, VARINT) => view.default_sample_type = reader.varint()? as i64,
                // Read by prost, not needed here: checked for their wire type only.
                (7 | 8 | 15, VARINT) | (13, VARINT | LEN) => reader.skip(wire, field, 0)?,
                _ => reader.skip_unknown(
                    field,
                    wire,
                    &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
                )?,
            }
        }
        Ok(view)
    }

    /// Sizes fresh buffers from one quick pass over the top-level fields (counting messages by
    /// kind, skipping their contents), so that decoding grows (and copies) none of them. Stops
    /// quietly at malformed input: the decoder reports it.
    fn reserve_for(&mut self, bytes: &[u8]) {
        let (mut samples, mut sample_bytes, mut locations, mut location_bytes) = (0, 0, 0, 0);
        let (mut mappings, mut functions, mut strings, mut types) = (0, 0, 0, 0);
        let mut reader = Reader::new(bytes);
        while let Ok(Some((field, wire))) = reader.key() {
            if wire != LEN {
                if reader.skip(wire, field, 0).is_err() {
                    break;
                }
                continue;
            }
            let Ok(body) = reader.bytes() else { break };
            match field {
                1 => types += 1,
                2 => (samples, sample_bytes) = (samples + 1, sample_bytes + body.len()),
                3 => mappings += 1,
                4 => (locations, location_bytes) = (locations + 1, location_bytes + body.len()),
                5 => functions += 1,
                6 => strings += 1,
                _ => {}
            }
        }
        // Every count is bounded by the bytes that hold it (a location id or value takes a
        // byte or more), never by a product of counts: a hostile body reserves no more than
        // decoding it would fill.
        self.samples.reserve(samples);
        let values = samples.saturating_mul(types).min(sample_bytes);
        self.location_ids
            .reserve(sample_bytes.saturating_sub(values.saturating_mul(2)) / 2);
        self.values.reserve(values);
        self.mappings.reserve(mappings);
        self.locations.reserve(locations);
        // Most locations have one line (a few bytes of id, address and mapping besides).
        self.lines
            .reserve(locations.max(location_bytes / 8).min(location_bytes));
        self.functions.reserve(functions);
        self.strings.reserve(strings);
    }

    fn decode_sample(&mut self, bytes: &[u8]) -> Result<(), PprofError> {
        let (loc_start, value_start, label_start) = (
            self.location_ids.len(),
            self.values.len(),
            self.labels.len(),
        );
        let mut reader = Reader::new(bytes);
        while let Some((field, wire)) = reader.key()? {
            match (field, wire) {
                (1, LEN) => packed(reader.bytes()?, |v| self.location_ids.push(v))?,
                (1, VARINT) => self.location_ids.push(reader.varint()?),
                (2, LEN) => packed(reader.bytes()?, |v| self.values.push(v as i64))?,
                (2, VARINT) => self.values.push(reader.varint()? as i64),
                (3, LEN) => self.labels.push(label(reader.bytes()?)?),
                _ => reader.skip_unknown(field, wire, &[1, 2, 3])?,
            }
        }
        self.samples.push(SampleView {
            locations: range(loc_start, self.location_ids.len()),
            values: range(value_start, self.values.len()),
            labels: range(label_start, self.labels.len()),
        });
        Ok(())
    }

    fn decode_location(&mut self, bytes: &[u8]) -> Result<(), PprofError> {
        let line_start = self.lines.len();
        let mut location = LocationView::default();
        let mut reader = Reader::new(bytes);
        while let Some((field, wire)) = reader.key()? {
            match (field, wire) {
                (1, VARINT) => location.id = reader.varint()?,
                (2, VARINT) => location.mapping_id = reader.varint()?,
                (3, VARINT) => location.address = reader.varint()?,
                (4, LEN) => self.lines.push(line(reader.bytes()?)?),
                (5, VARINT) => location.is_folded = reader.varint()? != 0,
                _ => reader.skip_unknown(field, wire, &[1, 2, 3, 4, 5])?,
            }
        }
        location.lines = range(line_start, self.lines.len());
        self.locations.push(location);
        Ok(())
    }

    /// The view's arrays, emptied, for [`ProfileView::decode_with`].
    pub fn into_buffers(self) -> ViewBuffers {
        let mut buffers = ViewBuffers {
            samples: self.samples,
            location_ids: self.location_ids,
            values: self.values,
            labels: self.labels,
            mappings: self.mappings,
            locations: self.locations,
            lines: self.lines,
            functions: self.functions,
        };
        buffers.samples.clear();
        buffers.location_ids.clear();
        buffers.values.clear();
        buffers.labels.clear();
        buffers.mappings.clear();
        buffers.locations.clear();
        buffers.lines.clear();
        buffers.functions.clear();
        buffers
    }

    /// The owned profile this view describes, every vector allocated at its final size (for
    /// the rare repairs that rewrite a profile, and for tests). The view does not keep `comment`, `drop_frames`,
    /// `keep_frames` and `doc_url`, which nothing downstream reads; they come back empty.
    pub fn to_profile(&self) -> Profile {
        use super::proto::{Function, Label, Line, Location, Sample, ValueType};
        let value_type = |(r#type, unit): (i64, i64)| ValueType { r#type, unit };
        Profile {
            sample_type: self.sample_type.iter().map(|&t| value_type(t)).collect(),
            sample: self
                .samples
                .iter()
                .map(|s| Sample {
                    location_id: self.sample_locations(s).to_vec(),
                    value: self.sample_values(s).to_vec(),
                    label: self
                        .sample_labels(s)
                        .iter()
                        .map(|l| Label {
                            key: l.key,
                            str: l.str,
                            num: l.num,
                            num_unit: l.num_unit,
                        })
                        .collect(),
                })
                .collect(),
            mapping: self.mappings.clone(),
            location: self
                .locations
                .iter()
                .map(|l| Location {
                    id: l.id,
                    mapping_id: l.mapping_id,
                    address: l.address,
                    line: self
                        .location_lines(l)
                        .iter()
                        .map(|line| Line {
                            function_id: line.function_id,
                            line: line.line,
                            column: line.column,
                        })
                        .collect(),
                    is_folded: l.is_folded,
                })
                .collect(),
            function: self
                .functions
                .iter()
                .map(|f| Function {
                    id: f.id,
                    name: f.name,
                    system_name: f.system_name,
                    filename: f.filename,
                    start_line: f.start_line,
                })
                .collect(),
            string_table: self.strings.iter().map(|s| (*s).to_owned()).collect(),
            time_nanos: self.time_nanos,
            duration_nanos: self.duration_nanos,
            period_type: self.period_type.map(value_type),
            period: self.period,
            default_sample_type: self.default_sample_type,
            ..Profile::default()
        }
    }

    /// A view of an owned profile (strings borrowed from it).
    pub fn from_profile(profile: &'a Profile) -> ProfileView<'a> {
        let mut view = ProfileView {
            sample_type: profile
                .sample_type
                .iter()
                .map(|v| (v.r#type, v.unit))
                .collect(),
            mappings: profile.mapping.clone(),
            functions: profile
                .function
                .iter()
                .map(|f| FunctionView {
                    id: f.id,
                    name: f.name,
                    system_name: f.system_name,
                    filename: f.filename,
                    start_line: f.start_line,
                })
                .collect(),
            strings: profile.string_table.iter().map(String::as_str).collect(),
            time_nanos: profile.time_nanos,
            duration_nanos: profile.duration_nanos,
            period_type: profile.period_type.map(|v| (v.r#type, v.unit)),
            period: profile.period,
            default_sample_type: profile.default_sample_type,
            ..Default::default()
        };
        for sample in &profile.sample {
            let (l, v, b) = (
                view.location_ids.len(),
                view.values.len(),
                view.labels.len(),
            );
            view.location_ids.extend_from_slice(&sample.location_id);
            view.values.extend_from_slice(&sample.value);
            view.labels.extend(sample.label.iter().map(|x| LabelView {
                key: x.key,
                str: x.str,
                num: x.num,
                num_unit: x.num_unit,
            }));
            view.samples.push(SampleView {
                locations: range(l, view.location_ids.len()),
                values: range(v, view.values.len()),
                labels: range(b, view.labels.len()),
            });
        }
        for location in &profile.location {
            let start = view.lines.len();
            view.lines.extend(location.line.iter().map(|l| LineView {
                function_id: l.function_id,
                line: l.line,
                column: l.column,
            }));
            view.locations.push(LocationView {
                id: location.id,
                mapping_id: location.mapping_id,
                address: location.address,
                is_folded: location.is_folded,
                lines: range(start, view.lines.len()),
            });
        }
        view
    }
}

/// Calls `push` with each varint of a packed repeated field.
#[inline]
fn packed(bytes: &[u8], mut push: impl FnMut(u64)) -> Result<(), PprofError> {
    let mut inner = Reader::new(bytes);
    while inner.pos < bytes.len() {
        push(inner.varint()?);
    }
    Ok(())
}

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const I32: u8 = 5;

/// A protobuf wire-format reader over one message's bytes.
struct Reader<'b> {
    buf: &'b [u8],
    pos: usize,
}

fn wire_error(what: &'static str, offset: usize) -> PprofError {
    PprofError::Wire { what, offset }
}

impl<'b> Reader<'b> {
    fn new(buf: &'b [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, PprofError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(wire_error("truncated varint", self.pos));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(wire_error("varint overflows 64 bits", self.pos));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(wire_error("varint longer than 10 bytes", self.pos))
    }

    /// The next field number and wire type, or None at the end of the message.
    #[inline]
    fn key(&mut self) -> Result<Option<(u32, u8)>, PprofError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        // Keys are 32-bit (field numbers up to 2^29 - 1), as prost reads them.
        let key = u32::try_from(key).map_err(|_| wire_error("field key too large", self.pos))?;
        let field = key >> 3;
        if field == 0 {
            return Err(wire_error("field number 0", self.pos));
        }
        Ok(Some((field, (key & 7) as u8)))
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'b [u8], PprofError> {
        let len = self.varint()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| wire_error("length past the end of the message", start))?;
        self.pos = end;
        Ok(&self.buf[start..end])
    }

    /// Skips a field this decoder does not read; a known field with the wrong wire type is an
    /// error, as it is for prost.
    fn skip_unknown(&mut self, field: u32, wire: u8, known: &[u32]) -> Result<(), PprofError> {
        if known.contains(&field) {
            return Err(wire_error("field with the wrong wire type", self.pos));
        }
        self.skip(wire, field, 0)
    }

    fn skip(&mut self, wire: u8, field: u32, depth: u32) -> Result<(), PprofError> {
        let advance = |pos: usize, n: usize, len: usize| {
            pos.checked_add(n)
                .filter(|&end| end <= len)
                .ok_or_else(|| wire_error("fixed-width field past the end", pos))
        };
        match wire {
            VARINT => {
                self.varint()?;
            }
            I64 => self.pos = advance(self.pos, 8, self.buf.len())?,
            LEN => {
                self.bytes()?;
            }
            I32 => self.pos = advance(self.pos, 4, self.buf.len())?,
            START_GROUP => {
                if depth >= 100 {
                    return Err(wire_error("groups nested too deep", self.pos));
                }
                loop {
                    let Some((inner, inner_wire)) = self.key()? else {
                        return Err(wire_error("unterminated group", self.pos));
                    };
                    if inner_wire == END_GROUP {
                        if inner != field {
                            return Err(wire_error("mismatched end group", self.pos));
                        }
                        break;
                    }
                    self.skip(inner_wire, inner, depth + 1)?;
                }
            }
            _ => return Err(wire_error("unsupported wire type", self.pos)),
        }
        Ok(())
    }
}

/// Reads a `ValueType` over `start`: fields it holds replace those of `start` (prost merges a
/// repeated singular message field this way).
fn value_type_onto(bytes: &[u8], start: (i64, i64)) -> Result<(i64, i64), PprofError> {
    let (mut ty, mut unit) = start;
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, VARINT) => ty = reader.varint()? as i64,
            (2, VARINT) => unit = reader.varint()? as i64,
            _ => reader.skip_unknown(field, wire, &[1, 2])?,
        }
    }
    Ok((ty, unit))
}

fn label(bytes: &[u8]) -> Result<LabelView, PprofError> {
    let mut label = LabelView::default();
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, VARINT) => label.key = reader.varint()? as i64,
            (2, VARINT) => label.str = reader.varint()? as i64,
            (3, VARINT) => label.num = reader.varint()? as i64,
            (4, VARINT) => label.num_unit = reader.varint()? as i64,
            _ => reader.skip_unknown(field, wire, &[1, 2, 3, 4])?,
        }
    }
    Ok(label)
}

fn line(bytes: &[u8]) -> Result<LineView, PprofError> {
    let mut line = LineView::default();
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, VARINT) => line.function_id = reader.varint()?,
            (2, VARINT) => line.line = reader.varint()? as i64,
            (3, VARINT) => line.column = reader.varint()? as i64,
            _ => reader.skip_unknown(field, wire, &[1, 2, 3])?,
        }
    }
    Ok(line)
}

fn function(bytes: &[u8]) -> Result<FunctionView, PprofError> {
    let mut function = FunctionView::default();
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, VARINT) => function.id = reader.varint()?,
            (2, VARINT) => function.name = reader.varint()? as i64,
            (3, VARINT) => function.system_name = reader.varint()? as i64,
            (4, VARINT) => function.filename = reader.varint()? as i64,
            (5, VARINT) => function.start_line = reader.varint()? as i64,
            _ => reader.skip_unknown(field, wire, &[1, 2, 3, 4, 5])?,
        }
    }
    Ok(function)
}

fn mapping(bytes: &[u8]) -> Result<Mapping, PprofError> {
    let mut mapping = Mapping::default();
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, VARINT) => mapping.id = reader.varint()?,
            (2, VARINT) => mapping.memory_start = reader.varint()?,
            (3, VARINT) => mapping.memory_limit = reader.varint()?,
            (4, VARINT) => mapping.file_offset = reader.varint()?,
            (5, VARINT) => mapping.filename = reader.varint()? as i64,
            (6, VARINT) => mapping.build_id = reader.varint()? as i64,
            (7, VARINT) => mapping.has_functions = reader.varint()? != 0,
            (8, VARINT) => mapping.has_filenames = reader.varint()? != 0,
            (9, VARINT) => mapping.has_line_numbers = reader.varint()? != 0,
            (10, VARINT) => mapping.has_inline_frames = reader.varint()? != 0,
            _ => reader.skip_unknown(field, wire, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])?,
        }
    }
    Ok(mapping)
}
