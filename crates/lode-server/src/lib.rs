//! The HTTP edge (placeholder: being written).
pub mod push_decode;
