//! cvsurvey: design-based estimation of corruption and crime-victimization indicators.
//!
//! The pipeline runs one way: [`questionnaire`] → [`ingest`] → [`design`] → [`weighting`] →
//! [`replicates`] → [`estimate`] → [`output`], orchestrated by [`pipeline`] from a [`config`]
//! file.

pub mod config;
pub mod design;
pub mod estimate;
pub mod fieldwork;
pub mod frame;
pub mod ingest;
pub mod memory;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod questionnaire;
pub mod replicates;
pub mod synth;
#[cfg(test)]
mod test_support;
pub mod weighting;
