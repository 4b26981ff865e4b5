//! Checking `line_format`/`label_format` templates at parse time, as Loki does when it builds
//! the stage: the text must parse as a Go template and call only functions Loki provides.

use gotmpl::parse::{BranchNode, CommandNode, Expr as TExpr, ListNode, Node, Parser, PipeNode};

/// Go's text/template builtins.
const GO_BUILTINS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "print", "printf", "println", "len", "index", "slice",
    "call", "html", "js", "urlquery",
];

/// Loki's own functions and the sprig functions it registers (`pkg/logql/log/fmt.go`).
const LOKI_FUNCTIONS: &[&str] = &[
    "__line__",
    "__timestamp__",
    "ToLower",
    "ToUpper",
    "Replace",
    "Trim",
    "TrimLeft",
    "TrimRight",
    "TrimPrefix",
    "TrimSuffix",
    "TrimSpace",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "count",
    "urldecode",
    "urlencode",
    "bytes",
    "duration",
    "duration_seconds",
    "unixEpochMillis",
    "unixEpochNanos",
    "toDateInZone",
    "unixToTime",
    "alignLeft",
    "alignRight",
    "b64enc",
    "b64dec",
    "lower",
    "upper",
    "title",
    "trunc",
    "substr",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "indent",
    "nindent",
    "replace",
    "repeat",
    "trim",
    "trimAll",
    "trimSuffix",
    "trimPrefix",
    "int",
    "float64",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "subf",
    "mulf",
    "divf",
    "max",
    "min",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
    "fromJson",
    "date",
    "toDate",
    "now",
    "unixEpoch",
    "default",
];

/// Whether `name` is a function a Loki template may call.
pub(crate) fn is_template_function(name: &str) -> bool {
    GO_BUILTINS.contains(&name) || LOKI_FUNCTIONS.contains(&name)
}

/// Parses `src` as a Go template and checks every function it calls. The error is Go's message.
pub(crate) fn check_template(src: &str) -> Result<(), String> {
    check_blocks(src)?;
    let parser = Parser::with_name(Some("line"), src, "{{", "}}").map_err(|e| e.to_string())?;
    let (tree, defines) = parser.parse().map_err(|e| e.to_string())?;
    check_list(&tree)?;
    for d in &defines {
        check_list(&d.body)?;
    }
    Ok(())
}

/// The texts of the actions of `src` (inside `{{ }}`, trim markers and comments removed), with
/// their line numbers. An unterminated action ends the list (the template parser reports it).
fn actions(src: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let line = 1 + src[..src.len() - rest.len() + start].matches('\n').count();
        let body = &rest[start + 2..];
        let mut quote: Option<char> = None;
        let mut escaped = false;
        let mut end = None;
        for (k, c) in body.char_indices() {
            match quote {
                Some(_) if escaped => escaped = false,
                Some(q) if c == '\\' && q != '`' => escaped = true,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if matches!(c, '"' | '`' | '\'') => quote = Some(c),
                None if body[k..].starts_with("}}") => {
                    end = Some(k);
                    break;
                }
                None => {}
            }
        }
        let Some(end) = end else { break };
        let text = body[..end].trim_start_matches('-').trim_end_matches('-').trim();
        if !text.starts_with("/*") {
            out.push((text, line));
        }
        rest = &body[end + 2..];
    }
    out
}

/// Go's block structure: every `if`/`range`/`with`/`define`/`block` closed by one `end`, and
/// `else` only inside `if`/`range`/`with` (gotmpl accepts an unclosed block).
fn check_blocks(src: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut last_line = 1;
    for (text, line) in actions(src) {
        last_line = line;
        let word = text
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or_default();
        match word {
            "if" | "range" | "with" | "define" | "block" => open.push(word),
            "else" if matches!(open.last(), Some(&("if" | "range" | "with"))) => {}
            "else" => return Err(format!("template: line:{line}: unexpected {{{{else}}}}")),
            "end" if open.pop().is_some() => {}
            "end" => return Err(format!("template: line:{line}: unexpected {{{{end}}}}")),
            _ => {}
        }
    }
    match open.last() {
        Some(_) => Err(format!("template: line:{last_line}: unexpected EOF")),
        None => Ok(()),
    }
}

fn check_list(list: &ListNode) -> Result<(), String> {
    list.nodes.iter().try_for_each(check_node)
}

fn check_node(node: &Node) -> Result<(), String> {
    match node {
        Node::List(l) => check_list(l),
        Node::Action(a) => check_pipe(&a.pipe),
        Node::If(b) | Node::Range(b) | Node::With(b) => check_branch(b),
        Node::Template(t) => t.pipe.as_ref().map_or(Ok(()), check_pipe),
        Node::Define(d) => check_list(&d.body),
        Node::Text(_) | Node::Break(_) | Node::Continue(_) => Ok(()),
    }
}

fn check_branch(b: &BranchNode) -> Result<(), String> {
    check_pipe(&b.pipe)?;
    check_list(&b.body)?;
    b.else_body.as_ref().map_or(Ok(()), check_list)
}

fn check_pipe(p: &PipeNode) -> Result<(), String> {
    p.commands.iter().try_for_each(check_command)
}

fn check_command(c: &CommandNode) -> Result<(), String> {
    c.args.iter().try_for_each(check_expr)
}

fn check_expr(e: &TExpr) -> Result<(), String> {
    match e {
        TExpr::Identifier(pos, name) if !is_template_function(name) => {
            Err(format!("template: line:{}: function {name:?} not defined", pos.line))
        }
        TExpr::Pipe(_, p) => check_pipe(p),
        TExpr::Chain(_, inner, _) => check_expr(inner),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loki_templates() {
        for t in [
            "{{.a}}",
            "",
            "plain",
            r#"{{ .level | upper }} {{ if eq .status "500" }}E{{ else }}ok{{ end }}"#,
            r#"{{ regexReplaceAll "(a+)" .msg "${1}" | trunc 10 }}"#,
            "{{ __line__ }} {{ __timestamp__ | unixEpoch }} {{ printf \"%-5s\" .x }}",
            "{{ default \"-\" .x | lower | title | substr 0 3 | replace \"a\" \"b\" }}",
            "{{ add 1 2 | sub 1 | mul 2 | div 2 | mod 3 | float64 | floor | ceil | round }}",
            "{{ .x | b64enc | urlencode | len }} {{ and (contains \"a\" .x) (hasPrefix \"b\" .x) | or true }}",
            "{{ range $i, $e := .x }}{{ $e }}{{ end }}{{ with .y }}{{ . }}{{ end }}",
        ] {
            assert_eq!(check_template(t), Ok(()), "{t:?}");
        }
    }

    #[test]
    fn refuses_unknown_functions_and_broken_actions() {
        assert_eq!(
            check_template("{{ .a | nosuch }}"),
            Err("template: line:1: function \"nosuch\" not defined".to_string())
        );
        assert_eq!(
            check_template("{{ if .a }}x"),
            Err("template: line:1: unexpected EOF".to_string())
        );
        assert_eq!(
            check_template("x{{ end }}"),
            Err("template: line:1: unexpected {{end}}".to_string())
        );
        assert!(check_template("{{ else }}").is_err());
        assert_eq!(
            check_template("{{ if .a }}{{ \"}}\" }}{{ else if .b }}{{- end -}}{{/* {{ if */}}"),
            Ok(())
        );
        assert!(check_template("{{ .a ").is_err());
        assert!(check_template("{{ (nosuch) }}").is_err());
    }
}
