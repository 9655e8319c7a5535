//! Synthetic survey microdata for any questionnaire: a stratified two-stage sample with realistic
//! design weights, unit nonresponse, skip logic, correlated answers and missing codes, streamed
//! to CSV or Parquet. Used by `cvsurvey synth`, the benchmarks and the comparison with R and svy.
//!
//! # Design
//!
//! Regions `R01..Rnn` are split into urban and rural strata (`stratum = region × urban`). Each
//! stratum has a frame of PSUs (enumeration areas) with a measure of size from an older census
//! and an actual (listed) size that differs from it a little. PSUs are drawn by systematic PPS
//! sampling on the measure of size, then a fixed number of persons by simple random sampling
//! within the PSU, so the design weight of a person in PSU i of stratum h is
//!
//! ```text
//! w_hi = (Σ_k MOS_hk / (m_h · MOS_hi)) · (L_hi / n_hi)
//! ```
//!
//! (inverse first-stage inclusion probability times inverse within-PSU sampling fraction;
//! `L_hi` the listed size, `n_hi` the persons taken). `psu_pop` is `M_h`, the number of PSUs in
//! the stratum frame (one-stage FPC). PSUs are allocated to strata in proportion to population
//! (at least 2 each) and the rows as evenly as possible over PSUs.
//!
//! # Answers
//!
//! Each person has a latent propensity `η = z + u_PSU + e_region + 0.3·urban` with `z ~ N(0, 1)`
//! and a PSU random effect `u ~ N(0, 0.3²)`, shared by the yes/no items (contacts, bribes,
//! victimisation), so that items are correlated and design effects are realistic. Variables are
//! generated in dependency order of their `asked_if` rules, which are evaluated with the
//! questionnaire's own expression engine on the columns generated so far: a question is
//! answered only where its rule is true, blank elsewhere. Don't know / refused codes appear in
//! about 1–2 % of answers of variables that declare them, blanks (item nonresponse) in about 1 %
//! of integer answers; numeric answers are uniform over their `range`, except amounts (a
//! positive range whose top is at least 1000 times its bottom, e.g. `[1, 500000]`), which are
//! log-normal, higher with η and heaped on round numbers. Respondent characteristics used for
//! calibration (`sex`, `age`, `age_group`) are always answered. Unit nonrespondents (about 15 %,
//! varying by stratum) carry the frame columns only.
//!
//! # Households and persons
//!
//! A questionnaire with household variables (`level = "household"`) gives two files. The design
//! above then samples households (`--rows` counts them; `hh_weight` is the same formula, the
//! PSU's listed size counting households) into the household file: `hh_id`, `region`, `stratum`,
//! `psu`, `urban`, `psu_pop`, `hh_weight`, `hh_responded` (the `--nonresponse` rate, about 15 %
//! by default), then the household variables, answered by responding households only and drawn
//! with the household's propensity `η`. The roster is always complete: the household size is one
//! plus a Poisson(2.8) count, the eligible adults one plus a Binomial(size − 1, 0.55). The person
//! file has one row per responding household, the adult selected at random among its eligible
//! adults: `resp_id` (household id × 100 + the adult's line), `hh_id`, `responded` (about 10 %
//! nonresponse), then the person variables, answered by respondents with the propensity
//! `u_PSU + e_region + 0.3·urban + 0.5·z_household + √0.75·z_person`: persons share their
//! household's PSU effect and half of its own. Their design weight is `hh_weight ×
//! eligible_adults`. A frame text variable `KEY` of the household file is its id, and a person
//! frame variable `PARENT_KEY` the person file's link to it (the keys of a roster exported by
//! ODK or KoboToolbox, as `questionnaire import FORM.xlsx` drafts them). The margins are
//! households by region and urban/rural (Σ `hh_weight` over the sampled households) and adults
//! by sex and age group (the adults of responding households weighted up for household
//! nonresponse within strata).
//!
//! # Randomness
//!
//! PCG32 ([`crate::replicates::rng::Pcg32`]) seeded with the user's seed, one stream per PSU (the
//! stream selector is the PSU's index; another per PSU for its households' selected persons) and
//! one per stratum and region for the frame, so the file
//! is identical whatever the number of threads and PSUs are generated in parallel, block by block
//! (about 128k rows: one Parquet row group), without holding the whole file in memory. The seed
//! and the generator are written to the Parquet metadata.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{ArrayRef, PrimitiveArray, RecordBatch, StringArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

use crate::frame::{CellState, Column, ColumnData, Frame};
use crate::questionnaire::{EvalState, Level, MissingMeaning, Questionnaire, VarType, Variable};
use crate::replicates::rng::Pcg32;

/// Rows per generated block and per Parquet row group.
pub const BLOCK_ROWS: usize = 131_072;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    /// Sampled persons (rows), respondents and unit nonrespondents; sampled households in a
    /// survey of households and persons.
    pub rows: u64,
    /// Number of regions; strata are region × urban/rural.
    pub regions: u32,
    /// Sampled PSUs; `None`: from `psu_size`, else about one PSU per 333 rows, at least 2 per
    /// stratum.
    pub psus: Option<u32>,
    /// Sampled persons per PSU (the rows are spread as evenly as possible over
    /// ⌈rows / psu_size⌉ PSUs, so no PSU takes more); exclusive with `psus`.
    pub psu_size: Option<u64>,
    /// Seed of the PCG32 streams.
    pub seed: u64,
    /// Mean unit nonresponse rate (it varies by stratum around this value); of households in a
    /// survey of households and persons (about 10 % of their selected adults do not respond).
    pub nonresponse: f64,
}

impl Default for SynthSpec {
    fn default() -> SynthSpec {
        SynthSpec {
            rows: 20_000,
            regions: 12,
            psus: None,
            psu_size: None,
            seed: 1,
            nonresponse: 0.15,
        }
    }
}

/// A generation job: questionnaire, parameters and output files.
#[derive(Debug, Clone)]
pub struct SynthRequest {
    /// Questionnaire file.
    pub questionnaire: PathBuf,
    /// Parameters.
    pub spec: SynthSpec,
    /// Output microdata: `.csv` or `.parquet`.
    pub out: PathBuf,
    /// File format; `None`: from the extension of `out`.
    pub format: Option<Format>,
    /// Optional margins file (`variable,category,total`) for calibration.
    pub margins: Option<PathBuf>,
    /// Where to write a copy of the questionnaire with more region codes, when `regions` exceeds
    /// the codes the questionnaire declares. Default: `<out stem>.questionnaire.toml`.
    pub questionnaire_out: Option<PathBuf>,
}

/// What was generated.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSummary {
    /// Rows written.
    pub rows: u64,
    /// Respondents among them.
    pub respondents: u64,
    /// Strata.
    pub strata: usize,
    /// Sampled PSUs.
    pub psus: usize,
    /// Population size (persons) of the frame, the total of every margin.
    pub population: f64,
    /// Columns written, in file order.
    pub columns: Vec<String>,
    /// Questionnaire describing the file (the input, or the copy with more region codes).
    pub questionnaire: PathBuf,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// The person file of a survey of households and persons (then `rows`, `respondents` and
    /// `columns` above are the household file's); `None` for a single-unit questionnaire.
    pub persons: Option<PersonFile>,
}

/// The person file of a survey of households and persons.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonFile {
    /// Selected persons: one per responding household.
    pub rows: u64,
    /// Responding persons among them.
    pub respondents: u64,
    /// Columns written, in file order.
    pub columns: Vec<String>,
}

impl SynthSummary {
    /// Human-readable summary, one fact per line.
    pub fn text(&self) -> String {
        if let Some(p) = &self.persons {
            let mut s = format!(
                "households {} ({} responding, {} nonresponding)\npersons   {} selected, one adult per responding household ({} respondents, {} nonrespondents)\ndesign    {} strata, {} PSUs, population {} households\nquestionnaire {}\n",
                self.rows,
                self.respondents,
                self.rows - self.respondents,
                p.rows,
                p.respondents,
                p.rows - p.respondents,
                self.strata,
                self.psus,
                self.population,
                self.questionnaire.display()
            );
            for f in &self.files {
                s.push_str(&format!("wrote     {}\n", f.display()));
            }
            return s;
        }
        let mut s = format!(
            "rows      {} ({} respondents, {} unit nonrespondents)\ndesign    {} strata, {} PSUs, population {}\nquestionnaire {}\n",
            self.rows,
            self.respondents,
            self.rows - self.respondents,
            self.strata,
            self.psus,
            self.population,
            self.questionnaire.display()
        );
        for f in &self.files {
            s.push_str(&format!("wrote     {}\n", f.display()));
        }
        s
    }
}

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Impossible parameters.
    #[error("synth: {0}")]
    Parameters(String),
    /// The questionnaire cannot be read or adapted.
    #[error("{}: {message}", path.display())]
    Questionnaire {
        /// Questionnaire file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A skip rule could not be evaluated on the generated columns.
    #[error("synth: skip rule of {variable}: {message}")]
    SkipLogic {
        /// Variable whose `asked_if` failed.
        variable: String,
        /// The evaluator's message.
        message: String,
    },
    /// Writing failed.
    #[error("{}: {message}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// The reason.
        message: String,
    },
}

impl SynthError {
    /// 1 for bad parameters or questionnaire, 2 for I/O.
    pub fn exit_code(&self) -> u8 {
        match self {
            SynthError::Io { .. } => 2,
            _ => 1,
        }
    }
}

/// Generate the file(s) of `req`.
///
/// A questionnaire with household variables gives two files: `<stem>_households.<ext>` and
/// `<stem>_persons.<ext>` next to `out`, or `households.<ext>` and `persons.<ext>` when `out` is
/// a folder (an existing one, or a path ending with `/`; CSV unless `format` says Parquet). Its
/// margins file holds the persons' margins and `household_<name>` next to it the households'.
pub fn generate(req: &SynthRequest) -> Result<SynthSummary, SynthError> {
    let folder_out = is_folder(&req.out);
    let format = match (req.format, folder_out) {
        (Some(f), true) => f,
        (None, true) => Format::Csv,
        (Some(f), false) => f.check_extension(&req.out)?,
        (None, false) => Format::of(&req.out)?,
    };
    let mut q = Questionnaire::load(&req.questionnaire).map_err(|e| SynthError::Questionnaire {
        path: req.questionnaire.clone(),
        message: e.to_string(),
    })?;
    if folder_out && !q.has_households() {
        return Err(SynthError::Parameters(format!(
            "--out {} is a folder, but {} has no household variables and gives one file: name the file, e.g. --out {}",
            req.out.display(),
            req.questionnaire.display(),
            req.out.join("survey.csv").display()
        )));
    }
    let mut files = Vec::new();
    let mut q_path = req.questionnaire.clone();
    if let Some(text) = extended_questionnaire(&q, req.spec.regions)? {
        let path = req.questionnaire_out.clone().unwrap_or_else(|| {
            if folder_out {
                return req.out.join("questionnaire.toml");
            }
            let stem = req
                .out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "synth".into());
            req.out.with_file_name(format!("{stem}.questionnaire.toml"))
        });
        write_file(&path, text.as_bytes())?;
        q = Questionnaire::load(&path).map_err(|e| SynthError::Questionnaire {
            path: path.clone(),
            message: e.to_string(),
        })?;
        files.push(path.clone());
        q_path = path;
    }
    let plan = Plan::new(&q, &req.spec)?;
    let columns = plan.columns.iter().map(|c| c.name.clone()).collect();
    if !plan.two_units {
        let respondents = plan.write(&req.out, format)?;
        files.push(req.out.clone());
        if let Some(m) = &req.margins {
            write_file(m, plan.margins_csv().as_bytes())?;
            files.push(m.clone());
        }
        return Ok(SynthSummary {
            rows: req.spec.rows,
            respondents,
            strata: plan.strata.len(),
            psus: plan.psus.len(),
            population: plan.population,
            columns,
            questionnaire: q_path,
            files,
            persons: None,
        });
    }
    let (households, persons) = unit_paths(&req.out, folder_out, format);
    let tally = plan.write_two(&households, &persons, format)?;
    files.push(households);
    files.push(persons);
    if let Some(m) = &req.margins {
        write_file(m, plan.person_margins_csv(&tally).as_bytes())?;
        let hm = household_margins_path(m);
        write_file(&hm, plan.household_margins_csv().as_bytes())?;
        files.push(hm);
        files.push(m.clone());
    }
    Ok(SynthSummary {
        rows: req.spec.rows,
        respondents: tally.households,
        strata: plan.strata.len(),
        psus: plan.psus.len(),
        population: plan.population,
        columns,
        questionnaire: q_path,
        files,
        persons: Some(PersonFile {
            rows: tally.persons,
            respondents: tally.person_respondents,
            columns: plan.person_columns.iter().map(|c| c.name.clone()).collect(),
        }),
    })
}

