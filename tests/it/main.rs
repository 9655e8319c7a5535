//! Integration tests: the pipeline on the shipped fixtures, compared with R `survey` references.

mod analyses;
mod cli;
mod common;
mod contrasts;
mod demo_households;
mod designs;
mod edge_cases;
mod editing;
mod fieldwork;
mod fuzz_regressions;
mod golden;
mod households;
mod identities;
mod locale;
mod lonely;
mod oracle;
mod pipeline_properties;
mod properties;
mod publish;
mod replicates;
mod sav_bounds;
mod sdg16;
mod statfiles;
mod synth;
mod workbook;
mod xlsform;
