//! Shared helpers for the criterion benches in this folder (see the `[[bench]]` targets and
//! docs/benchmarks.md).

/// xorshift64*: deterministic and dependency-free, good enough to pick words for generated logs.
pub struct Rng(pub u64);

impl Rng {
    /// The next value (an endless generator, deliberately not an `Iterator`).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    /// Skewed pick: earlier items far more likely, as levels, status codes and endpoints are.
    pub fn skewed<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        let a = self.below(xs.len() as u64);
        let b = self.below(xs.len() as u64);
        xs[a.min(b) as usize]
    }
    /// Heavy-tailed in `[0, n)`: small values much more likely than large ones.
    pub fn heavy(&mut self, n: u64) -> u64 {
        let m = 1 + self.below(n);
        self.below(m)
    }
    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }
}