/// `--out` names a folder: an existing one, or a path ending with a separator.
fn is_folder(out: &Path) -> bool {
    let text = out.as_os_str().to_string_lossy();
    text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) || out.is_dir()
}

/// The household and person files of a survey of households and persons.
fn unit_paths(out: &Path, folder_out: bool, format: Format) -> (PathBuf, PathBuf) {
    let ext = match out.extension().and_then(|e| e.to_str()) {
        Some(e) if !folder_out => e.to_string(),
        _ => format.name().to_string(),
    };
    if folder_out {
        return (
            out.join(format!("households.{ext}")),
            out.join(format!("persons.{ext}")),
        );
    }
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "synth".into());
    (
        out.with_file_name(format!("{stem}_households.{ext}")),
        out.with_file_name(format!("{stem}_persons.{ext}")),
    )
}

/// `household_<name>` next to the person margins file.
fn household_margins_path(margins: &Path) -> PathBuf {
    let name = margins
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "margins.csv".into());
    margins.with_file_name(format!("household_{name}"))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| SynthError::Io {
            path: dir.to_path_buf(),
            message: format!("cannot create the folder: {e}"),
        })?;
    }
    std::fs::write(path, bytes).map_err(|e| SynthError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Format of the generated microdata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    /// Comma-separated, header line, blanks for missing cells.
    Csv,
    /// Parquet, zstd, one row group per block.
    Parquet,
}

impl Format {
    /// The format asked for, unless the file name says the other one (a `.parquet` file
    /// holding CSV would be misread by every tool that trusts the extension).
    fn check_extension(self, path: &Path) -> Result<Format, SynthError> {
        match Format::of(path) {
            Ok(by_name) if by_name != self => Err(SynthError::Parameters(format!(
                "--format {} but --out {} names a {} file; change one of them",
                self.name(),
                path.display(),
                by_name.name()
            ))),
            _ => Ok(self),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }

    fn of(path: &Path) -> Result<Format, SynthError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(Format::Csv),
            Some("parquet") | Some("pq") => Ok(Format::Parquet),
            _ => Err(SynthError::Parameters(format!(
                "--out {}: the extension must be .csv or .parquet (or give --format csv|parquet)",
                path.display()
            ))),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Questionnaire roles and adaptation

/// Frame and design columns the generator fills itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Id,
    Region,
    Urban,
    Stratum,
    Psu,
    Weight,
    PsuPop,
    Responded,
    /// In the person file of a survey of households and persons: the person's household.
    HouseholdId,
}

const ROLES: [(Role, &str); 8] = [
    (Role::Id, "id"),
    (Role::Region, "region"),
    (Role::Urban, "urban"),
    (Role::Stratum, "stratum"),
    (Role::Psu, "psu"),
    (Role::Weight, "design_weight"),
    (Role::PsuPop, "psu_pop"),
    (Role::Responded, "responded"),
];

/// The household file's frame and design columns, in file order, with their default names.
const HOUSEHOLD_ROLES: [(Role, &str); 8] = [
    (Role::Id, "hh_id"),
    (Role::Region, "region"),
    (Role::Stratum, "stratum"),
    (Role::Psu, "psu"),
    (Role::Urban, "urban"),
    (Role::PsuPop, "psu_pop"),
    (Role::Weight, "hh_weight"),
    (Role::Responded, "hh_responded"),
];

/// The person file's own columns (the household id follows the person id).
const PERSON_ROLES: [(Role, &str); 2] = [(Role::Id, "resp_id"), (Role::Responded, "responded")];

/// The role of a variable; in a survey of households and persons the household file's weight
/// and response columns are also recognised by their household names.
fn role_in(v: &Variable, two_units: bool) -> Option<Role> {
    if two_units {
        match v.name.to_ascii_lowercase().as_str() {
            "hh_weight" => return Some(Role::Weight),
            "hh_responded" => return Some(Role::Responded),
            // An ODK/KoboToolbox roster file names its household in PARENT_KEY (a questionnaire
            // drafted from an XLSForm declares it so).
            "parent_key" if v.frame && v.level == Level::Person => {
                return Some(Role::HouseholdId);
            }
            _ => {}
        }
    }
    role_of(v)
}

fn role_of(v: &Variable) -> Option<Role> {
    let lower = v.name.to_ascii_lowercase();
    if let Some((r, _)) = ROLES.iter().find(|(r, n)| *n == lower && *r != Role::Id) {
        return Some(*r);
    }
    // `KEY`: the submission key of ODK/KoboToolbox exports.
    let id_like =
        lower == "id" || lower == "key" || lower.ends_with("_id") || lower.starts_with("id_");
    (v.frame && id_like && matches!(v.var_type, VarType::Integer | VarType::Text))
        .then_some(Role::Id)
}

/// Region codes for `n` regions: the declared ones when there are enough, else `R01..Rnn`
/// (or `1..n` for numerically coded regions).
fn region_codes(q: &Questionnaire, n: u32) -> Vec<String> {
    let declared = q
        .variables
        .iter()
        .find(|v| role_of(v) == Some(Role::Region))
        .filter(|v| !v.codes.is_empty());
    match declared {
        Some(v) if v.codes.len() >= n as usize => v
            .codes
            .iter()
            .take(n as usize)
            .map(|c| c.code.clone())
            .collect(),
        Some(v) if v.numeric_storage => (1..=n).map(|i| i.to_string()).collect(),
        _ => {
            let width = if n > 99 { 3 } else { 2 };
            (1..=n).map(|i| format!("R{i:0width$}")).collect()
        }
    }
}

/// When the questionnaire's region variable declares fewer codes than `regions`, the text of a
/// copy of the questionnaire whose region codes are `R01..Rnn`; `None` when no copy is needed.
fn extended_questionnaire(q: &Questionnaire, regions: u32) -> Result<Option<String>, SynthError> {
    let Some(v) = q
        .variables
        .iter()
        .find(|v| role_of(v) == Some(Role::Region))
    else {
        return Ok(None);
    };
    if v.codes.is_empty() || v.codes.len() >= regions as usize {
        return Ok(None);
    }
    let fail = |why: &str| SynthError::Questionnaire {
        path: q.source.clone(),
        message: format!(
            "variable {} declares {} codes but --regions {regions} asks for more, and {why}: pass --regions {} or fewer, or declare more codes",
            v.name,
            v.codes.len(),
            v.codes.len()
        ),
    };
    let text = std::fs::read_to_string(&q.source).map_err(|e| SynthError::Questionnaire {
        path: q.source.clone(),
        message: format!("cannot read the questionnaire: {e}"),
    })?;
    let codes = region_codes(q, regions);
    let inline: Vec<String> = codes
        .iter()
        .map(|c| {
            let key = if v.numeric_storage {
                c.clone()
            } else {
                format!("\"{c}\"")
            };
            format!("{key} = \"Region {c}\"")
        })
        .collect();
    let replacement = format!("codes = {{ {} }}", inline.join(", "));
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let name_line = lines.iter().position(|l| {
        let t: String = l.chars().filter(|c| !c.is_whitespace()).collect();
        t == format!("name=\"{}\"", v.name) || t == format!("name='{}'", v.name)
    });
    let Some(start) = name_line else {
        return Err(fail("its declaration was not found in the file"));
    };
    // The variable's table ends at the next table header.
    let mut found = None;
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        let t = l.trim_start();
        if t.starts_with('[') {
            break;
        }
        if t.starts_with("codes") && t[5..].trim_start().starts_with('=') {
            found = Some(i);
            break;
        }
    }
    match found {
        Some(i) if lines[i].trim_end().ends_with('}') => {
            lines[i] = replacement;
            let mut out = lines.join("\n");
            out.push('\n');
            Ok(Some(out))
        }
        _ => Err(fail(
            "its codes are not a one-line inline table that can be rewritten",
        )),
    }
}

// ------------------------------------------------------------------------------------------
// Plan: frame, PSU selection, column generators

#[derive(Debug, Clone)]
struct Stratum {
    region: usize,
    urban: bool,
    /// Persons in the stratum population (Σ listed sizes of its PSUs).
    population: f64,
    /// PSUs in the stratum frame.
    frame_psus: u32,
    /// Unit nonresponse probability (of households in a survey of households and persons).
    nonresponse: f64,
    /// Nonresponse probability of the selected adults of responding households.
    person_nonresponse: f64,
}

#[derive(Debug, Clone)]
struct Psu {
    /// 1-based PSU id, unique over strata.
    id: u64,
    stratum: usize,
    rows: u32,
    /// 0-based index of its first row in the file.
    first_row: u64,
    weight: f64,
}

/// Output column storage.
#[derive(Debug, Clone)]
enum OutType {
    Int,
    Float,
    /// Text from a fixed list of levels.
    Text(Arc<Vec<String>>),
    /// Text ids with this prefix: `P000000001` (persons), `H000000001` (households).
    IdText(char),
}

#[derive(Debug, Clone)]
enum Source {
    Role(Role),
    /// Index into `Plan::gens`.
    Var(usize),
}

#[derive(Debug, Clone)]
struct OutColumn {
    name: String,
    ty: OutType,
    source: Source,
}

/// How one questionnaire variable's answers are drawn.
#[derive(Debug, Clone)]
enum Draw {
    /// Two codes: the first with probability logistic(logit(p) + loading · η).
    Binary { logit_p: f64, loading: f64 },
    /// k ≥ 3 codes: ordered logit on 0.3 · η with cut points giving base shares.
    Ordinal { cuts: Vec<f64> },
    /// Fixed shares (sex, age group), independent of η: cumulative probabilities.
    Fixed { cdf: Vec<f64> },
    /// Age group from the age variable (index into gens) and each code's [low, high].
    FromAge { age: usize, bounds: Vec<(f64, f64)> },
    /// Integer from a table: value `low + j` with cumulative probability `cdf[j]`.
    Table { low: i64, cdf: Vec<f64> },
    /// Count `low + Geometric`, capped at `high`; larger for higher η.
    Count { low: i64, high: i64 },
    /// Eligible adults of a household: 1 + Binomial(size − 1, 0.55) from the household size
    /// (index into gens) when the questionnaire has one, else 1 + Geometric; within
    /// [low, high].
    Adults {
        size: Option<usize>,
        low: i64,
        high: i64,
    },
    /// Uniform integer in [low, high].
    UniformInt { low: i64, high: i64 },
    /// Uniform real in [low, high], two decimals.
    UniformNum { low: f64, high: f64 },
    /// Amount in a positive range spanning three orders of magnitude or more (money, sizes):
    /// log-normal, higher for higher η, heaped on round numbers, within [low, high].
    Amount { low: f64, high: f64 },
    /// Log-normal amount, two decimals.
    LogNormal,
    /// Free text from a small pool.
    Text,
}

#[derive(Debug, Clone)]
struct VarGen {
    /// Index into `q.variables`.
    var: usize,
    draw: Draw,
    /// Stored as numbers (else as text codes indexing `levels`).
    numeric: bool,
    /// Valid codes as numbers (numeric categorical).
    codes_num: Vec<f64>,
    /// Text levels: valid codes then missing codes (text categorical / text).
    levels: Arc<Vec<String>>,
    /// Frame-level text levels: valid codes only (what expressions see).
    value_levels: Arc<Vec<String>>,
    n_valid: usize,
    /// Missing codes that may be drawn: (probability, numeric code, text level index, state).
    missing: Vec<(f64, f64, u32, CellState)>,
    /// Probability of a blank where asked (item nonresponse).
    blank: f64,
    /// Filled for nonrespondents too.
    frame: bool,
    /// The file it belongs to in a survey of households and persons.
    level: Level,
}

/// The sample and how to fill it.
#[derive(Debug)]
struct Plan<'q> {
    q: &'q Questionnaire,
    spec: SynthSpec,
    region_codes: Arc<Vec<String>>,
    urban_codes: [String; 2],
    region_effects: Vec<f64>,
    strata: Vec<Stratum>,
    psus: Vec<Psu>,
    /// Columns of the single file, or of the household file of a survey of households and
    /// persons.
    columns: Vec<OutColumn>,
    /// Columns of the person file; empty for a single-unit questionnaire.
    person_columns: Vec<OutColumn>,
    /// The questionnaire has household variables: a household file and a person file.
    two_units: bool,
    /// Generator of the number of eligible adults (the selected person's line number is drawn
    /// among them).
    adults_gen: Option<usize>,
    /// Variable generators in generation (dependency) order.
    gens: Vec<VarGen>,
    /// Population of the frame (persons, or households in a survey of households and persons).
    population: f64,
    sex: Option<(usize, Vec<f64>)>,
    age_group: Option<(usize, Vec<f64>)>,
}

