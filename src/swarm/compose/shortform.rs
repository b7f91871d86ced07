//! Parsers for compose short syntaxes, as docker/cli reads them: shell-split commands
//! (`google/shlex`), ports (`[ip:][published:]target[/proto]`, ranges) and volumes
//! (`source:target[:opts]`).

use serde_json::{Map, Value, json};

/// Splits a command string into words like `google/shlex`: whitespace separates words,
/// `'…'` is literal, `"…"` and a bare `\` escape the next character, `#` at a word start
/// begins a comment.
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\\' => {
                in_word = true;
                word.push(chars.next().ok_or("EOF found after escape character")?);
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("EOF found when expecting closing quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => word.push(
                            chars
                                .next()
                                .ok_or("EOF found when expecting closing quote")?,
                        ),
                        Some(c) => word.push(c),
                        None => return Err("EOF found when expecting closing quote".into()),
                    }
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn port_range(s: &str) -> Result<(u32, u32), String> {
    let parse = |p: &str| {
        p.parse::<u32>()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| format!("invalid port {p:?}"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                return Err(format!("invalid port range {s:?}"));
            }
            Ok((a, b))
        }
        None => parse(s).map(|p| (p, p)),
    }
}

/// Expands one short port spec into long-form port mappings (mode `ingress`), plus a warning
/// when a host IP is given (Swarm ignores it, like docker/cli says).
pub fn parse_port(spec: &str) -> Result<(Vec<Value>, Option<String>), String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    // Split off an IP (possibly a bracketed IPv6 address).
    let (ip, rest) = if let Some(stripped) = rest.strip_prefix('[') {
        let (ip, after) = stripped
            .split_once("]:")
            .ok_or_else(|| format!("invalid port spec {spec:?}"))?;
        (Some(ip), after)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest),
            3 => (Some(parts[0]), &rest[parts[0].len() + 1..]),
            _ => return Err(format!("invalid port spec {spec:?}")),
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    if container.is_empty() {
        return Err(format!("no port specified: {spec}<empty>"));
    }
    let (c_start, c_end) = port_range(container)?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(port_range(host)?)
    };
    let mut out = Vec::new();
    let mut push = |target: u32, published: u32| {
        let mut m = Map::new();
        m.insert("mode".into(), json!("ingress"));
        m.insert("target".into(), json!(target));
        if published != 0 {
            m.insert("published".into(), json!(published));
        }
        m.insert("protocol".into(), json!(proto));
        out.push(Value::Object(m));
    };
    match host_range {
        None => (c_start..=c_end).for_each(|t| push(t, 0)),
        Some((h_start, h_end)) if c_start == c_end => {
            (h_start..=h_end).for_each(|h| push(c_start, h));
        }
        Some((h_start, h_end)) => {
            if h_end - h_start != c_end - c_start {
                return Err(format!(
                    "invalid ranges specified for container and host ports: {spec}"
                ));
            }
            (0..=c_end - c_start).for_each(|i| push(c_start + i, h_start + i));
        }
    }
    let warning = ip
        .filter(|ip| !ip.is_empty() && *ip != "0.0.0.0" && *ip != "::")
        .map(|ip| {
            format!(
                "ignoring IP-address ({ip}) in port {spec:?}: the service listens on all addresses"
            )
        });
    Ok((out, warning))
}

const PROPAGATIONS: &[&str] = &[
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// Parses a short volume spec (`name:/path:ro`, `./dir:/path`, `/anon`) into the long form.
pub fn parse_volume(spec: &str) -> Result<Value, String> {
    if spec.is_empty() {
        return Err("invalid empty volume spec".into());
    }
    let mut m = Map::new();
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "invalid spec: {spec}: empty section between colons"
        ));
    }
    let (source, target, opts) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, opts] => (Some(*source), *target, Some(*opts)),
        _ => return Err(format!("invalid spec: {spec}: too many colons")),
    };
    let kind = match source {
        Some(s) if s.starts_with(['.', '/', '~']) => "bind",
        _ => "volume",
    };
    m.insert("type".into(), json!(kind));
    if let Some(s) = source {
        m.insert("source".into(), json!(s));
    }
    m.insert("target".into(), json!(target));
    for opt in opts.into_iter().flat_map(|o| o.split(',')) {
        match opt {
            "ro" => {
                m.insert("read_only".into(), json!(true));
            }
            "rw" => {
                m.insert("read_only".into(), json!(false));
            }
            "nocopy" => {
                m.insert("volume".into(), json!({"nocopy": true}));
            }
            p if PROPAGATIONS.contains(&p) => {
                m.insert("bind".into(), json!({"propagation": p}));
            }
            _ => {} // docker/cli ignores unknown options (e.g. `z`, `cached`)
        }
    }
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_a_shell() {
        assert_eq!(
            shell_split(r#"sh -c 'echo "$$HOME"' "a b" c\ d # comment"#).unwrap(),
            vec!["sh", "-c", r#"echo "$$HOME""#, "a b", "c d"]
        );
        assert_eq!(shell_split("").unwrap(), Vec::<String>::new());
        assert!(shell_split("'open").is_err());
    }

    #[test]
    fn short_ports_expand_to_ingress_mappings() {
        let (p, w) = parse_port("8080:80/udp").unwrap();
        assert_eq!(
            p,
            vec![json!({"mode": "ingress", "target": 80, "published": 8080, "protocol": "udp"})]
        );
        assert!(w.is_none());
        let (p, _) = parse_port("80").unwrap();
        assert_eq!(
            p,
            vec![json!({"mode": "ingress", "target": 80, "protocol": "tcp"})]
        );
        let (p, _) = parse_port("9000-9001:8000-8001").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1]["published"], json!(9001));
        assert_eq!(p[1]["target"], json!(8001));
        let (p, w) = parse_port("127.0.0.1:2222:22").unwrap();
        assert_eq!(p[0]["published"], json!(2222));
        assert!(w.unwrap().contains("127.0.0.1"));
        assert!(parse_port("80:80/http").is_err());
        assert!(parse_port("1-3:5-9").is_err());
    }

    #[test]
    fn short_volumes_parse_type_and_options() {
        assert_eq!(
            parse_volume("db_data:/var/lib/postgresql/data:ro,nocopy").unwrap(),
            json!({"type": "volume", "source": "db_data", "target": "/var/lib/postgresql/data",
                   "read_only": true, "volume": {"nocopy": true}})
        );
        assert_eq!(
            parse_volume("./conf:/etc/app:rshared").unwrap(),
            json!({"type": "bind", "source": "./conf", "target": "/etc/app",
                   "bind": {"propagation": "rshared"}})
        );
        assert_eq!(
            parse_volume("/cache").unwrap(),
            json!({"type": "volume", "target": "/cache"})
        );
        assert!(parse_volume("a::b").is_err());
        assert!(parse_volume("a:b:c:d").is_err());
    }
}
