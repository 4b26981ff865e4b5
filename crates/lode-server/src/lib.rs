//! The HTTP edge: Loki's push, query and operations endpoints, decoding bodies and rendering Loki's JSON
