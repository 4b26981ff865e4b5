//! The label index: per-tenant, per-period objects mapping label sets to chunk references, with postings
