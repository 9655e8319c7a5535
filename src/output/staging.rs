//! The output folder, switched in as a whole.
//!
//! A run writes every file into a fresh staging folder beside the output folder
//! (`<out>.tmp-<pid>-<n>`: same parent, so same file system), each file flushed and `fsync`ed.
//! Only when all of them are written is the staging folder switched in, by two renames: the
//! previous folder goes aside (`<out>.old-<pid>-<n>`), the staging folder takes its name, the
//! parent folder is `fsync`ed, and the previous folder is removed. If the second rename fails
//! the previous folder is renamed back. A reader of `<out>` therefore finds the complete
//! previous set or the complete new set, never a mix of two runs. Between the two renames the
//! folder is absent for an instant; a run killed exactly then leaves the previous set aside,
//! and the next run puts it back before anything else.
//!
//! The output folder belongs to cvsurvey: after a run it holds exactly the files that run wrote
//! (outputs of earlier runs that this run does not write go with the previous folder). Because
//! the folder is replaced as a whole, a run refuses to start when the folder holds anything
//! cvsurvey does not write — a user's notes, a subfolder — instead of deleting it, and refuses
//! an input file that sits where an output goes.
//!
//! One run at a time writes a folder: [`OutputFolder::begin`] takes a lock file beside it
//! (`<out>.lock`, created with `create_new`, holding the pid and, on Unix, an advisory `flock`
//! that the system drops when the process ends, however it ends). The lock is released on every
//! exit path by the guard's `Drop`; a lock file left by a killed run is not locked, so the next
//! run takes it over (where `flock` is unavailable, the message says to delete it).

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::OutputError;

/// Every file name a run may write into the output folder. A staged file under any other name
/// is refused, so this list cannot fall behind the writers; these names (and nothing else) are
/// what a run may replace.
pub const OUTPUT_FILES: &[&str] = &[
    "estimates.parquet",
    "quarantine.csv",
    "findings.csv",
    "weights.parquet",
    "weighting.json",
    "run_summary.json",
    "estimates.csv",
    "sdmx.csv",
    "tables.xlsx",
    "report.html",
    "manifest.json",
    "comparison.parquet",
    "contrasts.parquet",
    "contrasts.csv",
    "tests.parquet",
    "tests.csv",
    "household_quarantine.csv",
    "household_findings.csv",
    "household_weights.parquet",
    "fieldwork.parquet",
    "fieldwork.csv",
    "fieldwork.html",
];

/// File-manager metadata that the system recreates at will (macOS Finder, Windows Explorer):
/// dropped with the previous folder rather than blocking a run.
const SYSTEM_FILES: &[&str] = &[".DS_Store", "Thumbs.db", "desktop.ini"];

/// Distinguishes the staging folders of several runs in one process.
static NEXT_RUN: AtomicU64 = AtomicU64::new(0);

