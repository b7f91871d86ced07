//! The one way a step runs, whether it is the run's fetch, a stage step or the teardown:
//! begin the attempt (a status write, so a crash leaves the step started but unfinished),
//! log it, run it — racing the stops from outside unless it is the teardown — and write its
//! outcome once ([`drive`]).

use std::future::Future;
use std::time::Duration;

use chrono::Utc;

use super::record::{self, Begun, StepAt};
use super::sink::{LogSink, log_lines};
use super::steps::{StepError, StepResult};
use super::stop::{Deadline, Stop, race_stop};
use super::{Context, ReconcileError, TEARDOWN_RETRY, write_status};
use crate::api::{StepName, TestRun, TestRunStatus};
use crate::runtime::Action;
use crate::store::Store;

/// How often a running step says it is still running (a converge waiting for a missing image
/// may otherwise log nothing for a long time).
const HEARTBEAT: Duration = Duration::from_secs(10);

/// A step's log callback, handed to the step's work.
pub type LogFn = Box<dyn FnMut(&str) + Send>;

/// How a step may be interrupted.
pub enum Stoppable {
    /// By deletion, cancellation, supersede and this deadline.
    Yes(Option<Deadline>),
    /// Never (the teardown must finish).
    No,
}

/// Runs the step at `at` of `status` (the run's current status) with `work`, logging to
/// `stream`, and records the outcome: a result ends the step (see [`record::done`]), a stop
/// concludes the run, an infrastructure error counts as a failed attempt and is returned (the
/// step runs again after its backoff), and a step out of attempts ends the run in `Error`.
pub async fn drive<St, F, Fut>(
    ctx: &Context<St>,
    run: &TestRun,
    mut status: TestRunStatus,
    at: StepAt,
    stream: &str,
    stoppable: Stoppable,
    work: F,
) -> Result<Action, ReconcileError>
where
    St: Store,
    F: FnOnce(LogFn) -> Fut,
    Fut: Future<Output = Result<StepResult, StepError>>,
{
    let name: StepName = at.get(&status).name;
    let now = Utc::now();
    let begun = match record::begin(&mut status, at, now) {
        Ok(b) => b,
        Err(why) => {
            record::give_up(&mut status, at, &why, now);
            write_status(ctx, run, &status).await?;
            log_lines(
                ctx,
                run.name(),
                stream,
                &[format!("step {name} gave up: {why}")],
            )
            .await;
            return Ok(if status.phase.is_terminal() {
                Action::requeue(TEARDOWN_RETRY)
            } else {
                Action::requeue(Duration::ZERO)
            });
        }
    };
    write_status(ctx, run, &status).await?;
    let sink = LogSink::open(ctx, run.name(), stream).await;
    let mut log: LogFn = Box::new(sink.callback());
    let attempt = match begun {
        Begun::Attempt(n) => {
            log(&format!("step {name} (attempt {n})"));
            n
        }
        Begun::Resumed(n) => {
            let line = format!(
                "step {name} (attempt {n}) runs again: the controller stopped while it ran"
            );
            if stream != crate::runlog::RUN_STREAM {
                log_lines(
                    ctx,
                    run.name(),
                    crate::runlog::RUN_STREAM,
                    std::slice::from_ref(&line),
                )
                .await;
            }
            log(&line);
            n
        }
    };
    let mut beat = sink.callback();
    let work = async {
        let started = std::time::Instant::now();
        let heartbeat = async {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let secs = started.elapsed().as_secs();
                beat(&format!("step {name} still running ({secs} s)"));
            }
        };
        tokio::select! {
            r = work(log) => r,
            never = heartbeat => never,
        }
    };
    let outcome = match stoppable {
        Stoppable::Yes(deadline) => race_stop(ctx, run.name(), deadline, work).await,
        Stoppable::No => Ok(work.await),
    };
    let now = Utc::now();
    let (last, error) = match outcome {
        Err(Stop::Deleted) => {
            sink.close(Some(format!("step {name} stopped: the run was deleted")))
                .await;
            return Ok(Action::requeue(Duration::ZERO));
        }
        Err(stop) => {
            record::stopped(&mut status, &stop, now);
            (format!("step {name} stopped: {stop}"), None)
        }
        Ok(Err(e)) => {
            let why = error_chain(&e);
            let retry = record::retry_delay(at.get(&status).failed_attempts + 1);
            record::failed_attempt(&mut status, at, &why, now);
            let line = if attempt >= record::MAX_ATTEMPTS {
                format!("step {name} failed (attempt {attempt}, the last): {why}")
            } else {
                format!(
                    "step {name} failed (attempt {attempt}), retried in {} s: {why}",
                    retry.as_secs()
                )
            };
            (line, Some(why))
        }
        Ok(Ok(result)) => {
            let line = format!(
                "step {name} {}: {}",
                if result.ok { "passed" } else { "failed" },
                result.message
            );
            record::done(&mut status, at, result, now);
            (line, None)
        }
    };
    sink.close(Some(last)).await;
    write_status(ctx, run, &status).await?;
    if status.torn_down {
        let verdict = status.phase.as_str();
        let line = format!("finished: {verdict} ({})", status.message);
        log_lines(ctx, run.name(), crate::runlog::RUN_STREAM, &[line]).await;
        return Ok(Action::await_change());
    }
    match error {
        Some(message) => Err(ReconcileError::Step {
            run: run.name().to_string(),
            step: name,
            attempt,
            message: super::sink::redactor(ctx, run.name()).redact(&message),
        }),
        None => Ok(Action::requeue(Duration::ZERO)),
    }
}

/// An error with its causes, `outer: inner: innermost` (each once).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
