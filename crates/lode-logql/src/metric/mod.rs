//! The metric query engine: range and vector aggregations, binary operators (being written).
