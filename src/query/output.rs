//! Result formats: a table for people, CSV / JSON / NDJSON for tools, Parquet for more analysis.
//!
//! Streaming formats (CSV, NDJSON, Parquet) write batch by batch as DataFusion produces them;
//! `table` and `json` (one array) are written when the last batch has arrived.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::csv;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::json::{ArrayWriter, LineDelimitedWriter};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::DataFrame;
use futures::TryStreamExt;

use crate::error::{Error, Result};

/// `--format` of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
}

impl OutputFormat {
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Ndjson => "ndjson",
            OutputFormat::Parquet => "parquet",
        }
    }
}

/// Where results go: stdout or a file.
fn sink(out: Option<&Path>) -> Result<Box<dyn Write + Send>> {
    Ok(match out {
        None => Box::new(BufWriter::new(io::stdout())),
        Some(path) => Box::new(BufWriter::new(
            File::create(path).map_err(|source| Error::Output { path: path.display().to_string(), source })?,
        )),
    })
}

/// CSV has no lists: a list column (such as `tags`) becomes its JSON text, `["a","b"]`.
fn lists_as_json_text(batch: &RecordBatch) -> Result<RecordBatch> {
    if !batch.schema().fields().iter().any(|f| matches!(f.data_type(), DataType::List(_) | DataType::LargeList(_))) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !matches!(field.data_type(), DataType::List(_) | DataType::LargeList(_)) {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let one = RecordBatch::try_new(Arc::new(Schema::new(vec![field.as_ref().clone()])), vec![column.clone()])?;
        let mut buf = Vec::new();
        {
            let mut jw = LineDelimitedWriter::new(&mut buf);
            jw.write(&one)?;
            jw.finish()?;
        }
        // One `{"name": [...]}` line per row; a null list writes `{}`.
        let key = format!("{{{}:", serde_json::to_string(field.name()).expect("string"));
        let texts: StringArray = buf
            .split(|b| *b == b'\n')
            .take(batch.num_rows())
            .map(|line| {
                let line = std::str::from_utf8(line).unwrap_or("");
                line.strip_prefix(&key).and_then(|rest| rest.strip_suffix('}')).map(str::to_string)
            })
            .collect();
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(texts));
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// Runs `df` and writes its rows in `format`; returns the row count.
pub async fn write(df: DataFrame, format: OutputFormat, out: Option<&Path>) -> Result<u64> {
    let name = out.map_or("stdout".to_string(), |p| p.display().to_string());
    let io_err = |source: io::Error| Error::Output { path: name.clone(), source };
    if format == OutputFormat::Parquet && out.is_none() {
        return Err(Error::InvalidArgument("--format parquet needs --out FILE (Parquet is binary)".into()));
    }
    let schema: SchemaRef = df.schema().inner().clone();
    let mut stream = df.execute_stream().await?;
    let mut w = sink(out)?;
    let mut rows = 0u64;
    match format {
        OutputFormat::Table | OutputFormat::Json => {
            let mut batches: Vec<RecordBatch> = Vec::new();
            while let Some(b) = stream.try_next().await? {
                rows += b.num_rows() as u64;
                batches.push(b);
            }
            if format == OutputFormat::Table {
                if batches.is_empty() {
                    batches.push(RecordBatch::new_empty(schema));
                }
                writeln!(w, "{}", pretty_format_batches(&batches)?).map_err(io_err)?;
            } else {
                let mut jw = ArrayWriter::new(&mut w);
                for b in &batches {
                    jw.write(b)?;
                }
                jw.finish()?;
                w.write_all(b"\n").map_err(io_err)?;
            }
        }
        OutputFormat::Csv => {
            let mut cw = csv::WriterBuilder::new().with_header(true).build(&mut w);
            let mut wrote = false;
            while let Some(b) = stream.try_next().await? {
                rows += b.num_rows() as u64;
                cw.write(&lists_as_json_text(&b)?)?;
                wrote = true;
            }
            if !wrote {
                cw.write(&lists_as_json_text(&RecordBatch::new_empty(schema))?)?;
            }
        }
        OutputFormat::Ndjson => {
            let mut jw = LineDelimitedWriter::new(&mut w);
            while let Some(b) = stream.try_next().await? {
                rows += b.num_rows() as u64;
                jw.write(&b)?;
            }
            jw.finish()?;
        }
        OutputFormat::Parquet => {
            let mut pw =
                ArrowWriter::try_new(&mut w, schema, None).map_err(|e| Error::InvalidArgument(e.to_string()))?;
            while let Some(b) = stream.try_next().await? {
                rows += b.num_rows() as u64;
                pw.write(&b).map_err(|e| Error::InvalidArgument(e.to_string()))?;
            }
            pw.close().map_err(|e| Error::InvalidArgument(e.to_string()))?;
        }
    }
    w.flush().map_err(io_err)?;
    Ok(rows)
}
