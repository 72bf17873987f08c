//! The hand-written `rewind.toml(5)` (docs/man/rewind.toml.5) and the packaged default file
//! (packaging/rewind.toml) name every table and key of the configuration, with its default:
//! a key added to `rewind::config` without its documentation fails here.

use rewind::config::Config;

/// Every `(table, key, default)` of the configuration, from its own serialization.
fn keys() -> Vec<(String, String, String)> {
    let text = toml::to_string(&Config::default()).expect("serialize the defaults");
    let value: toml::Table = text.parse().expect("parse them back");
    let mut out = Vec::new();
    for (table, entries) in &value {
        let entries = entries.as_table().expect("every key lives in a table");
        for (key, default) in entries {
            out.push((table.clone(), key.clone(), default.to_string()));
        }
    }
    assert!(out.len() >= 7, "too few keys found: {out:?}");
    out
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_man_page_names_every_key_with_its_default() {
    // roff escapes `-` and quotes; compare on the text with those undone.
    let page = read("docs/man/rewind.toml.5")
        .replace("\\-", "-")
        .replace("\\(dq", "\"");
    for (table, key, default) in keys() {
        assert!(
            page.contains(&format!(".SH \"[{table}]\"")),
            "no section [{table}]"
        );
        let line = page
            .lines()
            .find(|l| l.starts_with(&format!(".BR {key} \" (")))
            .unwrap_or_else(|| panic!("no entry for {table}.{key}"));
        assert!(
            line.ends_with(&format!("default \" {default} )")),
            "{table}.{key}: the entry does not give the default {default}: {line}"
        );
    }
}

#[test]
fn the_packaged_file_names_every_key_with_its_default() {
    let file = read("packaging/rewind.toml");
    for (table, key, default) in keys() {
        assert!(file.contains(&format!("#[{table}]")), "no table [{table}]");
        assert!(
            file.lines()
                .any(|l| l.starts_with(&format!("#{key} = {default}"))),
            "no line '#{key} = {default}' for [{table}]"
        );
    }
}
