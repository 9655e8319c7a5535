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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
