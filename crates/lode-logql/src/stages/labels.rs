//! [`LabelsBuilder`]: the labels one log line carries through a pipeline, kept per category
//! (stream, structured metadata, parsed) as Loki's `LabelsBuilder` does, so Grafana's
//! `categorize-labels` responses can tell them apart.
//!
//! The builder is made once per stream and [`reset`](LabelsBuilder::reset) per line. Reset is
//! cheap: parsed labels are slots whose `String`s are reused (cleared, not freed), and the
//! stream/metadata working copies are only restored from the base when a stage changed them.

/// Which category a label belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelCategory {
    Stream,
    StructuredMetadata,
    Parsed,
}

/// Label carrying a pipeline error (`JSONParserErr`, `LogfmtParserErr`, `LabelFilterErr`, ...).
pub const ERROR_LABEL: &str = "__error__";
/// Label carrying the error's details.
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";
/// Suffix given to an extracted label whose name is already a stream label.
pub const DUPLICATE_SUFFIX: &str = "_extracted";

/// Labels of one line in flight. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    base: Vec<(String, String)>,
    stream: Vec<(String, String)>,
    stream_dirty: bool,
    metadata: Vec<(String, String)>,
    /// Parsed labels in insertion order; only the first `n_parsed` slots are live.
    parsed: Vec<(String, String)>,
    /// [`name_hash`] of each parsed slot's name: compared before the names themselves.
    parsed_hash: Vec<u32>,
    /// Per parsed slot: an empty value set by `logfmt --keep-empty`, which survives into metric
    /// series (every other empty value is dropped there).
    parsed_kept: Vec<bool>,
    n_parsed: usize,
    /// One bit per [`name_hash`] (mod 64) of the base / current stream names: most parsed names
    /// are not stream names, and this says so without a string comparison.
    base_mask: u64,
    stream_mask: u64,
    err: Option<String>,
    err_details: Option<String>,
}

fn find(v: &[(String, String)], name: &str) -> Option<usize> {
    v.iter().position(|(n, _)| n == name)
}

/// A cheap fingerprint of a label name (length and three sampled bytes, mixed): a prefilter
/// before the exact comparison, cheaper than a `memcmp` call per candidate.
#[inline]
fn name_hash(name: &str) -> u32 {
    let b = name.as_bytes();
    let (first, mid, last) = match b.len() {
        0 => (0, 0, 0),
        n => (b[0], b[n / 2], b[n - 1]),
    };
    let x = (b.len() as u32) ^ u32::from(first) << 8 ^ u32::from(mid) << 16 ^ u32::from(last) << 24;
    x.wrapping_mul(0x9E37_79B1).rotate_left(13)
}

fn mask_of(v: &[(String, String)]) -> u64 {
    v.iter().fold(0, |m, (n, _)| m | 1u64 << (name_hash(n) % 64))
}

impl LabelsBuilder {
    /// A builder over a stream's labels (any order; sorted here once).
    pub fn new(mut stream: Vec<(String, String)>) -> LabelsBuilder {
        stream.sort_by(|a, b| a.0.cmp(&b.0));
        let mask = mask_of(&stream);
        LabelsBuilder {
            stream: stream.clone(),
            base: stream,
            base_mask: mask,
            stream_mask: mask,
            ..LabelsBuilder::default()
        }
    }

    /// Starts a new line: back to the stream's labels, no metadata, no parsed labels, no error.
    pub fn reset(&mut self) {
        if self.stream_dirty {
            self.stream.clone_from(&self.base);
            self.stream_mask = self.base_mask;
            self.stream_dirty = false;
        }
        self.metadata.clear();
        self.n_parsed = 0;
        self.err = None;
        self.err_details = None;
    }

