//! Partial aggregation that groups each batch by the bytes of its keys' Arrow views before it
//! hashes a single string.
//!
//! The columns people group audit logs by (action, actor, actor type, scenario) hold a few
//! hundred distinct strings, and Parquet stores them dictionary-encoded. The reader turns each
//! row into a 16-byte view that points into the page's dictionary, so equal strings in a batch
//! have equal views. DataFusion's hash aggregation does not know that: it hashes and compares
//! every row's string, which is most of what `GROUP BY action` costs on a large lake, and why its
//! cost per row was several times DuckDB's (issue 21), which aggregates dictionary codes.
//!
//! [`ViewGroupsAggregateExec`] replaces a partial `AggregateExec` (the per-partition half of a
//! two-phase aggregation) whose keys are string views or fixed-width values. Per batch it:
//! 1. maps each row to a batch-local group by its keys' raw 16-byte words (views, or values
//!    widened to 128 bits): integer hashing, no string is read;
//! 2. takes one row of each local group and interns those few rows in DataFusion's own group
//!    table, which compares the actual values (so strings at different places, or from different
//!    dictionaries, still meet in one group);
//! 3. updates DataFusion's own accumulators with the resulting group of every row.
//!
//! Keys read as Parquet dictionaries ([`super::dictionary_keys`]) skip step 1: a single key maps
//! each code to its group with one array lookup, kept while batches share the dictionary; several
//! keys number each column's values, pack the numbers into one integer and map that to the group.
//!
//! Equal words imply equal values (a view names its length, prefix, buffer and offset), so a
//! local group never mixes values; equal values with different words only make more local
//! groups. The answer is DataFusion's in every case. Where keys are mostly distinct (a batch
//! has more local groups than half its rows), the batch goes to DataFusion's table directly,
//! and past DataFusion's own probe (`skip_partial_aggregation_probe_*`) rows pass on as states
//! unaggregated, as DataFusion does. The output is the partial aggregate's, for the final
//! aggregate above, which is DataFusion's.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, RecordBatch, UInt32Array, new_null_array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Int32Type, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::aggregates::{
    AggregateExec, AggregateMode, PhysicalGroupBy, aggregate_expressions, evaluate_group_by, evaluate_many,
};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties};
use futures::StreamExt;

/// Replaces eligible partial aggregations with [`ViewGroupsAggregateExec`]. Local sessions
/// only: a Ballista cluster cannot carry an operator of auditlake's.
#[derive(Debug, Default)]
pub struct ViewGroupsRule;

