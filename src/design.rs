//! Sampling design (STUB replaced by the real module).
use crate::frame::Frame;
use std::str::FromStr;

/// Lonely PSU handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LonelyPsu { Fail, Remove, Certainty, Adjust, Average }
impl FromStr for LonelyPsu {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s { "fail" => Self::Fail, "remove" => Self::Remove, "certainty" => Self::Certainty, "adjust" => Self::Adjust, "average" => Self::Average, _ => return Err(()) })
    }
}
/// Design spec.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignSpec { pub strata: Option<String>, pub psu: Vec<String>, pub fpc: Vec<String>, pub weight: String, pub nest: bool, pub lonely_psu: LonelyPsu }
/// Design.
#[derive(Debug, Clone)]
pub struct Design { w: Vec<f64> }
/// Error.
#[derive(Debug, thiserror::Error)]
pub enum DesignError { #[error("stub")] Stub }
/// Error.
#[derive(Debug, thiserror::Error)]
pub enum VarianceError { #[error("stub")] Stub }
impl Design {
    pub fn build(frame: &Frame, rows: &[usize], spec: &DesignSpec) -> Result<Design, DesignError> { let _ = (frame, rows, spec); Err(DesignError::Stub) }
    pub fn n_rows(&self) -> usize { self.w.len() }
    pub fn n_strata(&self) -> usize { 0 }
    pub fn n_psu(&self) -> usize { 0 }
    pub fn weights(&self) -> &[f64] { &self.w }
    pub fn degf(&self, include: &[bool]) -> f64 { let _ = include; 0.0 }
    pub fn variance(&self, scores: &[f64], present: Option<&[bool]>) -> Result<f64, VarianceError> { let _ = (scores, present); Err(VarianceError::Stub) }
}
