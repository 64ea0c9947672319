//! The SNMP thread: the only place net-snmp runs, one per process. Callers (the poller, actions
//! from the web or the command line) send it requests over a channel and await the answers; it
//! owns every session, keeps them open between polls (an SNMPv3 engine discovery blocks) and
//! polls all agents of a cycle at once. Each [`Engine`] handle has its own scope of sessions
//! (server ids are per database), dropped with its last clone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::{mpsc, oneshot};

use super::session::{self, InFlight, Response, Session, SetValue, SnmpError, Target};

/// Which of an agent's two users a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Poll,
    Control,
}

/// A session's identity: the server and the user.
pub type Key = (i32, Role);

/// A SET's answer, and the answer of the GET that followed it (when one was asked).
pub type SetAnswer = (Result<Response, SnmpError>, Option<Result<Response, SnmpError>>);

enum Request {
    /// GET `oids` from every target at once; each answer is sent as soon as it is in.
    Poll {
        scope: u64,
        targets: Vec<(i32, Target)>,
        oids: Vec<Vec<u32>>,
        deadline: Duration,
        answers: mpsc::UnboundedSender<(i32, Result<Response, SnmpError>)>,
    },
    /// SET one variable, then GET `then` in the same session (the agent's verdict).
    Set {
        scope: u64,
        key: Key,
        target: Target,
        oid: Vec<u32>,
        value: SetValue,
        then: Vec<Vec<u32>>,
        answer: oneshot::Sender<SetAnswer>,
    },
    /// The last handle of a scope is gone: close its sessions.
    Forget(u64),
}

/// A cloneable handle on the SNMP thread, with its own scope of sessions.
#[derive(Clone)]
pub struct Engine {
    tx: Sender<Request>,
    scope: Arc<Scope>,
}

/// A scope of sessions; its sessions are closed when the last handle of it is dropped.
struct Scope {
    id: u64,
    tx: Sender<Request>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        let _ = self.tx.send(Request::Forget(self.id));
    }
}

/// The process's SNMP thread (started once: net-snmp's state is process-wide).
static THREAD: OnceLock<Result<Sender<Request>, String>> = OnceLock::new();
static SCOPES: AtomicU64 = AtomicU64::new(1);

impl Engine {
    /// A handle on the SNMP thread, started (and net-snmp initialised on it) the first time.
    pub fn start() -> anyhow::Result<Engine> {
        let tx = THREAD
            .get_or_init(|| {
                let (tx, rx) = crossbeam_channel::unbounded();
                let (ready_tx, ready_rx) = std::sync::mpsc::channel();
                std::thread::Builder::new()
                    .name("snmp".into())
                    .spawn(move || {
                        let init = session::init_library();
                        let ok = init.is_ok();
                        let _ = ready_tx.send(init);
                        if ok {
                            serve(rx);
                        }
                    })
                    .map_err(|e| format!("cannot start the SNMP thread: {e}"))?;
                ready_rx
                    .recv()
                    .map_err(|_| "the SNMP thread died at start".to_owned())?
                    .map_err(|e| format!("net-snmp: {e}"))?;
                Ok(tx)
            })
            .clone()
            .map_err(|e| anyhow::anyhow!(e))?;
        let scope = Arc::new(Scope {
            id: SCOPES.fetch_add(1, Ordering::Relaxed),
            tx: tx.clone(),
        });
        Ok(Engine { tx, scope })
    }

    /// Polls the targets concurrently; answers arrive on the returned channel as they come, one
    /// per target, all within `deadline` (and the SNMPv3 discoveries of agents not yet reached).
    pub fn poll(
        &self,
        targets: Vec<(i32, Target)>,
        oids: Vec<Vec<u32>>,
        deadline: Duration,
    ) -> mpsc::UnboundedReceiver<(i32, Result<Response, SnmpError>)> {
        let (answers, rx) = mpsc::unbounded_channel();
        let _ = self.tx.send(Request::Poll {
            scope: self.scope.id,
            targets,
            oids,
            deadline,
            answers,
        });
        rx
    }

