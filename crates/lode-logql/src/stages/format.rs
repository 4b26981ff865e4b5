//! `| line_format "{{.a}}"` and `| label_format dst=src, dst2="{{..}}"`: Go text/template (the
//! gotmpl crate) over the line's current labels, with Loki's functions ([`super::funcs`]).
//! A label the template names but the line lacks renders as `""` (Loki executes over a
//! `map[string]string`, whose zero value is the empty string, not `<no value>`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gotmpl::parse::{Expr, ListNode, Node, PipeNode};
use gotmpl::{Template, Value};

use super::funcs::{LineCtx, loki_funcs};
use super::labels::LabelsBuilder;
use super::{Stage, TEMPLATE_FORMAT_ERR};

/// gotmpl's own functions (it checks function names only when executing; Go at parse time).
const BUILTINS: &[&str] = &[
    "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "print", "println", "printf", "len", "index", "slice",
    "call", "html", "js", "urlquery",
];

/// Function names and top-level `.field`s a template mentions.
#[derive(Default)]
struct Refs {
    idents: Vec<String>,
    fields: Vec<Arc<str>>,
    /// `.` or `$` is used as a value, or sub-templates are involved: the data must hold every
    /// label, not only the mentioned fields.
    uses_dot: bool,
}

impl Refs {
    fn list(&mut self, l: &ListNode) {
        for n in &l.nodes {
            match n {
                Node::List(l) => self.list(l),
                Node::Action(a) => self.pipe(&a.pipe),
                Node::If(b) | Node::Range(b) | Node::With(b) => {
                    self.pipe(&b.pipe);
                    self.list(&b.body);
                    if let Some(e) = &b.else_body {
                        self.list(e);
                    }
                }
                Node::Template(t) => {
                    self.uses_dot = true;
                    if let Some(p) = &t.pipe {
                        self.pipe(p);
                    }
                }
                Node::Define(d) => {
                    self.uses_dot = true;
                    self.list(&d.body);
                }
                Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
            }
        }
    }
    fn pipe(&mut self, p: &PipeNode) {
        for c in &p.commands {
            for e in &c.args {
                self.expr(e);
            }
        }
    }
    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Identifier(_, name) => self.idents.push(name.to_string()),
            Expr::Field(_, path) => {
                if let Some(first) = path.first()
                    && !self.fields.iter().any(|f| **f == **first)
                {
                    self.fields.push(Arc::from(first.as_str()));
                }
            }
            Expr::Pipe(_, p) => self.pipe(p),
            Expr::Chain(_, e, _) => self.expr(e),
            Expr::Dot(_) => self.uses_dot = true,
            Expr::Variable(_, name, _) if name == "$" => self.uses_dot = true,
            _ => {}
        }
    }
}

/// A parsed template plus what it needs per line.
struct Compiled {
    tmpl: Template,
    /// `.name` fields the template mentions, so missing ones can be given `""`.
    fields: Vec<Arc<str>>,
    /// Whether the data must hold every label (see [`Refs::uses_dot`]).
    full: bool,
    /// Whether `__line__` / `__timestamp__` / `unixEpoch*` are used (the context is then set).
    uses_ctx: bool,
}

fn compile(src: &str, ctx: &Arc<Mutex<LineCtx>>) -> Result<Compiled, String> {
    let tmpl = Template::new("line")
        .funcs(loki_funcs(ctx))
        .parse(src)
        .map_err(|e| e.to_string())?;
    let mut refs = Refs::default();
    if let Some(tree) = tmpl.lookup("line") {
        refs.list(tree);
    }
    let known = loki_funcs(ctx);
    if let Some(f) = refs
        .idents
        .iter()
        .find(|f| !known.contains_key(f.as_str()) && !BUILTINS.contains(&f.as_str()))
    {
        return Err(format!("template: line:1: function \"{f}\" not defined"));
    }
    let uses_ctx = src.contains("__line__") || src.contains("__timestamp__") || src.contains("unixEpoch");
    Ok(Compiled {
        tmpl,
        fields: refs.fields,
        full: refs.uses_dot || tmpl_has_defines(src),
        uses_ctx,
    })
}

/// Whether the source may define or call sub-templates (their bodies are not walked).
fn tmpl_has_defines(src: &str) -> bool {
    src.contains("define") || src.contains("template") || src.contains("block")
}

/// The template data: the mentioned labels (`""` when missing), or every current label too
/// when `full`.
fn data(lbs: &LabelsBuilder, fields: &[Arc<str>], full: bool) -> Value {
    if !full {
        let m: BTreeMap<Arc<str>, Value> = fields
            .iter()
            .map(|f| (Arc::clone(f), Value::String(Arc::from(lbs.get(f).unwrap_or("")))))
            .collect();
        return Value::Map(Arc::new(m));
    }
    let mut m: BTreeMap<Arc<str>, Value> = lbs
        .stream()
        .chain(lbs.metadata())
        .chain(lbs.parsed())
        .map(|(n, v)| (Arc::from(n), Value::String(Arc::from(v))))
        .collect();
    for f in fields {
        m.entry(Arc::clone(f)).or_insert_with(|| Value::String(Arc::from("")));
    }
    Value::Map(Arc::new(m))
}

fn set_ctx(ctx: &Mutex<LineCtx>, ts: i64, line: &str) {
    if let Ok(mut c) = ctx.lock() {
        c.ts = ts;
        line.clone_into(&mut c.line);
    }
}

