//! One weighting scheme as the weighting stage consumes it: the plain description that the
//! configuration builds (base weights → optional nonresponse adjustment → optional calibration),
//! kept in the stage so that the stage never imports the configuration.

use std::path::PathBuf;

/// One weighting scheme: base weights → optional nonresponse adjustment → optional calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightingSpec {
    /// Name, written to the `weighting` output column.
    pub name: String,
    /// Weighting-class nonresponse adjustment: the classes' columns.
    pub nonresponse_classes: Option<Vec<String>>,
    /// Within the nonresponse classes, spread the weight of cases of unknown eligibility over
    /// the cases of known eligibility and drop the ineligible ones before the nonresponse
    /// adjustment (`eligibility = "adjust"`; needs every sampled case's eligibility).
    pub adjust_eligibility: bool,
    /// Calibration to population totals.
    pub calibration: Option<CalibrationConfig>,
}

/// Calibration settings of one scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationConfig {
    /// Method.
    pub method: CalibrationMethodName,
    /// Margins file (resolved path).
    pub margins: PathBuf,
    /// Bounds on g = w/d.
    pub bounds: Option<(f64, f64)>,
    /// Trimming.
    pub trim: Option<TrimConfig>,
    /// Iteration limit (R: 50 for `calibrate`, 10 for `rake`).
    pub max_iter: Option<usize>,
    /// Convergence tolerance (R: 1e-7 for `calibrate`, 1 for `rake`).
    pub tolerance: Option<f64>,
    /// Keep the weights of a calibration that did not converge, with a warning.
    pub force: bool,
    /// Post-stratification: ignore population cells absent from the sample (R `partial = TRUE`).
    pub partial: bool,
    /// `rake`: which weighted table must settle between sweeps.
    pub convergence: RakeConvergence,
}

/// Calibration method (see `docs/weighting.md` for the R function each matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibrationMethodName {
    /// R `postStratify` on a joint table.
    Poststratify,
    /// R `rake()`: iterative proportional fitting, R's approximate variance residuals.
    Rake,
    /// R `calibrate(calfun = "raking")`: exponential distance, exact GREG residuals.
    Raking,
    /// R `calibrate(calfun = "linear")`: GREG, closed form.
    Linear,
    /// R `calibrate(calfun = "logit", bounds)`: bounded (Deville–Särndal).
    Logit,
    /// R `calibrate(calfun = "linear", bounds)`: truncated linear.
    Truncated,
}

/// The convergence test of `rake` (R `rake()`), which changed between releases of R survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RakeConvergence {
    /// Every margin's own weighted table changes by less than the tolerance (survey ≥ 4.5).
    #[default]
    Margins,
    /// The cross-table of all margin variables does (survey 4.1 to 4.4).
    CrossTable,
}

/// Weight trimming.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrimConfig {
    /// Lower limit (−∞ when absent).
    pub lower: f64,
    /// Upper limit (+∞ when absent).
    pub upper: f64,
    /// Weights or g.
    pub on: TrimTarget,
    /// Repeat until no weight is outside the limits (R `trimWeights(strict = TRUE)`).
    pub strict: bool,
}

/// What a trim applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimTarget {
    /// The final weights (R `trimWeights`).
    Weights,
    /// The calibration factors g = w/d (R `calibrate(trim = )`).
    G,
}
