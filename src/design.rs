//! design (stub)
