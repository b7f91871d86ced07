//! The `!testme` trigger rules and deterministic run names: pure functions, no I/O.
//!
//! A comment triggers a run when it is on a pull request, was not written by the bot, is new
//! (created inside the poll window and never seen before — edits of older comments never
//! trigger), and its text with quoted lines and code blocks removed, trimmed, is exactly
//! `!testme`.

use chrono::{DateTime, Utc};

use super::client::Comment;

/// The trigger word.
pub const TRIGGER: &str = "!testme";

/// The comment's text without block quotes (`>` lines), fenced code blocks (```` ``` ```` or
/// `~~~`) and indented code lines (four spaces or a tab), lines joined with `\n`.
pub fn strip_quotes_and_code(body: &str) -> String {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        let lead = line.len() - line.trim_start_matches(' ').len();
        let text = line.trim_start();
        if let Some(f) = fence {
            if text.starts_with(f) {
                fence = None;
            }
            continue;
        }
        if lead < 4 && !line.starts_with('\t') {
            if text.starts_with("```") {
                fence = Some("```");
                continue;
            }
            if text.starts_with("~~~") {
                fence = Some("~~~");
                continue;
            }
            if text.starts_with('>') {
                continue;
            }
            out.push(line);
        }
    }
    out.join("\n")
}

/// Whether a comment's text asks for a run.
pub fn is_testme(body: &str) -> bool {
    strip_quotes_and_code(body).trim() == TRIGGER
}

/// What to do with one comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Ask for a run of this pull request (after the trust check).
    Trigger {
        /// The pull request.
        pr: u64,
    },
    /// Nothing to do; the reason is for logs.
    Ignore(&'static str),
}

/// Applies the trigger rules to `comment`: `bot` is the bot's login, `window_start` the
/// earliest creation time that counts as new, `seen_before` whether this comment id was
/// processed earlier (with another `updated_at`: an edit).
pub fn decide(
    comment: &Comment,
    bot: &str,
    window_start: DateTime<Utc>,
    seen_before: bool,
) -> Decision {
    let Some(pr) = comment.pull_number() else {
        return Decision::Ignore("not on a pull request");
    };
    if comment.user.login.eq_ignore_ascii_case(bot) {
        return Decision::Ignore("written by the bot");
    }
    if seen_before || comment.created_at < window_start {
        return Decision::Ignore("an edit of an older comment");
    }
    if !is_testme(&comment.body) {
        return Decision::Ignore("not a trigger");
    }
    Decision::Trigger { pr }
}

/// Longest record name.
const MAX_NAME: usize = 63;

/// `<recipe>-<suffix>`, shortening the recipe part so the whole stays a valid record name.
pub fn name_with_suffix(recipe: &str, suffix: &str) -> String {
    let keep = MAX_NAME.saturating_sub(suffix.len() + 1);
    let mut prefix: String = recipe.chars().take(keep).collect();
    while prefix.ends_with('-') {
        prefix.pop();
    }
    format!("{prefix}-{suffix}")
}

/// The run name of a `!testme` comment: `<recipe>-pr<N>-c<comment-id>`, the same from the
/// poller and the webhook, so one comment makes one run.
pub fn run_name(recipe: &str, pr: u64, comment_id: u64) -> String {
    name_with_suffix(recipe, &format!("pr{pr}-c{comment_id}"))
}

/// A ref or tag as a name fragment: lowercase alphanumerics and `-`, at most `max` chars.
pub fn slug(text: &str, max: usize) -> String {
    let s: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(max)
        .collect();
    s.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::api::validate_name;
    use crate::forge::client::User;

    fn comment(body: &str, user: &str, minutes_ago: i64) -> Comment {
        let t = Utc::now() - Duration::minutes(minutes_ago);
        Comment {
            id: 7,
            body: body.into(),
            user: User { login: user.into() },
            created_at: t,
            updated_at: t,
            pull_request_url: "https://git.example/o/r/pulls/3".into(),
            issue_url: String::new(),
        }
    }

    #[test]
    fn only_the_exact_word_triggers() {
        assert!(is_testme("!testme"));
        assert!(is_testme("  !testme \n\n"));
        assert!(is_testme("!testme\r\n"));
        assert!(!is_testme("!testmexyz"));
        assert!(!is_testme("!testme please"));
        assert!(!is_testme("please !testme"));
        assert!(!is_testme("!TESTME"));
        assert!(!is_testme("`!testme`"));
        assert!(!is_testme(""));
    }

    #[test]
    fn quotes_and_code_blocks_do_not_count() {
        assert!(!is_testme("> !testme"));
        assert!(!is_testme("> !testme\n>"));
        assert!(!is_testme("```\n!testme\n```"));
        assert!(!is_testme("~~~sh\n!testme\n~~~"));
        assert!(!is_testme("    !testme"));
        assert!(!is_testme("\t!testme"));
        // An unclosed fence hides the rest of the comment.
        assert!(!is_testme("```\n!testme"));
        // A reply quoting someone's trigger and adding its own is a trigger.
        assert!(is_testme("> someone said\n> !testme\n\n!testme"));
        assert!(is_testme("```\nlog\n```\n!testme"));
    }

    #[test]
    fn the_bot_edits_and_non_pull_requests_never_trigger() {
        let start = Utc::now() - Duration::minutes(5);
        let c = comment("!testme", "alice", 1);
        assert_eq!(
            decide(&c, "ccci-bot", start, false),
            Decision::Trigger { pr: 3 }
        );
        assert_eq!(
            decide(&comment("!testme", "CCCI-bot", 1), "ccci-bot", start, false),
            Decision::Ignore("written by the bot")
        );
        assert_eq!(
            decide(&c, "ccci-bot", start, true),
            Decision::Ignore("an edit of an older comment")
        );
        assert_eq!(
            decide(&comment("!testme", "alice", 10), "ccci-bot", start, false),
            Decision::Ignore("an edit of an older comment")
        );
        let mut issue = c.clone();
        issue.pull_request_url.clear();
        issue.issue_url = "https://git.example/o/r/issues/3".into();
        assert_eq!(
            decide(&issue, "ccci-bot", start, false),
            Decision::Ignore("not on a pull request")
        );
        assert_eq!(
            decide(&comment("!testmexyz", "alice", 1), "ccci-bot", start, false),
            Decision::Ignore("not a trigger")
        );
    }

    #[test]
    fn run_names_are_deterministic_and_valid_even_for_long_recipe_names() {
        assert_eq!(run_name("site", 3, 42), "site-pr3-c42");
        let long = "a".repeat(60) + "-b";
        let name = run_name(&long, 12345, 9_876_543_210);
        assert!(name.len() <= 63, "{name}");
        assert!(name.ends_with("-pr12345-c9876543210"));
        validate_name(&name).unwrap();
        let dashy = format!("{}-{}", "a".repeat(40), "b".repeat(30));
        validate_name(&run_name(&dashy, 1, 1)).unwrap();
        assert_eq!(slug("1.2.0+1.29.0", 40), "1-2-0-1-29-0");
    }
}
