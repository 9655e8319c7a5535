//! Integration tests: the pipeline on the shipped fixtures, compared with R `survey` references.

mod cli;
mod common;
mod identities;
mod oracle;
mod properties;
mod publish;
mod replicates;
mod statfiles;
mod synth;
