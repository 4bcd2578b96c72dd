//! `dbmux.aio`'s worker threads: Rust threads that run a cursor's statement
//! without ever taking the GIL, and hand the outcome to the event loop that
//! awaits it through a [`Waker`] (a socket the loop watches with
//! `add_reader`). One hand-off per statement and two thread wake-ups (the
//! worker's, the loop's), with no GIL passed between threads: a Python
//! worker needs the GIL to take the job, to call the driver and to call
//! `call_soon_threadsafe`, and every one of those waits for the loop's
//! thread to let go of it.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::connection::{lock, Failed};
use crate::cursor::Cursor;
use crate::errors::{status_error, MANAGER_CLOSED};
use crate::values::Collected;

/// How long a worker that finished a job waits, awake, for the next one
/// (one worker at a time).
const SPIN: Duration = Duration::from_micros(50);

/// What a worker does.
enum Task {
    /// A cursor's statement, prepared on the loop ([`Cursor::started`]).
    Execute {
        cursor: Py<Cursor>,
        sql: String,
        params: Vec<dbmux::Value>,
        sink: Collected,
    },
    /// A Python callable (commit, close, health, ...), called with the GIL.
    Call { func: Py<PyAny>, args: Py<PyTuple> },
}

struct Job {
    inbox: Arc<Inbox>,
    /// The asyncio future of the awaiting task.
    fut: Py<PyAny>,
    task: Task,
}

/// A finished job, for the loop to settle.
struct Done {
    fut: Py<PyAny>,
    outcome: Outcome,
}

enum Outcome {
    Executed {
        cursor: Py<Cursor>,
        sink: Collected,
        ran: Result<(u64, Option<i64>), Failed>,
    },
    Called(PyResult<Py<PyAny>>),
}

/// The finished jobs of one event loop, and how to wake it.
struct Inbox {
    done: Mutex<Vec<Done>>,
    /// The end the workers write a byte to, and the one the loop reads
    /// (both live as long as any job of the loop: a write never meets a
    /// closed peer, which would raise SIGPIPE in a host that does not
    /// ignore it).
    #[cfg(unix)]
    tx: Option<std::os::unix::net::UnixStream>,
    #[cfg(unix)]
    rx: Option<std::os::unix::net::UnixStream>,
    /// Without a socket: called with the GIL to wake the loop
    /// (`loop.call_soon_threadsafe(waker.drain)`).
    notify: Option<Py<PyAny>>,
}

impl Inbox {
    fn deliver(&self, d: Done) {
        let first = {
            let mut q = lock(&self.done);
            q.push(d);
            q.len() == 1
        };
        // a non-empty inbox has its wake-up on the way (the drain reads the
        // socket before it takes the jobs)
        if !first {
            return;
        }
        #[cfg(unix)]
        if let Some(tx) = &self.tx {
            use std::io::Write;
            // WouldBlock: the socket is full of wake-ups the loop has yet to read
            let _ = (&*tx).write(&[1]);
            return;
        }
        if let Some(n) = &self.notify {
            Python::attach(|py| {
                if let Err(e) = n.call0(py) {
                    // the loop is closed: nobody awaits these any more
                    log::debug!(target: "dbmux::aio", "cannot wake the event loop: {e}");
                }
            });
        }
    }
}

/// Wakes one event loop when its jobs are done: `loop.add_reader(w.fd,
/// w.drain)`, or without `add_reader` (Windows' proactor loop),
/// `_Waker(notify)` where `notify()` schedules `w.drain` on the loop.
#[pyclass(frozen, module = "dbmux._dbmux", name = "_Waker")]
pub struct Waker {
    inbox: Arc<Inbox>,
}

