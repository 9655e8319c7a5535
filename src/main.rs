//! `cvsurvey` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Design-based estimation of corruption and crime-victimization indicators.
#[derive(Debug, Parser)]
#[command(name = "cvsurvey", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate, weight and estimate; write estimates.parquet, quarantine.csv and findings.csv.
    Run {
        /// The pipeline config (TOML).
        config: PathBuf,
        /// Treat any validation finding as an error.
        #[arg(long)]
        strict: bool,
        /// Record wall time per stage in run_summary.json (design and weighting run at the same
        /// time: each is its own wall time).
        #[arg(long)]
        timings: bool,
    },
    /// Run, and put every weighting scheme side by side: writes comparison.parquet too.
    Compare {
        /// The pipeline config (TOML).
        config: PathBuf,
        /// Treat any validation finding as an error.
        #[arg(long)]
        strict: bool,
    },
    /// Check the data against the questionnaire only; write quarantine.csv and findings.csv.
    Validate {
        /// The pipeline config (TOML).
        config: PathBuf,
        /// Treat any validation finding as an error.
        #[arg(long)]
        strict: bool,
    },
    /// Check the fieldwork returns received so far: AAPOR outcome rates overall and by group,
    /// returns per interview date, outlier interviewers; writes fieldwork.parquet, fieldwork.csv,
    /// fieldwork.html, quarantine.csv and findings.csv. No weighting, no estimation.
    Monitor {
        /// The pipeline config (TOML), with [data] disposition and [dispositions].
        config: PathBuf,
        /// Treat any validation finding as an error.
        #[arg(long)]
        strict: bool,
    },
    /// Print a run's estimates as a table: estimate, interval, SE, CV, n and flag.
    Show {
        /// The run's output folder (the config's `[output] dir`).
        dir: PathBuf,
        /// Only this indicator.
        #[arg(long)]
        indicator: Option<String>,
        /// Only the whole population and this domain variable.
        #[arg(long)]
        domain: Option<String>,
        /// Only this weighting scheme.
        #[arg(long)]
        weighting: Option<String>,
        /// Only this interval method (default: the first of each estimate).
        #[arg(long)]
        ci: Option<String>,
    },
    /// Generate synthetic microdata (stratified two-stage sample) for a questionnaire.
    Synth {
        /// The questionnaire (TOML).
        #[arg(long)]
        questionnaire: PathBuf,
        /// Sampled persons (rows), respondents and unit nonrespondents; sampled households when
        /// the questionnaire has household variables.
        #[arg(long)]
        rows: u64,
        /// Regions; strata are region x urban/rural.
        #[arg(long, default_value_t = 12)]
        regions: u32,
        /// Sampled PSUs (default: one per 333 rows, at least 2 per stratum).
        #[arg(long, conflicts_with = "psu_size")]
        psus: Option<u32>,
        /// Sampled persons per PSU: ⌈rows / N⌉ PSUs, the rows spread evenly over them.
        #[arg(long, value_name = "N")]
        psu_size: Option<u64>,
        /// Seed of the PCG32 generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Mean unit nonresponse rate (of households when the questionnaire has household
        /// variables).
        #[arg(long, default_value_t = 0.15)]
        nonresponse: f64,
        /// Output file: .csv or .parquet. With household variables in the questionnaire, two
        /// files: <stem>_households.<ext> and <stem>_persons.<ext>, or households.<ext> and
        /// persons.<ext> when --out is a folder (existing, or ending with /).
        #[arg(long)]
        out: PathBuf,
        /// Output format (default: from the --out extension).
        #[arg(long, value_parser = ["csv", "parquet"])]
        format: Option<String>,
        /// Also write population totals (variable,category,total) for calibration. With
        /// household variables: the persons' totals, and household_<name> beside it the
        /// households'.
        #[arg(long)]
        margins: Option<PathBuf>,
        /// Where to write the questionnaire copy when --regions exceeds its region codes.
        #[arg(long)]
        questionnaire_out: Option<PathBuf>,
    },
    /// Questionnaire tools.
    Questionnaire {
        #[command(subcommand)]
        command: QuestionnaireCommand,
    },
}

