//! Log pipeline stages after line filters: parsers, label filters, formatting (being written).
