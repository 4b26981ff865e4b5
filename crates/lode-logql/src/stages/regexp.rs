//! `| regexp "(?P<name>...)"` and `| pattern "<ip> - <_> <status>"` parsers.

use memchr::memmem::Finder;
use regex::bytes::{CaptureLocations, Regex};

use super::labels::{DUPLICATE_SUFFIX, LabelsBuilder};
use super::{Stage, push_sanitized};
use crate::pattern::capture;
use crate::regex_compat;

/// `| regexp`: named groups become labels; a line that does not match is kept unchanged.
#[derive(Debug, Clone)]
pub struct RegexpParser {
    re: Regex,
    /// (group index, label name)
    names: Vec<(usize, String)>,
    locs: CaptureLocations,
    name: String,
}

impl RegexpParser {
    /// Compiles a Go regex; it needs at least one named group, names must be valid and unique.
    pub fn new(re: &str) -> Result<RegexpParser, String> {
        let mut names: Vec<(usize, String)> = Vec::new();
        // Check duplicates before Rust's engine refuses them with its own wording.
        let compiled = regex_compat::compile(re).map_err(|e| {
            if e.contains("duplicate capture group name") {
                "duplicate extracted label name".to_string()
            } else {
                e
            }
        })?;
        for (i, n) in compiled.capture_names().enumerate() {
            if let Some(n) = n {
                if !lode_model::labels::is_valid_label_name(n) {
                    return Err(format!("invalid extracted label name '{n}'"));
                }
                if names.iter().any(|(_, m)| m == n) {
                    return Err(format!("duplicate extracted label name '{n}'"));
                }
                names.push((i, n.to_string()));
            }
        }
        if names.is_empty() {
            return Err("at least one named capture must be supplied".to_string());
        }
        let locs = compiled.capture_locations();
        Ok(RegexpParser {
            re: compiled,
            names,
            locs,
            name: String::new(),
        })
    }
}