/// Stream selectors for the frame draws, far above any PSU index.
const STREAM_REGION: u64 = 1 << 40;
const STREAM_STRATUM: u64 = 2 << 40;
/// Stream selectors of the selected persons of a PSU's households: this plus the PSU's index.
const STREAM_PERSON: u64 = 3 << 40;

fn uniform(rng: &mut Pcg32) -> f64 {
    (f64::from(rng.next_u32()) + 0.5) / 4_294_967_296.0
}

fn normal(rng: &mut Pcg32) -> f64 {
    let u1 = uniform(rng);
    let u2 = uniform(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// FNV-1a of a name and a salt, mapped to [0, 1): stable item parameters.
fn name_unit(name: &str, salt: u64) -> f64 {
    let mut h: u64 = 0xcbf29ce484222325 ^ salt.wrapping_mul(0x9e3779b97f4a7c15);
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn draw_cdf(cdf: &[f64], u: f64) -> usize {
    cdf.iter().position(|&c| u < c).unwrap_or(cdf.len() - 1)
}

fn cdf_of(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    cdf
}

/// Base prevalence and loading on the latent propensity of a yes/no item, from its name.
fn binary_profile(name: &str) -> (f64, f64) {
    let n = name.to_ascii_lowercase();
    let table: [(&str, f64); 10] = [
        ("report", 0.25),
        ("contact", 0.30),
        ("bribe", 0.15),
        ("robbery", 0.03),
        ("assault", 0.06),
        ("burglary", 0.05),
        ("theft", 0.10),
        ("fraud", 0.07),
        ("_12m", 0.08),
        ("victim", 0.08),
    ];
    match table.iter().find(|(k, _)| n.contains(k)) {
        Some(&(_, p)) => (p, 0.7),
        None => (0.15 + 0.45 * name_unit(name, 1), 0.4),
    }
}

/// A numeric range of amounts: positive, the top at least 1000 times the bottom (`[1, 500000]`
/// for a payment in currency units; not `[0, 5000]`, which may hold zeros, nor a score).
fn is_amount_range(low: f64, high: f64) -> bool {
    low > 0.0 && high.is_finite() && high >= 1000.0 * low
}

/// An amount in [low, high] from a standard normal `z`, the propensity `eta` and a uniform `u`.
///
/// Log-normal: the median is `low · (high/low)^0.4` (about 190 in [1, 500000]), the spread on the
/// log scale a tenth of the range's (so the top is practically never reached), plus `0.15 · η`,
/// which carries the region, urban and PSU effects. Half of the amounts are heaped on a round
/// number (multiples of half a power of ten: 3,700 → 3,500, 190 → 200, 12 → 10), as people
/// report them; the others are kept to whole units when `low ≥ 1`, else to two decimals.
fn amount(low: f64, high: f64, z: f64, eta: f64, u: f64) -> f64 {
    let span = (high / low).ln();
    let x = (low.ln() + 0.4 * span + 0.1 * span * z + 0.15 * eta).exp();
    let whole = low >= 1.0;
    let y = if u < 0.5 && x >= 10.0 {
        let step = 10f64.powf(x.log10().floor()) / 2.0;
        (x / step).round() * step
    } else if whole {
        x.round()
    } else {
        (x * 100.0).round() / 100.0
    };
    if whole {
        y.clamp(low.ceil(), high.floor())
    } else {
        y.clamp(low, high)
    }
}

fn is_sex(name: &str) -> bool {
    matches!(name.to_ascii_lowercase().as_str(), "sex" | "gender")
}

fn is_age(v: &Variable) -> bool {
    let n = v.name.to_ascii_lowercase();
    v.var_type == VarType::Integer
        && (n == "age" || n.starts_with("age_") && n.contains("year"))
        && drawn_range(v).is_some_and(|(lo, hi)| lo >= 0.0 && hi - lo >= 20.0)
}

/// How far past its finite end values of a range with an open end are drawn.
const OPEN_RANGE_SPAN: f64 = 1000.0;

/// The range values are drawn from: the variable's, an open end (`[0, inf]`) closed
/// [`OPEN_RANGE_SPAN`] past the other.
fn drawn_range(v: &Variable) -> Option<(f64, f64)> {
    match v.range? {
        (lo, hi) if lo.is_finite() && hi.is_finite() => Some((lo, hi)),
        (lo, _) if lo.is_finite() => Some((lo, lo + OPEN_RANGE_SPAN)),
        (_, hi) if hi.is_finite() => Some((hi - OPEN_RANGE_SPAN, hi)),
        _ => None,
    }
}

/// The number of members of a household (an integer variable of the household roster).
fn is_household_size(v: &Variable) -> bool {
    v.var_type == VarType::Integer
        && v.level == Level::Household
        && matches!(
            v.name.to_ascii_lowercase().as_str(),
            "hh_size" | "household_size" | "hhsize" | "hh_members"
        )
}

/// The number of adults eligible for selection in a household: the selection factor of the
/// randomly selected adult.
fn is_eligible_adults(v: &Variable) -> bool {
    v.var_type == VarType::Integer
        && v.level == Level::Household
        && matches!(
            v.name.to_ascii_lowercase().as_str(),
            "eligible_adults" | "n_eligible" | "hh_adults" | "n_adults" | "adults"
        )
}

/// Relative frequencies of household sizes `low..=high`: one plus a Poisson(2.8) count, a mean
/// of about 3.8 members as in many victimisation survey countries.
fn household_size_weights(low: i64, high: i64) -> Vec<f64> {
    (low..=high.max(low))
        .map(|k| {
            let j = (k - 1).max(0);
            let log_fact: f64 = (1..=j).map(|i| (i as f64).ln()).sum();
            (j as f64 * 2.8f64.ln() - 2.8 - log_fact).exp()
        })
        .collect()
}

fn is_age_group(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "age_group" | "agegroup" | "age_grp" | "agegrp"
    )
}

/// `"18-29"` → (18, 29); `"60+"` → (60, ∞).
fn age_bounds(label: &str) -> Option<(f64, f64)> {
    let t = label.trim();
    if let Some(lo) = t.strip_suffix('+') {
        return lo.trim().parse().ok().map(|lo| (lo, f64::INFINITY));
    }
    let (a, b) = t.split_once(['-', '–'])?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Declared (and parsed) missing codes of a variable that the generator may draw, with their
/// probabilities: don't know ~1.2 %, refused ~0.6 %, other missing kinds ~0.4 %.
fn missing_draws(v: &Variable, n_valid: usize) -> Vec<(f64, f64, u32, CellState)> {
    let mut out = Vec::new();
    for (k, m) in v.missing.iter().enumerate() {
        let (p, state) = match m.meaning {
            MissingMeaning::DontKnow => (0.012, CellState::DontKnow),
            MissingMeaning::Refused => (0.006, CellState::Refused),
            MissingMeaning::NoResponse => (0.004, CellState::NoResponse),
            MissingMeaning::Other => (0.004, CellState::OtherMissing),
            MissingMeaning::NotApplicable => continue,
        };
        let num = m.code.trim().parse::<f64>().unwrap_or(f64::NAN);
        if v.numeric_storage && !num.is_finite() {
            continue;
        }
        out.push((p, num, (n_valid + k) as u32, state));
    }
    out
}

impl<'q> Plan<'q> {
    fn new(q: &'q Questionnaire, spec: &SynthSpec) -> Result<Plan<'q>, SynthError> {
        let bad = |m: String| Err(SynthError::Parameters(m));
        if spec.rows == 0 {
            return bad("--rows must be at least 1".into());
        }
        if spec.regions == 0 {
            return bad("--regions must be at least 1".into());
        }
        if !(0.0..0.95).contains(&spec.nonresponse) {
            return bad(format!(
                "--nonresponse {} must be in [0, 0.95)",
                spec.nonresponse
            ));
        }
        let n_strata = spec.regions as u64 * 2;
        let psus = match (spec.psus, spec.psu_size) {
            (Some(_), Some(_)) => {
                return bad("give --psus or --psu-size, not both".into());
            }
            (Some(p), None) => u64::from(p),
            (None, Some(0)) => {
                return bad("--psu-size 0: a PSU needs at least one sampled person".into());
            }
            (None, Some(size)) if size > spec.rows => {
                return bad(format!(
                    "--psu-size {size} is larger than --rows {}: use a --psu-size of at most {} (or more rows)",
                    spec.rows, spec.rows
                ));
            }
            (None, Some(size)) => spec.rows.div_ceil(size),
            (None, None) => (spec.rows / 333).max(2 * n_strata),
        };
        if psus < 2 * n_strata {
            let asked = match spec.psu_size {
                Some(size) => format!("--psu-size {size} gives {psus} PSUs, "),
                None => format!("--psus {psus} gives "),
            };
            let fix = match spec.psu_size {
                Some(_) => format!(
                    "a --psu-size of at most {}",
                    (spec.rows / (2 * n_strata)).max(1)
                ),
                None => format!("--psus {} or more", 2 * n_strata),
            };
            return bad(format!(
                "{asked}fewer than 2 PSUs per stratum ({n_strata} strata: {} regions × urban/rural); use {fix}, or fewer regions",
                spec.regions,
            ));
        }
        if psus > spec.rows {
            return bad(format!(
                "{psus} PSUs for {} rows: every PSU needs at least one sampled person; use more --rows or fewer --psus{}",
                spec.rows,
                if spec.psus.is_none() {
                    format!(
                        " (2 per stratum × {n_strata} strata need {} rows)",
                        2 * n_strata
                    )
                } else {
                    String::new()
                }
            ));
        }
        if psus > u64::from(u32::MAX) {
            return bad(format!("--psus {psus} is too large"));
        }
        let region_codes = Arc::new(region_codes(q, spec.regions));
        let urban_codes = match q.variables.iter().find(|v| role_of(v) == Some(Role::Urban)) {
            Some(v) if v.codes.len() >= 2 => [v.codes[0].code.clone(), v.codes[1].code.clone()],
            _ => ["1".to_string(), "2".to_string()],
        };

        // Regions: size, urban share and effect on the answers.
        let mut sizes = Vec::new();
        let mut region_effects = Vec::new();
        for g in 0..spec.regions as u64 {
            let mut rng = Pcg32::new(spec.seed, STREAM_REGION + g);
            let size = (0.5 * normal(&mut rng)).exp();
            let urban_share = 0.35 + 0.4 * uniform(&mut rng);
            region_effects.push(0.3 * normal(&mut rng));
            sizes.push((size * urban_share, size * (1.0 - urban_share)));
        }
        let shares: Vec<f64> = sizes.iter().flat_map(|&(u, r)| [u, r]).collect();
        let total_share: f64 = shares.iter().sum();

        // PSUs per stratum: 2 each, the rest in proportion to size (largest remainder).
        let extra = psus - 2 * n_strata;
        let quotas: Vec<f64> = shares
            .iter()
            .map(|s| s / total_share * extra as f64)
            .collect();
        let mut m: Vec<u64> = quotas.iter().map(|x| 2 + x.floor() as u64).collect();
        let mut left = psus - m.iter().sum::<u64>();
        let mut order: Vec<usize> = (0..m.len()).collect();
        order.sort_by(|&a, &b| {
            let fa = quotas[a] - quotas[a].floor();
            let fb = quotas[b] - quotas[b].floor();
            fb.total_cmp(&fa).then(a.cmp(&b))
        });
        for &h in order.iter().cycle() {
            if left == 0 {
                break;
            }
            m[h] += 1;
            left -= 1;
        }

        // Rows per PSU: as even as possible.
        let base = spec.rows / psus;
        let rem = spec.rows % psus;
        let take_max = base + u64::from(rem > 0);
        let mean_size = (4 * take_max).max(200) as f64;

        // Stratum frames and systematic PPS selection.
        let mut strata = Vec::new();
        let mut selected = Vec::new();
        let mut k_global = 0u64;
        let mut first_row = 0u64;
        for (h, &m_h) in m.iter().enumerate() {
            let mut rng = Pcg32::new(spec.seed, STREAM_STRATUM + h as u64);
            let urban = h % 2 == 0;
            let fraction = 1.0 / (6.0 + 8.0 * uniform(&mut rng));
            let frame_psus = ((m_h as f64 / fraction).round() as u64).max(3 * m_h);
            let mut mos: Vec<f64> = (0..frame_psus)
                .map(|_| mean_size * (0.45 * normal(&mut rng) - 0.1).exp())
                .collect();
            let listed: Vec<f64> = mos
                .iter()
                .map(|x| {
                    (x * (0.12 * normal(&mut rng)).exp())
                        .round()
                        .max(take_max as f64)
                })
                .collect();
            // Cap the measures so that no inclusion probability reaches 1.
            for _ in 0..20 {
                let cap = 0.9 * mos.iter().sum::<f64>() / m_h as f64;
                if mos.iter().all(|&x| x <= cap) {
                    break;
                }
                for x in &mut mos {
                    *x = x.min(cap);
                }
            }
            let total_mos: f64 = mos.iter().sum();
            let interval = total_mos / m_h as f64;
            let start = uniform(&mut rng) * interval;
            let mut cum = 0.0;
            let mut j = 0u64;
            for (i, &x) in mos.iter().enumerate() {
                cum += x;
                while j < m_h && start + j as f64 * interval < cum {
                    let rows = base + u64::from(k_global < rem);
                    let weight = total_mos / (m_h as f64 * x) * (listed[i] / rows as f64);
                    selected.push(Psu {
                        id: k_global + 1,
                        stratum: h,
                        rows: rows as u32,
                        first_row,
                        weight,
                    });
                    first_row += rows;
                    k_global += 1;
                    j += 1;
                }
            }
            let shift = if urban { 0.04 } else { -0.04 };
            let nonresponse = if spec.nonresponse == 0.0 {
                0.0
            } else {
                (spec.nonresponse + shift + 0.03 * normal(&mut rng)).clamp(0.01, 0.9)
            };
            strata.push(Stratum {
                region: h / 2,
                urban,
                population: listed.iter().sum(),
                frame_psus: frame_psus as u32,
                nonresponse,
                // About 10 %, a little higher in towns, as among households.
                person_nonresponse: if spec.nonresponse == 0.0 {
                    0.0
                } else if urban {
                    0.12
                } else {
                    0.08
                },
            });
        }
        debug_assert_eq!(first_row, spec.rows);
        let population = strata.iter().map(|s| s.population).sum();

        let mut plan = Plan {
            q,
            spec: spec.clone(),
            region_codes,
            urban_codes,
            region_effects,
            strata,
            psus: selected,
            columns: Vec::new(),
            person_columns: Vec::new(),
            two_units: q.has_households(),
            adults_gen: None,
            gens: Vec::new(),
            population,
            sex: None,
            age_group: None,
        };
        plan.plan_columns()?;
        Ok(plan)
    }

    /// Output columns (questionnaire order; undeclared frame columns first) and generators in
    /// dependency order. In a survey of households and persons, each file has its own columns:
    /// the household file the frame and design columns and the household variables, the person
    /// file the person id, the household id and response, then the person variables.
    fn plan_columns(&mut self) -> Result<(), SynthError> {
        let q = self.q;
        let two_units = self.two_units;
        let region_levels = self.region_codes.clone();
        let stratum_levels = Arc::new(self.stratum_names());
        let urban_levels = Arc::new(self.urban_codes.to_vec());
        let role_type = |role: Role, v: Option<&Variable>, prefix: char| -> OutType {
            match (role, v) {
                (Role::Region, Some(v)) if v.numeric_storage => OutType::Int,
                (Role::Region, _) => OutType::Text(region_levels.clone()),
                (Role::Stratum, Some(v)) if v.numeric_storage => OutType::Int,
                (Role::Stratum, _) => OutType::Text(stratum_levels.clone()),
                (Role::Urban, Some(v)) if !v.numeric_storage => OutType::Text(urban_levels.clone()),
                (Role::Id, Some(v)) if !v.numeric_storage => OutType::IdText(prefix),
                (Role::Weight, _) => OutType::Float,
                _ => OutType::Int,
            }
        };
        // Generation order: skip rules (and age group from age, eligible adults from the
        // household size) after what they read.
        let names: Vec<&str> = q.variables.iter().map(|v| v.name.as_str()).collect();
        let age_index = q.variables.iter().position(is_age);
        let size_index = q
            .variables
            .iter()
            .position(|v| two_units && is_household_size(v));
        let deps: Vec<Vec<usize>> = q
            .variables
            .iter()
            .map(|v| {
                let mut d: Vec<usize> = v
                    .asked_if
                    .iter()
                    .flat_map(|e| e.variables())
                    .filter_map(|n| names.iter().position(|x| *x == n))
                    .collect();
                if is_age_group(&v.name)
                    && let Some(a) = age_index
                {
                    d.push(a);
                }
                if two_units
                    && is_eligible_adults(v)
                    && let Some(h) = size_index
                {
                    d.push(h);
                }
                d
            })
            .collect();
        let mut done = vec![false; names.len()];
        let mut order = Vec::new();
        while order.len() < names.len() {
            let before = order.len();
            for i in 0..names.len() {
                if !done[i] && deps[i].iter().all(|&d| done[d] || d == i) {
                    done[i] = true;
                    order.push(i);
                }
            }
            if order.len() == before {
                return Err(SynthError::Questionnaire {
                    path: q.source.clone(),
                    message: "asked_if rules refer to each other in a cycle".into(),
                });
            }
        }
        let mut gen_of = vec![usize::MAX; names.len()];
        for &i in &order {
            let v = &q.variables[i];
            if role_in(v, two_units).is_some() {
                continue;
            }
            gen_of[i] = self.gens.len();
            let g = self.var_gen(
                i,
                age_index.map(|a| gen_of[a]),
                size_index.map(|h| gen_of[h]),
            )?;
            if two_units && v.level == Level::Household && is_eligible_adults(v) {
                self.adults_gen = Some(self.gens.len());
            }
            self.gens.push(g);
        }
        let file_columns = |level: Option<Level>, roles: &[(Role, &str)], prefix: char| {
            let in_file = |v: &&Variable| level.is_none_or(|l| v.level == l);
            let declared_roles: Vec<Role> = q
                .variables
                .iter()
                .filter(in_file)
                .filter_map(|v| role_in(v, two_units))
                .collect();
            let mut columns: Vec<OutColumn> = roles
                .iter()
                .filter(|(role, _)| !declared_roles.contains(role))
                .map(|&(role, name)| OutColumn {
                    name: name.to_string(),
                    ty: role_type(role, None, prefix),
                    source: Source::Role(role),
                })
                .collect();
            for (i, v) in q.variables.iter().enumerate() {
                if !in_file(&v) {
                    continue;
                }
                let (ty, source) = match role_in(v, two_units) {
                    Some(role) => (role_type(role, Some(v), prefix), Source::Role(role)),
                    None => {
                        let g = &self.gens[gen_of[i]];
                        let ty = if !g.numeric {
                            OutType::Text(g.levels.clone())
                        } else if v.var_type == VarType::Numeric
                            || g.codes_num.iter().any(|c| c.fract() != 0.0)
                            || g.missing.iter().any(|m| m.1.fract() != 0.0)
                        {
                            OutType::Float
                        } else {
                            OutType::Int
                        };
                        (ty, Source::Var(gen_of[i]))
                    }
                };
                columns.push(OutColumn {
                    name: v.name.clone(),
                    ty,
                    source,
                });
            }
            columns
        };
        if !two_units {
            self.columns = file_columns(None, &ROLES, 'P');
            return Ok(());
        }
        let households = file_columns(Some(Level::Household), &HOUSEHOLD_ROLES, 'H');
        let mut persons = file_columns(Some(Level::Person), &PERSON_ROLES, 'P');
        // The link to the household: the household file's id, right after the person id.
        let household_id = households
            .iter()
            .find(|c| matches!(c.source, Source::Role(Role::Id)))
            .map(|c| OutColumn {
                name: c.name.clone(),
                ty: c.ty.clone(),
                source: Source::Role(Role::HouseholdId),
            });
        let after_id = persons
            .iter()
            .position(|c| matches!(c.source, Source::Role(Role::Id)))
            .map_or(0, |k| k + 1);
        let declared_link = persons
            .iter()
            .position(|p| matches!(p.source, Source::Role(Role::HouseholdId)));
        if let (Some(k), Some(c)) = (declared_link, &household_id) {
            // The person file declares its own link column (PARENT_KEY): it takes the household
            // id's values, written as the household file writes them.
            persons[k].ty = c.ty.clone();
        } else if let Some(c) = household_id {
            if persons.iter().any(|p| p.name == c.name) {
                return Err(SynthError::Questionnaire {
                    path: q.source.clone(),
                    message: format!(
                        "the household id {} is also a person variable: declare it once, with level = \"household\"",
                        c.name
                    ),
                });
            }
            persons.insert(after_id, c);
        }
        self.columns = households;
        self.person_columns = persons;
        Ok(())
    }

    fn stratum_names(&self) -> Vec<String> {
        self.strata
            .iter()
            .map(|s| {
                format!(
                    "{}-{}",
                    self.region_codes[s.region],
                    if s.urban { "U" } else { "R" }
                )
            })
            .collect()
    }

    fn var_gen(
        &mut self,
        i: usize,
        age_gen: Option<usize>,
        size_gen: Option<usize>,
    ) -> Result<VarGen, SynthError> {
        let v = &self.q.variables[i];
        let n_valid = v.codes.len();
        // The household roster (size, eligible adults) is always complete in a survey of
        // households and persons: the selection factor cannot be missing for a respondent.
        let roster = self.two_units && (is_household_size(v) || is_eligible_adults(v));
        let protected = is_sex(&v.name) || is_age(v) || is_age_group(&v.name) || v.frame || roster;
        let mut levels: Vec<String> = v.codes.iter().map(|c| c.code.clone()).collect();
        let value_levels = Arc::new(levels.clone());
        levels.extend(v.missing.iter().map(|m| m.code.clone()));
        let codes_num: Vec<f64> = if v.numeric_storage {
            v.codes
                .iter()
                .filter_map(|c| c.code.trim().parse().ok())
                .collect()
        } else {
            Vec::new()
        };
        let draw = match v.var_type {
            VarType::Categorical if n_valid == 0 => Draw::Text,
            VarType::Categorical if is_sex(&v.name) => {
                let w: Vec<f64> = (0..n_valid)
                    .map(|j| {
                        if n_valid == 2 && j == 0 {
                            0.49
                        } else if n_valid == 2 {
                            0.51
                        } else {
                            1.0
                        }
                    })
                    .collect();
                let cdf = cdf_of(&w);
                self.sex = Some((i, w.iter().map(|x| x / w.iter().sum::<f64>()).collect()));
                Draw::Fixed { cdf }
            }
            VarType::Categorical if is_age_group(&v.name) => {
                let bounds: Option<Vec<(f64, f64)>> =
                    v.codes.iter().map(|c| age_bounds(&c.label)).collect();
                let age = age_gen.zip(bounds).and_then(|(a, bounds)| {
                    let age_var = &self.q.variables[self.gens[a].var];
                    let (lo, hi) = drawn_range(age_var)?;
                    let covered = (lo as i64..=hi as i64).all(|x| {
                        bounds
                            .iter()
                            .filter(|b| b.0 <= x as f64 && x as f64 <= b.1)
                            .count()
                            == 1
                    });
                    covered.then_some((a, bounds))
                });
                match age {
                    Some((a, bounds)) => {
                        let Draw::Table { low, cdf } = &self.gens[a].draw else {
                            unreachable!("age is drawn from a table")
                        };
                        let mut probs = vec![0.0; n_valid];
                        let mut prev = 0.0;
                        for (j, &c) in cdf.iter().enumerate() {
                            let x = (*low + j as i64) as f64;
                            if let Some(g) = bounds.iter().position(|b| b.0 <= x && x <= b.1) {
                                probs[g] += c - prev;
                            }
                            prev = c;
                        }
                        self.age_group = Some((i, probs));
                        Draw::FromAge { age: a, bounds }
                    }
                    None => {
                        let w: Vec<f64> =
                            (0..n_valid).map(|j| (n_valid - j) as f64 + 1.0).collect();
                        let total: f64 = w.iter().sum();
                        self.age_group = Some((i, w.iter().map(|x| x / total).collect()));
                        Draw::Fixed { cdf: cdf_of(&w) }
                    }
                }
            }
            VarType::Categorical if n_valid == 2 => {
                let (p, loading) = binary_profile(&v.name);
                Draw::Binary {
                    logit_p: logit(p),
                    loading,
                }
            }
            VarType::Categorical => {
                let w: Vec<f64> = (0..n_valid)
                    .map(|j| 1.0 + (4.0 * name_unit(&v.name, 10 + j as u64)).floor())
                    .collect();
                let cdf = cdf_of(&w);
                let cuts = cdf[..n_valid.saturating_sub(1)]
                    .iter()
                    .map(|&c| logit(c.clamp(1e-6, 1.0 - 1e-6)))
                    .collect();
                if n_valid == 1 {
                    Draw::Fixed { cdf }
                } else {
                    Draw::Ordinal { cuts }
                }
            }
            VarType::Integer if is_age(v) => {
                let (lo, hi) = drawn_range(v).unwrap_or((18.0, 90.0));
                let (lo, hi) = (lo.ceil() as i64, hi.floor() as i64);
                let w: Vec<f64> = (lo..=hi)
                    .map(|x| (hi - x + 1) as f64 + (hi - lo + 1) as f64 / 2.0)
                    .collect();
                Draw::Table {
                    low: lo,
                    cdf: cdf_of(&w),
                }
            }
            VarType::Integer if roster && is_household_size(v) => {
                let (lo, hi) = drawn_range(v).unwrap_or((1.0, 20.0));
                let (lo, hi) = (lo.ceil().max(1.0) as i64, hi.floor().max(1.0) as i64);
                Draw::Table {
                    low: lo,
                    cdf: cdf_of(&household_size_weights(lo, hi)),
                }
            }
            VarType::Integer if roster => {
                let (lo, hi) = drawn_range(v).unwrap_or((1.0, 12.0));
                Draw::Adults {
                    size: size_gen,
                    low: lo.ceil().max(1.0) as i64,
                    high: hi.floor().max(1.0) as i64,
                }
            }
            VarType::Integer => match drawn_range(v) {
                Some((lo, hi)) if hi - lo <= 100.0 => Draw::Count {
                    low: lo.ceil() as i64,
                    high: hi.floor() as i64,
                },
                Some((lo, hi)) => Draw::UniformInt {
                    low: lo.ceil() as i64,
                    high: hi.floor() as i64,
                },
                None => Draw::Count { low: 0, high: 1000 },
            },
            VarType::Numeric => match drawn_range(v) {
                Some((lo, hi)) if is_amount_range(lo, hi) => Draw::Amount { low: lo, high: hi },
                Some((lo, hi)) => Draw::UniformNum { low: lo, high: hi },
                None => Draw::LogNormal,
            },
            VarType::Text => Draw::Text,
        };
        let levels = if matches!(draw, Draw::Text) && n_valid == 0 {
            let mut pool: Vec<String> = (1..=8).map(|k| format!("text{k}")).collect();
            pool.extend(v.missing.iter().map(|m| m.code.clone()));
            Arc::new(pool)
        } else {
            Arc::new(levels)
        };
        let value_levels = if matches!(draw, Draw::Text) && n_valid == 0 {
            Arc::new(levels[..8].to_vec())
        } else {
            value_levels
        };
        let n_valid = value_levels.len().max(n_valid);
        if let Some((lo, hi)) = v.range.filter(|(lo, hi)| lo > hi) {
            return Err(SynthError::Questionnaire {
                path: self.q.source.clone(),
                message: format!("variable {}: range [{lo}, {hi}] is empty", v.name),
            });
        }
        Ok(VarGen {
            var: i,
            draw,
            numeric: v.numeric_storage,
            codes_num,
            levels,
            value_levels,
            n_valid,
            missing: if protected {
                Vec::new()
            } else {
                missing_draws(v, v.codes.len())
            },
            blank: if v.var_type == VarType::Integer && !protected {
                0.01
            } else {
                0.0
            },
            frame: v.frame,
            level: v.level,
        })
    }

    /// The margins file: population totals of sex, age group, region and urban/rural, all
    /// summing to the frame population.
    fn margins_csv(&self) -> String {
        let mut out = String::from("variable,category,total\n");
        let n = self.population;
        let mut push = |name: &str, cats: &[String], totals: Vec<f64>| {
            let mut rounded: Vec<f64> = totals.iter().map(|t| t.round()).collect();
            let last = rounded.len() - 1;
            rounded[last] = n - rounded[..last].iter().sum::<f64>();
            for (c, t) in cats.iter().zip(rounded) {
                out.push_str(&format!("{name},{c},{}\n", crate::frame::format_number(t)));
            }
        };
        for (slot, var) in [(&self.sex, "sex"), (&self.age_group, "age_group")] {
            if let Some((i, probs)) = slot {
                let v = &self.q.variables[*i];
                let _ = var;
                let cats: Vec<String> = v.codes.iter().map(|c| c.code.clone()).collect();
                push(&v.name, &cats, probs.iter().map(|p| p * n).collect());
            }
        }
        let region_name = self.role_name(Role::Region);
        let mut by_region = vec![0.0; self.region_codes.len()];
        let mut by_urban = vec![0.0; 2];
        for s in &self.strata {
            by_region[s.region] += s.population;
            by_urban[usize::from(!s.urban)] += s.population;
        }
        push(&region_name, &self.region_codes, by_region);
        push(&self.role_name(Role::Urban), &self.urban_codes, by_urban);
        out
    }

    /// The household margins of a survey of households and persons: households by region and
    /// by urban/rural, Σ household design weights over all sampled households (the
    /// Horvitz–Thompson estimate of the frame's households), rounded so that both add up to the
    /// same total.
    fn household_margins_csv(&self) -> String {
        let mut out = String::from("variable,category,total\n");
        let mut by_region = vec![0.0; self.region_codes.len()];
        let mut by_urban = vec![0.0; 2];
        for p in &self.psus {
            let s = &self.strata[p.stratum];
            let w = p.weight * f64::from(p.rows);
            by_region[s.region] += w;
            by_urban[usize::from(!s.urban)] += w;
        }
        let n = by_region.iter().sum::<f64>().round();
        push_margin(
            &mut out,
            &self.role_name(Role::Region),
            &self.region_codes,
            &by_region,
            n,
        );
        push_margin(
            &mut out,
            &self.role_name(Role::Urban),
            &self.urban_codes,
            &by_urban,
            n,
        );
        out
    }

    /// The person margins of a survey of households and persons: adults by sex and by age
    /// group. The adult population is estimated from the households, within each stratum
    /// `N_h = (Σ_s w / Σ_r w) · Σ_r w · a`, with `w` the household design weight, `a` the
    /// eligible adults, `s` the sampled and `r` the responding households (a weighting-class
    /// adjustment for household nonresponse), and split by the generator's shares of sex and age
    /// group.
    fn person_margins_csv(&self, tally: &TwoUnitTally) -> String {
        let mut out = String::from("variable,category,total\n");
        let h = self.strata.len();
        let (mut sampled, mut responding, mut adults) = (vec![0.0; h], vec![0.0; h], vec![0.0; h]);
        for p in &self.psus {
            sampled[p.stratum] += p.weight * f64::from(p.rows);
        }
        for t in &tally.psus {
            responding[t.stratum] += t.responding_weight;
            adults[t.stratum] += t.adults_weight;
        }
        let n: f64 = (0..h)
            .filter(|&k| responding[k] > 0.0)
            .map(|k| sampled[k] / responding[k] * adults[k])
            .sum::<f64>()
            .round();
        for (i, probs) in [&self.sex, &self.age_group].into_iter().flatten() {
            let v = &self.q.variables[*i];
            let cats: Vec<String> = v.codes.iter().map(|c| c.code.clone()).collect();
            let totals: Vec<f64> = probs.iter().map(|p| p * n).collect();
            push_margin(&mut out, &v.name, &cats, &totals, n);
        }
        out
    }

    fn role_name(&self, role: Role) -> String {
        self.columns
            .iter()
            .find(|c| matches!(c.source, Source::Role(r) if r == role))
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }

    /// Generate and write every row; returns the number of respondents.
    fn write(&self, out: &Path, format: Format) -> Result<u64, SynthError> {
        let mut sink = FileSink::create(out, format, &self.columns, self.metadata(None))?;
        let mut respondents = 0u64;
        for (block, _) in self.blocks() {
            let block = block?;
            respondents += block.respondents;
            sink.write(&block)?;
        }
        sink.finish()?;
        Ok(respondents)
    }

    /// Generate and write the household and the person file of a survey of households and
    /// persons, block by block.
    fn write_two(
        &self,
        households: &Path,
        persons: &Path,
        format: Format,
    ) -> Result<TwoUnitTally, SynthError> {
        let mut hh_sink = FileSink::create(
            households,
            format,
            &self.columns,
            self.metadata(Some(Level::Household)),
        )?;
        let mut person_sink = FileSink::create(
            persons,
            format,
            &self.person_columns,
            self.metadata(Some(Level::Person)),
        )?;
        let mut tally = TwoUnitTally::default();
        for (block, person_block) in self.blocks() {
            let block = block?;
            tally.households += block.respondents;
            tally.psus.extend(block.tally.iter().copied());
            hh_sink.write(&block)?;
            if let Some(b) = person_block {
                tally.persons += b.rows as u64;
                tally.person_respondents += b.respondents;
                person_sink.write(&b)?;
            }
        }
        hh_sink.finish()?;
        person_sink.finish()?;
        Ok(tally)
    }

    /// The blocks of rows in file order: PSUs grouped into about [`BLOCK_ROWS`] rows (of the
    /// household file in a survey of households and persons), each group generated in parallel.
    fn blocks(&self) -> impl Iterator<Item = (Result<Block, SynthError>, Option<Block>)> + '_ {
        let mut start = 0;
        std::iter::from_fn(move || {
            if start >= self.psus.len() {
                return None;
            }
            let mut end = start;
            let mut rows = 0usize;
            while end < self.psus.len()
                && (rows == 0 || rows + self.psus[end].rows as usize <= BLOCK_ROWS)
            {
                rows += self.psus[end].rows as usize;
                end += 1;
            }
            let parts: Result<Vec<(Block, Option<Block>)>, SynthError> = self.psus[start..end]
                .par_iter()
                .map(|p| self.psu_block(p))
                .collect();
            start = end;
            Some(match parts {
                Err(e) => {
                    start = self.psus.len();
                    (Err(e), None)
                }
                Ok(parts) => {
                    let (units, persons): (Vec<Block>, Vec<Option<Block>>) =
                        parts.into_iter().unzip();
                    let persons: Option<Vec<Block>> = persons.into_iter().collect();
                    (
                        Ok(Block::concat(units, self.columns.len())),
                        persons.map(|p| Block::concat(p, self.person_columns.len())),
                    )
                }
            })
        })
    }

    /// Parquet key-value metadata: generator, seed, size, questionnaire, and the unit of the file
    /// in a survey of households and persons.
    fn metadata(&self, unit: Option<Level>) -> Vec<KeyValue> {
        let mut kv = vec![
            KeyValue::new("cvsurvey.synth.generator".into(), "pcg32".to_string()),
            KeyValue::new("cvsurvey.synth.seed".into(), self.spec.seed.to_string()),
            KeyValue::new("cvsurvey.synth.rows".into(), self.spec.rows.to_string()),
            KeyValue::new(
                "cvsurvey.synth.regions".into(),
                self.spec.regions.to_string(),
            ),
            KeyValue::new("cvsurvey.questionnaire.id".into(), self.q.id.clone()),
        ];
        if let Some(level) = unit {
            kv.push(KeyValue::new(
                "cvsurvey.synth.unit".into(),
                level.as_str().to_string(),
            ));
        }
        kv
    }

    /// Generate the rows of one PSU: its persons, or its households and their selected persons.
    fn psu_block(&self, p: &Psu) -> Result<(Block, Option<Block>), SynthError> {
        let n = p.rows as usize;
        let s = &self.strata[p.stratum];
        let mut rng = Pcg32::new(self.spec.seed, p.id - 1);
        let u_psu = 0.3 * normal(&mut rng);
        let shift = u_psu + self.region_effects[s.region] + if s.urban { 0.3 } else { 0.0 };
        let mut responded: Vec<bool> = (0..n).map(|_| uniform(&mut rng) >= s.nonresponse).collect();
        if !responded.iter().any(|&r| r) {
            responded[0] = true;
        }
        let eta: Vec<f64> = (0..n).map(|_| normal(&mut rng) + shift).collect();
        let units = Units {
            ids: (0..n)
                .map(|r| (p.first_row + r as u64 + 1) as f64)
                .collect(),
            household_ids: Vec::new(),
            responded,
            eta,
        };
        if !self.two_units {
            let (block, _) = self.fill(&self.columns, None, p, &units, &mut rng)?;
            return Ok((block, None));
        }
        let (mut households, values) =
            self.fill(&self.columns, Some(Level::Household), p, &units, &mut rng)?;

        // One adult selected at random in each responding household, with a stream of its own
        // so that the household file does not depend on the person questionnaire.
        let mut rng = Pcg32::new(self.spec.seed, STREAM_PERSON + p.id - 1);
        let selected: Vec<usize> = (0..n).filter(|&r| units.responded[r]).collect();
        let adults: Vec<f64> = selected
            .iter()
            .map(|&r| {
                self.adults_gen
                    .map(|g| values[g][r])
                    .filter(|x| x.is_finite() && *x >= 1.0)
                    .unwrap_or(1.0)
            })
            .collect();
        // The person id is the household id and the selected adult's line in the roster.
        let ids: Vec<f64> = selected
            .iter()
            .zip(&adults)
            .map(|(&r, &a)| {
                let line = 1 + rng.below((a as u32).clamp(1, 99));
                units.ids[r] * 100.0 + f64::from(line)
            })
            .collect();
        let mut responded: Vec<bool> = selected
            .iter()
            .map(|_| uniform(&mut rng) >= s.person_nonresponse)
            .collect();
        if !responded.iter().any(|&r| r) {
            responded[0] = true;
        }
        // Members of a household resemble each other beyond their PSU: half of the household's
        // own propensity, the rest the person's.
        let eta: Vec<f64> = selected
            .iter()
            .map(|&r| shift + 0.5 * (units.eta[r] - shift) + 0.75f64.sqrt() * normal(&mut rng))
            .collect();
        let persons = Units {
            ids,
            household_ids: selected.iter().map(|&r| units.ids[r]).collect(),
            responded,
            eta,
        };
        let (persons, _) = self.fill(
            &self.person_columns,
            Some(Level::Person),
            p,
            &persons,
            &mut rng,
        )?;
        households.tally = vec![PsuTally {
            stratum: p.stratum,
            responding_weight: p.weight * households.respondents as f64,
            adults_weight: p.weight * adults.iter().sum::<f64>(),
        }];
        Ok((households, Some(persons)))
    }

    /// The columns of one file for one PSU's units, drawing the variables of `level` (all when
    /// `None`) in dependency order; also returns every generator's values (NaN where not drawn).
    fn fill(
        &self,
        out: &[OutColumn],
        level: Option<Level>,
        p: &Psu,
        units: &Units,
        rng: &mut Pcg32,
    ) -> Result<(Block, Vec<Vec<f64>>), SynthError> {
        let n = units.responded.len();
        let (responded, eta) = (&units.responded, &units.eta);
        let mut frame = Frame::new(n);
        let mut columns: Vec<Option<Buf>> = vec![None; out.len()];
        // Frame and design columns.
        for (k, c) in out.iter().enumerate() {
            let Source::Role(role) = c.source else {
                continue;
            };
            let (buf, col) = self.role_column(role, &c.ty, p, units);
            columns[k] = Some(buf);
            frame
                .push(Column {
                    name: c.name.clone(),
                    data: col,
                    state: crate::frame::States::AllValue(n),
                })
                .map_err(|e| SynthError::Parameters(e.to_string()))?;
        }
        // Questionnaire variables, in dependency order.
        let mut gen_bufs: Vec<Option<Buf>> = vec![None; self.gens.len()];
        let mut gen_values: Vec<Vec<f64>> = vec![Vec::new(); self.gens.len()];
        for (gi, g) in self.gens.iter().enumerate() {
            if level.is_some_and(|l| g.level != l) {
                continue;
            }
            let v = &self.q.variables[g.var];
            let asked: Vec<bool> = match &v.asked_if {
                None => vec![true; n],
                Some(e) => {
                    let col = e.eval(&frame).map_err(|err| SynthError::SkipLogic {
                        variable: v.name.clone(),
                        message: err.to_string(),
                    })?;
                    col.state
                        .iter()
                        .zip(&col.values)
                        .map(|(s, x)| *s == EvalState::Value && *x != 0.0)
                        .collect()
                }
            };
            let mut state = vec![CellState::NotAsked; n];
            let mut num = vec![f64::NAN; n];
            let mut code = vec![u32::MAX; n];
            let mut value = vec![f64::NAN; n];
            for r in 0..n {
                if !(asked[r] && (responded[r] || g.frame)) {
                    continue;
                }
                // Missing codes and blanks first, then a value.
                let u = uniform(rng);
                let mut acc = 0.0;
                let mut done = false;
                for &(pm, num_code, level, st) in &g.missing {
                    acc += pm;
                    if u < acc {
                        state[r] = st;
                        num[r] = num_code;
                        code[r] = level;
                        done = true;
                        break;
                    }
                }
                if !done && u < acc + g.blank {
                    state[r] = CellState::NoResponse;
                    done = true;
                }
                if done {
                    continue;
                }
                let (x, j) = self.draw_value(g, rng, eta[r], r, &gen_values);
                state[r] = CellState::Value;
                value[r] = x;
                if g.numeric {
                    num[r] = x;
                } else {
                    code[r] = j;
                }
            }
            let data = if g.numeric {
                ColumnData::Num(value.clone().into())
            } else {
                ColumnData::Text {
                    codes: code
                        .iter()
                        .zip(&state)
                        .map(|(&c, s)| if *s == CellState::Value { c } else { u32::MAX })
                        .collect(),
                    levels: g.value_levels.to_vec(),
                }
            };
            frame
                .push(Column {
                    name: v.name.clone(),
                    data,
                    state: state.into(),
                })
                .map_err(|e| SynthError::Parameters(e.to_string()))?;
            gen_bufs[gi] = Some(if g.numeric {
                Buf::Num(num)
            } else {
                Buf::Code(code)
            });
            gen_values[gi] = value;
        }
        for (k, c) in out.iter().enumerate() {
            if let Source::Var(gi) = c.source {
                columns[k] = gen_bufs[gi].take();
            }
        }
        let block = Block {
            rows: n,
            respondents: responded.iter().filter(|&&r| r).count() as u64,
            columns: columns
                .into_iter()
                .map(|b| b.unwrap_or(Buf::Num(vec![f64::NAN; n])))
                .collect(),
            tally: Vec::new(),
        };
        Ok((block, gen_values))
    }

    /// One value: (number, text level index).
    fn draw_value(
        &self,
        g: &VarGen,
        rng: &mut Pcg32,
        eta: f64,
        row: usize,
        gen_values: &[Vec<f64>],
    ) -> (f64, u32) {
        let pick = |j: usize| -> (f64, u32) {
            let x = g.codes_num.get(j).copied().unwrap_or(j as f64);
            (x, j as u32)
        };
        match &g.draw {
            Draw::Binary { logit_p, loading } => {
                let p = logistic(logit_p + loading * (eta - 0.5));
                pick(if uniform(rng) < p { 0 } else { 1 })
            }
            Draw::Ordinal { cuts } => {
                let u = uniform(rng);
                let latent = 0.3 * eta + logit(u);
                pick(cuts.iter().filter(|&&c| latent > c).count())
            }
            Draw::Fixed { cdf } => pick(draw_cdf(cdf, uniform(rng))),
            Draw::FromAge { age, bounds } => {
                let a = gen_values[*age][row];
                let j = bounds
                    .iter()
                    .position(|b| b.0 <= a && a <= b.1)
                    .unwrap_or(0);
                pick(j)
            }
            Draw::Table { low, cdf } => {
                let j = draw_cdf(cdf, uniform(rng));
                ((*low + j as i64) as f64, 0)
            }
            Draw::Count { low, high } => {
                // Geometric number of extra events; more for persons with a higher propensity.
                let q = (0.55 - 0.15 * (logistic(eta) - 0.5)).clamp(0.2, 0.9);
                let mut x = *low;
                while x < *high && uniform(rng) > q {
                    x += 1;
                }
                (x as f64, 0)
            }
            Draw::Adults { size, low, high } => {
                let members = size
                    .map(|g| gen_values[g][row])
                    .filter(|x| x.is_finite() && *x >= 1.0);
                let mut x = 1;
                match members {
                    Some(m) => {
                        for _ in 1..m as i64 {
                            x += i64::from(uniform(rng) < 0.55);
                        }
                    }
                    None => {
                        while x < *high && uniform(rng) > 0.45 {
                            x += 1;
                        }
                    }
                }
                (x.clamp(*low, (*high).max(*low)) as f64, 0)
            }
            Draw::UniformInt { low, high } => {
                let span = (*high - *low + 1).max(1) as u64;
                ((*low + rng.below_u64(span) as i64) as f64, 0)
            }
            Draw::UniformNum { low, high } => {
                let x = low + (high - low) * uniform(rng);
                (((x * 100.0).round() / 100.0).clamp(*low, *high), 0)
            }
            Draw::LogNormal => {
                let x = (3.0 + 0.8 * normal(rng) + 0.1 * eta).exp();
                ((x * 100.0).round() / 100.0, 0)
            }
            Draw::Amount { low, high } => {
                let z = normal(rng);
                (amount(*low, *high, z, eta, uniform(rng)), 0)
            }
            Draw::Text => {
                let j = rng.below(g.n_valid.max(1) as u32) as usize;
                (f64::NAN, j as u32)
            }
        }
    }

    fn role_column(&self, role: Role, ty: &OutType, p: &Psu, units: &Units) -> (Buf, ColumnData) {
        let n = units.responded.len();
        let s = &self.strata[p.stratum];
        let num = |x: f64| -> (Buf, ColumnData) {
            (Buf::Num(vec![x; n]), ColumnData::Num(vec![x; n].into()))
        };
        let text = |levels: &Arc<Vec<String>>, k: u32| -> (Buf, ColumnData) {
            (
                Buf::Code(vec![k; n]),
                ColumnData::Text {
                    codes: vec![k; n],
                    levels: levels.to_vec(),
                },
            )
        };
        match role {
            Role::Id | Role::HouseholdId => {
                let ids = if role == Role::Id {
                    units.ids.clone()
                } else {
                    units.household_ids.clone()
                };
                let data = match ty {
                    OutType::IdText(prefix) => ColumnData::Text {
                        codes: (0..n as u32).collect(),
                        levels: ids.iter().map(|x| id_text(*prefix, *x)).collect(),
                    },
                    _ => ColumnData::Num(ids.clone().into()),
                };
                (Buf::Num(ids), data)
            }
            Role::Region => match ty {
                OutType::Text(levels) => text(levels, s.region as u32),
                _ => num(self.region_codes[s.region]
                    .parse()
                    .unwrap_or((s.region + 1) as f64)),
            },
            Role::Urban => {
                let k = usize::from(!s.urban);
                match ty {
                    OutType::Text(levels) => text(levels, k as u32),
                    _ => num(self.urban_codes[k].parse().unwrap_or((k + 1) as f64)),
                }
            }
            Role::Stratum => match ty {
                OutType::Text(levels) => text(levels, p.stratum as u32),
                _ => num((p.stratum + 1) as f64),
            },
            Role::Psu => num(p.id as f64),
            Role::Weight => num(p.weight),
            Role::PsuPop => num(f64::from(s.frame_psus)),
            Role::Responded => {
                let v: Vec<f64> = units
                    .responded
                    .iter()
                    .map(|&r| if r { 1.0 } else { 0.0 })
                    .collect();
                (Buf::Num(v.clone()), ColumnData::Num(v.into()))
            }
        }
    }
}

/// One output file being written: a `.partial` file renamed when complete.
struct FileSink<'a> {
    out: PathBuf,
    tmp: PathBuf,
    columns: &'a [OutColumn],
    schema: Arc<Schema>,
    sink: Sink,
}

impl<'a> FileSink<'a> {
    fn create(
        out: &Path,
        format: Format,
        columns: &'a [OutColumn],
        metadata: Vec<KeyValue>,
    ) -> Result<FileSink<'a>, SynthError> {
        let io = |e: &dyn std::fmt::Display| SynthError::Io {
            path: out.to_path_buf(),
            message: e.to_string(),
        };
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(&e))?;
        }
        let tmp = out.with_extension(format!(
            "{}.partial",
            out.extension().and_then(|e| e.to_str()).unwrap_or("out")
        ));
        let file = File::create(&tmp).map_err(|e| io(&e))?;
        let schema = schema(columns);
        let sink = match format {
            Format::Csv => {
                let mut w = BufWriter::with_capacity(1 << 20, file);
                let header: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                writeln!(w, "{}", header.join(",")).map_err(|e| io(&e))?;
                Sink::Csv(w)
            }
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(
                        ZstdLevel::try_new(1).map_err(|e| io(&e))?,
                    ))
                    .set_max_row_group_row_count(Some(BLOCK_ROWS))
                    .set_coerce_types(true)
                    .set_key_value_metadata(Some(metadata))
                    .build();
                let writer =
                    ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| io(&e))?;
                Sink::Parquet(Box::new(writer))
            }
        };
        Ok(FileSink {
            out: out.to_path_buf(),
            tmp,
            columns,
            schema,
            sink,
        })
    }

    fn io(&self, e: &dyn std::fmt::Display) -> SynthError {
        SynthError::Io {
            path: self.out.clone(),
            message: e.to_string(),
        }
    }

    fn write(&mut self, block: &Block) -> Result<(), SynthError> {
        let result = match &mut self.sink {
            Sink::Csv(w) => write_csv(w, self.columns, block).map_err(|e| e.to_string()),
            Sink::Parquet(w) => batch(&self.schema, self.columns, block)
                .map_err(|e| e.to_string())
                .and_then(|b| w.write(&b).map_err(|e| e.to_string())),
        };
        result.map_err(|e| self.io(&e))
    }

    fn finish(self) -> Result<(), SynthError> {
        match self.sink {
            Sink::Csv(mut w) => w.flush().map_err(|e| SynthError::Io {
                path: self.out.clone(),
                message: e.to_string(),
            })?,
            Sink::Parquet(w) => {
                w.close().map_err(|e| SynthError::Io {
                    path: self.out.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        std::fs::rename(&self.tmp, &self.out).map_err(|e| SynthError::Io {
            path: self.out.clone(),
            message: e.to_string(),
        })
    }
}

/// What the two files of a survey of households and persons hold.
#[derive(Debug, Default)]
struct TwoUnitTally {
    /// Responding households.
    households: u64,
    /// Selected persons (one per responding household).
    persons: u64,
    /// Responding persons.
    person_respondents: u64,
    psus: Vec<PsuTally>,
}

fn schema(columns: &[OutColumn]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| {
                let ty = match c.ty {
                    OutType::Int => DataType::Int64,
                    OutType::Float => DataType::Float64,
                    OutType::Text(_) | OutType::IdText(_) => DataType::Utf8,
                };
                Field::new(c.name.clone(), ty, true)
            })
            .collect::<Vec<_>>(),
    ))
}

