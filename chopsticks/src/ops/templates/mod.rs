//! [`template`]: a file rendered from a Jinja template (MiniJinja), on the
//! host, inside its plan's call. Behind the `template` feature.

use std::path::{Path, PathBuf};

mod python;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use python::{python_json, python_repr};
use serde::{Deserialize, Serialize};

use super::landing::{landing_options, Landing};
use super::{Change, File, Mode, OpError, Owner, Plan};
use crate::ops::write::owner_options;
use crate::remote;

const OP: &str = "ops::template";

/// How much work one rendering may do, in MiniJinja's instructions (a
/// template that loops over `range(100000)` in three nested loops stops
/// with an error, not after hours). A configuration file takes thousands.
pub const TEMPLATE_FUEL: u64 = 50_000_000;

/// The most bytes a template and the templates it includes may hold, and a
/// rendering may produce.
pub const MAX_TEMPLATE: usize = 16 << 20;

/// A file rendered from a Jinja template: the syntax of Ansible's
/// `template` module and of Jinja2 (variables, filters, conditionals,
/// loops, macros, `include`/`import`/`extends` of the templates given with
/// [`include`](Template::include)), rendered by MiniJinja as Ansible's
/// `template` module renders (proven side by side in the tests): with
/// `trim_blocks`, the template's final newlines kept, values printed as
/// Python prints them (`True`, `None`, `['a', 1]`), `tojson` as Jinja2's.
///
/// Strict: a variable that is not given is an error naming the template,
/// the line and the variable (write `{{ x | default("...") }}` for an
/// optional one), and a syntax error names the line and column.
///
/// The result is written as [`File`] writes content: the same mode, owner,
/// [`secret`](Template::secret), [`validate`](Template::validate) and
/// [`backup`](Template::backup) rules.
///
/// ```
/// use chopsticks::ops::Template;
///
/// #[derive(serde::Serialize)]
/// struct Motd<'a> { host: &'a str, admins: Vec<&'a str> }
///
/// // A file of the tool's own: include_str!("motd.j2").
/// let source = "Welcome to {{ host }}.\nAsk {{ admins | join(' or ') }}.\n";
/// let motd = Template::new("/etc/motd", source)
///     .named("motd.j2")
///     .vars(&Motd { host: "web1", admins: vec!["ana", "bo"] })
///     .mode(0o644);
/// assert_eq!(motd.render().unwrap(), "Welcome to web1.\nAsk ana or bo.\n");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    dest: PathBuf,
    name: String,
    source: String,
    includes: Vec<(String, String)>,
    /// The variables as JSON text (postcard cannot carry a JSON value), or
    /// why they could not be made.
    vars: Result<String, String>,
    mode: Option<u32>,
    owner: Owner,
    secret: bool,
    follow: bool,
    landing: Landing,
}

/// The template shows as its name and size, the variables not at all:
/// they may hold secrets.
impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("dest", &self.dest)
            .field("name", &self.name)
            .field("source", &format!("{} bytes", self.source.len()))
            .field(
                "includes",
                &self.includes.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("mode", &self.mode)
            .field("owner", &self.owner)
            .field("secret", &self.secret)
            .field("follow", &self.follow)
            .field("validate", &self.landing.validate)
            .field("backup", &self.landing.backup)
            .finish_non_exhaustive()
    }
}

impl Template {
    /// The file `dest`, rendered from the template text `source` (from
    /// `include_str!`, or read with [`from_file`](Template::from_file)).
    pub fn new(dest: impl Into<PathBuf>, source: impl Into<String>) -> Template {
        Template {
            dest: super::paths::plain(dest.into()),
            name: "template".into(),
            source: source.into(),
            includes: Vec::new(),
            vars: Ok("{}".into()),
            mode: None,
            owner: Owner::default(),
            secret: false,
            follow: false,
            landing: Landing::default(),
        }
    }

