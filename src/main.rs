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
        /// Record wall time per stage in run_summary.json.
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
    /// Questionnaire tools.
    Questionnaire {
        #[command(subcommand)]
        command: QuestionnaireCommand,
    },
}

#[derive(Debug, Subcommand)]
enum QuestionnaireCommand {
    /// Draft a questionnaire (TOML, on standard output) from an SPSS (.sav, .zsav) or Stata
    /// (.dta) file's dictionary, or from a CSV and its codebook.
    Import {
        /// The data file.
        file: PathBuf,
        /// Codebook CSV for CSV data: variable,label,type,code,code_label,missing.
        #[arg(long)]
        codebook: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Questionnaire {
        command: QuestionnaireCommand::Import { file, codebook },
    } = &cli.command
    {
        return match cvsurvey::questionnaire::import::import(file, codebook.as_deref()) {
            Ok(toml) => {
                print!("{toml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let result = match &cli.command {
        Command::Run {
            config,
            strict,
            timings,
        } => cvsurvey::pipeline::run(
            config,
            cvsurvey::pipeline::RunOptions {
                strict: *strict,
                timings: *timings,
            },
        ),
        Command::Compare { config, strict } => cvsurvey::pipeline::compare(
            config,
            cvsurvey::pipeline::RunOptions {
                strict: *strict,
                ..Default::default()
            },
        ),
        Command::Validate { config, strict } => cvsurvey::pipeline::validate(
            config,
            cvsurvey::pipeline::RunOptions {
                strict: *strict,
                ..Default::default()
            },
        ),
        Command::Questionnaire { .. } => unreachable!("questionnaire commands return above"),
    };
    match result {
        Ok(report) => {
            print!("{}", report.summary());
            if matches!(cli.command, Command::Compare { .. }) {
                print!("\n{}", report.comparison());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
