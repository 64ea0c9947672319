//! Groups the database work of concurrent requests: a batch costs one lookup statement and one
//! write statement per table, whatever its size, instead of two round trips per request. Under
//! light load a batch is one request, so latency does not suffer; under heavy load batches grow
//! and PostgreSQL does far fewer, larger statements.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use crate::db::Pool;
use tokio::sync::{mpsc, oneshot};

use super::config::GreylistConfig;
use super::policy::{plan, Outcome};
use super::store::{self, Key, SenderAwlRow, TripletRow};

/// Batches in flight at once (each on its own connection). Requests are sharded by (client
/// network, sender): one worker sees every request touching a given triplet or sender
/// auto-whitelist entry, so that concurrent requests of this process never race on a row (two
/// MX still can; see `store::save_triplets`). One worker measured best (docs/benchmarks.md):
/// PostgreSQL's cost is mostly per statement, and while one batch is in the database the next
/// one grows, so fewer, larger batches cost less than overlapping small ones (2 workers: 36–42 µs
/// of PostgreSQL CPU per request, 4: 49–66 µs, 1: 19–22 µs).
const WORKERS: usize = 1;
/// Largest batch.
const MAX_BATCH: usize = 256;
/// Requests waiting for each worker; beyond, requests fail open at once.
const QUEUE: usize = 2_048;

struct Job {
    key: Key,
    now: i64,
    reply: oneshot::Sender<Result<Outcome, String>>,
}

/// The handle requests use; the workers stop when it is dropped.
pub struct Batcher {
    workers: Vec<mpsc::Sender<Job>>,
    hasher: RandomState,
}

impl Batcher {
    pub fn start(pool: Pool, cfg: GreylistConfig) -> Batcher {
        let cfg = Arc::new(cfg);
        let workers = (0..WORKERS)
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(worker(rx, pool.clone(), cfg.clone()));
                tx
            })
            .collect();
        Batcher {
            workers,
            hasher: RandomState::new(),
        }
    }

    /// The decision's database part for one request (the caller bounds the wait).
    pub async fn evaluate(&self, key: Key, now: i64) -> Result<Outcome, String> {
        let (reply, answer) = oneshot::channel();
        #[allow(clippy::modulo_one)] // WORKERS is a tuning constant; the sharding stays valid above 1.
        let shard = self.hasher.hash_one((&key.client_net, &key.sender)) as usize % WORKERS;
        self.workers[shard]
            .try_send(Job { key, now, reply })
            .map_err(|_| "too many requests waiting for the database".to_owned())?;
        answer.await.map_err(|_| "database worker stopped".to_owned())?
    }
}

async fn worker(mut rx: mpsc::Receiver<Job>, pool: Pool, cfg: Arc<GreylistConfig>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        if rx.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        // Requests already answered (timed out: failed open) are not acted upon late.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        match run(&pool, &cfg, &jobs).await {
            Ok(outcomes) => {
                for (job, outcome) in jobs.drain(..).zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(message.clone()));
                }
            }
        }
    }
}

type TripletKey = (String, String, String);

fn triplet_key(k: &Key) -> TripletKey {
    (k.client_net.clone(), k.sender.clone(), k.recipient.clone())
}

/// One batch: read every key's state, decide in order (a key twice in the batch sees its first
/// decision), write the final states sorted by key (concurrent writers lock rows in one order).
async fn run(pool: &Pool, cfg: &GreylistConfig, jobs: &[Job]) -> Result<Vec<Outcome>, store::StoreError> {
    let client = pool.get().await?;
    let mut index: HashMap<TripletKey, usize> = HashMap::with_capacity(jobs.len());
    let mut unique: Vec<Key> = Vec::with_capacity(jobs.len());
    for job in jobs {
        index.entry(triplet_key(&job.key)).or_insert_with(|| {
            unique.push(job.key.clone());
            unique.len() - 1
        });
    }
    let mut snaps = store::lookup_many(&client, &unique).await?;

    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut triplets: BTreeMap<TripletKey, (Key, TripletRow)> = BTreeMap::new();
    let mut awls: BTreeMap<(String, String), (Key, SenderAwlRow)> = BTreeMap::new();
    let mut touches: Vec<(Key, bool, i64)> = Vec::new();
    let mut promotions: Vec<(Key, i64)> = Vec::new();
    for job in jobs {
        let snap = &mut snaps[index[&triplet_key(&job.key)]];
        let (outcome, plan) = plan(snap, &job.key, job.now, cfg);
        outcomes.push(outcome);
        if let Some(row) = plan.triplet {
            triplets.insert(triplet_key(&job.key), (job.key.clone(), row));
        }
        if let Some(row) = plan.sender_awl {
            let k = (job.key.sender.clone(), job.key.client_net.clone());
            awls.insert(k, (job.key.clone(), row));
        }
        if plan.touch_domain_awl || plan.touch_sender_awl {
            touches.push((job.key.clone(), plan.touch_domain_awl, job.now));
        }
        if plan.try_promote_domain {
            promotions.push((job.key.clone(), job.now));
        }
    }
    let triplets: Vec<_> = triplets.into_values().collect();
    store::save_triplets(&client, &triplets).await?;
    let awls: Vec<_> = awls.into_values().collect();
    store::save_sender_awls(&client, &awls).await?;
    // Rare (at most hourly per entry): one statement each.
    for (key, domain, now) in touches {
        store::touch_awl(&client, &key, domain, now).await?;
    }
    for (key, now) in promotions {
        let promoted = store::promote_domain(
            &client,
            &key,
            now,
            cfg.awl_sender_passes,
            now - cfg.awl_max_age_secs,
            cfg.awl_domain_senders,
        )
        .await?;
        if promoted {
            tracing::info!(
                "greylist: domain {} auto-whitelisted from {}",
                key.sender_domain,
                key.client_net
            );
        }
    }
    Ok(outcomes)
}
