//! Output the way python-openstackclient prints it (cliff's formatters over prettytable):
//!
//! * `-f table` (default): prettytable with one space of padding, each column aligned by the
//!   type of its first row's value (numbers right, everything else left — headers too), cells
//!   split on newlines, an empty list printing an empty line; a single resource is a
//!   `Field | Value` table;
//! * `-f value`: a list prints each row's values joined by one space, a resource one value per
//!   line;
//! * `-f json`: Python's `json.dump(..., indent=2)` (ASCII only, `\uXXXX` escapes), a list of
//!   objects keyed by the column headers or one object;
//! * `-c COLUMN` (repeatable): the columns whose name matches after lower-casing and turning
//!   spaces into `_`, in the command's order.
//!
//! Values print as Python's `str()` would: `None`, `True`/`False`, and lists and dicts as their
//! `repr()` (`['a', 'b']`, `{'k': 'v'}`), keys in the order the server sent them.

use std::fmt::Write as _;

use clap::ValueEnum;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value that keeps object keys in the order they were received.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(o) => o.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `get` that yields `Null` when absent (an SDK resource attribute the server did not send).
    pub fn field(&self, key: &str) -> Value {
        self.get(key).cloned().unwrap_or(Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn as_array(&self) -> &[Value] {
        match self {
            Value::Array(a) => a,
            _ => &[],
        }
    }

    /// Python truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
        }
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Value, D2::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
                Ok(Value::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
                Ok(Value::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
                Ok(Value::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Value, E> {
                Ok(Value::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Value, E> {
                Ok(Value::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = a.next_element()? {
                    out.push(v);
                }
                Ok(Value::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Value, A::Error> {
                let mut out: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    // A repeated key keeps its first place and its last value, like a dict.
                    match out.iter_mut().find(|(ok, _)| *ok == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                Ok(Value::Object(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn py_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn py_number(n: &serde_json::Number) -> String {
    if n.is_f64() {
        py_float(n.as_f64().unwrap_or(0.0))
    } else {
        n.to_string()
    }
}

/// Python's `repr()` of a string.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of the value as the SDK holds it.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => py_number(n),
        Value::String(s) => py_repr_str(s),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `str()`: strings as they are, everything else as `repr()`.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e && c != '\u{7f}' => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `json.dumps(v, indent=indent)` (Python's separators and `ensure_ascii`).
pub fn py_json(v: &Value, indent: Option<usize>) -> String {
    let mut out = String::new();
    json_into(v, indent, 0, &mut out);
    out
}

fn json_into(v: &Value, indent: Option<usize>, level: usize, out: &mut String) {
    let nl = |out: &mut String, level: usize| {
        if let Some(i) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(i * level));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&py_number(n)),
        Value::String(s) => json_str(s, out),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                nl(out, level + 1);
                json_into(item, indent, level + 1, out);
            }
            nl(out, level);
            out.push(']');
        }
        Value::Object(o) if o.is_empty() => out.push_str("{}"),
        Value::Object(o) => {
            out.push('{');
            for (i, (k, item)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                nl(out, level + 1);
                json_str(k, out);
                out.push_str(": ");
                json_into(item, indent, level + 1, out);
            }
            nl(out, level);
            out.push('}');
        }
    }
}

/// One cell: its value (for `-f json`/`-f value`) and, for cliff's formattable columns, the
/// human-readable text `-f table` shows instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub value: Value,
    pub human: Option<String>,
}

impl Cell {
    fn table_text(&self) -> String {
        let t = match &self.human {
            Some(h) => h.clone(),
            None => py_str(&self.value),
        };
        // cliff's _format_row.
        t.replace("\r\n", "\n").replace('\r', " ")
    }

    fn right_aligned(&self) -> bool {
        self.human.is_none() && matches!(self.value, Value::Number(_))
    }
}

impl From<Value> for Cell {
    fn from(value: Value) -> Cell {
        Cell { value, human: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Value,
}

/// `-f` and `-c`, as every listing or showing command takes them.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// The output format.
    #[arg(short = 'f', long = "format", value_enum, default_value = "table")]
    pub format: Format,
    /// A column to include (repeat for several); default all.
    #[arg(short = 'c', long = "column", value_name = "COLUMN")]
    pub columns: Vec<String>,
    /// JSON without indentation (with -f json).
    #[arg(long)]
    pub noindent: bool,
}

fn normalize(c: &str) -> String {
    c.trim().to_lowercase().replace(' ', "_")
}

/// The indexes of the selected columns, or cliff's error (which shows the command's column
/// names as the Python list or tuple it returned).
fn select(headers: &[&str], wanted: &[String], tuple: bool) -> Result<Vec<usize>, String> {
    if wanted.is_empty() {
        return Ok((0..headers.len()).collect());
    }
    let norm: Vec<String> = wanted.iter().map(|c| normalize(c)).collect();
    let picked: Vec<usize> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| norm.contains(&normalize(h)))
        .map(|(i, _)| i)
        .collect();
    if picked.is_empty() {
        let items = |items: &[String]| {
            items
                .iter()
                .map(|s| py_repr_str(s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let names: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        let recognized = match (tuple, names.len()) {
            (false, _) => format!("[{}]", items(&names)),
            (true, 1) => format!("({},)", items(&names)),
            (true, _) => format!("({})", items(&names)),
        };
        return Err(format!(
            "No recognized column names in [{}]. Recognized columns are {recognized}.",
            items(wanted),
        ));
    }
    Ok(picked)
}

/// prettytable's rendering (border, one space of padding, no width limit).
fn render_table(headers: &[String], rows: &[Vec<Cell>], force_left: bool) -> String {
    if rows.is_empty() {
        // print_empty=False: nothing, and cliff adds the newline.
        return "\n".into();
    }
    let cells: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| c.table_text().split('\n').map(str::to_string).collect())
                .collect()
        })
        .collect();
    let right: Vec<bool> = rows[0]
        .iter()
        .map(|c| !force_left && c.right_aligned())
        .collect();
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for r in &cells {
        for (i, lines) in r.iter().enumerate() {
            for l in lines {
                widths[i] = widths[i].max(width(l));
            }
        }
    }
    let rule = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s
    };
    let line = |texts: &[&str]| {
        let mut s = String::from("|");
        for (i, t) in texts.iter().enumerate() {
            let pad = widths[i] - width(t);
            if right[i] {
                let _ = write!(s, " {}{} |", " ".repeat(pad), t);
            } else {
                let _ = write!(s, " {}{} |", t, " ".repeat(pad));
            }
        }
        s
    };
    let mut out = String::new();
    out.push_str(&rule);
    out.push('\n');
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    out.push_str(&line(&h));
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for r in &cells {
        let height = r.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..height {
            let texts: Vec<&str> = r
                .iter()
                .map(|lines| lines.get(k).map(String::as_str).unwrap_or(""))
                .collect();
            out.push_str(&line(&texts));
            out.push('\n');
        }
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

/// What a command prints: one resource (cliff's ShowOne) or a list (Lister).
#[derive(Debug, Clone)]
pub enum Output {
    One(Vec<(String, Cell)>),
    List {
        headers: Vec<String>,
        rows: Vec<Vec<Cell>>,
        /// openstackclient returned the headers as a list (not a tuple): only shows in the
        /// `-c` error message.
        list_headers: bool,
    },
}

impl Output {
    pub fn one<I, K>(fields: I) -> Output
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Output::One(
            fields
                .into_iter()
                .map(|(k, v)| (k.into(), Cell::from(v)))
                .collect(),
        )
    }

    pub fn list(headers: &[&str], rows: Vec<Vec<Cell>>) -> Output {
        Output::List {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
            list_headers: false,
        }
    }

    /// For the commands whose headers openstackclient builds as a Python list.
    pub fn with_list_headers(mut self) -> Output {
        if let Output::List { list_headers, .. } = &mut self {
            *list_headers = true;
        }
        self
    }

    /// The text to print on stdout, or cliff's column error.
    pub fn render(&self, args: &OutputArgs) -> Result<String, String> {
        let indent = if args.noindent { None } else { Some(2) };
        match self {
            Output::One(fields) => {
                let headers: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
                let idx = select(&headers, &args.columns, true)?;
                let picked: Vec<&(String, Cell)> = idx.iter().map(|i| &fields[*i]).collect();
                Ok(match args.format {
                    Format::Table => {
                        let rows: Vec<Vec<Cell>> = picked
                            .iter()
                            .map(|(k, c)| vec![Cell::from(Value::str(k.clone())), c.clone()])
                            .collect();
                        render_table(&["Field".into(), "Value".into()], &rows, true)
                    }
                    Format::Value => {
                        let mut s = String::new();
                        for (_, c) in &picked {
                            s.push_str(&py_str(&c.value));
                            s.push('\n');
                        }
                        s
                    }
                    Format::Json => {
                        let obj = Value::Object(
                            picked
                                .iter()
                                .map(|(k, c)| (k.clone(), c.value.clone()))
                                .collect(),
                        );
                        format!("{}\n", py_json(&obj, indent))
                    }
                })
            }
            Output::List {
                headers,
                rows,
                list_headers,
            } => {
                let h: Vec<&str> = headers.iter().map(String::as_str).collect();
                let idx = select(&h, &args.columns, !list_headers)?;
                let hs: Vec<String> = idx.iter().map(|i| headers[*i].clone()).collect();
                let rs: Vec<Vec<Cell>> = rows
                    .iter()
                    .map(|r| idx.iter().map(|i| r[*i].clone()).collect())
                    .collect();
                Ok(match args.format {
                    Format::Table => render_table(&hs, &rs, false),
                    Format::Value => {
                        let mut s = String::new();
                        for r in &rs {
                            let parts: Vec<String> = r.iter().map(|c| py_str(&c.value)).collect();
                            s.push_str(&parts.join(" "));
                            s.push('\n');
                        }
                        s
                    }
                    Format::Json => {
                        let items = Value::Array(
                            rs.iter()
                                .map(|r| {
                                    Value::Object(
                                        hs.iter()
                                            .cloned()
                                            .zip(r.iter().map(|c| c.value.clone()))
                                            .collect(),
                                    )
                                })
                                .collect(),
                        );
                        format!("{}\n", py_json(&items, indent))
                    }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    fn args(format: Format, columns: &[&str]) -> OutputArgs {
        OutputArgs {
            format,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            noindent: false,
        }
    }

    #[test]
    fn python_repr_and_json() {
        let v = parse(r#"{"b": [1, 2.5, true, null, "it's"], "a": {"x": "q\"\n"}, "e": 3.0}"#);
        assert_eq!(
            py_repr(&v),
            r#"{'b': [1, 2.5, True, None, "it's"], 'a': {'x': 'q"\n'}, 'e': 3.0}"#
        );
        assert_eq!(py_repr_str("a'b\"c"), r#"'a\'b"c'"#);
        assert_eq!(
            py_json(&v, Some(2)),
            "{\n  \"b\": [\n    1,\n    2.5,\n    true,\n    null,\n    \"it's\"\n  ],\n  \"a\": {\n    \"x\": \"q\\\"\\n\"\n  },\n  \"e\": 3.0\n}"
        );
        assert_eq!(
            py_json(&parse(r#"{"k": "é😀"}"#), None),
            r#"{"k": "\u00e9\ud83d\ude00"}"#
        );
        assert_eq!(py_json(&parse("[]"), Some(2)), "[]");
    }

    #[test]
    fn tables_like_prettytable() {
        let out = Output::list(
            &["ID", "Name"],
            vec![
                vec![Value::str("1a").into(), Value::str("admin").into()],
                vec![Value::str("2b").into(), Value::Null.into()],
            ],
        );
        assert_eq!(
            out.render(&args(Format::Table, &[])).unwrap(),
            "+----+-------+\n| ID | Name  |\n+----+-------+\n| 1a | admin |\n| 2b | None  |\n+----+-------+\n"
        );
        assert_eq!(
            out.render(&args(Format::Value, &["name"])).unwrap(),
            "admin\nNone\n"
        );
        assert_eq!(
            out.render(&args(Format::Json, &["NAME", "id"])).unwrap(),
            "[\n  {\n    \"ID\": \"1a\",\n    \"Name\": \"admin\"\n  },\n  {\n    \"ID\": \"2b\",\n    \"Name\": null\n  }\n]\n"
        );
        assert_eq!(
            out.render(&args(Format::Table, &["Nope"])).unwrap_err(),
            "No recognized column names in ['Nope']. Recognized columns are ('ID', 'Name')."
        );
        assert_eq!(
            out.clone()
                .with_list_headers()
                .render(&args(Format::Table, &["Nope"]))
                .unwrap_err(),
            "No recognized column names in ['Nope']. Recognized columns are ['ID', 'Name']."
        );
        assert_eq!(
            Output::list(&["ID"], vec![])
                .render(&args(Format::Table, &[]))
                .unwrap(),
            "\n"
        );
        let one = Output::one([
            ("enabled", Value::Bool(true)),
            ("tags", parse(r#"["a","b"]"#)),
        ]);
        assert_eq!(
            one.render(&args(Format::Table, &[])).unwrap(),
            "+---------+------------+\n| Field   | Value      |\n+---------+------------+\n| enabled | True       |\n| tags    | ['a', 'b'] |\n+---------+------------+\n"
        );
        assert_eq!(
            one.render(&args(Format::Value, &[])).unwrap(),
            "True\n['a', 'b']\n"
        );
        let multi = Output::list(
            &["Name", "Endpoints"],
            vec![vec![
                Value::str("nova").into(),
                Cell {
                    value: Value::Null,
                    human: Some("R1\n  public: http://x\n".into()),
                },
            ]],
        );
        assert_eq!(
            multi.render(&args(Format::Table, &[])).unwrap(),
            "+------+--------------------+\n| Name | Endpoints          |\n+------+--------------------+\n| nova | R1                 |\n|      |   public: http://x |\n|      |                    |\n+------+--------------------+\n"
        );
    }
}