fn io(path: &Path, message: impl std::fmt::Display) -> OutputError {
    OutputError::Io {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The output folder of one run, reserved (locked) from [`OutputFolder::begin`] until the
/// value is dropped. Files are staged with [`OutputFolder::stage`] and switched in together by
/// [`OutputFolder::commit`]; dropped without a commit, the staging folder is removed and the
/// previous outputs are untouched.
#[derive(Debug)]
pub struct OutputFolder {
    /// The folder as configured: reported paths and messages use it.
    shown: PathBuf,
    /// The same folder with every link resolved (it may not exist yet).
    real: PathBuf,
    /// The staging folder beside it.
    stage: PathBuf,
    /// Where the previous folder goes during the switch.
    aside: PathBuf,
    /// The staging folder became the output folder.
    committed: AtomicBool,
    /// Dropped last: the staging folder is removed before another run may start.
    _lock: Lock,
}

impl OutputFolder {
    /// Reserve `dir` for a run whose inputs are `inputs` (a description such as
    /// `data file (data.path)`, and the path), before anything is computed:
    ///
    /// - an input whose path is an output's path (links resolved) is refused
    ///   ([`OutputError::InputIsOutput`]);
    /// - the folders above `dir` are created, and the lock file and the staging folder beside
    ///   it, so an output folder that cannot be written fails now, not after the estimation;
    /// - another run writing `dir` is refused ([`OutputError::InUse`]);
    /// - leftovers of a killed run beside `dir` are cleared (a previous folder left aside in
    ///   the middle of a switch is put back);
    /// - an existing `dir` holding anything cvsurvey does not write is refused
    ///   ([`OutputError::Foreign`]), and one that cannot be written in fails.
    pub fn begin(dir: &Path, inputs: &[(String, PathBuf)]) -> Result<OutputFolder, OutputError> {
        let real = resolve(dir)?;
        check_inputs(dir, &real, inputs)?;
        let (parent, name) = match (real.parent(), real.file_name()) {
            (Some(p), Some(n)) => (p.to_path_buf(), n.to_os_string()),
            _ => {
                return Err(io(
                    dir,
                    "the output folder cannot be the root of the file system: choose another [output] dir",
                ));
            }
        };
        let lock = Lock::acquire(&parent.join(suffixed(&name, ".lock")), dir)?;
        recover(dir, &real, &parent, &name)?;
        if real.exists() {
            check_contents(dir, &real)?;
            probe(dir, &real)?;
        }
        let tag = format!(
            "-{}-{}",
            std::process::id(),
            NEXT_RUN.fetch_add(1, Ordering::SeqCst)
        );
        let stage = parent.join(suffixed(&name, &format!(".tmp{tag}")));
        let aside = parent.join(suffixed(&name, &format!(".old{tag}")));
        std::fs::create_dir(&stage).map_err(|e| {
            io(
                dir,
                format!(
                    "cannot create the staging folder {} beside the output folder: {e}",
                    stage.display()
                ),
            )
        })?;
        Ok(OutputFolder {
            shown: dir.to_path_buf(),
            real,
            stage,
            aside,
            committed: AtomicBool::new(false),
            _lock: lock,
        })
    }

    /// A new, empty set of files to write into this folder; sets can be merged with
    /// [`StagedFiles::absorb`] (one per thread, say).
    pub fn stage(&self) -> StagedFiles {
        StagedFiles {
            shown: self.shown.clone(),
            stage: self.stage.clone(),
            names: Vec::new(),
        }
    }

    /// The staging folder (for tests and diagnostics).
    pub fn staging_folder(&self) -> &Path {
        &self.stage
    }

    /// Switch the staged files in as the output folder's whole content; returns their final
    /// paths in the order they were written. On error the previous outputs are in place.
    pub fn commit(&self, staged: StagedFiles) -> Result<Vec<PathBuf>, OutputError> {
        if staged.stage != self.stage {
            return Err(io(
                &self.shown,
                "internal error: files staged for another output folder",
            ));
        }
        if self.committed.load(Ordering::SeqCst) {
            return Err(io(&self.shown, "internal error: outputs committed twice"));
        }
        self.switch()?;
        Ok(staged
            .names
            .iter()
            .map(|name| self.shown.join(name))
            .collect())
    }

    fn switch(&self) -> Result<(), OutputError> {
        sync_dir(&self.stage).map_err(|e| io(&self.stage, e))?;
        let previous = std::fs::symlink_metadata(&self.real).ok();
        if let Some(meta) = &previous {
            // The new folder keeps the previous one's permissions (a group-shared folder, say).
            let _ = std::fs::set_permissions(&self.stage, meta.permissions());
            fault(Step::Aside)
                .and_then(|()| std::fs::rename(&self.real, &self.aside))
                .map_err(|e| {
                    io(
                        &self.shown,
                        format!(
                            "cannot move the previous outputs aside to {}: {e}; they are unchanged",
                            self.aside.display()
                        ),
                    )
                })?;
        }
        if let Err(e) = fault(Step::Into).and_then(|()| std::fs::rename(&self.stage, &self.real)) {
            if previous.is_some()
                && let Err(back) = std::fs::rename(&self.aside, &self.real)
            {
                return Err(io(
                    &self.shown,
                    format!(
                        "cannot put the new outputs in place ({e}) nor the previous ones back ({back}); the previous outputs are in {}",
                        self.aside.display()
                    ),
                ));
            }
            return Err(io(
                &self.shown,
                format!(
                    "cannot put the new outputs in place: {e}; the previous outputs are unchanged"
                ),
            ));
        }
        self.committed.store(true, Ordering::SeqCst);
        // Both renames reach the disk before the previous outputs are deleted.
        if let Some(parent) = self.real.parent() {
            sync_dir(parent).map_err(|e| {
                io(
                    &self.shown,
                    format!("the new outputs are in place but their folder could not be flushed to disk: {e}"),
                )
            })?;
        }
        if previous.is_some() {
            // A leftover is removed by the next run into this folder.
            let _ = std::fs::remove_dir_all(&self.aside);
        }
        Ok(())
    }
}

impl Drop for OutputFolder {
    fn drop(&mut self) {
        if !self.committed.load(Ordering::SeqCst) {
            let _ = std::fs::remove_dir_all(&self.stage);
        }
    }
}

/// A set of files written into a run's staging folder, switched in together by
/// [`OutputFolder::commit`].
#[derive(Debug)]
pub struct StagedFiles {
    shown: PathBuf,
    stage: PathBuf,
    names: Vec<String>,
}

impl StagedFiles {
    /// Write `final_path` (a file of the output folder) into the staging folder using `write`;
    /// the file is flushed and `fsync`ed before this returns.
    pub fn write(
        &mut self,
        final_path: &Path,
        write: impl FnOnce(&mut BufWriter<File>) -> Result<(), OutputError>,
    ) -> Result<(), OutputError> {
        let name = final_path
            .file_name()
            .and_then(OsStr::to_str)
            .filter(|n| OUTPUT_FILES.contains(n) && final_path.parent() == Some(&self.shown))
            .ok_or_else(|| {
                io(
                    final_path,
                    "internal error: not an output file of this folder (output::staging::OUTPUT_FILES)",
                )
            })?
            .to_string();
        let path = self.stage.join(&name);
        // create_new: two writers of one name would be a bug, not something to overwrite.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io(final_path, e))?;
        let mut out = BufWriter::new(file);
        let result = write(&mut out).and_then(|()| {
            let file = out.into_inner().map_err(|e| io(final_path, e.error()))?;
            file.sync_all().map_err(|e| io(final_path, e))
        });
        if let Err(e) = result {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        self.names.push(name);
        Ok(())
    }

    /// Add another set's files after this set's.
    pub fn absorb(&mut self, mut other: StagedFiles) {
        debug_assert_eq!(self.stage, other.stage, "sets of one output folder");
        self.names.append(&mut other.names);
    }

    /// Every file written so far into the staging folder (by this set or any other of the same
    /// run), by name: (name, path in the staging folder).
    pub fn written(&self) -> Result<Vec<(String, PathBuf)>, OutputError> {
        let entries = std::fs::read_dir(&self.stage).map_err(|e| io(&self.stage, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io(&self.stage, e))?;
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
        out.sort();
        Ok(out)
    }
}

/// `name` followed by `suffix`.
fn suffixed(name: &OsStr, suffix: &str) -> OsString {
    let mut s = name.to_os_string();
    s.push(suffix);
    s
}

/// The output folder with its links resolved; the folders above it are created when it does
/// not exist yet.
fn resolve(dir: &Path) -> Result<PathBuf, OutputError> {
    let cannot = |e: &dyn std::fmt::Display| {
        io(
            dir,
            format!(
                "cannot use this output folder: {e}; every folder above it must be a writable folder, or choose another [output] dir"
            ),
        )
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => dir.canonicalize().map_err(|e| cannot(&e)),
        Ok(_) => Err(io(
            dir,
            "the output folder is a file, not a folder: choose another [output] dir",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(dir).is_ok() {
                return Err(io(
                    dir,
                    "the output folder is a link to nothing: remove the link or choose another [output] dir",
                ));
            }
            let name = dir.file_name().ok_or_else(|| cannot(&"no folder name"))?;
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            std::fs::create_dir_all(parent).map_err(|e| cannot(&e))?;
            Ok(parent.canonicalize().map_err(|e| cannot(&e))?.join(name))
        }
        Err(e) => Err(cannot(&e)),
    }
}

/// Refuse an input whose path (as written, or with its links resolved) is the path of an
/// output file: the switch would replace it.
fn check_inputs(
    shown: &Path,
    real: &Path,
    inputs: &[(String, PathBuf)],
) -> Result<(), OutputError> {
    for (what, input) in inputs {
        let as_written = input.file_name().and_then(|name| {
            let parent = match input.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            parent.canonicalize().ok().map(|p| p.join(name))
        });
        for candidate in [input.canonicalize().ok(), as_written]
            .into_iter()
            .flatten()
        {
            let name = candidate.file_name().and_then(OsStr::to_str);
            if candidate.parent() == Some(real)
                && let Some(name) = name.filter(|n| OUTPUT_FILES.contains(n))
            {
                return Err(OutputError::InputIsOutput {
                    what: what.clone(),
                    input: input.clone(),
                    output: shown.join(name),
                });
            }
        }
    }
    Ok(())
}

/// `entry` is `<name>.<kind>-<digits>-<digits>`: a staging (`tmp`) or set-aside (`old`) folder
/// of some run into the folder `name`.
fn is_run_folder(entry: &OsStr, name: &OsStr, kind: &str) -> bool {
    let (entry, name) = (entry.as_encoded_bytes(), name.as_encoded_bytes());
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    entry
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix(b"."))
        .and_then(|r| r.strip_prefix(kind.as_bytes()))
        .and_then(|r| r.strip_prefix(b"-"))
        .and_then(|r| {
            let at = r.iter().position(|&b| b == b'-')?;
            Some(digits(&r[..at]) && digits(&r[at + 1..]))
        })
        .unwrap_or(false)
}

/// Clear what killed runs left beside the output folder (called with the lock held, so no
/// other run is using them): staging folders are removed; a previous folder set aside in the
/// middle of a switch is put back when the output folder is missing, else removed.
fn recover(shown: &Path, real: &Path, parent: &Path, name: &OsStr) -> Result<(), OutputError> {
    let entries = std::fs::read_dir(parent).map_err(|e| {
        io(
            shown,
            format!("cannot read the folder that holds the output folder: {e}"),
        )
    })?;
    let mut aside: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        if is_run_folder(&entry_name, name, "tmp") {
            let _ = std::fs::remove_dir_all(entry.path());
        } else if is_run_folder(&entry_name, name, "old") {
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            aside.push((modified, entry.path()));
        }
    }
    aside.sort();
    if std::fs::symlink_metadata(real).is_err()
        && let Some((_, newest)) = aside.pop()
    {
        std::fs::rename(&newest, real).map_err(|e| {
            io(
                shown,
                format!(
                    "a killed run left the previous outputs in {}, and they cannot be put back: {e}",
                    newest.display()
                ),
            )
        })?;
    }
    for (_, old) in aside {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

/// Refuse an output folder holding anything cvsurvey does not write: the switch replaces the
/// folder as a whole.
fn check_contents(shown: &Path, real: &Path) -> Result<(), OutputError> {
    let entries = std::fs::read_dir(real)
        .map_err(|e| io(shown, format!("cannot read the output folder: {e}")))?;
    let mut foreign: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io(shown, format!("cannot read the output folder: {e}")))?;
        let name = entry.file_name();
        let is_file = entry
            .file_type()
            .is_ok_and(|t| t.is_file() || t.is_symlink());
        let ours = name.to_str().is_some_and(|n| {
            (is_file && (OUTPUT_FILES.contains(&n) || SYSTEM_FILES.contains(&n)))
                || is_leftover_temp(n)
        });
        if !ours {
            foreign.push(name.to_string_lossy().into_owned());
        }
    }
    foreign.sort();
    match foreign.first() {
        None => Ok(()),
        Some(first) => Err(OutputError::Foreign {
            folder: shown.to_path_buf(),
            entry: first.clone(),
            others: foreign.len() - 1,
        }),
    }
}

/// A temporary file of an earlier cvsurvey (`.<output>.tmp-<pid>`, from a killed run) or the
/// write probe of [`probe`].
fn is_leftover_temp(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = name.strip_prefix(".cvsurvey-probe-") {
        return rest.split('-').all(digits);
    }
    name.strip_prefix('.')
        .and_then(|n| n.rsplit_once(".tmp-"))
        .is_some_and(|(output, pid)| OUTPUT_FILES.contains(&output) && digits(pid))
}

/// Create and remove a file in the output folder: removing the previous outputs after the
/// switch needs write access to it, so a folder that cannot be written fails before the run.
fn probe(shown: &Path, real: &Path) -> Result<(), OutputError> {
    let path = real.join(format!(
        ".cvsurvey-probe-{}-{}",
        std::process::id(),
        NEXT_RUN.fetch_add(1, Ordering::SeqCst)
    ));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| io(shown, format!("cannot write in the output folder: {e}")))?;
    std::fs::remove_file(&path)
        .map_err(|e| io(shown, format!("cannot write in the output folder: {e}")))
}

/// `fsync` a folder, so that the names created or renamed in it reach the disk.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    if cfg!(unix) {
        File::open(path)?.sync_all()
    } else {
        // Folders cannot be opened as files elsewhere; renames there are journaled.
        Ok(())
    }
}

