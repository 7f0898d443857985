//! `count(DISTINCT s)` of a string column, per group, as one groups accumulator.
//!
//! DataFusion has a groups accumulator for `count(DISTINCT)` of integers only. For strings it
//! keeps one set per group behind `GroupsAccumulatorAdapter`, which slices every batch by group
//! before each set hashes its rows: a fifth of by_scenario's CPU and much of by_tag's on a 5M
//! lake (perf, issue 21), both counting distinct `resource_id`s. Here each group has one
//! open-addressing set over one buffer of its values, and a batch's rows are sorted by group
//! (a counting sort of row numbers, no data copied) so that each set is met while it is cached.
//!
//! States are DataFusion's own (a list of each group's distinct values, of the argument's type),
//! so the final half of the aggregation above, DataFusion's, merges them unchanged.
//! [`super::view_groups`] uses it for the partial half it runs.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, StringBuilder, StringViewBuilder, UInt32Array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use xxhash_rust::xxh3::xxh3_64;

/// Whether `aggregate` is a `count(DISTINCT s)` of one string column this accumulator takes.
pub fn supported(aggregate: &AggregateFunctionExpr, input: &Schema) -> bool {
    let args = aggregate.expressions();
    let [arg] = args.as_slice() else { return false };
    aggregate.is_distinct()
        && aggregate.fun().name() == "count"
        && aggregate.order_bys().is_empty()
        && arg.data_type(input).is_ok_and(|t| matches!(t, DataType::Utf8View | DataType::Utf8))
}

/// The accumulator of a `count(DISTINCT)` of values of `arg_type` (see [`supported`]).
pub fn accumulator(arg_type: DataType) -> Box<dyn GroupsAccumulator> {
    Box::new(DistinctStrings { arg_type, sets: Vec::new(), order: Vec::new(), starts: Vec::new() })
}

const EMPTY: u64 = u64::MAX;

/// One group's distinct values, stored end to end in `bytes`.
#[derive(Debug, Default)]
struct ValueSet {
    bytes: Vec<u8>,
    /// Each value's end in `bytes` (its start is the previous one's end).
    ends: Vec<usize>,
    /// Open addressing, at most half full: the high 32 bits of a value's hash beside its index,
    /// so that most probes of other values end without reading them.
    slots: Vec<u64>,
}

