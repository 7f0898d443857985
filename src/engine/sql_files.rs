//! A user's folder of `.sql` files (named queries, report tables): read once, in name order.

use std::path::Path;

use crate::error::{Error, Result};

/// One `.sql` file of a user's folder.
pub struct SqlFile {
    /// The file name without `.sql`.
    pub name: String,
    pub path: std::path::PathBuf,
    pub sql: String,
}

/// The `.sql` files directly in `dir`, sorted by name; other files are ignored.
pub fn read(dir: &Path) -> Result<Vec<SqlFile>> {
    let err = |source| Error::QueriesDir { path: dir.display().to_string(), source };
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(err)?.collect::<std::io::Result<_>>().map_err(err)?;
    entries.sort_by_key(|e| e.file_name());
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
        let sql = std::fs::read_to_string(&path).map_err(err)?;
        out.push(SqlFile { name, path, sql });
    }
    Ok(out)
}

/// Test helper: asserts that the `.sql` files in `queries/<folder>` are exactly `embedded`, so
/// a new file cannot be forgotten in the binary.
#[cfg(test)]
pub(crate) fn assert_all_embedded(folder: &str, embedded: &[(&str, &str)]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries").join(folder);
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "sql").then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = embedded.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(on_disk, names);
}
