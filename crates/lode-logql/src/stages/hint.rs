//! Extraction hints (Loki's "parser label hints"): when the stages after a `json` or `logfmt`
//! parser read only a few labels, the parser sets only those and may stop scanning once it has
//! them, and [`LazyParse`] runs a log query's label filters on such a partial parse before paying
//! for the full one. Both must give exactly what the full parse gives to whatever reads the
//! labels, so a hint is only built from a complete list of the readers (see `engine.rs`).

use memchr::memmem::Finder;

use super::label_filter::LabelFilter;
use super::labels::{DUPLICATE_SUFFIX, ERROR_DETAILS_LABEL, ERROR_LABEL, LabelsBuilder};
use super::{LABEL_CHAR, Stage};

/// The labels a parser must extract, by their final names (after the `_extracted` rename).
#[derive(Clone, Debug)]
pub struct ExtractHint {
    names: Vec<String>,
    /// Whether anything downstream sees `__error__` (a filter on it, a typed filter that lets an
    /// erroring line through, a series key): then the parser must scan the whole line.
    errors: bool,
    /// The last alphanumeric run of each name and of each name without `_extracted`: a key that
    /// sanitizes to a wanted name contains its run verbatim, so a rest of line without any of
    /// them holds no later duplicate (the last duplicate wins) and the parser may stop there.
    runs: Vec<Finder<'static>>,
    /// Early stop is allowed at all: errors unseen, and every name has a run.
    can_stop: bool,
    /// Bit `len % 64` set for the length a key must have to become a wanted name (as is, or
    /// renamed with `_extracted`): most keys are turned away by one test.
    key_lens: u64,
}

impl ExtractHint {
    /// `names` read downstream; `errors` whether `__error__` is observable. `None` when the
    /// hint would not pay (too many names to track in a bit set).
    pub fn new(names: impl IntoIterator<Item = String>, errors: bool) -> Option<ExtractHint> {
        let mut names: Vec<String> = names.into_iter().collect();
        if errors {
            // A key named `__error__` sets the error, so it is then a label someone reads.
            names.extend([ERROR_LABEL.to_string(), ERROR_DETAILS_LABEL.to_string()]);
        }
        names.sort();
        names.dedup();
        if names.len() > 64 {
            return None;
        }
        let mut runs = Vec::new();
        let mut can_stop = !errors;
        for n in &names {
            for base in [Some(n.as_str()), n.strip_suffix(DUPLICATE_SUFFIX)]
                .into_iter()
                .flatten()
            {
                match last_alnum_run(base) {
                    Some(r) => runs.push(Finder::new(r.as_bytes()).into_owned()),
                    None => can_stop = false,
                }
            }
        }
        let mut key_lens = 0u64;
        for n in &names {
            key_lens |= 1 << (n.len() % 64);
            if n.ends_with(DUPLICATE_SUFFIX) {
                key_lens |= 1 << ((n.len() - DUPLICATE_SUFFIX.len()) % 64);
            }
        }
        Some(ExtractHint {
            names,
            errors,
            runs,
            can_stop,
            key_lens,
        })
    }

    /// Whether `__error__` is observable downstream.
    pub fn errors(&self) -> bool {
        self.errors
    }

    /// The bit set with one bit per wanted name.
    pub fn all(&self) -> u64 {
        match self.names.len() {
            64 => u64::MAX,
            n => (1u64 << n) - 1,
        }
    }

    /// The index of the final name `name` (or `name` + `_extracted` when `renamed`) if wanted.
    #[inline]
    pub fn find(&self, name: &str, renamed: bool) -> Option<usize> {
        let len = name.len() + if renamed { DUPLICATE_SUFFIX.len() } else { 0 };
        self.names.iter().position(|n| {
            n.len() == len
                && n.as_bytes().starts_with(name.as_bytes())
                && (!renamed || n.as_bytes().ends_with(DUPLICATE_SUFFIX.as_bytes()))
        })
    }

    /// Whether a label name of length `len` may be wanted (a cheap first test).
    #[inline]
    pub fn may_want_len(&self, len: usize) -> bool {
        self.key_lens & (1 << (len % 64)) != 0
    }

