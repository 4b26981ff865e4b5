//! The mutation engine: a seeded RNG and byte-level mutations in the style of libFuzzer's
//! (bit flips, byte replace/insert/delete, splices of two corpus inputs, overwrites of
//! length-field-like u32s and varints with boundary values, truncation, dictionary tokens).
//! Deterministic for a seed, so any run can be replayed.

/// SplitMix64-seeded xorshift64*: small, fast, and good enough to drive mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // SplitMix64 of the seed, never zero (xorshift's fixed point).
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

const INTERESTING_U8: [u8; 10] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'\\', b'{', b'}', b'\n'];

/// Values that break length checks: zero, one, sign and width boundaries, the maximum.
const INTERESTING_U64: [u64; 16] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x10000,
    (1 << 24) + 1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    (1 << 63) - 1,
    1 << 63,
    u64::MAX,
];

fn leb128(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Mutates inputs in place. `dict` holds tokens of the target's syntax (JSON punctuation, LogQL
/// keywords) that random bytes would take forever to produce.
pub struct Mutator {
    pub rng: Rng,
    dict: &'static [&'static [u8]],
    max_len: usize,
}

impl Mutator {
    pub fn new(seed: u64, dict: &'static [&'static [u8]], max_len: usize) -> Mutator {
        Mutator {
            rng: Rng::new(seed),
            dict,
            max_len,
        }
    }

    /// A value near a length field's interesting region: a boundary, the input length nudged,
    /// or random.
    fn length_value(&mut self, len: usize) -> u64 {
        match self.rng.below(3) {
            0 => (len as u64).wrapping_add(self.rng.below(9) as u64).wrapping_sub(4),
            1 => self.rng.next_u64() >> self.rng.below(64),
            _ => INTERESTING_U64[self.rng.below(INTERESTING_U64.len())],
        }
    }

    /// Applies one to four stacked mutations; `corpus` supplies the other half of splices.
    pub fn mutate(&mut self, data: &mut Vec<u8>, corpus: &[Vec<u8>]) {
        let rounds = 1 + self.rng.below(4).min(self.rng.below(4));
        for _ in 0..rounds {
            self.mutate_once(data, corpus);
        }
        data.truncate(self.max_len);
    }

    fn mutate_once(&mut self, data: &mut Vec<u8>, corpus: &[Vec<u8>]) {
        let len = data.len();
        let at = self.rng.below(len);
        let r = &mut self.rng;
        match r.below(13) {
            // Bit flip.
            0 if len > 0 => data[at] ^= 1 << r.below(8),
            // Byte replaced with a random or a boundary value.
            1 if len > 0 => {
                data[at] = if r.one_in(2) {
                    r.byte()
                } else {
                    INTERESTING_U8[r.below(INTERESTING_U8.len())]
                }
            }
            // Small arithmetic on a byte.
            2 if len > 0 => data[at] = data[at].wrapping_add(r.below(33) as u8).wrapping_sub(16),
            // Insert random bytes, or a run of one byte (limits on repeated content).
            3 => {
                let n = 1 + r.below(8);
                let bytes: Vec<u8> = if r.one_in(4) {
                    vec![r.byte(); 1 + r.below(512)]
                } else {
                    (0..n).map(|_| r.byte()).collect()
                };
                let at = r.below(len + 1);
                data.splice(at..at, bytes);
            }
            // Delete a range.
            4 if len > 0 => {
                let most = if r.one_in(4) { 256 } else { 8 };
                let n = 1 + r.below((len - at).min(most));
                data.drain(at..at + n);
            }
            // Splice: a prefix of this input with a suffix of another.
            5 => {
                if let Some(other) = corpus.get(r.below(corpus.len())) {
                    let cut_a = r.below(len + 1);
                    let cut_b = r.below(other.len() + 1);
                    data.truncate(cut_a);
                    data.extend_from_slice(other.get(cut_b..).unwrap_or_default());
                }
            }
            // Overwrite a u32 (little or big endian) with a length-ish value.
            6 if len >= 4 => {
                let at = r.below(len - 3);
                let v = self.length_value(len) as u32;
                let b = if self.rng.one_in(2) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                data[at..at + 4].copy_from_slice(&b);
            }
            // Overwrite a u64 little endian (offsets and timestamps in fixed-width tables).
            7 if len >= 8 => {
                let at = r.below(len - 7);
                let v = self.length_value(len);
                data[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            // Replace the varint at a position with another (any length).
            8 if len > 0 => {
                let end = (at..len).find(|i| data[*i] < 0x80).map_or(len, |i| i + 1).min(at + 10);
                let mut v = Vec::new();
                let value = self.length_value(len);
                leb128(value, &mut v);
                data.splice(at..end, v);
            }
            // Truncate.
            9 if len > 0 => data.truncate(at),
            // Insert or overwrite with a dictionary token.
            10 if !self.dict.is_empty() => {
                let tok = self.dict[r.below(self.dict.len())];
                let at = r.below(len + 1);
                if r.one_in(2) {
                    data.splice(at..at, tok.iter().copied());
                } else {
                    let end = (at + tok.len()).min(len);
                    data.splice(at..end, tok.iter().copied());
                }
            }
            // Duplicate a range of the input elsewhere in it.
            11 if len > 0 => {
                let n = 1 + r.below((len - at).min(64));
                let copy = data[at..at + n].to_vec();
                let to = r.below(len + 1);
                data.splice(to..to, copy);
            }
            // Swap two bytes.
            _ if len > 1 => {
                let b = r.below(len);
                data.swap(at, b);
            }
            _ => data.push(r.byte()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutations() {
        let corpus = vec![b"{\"streams\":[]}".to_vec(), b"abcdef".to_vec()];
        let run = |seed| {
            let mut m = Mutator::new(seed, &[b"{", b"}"], 1 << 10);
            let mut d = corpus[0].clone();
            for _ in 0..100 {
                m.mutate(&mut d, &corpus);
            }
            d
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn mutations_respect_the_length_cap_and_never_panic() {
        let corpus = vec![vec![], vec![0xff; 3], vec![1; 40]];
        let mut m = Mutator::new(1, &[b"token"], 64);
        for input in &corpus {
            let mut d = input.clone();
            for _ in 0..10_000 {
                m.mutate(&mut d, &corpus);
                assert!(d.len() <= 64);
            }
        }
    }
}
