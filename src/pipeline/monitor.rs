//! `cvsurvey monitor`: the fieldwork returns received so far, validated and summarised (AAPOR
//! rates overall and by group, returns per interview date, interviewers who stand out), without
//! weighting or estimation; and the fieldwork report of a full run.

use std::path::Path;

use super::{
    PipelineError, RunOptions, RunReport, numeric_column, output_folder, prepare, read_data,
    report, write_row_reports,
};
use crate::config::{FieldworkSpec, Pipeline};
use crate::design::Design;
use crate::fieldwork::{
    Date, FieldworkReport, Grouping, InterviewerReturns, Outcome, group_rates, interviewer_table,
    returns_by_date,
};
use crate::frame::CellState;
use crate::ingest::{FindingKind, Ingested};
use crate::output::StagedFiles;
use crate::questionnaire::Questionnaire;

/// The label of a case whose group variable is blank.
const BLANK: &str = "(blank)";

/// The fieldwork report of the used rows of `ingested`, whose AAPOR categories are `outcomes`;
/// weighted rates use `weights`, the design weight of every row.
pub(crate) fn fieldwork_report(
    f: &FieldworkSpec,
    q: &Questionnaire,
    ingested: &Ingested,
    outcomes: &[Outcome],
    weights: Option<&[f64]>,
) -> FieldworkReport {
    let frame = &ingested.frame;
    let n = frame.n_rows();
    let labels = |name: &str| -> Vec<String> {
        match frame.column(name) {
            Some(col) => (0..n)
                .map(|r| col.display(r).unwrap_or_else(|| BLANK.to_string()))
                .collect(),
            None => vec![BLANK.to_string(); n],
        }
    };
    let groupings: Vec<Grouping> =
        f.by.iter()
            .map(|v| Grouping::from_labels(v, &labels(v)))
            .collect();
    let rates = group_rates(outcomes, weights, &groupings, f.dispositions.e);

    let (dates, undated) = match &f.interview_date {
        Some(name) => {
            let col = frame.column(name);
            let parsed: Vec<Option<Date>> = (0..n)
                .map(|r| col.and_then(|c| c.display(r)).and_then(|t| Date::parse(&t)))
                .collect();
            let undated = parsed.iter().filter(|d| d.is_none()).count();
            (returns_by_date(&parsed, &ingested.respondent), undated)
        }
        None => (Vec::new(), 0),
    };

    let interviewers = match &f.interviewer {
        Some(name) => {
            let grouping = Grouping::from_labels(name, &labels(name));
            let items = ItemCounts::of(f, q, ingested);
            interviewer_table(
                &InterviewerReturns {
                    interviewer: &grouping,
                    outcomes,
                    respondent: &ingested.respondent,
                    asked: &items.asked,
                    no_response: &items.no_response,
                    dont_know: &items.dont_know,
                    skip_findings: &items.skip_findings,
                },
                f.outlier_z,
            )
        }
        None => Vec::new(),
    };
    FieldworkReport {
        rates,
        dates,
        undated,
        interviewers,
        outlier_z: f.outlier_z,
    }
}

/// Per used row: questions asked, left blank, answered "don't know", and answers recorded
/// where skip logic says the question was not asked (blanked by editing, so still in the row).
struct ItemCounts {
    asked: Vec<u32>,
    no_response: Vec<u32>,
    dont_know: Vec<u32>,
    skip_findings: Vec<u32>,
}

impl ItemCounts {
    fn of(f: &FieldworkSpec, q: &Questionnaire, ingested: &Ingested) -> ItemCounts {
        let frame = &ingested.frame;
        let n = frame.n_rows();
        let mut c = ItemCounts {
            asked: vec![0; n],
            no_response: vec![0; n],
            dont_know: vec![0; n],
            skip_findings: vec![0; n],
        };
        let not_items = [
            Some(&f.disposition),
            f.interviewer.as_ref(),
            f.interview_date.as_ref(),
        ];
        for v in q.variables.iter().filter(|v| !v.frame) {
            if not_items.contains(&Some(&v.name)) {
                continue;
            }
            let Some(col) = frame.column(&v.name) else {
                continue;
            };
            for r in 0..n {
                let state = col.state[r];
                c.asked[r] += u32::from(state != CellState::NotAsked);
                c.no_response[r] += u32::from(state == CellState::NoResponse);
                c.dont_know[r] += u32::from(state == CellState::DontKnow);
            }
        }
        for finding in ingested.findings.iter() {
            if finding.kind == FindingKind::AnsweredNotAsked
                && let Ok(r) = ingested.row_numbers.binary_search(&finding.row)
            {
                c.skip_findings[r] += 1;
            }
        }
        c
    }
}

