//! Log pipeline stages that run after the line filters: parsers (`json`, `logfmt`, `regexp`,
//! `pattern`, `unpack`), label filters, `line_format`, `label_format`, `drop`, `keep` and
//! `decolorize`, with Loki 3.x semantics (see `logql-features.md` §3–§5). Each stage is built
//! from plain parameters, not AST types, and transforms one line and its [`LabelsBuilder`];
//! [`StagePipeline`] chains them. A stage returning `false` drops the line. Failures never drop a
//! line: they set `__error__`/`__error_details__`, which a later `| __error__=""` can filter.
//!
//! Stages take `&mut self` so they can keep scratch buffers between lines; clone a pipeline per
//! worker thread ([`StagePipeline`] is `Clone`).

mod format;
mod funcs;
mod hint;
mod json;
mod label_filter;
mod labels;
mod logfmt;
mod regexp;
mod unpack;

pub use format::{LabelFormat, LabelFormatOp, LineFormat};
pub use hint::{ExtractHint, LazyParse};
pub use json::JsonParser;
pub use label_filter::{CmpOp, LabelFilter, parse_bytes, parse_go_duration};
pub use labels::{DUPLICATE_SUFFIX, ERROR_DETAILS_LABEL, ERROR_LABEL, LabelCategory, LabelsBuilder};
pub use logfmt::{LogfmtParser, LogfmtScanner};
pub use regexp::{PatternParser, RegexpParser};
pub use unpack::Unpack;

use crate::filter::LineFilter;
use crate::matcher::Matcher;

/// `__error__` values, as Loki names them.
pub const JSON_PARSER_ERR: &str = "JSONParserErr";
pub const LOGFMT_PARSER_ERR: &str = "LogfmtParserErr";
pub const LABEL_FILTER_ERR: &str = "LabelFilterErr";
pub const TEMPLATE_FORMAT_ERR: &str = "TemplateFormatErr";

/// One pipeline stage.
pub trait Stage: Send + Sync {
    /// Processes one line; `false` drops it. `ts` is the entry's timestamp in nanoseconds.
    fn process(&mut self, ts: i64, line: &mut String, lbs: &mut LabelsBuilder) -> bool;
    /// A boxed copy, so pipelines can be cloned per thread.
    fn box_clone(&self) -> Box<dyn Stage>;
}

/// Stages run in order; the first that returns `false` drops the line.
#[derive(Default)]
pub struct StagePipeline {
    pub stages: Vec<Box<dyn Stage>>,
}

impl Clone for StagePipeline {
    fn clone(&self) -> Self {
        StagePipeline {
            stages: self.stages.iter().map(|s| s.box_clone()).collect(),
        }
    }
}

impl StagePipeline {
    pub fn new(stages: Vec<Box<dyn Stage>>) -> StagePipeline {
        StagePipeline { stages }
    }

    /// Runs every stage; `false` = drop the line. The caller resets `lbs` per line.
    pub fn process(&mut self, ts: i64, line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        self.stages.iter_mut().all(|s| s.process(ts, line, lbs))
    }
}

/// Bytes allowed in a label name as is: `[A-Za-z0-9_]`.
const LABEL_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || c == b'_';
        i += 1;
    }
    t
};

/// Appends `key` sanitized as Loki's parsers do: non `[A-Za-z0-9_]` characters become `_`
/// (one per character), and a name starting with a digit gets a `_` prefix when `out` is empty.
pub(crate) fn push_sanitized(out: &mut String, key: &str) {
    let b = key.as_bytes();
    let key = if b.first().is_some_and(|c| *c > b' ' && c.is_ascii())
        && b.last().is_some_and(|c| *c > b' ' && c.is_ascii())
    {
        key
    } else {
        key.trim()
    };
    if out.is_empty() && key.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
    }
    if key.bytes().all(|b| LABEL_CHAR[usize::from(b)]) {
        out.push_str(key);
        return;
    }
    out.extend(
        key.chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }),
    );
}