    /// SET, then read `then` in the same session.
    pub async fn set(
        &self,
        key: Key,
        target: Target,
        oid: Vec<u32>,
        value: SetValue,
        then: Vec<Vec<u32>>,
    ) -> SetAnswer {
        let (answer, rx) = oneshot::channel();
        let sent = self.tx.send(Request::Set {
            scope: self.scope.id,
            key,
            target,
            oid,
            value,
            then,
            answer,
        });
        if sent.is_err() {
            return (Err(SnmpError::Failed("the SNMP thread is gone".into())), None);
        }
        rx.await
            .unwrap_or_else(|_| (Err(SnmpError::Failed("the SNMP thread is gone".into())), None))
    }
}

/// An open session and the target it was opened for (a changed target means a new session).
struct Open {
    target: Target,
    session: Session,
}

/// Agents whose SNMPv3 discovery failed are retried after 1, 2, 4 … 16 cycles: each attempt
/// blocks the thread for the agent's timeout.
struct Backoff {
    failures: u32,
    skip: u32,
}

/// A scope's open sessions and the backoff of the agents it could not reach.
type ScopeState = (HashMap<Key, Open>, HashMap<Key, Backoff>);

fn serve(rx: Receiver<Request>) {
    let mut scopes: HashMap<u64, ScopeState> = HashMap::new();
    for request in rx {
        match request {
            Request::Poll {
                scope,
                targets,
                oids,
                deadline,
                answers,
            } => {
                let (open, backoff) = scopes.entry(scope).or_default();
                poll(open, backoff, targets, &oids, deadline, &answers);
            }
            Request::Forget(scope) => {
                scopes.remove(&scope);
            }
            Request::Set {
                scope,
                key,
                target,
                oid,
                value,
                then,
                answer,
            } => {
                let (open, _) = scopes.entry(scope).or_default();
                let result = match session_for(open, key, &target) {
                    Ok(session) => {
                        let set = session.set(&target.peer, &oid, &value);
                        let after = (!then.is_empty()).then(|| session.get(&target.peer, &then));
                        (set, after)
                    }
                    Err(e) => (Err(SnmpError::Failed(e)), None),
                };
                let _ = answer.send(result);
            }
        }
    }
}

/// The open session for `key` and `target`, opened (again) if needed.
fn session_for<'a>(open: &'a mut HashMap<Key, Open>, key: Key, target: &Target) -> Result<&'a mut Session, String> {
    if open.get(&key).is_some_and(|o| &o.target != target) {
        open.remove(&key);
    }
    let open = match open.entry(key) {
        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
        std::collections::hash_map::Entry::Vacant(entry) => entry.insert(Open {
            target: target.clone(),
            session: Session::open(target)?,
        }),
    };
    Ok(&mut open.session)
}

