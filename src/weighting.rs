//! weighting (stub)