    /// The index of the label `name` becomes, and whether it is renamed (`base_has(name)`, asked
    /// only when some wanted name could match): `None` when not wanted.
    #[inline]
    pub fn lookup(&self, name: &str, base_has: impl FnOnce(&str) -> bool) -> Option<(usize, bool)> {
        if self.key_lens & (1 << (name.len() % 64)) == 0 {
            return None;
        }
        // First and last bytes before the comparison: most keys differ there, and a short
        // `memcmp` call costs more than the check.
        let b = name.as_bytes();
        let maybe = self.names.iter().any(|n| {
            let nb = n.as_bytes();
            (nb.len() == b.len() || nb.len() == b.len() + DUPLICATE_SUFFIX.len())
                && nb.first() == b.first()
                && nb.get(b.len().wrapping_sub(1)) == b.last()
                && nb.starts_with(b)
        });
        if !maybe {
            return None;
        }
        let renamed = base_has(name);
        self.find(name, renamed).map(|i| (i, renamed))
    }

    /// [`may_stop`](Self::may_stop) for JSON, whose keys may hide a name behind escapes.
    #[inline]
    pub fn may_stop_escaped(&self, found: u64, rest: &[u8]) -> bool {
        self.may_stop(found, rest) && (self.names.is_empty() || memchr::memchr(b'\\', rest).is_none())
    }

    /// Whether the parser may stop with `rest` unscanned, having set the names in `found`.
    #[inline]
    pub fn may_stop(&self, found: u64, rest: &[u8]) -> bool {
        self.can_stop && found == self.all() && !self.runs.iter().any(|f| f.find(rest).is_some())
    }
}

/// The last maximal `[A-Za-z0-9]` run of a label name; `None` when it has none.
fn last_alnum_run(name: &str) -> Option<&str> {
    let b = name.as_bytes();
    let end = b.iter().rposition(u8::is_ascii_alphanumeric)? + 1;
    let start = b[..end]
        .iter()
        .rposition(|c| !c.is_ascii_alphanumeric())
        .map_or(0, |i| i + 1);
    Some(&name[start..end])
}

/// Whether `key` is already a label name as the parsers would sanitize it (no copy needed).
#[inline]
pub(crate) fn is_clean_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty() && !b[0].is_ascii_digit() && b.iter().all(|c| LABEL_CHAR[usize::from(*c)])
}

/// A log query's parser followed by label filters, run in two phases: the parser with a hint
/// of the filters' labels, then the filters; only a line that passes is parsed in full (and
/// filtered again, so a filter's own `__error__` lands on the output). The hint is exact for the
/// filters, so a line the first phase drops is one the full parse would drop too.
///
/// Must be the first stage: the labels it starts from are the line's fresh ones, which is what
/// it restores before the second phase.
pub struct LazyParse {
    hinted: Box<dyn Stage>,
    full: Box<dyn Stage>,
    filters: Vec<LabelFilter>,
    metadata: Vec<(String, String)>,
}

impl LazyParse {
    pub fn new(hinted: Box<dyn Stage>, full: Box<dyn Stage>, filters: Vec<LabelFilter>) -> LazyParse {
        LazyParse {
            hinted,
            full,
            filters,
            metadata: Vec::new(),
        }
    }
}

impl Stage for LazyParse {
    fn process(&mut self, ts: i64, line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        lbs.save_metadata(&mut self.metadata);
        if !self.hinted.process(ts, line, lbs) || !self.filters.iter().all(|f| f.test(lbs)) {
            return false;
        }
        lbs.reset_with_metadata(self.metadata.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        self.full.process(ts, line, lbs) && self.filters.iter().all(|f| f.test(lbs))
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(LazyParse {
            hinted: self.hinted.box_clone(),
            full: self.full.box_clone(),
            filters: self.filters.clone(),
            metadata: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_masks() {
        assert_eq!(last_alnum_run("user_id"), Some("id"));
        assert_eq!(last_alnum_run("level"), Some("level"));
        assert_eq!(last_alnum_run("a_"), Some("a"));
        assert_eq!(last_alnum_run("__"), None);
        let h = ExtractHint::new(["level".to_string(), "pod_extracted".to_string()], false).unwrap();
        assert_eq!(h.all(), 0b11);
        assert_eq!(h.find("level", false), Some(0));
        assert_eq!(h.find("pod", true), Some(1));
        assert_eq!(h.find("pod", false), None);
        assert!(h.may_stop(0b11, b"x=1 y=2"));
        assert!(!h.may_stop(0b11, b"x=1 pod=2"), "a later `pod` may be a duplicate");
        assert!(!h.may_stop(0b01, b""));
        assert!(ExtractHint::new(Vec::new(), false).unwrap().may_stop(0, b"level=1"));
        assert!(!ExtractHint::new(Vec::new(), true).unwrap().may_stop(0b11, b""));
        assert!(!ExtractHint::new(["__".to_string()], false).unwrap().may_stop(1, b""));
    }
}