#[pymethods]
impl Waker {
    #[new]
    #[pyo3(signature = (notify=None))]
    fn new(notify: Option<Py<PyAny>>) -> PyResult<Waker> {
        #[cfg(unix)]
        {
            let (tx, rx) = match notify {
                Some(_) => (None, None),
                None => {
                    let (tx, rx) = std::os::unix::net::UnixStream::pair()?;
                    tx.set_nonblocking(true)?;
                    rx.set_nonblocking(true)?;
                    (Some(tx), Some(rx))
                }
            };
            Ok(Waker {
                inbox: Arc::new(Inbox {
                    done: Mutex::new(Vec::new()),
                    tx,
                    rx,
                    notify,
                }),
            })
        }
        #[cfg(not(unix))]
        {
            let Some(notify) = notify else {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "_Waker needs notify on this platform",
                ));
            };
            Ok(Waker {
                inbox: Arc::new(Inbox {
                    done: Mutex::new(Vec::new()),
                    notify: Some(notify),
                }),
            })
        }
    }

    /// The file descriptor to watch for reading (`None` with `notify`).
    #[getter]
    fn fd(&self) -> Option<i32> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            self.inbox.rx.as_ref().map(|r| r.as_raw_fd())
        }
        #[cfg(not(unix))]
        None
    }

    /// Settles the futures of the finished jobs (on the loop).
    fn drain(&self, py: Python<'_>) {
        #[cfg(unix)]
        if let Some(rx) = &self.inbox.rx {
            use std::io::Read;
            let mut buf = [0u8; 64];
            while matches!((&*rx).read(&mut buf), Ok(n) if n > 0) {}
        }
        let done = std::mem::take(&mut *lock(&self.inbox.done));
        for d in done {
            settle(py, d);
        }
    }
}

/// The outcome of a job on its future (on the loop's thread).
fn settle(py: Python<'_>, d: Done) {
    let result = match d.outcome {
        Outcome::Executed { cursor, sink, ran } => {
            cursor.get().ended(py, sink, ran).map(|()| py.None())
        }
        Outcome::Called(r) => r,
    };
    let fut = d.fut.bind(py);
    // a future cancelled meanwhile takes no result
    if fut
        .call_method0("done")
        .and_then(|d| d.is_truthy())
        .unwrap_or(true)
    {
        return;
    }
    let set = match result {
        Ok(v) => fut.call_method1("set_result", (v,)),
        Err(e) => fut.call_method1("set_exception", (e.into_value(py),)),
    };
    if let Err(e) = set {
        log::debug!(target: "dbmux::aio", "cannot settle a future: {e}");
    }
}

struct Jobs {
    list: VecDeque<Job>,
    stopped: bool,
}

struct Queue {
    /// How many jobs `jobs` holds (read without the lock by a spinning worker).
    queued: AtomicUsize,
    /// A worker spins, waiting for the next job.
    spinning: AtomicBool,
    /// Jobs handed to the workers so far.
    handed: std::sync::atomic::AtomicU64,
    jobs: Mutex<Jobs>,
    more: Condvar,
}

impl Queue {
    /// Queues `job`; gives it back when the queue is stopped.
    fn push(&self, job: Job) -> Option<Job> {
        let mut j = lock(&self.jobs);
        if j.stopped {
            return Some(job);
        }
        j.list.push_back(job);
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.handed.fetch_add(1, Ordering::Relaxed);
        drop(j);
        self.more.notify_one();
        None
    }

    fn stop(&self) {
        lock(&self.jobs).stopped = true;
        self.more.notify_all();
    }

