//! `report.html` (placeholder until the report lands).
use super::publish::{PublicationConfig, PublicationContext};
use crate::estimate::EstimateRow;

/// The report as HTML text.
pub fn render(_rows: &[EstimateRow], _ctx: &PublicationContext<'_>, _cfg: &PublicationConfig) -> String {
    String::new()
}