    /// Starts a new line carrying structured metadata (its strings reuse last line's buffers).
    pub fn reset_with_metadata<'a>(&mut self, metadata: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut kept = std::mem::take(&mut self.metadata);
        self.reset();
        let mut i = 0;
        for (n, v) in metadata {
            match kept.get_mut(i) {
                Some((kn, kv)) => {
                    n.clone_into(kn);
                    v.clone_into(kv);
                }
                None => kept.push((n.to_string(), v.to_string())),
            }
            i += 1;
        }
        kept.truncate(i);
        self.metadata = kept;
    }

    /// Copies the current structured metadata into `out` (reusing its strings), so a stage that
    /// parses a line twice can start the second pass from the same labels.
    pub fn save_metadata(&self, out: &mut Vec<(String, String)>) {
        out.truncate(self.metadata.len());
        for (i, (n, v)) in self.metadata.iter().enumerate() {
            match out.get_mut(i) {
                Some((on, ov)) => {
                    n.clone_into(on);
                    v.clone_into(ov);
                }
                None => out.push((n.clone(), v.clone())),
            }
        }
    }

    /// Whether the stream labels are still the stream's own (no stage changed them), so a
    /// caller may reuse the stream's printed form.
    pub fn stream_unchanged(&self) -> bool {
        !self.stream_dirty
    }

    /// Whether the stream itself (not what stages did to it) has label `name`: parsers rename a
    /// clashing key to `<name>_extracted`.
    pub fn base_has(&self, name: &str) -> bool {
        self.base_mask & (1u64 << (name_hash(name) % 64)) != 0
            && self.base.binary_search_by(|(n, _)| n.as_str().cmp(name)).is_ok()
    }

    /// The current value of `name` in any category (parsed wins, then metadata, then stream),
    /// including `__error__` and `__error_details__`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_with_category(name).map(|(v, _)| v)
    }

    /// Like [`get`](Self::get), also telling the category.
    pub fn get_with_category(&self, name: &str) -> Option<(&str, LabelCategory)> {
        let h = name_hash(name);
        if let Some(i) = self.find_parsed(name, h) {
            return Some((self.parsed[i].1.as_str(), LabelCategory::Parsed));
        }
        if name.starts_with("__error") {
            if name == ERROR_LABEL {
                return self.err.as_deref().map(|e| (e, LabelCategory::Parsed));
            }
            if name == ERROR_DETAILS_LABEL {
                return self.err_details.as_deref().map(|e| (e, LabelCategory::Parsed));
            }
        }
        if let Some(i) = find(&self.metadata, name) {
            return Some((self.metadata[i].1.as_str(), LabelCategory::StructuredMetadata));
        }
        if self.stream_mask & (1u64 << (h % 64)) == 0 {
            return None;
        }
        let i = self.stream.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok()?;
        Some((self.stream[i].1.as_str(), LabelCategory::Stream))
    }

    /// Sets a parsed label, overwriting a parsed label of that name and shadowing (removing) a
    /// stream or metadata label of that name.
    pub fn set_parsed(&mut self, name: &str, value: &str) {
        let h = name_hash(name);
        if let Some(i) = self.find_parsed(name, h) {
            let v = &mut self.parsed[i].1;
            v.clear();
            v.push_str(value);
            self.parsed_kept[i] = false;
            return;
        }
        if name == ERROR_LABEL {
            self.set_err(value);
            return;
        }
        if name == ERROR_DETAILS_LABEL {
            self.set_err_details(value);
            return;
        }
        if self.stream_mask & (1u64 << (h % 64)) != 0 {
            self.remove_from(LabelCategory::Stream, name);
        }
        self.remove_from(LabelCategory::StructuredMetadata, name);
        if self.n_parsed < self.parsed.len() {
            self.parsed_hash[self.n_parsed] = h;
            self.parsed_kept[self.n_parsed] = false;
            let (n, v) = &mut self.parsed[self.n_parsed];
            n.clear();
            n.push_str(name);
            v.clear();
            v.push_str(value);
        } else {
            self.parsed.push((name.to_string(), value.to_string()));
            self.parsed_hash.push(h);
            self.parsed_kept.push(false);
        }
        self.n_parsed += 1;
    }

    /// Sets a parsed label to `""` that, unlike other empty values, is kept in metric series
    /// (`logfmt --keep-empty`).
    pub fn set_parsed_kept_empty(&mut self, name: &str) {
        self.set_parsed(name, "");
        if let Some(i) = self.find_parsed(name, name_hash(name)) {
            self.parsed_kept[i] = true;
        }
    }

    /// Whether `name` is a parsed label set by [`set_parsed_kept_empty`](Self::set_parsed_kept_empty).
    pub fn kept_empty(&self, name: &str) -> bool {
        self.find_parsed(name, name_hash(name))
            .is_some_and(|i| self.parsed_kept[i])
    }

    #[inline]
    fn find_parsed(&self, name: &str, h: u32) -> Option<usize> {
        self.parsed_hash[..self.n_parsed]
            .iter()
            .zip(&self.parsed)
            .position(|(&ph, (n, _))| ph == h && n == name)
    }

    /// Sets a label in the given category (used by `label_format` renames, which keep the
    /// source's category). Other categories' labels of that name are removed.
    pub fn set(&mut self, category: LabelCategory, name: &str, value: &str) {
        match category {
            LabelCategory::Parsed => self.set_parsed(name, value),
            LabelCategory::StructuredMetadata => {
                self.remove_parsed(name);
                self.remove_from(LabelCategory::Stream, name);
                match find(&self.metadata, name) {
                    Some(i) => value.clone_into(&mut self.metadata[i].1),
                    None => self.metadata.push((name.to_string(), value.to_string())),
                }
            }
            LabelCategory::Stream => {
                self.remove_parsed(name);
                self.remove_from(LabelCategory::StructuredMetadata, name);
                self.stream_dirty = true;
                match self.stream.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                    Ok(i) => value.clone_into(&mut self.stream[i].1),
                    Err(i) => self.stream.insert(i, (name.to_string(), value.to_string())),
                }
                self.stream_mask |= 1u64 << (name_hash(name) % 64);
            }
        }
    }

    fn remove_parsed(&mut self, name: &str) {
        if let Some(i) = self.find_parsed(name, name_hash(name)) {
            // Keep the slot (and its allocations) past the live range.
            self.parsed[i..self.n_parsed].rotate_left(1);
            self.parsed_hash[i..self.n_parsed].rotate_left(1);
            self.parsed_kept[i..self.n_parsed].rotate_left(1);
            self.n_parsed -= 1;
        }
    }

    fn remove_from(&mut self, category: LabelCategory, name: &str) {
        match category {
            LabelCategory::Stream => {
                if let Ok(i) = self.stream.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                    self.stream.remove(i);
                    self.stream_dirty = true;
                }
            }
            LabelCategory::StructuredMetadata => {
                if !self.metadata.is_empty()
                    && let Some(i) = find(&self.metadata, name)
                {
                    self.metadata.remove(i);
                }
            }
            LabelCategory::Parsed => self.remove_parsed(name),
        }
    }

    /// Removes a label from every category (`__error__`/`__error_details__` included).
    pub fn del(&mut self, name: &str) {
        match name {
            ERROR_LABEL => self.err = None,
            ERROR_DETAILS_LABEL => self.err_details = None,
            _ => {
                self.remove_parsed(name);
                self.remove_from(LabelCategory::StructuredMetadata, name);
                self.remove_from(LabelCategory::Stream, name);
            }
        }
    }

    /// Records a pipeline error (`__error__`).
    pub fn set_err(&mut self, err: &str) {
        self.err = Some(err.to_string());
    }

    /// Records the error's details (`__error_details__`).
    pub fn set_err_details(&mut self, details: &str) {
        self.err_details = Some(details.to_string());
    }

    pub fn has_err(&self) -> bool {
        self.err.is_some()
    }

    pub fn err(&self) -> Option<&str> {
        self.err.as_deref()
    }

    pub fn err_details(&self) -> Option<&str> {
        self.err_details.as_deref()
    }

    /// Current stream labels, sorted.
    pub fn stream(&self) -> impl Iterator<Item = (&str, &str)> {
        self.stream.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Current structured metadata, in arrival order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &str)> {
        self.metadata.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Parsed labels (error labels included, last), in extraction order.
    pub fn parsed(&self) -> impl Iterator<Item = (&str, &str)> {
        let errs = [
            (ERROR_LABEL, self.err.as_deref()),
            (ERROR_DETAILS_LABEL, self.err_details.as_deref()),
        ];
        self.parsed[..self.n_parsed]
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain(errs.into_iter().filter_map(|(n, v)| v.map(|v| (n, v))))
    }

    /// Every current label, all categories merged and sorted by name, as Loki prints a line's
    /// labels without the categorize flag. Names are unique across categories by construction.
    pub fn labels(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = self.stream().chain(self.metadata()).chain(self.parsed()).collect();
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// Number of current labels across categories.
    pub fn len(&self) -> usize {
        self.stream.len()
            + self.metadata.len()
            + self.n_parsed
            + usize::from(self.err.is_some())
            + usize::from(self.err_details.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> LabelsBuilder {
        LabelsBuilder::new(vec![("job".into(), "api".into()), ("app".into(), "x".into())])
    }

    #[test]
    fn categories_and_merge() {
        let mut b = builder();
        b.reset_with_metadata([("trace_id", "t1")]);
        b.set_parsed("level", "error");
        assert_eq!(b.get("job"), Some("api"));
        assert_eq!(
            b.get_with_category("trace_id"),
            Some(("t1", LabelCategory::StructuredMetadata))
        );
        assert_eq!(b.get_with_category("level"), Some(("error", LabelCategory::Parsed)));
        assert_eq!(
            b.labels(),
            vec![("app", "x"), ("job", "api"), ("level", "error"), ("trace_id", "t1")]
        );
        assert!(b.base_has("app") && !b.base_has("level"));
    }

    #[test]
    fn reset_restores_stream_and_reuses_slots() {
        let mut b = builder();
        b.set_parsed("a", "1");
        b.set(LabelCategory::Stream, "app", "y");
        b.del("job");
        b.set_err("JSONParserErr");
        assert_eq!(
            b.labels(),
            vec![("__error__", "JSONParserErr"), ("a", "1"), ("app", "y")]
        );
        b.reset();
        assert_eq!(b.labels(), vec![("app", "x"), ("job", "api")]);
        b.set_parsed("b", "2");
        b.set_parsed("b", "3");
        assert_eq!(b.parsed().collect::<Vec<_>>(), vec![("b", "3")]);
    }

    #[test]
    fn parsed_shadows_stream_and_del_everywhere() {
        let mut b = builder();
        b.set_parsed("app", "parsed");
        assert_eq!(b.get_with_category("app"), Some(("parsed", LabelCategory::Parsed)));
        assert_eq!(b.len(), 2);
        b.del("app");
        assert_eq!(b.get("app"), None);
        b.set_err("E");
        b.set_err_details("d");
        assert_eq!(b.get("__error_details__"), Some("d"));
        b.del("__error__");
        assert!(!b.has_err());
    }
}
