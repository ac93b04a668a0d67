//! One OTLP `Profile` message → one pprof per sample service name (note §5). Nothing is
//! allocated from a size the input merely claims, and the output is charged to a [`Budget`].

use super::error::{ConvertError, OutOfBounds};
use super::lookup::{
    SERVICE_NAME_ATTRIBUTE, SymbolFlags, at, build_id, hex, sample_service_name, string_at,
    string_value, value_type,
};
use super::proto::profiles as otlp;
use crate::pprof::proto as pprof;
use model::label_names;
use rustc_hash::FxHashMap;
use std::cell::Cell;

/// `duration_nanos` when the profile gives none: 10 s.
const DEFAULT_DURATION_NANOS: i64 = 10_000_000_000;

/// The pprof of the samples of one `Profile` that carry one service name.
#[derive(Debug)]
pub(super) struct ServiceProfile {
    /// The samples' `service.name` attribute; empty when they have none.
    pub service_name: String,
    /// The `__name__` label derived from the profile type (`process_cpu`, `off_cpu`, …).
    pub name: String,
    pub profile: pprof::Profile,
}

/// What the converted output may still take, in 8-byte words (module doc of `otlp`). Shared by
/// every builder of a request; charged for location references, copied lines, strings and
/// series labels, so that no input can make the output grow out of proportion to it.
#[derive(Debug)]
pub(super) struct Budget {
    limit: usize,
    left: Cell<usize>,
}

impl Budget {
    pub(super) fn new(limit: usize) -> Self {
        Budget {
            limit,
            left: Cell::new(limit),
        }
    }

    pub(super) fn take(&self, words: usize) -> Result<(), ConvertError> {
        let left = self
            .left
            .get()
            .checked_sub(words)
            .ok_or(ConvertError::TooLarge { limit: self.limit })?;
        self.left.set(left);
        Ok(())
    }

    /// The words a copy of `bytes` bytes takes (with its header).
    pub(super) fn words(bytes: usize) -> usize {
        3 + bytes / 8
    }
}

/// Converts `profile` (note §5.1): one pprof per distinct sample service name, in first-seen
/// order. A sample whose service name lookup hits a bad index drops the whole profile without
/// an error, as in Pyroscope.
pub(super) fn convert_profile(
    profile: &otlp::Profile,
    dictionary: &otlp::ProfilesDictionary,
    now_nanos: i64,
    budget: &Budget,
) -> Result<Vec<ServiceProfile>, ConvertError> {
    let mut builders: Vec<(String, Builder<'_, '_>)> = Vec::new();
    let mut by_service: FxHashMap<&str, usize> = FxHashMap::default();
    for sample in &profile.samples {
        let Some(service) = sample_service_name(dictionary, sample) else {
            return Ok(Vec::new());
        };
        let at = match by_service.get(service) {
            Some(&at) => at,
            None => {
                let builder = Builder::new(profile, dictionary, now_nanos, budget)?;
                budget.take(Budget::words(service.len()))?;
                builders.push((service.to_owned(), builder));
                by_service.insert(service, builders.len() - 1);
                builders.len() - 1
            }
        };
        if let Some((_, builder)) = builders.get_mut(at) {
            builder.add_sample(sample)?;
        }
    }
    Ok(builders
        .into_iter()
        .map(|(service_name, builder)| ServiceProfile {
            service_name,
            name: builder.name,
            profile: builder.out,
        })
        .collect())
}

/// What happens to a sample's values (note §5.2).
#[derive(Debug, Clone, Copy)]
enum ValueConversion {
    /// `samples:count:cpu:nanoseconds`: the count times the period.
    MultiplyByPeriod(i64),
    /// `events:nanoseconds::` (off-CPU): one value, the sum.
    Sum,
    Keep,
}

