//! Unit tests for [`super`] (env files and `abra.sh`).

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn recipe_env_sample_parses_with_modifiers_and_comments() {
    let text = "\
TYPE=nextcloud
# a full-line comment
DOMAIN=cloud.example.com   # the public name
#EXTRA_DOMAINS=',`www.example.com`'
LETS_ENCRYPT_ENV=
export ADMIN_USER=admin

SECRET_DB_PASSWORD_VERSION=v1 # length=32 charset=alnum
SECRET_ADMIN_PASSWORD_VERSION=v2 #generated passphrase
";
    let env = EnvFile::parse(text).unwrap();
    let m = env.to_map();
    assert_eq!(m["TYPE"], "nextcloud");
    assert_eq!(m["DOMAIN"], "cloud.example.com");
    assert_eq!(m["LETS_ENCRYPT_ENV"], "");
    assert_eq!(m["ADMIN_USER"], "admin");
    assert!(
        !m.contains_key("EXTRA_DOMAINS"),
        "commented keys are ignored"
    );
    let db = env.get("SECRET_DB_PASSWORD_VERSION").unwrap();
    assert_eq!(db.value, "v1");
    assert_eq!(db.line, 8);
    assert_eq!(db.modifiers, map(&[("length", "32"), ("charset", "alnum")]));
    // Words without `=` are not modifiers.
    assert!(
        env.get("SECRET_ADMIN_PASSWORD_VERSION")
            .unwrap()
            .modifiers
            .is_empty()
    );
    assert!(env.get("DOMAIN").unwrap().modifiers.is_empty());
}

#[test]
fn quotes_follow_godotenv() {
    let text = r#"SINGLE='a $HOME \n # not a comment'
DOUBLE="line1\nline2 \"quoted\" # kept"
HASH=abc#def
EMPTY_DQ=""
QUOTED_WITH_MOD="v1" # length=12
"#;
    let env = EnvFile::parse(text).unwrap();
    let m = env.to_map();
    assert_eq!(m["SINGLE"], r"a $HOME \n # not a comment");
    assert_eq!(m["DOUBLE"], "line1\nline2 \"quoted\" # kept");
    assert_eq!(m["HASH"], "abc#def");
    assert_eq!(m["EMPTY_DQ"], "");
    assert_eq!(
        env.get("QUOTED_WITH_MOD").unwrap().modifiers,
        map(&[("length", "12")])
    );
}

#[test]
fn variables_expand_from_earlier_keys_then_base() {
    let base = map(&[("COMPOSE_FILE", "compose.yml"), ("HOME", "/root")]);
    let text = r#"COMPOSE_FILE="$COMPOSE_FILE:compose.smtp.yml"
COMPOSE_FILE="${COMPOSE_FILE}:compose.s3.yml"
DIR=$HOME/data
LITERAL='$HOME'
ESCAPED=\$HOME
MISSING=${NOPE}x
LOWER=$lower
"#;
    let env = EnvFile::parse_with_base(text, &base).unwrap();
    let m = env.to_map();
    assert_eq!(
        m["COMPOSE_FILE"],
        "compose.yml:compose.smtp.yml:compose.s3.yml"
    );
    assert_eq!(m["DIR"], "/root/data");
    assert_eq!(m["LITERAL"], "$HOME");
    assert_eq!(m["ESCAPED"], "$HOME");
    assert_eq!(m["MISSING"], "x");
    assert_eq!(m["LOWER"], "$lower", "only upper-case names expand");
    assert_eq!(env.entries.len(), 7, "repeated keys stay as entries");
}

#[test]
fn multiline_double_quoted_value() {
    let text = "CERT=\"-----BEGIN-----\nabc\n-----END-----\"\nNEXT=1\n";
    let env = EnvFile::parse(text).unwrap();
    assert_eq!(env.to_map()["CERT"], "-----BEGIN-----\nabc\n-----END-----");
    assert_eq!(env.get("NEXT").unwrap().line, 4);
}

#[test]
fn errors_name_the_line() {
    let err = EnvFile::parse("A=1\nthis is not an assignment\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.to_string().starts_with("line 2:"), "{err}");

    let err = EnvFile::parse("A=1\nB=\"never closed\nC=3\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.message.contains("unterminated"), "{err}");

    let err = EnvFile::parse("1BAD=x\n").unwrap_err();
    assert_eq!(err.line, 1);

    let err = EnvFile::parse("A='x' trailing\n").unwrap_err();
    assert!(err.message.contains("after closing quote"), "{err}");
}

#[test]
fn abra_sh_exports_are_read_not_executed() {
    let text = r#"#!/usr/bin/env bash
export NGINX_CONF_VERSION=v3
export ENTRYPOINT_VERSION="v2"
  export INDENTED='v1'
BAR=not_exported

set_admin() {
  export INSIDE_FUNCTION=nope
  echo "$1"
}
export AFTER_FUNCTION=v9
"#;
    let got = parse_abra_sh(text);
    let expect: Vec<(String, String)> = [
        ("NGINX_CONF_VERSION", "v3"),
        ("ENTRYPOINT_VERSION", "v2"),
        ("INDENTED", "v1"),
        ("AFTER_FUNCTION", "v9"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, expect);
}
