//! The one place that inflates untrusted request bodies. Every decoder reads through a cap, so a
//! length field or a compression bomb can never make us allocate more than the caller allows.
//! (Chunk blocks are inflated by `lode-chunk` into a buffer of exactly the length its checksummed
//! block table records, capped at 64 MiB, reusing one zstd context.)

use std::io::Read;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecompressError {
    #[error("decompressed message size too large than max ({size} vs {max})")]
    TooLarge { size: u64, max: u64 },
    #[error("{0}")]
    Corrupt(String),
}

/// Snappy block format (what Promtail, Alloy and Vector send). The declared length is checked
/// against `max` before anything is allocated.
pub fn snappy(data: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
    let n = snap::raw::decompress_len(data).map_err(|e| DecompressError::Corrupt(e.to_string()))?;
    if n > max {
        return Err(DecompressError::TooLarge {
            size: n as u64,
            max: max as u64,
        });
    }
    // No snappy op expands more than 64 bytes from 3 (a 2-byte-offset copy), so a declared
    // length above ~22x the input is a lie; refuse it before allocating.
    if n > data.len().saturating_mul(22).saturating_add(64) {
        return Err(DecompressError::Corrupt(format!(
            "snappy: corrupt input: declared length {n} is impossible for {} compressed bytes",
            data.len()
        )));
    }
    let mut out = vec![0u8; n];
    let written = snap::raw::Decoder::new()
        .decompress(data, &mut out)
        .map_err(|e| DecompressError::Corrupt(e.to_string()))?;
    out.truncate(written);
    Ok(out)
}

/// gzip (RFC 1952).
pub fn gzip(data: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
    read_capped(flate2::read::GzDecoder::new(data), max, "gzip")
}

/// `Content-Encoding: deflate`: Go clients send raw DEFLATE (RFC 1951); RFC-correct clients send
/// zlib (RFC 1950), which we recognise by its header.
pub fn deflate(data: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
    let zlib_header =
        data.len() >= 2 && data[0] & 0x0f == 8 && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
    if zlib_header {
        read_capped(flate2::read::ZlibDecoder::new(data), max, "deflate")
    } else {
        read_capped(flate2::read::DeflateDecoder::new(data), max, "deflate")
    }
}

fn read_capped(r: impl Read, max: usize, what: &str) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let read = r
        .take((max as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Corrupt(format!("{what}: {e}")))?;
    if read > max {
        return Err(DecompressError::TooLarge {
            size: read as u64,
            max: max as u64,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn snappy_length_bomb_is_refused_before_allocation() {
        // Declares 2,849,514,666 bytes (found by fuzzing, see rust-stack.md).
        let bomb = [170u8, 201, 224, 206, 10];
        assert!(matches!(snappy(&bomb, 1 << 20), Err(DecompressError::TooLarge { .. })));
        // Under a generous cap it is still refused, as impossible, without allocating 2.8 GB.
        assert!(matches!(snappy(&bomb, usize::MAX), Err(DecompressError::Corrupt(m)) if m.contains("impossible")));
        // The densest real input (long runs) stays accepted.
        let zeros = vec![0u8; 1 << 20];
        let c = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
        assert_eq!(snappy(&c, 1 << 20).unwrap(), zeros);
    }

    #[test]
    fn snappy_roundtrip_and_garbage() {
        let data = b"hello hello hello hello".repeat(10);
        let c = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(snappy(&c, 1 << 20).unwrap(), data);
        assert!(matches!(
            snappy(b"\x05garbage", 1 << 20),
            Err(DecompressError::Corrupt(_))
        ));
    }

    #[test]
    fn gzip_is_capped() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&vec![b'a'; 10_000]).unwrap();
        let c = e.finish().unwrap();
        assert_eq!(gzip(&c, 10_000).unwrap().len(), 10_000);
        assert_eq!(
            gzip(&c, 9_999),
            Err(DecompressError::TooLarge {
                size: 10_000,
                max: 9_999
            })
        );
        assert!(matches!(gzip(b"not gzip", 100), Err(DecompressError::Corrupt(_))));
    }

    #[test]
    fn deflate_accepts_raw_and_zlib() {
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(b"raw body").unwrap();
        assert_eq!(deflate(&raw.finish().unwrap(), 100).unwrap(), b"raw body");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"zlib body").unwrap();
        assert_eq!(deflate(&z.finish().unwrap(), 100).unwrap(), b"zlib body");
    }
}
