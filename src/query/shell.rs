//! `auditlake shell`: an interactive SQL prompt over a [`super::live`] session, in the habits of
//! psql and datafusion-cli. Statements end with `;` and may span lines; backslash commands act
//! at once. Ctrl-C cancels the running query (or clears the line) and keeps the shell; Ctrl-D
//! or `\q` leaves. With stdin not a terminal, statements are read from it without a prompt.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::prelude::SessionContext;
use rustyline::error::ReadlineError;

use super::live;
use super::named::{self, NamedQuery};
use super::output::{self, OutputFormat};
use crate::engine::{self, Engine};
use crate::error::Result;
use crate::lake::Lake;
use crate::schema::{self, TABLE_NAME};

pub struct ShellOptions {
    pub queries_dir: Option<PathBuf>,
    /// Where line history is kept; `None` keeps none.
    pub history: Option<PathBuf>,
}

const HELP: &str = r"Statements end with ';' and may span lines. Commands:
  \d              list tables and views        \d NAME     columns of a table or view
  \n              list named queries           \n NAME [key=value ...]   run one
  \format table|csv|json|ndjson                \timing     show how long each query took
  \i FILE         run the statements in FILE   \?          this help
  \q              quit (or Ctrl-D)             Ctrl-C      cancel the query, or clear the line
The table is audit_log, read at its newest version by every query; each named query without
parameters is also a view (SELECT * FROM by_action).";

struct Shell {
    ctx: SessionContext,
    queries: Vec<NamedQuery>,
    queries_dir: Option<PathBuf>,
    format: OutputFormat,
    timing: bool,
}

/// Runs the shell until `\q`, Ctrl-D or the end of input; exit status 0, or 1 when reading
/// statements from a pipe and one of them failed.
pub async fn run(lake: &Lake, opts: &ShellOptions) -> Result<u8> {
    let ctx = Engine::Local.context().await?;
    live::register(lake, &ctx, opts.queries_dir.as_deref()).await?;
    let queries = named::catalog(opts.queries_dir.as_deref())?.into_values().collect();
    let mut shell =
        Shell { ctx, queries, queries_dir: opts.queries_dir.clone(), format: OutputFormat::Table, timing: false };
    if std::io::stdin().is_terminal() {
        shell.interactive(opts.history.as_deref()).await
    } else {
        let mut text = String::new();
        for line in std::io::stdin().lock().lines() {
            text.push_str(&line.map_err(|e| crate::Error::Output { path: "stdin".into(), source: e })?);
            text.push('\n');
        }
        Ok(if shell.run_script(&text).await { 0 } else { 1 })
    }
}

