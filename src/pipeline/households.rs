//! A survey of households and persons (`[data.household]`): the household file is read and
//! estimated as its own unit with household weights; the person file is read with every person
//! linked to its household, the household's columns (design, household variables) joined, and
//! estimated with person weights, household design weight × selection factor. Both units share
//! strata and PSUs. Methods: `docs/pipeline.md`, "Households and persons".

use super::{
    AnswersAfterCopy, Computed, HouseholdPart, PipelineError, RunOptions, StageClock, Unit,
    compute_unit, ingest_spec, numeric_column, read_after_ingest, read_with_spec,
    respondents_with_weights,
};
use crate::config::{HouseholdSpec, PersonWeight, Pipeline};
use crate::frame::{Column, ColumnData, States};
use crate::ingest::households::{HouseholdLink, join_households};
use crate::ingest::{IngestError, Ingested};
use crate::output::OutputFolder;
use crate::questionnaire::{Level, Questionnaire};

/// Frame column of the persons' design weights.
pub const PERSON_DESIGN_WEIGHT: &str = "_person_design_weight";

/// The config as one unit sees it: its file, its design weight, its schemes, and the
/// indicators, domains, contrasts and tests of its level.
fn unit_pipeline(p: &Pipeline, q: &Questionnaire, level: Level) -> Pipeline {
    let mut unit = p.clone();
    let usable = |name: &str| q.level_of(name) == Some(Level::Household) || level == Level::Person;
    let indicator_level = |id: &str| q.indicator(id).map(|i| i.level);
    unit.estimation.indicators = if p.estimation.indicators.iter().any(|i| i == "*") {
        q.indicators
            .iter()
            .filter(|i| i.level == level)
            .map(|i| i.id.clone())
            .collect()
    } else {
        p.estimation
            .indicators
            .iter()
            .filter(|id| indicator_level(id) == Some(level))
            .cloned()
            .collect()
    };
    unit.estimation.domains.retain(|d| d.split(':').all(usable));
    unit.contrasts.retain(|c| {
        c.indicators
            .iter()
            .all(|id| indicator_level(id) == Some(level))
    });
    unit.tests.retain(|t| {
        let household = [&t.rows, &t.cols]
            .iter()
            .all(|v| q.level_of(v) == Some(Level::Household));
        household == (level == Level::Household)
    });
    unit
}

/// The household unit's config: the household file and schemes.
fn household_pipeline(p: &Pipeline, h: &HouseholdSpec, q: &Questionnaire) -> Pipeline {
    let mut ph = unit_pipeline(p, q, Level::Household);
    ph.data.path = h.path.clone();
    ph.data.id = Some(h.id.clone());
    ph.data.response = h.response.clone();
    ph.data.text_format = h.text_format;
    ph.data.sheet = h.sheet.clone();
    ph.weighting = p.household_weighting.clone();
    ph.households = None;
    // Dispositions are read from the person file only.
    ph.fieldwork = None;
    ph
}

