//! LogQL: the nom parser, the AST and its canonical printer, and evaluation of selectors and pipelines
