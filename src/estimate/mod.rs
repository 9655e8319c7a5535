//! Estimation (stub).
pub mod ci;
pub mod variance;