/// The lock file of an output folder, held from creation until drop.
#[derive(Debug)]
struct Lock {
    path: PathBuf,
    _file: File,
}

impl Lock {
    /// Create (or take over a stale) lock file at `path` for the output folder `folder`.
    fn acquire(path: &Path, folder: &Path) -> Result<Lock, OutputError> {
        let cannot = |e: &dyn std::fmt::Display| {
            io(
                folder,
                format!(
                    "cannot create the lock file {} beside the output folder: {e}; the folder that holds the output folder must be writable",
                    path.display()
                ),
            )
        };
        // A few rounds: the file may disappear or be replaced between our open and our lock
        // when another run ends just then.
        for _ in 0..16 {
            let (mut file, fresh) = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(file) => (file, true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    match OpenOptions::new().read(true).write(true).open(path) {
                        Ok(file) => (file, false),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(cannot(&e)),
                    }
                }
                Err(e) => return Err(cannot(&e)),
            };
            let held = match try_lock(&file) {
                Ok(true) => false,
                Ok(false) => true,
                // No advisory locks here (some network file systems): the file's existence
                // is the lock.
                Err(_) => !fresh,
            };
            if held {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(OutputError::InUse {
                    folder: folder.to_path_buf(),
                    lock: path.to_path_buf(),
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.chars().take(20).collect()
                    },
                });
            }
            if !names_file(path, &file) {
                continue;
            }
            // Ours now (fresh, or taken over from a run that ended without removing it).
            file.set_len(0).map_err(|e| cannot(&e))?;
            file.write_all(format!("{}\n", std::process::id()).as_bytes())
                .map_err(|e| cannot(&e))?;
            return Ok(Lock {
                path: path.to_path_buf(),
                _file: file,
            });
        }
        Err(cannot(&"the lock file keeps changing"))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still locked; the lock itself goes when the file is closed.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Take an exclusive advisory lock without waiting: Ok(false) when another process holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use rustix::fs::{FlockOperation, flock};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// `path` still names the open `file` (it was not removed or replaced meanwhile).