impl PhysicalOptimizerRule for ViewGroupsRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if !eligible(aggregate)? {
                return Ok(Transformed::no(node));
            }
            let input = match super::dictionary_keys::input_with_dictionary_keys(aggregate)? {
                Some(input) => input,
                None => Arc::clone(aggregate.input()),
            };
            let aggregate = Arc::new(aggregate.clone());
            Ok(Transformed::yes(Arc::new(ViewGroupsAggregateExec { aggregate, input }) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "view_groups"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A plain partial aggregation (no grouping sets, filters, ordering or limits) over keys that
/// all have raw words, at least one of them a string view, with accumulators that take group
/// indices; of the DISTINCT aggregates, only counts of strings ([`super::distinct_count`]).
fn eligible(aggregate: &AggregateExec) -> DfResult<bool> {
    let group_by = aggregate.group_expr();
    if *aggregate.mode() != AggregateMode::Partial
        || group_by.expr().is_empty()
        || group_by.has_grouping_set()
        || !group_by.is_single()
        || aggregate.limit_options().is_some()
        || !aggregate.dynamic_expressions_produced().is_empty()
        || *aggregate.input_order_mode() != InputOrderMode::Linear
        || aggregate.filter_expr().iter().any(Option::is_some)
    {
        return Ok(false);
    }
    let input = aggregate.input_schema();
    let simple = |a: &Arc<datafusion::physical_expr::aggregate::AggregateFunctionExpr>| {
        if a.is_distinct() {
            super::distinct_count::supported(a, &input)
        } else {
            a.groups_accumulator_supported() && a.order_bys().is_empty()
        }
    };
    if !aggregate.aggr_expr().iter().all(simple) {
        return Ok(false);
    }
    let mut any_view = false;
    for (expr, _) in group_by.expr() {
        let t = expr.data_type(&input)?;
        any_view |= t == DataType::Utf8View;
        if t != DataType::Utf8View && fixed_width(&t).is_none() {
            return Ok(false);
        }
    }
    Ok(any_view)
}

/// Byte width of a type whose values are compared by their bits (integers, dates, times,
/// timestamps; floats too, where equal bits are equal values), up to 8 bytes.
fn fixed_width(t: &DataType) -> Option<usize> {
    if matches!(t, DataType::Boolean | DataType::Dictionary(..)) {
        return None;
    }
    t.primitive_width().filter(|w| *w <= 8)
}

/// The partial aggregation of `aggregate`, grouping each batch by raw key words first.
#[derive(Debug)]
pub struct ViewGroupsAggregateExec {
    /// The aggregation replaced: its expressions, schema and properties are this one's.
    aggregate: Arc<AggregateExec>,
    /// Its input, or the same with some string keys read as dictionaries
    /// ([`super::dictionary_keys`]); the same rows either way.
    input: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for ViewGroupsAggregateExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ViewGroups")?;
        self.aggregate.fmt_as(t, f)
    }
}

impl ExecutionPlan for ViewGroupsAggregateExec {
    fn name(&self) -> &str {
        "ViewGroupsAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let input = children.into_iter().next().expect("one child");
        if Arc::ptr_eq(&input, &self.input) {
            return Ok(self);
        }
        // A new input of the original types: plan the aggregation over it again.
        let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        let replanned = Arc::clone(&self.aggregate).replace_children(vec![Arc::clone(&input)], options)?;
        let aggregate = replanned.downcast_ref::<AggregateExec>().expect("an AggregateExec").clone();
        Ok(Arc::new(ViewGroupsAggregateExec { aggregate: Arc::new(aggregate), input }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let schema = self.aggregate.schema();
        let options = context.session_config().options();
        let aggregation = Aggregation::new(&self.aggregate, partition, &context, &options.execution)?;
        let state = (input, aggregation, false);
        let stream = futures::stream::unfold(state, |(mut input, mut agg, mut done)| async move {
            loop {
                if let Some(batch) = agg.output.pop_front() {
                    return Some((Ok(batch), (input, agg, done)));
                }
                if done {
                    return None;
                }
                let step = match input.next().await {
                    Some(Ok(batch)) => agg.push(&batch),
                    Some(Err(e)) => Err(e),
                    None => {
                        done = true;
                        agg.emit()
                    }
                };
                if let Err(e) = step {
                    agg.output.clear();
                    return Some((Err(e), (input, agg, true)));
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// One partition's aggregation state.
struct Aggregation {
    schema: SchemaRef,
    /// A single grouping set (see `eligible`): its evaluation is one list of key columns.
    group_by: PhysicalGroupBy,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// DataFusion's table of the groups seen, by value.
    groups: Box<dyn GroupValues>,
    /// The key columns' types in `groups` and in the output; keys read as dictionaries are
    /// cast to these.
    key_types: Vec<DataType>,
    local: LocalGroups,
    dictionary: DictionaryGroups,
    combined: CombinedGroups,
    /// Each row's group in `groups`, for the batch at hand.
    row_groups: Vec<usize>,
    reservation: MemoryReservation,
    batch_size: usize,
    rows_seen: usize,
    probe_rows: usize,
    probe_ratio: f64,
    /// Past the probe with mostly distinct keys: rows pass on as states.
    skipping: bool,
    output: VecDeque<RecordBatch>,
}

impl Aggregation {
    fn new(
        aggregate: &AggregateExec,
        partition: usize,
        context: &Arc<TaskContext>,
        execution: &datafusion::common::config::ExecutionOptions,
    ) -> DfResult<Self> {
        let input_schema = aggregate.input().schema();
        let group_schema = aggregate.group_expr().group_schema(&input_schema)?;
        let accumulator = |a: &Arc<datafusion::physical_expr::aggregate::AggregateFunctionExpr>| {
            if a.is_distinct() {
                // `eligible` took only the distinct counts of strings.
                Ok(super::distinct_count::accumulator(a.expressions()[0].data_type(&input_schema)?))
            } else {
                a.create_groups_accumulator()
            }
        };
        let accumulators = aggregate.aggr_expr().iter().map(accumulator).collect::<DfResult<Vec<_>>>()?;
        let reservation =
            MemoryConsumer::new(format!("ViewGroupsAggregate[{partition}]")).register(context.memory_pool());
        Ok(Aggregation {
            schema: aggregate.schema(),
            group_by: aggregate.group_expr().clone(),
            arguments: aggregate_expressions(aggregate.aggr_expr(), aggregate.mode(), 0)?,
            accumulators,
            key_types: group_schema.fields().iter().map(|f| f.data_type().clone()).collect(),
            groups: new_group_values(group_schema, &GroupOrdering::None)?,
            local: LocalGroups::default(),
            dictionary: DictionaryGroups::default(),
            combined: CombinedGroups::default(),
            row_groups: Vec::new(),
            reservation,
            batch_size: usize::from(execution.batch_size).max(1),
            rows_seen: 0,
            probe_rows: execution.skip_partial_aggregation_probe_rows_threshold,
            probe_ratio: execution.skip_partial_aggregation_probe_ratio_threshold,
            skipping: false,
            output: VecDeque::new(),
        })
    }

    fn push(&mut self, batch: &RecordBatch) -> DfResult<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let keys = evaluate_group_by(&self.group_by, batch)?.swap_remove(0);
        let values = evaluate_many(&self.arguments, batch)?;
        if self.skipping {
            let mut columns = as_types(&keys, &self.key_types)?;
            for (acc, v) in self.accumulators.iter().zip(&values) {
                columns.extend(acc.convert_to_state(v, None)?);
            }
            self.output.push_back(RecordBatch::try_new(Arc::clone(&self.schema), columns)?);
            return Ok(());
        }

        match keys.as_slice() {
            [key] if key.as_dictionary_opt::<Int32Type>().is_some() => {
                let key = key.as_dictionary::<Int32Type>();
                self.dictionary.group(key, &self.key_types[0], self.groups.as_mut(), &mut self.row_groups)?;
            }
            _ if keys.iter().all(|k| k.as_dictionary_opt::<Int32Type>().is_some())
                && self.combined.group(&keys, &self.key_types, self.groups.as_mut(), &mut self.row_groups)? => {}
            _ => self.local.group(&keys, &self.key_types, self.groups.as_mut(), &mut self.row_groups)?,
        }
        let total = self.groups.len();
        for (acc, v) in self.accumulators.iter_mut().zip(&values) {
            acc.update_batch(v, &self.row_groups, None, total)?;
        }

        let before = self.rows_seen;
        self.rows_seen += rows;
        if before < self.probe_rows && self.rows_seen >= self.probe_rows {
            let ratio = self.groups.len() as f64 / self.rows_seen as f64;
            if ratio >= self.probe_ratio {
                self.emit()?;
                self.skipping = true;
            }
        }
        // Partial results may leave early: when memory runs short, hand on what is held.
        if self.reservation.try_resize(self.size()).is_err() {
            self.emit()?;
            let _ = self.reservation.try_resize(self.size());
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.groups.size()
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
            + self.local.size()
            + self.dictionary.size()
            + self.combined.size()
            + self.row_groups.capacity() * size_of::<usize>()
    }

    /// Hands on every group held, as partial states, in batches of the session's batch size.
    fn emit(&mut self) -> DfResult<()> {
        if self.groups.is_empty() {
            return Ok(());
        }
        let mut columns = self.groups.emit(EmitTo::All)?;
        // Emitting all leaves a multi-column table's hash map pointing at the emitted groups;
        // DataFusion's own aggregation clears it after, and so must this one.
        self.groups.clear_shrink(self.batch_size);
        // The group numbers held for dictionary codes named groups just emitted.
        self.dictionary = DictionaryGroups::default();
        self.combined.group_of_packed.clear();
        for acc in &mut self.accumulators {
            columns.extend(acc.state(EmitTo::All)?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = self.batch_size.min(batch.num_rows() - offset);
            self.output.push_back(batch.slice(offset, len));
            offset += len;
        }
        Ok(())
    }
}

/// A null key's word. No view has it (its length would be 4 GiB), and fixed-width values are
/// widened to 64 bits, so none has bit 127.
const NULL_VIEW: u128 = u128::MAX;
const NULL_FIXED: u128 = 1 << 127;

/// The batch-local grouping by raw words, with its buffers kept between batches.
#[derive(Default)]
struct LocalGroups {
    /// Row-major key words: `width` words a row.
    words: Vec<u128>,
    /// Open-addressing table of local group numbers (`u32::MAX` = empty).
    slots: Vec<u32>,
    /// The first row of each local group, and its hash.
    first_rows: Vec<u32>,
    hashes: Vec<u64>,
    /// Each row's local group.
    local_of_row: Vec<u32>,
    /// Each local group's group in DataFusion's table.
    global_of_local: Vec<usize>,
}

impl LocalGroups {
    fn size(&self) -> usize {
        self.words.capacity() * 16
            + (self.slots.capacity() + self.first_rows.capacity() + self.local_of_row.capacity()) * 4
            + self.hashes.capacity() * 8
            + self.global_of_local.capacity() * size_of::<usize>()
    }

    /// Fills `row_groups` with each row's group in `groups`, interning new groups there.
    fn group(
        &mut self,
        keys: &[ArrayRef],
        key_types: &[DataType],
        groups: &mut dyn GroupValues,
        row_groups: &mut Vec<usize>,
    ) -> DfResult<()> {
        let rows = keys[0].len();
        let width = keys.len();
        self.words.clear();
        self.words.resize(rows * width, 0);
        for (c, key) in keys.iter().enumerate() {
            fill_words(key, &mut self.words, c, width);
        }

        // A table sized for about as many groups as the last batch had, doubled when half full:
        // most batches hold a few hundred keys, and clearing a table sized for every row cost
        // a memset per batch.
        let mut capacity =
            (self.hashes.len() * 4).next_power_of_two().clamp(256, (rows * 2).next_power_of_two().max(256));
        self.slots.clear();
        self.slots.resize(capacity, u32::MAX);
        self.first_rows.clear();
        self.hashes.clear();
        self.local_of_row.clear();
        // Mostly distinct keys gain nothing from a local pass: intern the batch directly.
        let give_up = rows / 2;
        for row in 0..rows {
            let key = &self.words[row * width..(row + 1) * width];
            let hash = hash_words(key);
            let mut slot = hash as usize & (capacity - 1);
            let local = loop {
                let entry = self.slots[slot];
                if entry == u32::MAX {
                    let local = self.first_rows.len() as u32;
                    self.slots[slot] = local;
                    self.first_rows.push(row as u32);
                    self.hashes.push(hash);
                    break local;
                }
                let first = self.first_rows[entry as usize] as usize;
                if self.hashes[entry as usize] == hash
                    && same_words(&self.words[first * width..(first + 1) * width], key)
                {
                    break entry;
                }
                slot = (slot + 1) & (capacity - 1);
            };
            self.local_of_row.push(local);
            if self.first_rows.len() > give_up {
                return groups.intern(&as_types(keys, key_types)?, row_groups);
            }
            if self.first_rows.len() * 2 > capacity {
                capacity *= 2;
                self.slots.clear();
                self.slots.resize(capacity, u32::MAX);
                for (local, hash) in self.hashes.iter().enumerate() {
                    let mut slot = *hash as usize & (capacity - 1);
                    while self.slots[slot] != u32::MAX {
                        slot = (slot + 1) & (capacity - 1);
                    }
                    self.slots[slot] = local as u32;
                }
            }
        }

        let firsts = UInt32Array::from_iter_values(self.first_rows.iter().copied());
        let representatives = keys.iter().map(|k| take(k, &firsts, None)).collect::<Result<Vec<_>, _>>()?;
        groups.intern(&as_types(&representatives, key_types)?, &mut self.global_of_local)?;
        row_groups.clear();
        row_groups.extend(self.local_of_row.iter().map(|l| self.global_of_local[*l as usize]));
        Ok(())
    }
}

/// `keys` cast to `types` where they differ (dictionaries to string views).
fn as_types(keys: &[ArrayRef], types: &[DataType]) -> DfResult<Vec<ArrayRef>> {
    keys.iter().zip(types).map(|(k, t)| if k.data_type() == t { Ok(Arc::clone(k)) } else { Ok(cast(k, t)?) }).collect()
}

/// The grouping of a single key read as a dictionary: each code's group, kept for as long as
/// batches share the dictionary (a Parquet column chunk's batches all do).
#[derive(Default)]
struct DictionaryGroups {
    /// The dictionary mapped, held so that its buffers' addresses identify it.
    values: Option<ArrayRef>,
    /// Each code's group in DataFusion's table; `usize::MAX` until a row has that code (values
    /// no row has must not become groups: the scan may have filtered those rows out). No group
    /// number comes near `usize::MAX`: each takes memory.
    group_of_code: Vec<usize>,
    null_group: Option<usize>,
    new_codes: Vec<u32>,
    new_groups: Vec<usize>,
}

impl DictionaryGroups {
    fn size(&self) -> usize {
        (self.group_of_code.capacity() + self.new_groups.capacity()) * size_of::<usize>()
            + self.new_codes.capacity() * 4
    }

    fn group(
        &mut self,
        keys: &DictionaryArray<Int32Type>,
        key_type: &DataType,
        groups: &mut dyn GroupValues,
        row_groups: &mut Vec<usize>,
    ) -> DfResult<()> {
        let values = keys.values();
        if !self.values.as_ref().is_some_and(|held| same_buffers(held, values)) {
            self.values = Some(Arc::clone(values));
            self.group_of_code.clear();
            self.group_of_code.resize(values.len(), usize::MAX);
        }
        let codes = keys.keys();
        // Every row by its code, then the null rows, then the codes no earlier row had, interned
        // together. A null row's code may be anything (an all-null chunk has an empty dictionary).
        row_groups.clear();
        row_groups
            .extend(codes.values().iter().map(|c| self.group_of_code.get(*c as usize).copied().unwrap_or(usize::MAX)));
        if let Some(nulls) = codes.nulls().filter(|n| n.null_count() > 0) {
            let null_group = match self.null_group {
                Some(g) => g,
                None => {
                    let mut one = Vec::new();
                    groups.intern(&[new_null_array(key_type, 1)], &mut one)?;
                    *self.null_group.insert(one[0])
                }
            };
            for row in (0..codes.len()).filter(|r| nulls.is_null(*r)) {
                row_groups[row] = null_group;
            }
        }
        if !row_groups.contains(&usize::MAX) {
            return Ok(());
        }
        self.new_codes.clear();
        for (row, g) in row_groups.iter().enumerate() {
            let code = codes.values()[row] as usize;
            if *g == usize::MAX && code >= values.len() {
                return Err(DataFusionError::Internal(format!(
                    "dictionary code {code} out of range for {} values",
                    values.len()
                )));
            }
            if *g == usize::MAX && self.group_of_code[code] == usize::MAX {
                self.group_of_code[code] = usize::MAX - 1;
                self.new_codes.push(code as u32);
            }
        }
        let picked = take(values, &UInt32Array::from_iter_values(self.new_codes.iter().copied()), None)?;
        groups.intern(&[cast(&picked, key_type)?], &mut self.new_groups)?;
        for (code, group) in self.new_codes.iter().zip(&self.new_groups) {
            self.group_of_code[*code as usize] = *group;
        }
        for (row, g) in row_groups.iter_mut().enumerate() {
            if *g == usize::MAX {
                *g = self.group_of_code[codes.values()[row] as usize];
            }
        }
        Ok(())
    }
}

/// The grouping of several keys all read as dictionaries: each key's values numbered per
/// column ([`DictionaryGroups`] over a table of that column's values), the numbers packed into
/// one integer, and a map from that integer to the group, kept across batches.
#[derive(Default)]
struct CombinedGroups {
    columns: Vec<(DictionaryGroups, Box<dyn GroupValues>)>,
    /// Each row's number in each column, then the packed numbers.
    numbers: Vec<Vec<usize>>,
    packed: Vec<u64>,
    group_of_packed: std::collections::HashMap<u64, usize, std::hash::BuildHasherDefault<PackedHasher>>,
    /// A column has more values than its share of the 64 bits: this grouping is not used again.
    gave_up: bool,
}

/// A group number not yet known: the `k`-th new combination of this batch is `PENDING + k`.
const PENDING: usize = usize::MAX / 2;

impl CombinedGroups {
    fn size(&self) -> usize {
        self.columns.iter().map(|(d, v)| d.size() + v.size()).sum::<usize>()
            + self.numbers.iter().map(|n| n.capacity() * size_of::<usize>()).sum::<usize>()
            + self.packed.capacity() * 8
            + self.group_of_packed.capacity() * 24
    }

    /// Groups the batch and returns true, or returns false (and never groups again) when the
    /// keys have too many values to pack.
    fn group(
        &mut self,
        keys: &[ArrayRef],
        key_types: &[DataType],
        groups: &mut dyn GroupValues,
        row_groups: &mut Vec<usize>,
    ) -> DfResult<bool> {
        let bits = 64 / keys.len() as u32;
        if self.gave_up || bits < 8 {
            return Ok(false);
        }
        if self.columns.is_empty() {
            for t in key_types {
                let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
                    datafusion::arrow::datatypes::Field::new("k", t.clone(), true),
                ]));
                self.columns.push((DictionaryGroups::default(), new_group_values(schema, &GroupOrdering::None)?));
                self.numbers.push(Vec::new());
            }
        }
        for (c, key) in keys.iter().enumerate() {
            let (numbering, values) = &mut self.columns[c];
            numbering.group(key.as_dictionary::<Int32Type>(), &key_types[c], values.as_mut(), &mut self.numbers[c])?;
            if values.len() >= 1 << bits {
                self.gave_up = true;
                return Ok(false);
            }
        }
        let rows = keys[0].len();
        self.packed.clear();
        self.packed.resize(rows, 0);
        for (c, numbers) in self.numbers.iter().enumerate() {
            for (packed, n) in self.packed.iter_mut().zip(numbers) {
                *packed |= (*n as u64) << (bits * c as u32);
            }
        }
        row_groups.clear();
        let mut first_rows: Vec<u32> = Vec::new();
        for (row, packed) in self.packed.iter().enumerate() {
            let group = *self.group_of_packed.entry(*packed).or_insert_with(|| {
                first_rows.push(row as u32);
                PENDING + first_rows.len() - 1
            });
            row_groups.push(group);
        }
        if !first_rows.is_empty() {
            let firsts = UInt32Array::from_iter_values(first_rows.iter().copied());
            let representatives = keys.iter().map(|k| take(k, &firsts, None)).collect::<Result<Vec<_>, _>>()?;
            let mut new_groups = Vec::new();
            groups.intern(&as_types(&representatives, key_types)?, &mut new_groups)?;
            for (row, group) in first_rows.iter().zip(&new_groups) {
                self.group_of_packed.insert(self.packed[*row as usize], *group);
            }
            for g in row_groups.iter_mut().filter(|g| **g >= PENDING) {
                *g = new_groups[*g - PENDING];
            }
        }
        Ok(true)
    }
}

/// The hasher of packed key numbers: one multiply, the numbers being small and dense.
#[derive(Default)]
struct PackedHasher(u64);

impl std::hash::Hasher for PackedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}

/// Whether two arrays are the same data: the same buffers at the same offset and length.
fn same_buffers(a: &ArrayRef, b: &ArrayRef) -> bool {
    let (a, b) = (a.to_data(), b.to_data());
    a.len() == b.len()
        && a.offset() == b.offset()
        && a.buffers().len() == b.buffers().len()
        && a.buffers().iter().zip(b.buffers()).all(|(x, y)| x.as_ptr() == y.as_ptr())
}

/// Writes column `c` of the row-major `words`: a view as it is, a dictionary code (equal codes
/// in one batch are equal values), a fixed-width value widened, a null as its type's null word.
fn fill_words(key: &ArrayRef, words: &mut [u128], c: usize, width: usize) {
    let null_word = if let Some(dict) = key.as_dictionary_opt::<Int32Type>() {
        for (row, code) in dict.keys().values().iter().enumerate() {
            words[row * width + c] = *code as u32 as u128;
        }
        NULL_FIXED
    } else if let DataType::Utf8View = key.data_type() {
        for (row, view) in key.as_string_view().views().iter().enumerate() {
            words[row * width + c] = *view;
        }
        NULL_VIEW
    } else {
        let data = key.to_data();
        let size = fixed_width(key.data_type()).expect("an eligible key type");
        let bytes = &data.buffers()[0].as_slice()[data.offset() * size..];
        for row in 0..key.len() {
            let mut value = [0u8; 16];
            value[..size].copy_from_slice(&bytes[row * size..(row + 1) * size]);
            words[row * width + c] = u128::from_le_bytes(value);
        }
        NULL_FIXED
    };
    if let Some(nulls) = key.nulls() {
        for row in (0..key.len()).filter(|r| nulls.is_null(*r)) {
            words[row * width + c] = null_word;
        }
    }
}

/// Word by word, without a call to `memcmp` for a slice of one or a few words.
#[inline]
fn same_words(a: &[u128], b: &[u128]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

#[inline]
fn hash_words(words: &[u128]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = K;
    for w in words {
        h = (h ^ *w as u64).wrapping_mul(K).rotate_left(29) ^ (*w >> 64) as u64;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    }
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{DictionaryArray, Int64Array, StringArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{Field, Int32Type, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::runtime_env::RuntimeEnv;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// Rows as a reader of dictionary pages makes them: views of a dictionary's values, so equal
    /// strings share a view; plus short, long and null strings, and a nullable integer key.
    fn batch(seed: i64, rows: usize, distinct: usize) -> RecordBatch {
        let words = ["Workflow Published", "User logged in", "x", "", "a string longer than twelve"];
        let dictionary =
            StringArray::from_iter_values((0..distinct).map(|i| format!("{}-{i}", words[i % words.len()])));
        let keys: Vec<Option<i32>> = (0..rows)
            .map(|r| if r % 11 == 3 { None } else { Some(((r as i64 * 7 + seed) % distinct as i64) as i32) })
            .collect();
        let dict = DictionaryArray::<Int32Type>::try_new(keys.into(), Arc::new(dictionary)).unwrap();
        let action = cast(&dict, &DataType::Utf8View).unwrap();
        // The same strings again, not from a dictionary: equal values behind different views.
        let plain = cast(&cast(&dict, &DataType::Utf8).unwrap(), &DataType::Utf8View).unwrap();
        let n = Int64Array::from_iter((0..rows as i64).map(|r| (r % 5 != 0).then_some((r + seed) % 3)));
        let v = Int64Array::from_iter_values((0..rows as i64).map(|r| r * 31 % 1000 + seed));
        let schema = Arc::new(Schema::new(vec![
            Field::new("action", DataType::Utf8View, true),
            Field::new("plain", DataType::Utf8View, true),
            Field::new("n", DataType::Int64, true),
            Field::new("v", DataType::Int64, false),
        ]));
        RecordBatch::try_new(schema, vec![action, plain, Arc::new(n), Arc::new(v)]).unwrap()
    }

    async fn answer(ctx: &SessionContext, sql: &str) -> (String, String) {
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = displayable(plan.as_ref()).indent(false).to_string();
        (pretty_format_batches(&df.collect().await.unwrap()).unwrap().to_string(), shown)
    }

    async fn contexts(distinct: usize, probe_rows: usize) -> (SessionContext, SessionContext) {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(100)
            .set_usize("datafusion.execution.skip_partial_aggregation_probe_rows_threshold", probe_rows);
        let partitions: Vec<Vec<RecordBatch>> =
            (0..2).map(|p| (0..5).map(|b| batch(p * 10 + b, 333, distinct)).collect()).collect();
        let schema = partitions[0][0].schema();
        let plain = SessionContext::new_with_config(config.clone());
        let ours = crate::engine::local_context(config, Arc::new(RuntimeEnv::default()));
        for ctx in [&plain, &ours] {
            let table = MemTable::try_new(schema.clone(), partitions.clone()).unwrap();
            ctx.register_table("t", Arc::new(table)).unwrap();
        }
        (plain, ours)
    }

    const QUERIES: [&str; 4] = [
        "SELECT action, count(*) AS c FROM t GROUP BY action ORDER BY action",
        "SELECT action, n, count(*), count(n), min(v), max(v), sum(v) FROM t GROUP BY action, n ORDER BY 1, 2",
        "SELECT plain, action, count(*) FROM t WHERE v > 500 GROUP BY plain, action ORDER BY 1, 2",
        "SELECT n, plain, avg(v) FROM t GROUP BY n, plain ORDER BY 1, 2",
    ];

    #[tokio::test]
    async fn answers_are_datafusions_for_few_and_many_distinct_keys() {
        // 7 distinct strings; then mostly distinct (the batch fallback); then past the probe,
        // where rows pass on as states.
        for (distinct, probe_rows) in [(7, 100_000), (3000, 100_000), (3000, 50)] {
            let (plain, ours) = contexts(distinct, probe_rows).await;
            for sql in QUERIES {
                let (want, _) = answer(&plain, sql).await;
                let (got, plan) = answer(&ours, sql).await;
                assert!(plan.contains("ViewGroupsAggregateExec"), "{sql}: not used:\n{plan}");
                assert_eq!(got, want, "{sql} with {distinct} distinct keys, probe after {probe_rows} rows");
            }
        }
    }

    #[tokio::test]
    async fn other_aggregations_keep_datafusions_operator() {
        let (_, ours) = contexts(7, 100_000).await;
        for sql in [
            // No string key: DataFusion's primitive group table is as good.
            "SELECT n, count(*) FROM t GROUP BY n",
            // An aggregate with its own filter.
            "SELECT action, count(*) FILTER (WHERE v > 3) FROM t GROUP BY action",
        ] {
            let (_, plan) = answer(&ours, sql).await;
            assert!(!plan.contains("ViewGroupsAggregateExec"), "{sql}:\n{plan}");
        }
    }
}
