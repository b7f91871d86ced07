//! Reads the JUnit XML a test job writes (pytest's xunit2 flavour, with the harness' `origin`
//! property on each test case) and turns it into a step's [`TestReport`]. Pure: no I/O.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Broken, TestReport};

/// How one test case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Passed,
    /// An assertion failed.
    Failed(String),
    /// It errored (in setup or teardown, or the file could not be collected).
    Errored(String),
    /// It was skipped.
    Skipped,
}

/// One `<testcase>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// `classname` (pytest: the module path, e.g. `suite.test_install`).
    pub classname: String,
    /// `name` (the test function, or for a collection error the module).
    pub name: String,
    /// `suite` or `recipe` (the harness' `origin` property); `suite` when absent.
    pub origin: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether this case stands for a file that could not be collected.
    pub collection_error: bool,
    /// The full failure text (traceback), if any.
    pub detail: String,
}

impl Case {
    /// A readable test name: `test_install.py::test_login` style, without the mount prefix.
    pub fn display_name(&self) -> String {
        let module = self
            .classname
            .strip_prefix("suite.")
            .or_else(|| self.classname.strip_prefix("recipe-tests."))
            .unwrap_or(&self.classname);
        if module.is_empty() {
            self.name.clone()
        } else {
            format!("{module}::{}", self.name)
        }
    }
}

/// Why a JUnit file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the JUnit XML is malformed: {0}")]
pub struct JunitError(String);

fn attr(e: &BytesStart<'_>, name: &[u8]) -> String {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
        .unwrap_or_default()
}

fn new_case(e: &BytesStart<'_>) -> Case {
    Case {
        classname: attr(e, b"classname"),
        name: attr(e, b"name"),
        origin: "suite".into(),
        outcome: Outcome::Passed,
        collection_error: false,
        detail: String::new(),
    }
}

/// Parses a JUnit XML document into its test cases.
pub fn parse(xml: &str) -> Result<Vec<Case>, JunitError> {
    let mut reader = Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut current: Option<Case> = None;
    // The element whose text is the current case's detail (`failure`, `error`, `skipped`).
    let mut in_detail = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| JunitError(format!("at byte {}: {e}", reader.buffer_position())))?;
        match event {
            Event::Start(e) if e.name().as_ref() == b"testcase" => current = Some(new_case(&e)),
            // `<testcase …/>`: a passed test without properties.
            Event::Empty(e) if e.name().as_ref() == b"testcase" => cases.push(new_case(&e)),
            Event::Start(e) | Event::Empty(e) => {
                if let Some(case) = current.as_mut() {
                    let message = attr(&e, b"message");
                    match e.name().as_ref() {
                        b"failure" => {
                            case.outcome = Outcome::Failed(message);
                            in_detail = true;
                        }
                        b"error" => {
                            case.collection_error = message == "collection failure";
                            // An error after a failure (teardown) keeps the failure.
                            if !matches!(case.outcome, Outcome::Failed(_)) {
                                case.outcome = Outcome::Errored(message);
                            }
                            in_detail = true;
                        }
                        b"skipped" if case.outcome == Outcome::Passed => {
                            case.outcome = Outcome::Skipped;
                        }
                        b"property" if attr(&e, b"name") == "origin" => {
                            case.origin = attr(&e, b"value");
                        }
                        _ => {}
                    }
                }
            }
            Event::Text(t) if in_detail => {
                if let Some(case) = current.as_mut() {
                    let text = t.decode().map_err(|e| JunitError(e.to_string()))?;
                    case.detail.push_str(
                        &quick_xml::escape::unescape(&text)
                            .map_or_else(|_| text.to_string(), |s| s.into_owned()),
                    );
                }
            }
            // quick-xml reports `&gt;` and `&#10;` in text as references of their own.
            Event::GeneralRef(r) if in_detail => {
                if let Some(case) = current.as_mut() {
                    let name = r.decode().map_err(|e| JunitError(e.to_string()))?;
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        case.detail.push(c);
                    } else if let Some(text) = quick_xml::escape::resolve_predefined_entity(&name) {
                        case.detail.push_str(text);
                    }
                }
            }
            Event::CData(t) if in_detail => {
                if let Some(case) = current.as_mut() {
                    case.detail
                        .push_str(&String::from_utf8_lossy(&t.into_inner()));
                }
            }
            Event::End(e) => match e.name().as_ref() {
                b"testcase" => cases.extend(current.take()),
                b"failure" | b"error" => in_detail = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(cases)
}

/// The longest message kept per failing test.
const MESSAGE_LIMIT: usize = 300;

fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut out: String = line.chars().take(MESSAGE_LIMIT).collect();
    if line.chars().count() > MESSAGE_LIMIT {
        out.push('…');
    }
    out
}