impl ValueSet {
    fn value(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    fn insert(&mut self, value: &[u8]) -> DfResult<()> {
        if (self.ends.len() + 1) * 2 > self.slots.len() {
            if self.ends.len() >= u32::MAX as usize / 2 {
                return Err(DataFusionError::ResourcesExhausted("count(DISTINCT): too many values".into()));
            }
            self.rehash((self.slots.len() * 2).max(64));
        }
        let hash = xxh3_64(value);
        let tag = hash & !u64::from(u32::MAX);
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let entry = self.slots[slot];
            if entry == EMPTY {
                break;
            }
            if entry & !u64::from(u32::MAX) == tag && self.value((entry as u32) as usize) == value {
                return Ok(());
            }
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = tag | self.ends.len() as u64;
        self.bytes.extend_from_slice(value);
        self.ends.push(self.bytes.len());
        Ok(())
    }

    fn rehash(&mut self, capacity: usize) {
        self.slots.clear();
        self.slots.resize(capacity, EMPTY);
        let mask = capacity - 1;
        for i in 0..self.ends.len() {
            let hash = xxh3_64(self.value(i));
            let mut slot = hash as usize & mask;
            while self.slots[slot] != EMPTY {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = (hash & !u64::from(u32::MAX)) | i as u64;
        }
    }

    fn size(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * size_of::<usize>() + self.slots.capacity() * size_of::<u64>()
    }
}

/// Inserts the rows of `order` (sorted by group) in their groups' sets, a group's rows together.
///
/// With `views` (a string view array's), a row whose view a group already met in this batch is
/// skipped unhashed: equal views hold equal strings (the same inline bytes, or the same place in
/// the same buffer), and a column read from Parquet dictionary pages repeats its views.
fn insert_grouped<'a>(
    sets: &mut [ValueSet],
    order: &[u32],
    groups: &[usize],
    views: Option<&[u128]>,
    value: impl Fn(usize) -> &'a [u8],
) -> DfResult<()> {
    // No view is all ones: its length would be 4 GiB.
    const NO_VIEW: u128 = u128::MAX;
    let mut met = [NO_VIEW; 64];
    for rows in order.chunk_by(|a, b| groups[*a as usize] == groups[*b as usize]) {
        let set = &mut sets[groups[rows[0] as usize]];
        met.fill(NO_VIEW);
        for row in rows {
            let row = *row as usize;
            if let Some(views) = views {
                let view = views[row];
                let slot = ((view as u64 ^ (view >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize;
                if met[slot] == view {
                    continue;
                }
                met[slot] = view;
            }
            set.insert(value(row))?;
        }
    }
    Ok(())
}

#[derive(Debug)]
struct DistinctStrings {
    /// The argument's type, and so the type of the states' list items.
    arg_type: DataType,
    /// Each group's values. A batch's rows are taken group by group, so that one group's set is
    /// in the cache while its rows are looked up: one table for all groups was slower than
    /// DataFusion's per-group sets on 1.8M rows of 84K distinct pairs, for its cache misses.
    sets: Vec<ValueSet>,
    /// A batch's kept rows in order of group, and the counting sort's cursors per group.
    order: Vec<u32>,
    starts: Vec<usize>,
}

impl DistinctStrings {
    fn emitted(&self, emit_to: EmitTo) -> usize {
        match emit_to {
            EmitTo::All => self.sets.len(),
            EmitTo::First(n) => n.min(self.sets.len()),
        }
    }

    /// Inserts every value of the string array `values` (selected by `filter`) in its row's group.
    fn insert_all(&mut self, values: &dyn Array, groups: &[usize], filter: Option<&BooleanArray>) -> DfResult<()> {
        // The rows to count: valid, and selected by the filter when there is one.
        let filter = filter.map(|f| match f.nulls() {
            Some(nulls) => f.values() & nulls.inner(),
            None => f.values().clone(),
        });
        let mask = match (values.logical_nulls().map(NullBuffer::into_inner), filter) {
            (Some(valid), Some(selected)) => Some(&valid & &selected),
            (valid, selected) => valid.or(selected),
        };
        let kept = |row: usize| mask.as_ref().is_none_or(|m| m.value(row));
        // The kept rows sorted by group: a counting sort when there are no more groups than
        // rows, else a comparison sort, so that a batch never costs the number of groups.
        self.order.clear();
        if self.sets.len() <= groups.len() {
            self.starts.clear();
            self.starts.resize(self.sets.len() + 1, 0);
            for (row, group) in groups.iter().enumerate() {
                if kept(row) {
                    self.starts[*group + 1] += 1;
                }
            }
            for g in 0..self.sets.len() {
                self.starts[g + 1] += self.starts[g];
            }
            self.order.resize(self.starts[self.sets.len()], 0);
            for (row, group) in groups.iter().enumerate() {
                if kept(row) {
                    self.order[self.starts[*group]] = row as u32;
                    self.starts[*group] += 1;
                }
            }
        } else {
            self.order.extend((0..groups.len()).filter(|r| kept(*r)).map(|r| r as u32));
            self.order.sort_unstable_by_key(|r| groups[*r as usize]);
        }
        let (sets, order) = (&mut self.sets, &self.order);
        match values.data_type() {
            DataType::Utf8View => {
                let strings = values.as_string_view();
                insert_grouped(sets, order, groups, Some(strings.views()), |row| strings.value(row).as_bytes())
            }
            DataType::Utf8 => {
                let strings = values.as_string::<i32>();
                insert_grouped(sets, order, groups, None, |row| strings.value(row).as_bytes())
            }
            other => Err(DataFusionError::Internal(format!("count(DISTINCT) of strings given {other}"))),
        }
    }

    fn list_field(&self) -> Arc<Field> {
        Arc::new(Field::new_list_field(self.arg_type.clone(), true))
    }
}

impl GroupsAccumulator for DistinctStrings {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.sets.resize_with(total_num_groups, ValueSet::default);
        self.insert_all(values[0].as_ref(), group_indices, opt_filter)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let n = self.emitted(emit_to);
        let counts = Int64Array::from_iter_values(self.sets.drain(..n).map(|s| s.ends.len() as i64));
        Ok(Arc::new(counts))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let n = self.emitted(emit_to);
        let sets: Vec<ValueSet> = self.sets.drain(..n).collect();
        // Each emitted group's values, in one list row per group.
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0i32);
        let mut total = 0usize;
        for set in &sets {
            total += set.ends.len();
            let end = i32::try_from(total).map_err(|_| {
                DataFusionError::ResourcesExhausted("count(DISTINCT): over 2^31 values in one state".into())
            })?;
            offsets.push(end);
        }
        let texts = sets.iter().flat_map(|set| {
            (0..set.ends.len()).map(|i| std::str::from_utf8(set.value(i)).expect("read from a string array"))
        });
        let values: ArrayRef = if self.arg_type == DataType::Utf8View {
            let mut b = StringViewBuilder::with_capacity(offsets[n] as usize);
            texts.for_each(|t| b.append_value(t));
            Arc::new(b.finish())
        } else {
            let mut b = StringBuilder::with_capacity(offsets[n] as usize, 0);
            texts.for_each(|t| b.append_value(t));
            Arc::new(b.finish())
        };
        let list = ListArray::try_new(self.list_field(), OffsetBuffer::new(offsets.into()), values, None)?;
        Ok(vec![Arc::new(list)])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> DfResult<()> {
        self.sets.resize_with(total_num_groups, ValueSet::default);
        let lists = values[0].as_list::<i32>();
        let offsets = lists.value_offsets();
        // Each list item's group: its row's; the items of a null list are left out.
        let mut item_groups = Vec::with_capacity(lists.values().len());
        let mut valid = Vec::with_capacity(lists.values().len());
        for (row, group) in group_indices.iter().enumerate() {
            let items = (offsets[row + 1] - offsets[row]) as usize;
            item_groups.extend(std::iter::repeat_n(*group, items));
            valid.extend(std::iter::repeat_n(lists.is_valid(row), items));
        }
        let items = lists.values().slice(offsets[0] as usize, item_groups.len());
        self.insert_all(items.as_ref(), &item_groups, Some(&BooleanArray::from(valid)))
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> DfResult<Vec<ArrayRef>> {
        // One list a row: its value, or none when it is null or filtered out.
        let values = &values[0];
        let mut offsets = Vec::with_capacity(values.len() + 1);
        offsets.push(0i32);
        let mut kept = Vec::with_capacity(values.len());
        for row in 0..values.len() {
            if values.is_valid(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row)) {
                kept.push(row as u32);
            }
            offsets.push(kept.len() as i32);
        }
        let items = take(values.as_ref(), &UInt32Array::from(kept), None)?;
        Ok(vec![Arc::new(ListArray::try_new(self.list_field(), OffsetBuffer::new(offsets.into()), items, None)?)])
    }

    fn size(&self) -> usize {
        self.sets.iter().map(ValueSet::size).sum::<usize>()
            + self.sets.capacity() * size_of::<ValueSet>()
            + (self.order.capacity() * size_of::<u32>())
            + self.starts.capacity() * size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{StringArray, StringViewArray};

    fn counts(acc: &mut Box<dyn GroupsAccumulator>, emit: EmitTo) -> Vec<i64> {
        acc.evaluate(emit).unwrap().as_primitive::<datafusion::arrow::datatypes::Int64Type>().values().to_vec()
    }

    #[test]
    fn counts_each_groups_distinct_values_skipping_nulls_and_filtered_rows() {
        let values: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("a"),
            Some("a"),
            Some("b"),
            None,
            Some("a long value past twelve bytes"),
            Some("a long value past twelve bytes"),
            Some("a"),
            Some("c"),
        ]));
        let groups = [0, 0, 0, 0, 1, 1, 1, 1];
        let filter = BooleanArray::from(vec![true, true, true, true, true, true, true, false]);
        let mut acc = accumulator(DataType::Utf8View);
        acc.update_batch(&[values], &groups, Some(&filter), 3).unwrap();
        assert_eq!(counts(&mut acc, EmitTo::All), vec![2, 2, 0]);
    }

    #[test]
    fn states_merge_to_the_same_counts_and_first_n_renumbers_the_rest() {
        let values: ArrayRef = Arc::new(StringArray::from(vec!["x", "y", "x", "z", "y", "q"]));
        let groups = [0, 0, 1, 1, 2, 2];
        let mut partial = accumulator(DataType::Utf8);
        partial.update_batch(&[Arc::clone(&values)], &groups, None, 3).unwrap();
        // Two partitions' states, one of them unaggregated rows, merged into one.
        let first = partial.state(EmitTo::First(1)).unwrap();
        let rest = partial.state(EmitTo::All).unwrap();
        let rows = partial.convert_to_state(&[values], None).unwrap();
        let mut merged = accumulator(DataType::Utf8);
        merged.merge_batch(&first, &[0], 3).unwrap();
        merged.merge_batch(&rest, &[1, 2], 3).unwrap();
        merged.merge_batch(&rows, &groups, 3).unwrap();
        assert_eq!(counts(&mut merged, EmitTo::First(2)), vec![2, 2]);
        assert_eq!(counts(&mut merged, EmitTo::All), vec![2]);
    }

    #[test]
    fn a_batch_with_fewer_rows_than_groups_is_sorted_by_comparison() {
        let values: ArrayRef = Arc::new(StringViewArray::from(vec!["a", "b", "a", "c", "b"]));
        let mut acc = accumulator(DataType::Utf8View);
        acc.update_batch(&[values], &[90, 5, 90, 5, 5], None, 100).unwrap();
        let counts = counts(&mut acc, EmitTo::All);
        assert_eq!((counts[5], counts[90], counts.iter().sum::<i64>()), (2, 1, 3));
    }

    #[test]
    fn many_values_grow_the_table() {
        let strings: Vec<String> = (0..10_000).map(|i| format!("resource-{}", i % 3000)).collect();
        let values: ArrayRef = Arc::new(StringViewArray::from_iter_values(strings.iter()));
        let groups: Vec<usize> = (0..10_000).map(|i| i % 2).collect();
        let mut acc = accumulator(DataType::Utf8View);
        acc.update_batch(&[values], &groups, None, 2).unwrap();
        // 3000 is even: each value is met in one group only, half of them in each.
        assert_eq!(counts(&mut acc, EmitTo::All), vec![1500, 1500]);
    }
}
