//! `| unpack`: the inverse of Promtail's `pack` stage.

use super::Stage;
use super::json::{JResult, Kind, Scanner, set_json_err, string_value, unescape};
use super::labels::{DUPLICATE_SUFFIX, LabelsBuilder};

/// `| unpack`: a top-level object's string fields become labels and `_entry` replaces the line
/// (labels are only set when `_entry` is present, as in Loki). Keys are not sanitized.
#[derive(Debug, Clone, Default)]
pub struct Unpack {
    pairs: Vec<(String, String)>,
    key: String,
}

impl Unpack {
    pub fn new() -> Unpack {
        Unpack::default()
    }

    fn unpack(&mut self, line: &str, entry: &mut Option<String>, lbs: &LabelsBuilder) -> JResult<()> {
        let mut sc = Scanner::new(line);
        if !matches!(sc.value(true, 0)?, Kind::Object) {
            return Err("expecting json object, but it is not".to_string());
        }
        if !sc.open_members(b'}') {
            return Ok(());
        }
        loop {
            let key = sc.key(&mut self.key)?.to_string();
            if let Kind::Str { start, end, escaped } = sc.value(false, 1)? {
                let mut v = String::new();
                if key == "_entry" {
                    if escaped {
                        unescape(&line[start..end], &mut v).ok_or("invalid escape in _entry")?;
                    } else {
                        v.push_str(&line[start..end]);
                    }
                    *entry = Some(v);
                } else {
                    string_value(&line[start..end], escaped, &mut v);
                    let name = if lbs.base_has(&key) {
                        key + DUPLICATE_SUFFIX
                    } else {
                        key
                    };
                    self.pairs.push((name, v));
                }
            }
            if !sc.next_or_close(b'}')? {
                return Ok(());
            }
        }
    }
}

impl Stage for Unpack {
    fn process(&mut self, _ts: i64, line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        if line.is_empty() {
            return true;
        }
        self.pairs.clear();
        let mut entry = None;
        match self.unpack(line, &mut entry, lbs) {
            Err(e) => set_json_err(lbs, &e),
            Ok(()) => {
                if let Some(entry) = entry {
                    for (n, v) in &self.pairs {
                        lbs.set_parsed(n, v);
                    }
                    *line = entry;
                }
            }
        }
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}