/// What a collection error says: the traceback's `E ` lines (the error itself), else its end.
fn collection_message(case: &Case) -> String {
    let errors: Vec<&str> = case
        .detail
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("E "))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let text = if errors.is_empty() {
        case.detail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string()
    } else {
        errors.join(" ")
    };
    format!(
        "{} could not be collected: {}",
        case.name,
        first_line(&text)
    )
}

/// Turns the cases into a report: counts (overall and per origin), failing tests as
/// `[origin] file::test: message`, and a [`Broken::Collection`] when a file could not be
/// collected.
pub fn report(cases: &[Case]) -> TestReport {
    let mut report = TestReport::default();
    let mut origins: BTreeMap<String, crate::api::TestCounts> = BTreeMap::new();
    let mut broken = Vec::new();
    for case in cases {
        let counts = origins.entry(case.origin.clone()).or_default();
        match &case.outcome {
            Outcome::Passed => {
                counts.passed += 1;
                report.counts.passed += 1;
            }
            Outcome::Skipped => {
                counts.skipped += 1;
                report.counts.skipped += 1;
            }
            Outcome::Failed(m) | Outcome::Errored(m) => {
                if case.collection_error {
                    broken.push(format!("[{}] {}", case.origin, collection_message(case)));
                    continue;
                }
                counts.failed += 1;
                report.counts.failed += 1;
                let message = if m.is_empty() {
                    first_line(&case.detail)
                } else {
                    first_line(m)
                };
                report.failing.push(format!(
                    "[{}] {}: {message}",
                    case.origin,
                    case.display_name()
                ));
            }
        }
    }
    report.origins = origins;
    if !broken.is_empty() {
        report.broken = Some(Broken::Collection(broken.join("; ")));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4" time="1.2"><testcase classname="suite.test_install" name="test_home" time="0.01"><properties><property name="origin" value="suite" /></properties></testcase><testcase classname="suite.test_install" name="test_login" time="0.5"><properties><property name="origin" value="suite" /></properties><failure message="AssertionError: heading mismatch&#10;assert 'Hello' == 'Goodbye'">def test_login(page):
&gt;       assert False
E       AssertionError: heading mismatch</failure></testcase><testcase classname="recipe-tests.test_own" name="test_own" time="0.1"><properties><property name="origin" value="recipe" /></properties></testcase><testcase classname="suite.test_install" name="test_later" time="0"><properties><property name="origin" value="suite" /></properties><skipped type="pytest.skip" message="not now">skip</skipped></testcase><testcase classname="x" name="bare" time="0"/></testsuite></testsuites>"#;

    #[test]
    fn counts_origins_and_failing_tests_with_their_messages() {
        let cases = parse(RUN).unwrap();
        assert_eq!(cases.len(), 5);
        let r = report(&cases);
        assert_eq!(
            (r.counts.passed, r.counts.failed, r.counts.skipped),
            (3, 1, 1)
        );
        assert_eq!(
            r.failing,
            ["[suite] test_install::test_login: AssertionError: heading mismatch"]
        );
        assert_eq!(r.origins["recipe"].passed, 1);
        assert_eq!(r.origins["suite"].failed, 1);
        assert!(r.broken.is_none());
        assert!(cases[1].detail.contains("> "), "{:?}", cases[1].detail);
    }

    #[test]
    fn a_collection_error_makes_the_step_broken_naming_the_error() {
        let xml = r#"<testsuites><testsuite><testcase classname="" name="suite.test_install" time="0.0"><error message="collection failure">suite/test_install.py:1: in &lt;module&gt;
E     def test_x(:
E               ^
E   SyntaxError: invalid syntax</error></testcase></testsuite></testsuites>"#;
        let r = report(&parse(xml).unwrap());
        let Some(Broken::Collection(why)) = r.broken else {
            panic!("{r:?}")
        };
        assert!(
            why.contains("suite.test_install could not be collected"),
            "{why}"
        );
        assert!(why.contains("SyntaxError: invalid syntax"), "{why}");
        assert_eq!(r.counts.failed, 0);
    }

    #[test]
    fn hostile_xml_is_an_error_or_harmless_never_a_panic() {
        assert!(parse("<testsuites><testcase name='a'><failure>").is_ok_and(|c| c.is_empty()));
        assert!(parse("<a></b>").is_err());
        let long = format!(
            "<testcase classname='c' name='n'><failure message='{}'/></testcase>",
            "x".repeat(10_000)
        );
        let r = report(&parse(&long).unwrap());
        assert!(r.failing[0].chars().count() < 400);
        // Entities are not expanded beyond the predefined ones.
        let bomb = "<!DOCTYPE x [<!ENTITY a 'aaaa'>]><testcase classname='c' name='&a;'/>";
        let _ = parse(bomb);
    }
}
