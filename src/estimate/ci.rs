//! CIs (stub)
