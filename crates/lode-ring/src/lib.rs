//! The consistent-hash ring that places each stream on ingesters
