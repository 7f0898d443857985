//! The tree's rules, read from the sources: every commit goes through `lake::write`, no job
//! imports another, the layers below the jobs import none of them, and the library never sees
//! clap or anyhow (the binary's `main.rs` and `cli/` own them).

use std::path::{Path, PathBuf};

const JOBS: &[&str] = &["ingest", "query", "maintain", "report", "generate", "verify", "export"];
const BELOW_JOBS: &[&str] = &["engine", "lake", "schema", "time", "error"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, as (path relative to `src/`, text).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src()).unwrap().to_string_lossy().replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The top-level module a source file belongs to (`ingest/run.rs` -> `ingest`).
fn module_of(rel: &str) -> &str {
    rel.split('/').next().unwrap().trim_end_matches(".rs")
}

/// Lines that are code, not comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter(|(_, l)| !l.trim_start().starts_with("//")).map(|(i, l)| (i + 1, l))
}

fn violations(check: impl Fn(&str, &str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for (rel, text) in sources() {
        for (n, line) in code_lines(&text) {
            if check(&rel, line) {
                found.push(format!("src/{rel}:{n}: {}", line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_lake_write_commits_to_the_table() {
    let committing = ["CommitBuilder", "create_checkpoint", ".vacuum()", ".create()", "RecordBatchWriter::for_table"];
    let found = violations(|rel, line| rel != "lake/write.rs" && committing.iter().any(|c| line.contains(c)));
    assert!(found.is_empty(), "commits outside src/lake/write.rs:\n{}", found.join("\n"));
}

#[test]
fn no_job_imports_another_and_lower_layers_import_no_job() {
    let found = violations(|rel, line| {
        let module = module_of(rel);
        let others: Vec<&&str> = if JOBS.contains(&module) {
            JOBS.iter().filter(|j| **j != module).collect()
        } else if BELOW_JOBS.contains(&module) {
            JOBS.iter().collect()
        } else {
            return false;
        };
        others.iter().any(|job| line.contains(&format!("crate::{job}::")) || line.contains(&format!("crate::{job};")))
    });
    assert!(found.is_empty(), "imports across jobs or up the layers:\n{}", found.join("\n"));
}

#[test]
fn the_library_never_sees_clap_or_anyhow() {
    let found = violations(|rel, line| {
        let binary = rel == "main.rs" || rel.starts_with("cli/");
        !binary && (line.contains("clap::") || line.contains("anyhow"))
    });
    assert!(found.is_empty(), "clap or anyhow in the library:\n{}", found.join("\n"));
}

#[test]
fn the_rules_catch_what_they_name() {
    // The checks above would pass vacuously if they never matched; show they match.
    assert_eq!(module_of("ingest/run.rs"), "ingest");
    let lines: Vec<_> = code_lines("// CommitBuilder in a comment\nlet b = CommitBuilder::default();").collect();
    assert_eq!(lines, vec![(2, "let b = CommitBuilder::default();")]);
    assert!(sources().iter().any(|(rel, text)| rel == "lake/write.rs" && text.contains("CommitBuilder")));
}
