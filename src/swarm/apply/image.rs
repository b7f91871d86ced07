//! Image references as docker's client sends them on service create and update: parsed with the
//! grammar of `distribution/reference` (`ParseNormalizedNamed`), tagged `latest` when they carry
//! neither tag nor digest, and written in the familiar form (`docker.io/library/nginx:1.24` →
//! `nginx:1.24`). A reference that does not parse is sent as written (the daemon then refuses it,
//! as it does for the CLI).

use bollard::models::ServiceSpec;

use crate::swarm::convert::LABEL_IMAGE;

/// `desired` with the image docker's client would send: on an update where the image as written
/// equals the stored `com.docker.stack.image` label and the stored image is that same reference
/// pinned to a digest, the stored image (`docker stack deploy` keeps it, so a digest pinned by an
/// earlier `--resolve-image always` deploy survives); then the reference normalised by
/// [`familiar_tagged`]. A stored image that is another reference (changed by hand with
/// `docker service update --image`, which leaves the label alone) is drift: the desired one is
/// sent.
pub fn with_sent_image(desired: &ServiceSpec, stored: Option<&ServiceSpec>) -> ServiceSpec {
    let mut desired = desired.clone();
    let stored_label = stored
        .and_then(|s| s.labels.as_ref())
        .and_then(|l| l.get(LABEL_IMAGE));
    let stored_image = stored
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone());
    let Some(container) = desired
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
    else {
        return desired;
    };
    let written = container.image.clone().unwrap_or_default();
    let same_reference = |stored: &str| {
        let unpinned = stored.split('@').next().unwrap_or(stored);
        let norm = |r: &str| familiar_tagged(r).unwrap_or_else(|| r.to_string());
        stored.contains('@') && norm(unpinned) == norm(&written)
    };
    if stored_label.is_some_and(|label| *label == written)
        && stored_image.as_deref().is_some_and(same_reference)
    {
        container.image = stored_image;
    }
    if let Some(image) = container.image.as_deref().and_then(familiar_tagged) {
        container.image = Some(image);
    }
    desired
}

/// Docker Hub's canonical domain.
const HUB: &str = "docker.io";
/// Docker Hub's legacy domain, canonicalised to [`HUB`].
const LEGACY_HUB: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL: &str = "library/";
/// Longest accepted repository path.
const NAME_MAX: usize = 255;

/// The reference docker's client would send for `image`, or `None` when it would send `image`
/// unchanged because it does not parse.
pub fn familiar_tagged(image: &str) -> Option<String> {
    let r = parse_normalized(image)?;
    let name = match r.domain.as_str() {
        HUB => match r.path.strip_prefix(OFFICIAL) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => r.path.clone(),
        },
        domain => format!("{domain}/{}", r.path),
    };
    let tag = match (&r.tag, &r.digest) {
        (None, None) => Some("latest"),
        (tag, _) => tag.as_deref(),
    };
    let mut out = name;
    if let Some(tag) = tag {
        out.push(':');
        out.push_str(tag);
    }
    if let Some(digest) = &r.digest {
        out.push('@');
        out.push_str(digest);
    }
    Some(out)
}

/// A parsed, normalised reference.
#[derive(Debug, PartialEq)]
struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

fn parse_normalized(s: &str) -> Option<Reference> {
    // A bare 64-hex string is an image ID, not a name.
    if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let (domain, remainder) = split_domain(s);
    let remote = remainder.split(':').next().unwrap_or_default();
    if remote.to_lowercase() != remote {
        return None;
    }
    let (rest, digest) = match remainder.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (remainder.as_str(), None),
    };
    let (path, tag) = match rest.split_once(':') {
        Some((path, tag)) => (path, Some(tag)),
        None => (rest, None),
    };
    if !valid_domain(&domain) || !valid_path(path) || path.len() > NAME_MAX {
        // The grammar also accepts the whole name as a path when its first part is no domain;
        // the familiar form is the same string then.
        let whole = format!("{domain}/{path}");
        if domain == HUB || !valid_path(&whole) || whole.len() > NAME_MAX {
            return None;
        }
    }
    if tag.is_some_and(|t| !valid_tag(t)) || digest.is_some_and(|d| !valid_digest(d)) {
        return None;
    }
    Some(Reference {
        domain,
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
        digest: digest.map(str::to_owned),
    })
}

/// Splits off the registry: the first `/`-separated part when it looks like a host (has a `.` or
/// a `:`, is `localhost`, or has upper case), else Docker Hub; Hub names without a namespace
/// go to `library/`.
fn split_domain(name: &str) -> (String, String) {
    let (domain, remainder) = match name.split_once('/') {
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.to_lowercase() != first =>
        {
            (first, rest.to_owned())
        }
        _ => (HUB, name.to_owned()),
    };
    let domain = if domain == LEGACY_HUB { HUB } else { domain };
    let remainder = if domain == HUB && !remainder.contains('/') {
        format!("{OFFICIAL}{remainder}")
    } else {
        remainder
    };
    (domain.to_owned(), remainder)
}

