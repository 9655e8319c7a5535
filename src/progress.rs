//! Progress of the long stages (ingest, estimation, replicates).
//!
//! The library only reports through [`Progress`]; whoever runs it decides whether and how to show
//! it. [`TerminalBar`] draws one bar per stage on standard error, and is only created when
//! standard error is a terminal, so redirected output, tests and CI logs stay clean.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Receives the progress of a run's long stages. Called from worker threads, hence `Sync`.
pub trait Progress: Sync {
    /// A stage starts with `total` units of work (rows, bytes, indicator blocks, replicates).
    fn start(&self, stage: &str, total: u64);
    /// `done` more units of the current stage are finished.
    fn advance(&self, done: u64);
    /// The current stage is over.
    fn finish(&self);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _stage: &str, _total: u64) {}
    fn advance(&self, _done: u64) {}
    fn finish(&self) {}
}

/// A progress bar on standard error, one per stage, cleared when the stage ends.
#[derive(Debug, Default)]
pub struct TerminalBar {
    bar: Mutex<Option<ProgressBar>>,
}

impl TerminalBar {
    /// A bar when standard error is a terminal; `None` otherwise (a pipe, a file, CI).
    pub fn for_stderr() -> Option<TerminalBar> {
        std::io::stderr().is_terminal().then(TerminalBar::default)
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        // A panic elsewhere while the lock was held leaves a usable bar: ignore the poison.
        self.bar.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Progress for TerminalBar {
    fn start(&self, stage: &str, total: u64) {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{msg:<10} [{bar:40}] {percent:>3}%  {elapsed_precise}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(stage.to_string());
        if let Some(old) = self.current().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, done: u64) {
        if let Some(bar) = self.current().as_ref() {
            bar.inc(done);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.current().take() {
            bar.finish_and_clear();
        }
    }
}
