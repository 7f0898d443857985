//! Result formats: a table for people, CSV / JSON / NDJSON for tools, Parquet for more analysis.
//!
//! Log values are attacker-controlled: the table shows control and bidi characters as escapes
//! and CSV defuses formulas ([`crate::text`]); JSON, NDJSON and Parquet keep values exact.
//!
//! Every format writes as DataFusion produces rows: CSV, JSON, NDJSON and Parquet batch by batch,
//! `table` (whose column widths depend on the rows shown) in pages of 10,000 rows.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::csv;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::json::{ArrayWriter, LineDelimitedWriter};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::DataFrame;
use futures::TryStreamExt;

use crate::error::{Error, Result};
use crate::text;

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

/// The batch with every text value (also inside lists) passed through `f`: log values made
/// visible for a terminal, or defused for a spreadsheet. Text columns come out as Utf8.
fn map_text(batch: &RecordBatch, f: impl Fn(&str) -> std::borrow::Cow<'_, str> + Copy) -> Result<RecordBatch> {
    fn column(array: &ArrayRef, f: impl Fn(&str) -> std::borrow::Cow<'_, str> + Copy) -> Result<Option<ArrayRef>> {
        Ok(match array.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let utf8 = cast(array, &DataType::Utf8)?;
                let mapped: StringArray =
                    utf8.as_string::<i32>().iter().map(|v| v.map(|s| f(s).into_owned())).collect();
                Some(Arc::new(mapped))
            }
            DataType::List(_) => {
                let list = array.as_list::<i32>();
                match column(list.values(), f)? {
                    None => None,
                    Some(values) => {
                        let item = Arc::new(Field::new("item", values.data_type().clone(), true));
                        Some(Arc::new(ListArray::try_new(item, list.offsets().clone(), values, list.nulls().cloned())?))
                    }
                }
            }
            _ => None,
        })
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        match column(array, f)? {
            Some(mapped) => {
                fields.push(Field::new(field.name(), mapped.data_type().clone(), true));
                columns.push(mapped);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(array.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// Rows in one page of the `table` format.
const TABLE_PAGE_ROWS: usize = 10_000;

/// Runs `df` and writes its rows in `format`; returns the row count.
pub async fn write(df: DataFrame, format: OutputFormat, out: Option<&Path>) -> Result<u64> {
    let name = out.map_or("stdout".to_string(), |p| p.display().to_string());
    let io_err = |source: io::Error| Error::Output { path: name.clone(), source };
    if format == OutputFormat::Parquet && out.is_none() {
        return Err(Error::ParquetNeedsFile);
    }
    let schema: SchemaRef = df.schema().inner().clone();
    let mut stream = df.execute_stream().await?;
    let mut w = sink(out)?;
    let mut rows = 0u64;
    match format {
        OutputFormat::Table => {
            // Column widths depend on the rows shown, so rows are shown in pages: a result of
            // any size never sits in memory whole, and a small one is one table as before.
            let mut page: Vec<RecordBatch> = Vec::new();
            let mut page_rows = 0;
            let mut pages = 0;
            while let Some(b) = stream.try_next().await? {
                rows += b.num_rows() as u64;
                page_rows += b.num_rows();
                page.push(map_text(&b, text::visible)?);
                if page_rows >= TABLE_PAGE_ROWS {
                    writeln!(w, "{}", pretty_format_batches(&page)?).map_err(io_err)?;
                    page.clear();
                    page_rows = 0;
                    pages += 1;
                }
            }
            if pages == 0 && page.is_empty() {
                page.push(RecordBatch::new_empty(schema));
            }
            if !page.is_empty() {
                writeln!(w, "{}", pretty_format_batches(&page)?).map_err(io_err)?;
            }
        }
        OutputFormat::Json => {
            let mut jw = ArrayWriter::new(&mut w);
            while let Some(b) = stream.try_next().await? {
                rows += b.num_rows() as u64;
                jw.write(&b)?;
            }
            jw.finish()?;
            w.write_all(b"\n").map_err(io_err)?;
        }
        OutputFormat::Csv => {
            let mut cw = csv::WriterBuilder::new().with_header(true).build(&mut w);
            let mut wrote = false;
            while let Some(b) = stream.try_next().await? {
                rows += b.num_rows() as u64;
                cw.write(&map_text(&lists_as_json_text(&b)?, text::defuse)?)?;
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
            let parquet_err = |source| Error::ParquetOutput { path: name.clone(), source };
            let mut pw = ArrowWriter::try_new(&mut w, schema, None).map_err(parquet_err)?;
            while let Some(b) = stream.try_next().await? {
                rows += b.num_rows() as u64;
                pw.write(&b).map_err(parquet_err)?;
            }
            pw.close().map_err(parquet_err)?;
        }
    }
    w.flush().map_err(io_err)?;
    Ok(rows)
}
