//! What one account may run at once: database reads (searches, statistics, reports, a message's
//! detail) and CSV exports. The web application's pool is shared by every account; without a
//! limit per account, one browser firing slow searches (a substring over months) would hold
//! every connection until `statement_timeout_secs`, and everyone else would get 503s.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::web::error::{ApiError, ApiResult};

/// So many of one kind of work at once per account. One more waits up to `wait` for a place
/// (a screen of ten statistics panels queues instead of failing), then gets 429.
#[derive(Debug)]
pub struct AccountLimit {
    /// One semaphore per account that ever asked: as many entries as accounts, no more.
    places: Mutex<HashMap<i64, Arc<Semaphore>>>,
    per_account: usize,
    wait: Duration,
    /// What is limited, plural, for the refusal ("database queries", "CSV exports").
    what: &'static str,
    /// The refusal's `Retry-After`: about how long one of them lasts.
    retry_after_secs: u64,
}

/// One account's place, given back when dropped.
#[derive(Debug)]
pub struct Place(#[allow(dead_code)] OwnedSemaphorePermit);

impl AccountLimit {
    /// `per_account` (at least 1) at once; `wait` zero refuses at once.
    pub fn new(per_account: u32, wait: Duration, what: &'static str, retry_after_secs: u64) -> AccountLimit {
        AccountLimit {
            places: Mutex::new(HashMap::new()),
            per_account: usize::try_from(per_account)
                .unwrap_or(usize::MAX)
                .clamp(1, Semaphore::MAX_PERMITS),
            wait,
            what,
            retry_after_secs,
        }
    }

    /// A place for one more of `user_id`'s, or 429 (with `Retry-After`) when none frees in time.
    pub async fn claim(&self, user_id: i64) -> ApiResult<Place> {
        let places = {
            let mut map = self.places.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(user_id)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_account)))
                .clone()
        };
        let permit = match places.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if self.wait.is_zero() => None,
            Err(_) => tokio::time::timeout(self.wait, places.acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        };
        permit.map(Place).ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{} {} of this account are running; wait for one to end",
                    self.per_account, self.what
                ),
            )
            .retry_after(self.retry_after_secs)
        })
    }
}

/// A read connection taken on behalf of one account, counted against its
/// `[web] queries_per_user` until dropped (with the connection, back to the pool).
pub struct AccountRead {
    client: crate::db::Pooled,
    _place: Place,
}

impl AccountRead {
    pub fn new(client: crate::db::Pooled, place: Place) -> AccountRead {
        AccountRead { client, _place: place }
    }
}

impl Deref for AccountRead {
    type Target = crate::db::Pooled;

    fn deref(&self) -> &crate::db::Pooled {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::AccountLimit;

    #[tokio::test]
    async fn each_account_waits_for_its_own_places_only() {
        let limit = AccountLimit::new(2, Duration::from_millis(200), "queries", 1);
        let (a1, _a2) = (limit.claim(1).await.unwrap(), limit.claim(1).await.unwrap());
        let refused = limit.claim(1).await.unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(limit.claim(2).await.is_ok(), "another account has its own places");
        // A place given back within the wait is taken by who waits.
        let waiting = limit.claim(1);
        let give_back = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(a1);
        };
        let (place, ()) = tokio::join!(waiting, give_back);
        assert!(place.is_ok());
    }

    #[tokio::test]
    async fn without_a_wait_the_refusal_is_immediate() {
        let limit = AccountLimit::new(1, Duration::ZERO, "CSV exports", 5);
        let _held = limit.claim(7).await.unwrap();
        let refused = limit.claim(7).await.unwrap_err();
        assert!(refused.message.contains("1 CSV exports"), "{}", refused.message);
    }
}