    /// The file `dest`, rendered from the template file `template`, read
    /// here (on the controller, when called there) and named by its file
    /// name in errors (`source` is the template file).
    ///
    /// # Errors
    /// When the file cannot be read, is larger than [`MAX_TEMPLATE`], or
    /// is not UTF-8; the error names it.
    pub fn from_file(
        dest: impl Into<PathBuf>,
        source: impl AsRef<Path>,
    ) -> std::io::Result<Template> {
        let path = source.as_ref();
        let source = read_template(path)?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Template::new(dest, source).named(name))
    }

    /// How errors name the template (`motd.j2`), and the name other
    /// templates include it by.
    pub fn named(mut self, name: impl Into<String>) -> Template {
        self.name = name.into();
        self
    }

    /// Another template of the set, which this one can `include`,
    /// `import` or `extend` by `name`.
    pub fn include(mut self, name: impl Into<String>, source: impl Into<String>) -> Template {
        self.includes.push((name.into(), source.into()));
        self
    }

    /// The variables: any value that serializes as a map (a struct, a
    /// `HashMap`, `serde_json::json!({..})`), replacing earlier ones. One
    /// that does not is an error when the template is rendered.
    pub fn vars(mut self, vars: &impl Serialize) -> Template {
        self.vars = match serde_json::to_value(vars) {
            Ok(serde_json::Value::Object(map)) => bounded_vars(&map),
            Ok(other) => Err(format!(
                "the variables must serialize as a map (a struct or a map), not {}",
                kind_of(&other)
            )),
            Err(e) => Err(format!("the variables cannot be serialized: {e}")),
        };
        self
    }

    /// One more variable, `name`, over what [`vars`](Template::vars) gave.
    pub fn var(mut self, name: impl Into<String>, value: &impl Serialize) -> Template {
        let name = name.into();
        self.vars = self.vars.and_then(|text| {
            let mut map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let value = serde_json::to_value(value)
                .map_err(|e| format!("the variable {name} cannot be serialized: {e}"))?;
            map.insert(name, value);
            bounded_vars(&map)
        });
        self
    }

    /// The file's permission bits (new files: `0o644` unless given).
    pub fn mode(mut self, mode: u32) -> Template {
        self.mode = Some(mode & 0o7777);
        self
    }

    /// The rendered content is secret: a change shows as changed, never
    /// as a diff, and a failing validation's output is not quoted.
    pub fn secret(mut self) -> Template {
        self.secret = true;
        self
    }

    /// Whether a symbolic link at `dest` is followed (see
    /// [`File::follow`]).
    pub fn follow(mut self, follow: bool) -> Template {
        self.follow = follow;
        self
    }

    /// The rendered text.
    ///
    /// # Errors
    /// A syntax error (with line and column), an undefined variable (with
    /// line and the variable), a failing filter, a template that does more
    /// work than [`TEMPLATE_FUEL`] or renders more than [`MAX_TEMPLATE`]
    /// bytes, or variables that are not a map.
    pub fn render(&self) -> Result<String, OpError> {
        let shown = self.dest.display().to_string();
        let fail = |message: String| OpError::new(OP, &shown, message);
        let vars = self.vars.as_ref().map_err(|e| fail(e.clone()))?;
        let vars: serde_json::Value =
            serde_json::from_str(vars).map_err(|e| fail(e.to_string()))?;
        let size = self.source.len() + self.includes.iter().map(|(_, s)| s.len()).sum::<usize>();
        if size > MAX_TEMPLATE {
            return Err(fail(format!(
                "the templates hold {size} bytes, more than the {MAX_TEMPLATE} one rendering takes"
            )));
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        // Ansible escapes nothing by itself, whatever the file's name.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_fuel(Some(TEMPLATE_FUEL));
        // Errors name the line and the expression in release builds too.
        env.set_debug(true);
        // Values print as Python prints them, and `tojson` writes JSON as
        // Jinja2's does, as they do in Ansible.
        env.set_formatter(|out, _, value| {
            let text = match value.kind() {
                ValueKind::Seq | ValueKind::Map | ValueKind::None | ValueKind::Bool => {
                    python_repr(value)
                }
                _ => value.to_string(),
            };
            out.write_str(&text).map_err(|_| {
                minijinja::Error::new(ErrorKind::WriteFailure, "cannot write the output")
            })
        });
        env.add_filter("tojson", python_json);
        let sources = std::iter::once((&self.name, &self.source))
            .chain(self.includes.iter().map(|(n, s)| (n, s)));
        for (name, source) in sources {
            env.add_template_owned(name.clone(), source.clone())
                .map_err(|e| fail(explain(&e, name, source)))?;
        }
        let main = env
            .get_template(&self.name)
            .map_err(|e| fail(explain(&e, &self.name, &self.source)))?;
        // Rendered into a buffer that refuses more than MAX_TEMPLATE bytes:
        // a loop printing big strings stops there, not out of memory.
        let mut buffer = Capped(Vec::new());
        let rendered = main.render_captured_to(vars, &mut buffer);
        if buffer.0.len() > MAX_TEMPLATE {
            return Err(fail(format!(
                "{} renders more than {MAX_TEMPLATE} bytes, the most a template may",
                self.name
            )));
        }
        rendered.map_err(|e| {
            let name = e.name().unwrap_or(&self.name).to_owned();
            let source = std::iter::once((&self.name, &self.source))
                .chain(self.includes.iter().map(|(n, s)| (n, s)))
                .find(|(n, _)| **n == name)
                .map_or("", |(_, s)| s.as_str());
            fail(explain(&e, &name, source))
        })?;
        let text = String::from_utf8(buffer.0)
            .map_err(|_| fail(format!("{} renders text that is not UTF-8", self.name)))?;
        // Ansible's rendering: Jinja drops one final newline of each
        // template, then the result gets back as many final newlines as
        // the template had.
        let mut text = text;
        let wanted = trailing_newlines(&self.source);
        let have = trailing_newlines(&text);
        if wanted > have {
            text.push_str(&"\n".repeat(wanted - have));
        }
        if text.len() > MAX_TEMPLATE {
            return Err(fail(format!(
                "{} renders {} bytes, more than the {MAX_TEMPLATE} a template may",
                self.name,
                text.len()
            )));
        }
        Ok(text)
    }

    /// What rendering the template and writing the file would change.
    ///
    /// # Errors
    /// As [`render`](Template::render), then as [`File::plan`].
    pub fn plan(self) -> Result<Plan, OpError> {
        let text = self.render()?;
        let mut file = File::new(self.dest)
            .content(text)
            .follow(self.follow)
            .landed(self.landing);
        if let Some(mode) = self.mode {
            file = file.mode(mode);
        }
        if let Some(user) = self.owner.user {
            file = file.owner(user);
        }
        if let Some(group) = self.owner.group {
            file = file.group(group);
        }
        if self.secret {
            file = file.secret();
        }
        file.plan_as(OP)
    }
}

