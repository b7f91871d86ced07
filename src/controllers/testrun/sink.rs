//! Where a run's words go: its log streams ([`LogSink`], [`log_lines`]) and its status, both
//! through the run's [`Redactor`] — the only ways in, so no secret the run generated reaches
//! a log file, a status field or the store (see [`redact_status`]).

use tokio::sync::mpsc;

use super::Context;
use super::workspace::Workspace;
use crate::api::TestRunStatus;
use crate::recipe::secrets::SecretFile;
use crate::runlog::redact::Redactor;
use crate::store::Store;

/// A redactor knowing every secret generated for `run` so far (read from the run's secrets
/// file, so it survives a restart).
pub fn redactor<St: Store>(ctx: &Context<St>, run: &str) -> Redactor {
    let redactor = Redactor::new();
    if let Ok(dir) = ctx.logs.run_dir(run)
        && let Ok(file) = SecretFile::open(&Workspace::new(dir).secrets_file())
    {
        file.register_all(&redactor);
    }
    redactor
}

/// Scrubs every free-text field of `status` (run, stage and step messages, failing tests).
pub fn redact_status(status: &mut TestRunStatus, redactor: &Redactor) {
    let scrub = |s: &mut String| {
        if !s.is_empty() {
            *s = redactor.redact(s);
        }
    };
    scrub(&mut status.message);
    for step in &mut status.steps {
        scrub(&mut step.message);
    }
    for stage in &mut status.stages {
        scrub(&mut stage.message);
        for step in &mut stage.steps {
            scrub(&mut step.message);
        }
        for t in &mut stage.failing_tests {
            scrub(t);
        }
    }
}

/// Appends lines to a run's log stream; logging trouble never stops a run.
pub async fn log_lines<St: Store>(ctx: &Context<St>, run: &str, stream: &str, lines: &[String]) {
    let sink = LogSink::open(ctx, run, stream).await;
    let mut log = sink.callback();
    for l in lines {
        log(l);
    }
    sink.close(None).await;
}

/// A run log stream fed from synchronous callbacks (steps log through `FnMut(&str)`); a task
/// writes the lines, redacted, as they come, so progress is visible while a step runs.
pub struct LogSink {
    // `None` ends the stream: callbacks handed out may outlive the sink's own sender.
    tx: mpsc::UnboundedSender<Option<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl LogSink {
    /// Opens `stream` of `run`.
    pub async fn open<St: Store>(ctx: &Context<St>, run: &str, stream: &str) -> LogSink {
        let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
        let writer = ctx.logs.writer(run, stream, redactor(ctx, run)).await;
        let run = run.to_string();
        let task = tokio::spawn(async move {
            match writer {
                Ok(mut w) => {
                    while let Some(Some(line)) = rx.recv().await {
                        if let Err(e) = w.line(&line).await {
                            tracing::warn!(run, error = %e, "cannot write the run log");
                            break;
                        }
                    }
                    let _ = w.finish().await;
                }
                Err(e) => {
                    tracing::warn!(run, error = %e, "cannot open the run log");
                    while let Some(Some(_)) = rx.recv().await {}
                }
            }
        });
        LogSink { tx, task }
    }

    /// A callback appending lines to the stream.
    pub fn callback(&self) -> impl FnMut(&str) + Send + 'static {
        let tx = self.tx.clone();
        move |line: &str| {
            let _ = tx.send(Some(line.to_string()));
        }
    }

    /// Writes what is queued (and `last`) and closes the stream.
    pub async fn close(self, last: Option<String>) {
        if let Some(line) = last {
            let _ = self.tx.send(Some(line));
        }
        let _ = self.tx.send(None);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{StageKind, StepName, StepStatus};

    #[test]
    fn every_message_of_a_status_is_scrubbed() {
        let redactor = Redactor::new();
        assert!(redactor.register("rabbit-pine-secret-value"));
        let leak = "the password is rabbit-pine-secret-value";
        let mut status = TestRunStatus {
            message: leak.into(),
            steps: vec![StepStatus::pending(StepName::Fetch)],
            stages: super::super::plan::planned_stages(&[StageKind::Install]),
            ..Default::default()
        };
        status.steps[0].message = leak.into();
        status.stages[0].message = leak.into();
        status.stages[0].steps = vec![StepStatus::pending(StepName::Converge { previous: false })];
        status.stages[0].steps[0].message = leak.into();
        status.stages[0].failing_tests = vec![leak.into()];
        redact_status(&mut status, &redactor);
        let json = serde_json::to_string(&status).unwrap();
        assert!(!json.contains("rabbit-pine"), "{json}");
        assert_eq!(json.matches("the password is").count(), 5, "{json}");
    }
}
