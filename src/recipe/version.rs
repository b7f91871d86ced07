//! Recipe versions from git tags (`1.2.0+1.29.0`, `v1.0.3`): parsing, ordering, and picking the
//! head's version and the previous published version.
//!
//! A Co-op Cloud recipe version is `<recipe-semver>+<upstream-version>`. Ordering compares the
//! recipe part as semantic versioning (numeric core, a pre-release sorts before its release),
//! then the upstream part with a natural order (digit runs as numbers). A leading `v` is
//! accepted and ignored for ordering. A *release* is a version whose recipe part has no
//! pre-release suffix; the upstream part may (`0.3.1+2.4.5-rc1` is a release of the recipe).

use std::cmp::Ordering;
use std::fmt;

/// A parsed recipe version. Equality and ordering ignore the spelling (`v`, missing `.0`) but
/// [`Version::tag`] keeps the tag's exact text.
#[derive(Clone, Debug)]
pub struct Version {
    tag: String,
    core: [u64; 3],
    pre: Option<String>,
    upstream: Option<String>,
}

/// A tag that does not read as a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tag:?} is not a recipe version (expected e.g. 1.2.0+1.29.0 or v1.0.3)")]
pub struct NotAVersion {
    /// The offending text.
    pub tag: String,
}

impl Version {
    /// Parses a tag such as `1.2.0+1.29.0`, `v1.0.3`, `2.0.0-rc.1+3.1` or `1.4`.
    pub fn parse(tag: &str) -> Result<Version, NotAVersion> {
        let bad = || NotAVersion {
            tag: tag.to_string(),
        };
        let text = tag.strip_prefix('v').unwrap_or(tag);
        let (recipe, upstream) = match text.split_once('+') {
            Some((r, u)) if !u.is_empty() && !u.contains(char::is_whitespace) => {
                (r, Some(u.to_string()))
            }
            Some(_) => return Err(bad()),
            None => (text, None),
        };
        let (core_text, pre) = match recipe.split_once('-') {
            Some((c, p)) if !p.is_empty() && p.chars().all(is_ident_char) => {
                (c, Some(p.to_string()))
            }
            Some(_) => return Err(bad()),
            None => (recipe, None),
        };
        let parts: Vec<&str> = core_text.split('.').collect();
        if parts.is_empty() || parts.len() > 3 {
            return Err(bad());
        }
        let mut core = [0u64; 3];
        for (slot, part) in core.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            *slot = part.parse().map_err(|_| bad())?;
        }
        Ok(Version {
            tag: tag.to_string(),
            core,
            pre,
            upstream,
        })
    }

    /// The tag text exactly as written in git.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// `[major, minor, patch]` of the recipe part.
    pub fn core(&self) -> [u64; 3] {
        self.core
    }

    /// The upstream (app) version after `+`, if any.
    pub fn upstream(&self) -> Option<&str> {
        self.upstream.as_deref()
    }

    /// Whether this is a release of the recipe (no pre-release suffix on the recipe part).
    pub fn is_release(&self) -> bool {
        self.pre.is_none()
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-'
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.core
            .cmp(&other.core)
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => cmp_prerelease(a, b),
            })
            .then_with(|| match (&self.upstream, &other.upstream) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(a), Some(b)) => cmp_natural(a, b),
            })
    }
}

