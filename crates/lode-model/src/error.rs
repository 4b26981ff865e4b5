//! One error code for the whole system, mapped once to an HTTP status (and, in `lode-proto`, to
//! a gRPC code). Crate error enums say which code they are; the edge renders `ApiError`.

use std::fmt;

/// What kind of failure an error is, independent of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    TooManyRequests,
    Cancelled,
    Internal,
    Unavailable,
    Timeout,
}

impl ErrorCode {
    /// The HTTP status Loki answers with for this kind of failure.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Unprocessable => 422,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Cancelled => 499,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }

    /// Client mistakes are never retried by agents; server faults are.
    pub fn is_client_error(self) -> bool {
        self.http_status() < 500
    }
}

/// An error as it crosses a role boundary: a code and a Loki-worded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}