/// Contrasts must compare indicators of one level; a household contrast or test crosses by
/// household variables only.
fn check_levels(p: &Pipeline, q: &Questionnaire) -> Result<(), PipelineError> {
    let mut problems = Vec::new();
    for c in &p.contrasts {
        let levels: Vec<Level> = c
            .indicators
            .iter()
            .filter_map(|id| q.indicator(id).map(|i| i.level))
            .collect();
        if levels.contains(&Level::Household) {
            if levels.contains(&Level::Person) {
                problems.push(format!(
                    "contrast \"{}\": compares household and person indicators; make one contrast per level",
                    c.name
                ));
            }
            for v in std::iter::once(&c.by).chain(&c.within) {
                if q.level_of(v) == Some(Level::Person) {
                    problems.push(format!(
                        "contrast \"{}\": household indicators cannot be compared by the person variable {v}",
                        c.name
                    ));
                }
            }
        }
    }
    for w in &p.household_weighting {
        for c in w.nonresponse_classes.iter().flatten() {
            if q.level_of(c) == Some(Level::Person) {
                problems.push(format!(
                    "weighting \"{}\": a household scheme cannot use the person variable {c} as a nonresponse class",
                    w.name
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PipelineError::Reference {
            config: p.config_path.clone(),
            message: problems.join("; "),
        })
    }
}

/// Both files as read and checked: the households, and the persons linked to them with their
/// household's columns joined and the derived variables computed.
pub(super) struct TwoFiles {
    /// The config as the households see it.
    pub ph: Pipeline,
    pub qh: Questionnaire,
    pub households: Ingested,
    /// The config as the persons see it (design weight: [`PERSON_DESIGN_WEIGHT`], added by the
    /// run).
    pub pp: Pipeline,
    pub qp: Questionnaire,
    pub persons: Ingested,
    /// Each person's row in the household frame.
    pub of_person: Vec<usize>,
}

/// Read the household file, then the person file linked to it (`docs/pipeline.md`,
/// "Households and persons", steps 1–3).
pub(super) fn read_two_files(
    p: &Pipeline,
    q: &Questionnaire,
    h: &HouseholdSpec,
    opts: RunOptions<'_>,
) -> Result<TwoFiles, PipelineError> {
    let factor = match &h.person_weight {
        PersonWeight::SelectionFactor(c) => Some(c.clone()),
        _ => None,
    };

    // Households: their own file, design and schemes.
    let qh = q.household_part();
    let ph = household_pipeline(p, h, q);
    let mut spec = ingest_spec(&ph, &qh);
    spec.optional_columns.extend(factor.iter().cloned());
    let households = read_with_spec(&ph, &qh, &spec, opts)?;

    // Persons, each linked to a household and given its columns.
    let mut pp = unit_pipeline(p, q, Level::Person);
    pp.design.weight = PERSON_DESIGN_WEIGHT.to_string();
    pp.weight_from_fpc = false;
    let qp = q.person_part();
    let shared: Vec<String> = p
        .design
        .strata
        .iter()
        .chain(&p.design.psu)
        .chain(&p.design.fpc)
        .cloned()
        .collect();
    let factor_in_households = factor
        .as_deref()
        .is_some_and(|f| households.frame.column(f).is_some());
    let link = HouseholdLink::new(
        &h.person_household_id,
        &households,
        h.path.clone(),
        &h.id,
        &shared,
        factor.as_deref(),
    );
    let q_file = q.person_file_part();
    let mut spec = ingest_spec(&pp, &q_file);
    let in_households = |c: &String| households.frame.column(c).is_some();
    spec.design_columns = vec![h.person_household_id.clone()];
    spec.required_columns.retain(|c| !in_households(c));
    spec.unit_columns
        .retain(|c| q.level_of(c) != Some(Level::Household));
    spec.positive_columns = match &h.person_weight {
        PersonWeight::Column(c) => vec![c.clone()],
        _ => Vec::new(),
    };
    spec.optional_columns = shared.clone();
    if let Some(f) = &factor
        && !factor_in_households
    {
        spec.design_columns.push(f.clone());
    }
    spec.derived = Some(Vec::new());
    spec.household_link = Some(link);
    let mut persons = read_with_spec(&pp, &q_file, &spec, opts)?;
    let link = spec.household_link.take().expect("set above");
    let of_person = join_households(&mut persons, &households, &link, |name| {
        q.derived_variable(name).is_some()
    });
    qp.add_derived_needed(&mut persons.frame, &read_after_ingest(&pp, &qp))
        .map_err(|e| IngestError::Derived(e.to_string()))?;
    Ok(TwoFiles {
        ph,
        qh,
        households,
        pp,
        qp,
        persons,
        of_person,
    })
}

pub(super) fn compute_households_and_persons(
    p: Pipeline,
    q: Questionnaire,
    output: OutputFolder,
    opts: RunOptions<'_>,
    mut clock: StageClock,
) -> Result<Computed, PipelineError> {
    let h = p
        .households
        .clone()
        .expect("a survey with a household file");
    check_levels(&p, &q)?;
    let TwoFiles {
        ph,
        qh,
        mut households,
        mut pp,
        qp,
        mut persons,
        of_person,
    } = read_two_files(&p, &q, &h, opts)?;
    clock.lap("ingest");
    let household_respondents =
        respondents_with_weights(&ph, &mut households, &output, "household_")?;
    let household_weight = numeric_column(&households, &ph.design.weight);
    let person_weight: Vec<f64> = match &h.person_weight {
        PersonWeight::Household => of_person.iter().map(|&k| household_weight[k]).collect(),
        PersonWeight::SelectionFactor(f) => {
            let f = numeric_column(&persons, f);
            of_person
                .iter()
                .zip(&f)
                .map(|(&k, f)| household_weight[k] * f)
                .collect()
        }
        PersonWeight::Column(c) => numeric_column(&persons, c),
    };
    push_weight(&mut persons, PERSON_DESIGN_WEIGHT, person_weight, &p)?;
    let person_respondents = respondents_with_weights(&pp, &mut persons, &output, "")?;

    let mut household_unit = compute_unit(
        &ph,
        &qh,
        &mut households,
        &household_respondents,
        AnswersAfterCopy::Keep,
        opts,
        &mut clock,
    )?;
    for row in &mut household_unit.estimates {
        row.level = Level::Household;
    }

    // Person schemes by the weights they start from: the person design weights, or a
    // household scheme's final weights times the person's conditional selection weight.
    let mut person_unit: Option<Unit> = None;
    let mut bases: Vec<Option<String>> = Vec::new();
    for w in &p.weighting {
        let base = p
            .person_scheme_bases
            .iter()
            .find(|(s, _)| s == &w.name)
            .map(|(_, b)| b.clone());
        if !bases.contains(&base) {
            bases.push(base);
        }
    }
    let person_design = numeric_column(&persons, PERSON_DESIGN_WEIGHT);
    for base in bases {
        let mut pg = pp.clone();
        pg.weighting = p
            .weighting
            .iter()
            .filter(|w| {
                p.person_scheme_bases
                    .iter()
                    .find(|(s, _)| s == &w.name)
                    .map(|(_, b)| b)
                    == base.as_ref()
            })
            .cloned()
            .collect();
        let mut group_warnings = Vec::new();
        if let Some(scheme) = &base {
            let final_weight = household_final_weights(
                &household_unit,
                scheme,
                &household_respondents,
                households.frame.n_rows(),
            );
            let weights: Vec<f64> = of_person
                .iter()
                .zip(&person_design)
                .map(|(&k, &d)| final_weight[k] * d / household_weight[k])
                .collect();
            let column = format!("_person_weight_from_{scheme}");
            persons
                .frame
                .set(Column {
                    name: column.clone(),
                    data: ColumnData::Num(weights.into()),
                    state: States::AllValue(persons.frame.n_rows()),
                })
                .map_err(|_| IngestError::Derived(format!("column {column}")))?;
            pg.design.weight = column;
            if pg
                .variance
                .iter()
                .any(|v| *v != crate::estimate::VarianceMethod::Taylor)
            {
                group_warnings.push(format!(
                    "person schemes {} start from household scheme \"{scheme}\": their replicates redo the person weighting from its full-sample weights (the household adjustment is held fixed in person replicates; docs/pipeline.md)",
                    pg.weighting.iter().map(|w| format!("\"{}\"", w.name)).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        let mut unit = compute_unit(
            &pg,
            &qp,
            &mut persons,
            &person_respondents,
            AnswersAfterCopy::Keep,
            opts,
            &mut clock,
        )?;
        unit.warnings.extend(group_warnings);
        person_unit = Some(match person_unit {
            None => unit,
            Some(mut all) => {
                all.schemes.extend(unit.schemes);
                all.estimates.extend(unit.estimates);
                all.contrasts.extend(unit.contrasts);
                all.tests.extend(unit.tests);
                for w in unit.warnings {
                    if !all.warnings.contains(&w) {
                        all.warnings.push(w);
                    }
                }
                if all.replicate_weights.is_empty() {
                    all.replicate_weights = unit.replicate_weights;
                }
                all
            }
        });
    }
    let mut person_unit = person_unit.expect("at least one person scheme");
    // Households first in every output, then persons.
    let mut estimates = std::mem::take(&mut household_unit.estimates);
    estimates.append(&mut person_unit.estimates);
    person_unit.estimates = estimates;
    let mut contrasts = std::mem::take(&mut household_unit.contrasts);
    contrasts.append(&mut person_unit.contrasts);
    person_unit.contrasts = contrasts;
    let mut tests = std::mem::take(&mut household_unit.tests);
    tests.append(&mut person_unit.tests);
    person_unit.tests = tests;
    let mut warnings: Vec<String> = household_unit
        .warnings
        .iter()
        .map(|w| format!("households: {w}"))
        .collect();
    warnings.append(&mut person_unit.warnings);
    person_unit.warnings = warnings;
    let household = HouseholdPart {
        pipeline: ph,
        ingested: households,
        design: household_unit.design,
        schemes: household_unit.schemes,
        replicate_weights: household_unit.replicate_weights,
    };
    pp.weighting = p.weighting.clone();
    let fieldwork = super::fieldwork_of(&pp, &q, &persons);
    let mut computed = Computed::assemble(
        output,
        opts.timings.then_some(clock),
        pp,
        q,
        persons,
        person_unit,
        Some(Box::new(household)),
    );
    computed.fieldwork = fieldwork;
    Ok(computed)
}

/// A household scheme's final weight of every household frame row (0 for nonrespondents).
fn household_final_weights(
    unit: &Unit,
    scheme: &str,
    respondents: &[usize],
    n_rows: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; n_rows];
    if let Some(s) = unit.schemes.iter().find(|s| s.name == scheme) {
        for (&r, &w) in respondents.iter().zip(&s.weights) {
            out[r] = w;
        }
    }
    out
}

fn push_weight(
    persons: &mut Ingested,
    name: &str,
    weights: Vec<f64>,
    p: &Pipeline,
) -> Result<(), PipelineError> {
    let n = weights.len();
    persons
        .frame
        .push(Column {
            name: name.to_string(),
            data: ColumnData::Num(weights.into()),
            state: States::AllValue(n),
        })
        .map_err(|_| {
            PipelineError::from(IngestError::DuplicateColumn {
                path: p.data.path.clone(),
                column: format!("{name} (the name of the persons' design weights; rename that column of the file)"),
            })
        })
}