/// Semver pre-release precedence: dot-separated identifiers, numeric ones compared as numbers
/// and lower than alphanumeric ones, a shorter list first when all else is equal.
fn cmp_prerelease(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Upstream versions come in every shape (`1.29.0`, `2.4.5-rc1`, `10.11-bookworm`): compare
/// runs of digits as numbers and everything else as text; a suffix after a common prefix that
/// starts with `-` or `~` (a pre-release) sorts before the bare prefix.
fn cmp_natural(a: &str, b: &str) -> Ordering {
    let (sa, sb) = (segments(a), segments(b));
    for (x, y) in sa.iter().zip(&sb) {
        let ord = match (x, y) {
            (Segment::Num(m), Segment::Num(n)) => m.cmp(n),
            (Segment::Num(_), Segment::Text(_)) => Ordering::Greater,
            (Segment::Text(_), Segment::Num(_)) => Ordering::Less,
            (Segment::Text(s), Segment::Text(t)) => s.cmp(t),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    let pre = |rest: &[Segment<'_>]| match rest.first() {
        Some(Segment::Text(t)) => t.starts_with('-') || t.starts_with('~'),
        _ => false,
    };
    match sa.len().cmp(&sb.len()) {
        Ordering::Equal => Ordering::Equal,
        Ordering::Greater if pre(&sa[sb.len()..]) => Ordering::Less,
        Ordering::Less if pre(&sb[sa.len()..]) => Ordering::Greater,
        other => other,
    }
}

#[derive(Debug)]
enum Segment<'a> {
    Num(u128),
    Text(&'a str),
}

fn segments(s: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let digit = bytes[start].is_ascii_digit();
        let mut end = start;
        while end < bytes.len() && bytes[end].is_ascii_digit() == digit {
            end += 1;
        }
        let part = &s[start..end];
        out.push(match (digit, part.parse::<u128>()) {
            (true, Ok(n)) => Segment::Num(n),
            _ => Segment::Text(part),
        });
        start = end;
    }
    out
}

/// A tag in a checked-out repository, with the commit it points at (peeled for annotated tags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRef {
    /// Tag name without `refs/tags/`.
    pub name: String,
    /// Full SHA of the commit.
    pub commit: String,
}

/// Why no previous version could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviousVersionError {
    /// The run named a version that is not a tag of the repository.
    #[error("{0:?}, named as the upgrade starting point, is not a version tag of the recipe")]
    UnknownTag(String),
}

/// Every tag that parses as a version, highest first. Tags that are not versions are ignored.
pub fn versions(tags: &[TagRef]) -> Vec<(Version, &TagRef)> {
    let mut out: Vec<(Version, &TagRef)> = tags
        .iter()
        .filter_map(|t| Version::parse(&t.name).ok().map(|v| (v, t)))
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    out
}

/// The highest version tag pointing at `head` (a full commit SHA), if any.
pub fn head_version(tags: &[TagRef], head: &str) -> Option<Version> {
    versions(tags)
        .into_iter()
        .find(|(_, t)| t.commit == head)
        .map(|(v, _)| v)
}

