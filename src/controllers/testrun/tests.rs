//! Every path of a running run, decided and recorded without Docker or a store: cancel and
//! supersede mid-run, stage and run timeouts, the attempt limit, the retry backoff, refusal
//! before admission, the teardown and its give-up, the verdict of a run that tested nothing.

use chrono::{DateTime, Duration, Utc};

use super::admit::refusal;
use super::decide::{Next, next};
use super::plan::planned_stages;
use super::record::{self, MAX_ATTEMPTS, StepAt, retry_delay};
use super::steps::StepResult;
use super::stop::{Limits, Stop};
use crate::api::{
    Object, RunPhase, StageKind, StagePhase, StepName, StepStatus, TestPhase, TestRun, TestRunSpec,
};

const DEPLOY: StepName = StepName::Deploy { previous: false };
const CONVERGE: StepName = StepName::Converge { previous: false };

fn limits() -> Limits {
    Limits {
        run_seconds: 3600,
        stage_seconds: 600,
    }
}

/// A run admitted at `t0` with the install stage planned.
fn admitted(t0: DateTime<Utc>) -> TestRun {
    let mut run: TestRun = Object::new(
        "r1",
        TestRunSpec {
            recipe: "x".into(),
            git: None,
            git_ref: "main".into(),
            pr: Some(1),
            source: Default::default(),
            stages: None,
            upgrade_from: None,
            cancel: false,
            keep_on_failure: None,
        },
    );
    run.status.phase = RunPhase::Running;
    run.status.started = Some(t0);
    run.status.stages = planned_stages(&[StageKind::Install]);
    run.status.steps = vec![StepStatus::pending(StepName::Fetch)];
    run
}

fn passed(message: &str) -> StepResult {
    StepResult {
        ok: true,
        message: message.into(),
        ..Default::default()
    }
}

/// A run in its install stage, at the converge step (deploy done), started at `t0`.
fn converging(t0: DateTime<Utc>) -> TestRun {
    let mut run = admitted(t0);
    let s = &mut run.status;
    record::begin(s, StepAt::Run(0), t0).unwrap();
    record::done(s, StepAt::Run(0), passed("1.0 at abc"), t0);
    record::stage_started(
        s,
        0,
        Ok(vec![DEPLOY, CONVERGE, StepName::Test(TestPhase::Check)]),
        t0,
    );
    record::begin(s, StepAt::Stage(0, 0), t0).unwrap();
    record::done(s, StepAt::Stage(0, 0), passed("deployed"), t0);
    record::begin(s, StepAt::Stage(0, 1), t0).unwrap();
    run
}

