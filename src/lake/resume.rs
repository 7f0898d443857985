//! Listings that resume where a failed page left off.
//!
//! object_store retries a request that fails, but not a listing whose response body is cut off
//! mid-way ("Error getting list response body"): the whole job failed on one bad page (seen in
//! tests/faults.rs, three times in one run). [`ResumingList`] wraps a cloud store and, when a
//! listing fails, starts it again after the last object it yielded, a few times in a row before
//! giving up. Cloud stores list in key order, which is what makes resuming after a key exact.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Failed listings in a row, without an object between them, before the error is returned.
const RESTARTS: u32 = 4;

/// A cloud store whose listings resume after a failure; everything else passes through.
#[derive(Debug)]
pub struct ResumingList(pub Arc<dyn ObjectStore>);

impl fmt::Display for ResumingList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Lists `prefix` after `offset` (if any), restarting after the last object yielded when the
/// listing fails.
fn resuming(
    inner: Arc<dyn ObjectStore>,
    prefix: Option<Path>,
    offset: Option<Path>,
) -> BoxStream<'static, Result<ObjectMeta>> {
    struct State {
        inner: Arc<dyn ObjectStore>,
        prefix: Option<Path>,
        last: Option<Path>,
        stream: Option<BoxStream<'static, Result<ObjectMeta>>>,
        failures: u32,
        finished: bool,
    }
    let start = State { inner, prefix, last: offset, stream: None, failures: 0, finished: false };
    futures::stream::unfold(start, |mut st| async move {
        loop {
            if st.finished {
                return None;
            }
            let stream = st.stream.get_or_insert_with(|| match &st.last {
                Some(after) => st.inner.list_with_offset(st.prefix.as_ref(), after),
                None => st.inner.list(st.prefix.as_ref()),
            });
            match stream.next().await {
                Some(Ok(meta)) => {
                    st.failures = 0;
                    st.last = Some(meta.location.clone());
                    return Some((Ok(meta), st));
                }
                Some(Err(_)) if st.failures < RESTARTS => {
                    st.failures += 1;
                    st.stream = None;
                }
                Some(Err(e)) => {
                    st.finished = true;
                    return Some((Err(e), st));
                }
                None => return None,
            }
        }
    })
    .boxed()
}

#[async_trait]
impl ObjectStore for ResumingList {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.0.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.0.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        resuming(self.0.clone(), prefix.cloned(), None)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        resuming(self.0.clone(), prefix.cloned(), Some(offset.clone()))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut failures = 0;
        loop {
            match self.0.list_with_delimiter(prefix).await {
                Err(_) if failures < RESTARTS => failures += 1,
                done => return done,
            }
        }
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.0.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.0.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// An in-memory store whose listings fail after `after` objects, `times` times in all.
    #[derive(Debug)]
    struct CutOff {
        inner: InMemory,
        after: usize,
        times: AtomicU32,
    }

    impl fmt::Display for CutOff {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "CutOff")
        }
    }

    #[async_trait]
    impl ObjectStore for CutOff {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(&self, l: &Path, o: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, l: &Path, o: GetOptions) -> Result<GetResult> {
            self.inner.get_opts(l, o).await
        }
        fn delete_stream(&self, l: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(l)
        }
        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            let cut = self.times.load(Ordering::SeqCst) > 0;
            if cut {
                self.times.fetch_sub(1, Ordering::SeqCst);
            }
            let after = self.after;
            let items = self.inner.list(prefix);
            let failure = futures::stream::iter(cut.then(|| {
                Err(object_store::Error::Generic { store: "CutOff", source: "list response body cut off".into() })
            }));
            if cut { items.take(after).chain(failure).boxed() } else { items }
        }
        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> Result<()> {
            self.inner.copy_opts(f, t, o).await
        }
    }

    async fn store_of(n: usize, after: usize, times: u32) -> ResumingList {
        let inner = InMemory::new();
        for i in 0..n {
            inner.put(&Path::from(format!("k/{i:03}")), Bytes::from_static(b"x").into()).await.unwrap();
        }
        ResumingList(Arc::new(CutOff { inner, after, times: AtomicU32::new(times) }))
    }

    #[tokio::test]
    async fn a_listing_cut_off_resumes_after_the_last_object_with_nothing_twice() {
        let store = store_of(10, 4, 2).await;
        let listed: Vec<String> =
            store.list(Some(&"k".into())).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
        let expected: Vec<String> = (0..10).map(|i| format!("k/{i:03}")).collect();
        assert_eq!(listed, expected);
    }

    #[tokio::test]
    async fn a_listing_that_keeps_failing_returns_the_error() {
        let store = store_of(10, 0, 100).await;
        let listed: Result<Vec<ObjectMeta>> = store.list(Some(&"k".into())).try_collect().await;
        assert!(listed.is_err());
    }
}