#[cfg(unix)]
fn names_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn names_file(path: &Path, _file: &File) -> bool {
    path.exists()
}

/// Steps of the switch where a unit test can make it fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Renaming the previous folder aside.
    Aside,
    /// Renaming the staging folder into place.
    Into,
}

#[cfg(test)]
thread_local! {
    static FAIL_AT: std::cell::Cell<Option<Step>> = const { std::cell::Cell::new(None) };
}

#[cfg(test)]
fn fault(step: Step) -> std::io::Result<()> {
    if FAIL_AT.with(|f| f.get()) == Some(step) {
        return Err(std::io::Error::other(format!(
            "injected failure at {step:?}"
        )));
    }
    Ok(())
}

#[cfg(not(test))]
fn fault(_step: Step) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cvsurvey-staging-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        dir
    }

    /// Stage `files` (name, text) into `out` and switch them in.
    fn run(out: &Path, files: &[(&str, &str)]) -> Result<Vec<PathBuf>, OutputError> {
        let folder = OutputFolder::begin(out, &[])?;
        let mut staged = folder.stage();
        for (name, text) in files {
            staged.write(&out.join(name), |w| {
                w.write_all(text.as_bytes()).map_err(|e| io(out, e))
            })?;
        }
        folder.commit(staged)
    }

    /// Every entry of `dir`: name → contents ("<dir>" for a folder).
    fn listing(dir: &Path) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| {
                let e = e.expect("entry");
                let text = std::fs::read_to_string(e.path()).unwrap_or_else(|_| "<dir>".into());
                (e.file_name().to_string_lossy().into_owned(), text)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_run_replaces_the_folder_as_a_whole() {
        let dir = scratch("whole");
        let out = dir.join("deeper/out");
        let files = run(&out, &[("estimates.csv", "a"), ("tables.xlsx", "x")]).expect("first");
        assert_eq!(
            files,
            vec![out.join("estimates.csv"), out.join("tables.xlsx")]
        );
        // An earlier output this run does not write goes with the previous folder.
        run(&out, &[("estimates.csv", "b")]).expect("second");
        assert_eq!(listing(&out), vec![("estimates.csv".into(), "b".into())]);
        assert_eq!(
            listing(&dir.join("deeper")),
            vec![("out".into(), "<dir>".into())],
            "no lock, staging or set-aside folder left beside it"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_switch_leaves_the_previous_outputs_whole() {
        for step in [Step::Aside, Step::Into] {
            let dir = scratch(&format!("failed-{step:?}"));
            let out = dir.join("out");
            run(&out, &[("estimates.csv", "old"), ("findings.csv", "old")]).expect("first");
            FAIL_AT.with(|f| f.set(Some(step)));
            let e = run(&out, &[("estimates.csv", "new"), ("findings.csv", "new")])
                .expect_err("the switch fails");
            FAIL_AT.with(|f| f.set(None));
            assert!(e.to_string().contains("injected failure"), "{e}");
            assert!(e.to_string().contains("unchanged"), "{e}");
            assert_eq!(
                listing(&out),
                vec![
                    ("estimates.csv".into(), "old".into()),
                    ("findings.csv".into(), "old".into())
                ]
            );
            assert_eq!(
                listing(&dir),
                vec![("out".into(), "<dir>".into())],
                "{step:?}: nothing left beside the folder"
            );
            run(&out, &[("estimates.csv", "new")]).expect("the next run works");
            assert_eq!(listing(&out), vec![("estimates.csv".into(), "new".into())]);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_run_dropped_before_commit_changes_nothing() {
        let dir = scratch("dropped");
        let out = dir.join("out");
        run(&out, &[("estimates.csv", "old")]).expect("first");
        {
            let folder = OutputFolder::begin(&out, &[]).expect("begin");
            let mut staged = folder.stage();
            staged
                .write(&out.join("estimates.csv"), |w| {
                    w.write_all(b"half").map_err(|e| io(&out, e))
                })
                .expect("write");
            assert!(folder.staging_folder().join("estimates.csv").is_file());
        }
        assert_eq!(listing(&out), vec![("estimates.csv".into(), "old".into())]);
        assert_eq!(listing(&dir), vec![("out".into(), "<dir>".into())]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_run_is_refused_while_the_first_holds_the_folder() {
        let dir = scratch("locked");
        let out = dir.join("out");
        let first = OutputFolder::begin(&out, &[]).expect("first");
        let e = OutputFolder::begin(&out, &[]).expect_err("second");
        let text = e.to_string();
        assert!(matches!(e, OutputError::InUse { .. }), "{text}");
        assert!(text.contains("out.lock"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        assert!(!dir.join("out.lock").exists(), "released on drop");
        OutputFolder::begin(&out, &[]).expect("free again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_left_by_a_killed_run_is_taken_over() {
        let dir = scratch("stale");
        let out = dir.join("out");
        run(&out, &[("estimates.csv", "old")]).expect("first");
        // What a killed run leaves: an unlocked lock file, its staging folder, and (killed
        // between the two renames) the previous folder set aside with no output folder.
        std::fs::write(dir.join("out.lock"), "4000000\n").expect("lock");
        std::fs::create_dir(dir.join("out.tmp-4000000-0")).expect("stage");
        std::fs::write(dir.join("out.tmp-4000000-0/estimates.csv"), "half").expect("half");
        std::fs::rename(&out, dir.join("out.old-4000000-0")).expect("aside");
        let folder = OutputFolder::begin(&out, &[]).expect("taken over");
        assert_eq!(
            listing(&out),
            vec![("estimates.csv".into(), "old".into())],
            "the set-aside folder is put back"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("out.lock")).expect("lock"),
            format!("{}\n", std::process::id())
        );
        drop(folder);
        assert_eq!(listing(&dir), vec![("out".into(), "<dir>".into())]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_input_at_an_output_path_is_refused() {
        let dir = scratch("input");
        let out = dir.join("out");
        std::fs::create_dir_all(&out).expect("out");
        let data = out.join("findings.csv");
        std::fs::write(&data, "precious").expect("data");
        let inputs = vec![("data file (data.path)".to_string(), data.clone())];
        let e = OutputFolder::begin(&out, &inputs).expect_err("refused");
        assert!(matches!(e, OutputError::InputIsOutput { .. }), "{e}");
        assert_eq!(e.exit_code(), 1);
        let text = e.to_string();
        assert!(text.contains("data file (data.path)"), "{text}");
        assert_eq!(text.matches("findings.csv").count(), 2, "{text}");
        assert_eq!(std::fs::read_to_string(&data).expect("data"), "precious");
        assert!(!dir.join("out.lock").exists(), "refused before locking");
        // Written through another path to the same folder (a link), still refused.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&out, dir.join("alias")).expect("link");
            let inputs = vec![("data".to_string(), dir.join("alias/findings.csv"))];
            OutputFolder::begin(&out, &inputs).expect_err("through a link");
        }
        // An input of the same name in another folder is fine, and so is an output folder
        // that does not exist yet.
        std::fs::remove_file(&data).expect("rm");
        let elsewhere = dir.join("findings.csv");
        std::fs::write(&elsewhere, "x").expect("write");
        let inputs = vec![("data".to_string(), elsewhere)];
        drop(OutputFolder::begin(&dir.join("new"), &inputs).expect("no clash"));
        drop(OutputFolder::begin(&out, &inputs).expect("no clash"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_folder_holding_other_files_is_refused_not_emptied() {
        let dir = scratch("foreign");
        let out = dir.join("out");
        run(&out, &[("estimates.csv", "old")]).expect("first");
        std::fs::write(out.join("notes.txt"), "mine").expect("notes");
        std::fs::write(out.join(".DS_Store"), "finder").expect("finder");
        std::fs::write(out.join(".manifest.json.tmp-77"), "old temp").expect("temp");
        let e = run(&out, &[("estimates.csv", "new")]).expect_err("refused");
        assert!(matches!(e, OutputError::Foreign { .. }), "{e}");
        assert!(e.to_string().contains("notes.txt"), "{e}");
        assert_eq!(
            std::fs::read_to_string(out.join("notes.txt")).expect("kept"),
            "mine"
        );
        std::fs::remove_file(out.join("notes.txt")).expect("rm");
        // File-manager metadata and temporary files of earlier versions go with the folder.
        run(&out, &[("estimates.csv", "new")]).expect("second");
        assert_eq!(listing(&out), vec![("estimates.csv".into(), "new".into())]);
        // A folder under an output's name is not ours either.
        std::fs::create_dir(out.join("tables.xlsx")).expect("dir");
        run(&out, &[("estimates.csv", "new")]).expect_err("a folder named like an output");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_through_a_file_fails_before_anything_is_written() {
        let dir = scratch("through-file");
        std::fs::write(dir.join("plain"), "a file").expect("file");
        let e = OutputFolder::begin(&dir.join("plain/out"), &[]).expect_err("not a folder");
        assert!(e.to_string().contains("plain/out"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let e = OutputFolder::begin(&dir.join("plain"), &[]).expect_err("a file");
        assert!(e.to_string().contains("is a file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_known_output_names_are_staged() {
        let dir = scratch("names");
        let out = dir.join("out");
        let folder = OutputFolder::begin(&out, &[]).expect("begin");
        let mut staged = folder.stage();
        let e = staged
            .write(&out.join("notes.txt"), |_| Ok(()))
            .expect_err("unknown name");
        assert!(e.to_string().contains("OUTPUT_FILES"), "{e}");
        staged
            .write(&out.join("quarantine.csv"), |_| Ok(()))
            .expect("known");
        staged
            .write(&out.join("quarantine.csv"), |_| Ok(()))
            .expect_err("twice");
        drop(folder);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn run_folder_names_are_matched_exactly() {
        let name = OsStr::new("out");
        assert!(is_run_folder(OsStr::new("out.tmp-12-0"), name, "tmp"));
        assert!(is_run_folder(OsStr::new("out.old-12-3"), name, "old"));
        assert!(!is_run_folder(OsStr::new("out.tmp-12"), name, "tmp"));
        assert!(!is_run_folder(OsStr::new("out.tmp-notes"), name, "tmp"));
        assert!(!is_run_folder(OsStr::new("outx.tmp-1-2"), name, "tmp"));
        assert!(!is_run_folder(OsStr::new("out.tmp-1-2"), name, "old"));
        assert!(is_leftover_temp(".estimates.parquet.tmp-4711"));
        assert!(!is_leftover_temp(".notes.txt.tmp-4711"));
        assert!(!is_leftover_temp(".estimates.parquet.tmp-x"));
    }
}