/// `| line_format "template"`: replaces the line with the rendered template. A rendering error
/// keeps the line and sets `__error__=TemplateFormatErr`.
pub struct LineFormat {
    src: String,
    compiled: Compiled,
    ctx: Arc<Mutex<LineCtx>>,
    buf: String,
}

impl LineFormat {
    /// Parses the template (Loki's functions registered); a syntax error or an undefined
    /// function is an error.
    pub fn new(template: &str) -> Result<LineFormat, String> {
        let ctx = Arc::new(Mutex::new(LineCtx::default()));
        Ok(LineFormat {
            src: template.to_string(),
            compiled: compile(template, &ctx)?,
            ctx,
            buf: String::new(),
        })
    }
}

impl Stage for LineFormat {
    fn process(&mut self, ts: i64, line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        if self.compiled.uses_ctx {
            set_ctx(&self.ctx, ts, line);
        }
        let data = data(lbs, &self.compiled.fields, self.compiled.full);
        self.buf.clear();
        match self.compiled.tmpl.execute_fmt(&mut self.buf, &data) {
            Ok(()) => std::mem::swap(line, &mut self.buf),
            Err(e) => {
                lbs.set_err(TEMPLATE_FORMAT_ERR);
                lbs.set_err_details(&e.to_string());
            }
        }
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        // Each copy gets its own line context; the source parsed once, so it parses again.
        match LineFormat::new(&self.src) {
            Ok(f) => Box::new(f),
            Err(e) => Box::new(Failed(e)),
        }
    }
}

/// Stand-in for a stage whose copy could not be rebuilt (never expected): marks lines.
struct Failed(String);

impl Stage for Failed {
    fn process(&mut self, _ts: i64, _line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        lbs.set_err(TEMPLATE_FORMAT_ERR);
        lbs.set_err_details(&self.0);
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(Failed(self.0.clone()))
    }
}

/// One `label_format` assignment's right-hand side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelFormatOp {
    /// `dst=src`: rename; the source is dropped, the category kept.
    Rename(String),
    /// `dst="{{...}}"`: template over the labels as they were when the stage began.
    Template(String),
}

enum Op {
    Rename(String),
    Template(Compiled),
}

/// `| label_format dst=src, dst2="{{.a}}-{{.b}}"`.
pub struct LabelFormat {
    spec: Vec<(String, LabelFormatOp)>,
    ops: Vec<(String, Op)>,
    ctx: Arc<Mutex<LineCtx>>,
    uses_ctx: bool,
    /// Union of the templates' fields, and whether any needs every label.
    fields: Vec<Arc<str>>,
    full: bool,
    buf: String,
}

impl LabelFormat {
    /// A destination may appear only once per stage (Loki's 400).
    pub fn new(ops: Vec<(String, LabelFormatOp)>) -> Result<LabelFormat, String> {
        let ctx = Arc::new(Mutex::new(LineCtx::default()));
        let mut compiled = Vec::with_capacity(ops.len());
        for (i, (dst, op)) in ops.iter().enumerate() {
            if !lode_model::labels::is_valid_label_name(dst) {
                return Err(format!("invalid label name '{dst}'"));
            }
            if ops[..i].iter().any(|(d, _)| d == dst) {
                return Err(format!(
                    "multiple label name '{dst}' not allowed in a single format operation"
                ));
            }
            compiled.push((
                dst.clone(),
                match op {
                    LabelFormatOp::Rename(src) => Op::Rename(src.clone()),
                    LabelFormatOp::Template(t) => Op::Template(compile(t, &ctx)?),
                },
            ));
        }
        let uses_ctx = compiled
            .iter()
            .any(|(_, op)| matches!(op, Op::Template(c) if c.uses_ctx));
        let full = compiled.iter().any(|(_, op)| matches!(op, Op::Template(c) if c.full));
        let mut fields: Vec<Arc<str>> = Vec::new();
        for (_, op) in &compiled {
            if let Op::Template(c) = op {
                for f in &c.fields {
                    if !fields.contains(f) {
                        fields.push(Arc::clone(f));
                    }
                }
            }
        }
        Ok(LabelFormat {
            spec: ops,
            ops: compiled,
            ctx,
            uses_ctx,
            fields,
            full,
            buf: String::new(),
        })
    }
}

impl Stage for LabelFormat {
    fn process(&mut self, ts: i64, line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        if self.uses_ctx {
            set_ctx(&self.ctx, ts, line);
        }
        let mut snapshot: Option<Value> = None;
        for (dst, op) in &self.ops {
            match op {
                Op::Rename(src) => {
                    if let Some((v, category)) = lbs.get_with_category(src) {
                        let v = v.to_string();
                        lbs.set(category, dst, &v);
                        if src != dst {
                            lbs.del(src);
                        }
                    }
                }
                Op::Template(c) => {
                    let data = snapshot.get_or_insert_with(|| data(lbs, &self.fields, self.full));
                    self.buf.clear();
                    match c.tmpl.execute_fmt(&mut self.buf, data) {
                        Ok(()) => lbs.set_parsed(dst, &self.buf),
                        Err(e) => {
                            lbs.set_err(TEMPLATE_FORMAT_ERR);
                            lbs.set_err_details(&e.to_string());
                        }
                    }
                }
            }
        }
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        match LabelFormat::new(self.spec.clone()) {
            Ok(f) => Box::new(f),
            Err(e) => Box::new(Failed(e)),
        }
    }
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
