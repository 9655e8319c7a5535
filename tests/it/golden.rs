//! Every output file of the shipped demo and api jobs is byte-identical to the recorded one:
//! the SHA-256 of each file (from the run's `manifest.json`) against `tests/it/golden/*.txt`.
//! A change to the numbers, their formatting or any output's layout shows here first. When an
//! output changes on purpose, rerun with `CVSURVEY_UPDATE_GOLDEN=1`, and say why in the commit.

use std::path::{Path, PathBuf};

use crate::common::{root, scratch};

/// `file sha256` lines of a run's manifest, sorted by file name.
fn manifest_lines(out: &Path) -> String {
    let text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest json");
    let mut lines: Vec<String> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["file"].as_str().expect("file"),
                f["sha256"].as_str().expect("sha256")
            )
        })
        .collect();
    lines.sort();
    lines.join("\n") + "\n"
}

/// Copy `config` (relative to the repository) into `dir` with its paths made relative to `dir`,
/// which lies at a fixed place under the repository: the config's bytes, whose SHA-256 every
/// output's provenance carries, are then the same in every checkout.
fn portable_config(config: &str, dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let folder = Path::new(config).parent().expect("config folder");
    let depth = dir
        .strip_prefix(root())
        .expect("scratch under the root")
        .components()
        .count();
    let back = "../".repeat(depth);
    let text = std::fs::read_to_string(root().join(config)).expect("read config");
    let mut out = String::new();
    for line in text.lines() {
        let mut line = line.to_string();
        let trimmed = line.trim_start().to_string();
        for key in ["questionnaire = \"", "path = \"", "margins = \""] {
            if let Some(at) = line.find(key)
                && (key == "margins = \"" || trimmed.starts_with(key))
            {
                let start = at + key.len();
                line.insert_str(start, &format!("{back}{}/", folder.display()));
            }
        }
        if trimmed.starts_with("dir = ") {
            line = "dir = \"out\"".into();
        }
        for (from, to) in extra {
            if trimmed.starts_with(from) {
                line = to.to_string();
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    let path = dir.join(Path::new(config).file_name().expect("file name"));
    std::fs::write(&path, out).expect("write config");
    path
}

fn check(name: &str, config: &str, extra: &[(&str, &str)]) {
    let dir = scratch(&format!("golden-{name}"));
    let config = portable_config(config, &dir, extra);
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let got = manifest_lines(&dir.join("out"));
    let recorded = root().join("tests/it/golden").join(format!("{name}.txt"));
    if std::env::var_os("CVSURVEY_UPDATE_GOLDEN").is_some() {
        std::fs::write(&recorded, &got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&recorded).expect("golden file");
    assert_eq!(
        got, want,
        "{name}: outputs differ from tests/it/golden/{name}.txt"
    );
}

#[test]
fn demo_taylor_outputs_are_unchanged() {
    check("demo_taylor", "fixtures/demo/pipeline.toml", &[]);
}

#[test]
fn demo_bootstrap_outputs_are_unchanged() {
    check(
        "demo_bootstrap",
        "fixtures/demo/pipeline.toml",
        &[(
            "method = ",
            "method = [\"taylor\", \"bootstrap\", \"jkn\"]\nreplicates = 40\nseed = 7",
        )],
    );
}

#[test]
fn api_outputs_are_unchanged() {
    for name in [
        "clus1_fpc",
        "clus1_fpc_jk1",
        "clus2_fpc2stage",
        "strat_fpc",
        "strat_nofpc",
        "strat_nofpc_jkn",
    ] {
        check(
            &format!("api_{name}"),
            &format!("fixtures/api/{name}.toml"),
            &[],
        );
    }
}

#[test]
fn supplied_replicates_outputs_are_unchanged() {
    check("supplied_nr", "fixtures/replicates/supplied_nr.toml", &[]);
}