/// One poll cycle: agents with an open session first, all at once, until each has answered or
/// timed out; then the agents to be discovered. net-snmp discovers an SNMPv3 engine inside the
/// first send, blocking for the agent's timeout when it does not answer: such agents come last
/// and are retried with a backoff, so a cycle lasts about two timeouts plus one per agent
/// discovered, and a known agent's answer never waits for a discovery.
fn poll(
    open: &mut HashMap<Key, Open>,
    backoff: &mut HashMap<Key, Backoff>,
    targets: Vec<(i32, Target)>,
    oids: &[Vec<u32>],
    deadline: Duration,
    answers: &mpsc::UnboundedSender<(i32, Result<Response, SnmpError>)>,
) {
    let wanted: Vec<Key> = targets.iter().map(|(id, _)| (*id, Role::Poll)).collect();
    open.retain(|key, _| key.1 != Role::Poll || wanted.contains(key));
    let (ready, new): (Vec<_>, Vec<_>) = targets
        .into_iter()
        .partition(|(id, t)| open.get(&(*id, Role::Poll)).is_some_and(|o| &o.target == t));

    let mut flights: Vec<(i32, InFlight)> = Vec::new();
    for (id, target) in &ready {
        let session = &mut open.get_mut(&(*id, Role::Poll)).expect("ready").session;
        flights.push((*id, session.send_get(&target.peer, oids)));
    }
    // The agents already known are answered (or timed out) before any blocking discovery.
    wait(open, &mut flights, Instant::now() + deadline, answers);
    give_up(open, &mut flights, answers);
    for (id, target) in new {
        let key = (id, Role::Poll);
        if let Some(b) = backoff.get_mut(&key) {
            if b.skip > 0 {
                b.skip -= 1;
                let _ = answers.send((
                    id,
                    Err(SnmpError::Failed(format!(
                        "{}: not reached in the last {} attempt(s); next attempt in {} cycle(s)",
                        target.peer,
                        b.failures,
                        b.skip + 1
                    ))),
                ));
                continue;
            }
        }
        let sent = session_for(open, key, &target).map(|session| session.send_get(&target.peer, oids));
        match sent {
            Ok(flight) if !flight.failed_to_send() => {
                backoff.remove(&key);
                flights.push((id, flight));
            }
            failed => {
                let error = match failed {
                    Ok(flight) => flight
                        .take()
                        .err()
                        .unwrap_or_else(|| SnmpError::Failed("not sent".into())),
                    Err(e) => SnmpError::Failed(e),
                };
                open.remove(&key);
                let b = backoff.entry(key).or_insert(Backoff { failures: 0, skip: 0 });
                b.failures += 1;
                b.skip = (1u32 << b.failures.min(5)).min(16) - 1;
                let _ = answers.send((id, Err(error)));
            }
        }
        wait(open, &mut flights, Instant::now() + Duration::from_millis(1), answers);
    }
    wait(open, &mut flights, Instant::now() + deadline, answers);
    give_up(open, &mut flights, answers);
}

/// What is still out at the deadline is a timeout; the request is dropped with its session
/// (net-snmp would call back into freed memory otherwise).
fn give_up(
    open: &mut HashMap<Key, Open>,
    flights: &mut Vec<(i32, InFlight)>,
    answers: &mpsc::UnboundedSender<(i32, Result<Response, SnmpError>)>,
) {
    for (id, flight) in flights.drain(..) {
        // Closing first: the library calls back into the flight's slot as it closes.
        open.remove(&(id, Role::Poll));
        let _ = answers.send((id, flight.take()));
    }
}

/// Runs the requests in flight until all are done or `until`, sending each answer as it comes.
fn wait(
    open: &mut HashMap<Key, Open>,
    flights: &mut Vec<(i32, InFlight)>,
    until: Instant,
    answers: &mpsc::UnboundedSender<(i32, Result<Response, SnmpError>)>,
) {
    loop {
        let waited = wait_one(open, flights, until, answers);
        if !waited || flights.is_empty() || Instant::now() >= until {
            return;
        }
    }
}

/// Runs the requests in flight until one is done (or `until`); sends and removes those done.
/// False when no request had a session to wait on (nothing can change by waiting).
fn wait_one(
    open: &mut HashMap<Key, Open>,
    flights: &mut Vec<(i32, InFlight)>,
    until: Instant,
    answers: &mpsc::UnboundedSender<(i32, Result<Response, SnmpError>)>,
) -> bool {
    let waited = {
        let mut pairs: Vec<(&mut Session, &InFlight)> = Vec::new();
        let mut sessions: HashMap<i32, &mut Session> = open
            .iter_mut()
            .filter(|(k, _)| k.1 == Role::Poll)
            .map(|(k, o)| (k.0, &mut o.session))
            .collect();
        for (id, flight) in flights.iter() {
            if let Some(session) = sessions.remove(id) {
                pairs.push((session, flight));
            }
        }
        session::run_all(&mut pairs, until);
        !pairs.is_empty()
    };
    let mut i = 0;
    while i < flights.len() {
        if flights[i].1.done() {
            let (id, flight) = flights.swap_remove(i);
            let result = flight.take().map_err(|e| match e {
                SnmpError::Timeout(_) => SnmpError::Timeout(
                    open.get(&(id, Role::Poll))
                        .map_or(String::new(), |o| o.target.peer.clone()),
                ),
                other => other,
            });
            let _ = answers.send((id, result));
        } else {
            i += 1;
        }
    }
    waited
}
