//! `ops::Template` against Ansible's template module: the cases of
//! `tests/ansible/templates.toml` rendered by both, the text compared byte
//! for byte, and a template Ansible fails on fails here too.

use std::collections::BTreeMap;

use chopsticks::ops::Template;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{cases, driver, scratch, Disagreements};

#[derive(Deserialize)]
struct Cases {
    template: Vec<TemplateCase>,
}

#[derive(Deserialize)]
struct TemplateCase {
    id: String,
    source: String,
    template: String,
    vars: toml::Table,
    #[serde(default)]
    includes: BTreeMap<String, String>,
}

#[test]
fn templates_render_as_ansible_renders_them() {
    let all: Cases = cases("templates.toml");
    assert!(all.template.len() >= 30, "{} cases", all.template.len());
    let request = json!({
        "cases": all.template.iter().map(|c| json!({
            "id": c.id,
            "template": c.template,
            "includes": c.includes,
            "vars": serde_json::to_value(&c.vars).unwrap(),
        })).collect::<Vec<_>>(),
    });
    let home = scratch("templates");
    let answers = driver("templates", &request, &home);
    let mut found = Disagreements::default();
    for case in &all.template {
        let answer = &answers[&case.id];
        let mut spec = Template::new("/tmp/out", &case.template)
            .named("main.j2")
            .vars(&case.vars);
        for (name, text) in &case.includes {
            spec = spec.include(name, text);
        }
        let ours = spec.render();
        let theirs = match answer["failed"] {
            Value::Bool(true) => None,
            _ => answer["text"].as_str(),
        };
        let mut differs = found.case(&case.id, &case.source);
        match (&ours, theirs) {
            (Ok(text), Some(expected)) if text == expected => {}
            (Err(_), None) => {}
            (ours, theirs) => differs.add(
                "the rendered text",
                format!("{:?}", ours.as_ref().map_err(|e| &e.message)),
                theirs.map_or_else(|| "(failed)".to_owned(), |t| format!("{t:?}")),
            ),
        }
    }
    found.check("template", all.template.len());
}
