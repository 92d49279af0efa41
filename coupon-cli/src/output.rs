//! Writing results: one JSON document with `--json`, readable text otherwise.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

/// Where results go.
pub struct Output<W> {
    out: W,
    json: bool,
}

impl<W: Write> Output<W> {
    /// Results to `out`, as JSON when `json`.
    pub fn new(out: W, json: bool) -> Self {
        Output { out, json }
    }

    /// Whether results are JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The writer.
    pub fn writer(&mut self) -> &mut W {
        &mut self.out
    }

    /// One record: JSON, or aligned `key: value` lines (nested objects as `key.field`).
    pub fn record<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        if self.json {
            return self.json_doc(value);
        }
        // Keep the fields in their declared order (a `Value` map would sort them).
        let text = serde_json::to_string(value)?;
        let fields: Ordered = serde_json::from_str(&text)?;
        let mut pairs = vec![];
        for (key, value) in &fields.0 {
            if matches!(value, Value::Array(_)) {
                pairs.push((key.clone(), cell(Some(value))));
            } else {
                flatten(key, value, &mut pairs);
            }
        }
        let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, text) in pairs {
            writeln!(
                self.out,
                "{:width$}  {text}",
                format!("{key}:"),
                width = width + 1
            )?;
        }
        self.out.flush()
    }

    /// A list: a JSON array, or an aligned table of `columns`.
    pub fn table<T: Serialize>(&mut self, items: &[T], columns: &[&str]) -> io::Result<()> {
        if self.json {
            return self.json_doc(&items);
        }
        let values = items.iter().map(to_value).collect::<io::Result<Vec<_>>>()?;
        if values.is_empty() {
            writeln!(self.out, "(none)")?;
            return self.out.flush();
        }
        let rows: Vec<Vec<String>> = values
            .iter()
            .map(|v| columns.iter().map(|c| cell(v.get(*c))).collect())
            .collect();
        let mut widths: Vec<usize> = columns.iter().map(|c| c.len()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
        for row in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:w$}"))
                .collect();
            writeln!(self.out, "{}", line.join("  ").trim_end())?;
        }
        self.out.flush()
    }

    /// A JSON document when `--json`, or the text line otherwise.
    pub fn message<T: Serialize>(&mut self, json: &T, text: &str) -> io::Result<()> {
        if self.json {
            self.json_doc(json)
        } else {
            writeln!(self.out, "{text}")?;
            self.out.flush()
        }
    }

    fn json_doc<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut self.out, value)?;
        writeln!(self.out)?;
        self.out.flush()
    }
}

/// A JSON object's fields in document order (or a lone value under an empty key).
struct Ordered(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut fields = vec![];
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    fields.push(entry);
                }
                Ok(Ordered(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

fn to_value<T: Serialize>(value: &T) -> io::Result<Value> {
    serde_json::to_value(value).map_err(io::Error::other)
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if prefix.is_empty() || !map.is_empty() => {
            for (key, v) in map {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                if matches!(v, Value::Array(_)) {
                    out.push((key, cell(Some(v))));
                } else {
                    flatten(&key, v, out);
                }
            }
        }
        other => out.push((prefix.to_owned(), cell(Some(other)))),
    }
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_is_aligned() {
        let mut out = Output::new(Vec::new(), false);
        out.table(
            &[json!({"a": "x", "b": 1}), json!({"a": "long", "b": null})],
            &["a", "b"],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out.out).unwrap(),
            "A     B\nx     1\nlong  -\n"
        );
    }

    #[test]
    fn record_flattens() {
        let mut out = Output::new(Vec::new(), false);
        out.record(&json!({"id": 1, "stats": {"codes": 2}}))
            .unwrap();
        assert_eq!(
            String::from_utf8(out.out).unwrap(),
            "id:           1\nstats.codes:  2\n"
        );
    }
}
