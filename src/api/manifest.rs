//! Reading manifests, the one reader of `ccctl apply -f` / `delete -f` and `cc-ci serve
//! --manifests`: files, directories and stdin; YAML (multi-document) or JSON (an object, an
//! array of objects, or a `<Kind>List`); each document checked for a known kind and a name.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use super::{API_VERSION, Kind};

/// One record read from a manifest.
#[derive(Clone, Debug)]
pub struct Document {
    /// Where it came from, e.g. `examples/recipe.yaml (document 2)`.
    pub source: String,
    /// Its kind.
    pub kind: Kind,
    /// `metadata.name`.
    pub name: String,
    /// The whole object, with `apiVersion` filled in when missing.
    pub value: Value,
}

/// Reads every path (file, directory, or `-` for stdin) in order.
pub fn read_all(paths: &[PathBuf]) -> anyhow::Result<Vec<Document>> {
    let mut docs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading manifests from stdin")?;
            docs.extend(parse_text("<stdin>", &text, false)?);
        } else if path.is_dir() {
            for file in dir_manifests(path)? {
                docs.extend(read_file(&file)?);
            }
        } else {
            docs.extend(read_file(path)?);
        }
    }
    Ok(docs)
}

/// The `*.yaml`, `*.yml` and `*.json` files of a directory (not recursive), sorted by name;
/// other files are ignored.
pub fn dir_manifests(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let manifest_ext = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        if manifest_ext && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_file(path: &Path) -> anyhow::Result<Vec<Document>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json = path.extension().and_then(|e| e.to_str()) == Some("json");
    parse_text(&path.display().to_string(), &text, json)
}

/// Parses one file's text: JSON when `json` is set or the text starts with `{` or `[`, else
/// YAML with `---`-separated documents (empty documents are skipped). A JSON array holds one
/// record per item; `kind: List` / `<Kind>List` objects are expanded into their items.
pub fn parse_text(source: &str, text: &str, json: bool) -> anyhow::Result<Vec<Document>> {
    let trimmed = text.trim_start();
    let values: Vec<Value> = if json || trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str(text).with_context(|| format!("{source}: invalid JSON"))? {
            Value::Array(items) => items,
            one => vec![one],
        }
    } else {
        serde_saphyr::from_multiple(text)
            .map_err(|e| anyhow::anyhow!("{source}: invalid YAML: {e}"))?
    };
    let multi = values.len() > 1;
    let mut docs = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let label = if multi {
            format!("{source} (document {})", i + 1)
        } else {
            source.to_string()
        };
        if value.is_null() {
            continue;
        }
        let is_list = value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && value.get("items").is_some_and(Value::is_array);
        if is_list {
            let Value::Array(items) = value["items"].clone() else {
                unreachable!("checked above")
            };
            for (j, item) in items.into_iter().enumerate() {
                docs.push(document(format!("{label} item {}", j + 1), item)?);
            }
        } else {
            docs.push(document(label, value)?);
        }
    }
    Ok(docs)
}

fn document(source: String, mut value: Value) -> anyhow::Result<Document> {
    let Some(obj) = value.as_object_mut() else {
        bail!("{source}: a manifest must be a mapping with apiVersion, kind, metadata and spec");
    };
    let kind_name = match obj.get("kind") {
        Some(Value::String(k)) => k.clone(),
        Some(_) => bail!("{source}: kind: must be a string"),
        None => bail!(
            "{source}: kind: missing (one of Recipe, TestRun, ProxyDeployment, AppDeployment)"
        ),
    };
    let kind = Kind::ALL
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(&kind_name))
        .with_context(|| {
            format!("{source}: kind: unknown kind {kind_name:?} (one of Recipe, TestRun, ProxyDeployment, AppDeployment)")
        })?;
    obj.insert("kind".into(), Value::String(kind.name().into()));
    match obj.get("apiVersion") {
        None => {
            obj.insert("apiVersion".into(), Value::String(API_VERSION.into()));
        }
        Some(Value::String(v)) if v == API_VERSION => {}
        Some(v) => bail!("{source}: apiVersion: {v} is not {API_VERSION}"),
    }
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .with_context(|| format!("{source}: metadata.name: missing"))?
        .to_string();
    Ok(Document {
        source,
        kind,
        name,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_multi_document_files_yield_each_record_in_order() {
        let text = "\
apiVersion: cc-ci/v1alpha1
kind: Recipe
metadata: {name: hedgedoc}
spec: {git: 'https://git.coopcloud.tech/coop-cloud/hedgedoc.git'}
---
---
kind: testrun
metadata:
  name: hedgedoc-pr1
spec:
  recipe: hedgedoc
  ref: abc123
";
        let docs = parse_text("m.yaml", text, false).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].kind, Kind::Recipe);
        assert_eq!(docs[0].name, "hedgedoc");
        assert_eq!(docs[1].kind, Kind::TestRun);
        assert_eq!(docs[1].name, "hedgedoc-pr1");
        assert_eq!(docs[1].value["kind"], "TestRun");
        assert_eq!(docs[1].value["apiVersion"], API_VERSION);
        assert_eq!(docs[1].value["spec"]["ref"], "abc123");
        assert!(
            docs[1].source.starts_with("m.yaml (document"),
            "{}",
            docs[1].source
        );
    }

    #[test]
    fn errors_name_the_file_and_document() {
        let text = "kind: Recipe\nmetadata: {name: a}\nspec: {git: x}\n---\nkind: Pod\nmetadata: {name: b}\n";
        let err = parse_text("bad.yaml", text, false).unwrap_err().to_string();
        assert!(
            err.starts_with("bad.yaml (document 2): kind: unknown kind \"Pod\""),
            "{err}"
        );
        let err = parse_text("n.yaml", "kind: Recipe\nspec: {}\n", false)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "n.yaml: metadata.name: missing");
        let err = parse_text("s.yaml", "kind: [\n", false)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.yaml: invalid YAML"), "{err}");
    }

    #[test]
    fn json_objects_and_lists_are_read() {
        let text = r#"{"kind":"RecipeList","items":[{"kind":"Recipe","metadata":{"name":"a"},"spec":{"git":"g"}},{"kind":"Recipe","metadata":{"name":"b"},"spec":{"git":"g"}}]}"#;
        let docs = parse_text("l.json", text, true).unwrap();
        let names: Vec<&str> = docs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let text = r#"[{"kind":"Recipe","metadata":{"name":"c"},"spec":{"git":"g"}},
            {"kind":"testrun","metadata":{"name":"d"},"spec":{"recipe":"c","ref":"main"}}]"#;
        let docs = parse_text("array.json", text, true).unwrap();
        let got: Vec<(Kind, &str)> = docs.iter().map(|d| (d.kind, d.name.as_str())).collect();
        assert_eq!(got, [(Kind::Recipe, "c"), (Kind::TestRun, "d")]);
        let err = parse_text(
            "v.json",
            r#"{"apiVersion":"v1","kind":"Recipe","metadata":{"name":"a"}}"#,
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("apiVersion"), "{err}");
    }

    #[test]
    fn directories_hold_manifests_sorted_by_name() {
        let dir = tempfile::tempdir().unwrap();
        assert!(dir_manifests(dir.path()).unwrap().is_empty());
        std::fs::write(dir.path().join("b.yml"), "").unwrap();
        std::fs::write(dir.path().join("a.json"), "").unwrap();
        std::fs::write(dir.path().join("README.md"), "").unwrap();
        let files = dir_manifests(dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.json", "b.yml"]);
    }
}