impl Stage for RegexpParser {
    fn process(&mut self, _ts: i64, line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        if self.re.captures_read(&mut self.locs, line.as_bytes()).is_none() {
            return true;
        }
        for (i, n) in &self.names {
            // A group that did not take part in the match is set to "" (Go's nil submatch).
            let value = self
                .locs
                .get(*i)
                .map(|(s, e)| String::from_utf8_lossy(&line.as_bytes()[s..e]))
                .unwrap_or_default();
            self.name.clear();
            push_sanitized(&mut self.name, n);
            if lbs.base_has(&self.name) {
                self.name.push_str(DUPLICATE_SUFFIX);
            }
            lbs.set_parsed(&self.name, &value);
        }
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

#[derive(Debug, Clone)]
enum Node {
    Literal(Box<Finder<'static>>, usize),
    /// `None` for `<_>`.
    Capture(Option<String>),
}

/// `| pattern`: anchored at the line start; each capture runs to the next literal's first
/// occurrence, or to the end of the line when it is last or its literal is missing.
#[derive(Debug, Clone)]
pub struct PatternParser {
    nodes: Vec<Node>,
    name: String,
}

impl PatternParser {
    /// Parses a pattern; needs a named capture, refuses adjacent or duplicate captures.
    pub fn new(pattern: &str) -> Result<PatternParser, String> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        let flush = |lit: &mut String, nodes: &mut Vec<Node>| {
            if !lit.is_empty() {
                nodes.push(Node::Literal(
                    Box::new(Finder::new(lit.as_bytes()).into_owned()),
                    lit.len(),
                ));
                lit.clear();
            }
        };
        while i < pattern.len() {
            let rest = &pattern[i..];
            if let Some((name, used)) = capture(rest) {
                flush(&mut lit, &mut nodes);
                if let Some(Node::Capture(prev)) = nodes.last() {
                    let prev = prev.as_deref().unwrap_or("_");
                    return Err(format!(
                        "found consecutive capture '<{prev}><{name}>': invalid expression"
                    ));
                }
                let named = (name != "_").then(|| name.to_string());
                if let Some(n) = &named
                    && nodes.iter().any(|x| matches!(x, Node::Capture(Some(m)) if m == n))
                {
                    return Err(format!("duplicate capture name ({n}): invalid expression"));
                }
                nodes.push(Node::Capture(named));
                i += used;
            } else {
                let c = rest.chars().next().unwrap_or_default();
                lit.push(c);
                i += c.len_utf8();
            }
        }
        flush(&mut lit, &mut nodes);
        if !nodes.iter().any(|n| matches!(n, Node::Capture(Some(_)))) {
            return Err("at least one capture is required: invalid expression".to_string());
        }
        Ok(PatternParser {
            nodes,
            name: String::new(),
        })
    }

    /// Captured `(name, value)` pairs for `line`, in pattern order (Loki's `Matches`).
    fn matches<'l>(&self, line: &'l str, mut emit: impl FnMut(&str, &'l str)) {
        if line.is_empty() {
            return;
        }
        let mut rest = line;
        let mut nodes = &self.nodes[..];
        if let Some(Node::Literal(f, len)) = nodes.first() {
            if f.find(rest.as_bytes()) != Some(0) {
                return;
            }
            rest = &rest[*len..];
            nodes = &nodes[1..];
        }
        while let Some(Node::Capture(name)) = nodes.first() {
            let Some(Node::Literal(f, len)) = nodes.get(1) else {
                if let Some(n) = name {
                    emit(n, rest);
                }
                return;
            };
            nodes = &nodes[2..];
            match f.find(rest.as_bytes()) {
                None => {
                    if let Some(n) = name {
                        emit(n, rest);
                    }
                    return;
                }
                Some(i) => {
                    if let Some(n) = name {
                        emit(n, &rest[..i]);
                    }
                    rest = &rest[i + len..];
                }
            }
        }
    }
}

impl Stage for PatternParser {
    fn process(&mut self, _ts: i64, line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        let mut name = std::mem::take(&mut self.name);
        self.matches(line, |n, v| {
            name.clear();
            name.push_str(n);
            if lbs.base_has(&name) {
                name.push_str(DUPLICATE_SUFFIX);
            }
            lbs.set_parsed(&name, v);
        });
        self.name = name;
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stage: &mut dyn Stage, stream: &[(&str, &str)], line: &str) -> Vec<(String, String)> {
        let mut lbs = LabelsBuilder::new(stream.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect());
        let mut l = line.to_string();
        assert!(stage.process(0, &mut l, &mut lbs));
        lbs.labels()
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn s(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn regexp_named_groups() {
        let mut p = RegexpParser::new(r"(?P<method>\w+) (?P<path>\S+)(?: (?P<opt>x))?").unwrap();
        assert_eq!(
            run(&mut p, &[("path", "s")], "GET /api y"),
            s(&[
                ("method", "GET"),
                ("opt", ""),
                ("path", "s"),
                ("path_extracted", "/api")
            ])
        );
        assert_eq!(run(&mut p, &[], "!!!"), s(&[]));
    }

    #[test]
    fn regexp_errors() {
        assert!(RegexpParser::new("(a)").unwrap_err().contains("named capture"));
        assert!(RegexpParser::new("(?P<a>x)(?P<a>y)").unwrap_err().contains("duplicate"));
        assert!(RegexpParser::new("(?P<a>x").is_err());
    }

    #[test]
    fn pattern_captures() {
        let mut p = PatternParser::new(r#"<ip> - <_> "<method> <path> <_>" <status>"#).unwrap();
        assert_eq!(
            run(&mut p, &[], r#"1.2.3.4 - - "GET /x HTTP/1.1" 200 12"#),
            s(&[
                ("ip", "1.2.3.4"),
                ("method", "GET"),
                ("path", "/x"),
                ("status", "200 12")
            ])
        );
        // Anchored at the start.
        let mut p = PatternParser::new("GET <path>").unwrap();
        assert_eq!(run(&mut p, &[], "POST GET /a"), s(&[]));
        assert_eq!(run(&mut p, &[], "GET /a"), s(&[("path", "/a")]));
        // A missing literal: the capture takes the rest, later ones are not set.
        let mut p = PatternParser::new("<a> <b>|<c>").unwrap();
        assert_eq!(run(&mut p, &[], "x y z"), s(&[("a", "x"), ("b", "y z")]));
    }

    #[test]
    fn pattern_errors() {
        assert!(
            PatternParser::new("<_> x")
                .unwrap_err()
                .contains("at least one capture")
        );
        assert!(PatternParser::new("<a><b>").unwrap_err().contains("consecutive"));
        assert!(PatternParser::new("<a> <a>").unwrap_err().contains("duplicate"));
    }
}