/// `host[:port]` where host is dot-separated labels of letters, digits and inner hyphens, or a
/// bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port))
            if !host.ends_with(':') && (host.starts_with('[') == host.ends_with(']')) =>
        {
            (host, Some(port))
        }
        _ => (domain, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

/// `/`-separated components of lower-case letters and digits, joined inside by one `.`, one or
/// two `_`, or any number of `-`.
fn valid_path(path: &str) -> bool {
    path.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Word characters, dots and hyphens, not starting with either of the latter, at most 128.
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|b| word(*b) || *b == b'.' || *b == b'-')
}

/// `algorithm:hex` for an algorithm docker knows, with exactly its length of lower-case hex.
fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn sent(image: &str) -> String {
        familiar_tagged(image).unwrap_or_else(|| image.to_owned())
    }

    /// Each pair was observed from `docker stack deploy --resolve-image never` (CLI 28.2).
    #[test]
    fn names_are_sent_like_dockers_client_sends_them() {
        for (written, expected) in [
            ("mariadb", "mariadb:latest".to_owned()),
            ("docker.io/library/nginx:1.24", "nginx:1.24".to_owned()),
            (
                "index.docker.io/bitnami/redis",
                "bitnami/redis:latest".to_owned(),
            ),
            ("docker.io/bitnami/redis", "bitnami/redis:latest".to_owned()),
            ("library/nginx:1.24", "nginx:1.24".to_owned()),
            (
                "localhost:5000/ccci/web:1",
                "localhost:5000/ccci/web:1".to_owned(),
            ),
            (
                "registry.ccci.test:5000/ccci/web:2",
                "registry.ccci.test:5000/ccci/web:2".to_owned(),
            ),
            ("localhost/foo", "localhost/foo:latest".to_owned()),
            (
                &format!("docker.io/library/nginx@{SHA}"),
                format!("nginx@{SHA}"),
            ),
            (
                &format!("docker.io/nginx:1.24@{SHA}"),
                format!("nginx:1.24@{SHA}"),
            ),
            (
                "ccci-fixture/nginx:1.24",
                "ccci-fixture/nginx:1.24".to_owned(),
            ),
            (
                "ghcr.io/coop-cloud/app",
                "ghcr.io/coop-cloud/app:latest".to_owned(),
            ),
            ("[::1]:5000/x", "[::1]:5000/x:latest".to_owned()),
            ("docker.io/library/a/b", "library/a/b:latest".to_owned()),
            ("my_registry.com/x", "my_registry.com/x:latest".to_owned()),
            // An upper-case first part is a registry host: parsed, kept (the daemon refuses it).
            ("Foo/bar:1", "Foo/bar:1".to_owned()),
        ] {
            assert_eq!(sent(written), expected, "{written}");
        }
    }

    #[test]
    fn what_does_not_parse_is_sent_as_written() {
        for bad in [
            "",
            "NGINX",
            "nginx:",
            "nginx:-x",
            "nginx::1",
            "a//b",
            "a/-b",
            "nginx@sha256:abc",
            "nginx@md5:0000000000000000000000000000000000000000000000000000000000000000",
            "nginx@sha256:000000000000000000000000000000000000000000000000000000000000000G",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "host:x/y",
            "nginx:1.24 ",
            "${IMAGE}",
            "ngïnx:1",
            "é/x",
            "reg.example:5000/ñ",
            "nginx:1.24\n",
            "[::1/x",
        ] {
            assert_eq!(familiar_tagged(bad), None, "{bad:?} must not parse");
        }
        let long_tag = format!("nginx:{}", "a".repeat(129));
        assert_eq!(familiar_tagged(&long_tag), None);
        let long_name = "a".repeat(256);
        assert_eq!(familiar_tagged(&long_name), None);
    }

    #[test]
    fn an_unchanged_image_keeps_the_stored_reference_a_changed_one_is_normalised() {
        let spec = |image: &str, label: &str| {
            serde_json::from_value::<ServiceSpec>(serde_json::json!({
                "Labels": {LABEL_IMAGE: label},
                "TaskTemplate": {"ContainerSpec": {"Image": image}}
            }))
            .unwrap()
        };
        let image = |s: &ServiceSpec| {
            s.task_template
                .as_ref()
                .unwrap()
                .container_spec
                .as_ref()
                .unwrap()
                .image
                .clone()
        };
        let pinned = format!("nginx:1.24@{SHA}");
        let stored = spec(&pinned, "nginx:1.24");
        let desired = spec("nginx:1.24", "nginx:1.24");
        assert_eq!(
            image(&with_sent_image(&desired, Some(&stored))),
            Some(pinned)
        );
        let changed = spec(
            "docker.io/library/nginx:1.25",
            "docker.io/library/nginx:1.25",
        );
        assert_eq!(
            image(&with_sent_image(&changed, Some(&stored))).as_deref(),
            Some("nginx:1.25")
        );
        assert_eq!(
            image(&with_sent_image(&spec("mariadb", "mariadb"), None)).as_deref(),
            Some("mariadb:latest")
        );
        // Changed by hand (`docker service update --image`, label untouched): drift, put back.
        let by_hand = spec("ccci-fixture/nginx:1.25", "nginx:1.24");
        assert_eq!(
            image(&with_sent_image(&desired, Some(&by_hand))).as_deref(),
            Some("nginx:1.24")
        );
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for image in ["mariadb", "docker.io/library/nginx:1.24", "localhost/foo"] {
            let once = sent(image);
            assert_eq!(sent(&once), once);
        }
    }
}