/// The version the upgrade stage starts from.
///
/// When `named` is given it must be one of the tags (exact name, or the same version spelled
/// differently, e.g. with a `v`). Otherwise: the highest *release* tag that does not point at
/// `head` and is not one of the head's own versions, and — when the head has a version — is
/// lower than it. `Ok(None)` means the recipe has no earlier release (nothing to upgrade from).
pub fn previous_version(
    tags: &[TagRef],
    head: &str,
    named: Option<&str>,
) -> Result<Option<Version>, PreviousVersionError> {
    let all = versions(tags);
    if let Some(name) = named {
        let unknown = || PreviousVersionError::UnknownTag(name.to_string());
        let wanted = Version::parse(name).map_err(|_| unknown())?;
        // Prefer the exact spelling, then any tag with the same version.
        let exact = all.iter().find(|(_, t)| t.name == name);
        let same = all.iter().find(|(v, _)| *v == wanted);
        return exact
            .or(same)
            .map(|(v, _)| Some(v.clone()))
            .ok_or_else(unknown);
    }
    let own = head_version(tags, head);
    Ok(all
        .into_iter()
        .filter(|(v, t)| v.is_release() && t.commit != head)
        .find(|(v, _)| own.as_ref().is_none_or(|o| v < o))
        .map(|(v, _)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_recipe_versions_in_their_usual_shapes() {
        let cases: &[(&str, [u64; 3], Option<&str>, bool)] = &[
            ("1.2.0+1.29.0", [1, 2, 0], Some("1.29.0"), true),
            ("v1.0.3", [1, 0, 3], None, true),
            ("0.3.1+2.4.5-rc1", [0, 3, 1], Some("2.4.5-rc1"), true),
            ("2.0.0-rc.1+3.1", [2, 0, 0], Some("3.1"), false),
            ("1.4", [1, 4, 0], None, true),
            ("3", [3, 0, 0], None, true),
        ];
        for (tag, core, upstream, release) in cases {
            let v = Version::parse(tag).unwrap_or_else(|e| panic!("{tag}: {e}"));
            assert_eq!(v.core(), *core, "{tag}");
            assert_eq!(v.upstream(), *upstream, "{tag}");
            assert_eq!(v.is_release(), *release, "{tag}");
            assert_eq!(v.tag(), *tag);
        }
    }

    #[test]
    fn rejects_tags_that_are_not_versions() {
        for tag in [
            "",
            "latest",
            "v",
            "1.2.3.4",
            "1..2",
            "1.2.x",
            "1.2.0+",
            "release-1",
            "1.0-",
            "-1.0",
        ] {
            assert!(Version::parse(tag).is_err(), "{tag:?} should not parse");
        }
    }

    #[test]
    fn orders_by_recipe_part_then_upstream_part() {
        // Each list is strictly increasing.
        let chains: &[&[&str]] = &[
            &[
                "0.9.0+1.0",
                "1.0.0+0.1",
                "1.0.1+0.1",
                "1.1.0+0.1",
                "2.0.0+0.1",
            ],
            &[
                "1.0.0-rc.1+1.0",
                "1.0.0-rc.2+1.0",
                "1.0.0-rc.10+1.0",
                "1.0.0+1.0",
            ],
            &["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0"],
            &["1.0.0+1.9.0", "1.0.0+1.10.0", "1.0.0+1.10.1"],
            &["1.0.0+2.4.5-rc1", "1.0.0+2.4.5", "1.0.0+2.4.6"],
            &["1.0.0", "1.0.0+0.1"],
            &["v1.0.2", "1.0.3", "v1.0.4"],
        ];
        for chain in chains {
            for pair in chain.windows(2) {
                let (a, b) = (
                    Version::parse(pair[0]).unwrap(),
                    Version::parse(pair[1]).unwrap(),
                );
                assert!(a < b, "{} < {}", pair[0], pair[1]);
                assert!(b > a, "{} > {}", pair[1], pair[0]);
            }
        }
        assert_eq!(
            Version::parse("v1.0").unwrap(),
            Version::parse("1.0.0").unwrap()
        );
    }

    fn tag(name: &str, commit: &str) -> TagRef {
        TagRef {
            name: name.into(),
            commit: commit.into(),
        }
    }

    #[test]
    fn picks_the_previous_published_version() {
        let repo = vec![
            tag("1.0.0+1.0", "a"),
            tag("1.1.0+1.1", "b"),
            tag("1.2.0-rc.1+1.2", "c"),
            tag("not-a-version", "d"),
            tag("2.0.0+2.0", "e"),
        ];
        // (head, named, expected)
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            // PR head without a tag: the highest release, pre-releases skipped.
            ("zzz", None, Some("2.0.0+2.0")),
            // Head is a tagged release: the highest release below it.
            ("e", None, Some("1.1.0+1.1")),
            ("b", None, Some("1.0.0+1.0")),
            // Head tagged with the lowest version: nothing earlier.
            ("a", None, None),
            // Head is the pre-release commit: the highest release below 1.2.0-rc.1.
            ("c", None, Some("1.1.0+1.1")),
            // A named version wins, spelled exactly or with a v.
            ("e", Some("1.0.0+1.0"), Some("1.0.0+1.0")),
            ("e", Some("v1.0.0+1.0"), Some("1.0.0+1.0")),
        ];
        for (head, named, expected) in cases {
            let got = previous_version(&repo, head, *named).unwrap();
            assert_eq!(
                got.as_ref().map(|v| v.tag()),
                *expected,
                "head {head}, named {named:?}"
            );
        }
        assert_eq!(
            previous_version(&repo, "e", Some("9.9.9")),
            Err(PreviousVersionError::UnknownTag("9.9.9".into()))
        );
    }

    #[test]
    fn a_commit_tagged_twice_counts_with_its_highest_version() {
        let repo = vec![
            tag("1.0.0+1.0", "a"),
            tag("1.1.0+1.1", "h"),
            tag("v1.1.0", "h"),
            tag("1.0.5+1.0", "b"),
        ];
        assert_eq!(head_version(&repo, "h").unwrap().tag(), "1.1.0+1.1");
        assert_eq!(
            previous_version(&repo, "h", None).unwrap().unwrap().tag(),
            "1.0.5+1.0"
        );
        assert!(head_version(&repo, "nope").is_none());
    }

    #[test]
    fn versions_lists_highest_first_and_skips_other_tags() {
        let repo = vec![tag("x", "1"), tag("0.1.0", "2"), tag("0.2.0", "3")];
        let listed = versions(&repo);
        let names: Vec<&str> = listed.iter().map(|(v, _)| v.tag()).collect();
        assert_eq!(names, ["0.2.0", "0.1.0"]);
    }
}
