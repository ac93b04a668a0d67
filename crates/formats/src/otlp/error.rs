//! The errors of [`super::convert`]. Their `Display` is Pyroscope's text (note §4, §5.7), since
//! clients and tests match on it. Inner errors are part of the message rather than a `source`,
//! so that printing an error chain does not repeat them.

/// Why an export request could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    /// The request has no `dictionary` (checked first).
    #[error("missing profile metadata dictionary")]
    MissingDictionary,
    /// The request has no `resource_profiles` (an empty list counts as missing, as in Go).
    #[error("missing resource profiles")]
    MissingResourceProfiles,
    /// One `Profile` message could not be converted; the whole request fails.
    #[error("failed to convert otel profile: {0}")]
    Convert(ConvertError),
}

impl From<ConvertError> for OtlpError {
    fn from(error: ConvertError) -> Self {
        OtlpError::Convert(error)
    }
}

/// A table index (into a dictionary table or the string table) that points nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("index {0} out of bounds")]
pub struct OutOfBounds(pub i64);

/// A `ValueType` whose strings cannot be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueTypeError {
    #[error("could not access type string: {0}")]
    Type(OutOfBounds),
    #[error("could not access unit string: {0}")]
    Unit(OutOfBounds),
}

/// Why one OTLP `Profile` could not be converted (Pyroscope's `ConvertOtelToGoogle` errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("sample type is missing")]
    SampleTypeMissing,
    #[error("could not process sample type: {0}")]
    SampleType(ValueTypeError),
    #[error("{0}")]
    PeriodType(ValueTypeError),
    #[error("sample value is required")]
    SampleValueRequired,
    #[error("sample values length mismatch {values} {types}")]
    ValuesLengthMismatch { values: usize, types: usize },
    /// `position` is the place in the sample's `attribute_indices`.
    #[error("could not access attribute at index {position}: {error}")]
    Attribute { position: usize, error: OutOfBounds },
    #[error("could not access attribute key: {0}")]
    AttributeKey(OutOfBounds),
    #[error("could not access link at index {index}: {error}")]
    Link { index: i32, error: OutOfBounds },
    #[error("invalid stack index: {0}")]
    StackIndex(i32),
    #[error("could not access location at index {index}: {error}")]
    Location { index: i32, error: OutOfBounds },
    #[error("could not access mapping at index {index}: {error}")]
    Mapping { index: i32, error: OutOfBounds },
    #[error("could not access mapping file name string: {0}")]
    MappingFilename(OutOfBounds),
    /// `position` is the place of the line in its location.
    #[error("could not process line at index {position}: could not access function: {error}")]
    LineFunction { position: usize, error: OutOfBounds },
    #[error("could not access function name string: {0}")]
    FunctionName(OutOfBounds),
    #[error("could not access function system name string: {0}")]
    FunctionSystemName(OutOfBounds),
    #[error("could not access function file name string: {0}")]
    FunctionFilename(OutOfBounds),
    /// Ours, not Pyroscope's: the output would be out of proportion to the request (module doc
    /// of `otlp`); `limit` is in 8-byte words.
    #[error("the converted profiles would take more than {limit} words of memory")]
    TooLarge { limit: usize },
}
