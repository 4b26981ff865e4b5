//! Varints and a bounds-checked reader. Everything read from an index object goes through
//! [`Reader`], which checks each length and count against the bytes that remain, so corrupt or
//! hostile input yields an error instead of a panic or a huge allocation.

use crate::{IndexError, Result};

/// Appends `v` as an unsigned LEB128 varint (7 bits per byte, low bits first).
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded, so small negative numbers stay short too.
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a length-prefixed byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A cursor over one section of an index object. `base` is the section's offset in the object so
/// that errors name absolute byte positions.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> IndexError {
        IndexError::Corrupt {
            offset: self.base + self.pos,
            reason: reason.into(),
        }
    }

    pub(crate) fn uvarint(&mut self, what: &str) -> Result<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.corrupt(format!("truncated varint reading {what}")));
            };
            self.pos += 1;
            // The 10th byte may only carry the top bit of a u64.
            if i == 9 && b > 1 {
                return Err(self.corrupt(format!("varint overflows 64 bits reading {what}")));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.corrupt(format!("varint overflows 64 bits reading {what}")))
    }

    pub(crate) fn varint(&mut self, what: &str) -> Result<i64> {
        let u = self.uvarint(what)?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    pub(crate) fn u32_varint(&mut self, what: &str) -> Result<u32> {
        let v = self.uvarint(what)?;
        u32::try_from(v).map_err(|_| self.corrupt(format!("{what} {v} does not fit in 32 bits")))
    }

    /// Reads a count of items that each take at least `min_size` bytes, refusing counts the
    /// remaining input could not hold. This is what bounds every allocation by the input size.
    pub(crate) fn count(&mut self, what: &str, min_size: usize) -> Result<usize> {
        let n = self.uvarint(what)?;
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(min_size.max(1)))
            .is_some_and(|need| need <= self.remaining());
        if !fits {
            return Err(self.corrupt(format!("{what} {n} exceeds the {} bytes left", self.remaining())));
        }
        Ok(n as usize)
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n);
        let Some(s) = end.and_then(|end| self.buf.get(self.pos..end)) else {
            return Err(self.corrupt(format!(
                "{what} of {n} bytes exceeds the {} bytes left",
                self.remaining()
            )));
        };
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn str(&mut self, what: &str) -> Result<&'a str> {
        let n = self.count(what, 1)?;
        let start = self.pos;
        let b = self.take(n, what)?;
        std::str::from_utf8(b).map_err(|_| IndexError::Corrupt {
            offset: self.base + start,
            reason: format!("{what} is not valid utf-8"),
        })
    }

    pub(crate) fn u32_le(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    pub(crate) fn u64_le(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Sections must be consumed exactly: trailing bytes mean the writer and reader disagree.
    pub(crate) fn expect_end(&self, section: &str) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.corrupt(format!("{} unexpected bytes at the end of {section}", self.remaining())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_roundtrip() {
        let mut buf = Vec::new();
        let us = [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        let is = [0, -1, 1, i64::MIN, i64::MAX, -1_700_000_000_000_000_000];
        for u in us {
            put_uvarint(&mut buf, u);
        }
        for i in is {
            put_varint(&mut buf, i);
        }
        let mut r = Reader::new(&buf, 0);
        for u in us {
            assert_eq!(r.uvarint("u").unwrap(), u);
        }
        for i in is {
            assert_eq!(r.varint("i").unwrap(), i);
        }
        r.expect_end("test").unwrap();
    }

    #[test]
    fn bad_varints_are_errors() {
        assert!(Reader::new(&[0x80], 0).uvarint("x").is_err());
        assert!(Reader::new(&[0xff; 10], 0).uvarint("x").is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 0)
                .uvarint("x")
                .is_err()
        );
        let mut max = Vec::new();
        put_uvarint(&mut max, u64::from(u32::MAX) + 1);
        assert!(Reader::new(&max, 0).u32_varint("x").is_err());
    }

    #[test]
    fn counts_and_lengths_are_checked_against_input() {
        let mut buf = Vec::new();
        put_uvarint(&mut buf, u64::MAX);
        let e = Reader::new(&buf, 7).count("symbol count", 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "corrupt index at byte 17: symbol count 18446744073709551615 exceeds the 0 bytes left"
        );
        let mut buf = Vec::new();
        put_uvarint(&mut buf, 3);
        buf.extend_from_slice(b"ab");
        assert!(Reader::new(&buf, 0).str("symbol").is_err());
        assert!(Reader::new(&[1, 0xff], 0).str("symbol").is_err());
        assert!(Reader::new(&[1, 2, 3], 0).u32_le("crc").is_err());
    }
}
