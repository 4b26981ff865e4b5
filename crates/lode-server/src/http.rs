//! Shared HTTP plumbing: tenant resolution, request parameters (query string merged with a form
//! body, as Loki reads them), and error responses as Loki sends them (plain text).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use lode_model::{ApiError, DEFAULT_TENANT, ErrorCode};

use crate::Handlers;

/// An error rendered as Loki renders it: status, `text/plain`, the message and a newline.
#[derive(Debug)]
pub(crate) struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self.0.message, "request failed");
        }
        let mut r = (status, format!("{}\n", self.0.message)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r.headers_mut()
            .insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        r
    }
}

pub(crate) type HttpResult<T> = Result<T, HttpError>;

pub(crate) fn bad_request(msg: impl Into<String>) -> HttpError {
    HttpError(ApiError::bad_request(msg))
}

/// The request's tenant. Loki's rules: with auth off always `fake`; with auth on the
/// `X-Scope-OrgID` header is required and validated.
pub(crate) fn tenant(h: &Handlers, headers: &HeaderMap) -> HttpResult<String> {
    if !h.auth_enabled {
        return Ok(DEFAULT_TENANT.to_string());
    }
    let Some(v) = headers.get("x-scope-orgid") else {
        return Err(HttpError(ApiError::new(ErrorCode::Unauthorized, "no org id")));
    };
    let id = v
        .to_str()
        .map_err(|_| bad_request("tenant ID contains unsupported characters"))?
        .trim();
    if id.is_empty() {
        return Err(HttpError(ApiError::new(ErrorCode::Unauthorized, "no org id")));
    }
    validate_tenant(id).map_err(bad_request)?;
    Ok(id.to_string())
}

/// Loki's tenant ID rules: `[A-Za-z0-9!-_.*'()]`, at most 150 bytes, not `.` or `..`.
pub(crate) fn validate_tenant(id: &str) -> Result<(), String> {
    if id.len() > 150 {
        return Err("tenant ID is too long: max 150 characters".into());
    }
    if id == "." || id == ".." {
        return Err("tenant ID is '.' or '..'".into());
    }
    if id.contains('|') {
        return Err("multiple org IDs present".into());
    }
    for c in id.chars() {
        let ok = c.is_ascii_alphanumeric() || "!-_.*'()".contains(c);
        if !ok {
            return Err(format!("tenant ID '{id}' contains unsupported character '{c}'"));
        }
    }
    Ok(())
}

/// Request parameters: the URL query merged with an `application/x-www-form-urlencoded` body.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut v: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
        if is_form {
            v.extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        Params(v)
    }

    /// Every non-empty value of `name`, in order (e.g. repeated `match[]`).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}