/// A sample attribute as it becomes a pprof label (note §5.3 step 4), resolved once per builder.
#[derive(Debug, Clone, Copy)]
enum AttributeLabel {
    /// `service.name`, a value that is not a non-empty string: no label.
    Skip,
    /// Key and value as indices into the pprof string table.
    Label(i64, i64),
    /// A label whose key string index is out of range.
    BadKey(OutOfBounds),
}

/// Builds the pprof of one (profile, sample service name). Everything derived from a dictionary
/// entry is computed once per builder, so that the work per sample is proportional to the
/// sample and its stack, however long the strings and attribute lists it refers to are.
struct Builder<'d, 'b> {
    dictionary: &'d otlp::ProfilesDictionary,
    budget: &'b Budget,
    out: pprof::Profile,
    name: String,
    conversion: ValueConversion,
    /// Whether a sample must have exactly one value (a period type and a non-zero period).
    check_value_count: bool,
    strings: FxHashMap<String, i64>,
    /// Dictionary attribute index → label.
    attribute_labels: FxHashMap<usize, AttributeLabel>,
    /// Dictionary link index → the `span_id` label.
    link_labels: FxHashMap<usize, pprof::Label>,
    /// Dictionary mapping index → (filename, build id) in the pprof string table.
    mapping_strings: FxHashMap<usize, (i64, i64)>,
    /// Dictionary location index → its symbol flags.
    location_flags: FxHashMap<usize, SymbolFlags>,
    /// Dictionary location index → pprof location id (converted once per builder).
    locations: FxHashMap<usize, u64>,
    /// Dictionary function index → pprof function id.
    functions: FxHashMap<usize, u64>,
    /// Per-sample scratch: dictionary mapping index → position in `sample_mappings`.
    mapping_slots: FxHashMap<usize, usize>,
    /// Per-sample scratch: (dictionary mapping index, flags, pprof mapping id).
    sample_mappings: Vec<(usize, SymbolFlags, u64)>,
}

impl<'d, 'b> Builder<'d, 'b> {
    /// Note §5.2: times, sample and period type, the profile type's name and value conversion.
    fn new(
        profile: &otlp::Profile,
        dictionary: &'d otlp::ProfilesDictionary,
        now_nanos: i64,
        budget: &'b Budget,
    ) -> Result<Self, ConvertError> {
        let sample_type = profile
            .sample_type
            .as_ref()
            .ok_or(ConvertError::SampleTypeMissing)?;
        let (ty, unit) = value_type(dictionary, sample_type).map_err(ConvertError::SampleType)?;
        let period_type = match &profile.period_type {
            Some(pt) => Some(value_type(dictionary, pt).map_err(ConvertError::PeriodType)?),
            None => None,
        };
        let mut builder = Builder {
            dictionary,
            budget,
            out: pprof::Profile {
                time_nanos: match profile.time_unix_nano {
                    0 => now_nanos,
                    t => t as i64,
                },
                duration_nanos: match profile.duration_nano {
                    0 => DEFAULT_DURATION_NANOS,
                    d => d as i64,
                },
                period: profile.period,
                ..Default::default()
            },
            name: String::new(),
            conversion: ValueConversion::Keep,
            check_value_count: false,
            strings: FxHashMap::default(),
            attribute_labels: FxHashMap::default(),
            link_labels: FxHashMap::default(),
            mapping_strings: FxHashMap::default(),
            location_flags: FxHashMap::default(),
            locations: FxHashMap::default(),
            functions: FxHashMap::default(),
            mapping_slots: FxHashMap::default(),
            sample_mappings: Vec::new(),
        };
        builder.intern("")?;
        let sample_value_type = builder.value_type(ty, unit)?;
        builder.out.sample_type = vec![sample_value_type];
        if let Some((pt, pu)) = period_type {
            builder.out.period_type = Some(builder.value_type(pt, pu)?);
        }
        builder.out.default_sample_type = builder.intern(ty)?;

        let usable_period = period_type.filter(|_| profile.period != 0);
        builder.check_value_count = usable_period.is_some();
        let (pt, pu) = usable_period.unwrap_or(("", ""));
        let profile_type = format!("{ty}:{unit}:{pt}:{pu}");
        match profile_type.as_str() {
            "samples:count:cpu:nanoseconds" => {
                let cpu = builder.value_type("cpu", "nanoseconds")?;
                builder.out.sample_type = vec![cpu];
                builder.name = "process_cpu".to_owned();
                builder.conversion = ValueConversion::MultiplyByPeriod(profile.period);
            }
            "events:nanoseconds::" => {
                builder.name = "off_cpu".to_owned();
                builder.conversion = ValueConversion::Sum;
            }
            // "Custom": the third component of the profile type string.
            other => builder.name = other.split(':').nth(2).unwrap_or("").to_owned(),
        }
        budget.take(Budget::words(profile_type.len()))?;
        Ok(builder)
    }

