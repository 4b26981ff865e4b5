//! Splitting a query by time. A query's range is cut into consecutive pieces, and each piece
//! (ingesters plus store for that stretch of time) runs as its own task, so the chunk decoding
//! and line scanning of one query spread over every core. Pieces never overlap, so the entries
//! and samples they return are disjoint and merge without double counting. Loki splits in its
//! query frontend by `split_queries_by_interval` and runs the pieces on many queriers; Lode does
//! it inside the querier and needs no extra process.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use lode_model::ApiError;

/// Pieces shorter than this are not worth a task of their own.
pub(crate) const MIN_PIECE_NS: i64 = 60 * 1_000_000_000;

/// At most this many pieces per query, however long its range.
pub(crate) const MAX_PIECES: usize = 256;

/// Cuts `[from, to)` into `n` consecutive pieces of nearly equal length (fewer when the range
/// is shorter than `n` pieces of [`MIN_PIECE_NS`]), oldest first. An empty range is one piece.
pub(crate) fn split_even(from: i64, to: i64, n: usize) -> Vec<(i64, i64)> {
    let len = to.saturating_sub(from);
    if len <= 0 {
        return vec![(from, to)];
    }
    let fit = usize::try_from(len / MIN_PIECE_NS).unwrap_or(usize::MAX).max(1);
    let n = n.clamp(1, MAX_PIECES).min(fit);
    // `len > 0` and `n >= 1`: a ceiling division that cannot overflow.
    let step = (len - 1) / n as i64 + 1;
    let mut out = Vec::with_capacity(n);
    let mut s = from;
    while s < to {
        let e = s.saturating_add(step).min(to);
        out.push((s, e));
        s = e;
    }
    out
}

/// Cuts `[from, to)` into pieces of about `interval` (but at least `min_pieces` pieces when the
/// range allows, and at most [`MAX_PIECES`]), oldest first.
pub(crate) fn split_by_interval(from: i64, to: i64, interval: i64, min_pieces: usize) -> Vec<(i64, i64)> {
    let len = to.saturating_sub(from);
    let by_interval = if interval > 0 && len > 0 {
        usize::try_from((len - 1) / interval + 1).unwrap_or(usize::MAX)
    } else {
        1
    };
    split_even(from, to, by_interval.max(min_pieces))
}

/// A spawned piece of a query that is cancelled when dropped: when a log query's limit is met
/// by earlier pieces, or the query times out, the pieces still running stop with it instead of
/// using the cores for an answer nobody reads.
pub(crate) struct Piece<T>(tokio::task::JoinHandle<Result<T, ApiError>>);

impl<T: Send + 'static> Piece<T> {
    pub(crate) fn spawn(f: impl Future<Output = Result<T, ApiError>> + Send + 'static) -> Self {
        Piece(tokio::spawn(f))
    }
}

impl<T> Drop for Piece<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for Piece<T> {
    type Output = Result<T, ApiError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|e| Err(ApiError::internal(format!("query piece failed: {e}")))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = MIN_PIECE_NS;

    fn covers(pieces: &[(i64, i64)], from: i64, to: i64) {
        assert_eq!(pieces.first().map(|p| p.0), Some(from));
        assert_eq!(pieces.last().map(|p| p.1), Some(to));
        for w in pieces.windows(2) {
            assert_eq!(w[0].1, w[1].0, "pieces must be contiguous: {pieces:?}");
        }
        assert!(pieces.iter().all(|(s, e)| s < e || from == to));
    }

    #[test]
    fn even_split_covers_the_range_once() {
        let p = split_even(0, 120 * M, 2);
        assert_eq!(p, vec![(0, 60 * M), (60 * M, 120 * M)]);
        let p = split_even(7, 7 + 100 * M + 3, 3);
        assert_eq!(p.len(), 3);
        covers(&p, 7, 7 + 100 * M + 3);
    }

    #[test]
    fn short_ranges_are_not_split_below_the_minimum_piece() {
        assert_eq!(split_even(0, M / 2, 8), vec![(0, M / 2)]);
        assert_eq!(split_even(0, 3 * M, 8).len(), 3);
        assert_eq!(split_even(5, 5, 4), vec![(5, 5)]);
        assert_eq!(split_even(5, 1, 4), vec![(5, 1)]);
    }

    #[test]
    fn interval_split_has_a_floor_and_a_ceiling() {
        let h = 60 * M;
        let p = split_by_interval(0, 3 * h, h, 2);
        assert_eq!(p.len(), 3);
        covers(&p, 0, 3 * h);
        assert_eq!(split_by_interval(0, h, h, 2).len(), 2, "at least one piece per core");
        let long = split_by_interval(0, 10_000 * h, h, 2);
        assert_eq!(long.len(), MAX_PIECES);
        covers(&long, 0, 10_000 * h);
        assert_eq!(split_by_interval(0, i64::MAX, h, 2).len(), MAX_PIECES);
    }
}