landing_options!(Template);

/// Renders a [`Template`] into its file, on the host.
///
/// # Errors
/// [`OpError`] naming the file: the template's errors with line and column,
/// or the file's.
#[remote]
pub fn template(spec: Template, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

/// A template error as a user needs it: the template, the line (and
/// column, for syntax), and what: the undefined variable by name.
fn explain(e: &minijinja::Error, name: &str, source: &str) -> String {
    let name = e.name().unwrap_or(name);
    let span = e.range().filter(|r| {
        r.end <= source.len() && source.is_char_boundary(r.start) && source.is_char_boundary(r.end)
    });
    let column = span.as_ref().map(|r| {
        let start = source[..r.start].rfind('\n').map_or(0, |i| i + 1);
        source[start..r.start].chars().count() + 1
    });
    let line = e.line().map_or_else(String::new, |l| match column {
        Some(c) if e.kind() == ErrorKind::SyntaxError => format!(", line {l}, column {c}"),
        _ => format!(", line {l}"),
    });
    let what = match e.kind() {
        ErrorKind::UndefinedError => match span.map(|r| source[r].trim().to_owned()) {
            Some(expr) => format!(
                "`{expr}` is undefined: give it in the variables (every variable must be given), \
                 or write `{{{{ {expr} | default(...) }}}}`"
            ),
            None => "a variable is undefined: give it in the variables".to_owned(),
        },
        ErrorKind::OutOfFuel => {
            format!("the template does more than {TEMPLATE_FUEL} steps of work (a loop too big?)")
        }
        _ => e
            .detail()
            .map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind())),
    };
    format!("{name}{line}: {what}")
}

