//! Reading the OTLP dictionary: every index taken from the input is checked here, and what
//! the conversion derives from single entries (service name, build id, symbol flags).

use super::error::{OutOfBounds, ValueTypeError};
use super::proto::common::{AnyValue, any_value};
use super::proto::profiles as otlp;

/// The sample attribute that picks the pprof (and so the series) a sample goes to.
pub(super) const SERVICE_NAME_ATTRIBUTE: &str = "service.name";
/// The mapping attribute whose string value becomes the pprof mapping's build id.
const BUILD_ID_ATTRIBUTE: &str = "process.executable.build_id.gnu";

/// `table[index]`, or Pyroscope's `index N out of bounds` (negative indices included).
pub(super) fn at<T>(table: &[T], index: impl Into<i64>) -> Result<&T, OutOfBounds> {
    let index = index.into();
    usize::try_from(index)
        .ok()
        .and_then(|i| table.get(i))
        .ok_or(OutOfBounds(index))
}

pub(super) fn string_at(
    dictionary: &otlp::ProfilesDictionary,
    index: i32,
) -> Result<&str, OutOfBounds> {
    at(&dictionary.string_table, index).map(String::as_str)
}

/// The value of a string attribute; `None` for other kinds and for no value.
pub(super) fn string_value(value: Option<&AnyValue>) -> Option<&str> {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// The first `service.name` among the sample's attributes ("" if none or not a string); `None`
/// when an attribute index or key index on the way is out of range.
pub(super) fn sample_service_name<'d>(
    dictionary: &'d otlp::ProfilesDictionary,
    sample: &otlp::Sample,
) -> Option<&'d str> {
    for &index in &sample.attribute_indices {
        let attribute = at(&dictionary.attribute_table, index).ok()?;
        let key = string_at(dictionary, attribute.key_strindex).ok()?;
        if key == SERVICE_NAME_ATTRIBUTE {
            return Some(string_value(attribute.value.as_ref()).unwrap_or(""));
        }
    }
    Some("")
}

/// The build id of a mapping: the string value of its first `process.executable.build_id.gnu`
/// attribute; "" when it is missing, not a string, or an index before it is out of range.
pub(super) fn build_id<'d>(
    dictionary: &'d otlp::ProfilesDictionary,
    mapping: &otlp::Mapping,
) -> &'d str {
    for &index in &mapping.attribute_indices {
        let Ok(attribute) = at(&dictionary.attribute_table, index) else {
            return "";
        };
        let Ok(key) = string_at(dictionary, attribute.key_strindex) else {
            return "";
        };
        if key == BUILD_ID_ATTRIBUTE {
            return string_value(attribute.value.as_ref()).unwrap_or("");
        }
    }
    ""
}

pub(super) fn value_type<'d>(
    dictionary: &'d otlp::ProfilesDictionary,
    value_type: &otlp::ValueType,
) -> Result<(&'d str, &'d str), ValueTypeError> {
    let ty = string_at(dictionary, value_type.type_strindex).map_err(ValueTypeError::Type)?;
    let unit = string_at(dictionary, value_type.unit_strindex).map_err(ValueTypeError::Unit)?;
    Ok((ty, unit))
}

/// The symbol flags of one location, as the mapping survey of note §5.3 step 6 needs them.
#[derive(Debug, Clone, Copy)]
pub(super) struct SymbolFlags {
    pub(super) has_functions: bool,
    pub(super) has_filenames: bool,
    pub(super) has_line_numbers: bool,
    /// No location of the mapping has lines (note §5.3: "effectively false whenever any location
    /// has lines").
    pub(super) has_inline_frames: bool,
}

impl SymbolFlags {
    pub(super) const ALL: SymbolFlags = SymbolFlags {
        has_functions: true,
        has_filenames: true,
        has_line_numbers: true,
        has_inline_frames: true,
    };

    pub(super) fn of(
        dictionary: &otlp::ProfilesDictionary,
        location: &otlp::Location,
    ) -> SymbolFlags {
        let has_lines = !location.lines.is_empty();
        let has_functions = has_lines && location.lines.iter().all(|l| l.function_index > 0);
        let has_filenames = has_functions
            && location.lines.iter().all(|l| {
                at(&dictionary.function_table, l.function_index)
                    .is_ok_and(|f| f.filename_strindex > 0)
            });
        SymbolFlags {
            has_functions,
            has_filenames,
            has_line_numbers: has_lines && location.lines.iter().all(|l| l.line > 0),
            has_inline_frames: !has_lines,
        }
    }

    pub(super) fn and(self, other: SymbolFlags) -> SymbolFlags {
        SymbolFlags {
            has_functions: self.has_functions && other.has_functions,
            has_filenames: self.has_filenames && other.has_filenames,
            has_line_numbers: self.has_line_numbers && other.has_line_numbers,
            has_inline_frames: self.has_inline_frames && other.has_inline_frames,
        }
    }
}

/// Lower-case hex, as Go's `hex.EncodeToString`.
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}
