//! Surveys of households and persons: each row of the person file is linked to its household's
//! row of the household file by the household id (`docs/pipeline.md`, "Households and
//! persons"). The link is checked while the person file is read, so that a person who cannot be
//! linked is quarantined with its reason like any other bad row; the household columns are then
//! joined to the persons that remain.

use std::collections::HashMap;
use std::path::PathBuf;

use super::findings::FindingsBuilder;
use super::{FindingKind, Ingested};
use crate::frame::{CellState, Column, ColumnData, Frame};

/// What the person file is checked against: the households as read.
#[derive(Debug, Clone, Default)]
pub struct HouseholdLink {
    /// Person-file column holding each person's household id.
    pub column: String,
    /// The household file, named in reasons.
    pub household_file: PathBuf,
    /// Household id column of the household file, named in reasons.
    pub household_id: String,
    /// Used households: id as written → row of the household frame.
    pub rows: HashMap<String, usize>,
    /// Per household frame row: the household responded.
    pub responded: Vec<bool>,
    /// Household ids quarantined in the household file → their data row there.
    pub quarantined: HashMap<String, u64>,
    /// Columns the person file may repeat from the household file (the design columns): per
    /// column, each household's value as written.
    pub shared: Vec<(String, Vec<String>)>,
    /// The selection factor's column, with each household's value when the household file
    /// holds it (NaN where blank); `None` values: the person file holds it.
    pub selection_factor: Option<(String, Option<Vec<f64>>)>,
}

impl HouseholdLink {
    /// The link to the households of `households`, read from `household_file` with id column
    /// `household_id`; `shared` are the design columns a person file may repeat.
    pub fn new(
        column: &str,
        households: &Ingested,
        household_file: PathBuf,
        household_id: &str,
        shared: &[String],
        selection_factor: Option<&str>,
    ) -> HouseholdLink {
        let frame = &households.frame;
        let ids = frame.column(household_id);
        let rows = (0..frame.n_rows())
            .filter_map(|r| ids.and_then(|c| c.display(r)).map(|id| (id, r)))
            .collect();
        let quarantined = households
            .findings
            .iter()
            .filter(|f| f.action == super::FindingAction::Quarantined && !f.id.is_empty())
            .map(|f| (f.id.to_string(), f.row))
            .collect();
        let shared = shared
            .iter()
            .filter_map(|name| {
                let c = frame.column(name)?;
                let values = (0..frame.n_rows())
                    .map(|r| c.display(r).unwrap_or_default())
                    .collect();
                Some((name.clone(), values))
            })
            .collect();
        let selection_factor = selection_factor.map(|name| {
            let values = frame.column(name).map(|c| match &c.data {
                ColumnData::Num(v) => (0..frame.n_rows())
                    .map(|r| {
                        if c.state[r] == CellState::Value {
                            v.get(r)
                        } else {
                            f64::NAN
                        }
                    })
                    .collect(),
                ColumnData::Text { .. } => vec![f64::NAN; frame.n_rows()],
            });
            (name.to_string(), values)
        });
        HouseholdLink {
            column: column.to_string(),
            household_file,
            household_id: household_id.to_string(),
            rows,
            responded: households.respondent.clone(),
            quarantined,
            shared,
            selection_factor,
        }
    }

    /// Findings of the person rows that cannot be linked: no such household, a household
    /// quarantined in its file, a responding person of a nonresponding household, a design
    /// column that disagrees with the household's, a selection factor blank or below 1.
    pub(super) fn check(&self, frame: &Frame, respondent: &[bool], findings: &mut FindingsBuilder) {
        let Some(link) = frame.column(&self.column) else {
            return;
        };
        let file = self.household_file.display();
        let factor_column = self
            .selection_factor
            .as_ref()
            .map(|(name, from_households)| {
                (
                    name.as_str(),
                    from_households.as_deref(),
                    frame.column(name),
                )
            });
        for (r, &responded) in respondent.iter().enumerate() {
            let Some(id) = link.display(r) else {
                // Blank: reported with the design fields.
                continue;
            };
            let Some(&h) = self.rows.get(&id) else {
                let reason = match self.quarantined.get(&id) {
                    Some(row) => format!(
                        "household {id} is quarantined in the household file {file} (data row {row}; see household_quarantine.csv), so its persons cannot be weighted"
                    ),
                    None => format!(
                        "household {id} is not in the household file {file} (column {}): correct the id, or add the household",
                        self.household_id
                    ),
                };
                findings.push(r, &self.column, &id, FindingKind::UnknownHousehold, &reason);
                continue;
            };
            if responded && !self.responded[h] {
                findings.push(
                    r,
                    &self.column,
                    &id,
                    FindingKind::HouseholdMismatch,
                    &format!(
                        "this person responded, but household {id} did not respond in the household file {file}: correct the response status of one of them"
                    ),
                );
            }
            for (name, values) in &self.shared {
                let Some(own) = frame.column(name) else {
                    continue;
                };
                let mine = own.display(r).unwrap_or_default();
                if mine != values[h] {
                    findings.push(
                        r,
                        name,
                        &mine,
                        FindingKind::HouseholdMismatch,
                        &format!(
                            "{name} is {mine:?} here but {:?} for household {id} in the household file {file}: design columns are the household's; correct or remove the person file's column",
                            values[h]
                        ),
                    );
                }
            }
            if let Some((name, from_households, own)) = &factor_column {
                let (value, text) = match (from_households, own) {
                    (Some(values), _) => (values[h], crate::frame::format_number(values[h])),
                    (None, Some(c)) => match (&c.data, c.state[r]) {
                        (ColumnData::Num(v), CellState::Value) => {
                            (v.get(r), crate::frame::format_number(v.get(r)))
                        }
                        _ => (f64::NAN, c.display(r).unwrap_or_default()),
                    },
                    (None, None) => continue,
                };
                if !(value.is_finite() && value >= 1.0) {
                    let text = if value.is_nan() { String::new() } else { text };
                    findings.push(
                        r,
                        name,
                        &text,
                        FindingKind::InvalidWeight,
                        &format!(
                            "selection factor {name} must be a number ≥ 1 (the person weight is the household weight times it){}",
                            if from_households.is_some() {
                                format!("; it is household {id}'s value in the household file {file}")
                            } else {
                                String::new()
                            }
                        ),
                    );
                }
            }
        }
    }
}

/// Append to the persons the columns of their households that the person file does not have
/// (the design columns, household variables), except those `skip` names (derived variables,
/// computed again on the persons); returns each person's household frame row.
pub fn join_households(
    persons: &mut Ingested,
    households: &Ingested,
    link: &HouseholdLink,
    skip: impl Fn(&str) -> bool,
) -> Vec<usize> {
    let of_person: Vec<usize> = {
        let column = persons.frame.column(&link.column);
        (0..persons.frame.n_rows())
            .map(|r| {
                column
                    .and_then(|c| c.display(r))
                    .and_then(|id| link.rows.get(&id).copied())
                    .expect("persons who cannot be linked are quarantined")
            })
            .collect()
    };
    let added: Vec<Column> = households
        .frame
        .columns()
        .iter()
        .filter(|c| persons.frame.column(&c.name).is_none() && !skip(&c.name))
        .map(|c| c.take(&of_person))
        .collect();
    for c in added {
        // Names were checked absent just above.
        let _ = persons.frame.push(c);
    }
    of_person
}
