//! The crate's one error type. Every variant renders with Loki's wording, because clients (Grafana,
//! logcli) show the message as-is: positioned errors read `parse error at line L, col C: <msg>`,
//! whole-query validation errors read `parse error : <msg>` (Loki's form for position 0:0).

use lode_model::{ApiError, ErrorCode};

/// Loki rejects queries at least this long, before parsing.
pub const MAX_QUERY_BYTES: usize = 131_072;

pub type Result<T, E = LogqlError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogqlError {
    /// A syntax or semantic error at a place in the query (1-based line and column, in characters).
    #[error("parse error at line {line}, col {col}: {msg}")]
    Parse { line: usize, col: usize, msg: String },
    /// A whole-query validation error, e.g. an empty-compatible selector or an oversized query.
    #[error("parse error : {0}")]
    Validation(String),
    /// Valid LogQL that this version of Lode cannot run yet (parsers, label filters, metric
    /// queries...). Answered with a 400 naming the construct rather than a wrong result.
    #[error("parse error at line {line}, col {col}: {what} not supported yet")]
    Unsupported { line: usize, col: usize, what: String },
}

impl LogqlError {
    /// Every LogQL error is the caller's query: HTTP 400, never retried.
    pub fn code(&self) -> ErrorCode {
        match self {
            LogqlError::Parse { .. } | LogqlError::Validation(_) | LogqlError::Unsupported { .. } => {
                ErrorCode::BadRequest
            }
        }
    }

    /// True when the error is the client's (HTTP 4xx); see [`LogqlError::code`].
    pub fn is_client_error(&self) -> bool {
        self.code().is_client_error()
    }

    /// Builds a positioned error from a byte offset into `query`.
    pub(crate) fn at(query: &str, offset: usize, msg: impl Into<String>) -> Self {
        let (line, col) = line_col(query, offset);
        LogqlError::Parse {
            line,
            col,
            msg: msg.into(),
        }
    }

    pub(crate) fn unsupported_at(query: &str, offset: usize, what: impl Into<String>) -> Self {
        let (line, col) = line_col(query, offset);
        LogqlError::Unsupported {
            line,
            col,
            what: what.into(),
        }
    }
}

impl From<LogqlError> for ApiError {
    fn from(e: LogqlError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

/// 1-based line and column (counted in characters, like Go's text/scanner) of byte `offset`.
pub(crate) fn line_col(query: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(query.len());
    while !query.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &query[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("abc", 2), (1, 3));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("é}", 2), (1, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn renders_loki_forms_and_maps_to_400() {
        let e = LogqlError::at("{a}", 2, "syntax error: unexpected }");
        assert_eq!(
            e.to_string(),
            "parse error at line 1, col 3: syntax error: unexpected }"
        );
        assert!(e.is_client_error());
        assert_eq!(LogqlError::Validation("x".into()).to_string(), "parse error : x");
        let api: ApiError = e.into();
        assert_eq!(api.code, ErrorCode::BadRequest);
    }
}
