//! The ids already in the table, per date partition, loaded the first time a normaliser worker
//! meets an entry of that date and then shared by all workers.
//!
//! Checking here, in the workers, lets an entry that is already stored skip the rest of its
//! normalising (string fields, `extra_data`, `extra`, the Arrow row): re-delivering a feed then
//! costs about one JSON pass an entry.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use deltalake::DeltaTable;

use crate::error::Result;
use crate::lake::Lake;
use crate::lake::keys::{KeySet, PartitionIds};

pub struct KnownIds {
    lake: Lake,
    /// `None` when the table had no files at the start of the run: nothing to load, ever.
    table: Option<DeltaTable>,
    /// Built on the first load.
    reader: tokio::sync::OnceCell<PartitionIds>,
    runtime: tokio::runtime::Handle,
    by_date: RwLock<HashMap<i32, KeySet>>,
    /// Held while a partition loads, so two workers needing the same date read it once.
    loading: Mutex<()>,
}

impl KnownIds {
    pub fn new(lake: &Lake, table: &DeltaTable, runtime: tokio::runtime::Handle) -> Self {
        let empty = table.snapshot().map(|s| s.log_data().num_files()).unwrap_or(0) == 0;
        KnownIds {
            lake: lake.clone(),
            table: (!empty).then(|| table.clone()),
            runtime,
            reader: tokio::sync::OnceCell::new(),
            by_date: RwLock::new(HashMap::new()),
            loading: Mutex::new(()),
        }
    }

    /// Loads the keys of the partition of `date` unless loaded. Called from a worker thread,
    /// outside the runtime: the read runs on the runtime and this thread waits for it.
    pub fn ensure(&self, date: i32) -> Result<()> {
        let Some(table) = &self.table else { return Ok(()) };
        let loaded = || self.by_date.read().expect("known ids lock").contains_key(&date);
        if loaded() {
            return Ok(());
        }
        let _one_loader = self.loading.lock().expect("known ids loader lock");
        if loaded() {
            return Ok(());
        }
        let keys = self.runtime.block_on(async {
            let reader = self.reader.get_or_try_init(|| PartitionIds::new(&self.lake, table)).await?;
            reader.read(date).await
        })?;
        self.by_date.write().expect("known ids lock").insert(date, keys);
        Ok(())
    }

    /// The loaded partitions' keys, for checking a chunk's entries under one lock; `None`
    /// when the table was empty.
    pub fn view(&self) -> Option<std::sync::RwLockReadGuard<'_, HashMap<i32, KeySet>>> {
        self.table.as_ref().map(|_| self.by_date.read().expect("known ids lock"))
    }
}
