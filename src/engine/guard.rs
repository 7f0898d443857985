//! The read-only guard: the first of two layers (DataFusion's `SQLOptions` is the second) that
//! keep every SQL surface of auditlake from creating, changing or writing anything.
//!
//! A statement passes only if it is a query (or `SHOW`, `DESCRIBE`, `EXPLAIN` of one) and no
//! part of it writes: not `SELECT ... INTO`, not a CTE or set operation whose body is an
//! `INSERT`, `UPDATE`, `DELETE` or `MERGE`.

use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Statement, Visit, Visitor};

use crate::error::{Error, Result};

/// How deep expressions may nest. Planning costs grow with the square of the depth (each level
/// names its whole subtree): 1,000 plans in a fraction of a second, 20,000 would take many
/// minutes, and deeper still would exhaust the stack.
pub const MAX_EXPRESSION_DEPTH: usize = 1_000;

/// Refuses anything but a single read-only statement, and expressions nested too deep to plan.
pub fn check_read_only(sql: &str) -> Result<()> {
    let statements = DFParser::parse_sql(sql)?;
    if statements.len() != 1 {
        return Err(Error::StatementCount { found: statements.len() });
    }
    if let DfStatement::Statement(s) = &statements[0] {
        let mut depth = Depth { current: 0 };
        if s.visit(&mut depth).is_break() {
            return Err(Error::TooDeep { limit: MAX_EXPRESSION_DEPTH });
        }
    }
    let refused = |what: String| Err(Error::ReadOnly { statement: what });
    match &statements[0] {
        DfStatement::Statement(s) => statement_writes(s).map_or(Ok(()), refused),
        DfStatement::Explain(e) => match e.statement.as_ref() {
            DfStatement::Statement(s) => statement_writes(s).map_or(Ok(()), refused),
            _ => refused("EXPLAIN of a write".into()),
        },
        DfStatement::CreateExternalTable(_) => refused("CREATE EXTERNAL TABLE".into()),
        DfStatement::CopyTo(_) => refused("COPY".into()),
        DfStatement::Reset(_) => refused("RESET".into()),
    }
}

/// [`check_read_only`] for one statement already parsed (by `serve`'s PostgreSQL parser).
/// Statements that change only the client's session (`SET`, transactions) are the caller's to
/// judge; here they are refused like any other.
pub fn check_statement(s: &Statement) -> Result<()> {
    let mut depth = Depth { current: 0 };
    if s.visit(&mut depth).is_break() {
        return Err(Error::TooDeep { limit: MAX_EXPRESSION_DEPTH });
    }
    let refused = match s {
        Statement::Explain { statement, .. } => statement_writes(statement),
        other => statement_writes(other),
    };
    refused.map_or(Ok(()), |what| Err(Error::ReadOnly { statement: what }))
}

/// Tracks expression nesting; stops the walk past the limit.
struct Depth {
    current: usize,
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.current += 1;
        if self.current > MAX_EXPRESSION_DEPTH { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.current -= 1;
        ControlFlow::Continue(())
    }
}

/// `None` when the statement only reads; otherwise its leading keywords, for the message.
fn statement_writes(s: &Statement) -> Option<String> {
    match s {
        Statement::Query(q) => query_writes(q),
        Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ExplainTable { .. } => None,
        other => Some(keywords(other)),
    }
}

/// A query writes when a SELECT in it has INTO, or a body (of the query, a CTE, a set
/// operation or a parenthesised query) is a DML statement. Subqueries inside expressions are
/// left to DataFusion's guard, which checks the whole plan.
fn query_writes(q: &Query) -> Option<String> {
    if let Some(with) = &q.with {
        for cte in &with.cte_tables {
            if let Some(w) = query_writes(&cte.query) {
                return Some(w);
            }
        }
    }
    set_expr_writes(&q.body)
}

fn set_expr_writes(body: &SetExpr) -> Option<String> {
    match body {
        SetExpr::Select(select) => select.into.as_ref().map(|_| "SELECT INTO".to_string()),
        SetExpr::Query(q) => query_writes(q),
        SetExpr::SetOperation { left, right, .. } => set_expr_writes(left).or_else(|| set_expr_writes(right)),
        SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => Some(keywords(s)),
        SetExpr::Values(_) | SetExpr::Table(_) => None,
    }
}

/// "DROP TABLE", "CREATE VIEW", but "INSERT", "DELETE", "SET".
fn keywords(s: &Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let first = words.first().copied().unwrap_or("statement").to_uppercase();
    let two = matches!(first.as_str(), "CREATE" | "DROP" | "ALTER" | "TRUNCATE");
    if two && words.len() > 1 { format!("{first} {}", words[1].to_uppercase()) } else { first }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_allowed() {
        for sql in [
            "SELECT count(*) FROM audit_log",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "EXPLAIN SELECT 1",
            "SHOW TABLES",
            "select action from audit_log where date = '2026-09-01' order by 1",
        ] {
            check_read_only(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn writes_are_refused_with_their_name() {
        for (sql, name) in [
            ("DROP TABLE audit_log", "DROP TABLE"),
            ("CREATE TABLE x AS SELECT 1", "CREATE TABLE"),
            ("INSERT INTO audit_log VALUES (1)", "INSERT"),
            ("DELETE FROM audit_log", "DELETE"),
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'", "CREATE EXTERNAL TABLE"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("EXPLAIN INSERT INTO audit_log VALUES (1)", "INSERT"),
            // Regression (issue 19): these reached DataFusion's guard, the second layer.
            ("SELECT * INTO copy FROM audit_log", "SELECT INTO"),
            ("WITH a AS (SELECT 1) INSERT INTO audit_log SELECT * FROM a", "INSERT"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("PREPARE p AS SELECT 1", "PREPARE"),
            ("RESET datafusion.execution.batch_size", "RESET"),
        ] {
            let err = check_read_only(sql).unwrap_err();
            match &err {
                Error::ReadOnly { statement } => assert_eq!(statement, name, "{sql}"),
                other => panic!("{sql}: {other}"),
            }
            assert!(err.to_string().contains("read-only"));
        }
    }

    #[test]
    fn expressions_nested_too_deep_are_refused_before_planning() {
        // Regression (issue 19): a deep expression overflowed the stack, or planned for minutes.
        // Dropping a 30,000-deep tree recurses: run with the stack the binary gives its threads.
        let deep = format!("SELECT {} AS n", vec!["1"; 30_000].join(" + "));
        let refused = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || matches!(check_read_only(&deep), Err(Error::TooDeep { .. })))
            .unwrap()
            .join()
            .unwrap();
        assert!(refused);
        let fine = format!("SELECT {} AS n", vec!["1"; 500].join(" + "));
        check_read_only(&fine).unwrap();
    }

    #[test]
    fn several_statements_are_refused() {
        assert!(matches!(check_read_only("SELECT 1; DROP TABLE audit_log"), Err(Error::StatementCount { found: 2 })));
    }
}
