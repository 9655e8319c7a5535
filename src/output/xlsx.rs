//! `tables.xlsx` (placeholder until the workbook lands).
use super::publish::{PublicationConfig, PublicationContext};
use crate::estimate::EstimateRow;

/// The workbook as bytes.
pub fn workbook_bytes(
    _rows: &[EstimateRow],
    _ctx: &PublicationContext<'_>,
    _cfg: &PublicationConfig,
) -> Result<Vec<u8>, String> {
    Err("tables.xlsx is not implemented yet".into())
}