impl Shell {
    async fn interactive(&mut self, history: Option<&Path>) -> Result<u8> {
        let mut editor = rustyline::DefaultEditor::new().map_err(|e| other(format!("terminal: {e}")))?;
        if let Some(path) = history {
            let _ = editor.load_history(path);
        }
        println!("auditlake shell on {TABLE_NAME}; \\? for help, \\q to quit");
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() { "auditlake> " } else { "auditlake-> " };
            let line = tokio::task::block_in_place(|| editor.readline(prompt));
            match line {
                Ok(line) => {
                    let trimmed = line.trim();
                    if buffer.is_empty() && trimmed.starts_with('\\') {
                        let _ = editor.add_history_entry(trimmed);
                        if self.command(trimmed).await.is_none() {
                            break;
                        }
                        continue;
                    }
                    buffer.push_str(&line);
                    buffer.push('\n');
                    if let Some(statements) = complete_statements(&mut buffer) {
                        let _ = editor.add_history_entry(statements.trim());
                        self.run_script(&statements).await;
                    }
                }
                Err(ReadlineError::Interrupted) => buffer.clear(),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(other(format!("terminal: {e}"))),
            }
        }
        if let Some(path) = history {
            let _ = editor.save_history(path);
        }
        Ok(0)
    }

    /// Runs every statement and command in `text`; false when one failed.
    async fn run_script(&mut self, text: &str) -> bool {
        let mut ok = true;
        let mut buffer = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if buffer.trim().is_empty() && trimmed.starts_with('\\') {
                match Box::pin(self.command(trimmed)).await {
                    Some(done) => ok &= done,
                    None => break,
                }
                continue;
            }
            buffer.push_str(line);
            buffer.push('\n');
            if let Some(statements) = complete_statements(&mut buffer) {
                for sql in split_statements(&statements) {
                    ok &= self.statement(&sql, None).await;
                }
            }
        }
        if !buffer.trim().is_empty() {
            ok &= self.statement(buffer.trim(), None).await;
        }
        ok
    }

    /// Runs one backslash command: whether it succeeded, or `None` for `\q`.
    async fn command(&mut self, line: &str) -> Option<bool> {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or_default();
        let args: Vec<&str> = words.collect();
        match (name, args.as_slice()) {
            ("\\q", _) => return None,
            ("\\?" | "\\h" | "\\help", _) => println!("{HELP}"),
            ("\\d", []) => self.list_tables(),
            ("\\d", [table]) => self.describe(table).await,
            ("\\n", []) => {
                for q in &self.queries {
                    let params = q.params.iter().map(|p| format!(" {p}=...")).collect::<String>();
                    println!("{:<22} {}{}", q.name, q.description, params);
                }
            }
            ("\\n", [query, params @ ..]) => return Some(Box::pin(self.named(query, params)).await),
            ("\\timing", []) => {
                self.timing = !self.timing;
                println!("Timing is {}.", if self.timing { "on" } else { "off" });
            }
            ("\\format", [f]) => match *f {
                "table" => self.format = OutputFormat::Table,
                "csv" => self.format = OutputFormat::Csv,
                "json" => self.format = OutputFormat::Json,
                "ndjson" => self.format = OutputFormat::Ndjson,
                other => {
                    eprintln!("error: unknown format '{other}': table, csv, json or ndjson");
                    return Some(false);
                }
            },
            ("\\i", [file]) => {
                return match std::fs::read_to_string(file) {
                    Ok(text) => Some(Box::pin(self.run_script(&text)).await),
                    Err(e) => {
                        eprintln!("error: cannot read {file}: {e}");
                        Some(false)
                    }
                };
            }
            _ => {
                eprintln!("error: unknown command '{line}'; \\? lists them");
                return Some(false);
            }
        }
        Some(true)
    }

    fn list_tables(&self) {
        println!("{:<22} {:<6} description", "name", "type");
        println!("{:<22} {:<6} {}", TABLE_NAME, "table", "Torq audit log entries, one row per event");
        for q in self.queries.iter().filter(|q| q.params.is_empty()) {
            println!("{:<22} {:<6} {}", q.name, "view", q.description);
        }
    }

    async fn describe(&self, table: &str) {
        match self.ctx.table(table).await {
            Ok(df) => {
                println!("{:<24} {:<26} {:<5} description", "column", "type", "null");
                for f in df.schema().fields() {
                    let about = if table == TABLE_NAME { schema::describe(f.name()) } else { "" };
                    println!(
                        "{:<24} {:<26} {:<5} {about}",
                        f.name(),
                        schema::type_name(f.data_type()),
                        f.is_nullable()
                    );
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }

    async fn named(&mut self, name: &str, params: &[&str]) -> bool {
        let query = match named::find(name, self.queries_dir.as_deref()) {
            Ok(q) => q,
            Err(e) => {
                eprintln!("error: {e}");
                return false;
            }
        };
        let mut given = HashMap::new();
        for p in params {
            match p.split_once('=') {
                Some((k, v)) => given.insert(k.to_string(), v.to_string()),
                None => {
                    eprintln!("error: parameters are key=value, not '{p}'");
                    return false;
                }
            };
        }
        match query.param_values(&given) {
            Ok(values) => self.statement(&query.sql, values).await,
            Err(e) => {
                eprintln!("error: {e}");
                false
            }
        }
    }

    /// Plans and runs one statement, printing its rows; Ctrl-C cancels it. False on error.
    async fn statement(&self, sql: &str, params: Option<datafusion::common::ParamValues>) -> bool {
        let started = Instant::now();
        let run = async {
            let mut df = engine::sql_in(&self.ctx, sql).await?;
            if let Some(p) = params {
                df = df.with_param_values(p)?;
            }
            output::write(df, self.format, None).await
        };
        let result = tokio::select! {
            r = run => r,
            _ = tokio::signal::ctrl_c() => {
                let _ = std::io::stdout().flush();
                eprintln!("\ncancelled");
                return false;
            }
        };
        match result {
            Ok(rows) => {
                if self.format == OutputFormat::Table {
                    println!("({rows} row{})", if rows == 1 { "" } else { "s" });
                }
                if self.timing {
                    println!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1e3);
                }
                true
            }
            Err(e) => {
                eprintln!("error: {e}");
                false
            }
        }
    }
}

fn other(reason: String) -> crate::Error {
    crate::Error::Output { path: "terminal".into(), source: std::io::Error::other(reason) }
}

/// Takes the complete statements (up to the last `;` outside quotes and comments) out of
/// `buffer`, leaving the unfinished rest.
fn complete_statements(buffer: &mut String) -> Option<String> {
    let end = statement_ends(buffer).last().copied()?;
    let rest = buffer.split_off(end + 1);
    let done = std::mem::replace(buffer, rest.trim_start().to_string());
    Some(done)
}

/// The statements of `text`, split at `;` outside quotes and comments.
fn split_statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in statement_ends(text) {
        let sql = text[start..end].trim();
        if !sql.is_empty() {
            out.push(sql.to_string());
        }
        start = end + 1;
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Byte offsets of the `;` that end statements: not in '...', "...", -- or /* */.
fn statement_ends(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut ends = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => ends.push(i),
            _ => {}
        }
        i += 1;
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        let text = "SELECT ';' AS a; -- not; here\nSELECT /* ; */ 2;\nSELECT 3";
        assert_eq!(split_statements(text), vec!["SELECT ';' AS a", "-- not; here\nSELECT /* ; */ 2", "SELECT 3"]);
        let mut buffer = "SELECT 1;\nSELECT\n".to_string();
        assert_eq!(complete_statements(&mut buffer).as_deref(), Some("SELECT 1;"));
        assert_eq!(buffer, "SELECT\n");
        assert_eq!(complete_statements(&mut buffer), None);
    }
}
