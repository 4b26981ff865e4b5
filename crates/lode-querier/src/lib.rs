//! The querier role: evaluates LogQL over ingester memory and flushed chunks, merged and de-duplicated