/// The design weight of every used row: the weight column, or N/n per stage from the FPCs;
/// `None` when they cannot be had (the rates are then unweighted only).
fn design_weights(p: &Pipeline, ingested: &Ingested) -> Option<Vec<f64>> {
    let weights = if p.weight_from_fpc {
        let all: Vec<usize> = (0..ingested.frame.n_rows()).collect();
        Design::weights_from_fpc(&ingested.frame, &all, &p.design).ok()?
    } else {
        numeric_column(ingested, &p.design.weight)
    };
    weights.iter().all(|w| w.is_finite()).then_some(weights)
}

/// Stage `fieldwork.parquet`, `fieldwork.csv` (and, for `monitor`, `fieldwork.html`).
pub(crate) fn stage_fieldwork(
    staged: &mut StagedFiles,
    dir: &Path,
    report: &FieldworkReport,
    metadata: &[(String, String)],
) -> Result<(), PipelineError> {
    crate::output::fieldwork::write_parquet(
        staged,
        &dir.join("fieldwork.parquet"),
        &report.rates,
        metadata,
    )?;
    crate::output::fieldwork::write_csv(staged, &dir.join("fieldwork.csv"), &report.rates)?;
    Ok(())
}

/// `cvsurvey monitor`: validate the returns received so far and write `findings.csv`,
/// `quarantine.csv`, `fieldwork.parquet`, `fieldwork.csv` and `fieldwork.html`. No weighting,
/// no estimation. A survey of households and persons is monitored on its person file, which
/// carries the dispositions.
pub fn monitor(config_path: &Path, opts: RunOptions<'_>) -> Result<RunReport, PipelineError> {
    let (p, q) = prepare(config_path)?;
    let Some(f) = p.fieldwork.clone() else {
        return Err(PipelineError::Reference {
            config: p.config_path.clone(),
            message: "monitor needs final dispositions: add [data] disposition = \"<column of disposition codes>\" and [dispositions] mapping its codes to AAPOR categories".into(),
        });
    };
    let output = output_folder(&p)?;
    let (ingested, households) = match &p.households {
        Some(h) => {
            let two = super::households::read_two_files(&p, &q, h, opts)?;
            (two.persons, Some((two.households, h.path.clone())))
        }
        None => (read_data(&p, &q, opts)?, None),
    };
    let outcomes = ingested.outcomes.clone().unwrap_or_default();
    // Person weights of a two-file survey follow from the household weighting, which monitor
    // does not run: its rates are unweighted.
    let weights = match &p.households {
        Some(_) => None,
        None => design_weights(&p, &ingested),
    };
    let fieldwork = fieldwork_report(&f, &q, &ingested, &outcomes, weights.as_deref());
    let metadata = vec![
        ("cvsurvey_version".to_string(), super::VERSION.to_string()),
        (
            "questionnaire".to_string(),
            format!("{} {}", q.id, q.version),
        ),
        ("data_sha256".to_string(), ingested.sha256.clone()),
    ];
    let mut staged = output.stage();
    write_row_reports(&mut staged, &p.output_dir, &ingested, "")?;
    if let Some((h, _)) = &households {
        write_row_reports(&mut staged, &p.output_dir, h, "household_")?;
    }
    stage_fieldwork(&mut staged, &p.output_dir, &fieldwork, &metadata)?;
    let title = p.title.clone().unwrap_or_else(|| q.title.clone());
    let page = crate::output::html::render_fieldwork_page(
        &title,
        &super::file_name(&p.data.path),
        &fieldwork,
        &crate::output::html::ReturnsSummary {
            rows_read: ingested.rows_read,
            rows_quarantined: ingested.rows_quarantined,
            respondents: ingested.respondent.iter().filter(|&&r| r).count() as u64,
            findings_by_kind: ingested.findings.counts().clone(),
        },
    );
    crate::output::write_text(&mut staged, &p.output_dir.join("fieldwork.html"), &page)?;
    let files = output.commit(staged)?;
    let mut summary = report(&p, &q, &ingested, None, &[], Vec::new(), files);
    if let Some((h, path)) = &households {
        summary.households = Some(super::HouseholdReport::of(h, path, None, &[]));
    }
    summary.warnings.extend(
        fieldwork
            .interviewers
            .iter()
            .filter(|i| i.outlier)
            .map(|i| {
                format!(
                    "interviewer {} stands out among interviewers (robust z beyond {}): see fieldwork.html",
                    i.interviewer, fieldwork.outlier_z
                )
            }),
    );
    Ok(summary)
}
