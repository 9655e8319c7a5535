//! What the machine can hold: stages that size large tables from declared counts (a Parquet
//! footer's rows, the number of replicates) check the figure against the memory available
//! before they allocate, and refuse with both figures instead of being killed.

/// Bytes of memory a run may use: `CVSURVEY_MEMORY_LIMIT` when set (bytes, or a number with
/// `K`, `M` or `G`: `8G`), else what the system has available (`MemAvailable` of
/// `/proc/meminfo`); `None` where neither says.
pub fn available() -> Option<u64> {
    if let Ok(limit) = std::env::var("CVSURVEY_MEMORY_LIMIT")
        && let Some(bytes) = parse_limit(&limit)
    {
        return Some(bytes);
    }
    system_available()
}

/// `8G`, `500M`, `1048576`: bytes.
fn parse_limit(text: &str) -> Option<u64> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let scale: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => return None,
    };
    number
        .trim()
        .parse::<u64>()
        .ok()
        .map(|n| n.saturating_mul(scale))
}

fn system_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line
        .trim_start_matches("MemAvailable:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

/// `Err(message)` when `need` bytes exceed what is available (unknown availability passes).
pub fn check(need: u64) -> Result<(), String> {
    match available() {
        Some(have) if need > have => Err(format!(
            "needs about {} of memory, and {} is available",
            human(need),
            human(have)
        )),
        _ => Ok(()),
    }
}

/// Largest config, questionnaire or margins file read whole: such files are kilobytes, and a
/// device (`/dev/zero`) or a wrong path to a data file would otherwise be read without end.
pub const MAX_TEXT_FILE: u64 = 64 << 20;

/// Read a small text input (config, questionnaire, margins) whole: a regular file of at most
/// [`MAX_TEXT_FILE`] bytes, UTF-8. The error says which of these it is not.
pub fn read_text_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(invalid(
            "not a regular file (a pipe, device or folder); give the path of a file".into(),
        ));
    }
    if meta.len() > MAX_TEXT_FILE {
        return Err(invalid(format!(
            "{} bytes, more than the {} MiB a config, questionnaire or margins file may have; is this the right file?",
            meta.len(),
            MAX_TEXT_FILE >> 20
        )));
    }
    let mut text = String::new();
    file.take(MAX_TEXT_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_TEXT_FILE {
        return Err(invalid(format!(
            "longer than the {} MiB a config, questionnaire or margins file may have",
            MAX_TEXT_FILE >> 20
        )));
    }
    Ok(text)
}

/// Bytes for people: `25.7 GB`, `780 MB`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_text_inputs_must_be_regular_files() {
        let e = read_text_file(std::path::Path::new("/dev/zero")).expect_err("a device");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = std::env::temp_dir().join(format!("cvsurvey-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let e = read_text_file(&dir).expect_err("a folder");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let file = dir.join("ok.toml");
        std::fs::write(&file, "a = 1\n").expect("write");
        assert_eq!(read_text_file(&file).expect("read"), "a = 1\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn limits_are_read_with_units() {
        assert_eq!(parse_limit("8G"), Some(8 << 30));
        assert_eq!(parse_limit("500m"), Some(500 << 20));
        assert_eq!(parse_limit("1048576"), Some(1_048_576));
        assert_eq!(parse_limit("lots"), None);
    }

    #[test]
    fn a_need_beyond_the_machine_is_refused_with_both_figures() {
        let Some(have) = system_available() else {
            return; // no /proc/meminfo: nothing to compare with
        };
        assert!(have > 0);
        if std::env::var_os("CVSURVEY_MEMORY_LIMIT").is_some() {
            return;
        }
        assert!(check(have / 2).is_ok());
        let e = check(have.saturating_mul(4)).expect_err("four times the memory");
        assert!(e.contains("needs about") && e.contains("available"), "{e}");
        assert_eq!(human(25_700_000_000), "25.7 GB");
        assert_eq!(human(780_000_000), "780 MB");
    }
}
