//! `ErrorCode` <-> gRPC status code, in one place (the HTTP side is `ErrorCode::http_status`).
//!
//! The mapping is one-to-one on `ErrorCode`, so an error that crosses a gRPC hop comes back with
//! the code (and message) it left with: an ingester's 400 or 429 reaches the distributor as a 400
//! or 429. A status a Lode handler returned is marked with [`ERROR_CODE_HEADER`]; a status
//! without it was made by the transport (connection refused, reset, message too large...) or by
//! something that is not a Lode handler, and is a server fault ([`ErrorCode::Unavailable`], or
//! [`ErrorCode::Timeout`] for a deadline), never a client error.

use lode_model::{ApiError, ErrorCode};
use tonic::{Code, Status};

/// Metadata key on statuses returned by Lode handlers; the value is the HTTP status.
pub const ERROR_CODE_HEADER: &str = "lode-error-code";

/// The gRPC code an `ErrorCode` travels as.
pub fn grpc_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::BadRequest => Code::InvalidArgument,
        ErrorCode::Unauthorized => Code::Unauthenticated,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::PayloadTooLarge => Code::OutOfRange,
        ErrorCode::Unprocessable => Code::FailedPrecondition,
        ErrorCode::TooManyRequests => Code::ResourceExhausted,
        ErrorCode::Cancelled => Code::Cancelled,
        ErrorCode::Internal => Code::Internal,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::Timeout => Code::DeadlineExceeded,
    }
}

/// The `ErrorCode` a gRPC code from a Lode handler stands for: the inverse of [`grpc_code`];
/// codes it never produces are server faults.
pub fn error_code(code: Code) -> ErrorCode {
    match code {
        Code::InvalidArgument => ErrorCode::BadRequest,
        Code::Unauthenticated | Code::PermissionDenied => ErrorCode::Unauthorized,
        Code::NotFound => ErrorCode::NotFound,
        Code::OutOfRange => ErrorCode::PayloadTooLarge,
        Code::FailedPrecondition => ErrorCode::Unprocessable,
        Code::ResourceExhausted => ErrorCode::TooManyRequests,
        Code::Cancelled => ErrorCode::Cancelled,
        Code::Unavailable => ErrorCode::Unavailable,
        Code::DeadlineExceeded => ErrorCode::Timeout,
        Code::Ok
        | Code::Unknown
        | Code::AlreadyExists
        | Code::Aborted
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => ErrorCode::Internal,
    }
}

/// The status a handler answers with for an error: its code, its message, and the marker.
pub fn to_status(err: &ApiError) -> Status {
    let mut status = Status::new(grpc_code(err.code), err.message.clone());
    status
        .metadata_mut()
        .insert(ERROR_CODE_HEADER, err.code.http_status().into());
    status
}

/// The error a status stands for. A handler's status (marked) keeps its code and message; any
/// other status is a transport failure: `Timeout` for a deadline, else `Unavailable`, with the
/// message prefixed by `context` (e.g. the peer's address).
pub fn from_status(status: &Status, context: &str) -> ApiError {
    if status.metadata().contains_key(ERROR_CODE_HEADER) {
        return ApiError::new(error_code(status.code()), status.message());
    }
    let code = if status.code() == Code::DeadlineExceeded || deadline_expired(status) {
        ErrorCode::Timeout
    } else {
        ErrorCode::Unavailable
    };
    ApiError::new(code, format!("{context}: {} ({:?})", status.message(), status.code()))
}

/// Whether tonic made the status because the call's own deadline (`grpc-timeout`) passed: it
/// files that under `Cancelled`, with `TimeoutExpired` in the source chain.
fn deadline_expired(status: &Status) -> bool {
    let mut err: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = err {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        err = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 10] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unprocessable,
        ErrorCode::TooManyRequests,
        ErrorCode::Cancelled,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
    ];

    #[test]
    fn every_code_round_trips() {
        for code in ALL {
            assert_eq!(error_code(grpc_code(code)), code, "{code:?}");
            let err = ApiError::new(code, format!("message of {code:?}"));
            assert_eq!(from_status(&to_status(&err), "ingester"), err);
        }
    }

    #[test]
    fn unmarked_statuses_are_server_faults() {
        let refused = Status::unavailable("tcp connect error: connection refused");
        let e = from_status(&refused, "ingester 127.0.0.1:1");
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert!(e.message.starts_with("ingester 127.0.0.1:1: tcp connect error"), "{e}");
        // A transport error that tonic files under a client-looking code is still a 5xx.
        for s in [
            Status::invalid_argument("x"),
            Status::out_of_range("too large"),
            Status::not_found("io"),
        ] {
            assert_eq!(from_status(&s, "c").code, ErrorCode::Unavailable);
        }
        assert_eq!(
            from_status(&Status::deadline_exceeded("d"), "c").code,
            ErrorCode::Timeout
        );
    }
}