/// `decolorize`: strips ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`
/// and two-byte `ESC x` sequences).
#[derive(Debug, Clone, Default)]
pub struct Decolorize {
    buf: String,
}

impl Decolorize {
    pub fn new() -> Decolorize {
        Decolorize::default()
    }
}

fn strip_ansi(s: &str, out: &mut String) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut start = 0;
    while let Some(off) = memchr::memchr(0x1b, &b[i..]) {
        let esc = i + off;
        out.push_str(&s[start..esc]);
        let mut j = esc + 1;
        match b.get(j) {
            Some(b'[') => {
                j += 1;
                while j < b.len() && !(0x40..=0x7e).contains(&b[j]) {
                    j += 1;
                }
                j += 1;
            }
            Some(b']') => {
                j += 1;
                while j < b.len() && b[j] != 0x07 && !(b[j] == 0x1b && b.get(j + 1) == Some(&b'\\')) {
                    j += 1;
                }
                j += if b.get(j) == Some(&0x1b) { 2 } else { 1 };
            }
            Some(c) if c.is_ascii() => j += 1,
            _ => {}
        }
        i = j.min(b.len());
        start = i;
    }
    out.push_str(&s[start..]);
}

impl Stage for Decolorize {
    fn process(&mut self, _ts: i64, line: &mut String, _lbs: &mut LabelsBuilder) -> bool {
        if memchr::memchr(0x1b, line.as_bytes()).is_some() {
            self.buf.clear();
            strip_ansi(line, &mut self.buf);
            std::mem::swap(line, &mut self.buf);
        }
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

/// A line filter (`|= "x"`, `|~ "re"`, ...) placed after stages that rewrite the line
/// (`line_format`, `unpack`, `decolorize`): it tests the line as it is at that point.
#[derive(Clone, Debug)]
pub struct LineFilterStage(pub LineFilter);

impl Stage for LineFilterStage {
    fn process(&mut self, _ts: i64, line: &mut String, _lbs: &mut LabelsBuilder) -> bool {
        self.0.matches(line.as_bytes())
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

/// `drop a, b="v", c=~"re"`: removes labels, unconditionally or when the matcher matches.
#[derive(Clone)]
pub struct Drop {
    labels: Vec<(String, Option<Matcher>)>,
}

impl Drop {
    /// `(name, None)` drops `name`; `(name, Some(m))` drops `m.name()` when `m` matches its value
    /// (a missing label reads as `""`).
    pub fn new(labels: Vec<(String, Option<Matcher>)>) -> Drop {
        Drop { labels }
    }
}

impl Stage for Drop {
    fn process(&mut self, _ts: i64, _line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        for (name, m) in &self.labels {
            match m {
                None => lbs.del(name),
                Some(m) => {
                    if m.matches(lbs.get(m.name()).unwrap_or("")) {
                        lbs.del(m.name());
                    }
                }
            }
        }
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

/// `keep a, b="v"`: keeps only the listed labels (stream labels too); `__error__` and
/// `__error_details__` always survive, as in Loki.
#[derive(Clone)]
pub struct Keep {
    labels: Vec<(String, Option<Matcher>)>,
    doomed: Vec<String>,
}

impl Keep {
    pub fn new(labels: Vec<(String, Option<Matcher>)>) -> Keep {
        Keep {
            labels,
            doomed: Vec::new(),
        }
    }
}

impl Stage for Keep {
    fn process(&mut self, _ts: i64, _line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        self.doomed.clear();
        for (name, value) in lbs.stream().chain(lbs.metadata()).chain(lbs.parsed()) {
            if name == ERROR_LABEL || name == ERROR_DETAILS_LABEL {
                continue;
            }
            let keep = self.labels.iter().any(|(n, m)| match m {
                None => n == name,
                Some(m) => m.name() == name && m.matches(value),
            });
            if !keep {
                self.doomed.push(name.to_string());
            }
        }
        for name in &self.doomed {
            lbs.del(name);
        }
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests;