    /// The next job; `None` once stopped and empty.
    fn next(&self) -> Option<Job> {
        let mut j = lock(&self.jobs);
        let mut spun = false;
        loop {
            if let Some(job) = j.list.pop_front() {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                return Some(job);
            }
            if j.stopped {
                return None;
            }
            if !spun && !self.spinning.swap(true, Ordering::Acquire) {
                // one worker at a time waits a moment for the next job
                // before it sleeps: a task that awaits statements one after
                // another hands over its next one within tens of
                // microseconds, and a sleeping thread takes about as long
                // again to wake (more on a virtual machine)
                drop(j);
                spun = true;
                let start = Instant::now();
                let mut n = 0u32;
                while self.queued.load(Ordering::Relaxed) == 0 && start.elapsed() < SPIN {
                    n += 1;
                    if n % 64 == 0 {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
                self.spinning.store(false, Ordering::Release);
                j = lock(&self.jobs);
                continue;
            }
            j = self.more.wait(j).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn work(q: Arc<Queue>) {
    while let Some(job) = q.next() {
        let outcome = match job.task {
            Task::Execute {
                cursor,
                sql,
                params,
                mut sink,
            } => {
                let conn = cursor.get().conn();
                let ran = catch_unwind(AssertUnwindSafe(|| {
                    conn.run_statement(&sql, &params, &mut sink)
                }))
                .unwrap_or_else(|_| {
                    Err(Failed::Db(dbmux::Error::new(
                        dbmux::ErrorCode::Internal,
                        "the statement panicked in dbmux (a bug: please report it)",
                    )))
                });
                Outcome::Executed { cursor, sink, ran }
            }
            Task::Call { func, args } => {
                Outcome::Called(Python::attach(|py| func.call1(py, args.bind(py))))
            }
        };
        job.inbox.deliver(Done {
            fut: job.fut,
            outcome,
        });
    }
}

/// The worker threads of one manager (as many as its pool can have
/// connections), fed through one queue.
#[pyclass(frozen, module = "dbmux._dbmux", name = "_Workers")]
pub struct Workers {
    queue: Arc<Queue>,
}

impl Workers {
    fn push(&self, py: Python<'_>, job: Job) -> PyResult<()> {
        match self.queue.push(job) {
            None => Ok(()),
            Some(_) => Err(status_error(py, MANAGER_CLOSED, "the manager is closed")),
        }
    }
}

#[pymethods]
impl Workers {
    #[new]
    fn new(n: usize) -> PyResult<Workers> {
        let queue = Arc::new(Queue {
            queued: AtomicUsize::new(0),
            spinning: AtomicBool::new(false),
            handed: std::sync::atomic::AtomicU64::new(0),
            jobs: Mutex::new(Jobs {
                list: VecDeque::new(),
                stopped: false,
            }),
            more: Condvar::new(),
        });
        for i in 0..n.max(1) {
            let q = queue.clone();
            std::thread::Builder::new()
                .name(format!("dbmux-aio-{i}"))
                .spawn(move || work(q))?;
        }
        Ok(Workers { queue })
    }

    /// Runs `cursor.execute(sql, params)` on a worker, without the GIL;
    /// `fut` (of the loop `waker` wakes) gets None or the exception. The
    /// checks and the parameters' conversion happen now, and raise here.
    #[pyo3(signature = (waker, fut, cursor, sql, params=None))]
    fn execute(
        &self,
        py: Python<'_>,
        waker: &Waker,
        fut: Py<PyAny>,
        cursor: Py<Cursor>,
        sql: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let (sql, params, sink) = cursor.get().started(py, sql, params)?;
        let job = Job {
            inbox: waker.inbox.clone(),
            fut,
            task: Task::Execute {
                cursor,
                sql,
                params,
                sink,
            },
        };
        match self.queue.push(job) {
            None => Ok(()),
            // stopped: the cursor's statement ends with that error
            Some(job) => match job.task {
                Task::Execute { cursor, sink, .. } => {
                    let closed =
                        dbmux::Error::new(dbmux::ErrorCode::ManagerClosed, "the manager is closed");
                    cursor.get().ended(py, sink, Err(Failed::Db(closed)))
                }
                Task::Call { .. } => Ok(()),
            },
        }
    }

    /// Calls `func(*args)` on a worker (with the GIL); `fut` gets its
    /// result or exception.
    fn call(
        &self,
        py: Python<'_>,
        waker: &Waker,
        fut: Py<PyAny>,
        func: Py<PyAny>,
        args: Py<PyTuple>,
    ) -> PyResult<()> {
        self.push(
            py,
            Job {
                inbox: waker.inbox.clone(),
                fut,
                task: Task::Call { func, args },
            },
        )
    }

    /// How many jobs were handed to the workers so far (each a hand-off
    /// from the event loop to a thread).
    #[getter]
    fn handed(&self) -> u64 {
        self.queue.handed.load(Ordering::Relaxed)
    }

    /// Lets the threads end once the queued jobs are done; later jobs are
    /// refused (the manager is closed).
    fn shutdown(&self) {
        self.queue.stop();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.queue.stop();
    }
}
