//! variance (stub)