    fn intern(&mut self, s: &str) -> Result<i64, ConvertError> {
        if let Some(&index) = self.strings.get(s) {
            return Ok(index);
        }
        // Stored twice: in the table and as the map's key.
        self.budget.take(2 * Budget::words(s.len()))?;
        let index = self.out.string_table.len() as i64;
        self.out.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), index);
        Ok(index)
    }

    fn value_type(&mut self, ty: &str, unit: &str) -> Result<pprof::ValueType, ConvertError> {
        Ok(pprof::ValueType {
            r#type: self.intern(ty)?,
            unit: self.intern(unit)?,
        })
    }

    /// Note §5.3, steps 1–8.
    fn add_sample(&mut self, sample: &otlp::Sample) -> Result<(), ConvertError> {
        let value = self.sample_values(sample)?;
        let label = self.sample_labels(sample)?;
        let stack = usize::try_from(sample.stack_index)
            .ok()
            .and_then(|i| self.dictionary.stack_table.get(i))
            .ok_or(ConvertError::StackIndex(sample.stack_index))?;
        self.budget.take(stack.location_indices.len())?;
        self.add_sample_mappings(stack)?;
        let mut location_id = Vec::with_capacity(stack.location_indices.len());
        for &index in &stack.location_indices {
            location_id.push(self.location(index)?);
        }
        self.out.sample.push(pprof::Sample {
            location_id,
            value,
            label,
        });
        Ok(())
    }

    /// Steps 1–3: the values, converted and checked.
    fn sample_values(&self, sample: &otlp::Sample) -> Result<Vec<i64>, ConvertError> {
        let mut values = sample.values.clone();
        if values.is_empty() && !sample.timestamps_unix_nano.is_empty() {
            values.push(sample.timestamps_unix_nano.len() as i64);
        }
        if values.is_empty() {
            return Err(ConvertError::SampleValueRequired);
        }
        match self.conversion {
            ValueConversion::MultiplyByPeriod(period) => {
                if let Some(first) = values.first_mut() {
                    *first = first.wrapping_mul(period);
                }
            }
            ValueConversion::Sum => {
                let sum = values.iter().fold(0i64, |sum, v| sum.wrapping_add(*v));
                values = vec![sum];
            }
            ValueConversion::Keep => {}
        }
        let types = self.out.sample_type.len();
        if self.check_value_count && values.len() != types {
            return Err(ConvertError::ValuesLengthMismatch {
                values: values.len(),
                types,
            });
        }
        Ok(values)
    }

    /// Step 4: non-empty string attributes (but `service.name`) and the link's span id.
    fn sample_labels(&mut self, sample: &otlp::Sample) -> Result<Vec<pprof::Label>, ConvertError> {
        let mut labels = Vec::new();
        for (position, &index) in sample.attribute_indices.iter().enumerate() {
            let slot = usize::try_from(index)
                .ok()
                .filter(|&i| i < self.dictionary.attribute_table.len())
                .ok_or(ConvertError::Attribute {
                    position,
                    error: OutOfBounds(index.into()),
                })?;
            match self.attribute_label(slot)? {
                AttributeLabel::Skip => {}
                AttributeLabel::Label(key, str) => labels.push(pprof::Label {
                    key,
                    str,
                    ..Default::default()
                }),
                AttributeLabel::BadKey(error) => return Err(ConvertError::AttributeKey(error)),
            }
        }
        if sample.link_index != 0 {
            labels.push(self.link_label(sample.link_index)?);
        }
        Ok(labels)
    }

    fn attribute_label(&mut self, slot: usize) -> Result<AttributeLabel, ConvertError> {
        if let Some(&label) = self.attribute_labels.get(&slot) {
            return Ok(label);
        }
        let dictionary = self.dictionary;
        let label = match dictionary.attribute_table.get(slot) {
            None => AttributeLabel::Skip,
            Some(attribute) => {
                let key = string_at(dictionary, attribute.key_strindex);
                let value = string_value(attribute.value.as_ref()).filter(|v| !v.is_empty());
                match (key, value) {
                    (Ok(SERVICE_NAME_ATTRIBUTE), _) | (_, None) => AttributeLabel::Skip,
                    (Err(error), Some(_)) => AttributeLabel::BadKey(error),
                    (Ok(key), Some(value)) => {
                        AttributeLabel::Label(self.intern(key)?, self.intern(value)?)
                    }
                }
            }
        };
        self.attribute_labels.insert(slot, label);
        Ok(label)
    }

    /// `span_id` = the link's span id in lower-case hex.
    fn link_label(&mut self, index: i32) -> Result<pprof::Label, ConvertError> {
        let dictionary = self.dictionary;
        let link = at(&dictionary.link_table, index)
            .map_err(|error| ConvertError::Link { index, error })?;
        let slot = index as usize; // `at` succeeded, so the index is a valid usize.
        if let Some(&label) = self.link_labels.get(&slot) {
            return Ok(label);
        }
        let label = pprof::Label {
            key: self.intern(label_names::SPAN_ID)?,
            str: self.intern(&hex(&link.span_id))?,
            ..Default::default()
        };
        self.link_labels.insert(slot, label);
        Ok(label)
    }

    /// Step 6: a new pprof mapping for every distinct mapping of this stack, with symbol flags
    /// surveyed over this stack's locations of it.
    fn add_sample_mappings(&mut self, stack: &otlp::Stack) -> Result<(), ConvertError> {
        let dictionary = self.dictionary;
        self.mapping_slots.clear();
        self.sample_mappings.clear();
        for &index in &stack.location_indices {
            let location = at(&dictionary.location_table, index)
                .map_err(|error| ConvertError::Location { index, error })?;
            let mapping_index = location.mapping_index;
            let slot = usize::try_from(mapping_index)
                .ok()
                .filter(|&i| i < dictionary.mapping_table.len())
                .ok_or(ConvertError::Mapping {
                    index: mapping_index,
                    error: OutOfBounds(mapping_index.into()),
                })?;
            let flags = *self
                .location_flags
                .entry(index as usize) // `at` succeeded, so the index is a valid usize.
                .or_insert_with(|| SymbolFlags::of(dictionary, location));
            match self.mapping_slots.get(&slot) {
                Some(&at) => {
                    if let Some(entry) = self.sample_mappings.get_mut(at) {
                        entry.1 = entry.1.and(flags);
                    }
                }
                None => {
                    self.mapping_slots.insert(slot, self.sample_mappings.len());
                    self.sample_mappings
                        .push((slot, SymbolFlags::ALL.and(flags), 0));
                }
            }
        }
        for at in 0..self.sample_mappings.len() {
            let Some(&(slot, flags, _)) = self.sample_mappings.get(at) else {
                continue;
            };
            let Some(mapping) = dictionary.mapping_table.get(slot) else {
                continue;
            };
            let (filename, build_id) = self.mapping_strings(slot, mapping)?;
            let id = self.out.mapping.len() as u64 + 1;
            self.out.mapping.push(pprof::Mapping {
                id,
                memory_start: mapping.memory_start,
                memory_limit: mapping.memory_limit,
                file_offset: mapping.file_offset,
                filename,
                build_id,
                has_functions: flags.has_functions,
                has_filenames: flags.has_filenames,
                has_line_numbers: flags.has_line_numbers,
                has_inline_frames: flags.has_inline_frames,
            });
            if let Some(entry) = self.sample_mappings.get_mut(at) {
                entry.2 = id;
            }
        }
        Ok(())
    }

    /// A mapping's file name (checked) and build id as pprof string indices.
    fn mapping_strings(
        &mut self,
        slot: usize,
        mapping: &otlp::Mapping,
    ) -> Result<(i64, i64), ConvertError> {
        if let Some(&strings) = self.mapping_strings.get(&slot) {
            return Ok(strings);
        }
        let dictionary = self.dictionary;
        let filename = string_at(dictionary, mapping.filename_strindex)
            .map_err(ConvertError::MappingFilename)?;
        let strings = (
            self.intern(filename)?,
            self.intern(build_id(dictionary, mapping))?,
        );
        self.mapping_strings.insert(slot, strings);
        Ok(strings)
    }

    /// Step 7: the pprof location of a dictionary location, converted on first use with the
    /// mapping this sample created for it.
    fn location(&mut self, index: i32) -> Result<u64, ConvertError> {
        let dictionary = self.dictionary;
        let location = at(&dictionary.location_table, index)
            .map_err(|error| ConvertError::Location { index, error })?;
        let slot = index as usize; // `at` succeeded, so the index is a valid usize.
        if let Some(&id) = self.locations.get(&slot) {
            return Ok(id);
        }
        self.budget.take(4 + 3 * location.lines.len())?;
        let mapping_id = usize::try_from(location.mapping_index)
            .ok()
            .and_then(|m| self.mapping_slots.get(&m))
            .and_then(|&at| self.sample_mappings.get(at))
            .map_or(0, |&(_, _, id)| id);
        let mut line = Vec::with_capacity(location.lines.len());
        for (position, l) in location.lines.iter().enumerate() {
            let function_id = self.function(l.function_index, position)?;
            line.push(pprof::Line {
                function_id,
                line: l.line,
                column: 0,
            });
        }
        let id = self.out.location.len() as u64 + 1;
        self.out.location.push(pprof::Location {
            id,
            mapping_id,
            address: location.address,
            line,
            is_folded: false,
        });
        self.locations.insert(slot, id);
        Ok(id)
    }

    fn function(&mut self, index: i32, line_position: usize) -> Result<u64, ConvertError> {
        let dictionary = self.dictionary;
        let function =
            at(&dictionary.function_table, index).map_err(|error| ConvertError::LineFunction {
                position: line_position,
                error,
            })?;
        let slot = index as usize; // `at` succeeded, so the index is a valid usize.
        if let Some(&id) = self.functions.get(&slot) {
            return Ok(id);
        }
        let name =
            string_at(dictionary, function.name_strindex).map_err(ConvertError::FunctionName)?;
        let system_name = string_at(dictionary, function.system_name_strindex)
            .map_err(ConvertError::FunctionSystemName)?;
        let filename = string_at(dictionary, function.filename_strindex)
            .map_err(ConvertError::FunctionFilename)?;
        let id = self.out.function.len() as u64 + 1;
        let function = pprof::Function {
            id,
            name: self.intern(name)?,
            system_name: self.intern(system_name)?,
            filename: self.intern(filename)?,
            start_line: function.start_line,
        };
        self.out.function.push(function);
        self.functions.insert(slot, id);
        Ok(id)
    }
}