fn batch(
    schema: &Arc<Schema>,
    columns: &[OutColumn],
    block: &Block,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .zip(&block.columns)
        .map(|(c, buf)| -> ArrayRef {
            match (&c.ty, buf) {
                (OutType::Int, Buf::Num(v)) => {
                    let nulls = NullBuffer::from(v.iter().map(|x| !x.is_nan()).collect::<Vec<_>>());
                    let vals: Vec<i64> = v
                        .iter()
                        .map(|x| if x.is_nan() { 0 } else { *x as i64 })
                        .collect();
                    Arc::new(PrimitiveArray::<Int64Type>::new(vals.into(), Some(nulls)))
                }
                (OutType::Float, Buf::Num(v)) => {
                    let nulls = NullBuffer::from(v.iter().map(|x| !x.is_nan()).collect::<Vec<_>>());
                    let vals: Vec<f64> = v
                        .iter()
                        .map(|x| if x.is_nan() { 0.0 } else { *x })
                        .collect();
                    Arc::new(PrimitiveArray::<Float64Type>::new(vals.into(), Some(nulls)))
                }
                (OutType::IdText(prefix), Buf::Num(v)) => Arc::new(StringArray::from_iter(
                    v.iter()
                        .map(|x| (!x.is_nan()).then(|| id_text(*prefix, *x))),
                )),
                (OutType::Text(levels), Buf::Code(v)) => Arc::new(StringArray::from_iter(
                    v.iter()
                        .map(|&k| (k != u32::MAX).then(|| levels[k as usize].as_str())),
                )),
                (_, buf) => {
                    // Unreachable by construction; keep a typed null column.
                    let n = match buf {
                        Buf::Num(v) => v.len(),
                        Buf::Code(c) => c.len(),
                    };
                    Arc::new(StringArray::from_iter(std::iter::repeat_n(None::<&str>, n)))
                }
            }
        })
        .collect();
    RecordBatch::try_new(schema.clone(), arrays)
}

