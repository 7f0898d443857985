//! One query's memory pool, nested in the server's: a reservation must fit both, so one query
//! cannot take more than its share, and all of them together no more than the server's.

use std::fmt;
use std::sync::Arc;

use datafusion::error::Result as DfResult;
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryLimit, MemoryPool, MemoryReservation};

#[derive(Debug)]
pub struct QueryPool {
    query: GreedyMemoryPool,
    server: Arc<dyn MemoryPool>,
}

impl QueryPool {
    pub fn new(limit: usize, server: Arc<dyn MemoryPool>) -> QueryPool {
        QueryPool { query: GreedyMemoryPool::new(limit), server }
    }
}

impl fmt::Display for QueryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query pool {} within server pool {}", self.query, self.server)
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "auditlake-query"
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.query.grow(reservation, additional);
        self.server.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.query.shrink(reservation, shrink);
        self.server.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        self.query.try_grow(reservation, additional)?;
        if let Err(e) = self.server.try_grow(reservation, additional) {
            self.query.shrink(reservation, additional);
            return Err(e);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.query.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.query.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::memory_pool::MemoryConsumer;

    use super::*;

    #[test]
    fn a_reservation_must_fit_the_query_and_the_server() {
        let server: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(100));
        let a: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(60, server.clone()));
        let b: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(60, server.clone()));
        let ra = MemoryConsumer::new("a").register(&a);
        let rb = MemoryConsumer::new("b").register(&b);
        ra.try_grow(50).unwrap();
        assert!(ra.try_grow(20).is_err(), "over the query's 60");
        assert!(rb.try_grow(55).is_err(), "over the server's 100 (50 + 55)");
        assert_eq!(server.reserved(), 50, "a refused reservation leaves nothing behind");
        rb.try_grow(50).unwrap();
        ra.free();
        assert_eq!(server.reserved(), 50);
        rb.free();
        assert_eq!((a.reserved(), b.reserved(), server.reserved()), (0, 0, 0));
    }
}
