//! A store watch that never ends: after an error (or an ended stream) it waits and re-lists.

use std::time::Duration;

use futures::{Stream, StreamExt};

use super::backoff::Backoff;
use crate::api::Spec;
use crate::store::{Store, StoreError, WatchEvent};

/// Watches `store`'s records of kind `S` from a full list (`Init`…`InitDone`, then live events).
///
/// When the store's stream fails or ends, the error is passed on and, after a backoff (1 s
/// doubling to 30 s, reset once events flow again), a new watch starts with a fresh list; the
/// [`super::reflector`] swaps that list in atomically, and anything missed in between shows up
/// as a difference. The stream itself never ends.
pub fn watch<S: Spec, St: Store>(
    store: St,
) -> impl Stream<Item = Result<WatchEvent<S>, StoreError>> + Send + 'static {
    async_stream::stream! {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30), true);
        loop {
            match store.watch::<S>(None) {
                Ok(mut events) => {
                    while let Some(event) = events.next().await {
                        let failed = event.is_err();
                        if !failed {
                            backoff.reset(&());
                        }
                        yield event;
                        if failed {
                            break;
                        }
                    }
                }
                Err(e) => yield Err(e),
            }
            tokio::time::sleep(backoff.failed(())).await;
        }
    }
}
