//! Push body decoding (being written).