#[derive(Debug, Subcommand)]
enum QuestionnaireCommand {
    /// Draft a questionnaire (TOML, on standard output) from an SPSS (.sav, .zsav, .por) or Stata
    /// (.dta) file's dictionary, from a CSV and its codebook, or from an XLSForm (.xlsx, .xls,
    /// .xlsm, .ods: ODK, KoboToolbox, SurveyCTO), with a summary on standard error.
    Import {
        /// The data file, or the XLSForm.
        file: PathBuf,
        /// Codebook CSV for CSV data: variable,label,type,code,code_label,missing.
        #[arg(long)]
        codebook: Option<PathBuf>,
        /// XLSForm: the label language (default: the settings' default_language, else the
        /// first).
        #[arg(long)]
        language: Option<String>,
        /// XLSForm: an export of the form's data (CSV or workbook; only its header is read),
        /// to name the columns as that export does.
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bar = cvsurvey::progress::TerminalBar::for_stderr();
    let options = |strict: bool, timings: bool| cvsurvey::pipeline::RunOptions {
        strict,
        timings,
        progress: bar.as_ref().map(|b| b as &dyn cvsurvey::progress::Progress),
    };
    let result = match &cli.command {
        Command::Run {
            config,
            strict,
            timings,
        } => cvsurvey::pipeline::run(config, options(*strict, *timings)),
        Command::Compare { config, strict } => {
            cvsurvey::pipeline::compare(config, options(*strict, false))
        }
        Command::Validate { config, strict } => {
            cvsurvey::pipeline::validate(config, options(*strict, false))
        }
        Command::Monitor { config, strict } => {
            cvsurvey::pipeline::monitor(config, options(*strict, false))
        }
        Command::Show {
            dir,
            indicator,
            domain,
            weighting,
            ci,
        } => {
            let filter = cvsurvey::output::show::ShowFilter {
                indicator: indicator.clone(),
                domain: domain.clone(),
                weighting: weighting.clone(),
                ci: ci.clone(),
            };
            return match cvsurvey::output::show::show(dir, &filter) {
                Ok(table) => {
                    print!("{table}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {}", cut(&e.to_string()));
                    ExitCode::from(1)
                }
            };
        }
        Command::Synth {
            questionnaire,
            rows,
            regions,
            psus,
            psu_size,
            seed,
            nonresponse,
            out,
            format,
            margins,
            questionnaire_out,
        } => {
            let request = cvsurvey::synth::SynthRequest {
                questionnaire: questionnaire.clone(),
                spec: cvsurvey::synth::SynthSpec {
                    rows: *rows,
                    regions: *regions,
                    psus: *psus,
                    psu_size: *psu_size,
                    seed: *seed,
                    nonresponse: *nonresponse,
                },
                out: out.clone(),
                format: format.as_deref().map(|f| match f {
                    "csv" => cvsurvey::synth::Format::Csv,
                    _ => cvsurvey::synth::Format::Parquet,
                }),
                margins: margins.clone(),
                questionnaire_out: questionnaire_out.clone(),
            };
            return match cvsurvey::synth::generate(&request) {
                Ok(summary) => {
                    print!("{}", summary.text());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {}", cut(&e.to_string()));
                    ExitCode::from(e.exit_code())
                }
            };
        }
        Command::Questionnaire {
            command:
                QuestionnaireCommand::Import {
                    file,
                    codebook,
                    language,
                    data,
                },
        } => {
            use cvsurvey::questionnaire::xlsform;
            if xlsform::is_xlsform(file) {
                if codebook.is_some() {
                    eprintln!(
                        "error: {}: --codebook is for CSV data; an XLSForm carries its own choices",
                        file.display()
                    );
                    return ExitCode::from(2);
                }
                return match xlsform::import_xlsform(file, language.as_deref(), data.as_deref()) {
                    Ok(draft) => {
                        print!("{}", draft.toml);
                        eprint!("{}", draft.summary);
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {}", cut(&e.to_string()));
                        ExitCode::from(2)
                    }
                };
            }
            if language.is_some() || data.is_some() {
                eprintln!(
                    "error: {}: --language and --data apply to an XLSForm (.xlsx, .xls, .xlsm, .ods); this file is read as data",
                    file.display()
                );
                return ExitCode::from(2);
            }
            return match cvsurvey::questionnaire::import::import(file, codebook.as_deref()) {
                Ok(toml) => {
                    print!("{toml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {}", cut(&e.to_string()));
                    ExitCode::from(2)
                }
            };
        }
    };
    if let Some(bar) = &bar {
        cvsurvey::progress::Progress::finish(bar);
    }
    match result {
        Ok(report) => {
            print!("{}", report.summary());
            if matches!(cli.command, Command::Compare { .. }) {
                print!("\n{}", report.comparison());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", cut(&e.to_string()));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// An error message as printed: user text inside it (a cell value, a line of a file) can be
/// arbitrarily long, so the message stops after a bounded length and says how much was cut.
fn cut(message: &str) -> String {
    const MAX_CHARS: usize = 2_000;
    let one_line = message.replace(['\n', '\r'], " ");
    let total = one_line.chars().count();
    if total <= MAX_CHARS {
        return one_line;
    }
    let kept: String = one_line.chars().take(MAX_CHARS).collect();
    format!("{kept}… ({} more characters)", total - MAX_CHARS)
}