fn write_csv(w: &mut BufWriter<File>, columns: &[OutColumn], block: &Block) -> std::io::Result<()> {
    let mut line = String::with_capacity(512);
    for r in 0..block.rows {
        line.clear();
        for (k, (c, buf)) in columns.iter().zip(&block.columns).enumerate() {
            if k > 0 {
                line.push(',');
            }
            match (&c.ty, buf) {
                (OutType::Int, Buf::Num(v)) if !v[r].is_nan() => {
                    use std::fmt::Write as _;
                    let _ = write!(line, "{}", v[r] as i64);
                }
                (OutType::Float, Buf::Num(v)) if !v[r].is_nan() => {
                    use std::fmt::Write as _;
                    let _ = write!(line, "{}", v[r]);
                }
                (OutType::IdText(prefix), Buf::Num(v)) if !v[r].is_nan() => {
                    line.push_str(&id_text(*prefix, v[r]));
                }
                (OutType::Text(levels), Buf::Code(v)) if v[r] != u32::MAX => {
                    push_csv_field(&mut line, &levels[v[r] as usize]);
                }
                _ => {}
            }
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Margin lines `name,category,total`, totals rounded and the last category taking the rest so
/// that they add up to `n`.
fn push_margin(out: &mut String, name: &str, cats: &[String], totals: &[f64], n: f64) {
    if totals.is_empty() {
        return;
    }
    let mut rounded: Vec<f64> = totals.iter().map(|t| t.round()).collect();
    let last = rounded.len() - 1;
    rounded[last] = n - rounded[..last].iter().sum::<f64>();
    for (c, t) in cats.iter().zip(rounded) {
        out.push_str(&format!("{name},{c},{}\n", crate::frame::format_number(t)));
    }
}

fn id_text(prefix: char, x: f64) -> String {
    format!("{prefix}{:09}", x as u64)
}

fn push_csv_field(line: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&s.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(s);
    }
}

enum Sink {
    Csv(BufWriter<File>),
    Parquet(Box<ArrowWriter<File>>),
}

/// One column of generated rows: numbers (NaN = blank) or text level indices (MAX = blank).
#[derive(Debug, Clone)]
enum Buf {
    Num(Vec<f64>),
    Code(Vec<u32>),
}

struct Block {
    rows: usize,
    respondents: u64,
    columns: Vec<Buf>,
    /// Household file: per PSU, what the person margins are estimated from.
    tally: Vec<PsuTally>,
}

/// A PSU's responding households and their eligible adults, weighted by the household design
/// weight.
#[derive(Debug, Clone, Copy)]
struct PsuTally {
    stratum: usize,
    /// Σ household weight over responding households.
    responding_weight: f64,
    /// Σ household weight × eligible adults over responding households.
    adults_weight: f64,
}

/// The units of one file in one PSU: ids, the household of each (person file), response and
/// latent propensity.
struct Units {
    ids: Vec<f64>,
    household_ids: Vec<f64>,
    responded: Vec<bool>,
    eta: Vec<f64>,
}

impl Block {
    fn concat(parts: Vec<Block>, n_cols: usize) -> Block {
        let rows = parts.iter().map(|b| b.rows).sum();
        let respondents = parts.iter().map(|b| b.respondents).sum();
        let tally = parts.iter().flat_map(|b| b.tally.iter().copied()).collect();
        let mut columns: Vec<Buf> = Vec::with_capacity(n_cols);
        let mut parts: Vec<std::vec::IntoIter<Buf>> =
            parts.into_iter().map(|b| b.columns.into_iter()).collect();
        for _ in 0..n_cols {
            let mut acc: Option<Buf> = None;
            for p in &mut parts {
                let Some(b) = p.next() else { continue };
                acc = Some(match (acc, b) {
                    (None, b) => b,
                    (Some(Buf::Num(mut a)), Buf::Num(b)) => {
                        a.extend(b);
                        Buf::Num(a)
                    }
                    (Some(Buf::Code(mut a)), Buf::Code(b)) => {
                        a.extend(b);
                        Buf::Code(a)
                    }
                    (Some(a), _) => a,
                });
            }
            columns.push(acc.unwrap_or(Buf::Num(Vec::new())));
        }
        Block {
            rows,
            respondents,
            columns,
            tally,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERIC: &str = r#"
[questionnaire]
id = "generic"
version = "0.1"

[[variables]]
name = "household"
type = "integer"
frame = true

[[variables]]
name = "owns_car"
codes = { Y = "Yes", N = "No" }
missing = { DK = "dont_know" }

[[variables]]
name = "cars"
type = "integer"
range = [1, 9]
missing = { 99 = "refused" }
asked_if = 'owns_car == "Y"'

[[variables]]
name = "rating"
codes = { 1 = "Low", 2 = "Mid", 3 = "High" }

[[variables]]
name = "income"
type = "numeric"
asked_if = "rating in [2, 3]"

[[variables]]
name = "note"
type = "text"

[[indicators]]
id = "car_ownership"
kind = "proportion"
value = 'owns_car == "Y"'
universe = 'owns_car in ["Y", "N"]'
"#;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cvsurvey-synth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        dir
    }

    fn generic() -> Questionnaire {
        Questionnaire::from_toml_str(GENERIC, Path::new("generic.toml")).expect("questionnaire")
    }

    fn spec(rows: u64, regions: u32) -> SynthSpec {
        SynthSpec {
            rows,
            regions,
            seed: 7,
            ..SynthSpec::default()
        }
    }

    fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
        let text = std::fs::read_to_string(path).expect("read");
        let mut lines = text.lines();
        let header = lines
            .next()
            .expect("header")
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        (header, rows)
    }

    #[test]
    fn impossible_parameters_are_clear_errors() {
        let q = generic();
        let msg = |s: SynthSpec| match Plan::new(&q, &s) {
            Err(SynthError::Parameters(m)) => m,
            other => panic!("expected a parameter error, got {other:?}"),
        };
        assert!(msg(spec(0, 3)).contains("--rows must be at least 1"));
        assert!(msg(spec(100, 0)).contains("--regions must be at least 1"));
        let m = msg(SynthSpec {
            psus: Some(50),
            ..spec(20, 2)
        });
        assert!(m.contains("50 PSUs for 20 rows"), "{m}");
        let m = msg(SynthSpec {
            psus: Some(5),
            ..spec(1000, 2)
        });
        assert!(m.contains("fewer than 2 PSUs per stratum"), "{m}");
        // Default PSUs need 2 per stratum: 12 strata need 24 rows.
        let m = msg(spec(10, 6));
        assert!(m.contains("need 24 rows"), "{m}");
        let size = |n: u64, rows: u64| SynthSpec {
            psu_size: Some(n),
            ..spec(rows, 2)
        };
        assert!(msg(size(0, 1000)).contains("--psu-size 0"));
        let m = msg(size(1001, 1000));
        assert!(m.contains("larger than --rows 1000"), "{m}");
        let m = msg(size(400, 1000));
        assert!(m.contains("--psu-size 400 gives 3 PSUs"), "{m}");
        assert!(m.contains("at most 125"), "{m}");
        let m = msg(SynthSpec {
            psus: Some(10),
            ..size(10, 1000)
        });
        assert!(m.contains("not both"), "{m}");
    }

    #[test]
    fn psu_size_caps_the_persons_per_psu() {
        let q = generic();
        let plan = Plan::new(
            &q,
            &SynthSpec {
                psu_size: Some(100),
                ..spec(10_050, 3)
            },
        )
        .expect("plan");
        // ⌈10,050 / 100⌉ = 101 PSUs, the rows spread evenly: 100 or 99 persons each.
        assert_eq!(plan.psus.len(), 101);
        assert_eq!(
            plan.psus.iter().map(|p| u64::from(p.rows)).sum::<u64>(),
            10_050
        );
        assert!(plan.psus.iter().all(|p| p.rows == 100 || p.rows == 99));
    }

    #[test]
    fn format_must_agree_with_a_known_extension() {
        assert_eq!(
            Format::Csv.check_extension(Path::new("x.txt")).ok(),
            Some(Format::Csv)
        );
        assert_eq!(
            Format::Csv.check_extension(Path::new("x.CSV")).ok(),
            Some(Format::Csv)
        );
        let e = Format::Csv
            .check_extension(Path::new("x.parquet"))
            .expect_err("csv into .parquet");
        assert!(e.to_string().contains("--format csv"), "{e}");
    }

    #[test]
    fn bad_extension_is_refused() {
        assert!(matches!(
            Format::of(Path::new("x.txt")),
            Err(SynthError::Parameters(_))
        ));
    }

    #[test]
    fn generic_questionnaire_respects_codes_and_skip_logic() {
        let q = generic();
        let plan = Plan::new(&q, &spec(3000, 3)).expect("plan");
        let dir = scratch("generic");
        let out = dir.join("g.csv");
        let respondents = plan.write(&out, Format::Csv).expect("write");
        let (header, rows) = csv_rows(&out);
        assert_eq!(rows.len(), 3000);
        for role in [
            "id",
            "region",
            "urban",
            "stratum",
            "psu",
            "design_weight",
            "psu_pop",
            "responded",
        ] {
            assert!(header.iter().any(|h| h == role), "{role} in {header:?}");
        }
        let col = |n: &str| header.iter().position(|h| h == n).expect("column");
        let (own, cars, resp, rating, income) = (
            col("owns_car"),
            col("cars"),
            col("responded"),
            col("rating"),
            col("income"),
        );
        let mut n_resp = 0;
        let mut saw_dk = false;
        for r in &rows {
            if r[resp] == "0" {
                assert!(
                    r[own].is_empty() && r[cars].is_empty(),
                    "nonrespondent answered: {r:?}"
                );
                assert!(
                    !r[col("household")].is_empty(),
                    "frame variable filled for everyone"
                );
                continue;
            }
            n_resp += 1;
            assert!(["Y", "N", "DK"].contains(&r[own].as_str()), "{r:?}");
            saw_dk |= r[own] == "DK";
            if r[own] != "Y" {
                assert!(
                    r[cars].is_empty(),
                    "cars answered although not asked: {r:?}"
                );
            } else if !r[cars].is_empty() {
                let c: i64 = r[cars].parse().expect("integer");
                assert!((1..=9).contains(&c) || c == 99, "{c}");
            }
            assert!(["1", "2", "3"].contains(&r[rating].as_str()));
            assert_eq!(r[income].is_empty(), r[rating] == "1", "{r:?}");
        }
        assert_eq!(n_resp, respondents);
        assert!(saw_dk, "some don't know answers");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let q = generic();
        let dir = scratch("determinism");
        let write = |seed: u64, name: &str| {
            let plan = Plan::new(
                &q,
                &SynthSpec {
                    seed,
                    ..spec(2000, 2)
                },
            )
            .expect("plan");
            let out = dir.join(name);
            plan.write(&out, Format::Csv).expect("write");
            std::fs::read(out).expect("read")
        };
        let a = write(7, "a.csv");
        assert_eq!(a, write(7, "b.csv"));
        assert_ne!(a, write(8, "c.csv"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn margins_add_up_to_the_population_and_weights_estimate_it() {
        let q = Questionnaire::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("questionnaires/cvs-core.toml"),
        )
        .expect("cvs-core");
        let plan = Plan::new(&q, &spec(30_000, 6)).expect("plan");
        let margins = plan.margins_csv();
        let mut totals: std::collections::BTreeMap<String, f64> = Default::default();
        for line in margins.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            *totals.entry(f[0].to_string()).or_default() += f[2].parse::<f64>().expect("total");
        }
        assert_eq!(
            totals.keys().cloned().collect::<Vec<_>>(),
            ["age_group", "region", "sex", "urban"]
        );
        for (var, t) in &totals {
            assert_eq!(*t, plan.population, "{var}");
        }
        // Σ design weights over the whole sample estimates N (unbiased); here within 5 %.
        let sum: f64 = plan.psus.iter().map(|p| p.weight * f64::from(p.rows)).sum();
        assert!(
            (sum / plan.population - 1.0).abs() < 0.05,
            "{sum} vs {}",
            plan.population
        );
        // Every stratum has at least 2 PSUs and PSU ids are unique.
        for h in 0..plan.strata.len() {
            assert!(plan.psus.iter().filter(|p| p.stratum == h).count() >= 2);
        }
    }

    #[test]
    fn more_regions_than_declared_gives_an_extended_questionnaire() {
        let q = Questionnaire::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("questionnaires/cvs-core.toml"),
        )
        .expect("cvs-core");
        assert!(extended_questionnaire(&q, 12).expect("ok").is_none());
        let text = extended_questionnaire(&q, 40).expect("ok").expect("needed");
        let q40 = Questionnaire::from_toml_str(&text, Path::new("x.toml")).expect("valid");
        let region = q40.variable("region").expect("region");
        assert_eq!(region.codes.len(), 40);
        assert_eq!(region.codes[39].code, "R40");
    }

    #[test]
    fn a_range_with_an_open_end_is_drawn_past_its_finite_end() {
        let q = Questionnaire::from_toml_str(
            r#"
[questionnaire]
id = "open"
version = "0.1"

[[variables]]
name = "visits"
type = "integer"
range = [0, inf]

[[variables]]
name = "balance"
type = "numeric"
range = [-inf, 10]
"#,
            Path::new("open.toml"),
        )
        .expect("questionnaire");
        let plan = Plan::new(&q, &spec(2_000, 4)).expect("plan");
        let dir = scratch("open-range");
        let out = dir.join("o.csv");
        plan.write(&out, Format::Csv).expect("write");
        let (header, rows) = csv_rows(&out);
        let col = |n: &str| header.iter().position(|h| h == n).expect("column");
        let values = |c: usize| -> Vec<f64> {
            rows.iter()
                .filter(|r| !r[c].is_empty())
                .map(|r| r[c].parse::<f64>().expect("number"))
                .collect()
        };
        let (visits, balance) = (values(col("visits")), values(col("balance")));
        assert!(visits.len() > 1000 && balance.len() > 1000);
        assert!(
            visits
                .iter()
                .all(|&x| (0.0..=OPEN_RANGE_SPAN).contains(&x) && x.fract() == 0.0)
        );
        assert!(
            balance
                .iter()
                .all(|&x| (10.0 - OPEN_RANGE_SPAN..=10.0).contains(&x))
        );
        // Not one value: the window is drawn from.
        assert!(visits.iter().any(|&x| x > 1.0));
    }

    #[test]
    fn amounts_are_skewed_heaped_and_within_the_range() {
        assert!(is_amount_range(1.0, 500_000.0));
        assert!(
            !is_amount_range(0.0, 5000.0),
            "a range from 0 stays uniform"
        );
        assert!(!is_amount_range(10.0, 5000.0));
        let q = Questionnaire::from_toml_str(
            r#"
[questionnaire]
id = "amounts"
version = "0.1"

[[variables]]
name = "paid"
codes = { 1 = "Yes", 2 = "No" }

[[variables]]
name = "amount"
type = "numeric"
range = [1, 500000]
missing = { 999998 = "dont_know" }
asked_if = "paid == 1"
"#,
            Path::new("amounts.toml"),
        )
        .expect("questionnaire");
        let plan = Plan::new(&q, &spec(20_000, 4)).expect("plan");
        let dir = scratch("amounts");
        let out = dir.join("a.csv");
        plan.write(&out, Format::Csv).expect("write");
        let (header, rows) = csv_rows(&out);
        let col = |n: &str| header.iter().position(|h| h == n).expect("column");
        let (paid, amount) = (col("paid"), col("amount"));
        let mut x: Vec<f64> = Vec::new();
        let mut dk = 0;
        for r in &rows {
            if r[paid] != "1" {
                assert!(r[amount].is_empty(), "{r:?}");
            } else if r[amount] == "999998" {
                dk += 1;
            } else if !r[amount].is_empty() {
                let v: f64 = r[amount].parse().expect("number");
                assert!((1.0..=500_000.0).contains(&v) && v.fract() == 0.0, "{v}");
                x.push(v);
            }
        }
        assert!(
            x.len() > 1000 && dk > 0,
            "{} amounts, {dk} don't know",
            x.len()
        );
        x.sort_by(f64::total_cmp);
        let pct = |p: f64| x[(p * (x.len() - 1) as f64) as usize];
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        // Skewed to the right, far from the top of the range, heaped on round numbers.
        assert!(pct(0.5) > 50.0 && pct(0.5) < 1000.0, "median {}", pct(0.5));
        assert!(
            mean > pct(0.5) && pct(0.9) > 3.0 * pct(0.5),
            "{mean} {}",
            pct(0.9)
        );
        assert!(pct(1.0) < 100_000.0, "max {}", pct(1.0));
        let round = x.iter().filter(|&&v| v >= 100.0 && v % 50.0 == 0.0).count();
        assert!(
            round * 3 > x.iter().filter(|v| **v >= 100.0).count(),
            "{round}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    const TWO_UNITS: &str = r#"
[questionnaire]
id = "two-units"
version = "0.1"

[[variables]]
name = "hh_size"
type = "integer"
range = [1, 15]
level = "household"

[[variables]]
name = "eligible_adults"
type = "integer"
range = [1, 12]
level = "household"

[[variables]]
name = "burglary_12m"
codes = { 1 = "Yes", 2 = "No" }
level = "household"

[[variables]]
name = "sex"
codes = { 1 = "Male", 2 = "Female" }

[[variables]]
name = "age"
type = "integer"
range = [18, 90]

[[variables]]
name = "age_group"
codes = { 1 = "18-39", 2 = "40+" }
"#;

    #[test]
    fn household_sizes_average_about_four() {
        let w = household_size_weights(1, 20);
        let mean = w
            .iter()
            .enumerate()
            .map(|(j, x)| (j + 1) as f64 * x)
            .sum::<f64>()
            / w.iter().sum::<f64>();
        assert!((mean - 3.8).abs() < 0.01, "{mean}");
        assert_eq!(household_size_weights(3, 5).len(), 3);
    }

    #[test]
    fn without_nonresponse_the_margins_are_the_weighted_households_and_adults() {
        let q = Questionnaire::from_toml_str(TWO_UNITS, Path::new("two.toml")).expect("valid");
        let plan = Plan::new(
            &q,
            &SynthSpec {
                nonresponse: 0.0,
                psu_size: Some(10),
                ..spec(1000, 3)
            },
        )
        .expect("plan");
        let dir = scratch("two-units");
        let (h, p) = (dir.join("h.csv"), dir.join("p.csv"));
        let tally = plan.write_two(&h, &p, Format::Csv).expect("write");
        let (header, households) = csv_rows(&h);
        let col = |n: &str| header.iter().position(|c| c == n).expect("column");
        let (w, a, size) = (col("hh_weight"), col("eligible_adults"), col("hh_size"));
        let num = |r: &Vec<String>, k: usize| r[k].parse::<f64>().expect("number");
        // Every household responds and its one selected adult too.
        assert_eq!(
            (tally.households, tally.persons, tally.person_respondents),
            (1000, 1000, 1000)
        );
        assert!(households.iter().all(|r| num(r, a) <= num(r, size)));
        let total = |csv: &str, var: &str| -> f64 {
            csv.lines()
                .filter(|l| l.starts_with(&format!("{var},")))
                .map(|l| {
                    l.rsplit(',')
                        .next()
                        .expect("total")
                        .parse::<f64>()
                        .expect("number")
                })
                .sum()
        };
        let n_households: f64 = households.iter().map(|r| num(r, w)).sum();
        let hm = plan.household_margins_csv();
        assert_eq!(total(&hm, "region"), n_households.round());
        assert_eq!(total(&hm, "urban"), n_households.round());
        // With every household responding, N = Σ hh_weight × eligible adults.
        let n_adults: f64 = households.iter().map(|r| num(r, w) * num(r, a)).sum();
        let pm = plan.person_margins_csv(&tally);
        assert_eq!(total(&pm, "sex"), n_adults.round());
        assert_eq!(total(&pm, "age_group"), n_adults.round());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_roster_drafted_from_an_xlsform_links_persons_by_parent_key() {
        let q = Questionnaire::from_toml_str(
            r#"
[questionnaire]
id = "roster"
version = "0.1"

[[variables]]
name = "KEY"
type = "text"
frame = true
level = "household"

[[variables]]
name = "rooms"
type = "integer"
range = [1, 9]
level = "household"

[[variables]]
name = "PARENT_KEY"
type = "text"
frame = true
level = "person"

[[variables]]
name = "members/age"
type = "integer"
range = [0, 99]
"#,
            Path::new("roster.toml"),
        )
        .expect("valid");
        let plan = Plan::new(&q, &spec(200, 2)).expect("plan");
        let dir = scratch("roster-keys");
        let (h, p) = (dir.join("h.csv"), dir.join("p.csv"));
        plan.write_two(&h, &p, Format::Csv).expect("write");
        let (h_header, households) = csv_rows(&h);
        let (p_header, persons) = csv_rows(&p);
        let key = h_header.iter().position(|c| c == "KEY").expect("KEY");
        assert!(!h_header.iter().any(|c| c == "hh_id"), "{h_header:?}");
        let parent = p_header
            .iter()
            .position(|c| c == "PARENT_KEY")
            .expect("PARENT_KEY");
        // PARENT_KEY is the household's KEY, the only link column of the person file.
        assert!(
            !p_header.iter().any(|c| c == "KEY" || c == "hh_id"),
            "{p_header:?}"
        );
        let keys: std::collections::HashSet<&str> =
            households.iter().map(|r| r[key].as_str()).collect();
        assert_eq!(keys.len(), households.len());
        assert!(!persons.is_empty());
        assert!(persons.iter().all(|r| keys.contains(r[parent].as_str())));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn age_group_follows_age() {
        assert_eq!(age_bounds("18-29"), Some((18.0, 29.0)));
        assert_eq!(age_bounds("60+"), Some((60.0, f64::INFINITY)));
        assert_eq!(age_bounds("Young"), None);
    }
}
