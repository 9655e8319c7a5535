//! Estimation (stub).
pub mod ci;
pub mod quantile;
pub mod variance;
