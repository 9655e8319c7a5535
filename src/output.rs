//! output (stub)
