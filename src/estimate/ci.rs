//! CIs (STUB replaced by the real module).
use std::str::FromStr;
/// CI method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiMethod { Mean, Normal, Logit, Beta, Xlogit, Asin, Wilson }
impl FromStr for CiMethod {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s { "mean" => Self::Mean, "normal" => Self::Normal, "logit" => Self::Logit, "beta" => Self::Beta, "xlogit" => Self::Xlogit, "asin" => Self::Asin, "wilson" => Self::Wilson, _ => return Err(()) })
    }
}
impl CiMethod { pub fn as_str(self) -> &'static str { match self { Self::Mean => "mean", Self::Normal => "normal", Self::Logit => "logit", Self::Beta => "beta", Self::Xlogit => "xlogit", Self::Asin => "asin", Self::Wilson => "wilson" } } }
pub fn proportion_ci(method: CiMethod, p: f64, se: f64, df: f64, level: f64, beta_nrow: f64) -> Option<(f64, f64)> { let _ = (method, p, se, df, level, beta_nrow); None }
pub fn wald_ci(estimate: f64, se: f64, df: f64, level: f64, normal: bool) -> Option<(f64, f64)> { let _ = (estimate, se, df, level, normal); None }
