//! A bounds-checked reader over one chunk's bytes: JFR's integers (LEB128 varints when the
//! chunk compresses integers, big-endian fixed widths otherwise), floats and strings. Every
//! read past the end is an error, never a panic.

use super::error::JfrError;

/// Reads JFR values from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    compressed: bool,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], compressed: bool) -> Self {
        Cursor {
            buf,
            pos: 0,
            compressed,
        }
    }

    pub(crate) fn at(buf: &'a [u8], pos: usize, compressed: bool) -> Result<Self, JfrError> {
        if pos > buf.len() {
            return Err(JfrError::corrupt(format!(
                "offset {pos} is past the end of the chunk ({} bytes)",
                buf.len()
            )));
        }
        Ok(Cursor {
            buf,
            pos,
            compressed,
        })
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// A cursor over the next `len` bytes only; this one moves past them.
    pub(crate) fn split(&mut self, len: usize) -> Result<Cursor<'a>, JfrError> {
        let bytes = self.bytes(len)?;
        Ok(Cursor::new(bytes, self.compressed))
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], JfrError> {
        if len > self.remaining() {
            return Err(JfrError::truncated(self.pos, len));
        }
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, JfrError> {
        let byte = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| JfrError::truncated(self.pos, 1))?;
        self.pos += 1;
        Ok(byte)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], JfrError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// A LEB128 varint of up to nine bytes, the ninth contributing all its eight bits (JFR's
    /// encoding of every integer wider than a byte when the chunk compresses integers).
    pub(crate) fn varint(&mut self) -> Result<u64, JfrError> {
        let mut value = 0u64;
        for shift in (0..56).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Ok(value | (u64::from(self.u8()?) << 56))
    }

    /// A `long` field: varint or eight big-endian bytes.
    pub(crate) fn long(&mut self) -> Result<i64, JfrError> {
        if self.compressed {
            Ok(self.varint()? as i64)
        } else {
            Ok(i64::from_be_bytes(self.fixed()?))
        }
    }

    /// An `int` field: varint (its low 32 bits) or four big-endian bytes.
    pub(crate) fn int(&mut self) -> Result<i32, JfrError> {
        if self.compressed {
            Ok(self.varint()? as u32 as i32)
        } else {
            Ok(i32::from_be_bytes(self.fixed()?))
        }
    }

    /// A `short` field: varint (its low 16 bits) or two big-endian bytes.
    pub(crate) fn short(&mut self) -> Result<i16, JfrError> {
        if self.compressed {
            Ok(self.varint()? as u16 as i16)
        } else {
            Ok(i16::from_be_bytes(self.fixed()?))
        }
    }

    /// A `char` field: varint or two big-endian bytes (a UTF-16 code unit).
    pub(crate) fn char(&mut self) -> Result<u16, JfrError> {
        if self.compressed {
            Ok(self.varint()? as u16)
        } else {
            Ok(u16::from_be_bytes(self.fixed()?))
        }
    }

    pub(crate) fn float(&mut self) -> Result<f32, JfrError> {
        Ok(f32::from_be_bytes(self.fixed()?))
    }

    pub(crate) fn double(&mut self) -> Result<f64, JfrError> {
        Ok(f64::from_be_bytes(self.fixed()?))
    }

    /// A count that sizes what follows; each counted item takes at least one byte, so a count
    /// larger than what is left is corrupt (and never becomes an allocation).
    pub(crate) fn count(&mut self) -> Result<usize, JfrError> {
        let at = self.pos;
        let count = self.int()?;
        let count = usize::try_from(count)
            .map_err(|_| JfrError::corrupt(format!("negative count {count} at offset {at}")))?;
        if count > self.remaining() {
            return Err(JfrError::corrupt(format!(
                "count {count} at offset {at} exceeds the {} bytes left",
                self.remaining()
            )));
        }
        Ok(count)
    }

    /// A string: `0` null, `1` empty, `2` a reference into the string constant pool, `3` UTF-8,
    /// `4` UTF-16 code units, `5` Latin-1.
    pub(crate) fn string(&mut self) -> Result<JfrString<'a>, JfrError> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(JfrString::Null),
            1 => Ok(JfrString::Inline(String::new())),
            2 => Ok(JfrString::PoolRef(self.long()? as u64)),
            3 => {
                let len = self.count()?;
                let bytes = self.bytes(len)?;
                Ok(JfrString::Utf8(bytes))
            }
            4 => {
                let len = self.count()?;
                let mut units = Vec::with_capacity(len);
                for _ in 0..len {
                    units.push(self.char()?);
                }
                Ok(JfrString::Inline(String::from_utf16_lossy(&units)))
            }
            5 => {
                let len = self.count()?;
                let bytes = self.bytes(len)?;
                Ok(JfrString::Inline(
                    bytes.iter().map(|&b| char::from(b)).collect(),
                ))
            }
            other => Err(JfrError::corrupt(format!(
                "unknown string encoding {other} at offset {at}"
            ))),
        }
    }
}

/// A string as it appears in the chunk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JfrString<'a> {
    Null,
    Utf8(&'a [u8]),
    Inline(String),
    PoolRef(u64),
}

impl JfrString<'_> {
    /// The text, when it is in place (references are resolved by the caller).
    pub(crate) fn into_owned(self) -> Option<String> {
        match self {
            JfrString::Null | JfrString::PoolRef(_) => None,
            JfrString::Utf8(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            JfrString::Inline(text) => Some(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_take_nine_bytes_at_most() {
        let mut bytes = vec![0xff; 8];
        bytes.push(0xff);
        assert_eq!(Cursor::new(&bytes, true).varint().expect("valid"), u64::MAX);
        assert_eq!(
            Cursor::new(&[0x96, 0x01], true).varint().expect("valid"),
            150
        );
        assert!(Cursor::new(&[0x80, 0x80], true).varint().is_err());
    }

    #[test]
    fn ints_keep_their_low_bits() {
        // -1 as a JDK writes an int: the 32-bit pattern as a varint.
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0x0f], true);
        assert_eq!(c.int().expect("valid"), -1);
        let mut c = Cursor::new(&[0, 0, 1, 0], false);
        assert_eq!(c.int().expect("valid"), 256);
    }

    #[test]
    fn strings_in_every_encoding() {
        let mut bytes = vec![0, 1, 2, 7, 3, 2, b'h', b'i', 4, 2, 0x68, 0x69, 5, 1, 0xe9];
        bytes.push(9);
        let mut c = Cursor::new(&bytes, true);
        assert_eq!(c.string().expect("valid"), JfrString::Null);
        assert_eq!(c.string().expect("valid").into_owned().expect("valid"), "");
        assert_eq!(c.string().expect("valid"), JfrString::PoolRef(7));
        assert_eq!(
            c.string().expect("valid").into_owned().expect("valid"),
            "hi"
        );
        assert_eq!(
            c.string().expect("valid").into_owned().expect("valid"),
            "hi"
        );
        assert_eq!(c.string().expect("valid").into_owned().expect("valid"), "é");
        assert!(c.string().is_err());
    }

    #[test]
    fn counts_beyond_the_input_are_refused() {
        assert!(Cursor::new(&[0x7f], true).count().is_err());
        assert!(
            Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0x0f], true)
                .count()
                .is_err()
        );
    }
}