/// A buffer that takes at most [`MAX_TEMPLATE`] bytes, then fails the
/// write (and keeps one byte more, to tell).
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = (MAX_TEMPLATE + 1).saturating_sub(self.0.len());
        if room == 0 {
            return Err(std::io::Error::other("the template renders too much"));
        }
        let taken = bytes.len().min(room);
        self.0.extend_from_slice(&bytes[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How many `\n` `text` ends with.
fn trailing_newlines(text: &str) -> usize {
    text.len() - text.trim_end_matches('\n').len()
}

/// The variables as JSON text, within [`MAX_TEMPLATE`] bytes.
fn bounded_vars(map: &serde_json::Map<String, serde_json::Value>) -> Result<String, String> {
    let text = serde_json::to_string(map).map_err(|e| e.to_string())?;
    match text.len() > MAX_TEMPLATE {
        true => Err(format!(
            "the variables take {} bytes as JSON, more than the {MAX_TEMPLATE} a template takes",
            text.len()
        )),
        false => Ok(text),
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a map",
    }
}

/// A template file's text, within [`MAX_TEMPLATE`].
fn read_template(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let named = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("template {}: {e}", path.display()))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TEMPLATE as u64 + 1).read_to_end(&mut bytes))
        .map_err(named)?;
    if bytes.len() > MAX_TEMPLATE {
        return Err(named(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_TEMPLATE} bytes, the most a template may be"),
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        named(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })
}

owner_options!(Template);

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, vars: serde_json::Value) -> Result<String, String> {
        Template::new("/etc/x.conf", source)
            .named("x.j2")
            .vars(&vars)
            .render()
            .map_err(|e| e.message)
    }

    #[test]
    fn renders_what_ansible_templates_use() {
        let source = "\
# {{ ansible_managed | default('managed by chopsticks') }}
{% for h in hosts %}
server {{ h.name }} {{ h.ip }}:{{ port }}{% if h.backup %} backup{% endif %}

{% endfor %}
{{ users | join(', ') | upper }}
";
        let vars = serde_json::json!({
            "hosts": [{"name": "a", "ip": "10.0.0.1", "backup": false},
                      {"name": "b", "ip": "10.0.0.2", "backup": true}],
            "port": 80,
            "users": ["ana", "bo"],
        });
        assert_eq!(
            render(source, vars).unwrap(),
            // What Jinja2 renders with Ansible's settings, byte for byte.
            "# managed by chopsticks\nserver a 10.0.0.1:80\nserver b 10.0.0.2:80 backup\nANA, BO\n"
        );
    }

    #[test]
    fn includes_come_from_the_same_set() {
        let t = Template::new("/x", "{% include 'head.j2' %}body {{ x }}\n")
            .include("head.j2", "head {{ x }}\n")
            .var("x", &1);
        // As Ansible: an included template's final newline goes.
        assert_eq!(t.render().unwrap(), "head 1body 1\n");
        let err = Template::new("/x", "{% include 'nope.j2' %}")
            .render()
            .unwrap_err();
        assert!(err.message.contains("nope.j2"), "{err}");
    }

    #[test]
    fn errors_name_the_template_line_column_and_variable() {
        let err = render("a\nb {{ user.name }}\n", serde_json::json!({})).unwrap_err();
        assert!(
            err.starts_with("x.j2, line 2: `user.name` is undefined"),
            "{err}"
        );
        let err = render("a\n{% if %}\n", serde_json::json!({})).unwrap_err();
        assert!(err.starts_with("x.j2, line 2, column "), "{err}");
        assert!(err.contains("syntax error"), "{err}");
        let err = Template::new("/x", "{{ 1 }}")
            .vars(&[1, 2])
            .render()
            .unwrap_err();
        assert!(
            err.message.contains("must serialize as a map, not a list")
                || err.message.contains("not a list"),
            "{err}"
        );
    }

    #[test]
    fn work_and_size_are_bounded() {
        let source = "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}.{% endfor %}{% endfor %}{% endfor %}";
        let err = render(source, serde_json::json!({})).unwrap_err();
        assert!(err.contains("steps of work"), "{err}");
    }

    #[test]
    fn output_is_bounded_as_it_is_written() {
        let big = "{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}";
        let err = render(big, serde_json::json!({})).unwrap_err();
        assert!(err.contains("renders more than"), "{err}");
    }

    #[test]
    fn nothing_is_escaped_whatever_the_name() {
        let t = Template::new("/x", "{{ v }} {{ v | e }}\n")
            .named("index.html.j2")
            .var("v", &"<a&b>");
        assert_eq!(t.render().unwrap(), "<a&b> &lt;a&amp;b&gt;\n");
        let t = Template::new("/x", "{{ v }}\n")
            .named("app.yaml")
            .var("v", &"a: 'b'");
        assert_eq!(t.render().unwrap(), "a: 'b'\n");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let t = Template::new("/etc/token", "{{ token }}")
            .var("token", &"s3cr3t")
            .secret();
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }
}
