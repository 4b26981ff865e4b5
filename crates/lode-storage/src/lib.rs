//! Object storage for chunks and index objects over object_store: local disk, memory, S3, GCS, Azure