#[test]
fn a_fresh_run_fetches_first_within_the_recipes_run_deadline() {
    let t0 = Utc::now();
    let run = admitted(t0);
    let recipe_limits = Limits {
        run_seconds: 42,
        stage_seconds: 600,
    };
    match next(&run, None, &recipe_limits, t0) {
        Next::Step { at, name, deadline } => {
            assert_eq!((at, name), (StepAt::Run(0), StepName::Fetch));
            assert_eq!(deadline.unwrap().at, t0 + Duration::seconds(42));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_fetch_times_out_with_the_run() {
    let t0 = Utc::now();
    let run = admitted(t0);
    let late = t0 + Duration::seconds(3601);
    assert!(matches!(
        next(&run, None, &limits(), late),
        Next::Stop(Stop::TimedOut(_))
    ));
}

#[test]
fn a_stage_step_runs_until_the_earlier_of_the_stage_and_run_deadlines() {
    let t0 = Utc::now();
    let run = converging(t0);
    match next(&run, None, &limits(), t0) {
        Next::Step { at, name, deadline } => {
            assert_eq!((at, name), (StepAt::Stage(0, 1), CONVERGE));
            assert_eq!(deadline.unwrap().at, t0 + Duration::seconds(600));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cancel_while_running_cancels_the_running_stage_and_tears_down() {
    let t0 = Utc::now();
    let mut run = converging(t0);
    run.spec.cancel = true;
    let Next::Stop(stop) = next(&run, None, &limits(), t0) else {
        panic!("a cancelled run stops");
    };
    assert_eq!(stop, Stop::Cancelled);
    record::stopped(&mut run.status, &stop, t0);
    let stage = &run.status.stages[0];
    assert_eq!(
        stage.phase,
        StagePhase::Cancelled,
        "not Skipped: it had deployed"
    );
    assert_eq!(stage.steps[1].ok, Some(false));
    assert_eq!(stage.steps[1].message, "cancelled by request");
    assert_eq!(stage.steps[2].finished, None, "never started");
    assert_eq!(run.status.verdict, Some(RunPhase::Cancelled));
    assert_eq!(
        run.status.phase,
        RunPhase::Running,
        "terminal only after the teardown"
    );
    assert_eq!(next(&run, None, &limits(), t0), Next::Teardown);
}

#[test]
fn superseded_mid_run_says_by_whom_in_words() {
    let t0 = Utc::now();
    let mut run = converging(t0);
    let Next::Stop(stop) = next(&run, Some("r2".into()), &limits(), t0) else {
        panic!("a superseded run stops");
    };
    record::stopped(&mut run.status, &stop, t0);
    assert_eq!(run.status.message, "superseded by r2");
    assert_eq!(run.status.stages[0].steps[1].message, "superseded by r2");
    assert_eq!(run.status.stages[0].phase, StagePhase::Cancelled);
    let json = serde_json::to_string(&run.status).unwrap();
    assert!(
        !json.contains("Cancelled(") && !json.contains("Superseded("),
        "{json}"
    );
}

#[test]
fn a_stage_past_its_deadline_fails_and_later_stages_are_skipped() {
    let t0 = Utc::now();
    let mut run = converging(t0);
    run.status
        .stages
        .extend(planned_stages(&[StageKind::Upgrade]));
    let late = t0 + Duration::seconds(601);
    let Next::Stop(stop) = next(&run, None, &limits(), late) else {
        panic!("the stage ran out of time");
    };
    assert_eq!(stop.to_string(), "stage install ran out of time (600 s)");
    record::stopped(&mut run.status, &stop, late);
    assert_eq!(run.status.stages[0].phase, StagePhase::Failed);
    assert_eq!(run.status.stages[1].phase, StagePhase::Skipped);
    assert_eq!(run.status.verdict, Some(RunPhase::TimedOut));
}

#[test]
fn infrastructure_errors_back_off_then_end_the_run_in_error() {
    let t0 = Utc::now();
    let mut run = converging(t0);
    let at = StepAt::Stage(0, 1);
    let mut now = t0;
    for attempt in 1..=MAX_ATTEMPTS {
        match next(&run, None, &limits(), now) {
            Next::Step { at: a, .. } => assert_eq!(a, at),
            other => panic!("attempt {attempt}: {other:?}"),
        }
        record::begin(&mut run.status, at, now).unwrap();
        record::failed_attempt(&mut run.status, at, "docker: connection refused", now);
        assert_eq!(at.get(&run.status).failed_attempts, attempt);
        // Not before the backoff: a status write wakes the reconcile at once.
        let wait = retry_delay(attempt);
        assert_eq!(
            next(&run, None, &limits(), now + Duration::milliseconds(35)),
            Next::Wait(wait - std::time::Duration::from_millis(35))
        );
        now += Duration::from_std(wait).unwrap();
    }
    assert!(retry_delay(2) > retry_delay(1));
    let why = record::begin(&mut run.status, at, now).unwrap_err();
    assert!(
        why.contains("failed 3 times") && why.contains("connection refused"),
        "{why}"
    );
    record::give_up(&mut run.status, at, &why, now);
    assert_eq!(run.status.stages[0].phase, StagePhase::Failed);
    assert_eq!(run.status.verdict, Some(RunPhase::Error));
    assert_eq!(next(&run, None, &limits(), now), Next::Teardown);
}

#[test]
fn a_step_cut_short_by_a_restart_is_resumed_not_counted() {
    let t0 = Utc::now();
    let mut run = converging(t0);
    let at = StepAt::Stage(0, 1);
    assert_eq!(
        record::begin(&mut run.status, at, t0),
        Ok(record::Begun::Resumed(1))
    );
    record::failed_attempt(&mut run.status, at, "boom", t0);
    assert_eq!(
        record::begin(&mut run.status, at, t0 + Duration::seconds(5)),
        Ok(record::Begun::Attempt(2))
    );
}

#[test]
fn a_failed_test_fails_the_stage_and_the_run() {
    let t0 = Utc::now();
    let mut run = converging(t0);
    record::done(
        &mut run.status,
        StepAt::Stage(0, 1),
        passed("converged"),
        t0,
    );
    let at = StepAt::Stage(0, 2);
    record::begin(&mut run.status, at, t0).unwrap();
    let mut report = crate::executor::TestReport::default();
    report.record("http::root", Err("503".into()));
    record::done(
        &mut run.status,
        at,
        StepResult {
            ok: false,
            message: "0 passed, 1 failed".into(),
            report: Some(report),
            fetched: None,
        },
        t0,
    );
    let stage = &run.status.stages[0];
    assert_eq!(stage.phase, StagePhase::Failed);
    assert_eq!(stage.tests.failed, 1);
    assert_eq!(stage.message, "test:check: 0 passed, 1 failed");
    assert_eq!(run.status.verdict, Some(RunPhase::Failed));
}

#[test]
fn every_stage_passing_succeeds_and_nothing_tested_is_not_a_pass() {
    let t0 = Utc::now();
    let mut run = converging(t0);
    for j in 1..3 {
        record::begin(&mut run.status, StepAt::Stage(0, j), t0).unwrap();
        record::done(&mut run.status, StepAt::Stage(0, j), passed("ok"), t0);
    }
    assert_eq!(next(&run, None, &limits(), t0), Next::PassStage(0));
    record::stage_passed(&mut run.status, 0, t0);
    assert_eq!(next(&run, None, &limits(), t0), Next::Conclude);
    record::stages_ended(&mut run.status, t0);
    assert_eq!(run.status.verdict, Some(RunPhase::Succeeded));

    let mut nothing = admitted(t0);
    nothing.status.stages.clear();
    record::done(&mut nothing.status, StepAt::Run(0), passed("fetched"), t0);
    assert_eq!(next(&nothing, None, &limits(), t0), Next::Conclude);
    record::stages_ended(&mut nothing.status, t0);
    assert_eq!(nothing.status.verdict, Some(RunPhase::Failed));
    assert!(nothing.status.message.contains("nothing was tested"));

    let mut not_applicable = admitted(t0);
    record::done(&mut not_applicable.status, StepAt::Run(0), passed("f"), t0);
    record::stage_started(&mut not_applicable.status, 0, Err("no labels".into()), t0);
    record::stages_ended(&mut not_applicable.status, t0);
    assert_eq!(not_applicable.status.verdict, Some(RunPhase::Failed));
}

#[test]
fn the_teardown_ends_the_run_in_its_verdict_or_gives_up_in_error() {
    let t0 = Utc::now();
    let mut run = converging(t0);
    record::stopped(&mut run.status, &Stop::Cancelled, t0);
    run.status
        .steps
        .push(StepStatus::pending(StepName::Teardown));
    let at = StepAt::Run(1);
    let mut done = run.clone();
    record::begin(&mut done.status, at, t0).unwrap();
    record::done(&mut done.status, at, passed("removed"), t0);
    assert!(done.status.torn_down);
    assert_eq!(done.status.phase, RunPhase::Cancelled);

    for _ in 0..MAX_ATTEMPTS {
        record::begin(&mut run.status, at, t0).unwrap();
        record::failed_attempt(&mut run.status, at, "volume in use", t0);
    }
    let why = record::begin(&mut run.status, at, t0).unwrap_err();
    record::give_up(&mut run.status, at, &why, t0);
    assert_eq!(run.status.phase, RunPhase::Error);
    assert!(
        !run.status.torn_down,
        "the periodic retry still owes the teardown"
    );
    assert!(
        run.status.message.contains("the teardown failed"),
        "{}",
        run.status.message
    );
}

#[test]
fn runs_are_refused_before_admission_when_cancelled_superseded_or_suspended() {
    let mut run = admitted(Utc::now());
    assert_eq!(refusal(&run, None, false), None);
    let suspended = refusal(&run, None, true).unwrap();
    assert!(suspended.contains("suspended"), "{suspended}");
    assert_eq!(
        refusal(&run, Some("r2".into()), true).unwrap(),
        "superseded by r2 before it started"
    );
    run.spec.cancel = true;
    assert_eq!(
        refusal(&run, Some("r2".into()), true).unwrap(),
        "cancelled before it started"
    );
}

#[test]
fn a_failed_fetch_fails_the_run_and_skips_every_stage() {
    let t0 = Utc::now();
    let mut run = admitted(t0);
    record::begin(&mut run.status, StepAt::Run(0), t0).unwrap();
    record::done(
        &mut run.status,
        StepAt::Run(0),
        StepResult {
            ok: false,
            message: "ref nope not found".into(),
            ..Default::default()
        },
        t0,
    );
    assert_eq!(run.status.verdict, Some(RunPhase::Failed));
    assert_eq!(run.status.stages[0].phase, StagePhase::Skipped);
    assert_eq!(next(&run, None, &limits(), t0), Next::Teardown);
}
