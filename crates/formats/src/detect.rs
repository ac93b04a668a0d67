//! Which profile format a file is, told from its (decompressed) bytes: what the upload command
//! and the UI's ad hoc view accept without being told.

/// A file format this crate converts to pprof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Pprof,
    Jfr,
    Speedscope,
    /// Folded stacks, `a;b;c 42` per line: what is left when nothing else fits.
    Folded,
}

/// The format of `raw` (already decompressed): the JFR magic, a speedscope JSON document, a
/// pprof with sample types, else folded text.
pub fn detect(raw: &[u8]) -> FileFormat {
    if raw.starts_with(b"FLR\0") {
        return FileFormat::Jfr;
    }
    let text_start = raw.iter().position(|b| !b.is_ascii_whitespace());
    if let Some(start) = text_start
        && raw[start] == b'{'
        && raw.windows(10).any(|w| w == b"speedscope")
    {
        return FileFormat::Speedscope;
    }
    if crate::pprof::decode(raw, usize::MAX).is_ok_and(|p| !p.sample_type.is_empty()) {
        return FileFormat::Pprof;
    }
    FileFormat::Folded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_from_their_bytes() {
        assert_eq!(detect(b"FLR\0\x00\x02"), FileFormat::Jfr);
        assert_eq!(
            detect(b" {\"$schema\": \"https://www.speedscope.app/file-format-schema.json\"}"),
            FileFormat::Speedscope
        );
        assert_eq!(detect(b"a;b;c 3\n"), FileFormat::Folded);
    }
}
