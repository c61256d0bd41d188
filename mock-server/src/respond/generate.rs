//! Values generated from a JSON Schema, repeatable for a given seed.
//!
//! The generator aims at values a HighLevel client would recognise: ids are
//! 20 alphanumeric characters, emails and dates look real, and a property's
//! own `example` is used when the caller allows it. It does not promise
//! validity for every schema (a `pattern` or a contradictory `allOf` can defeat
//! it); callers check the result with the compiled validator.

use serde_json::{Map, Number, Value};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Beyond this depth only required properties are generated, and arrays are empty.
const DEEP: usize = 6;
const MAX_DEPTH: usize = 24;

/// A HighLevel-shaped id: 20 alphanumeric characters.
pub fn id(rng: &mut fastrand::Rng) -> String {
    (0..20).map(|_| ALNUM[rng.usize(..ALNUM.len())] as char).collect()
}

pub struct Generator {
    rng: fastrand::Rng,
    /// Use `example` values found on sub-schemas.
    pub use_examples: bool,
    /// Which alternative of a `oneOf`/`anyOf` to try first; callers retrying
    /// after an invalid value move it on.
    pub variant: usize,
    /// Only required properties and the fewest array items: the value most
    /// likely to satisfy a schema whose alternatives overlap.
    pub minimal: bool,
}

impl Generator {
    pub fn new(seed: u64, use_examples: bool) -> Self {
        Self { rng: fastrand::Rng::with_seed(seed), use_examples, variant: 0, minimal: false }
    }

    pub fn value(&mut self, schema: &Value) -> Value {
        self.gen(schema, None, 0)
    }

    fn gen(&mut self, schema: &Value, name: Option<&str>, depth: usize) -> Value {
        let Value::Object(s) = schema else {
            return Value::String(self.word(name));
        };
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        if self.use_examples {
            if let Some(example) = s.get("example") {
                return example.clone();
            }
        }
        if let Some(Value::Array(values)) = s.get("enum") {
            if let Some(first) = values.iter().find(|v| !v.is_null()).or(values.first()) {
                return first.clone();
            }
        }
        if let Some(Value::Array(parts)) = s.get("allOf") {
            let mut merged = Map::new();
            let mut last = None;
            for part in parts {
                match self.gen(part, name, depth + 1) {
                    Value::Object(m) => merged.extend(m),
                    other => last = Some(other),
                }
            }
            let own = self.typed(s, name, depth);
            return match (own, last) {
                (Value::Object(m), _) => {
                    merged.extend(m);
                    Value::Object(merged)
                }
                (_, Some(other)) if merged.is_empty() => other,
                _ => Value::Object(merged),
            };
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(alts)) = s.get(key) {
                // Prefer alternatives that are not just `null`.
                let real: Vec<&Value> = alts.iter().filter(|a| a.get("type") != Some(&Value::from("null"))).collect();
                let pick = if real.is_empty() { alts.first() } else { real.get(self.variant % real.len()).copied() };
                if let Some(pick) = pick {
                    return self.gen(pick, name, depth + 1);
                }
            }
        }
        self.typed(s, name, depth)
    }

    fn typed(&mut self, s: &Map<String, Value>, name: Option<&str>, depth: usize) -> Value {
        let ty = match s.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
            _ if s.contains_key("properties") => "object",
            _ if s.contains_key("items") => "array",
            _ => "any",
        };
        match ty {
            "object" => self.object(s, depth),
            "array" => self.array(s, name, depth),
            "string" => Value::String(self.string(s, name)),
            "integer" => Value::Number(Number::from(self.integer(s))),
            "number" => Number::from_f64(self.integer(s) as f64).map(Value::Number).unwrap_or(Value::Null),
            "boolean" => Value::Bool(true),
            "null" => Value::Null,
            _ => Value::String(self.word(name)),
        }
    }

    fn object(&mut self, s: &Map<String, Value>, depth: usize) -> Value {
        let mut out = Map::new();
        let required: Vec<&str> = s
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(Value::Object(props)) = s.get("properties") {
            for (key, sub) in props {
                if (self.minimal || depth >= DEEP) && !required.contains(&key.as_str()) {
                    continue;
                }
                out.insert(key.clone(), self.gen(sub, Some(key), depth + 1));
            }
        }
        for key in required {
            if !out.contains_key(key) {
                out.insert(key.to_string(), Value::String(self.word(Some(key))));
            }
        }
        Value::Object(out)
    }

    fn array(&mut self, s: &Map<String, Value>, name: Option<&str>, depth: usize) -> Value {
        let min = s.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = s.get("maxItems").and_then(Value::as_u64).map(|m| m as usize).unwrap_or(usize::MAX);
        let wanted = if self.minimal || depth >= DEEP { min } else { min.max(1) }.min(max).min(16);
        let items = s.get("items").cloned().unwrap_or(Value::Object(Map::new()));
        let singular = name.map(|n| n.strip_suffix('s').unwrap_or(n));
        let mut out: Vec<Value> = (0..wanted).map(|_| self.gen(&items, singular, depth + 1)).collect();
        if s.get("uniqueItems") == Some(&Value::Bool(true)) {
            out.dedup();
        }
        Value::Array(out)
    }

    fn integer(&mut self, s: &Map<String, Value>) -> i64 {
        let min = s.get("minimum").and_then(Value::as_f64);
        let max = s.get("maximum").and_then(Value::as_f64);
        let excl_min = s.get("exclusiveMinimum") == Some(&Value::Bool(true));
        let excl_max = s.get("exclusiveMaximum") == Some(&Value::Bool(true));
        let lo = min.map(|m| if excl_min { m.floor() as i64 + 1 } else { m.ceil() as i64 }).unwrap_or(0);
        let hi = max
            .map(|m| if excl_max { m.ceil() as i64 - 1 } else { m.floor() as i64 })
            .unwrap_or(lo.saturating_add(100));
        let hi = hi.max(lo);
        let mut n = self.rng.i64(lo..=hi);
        if let Some(step) = s.get("multipleOf").and_then(Value::as_f64).filter(|m| *m >= 1.0) {
            let step = step as i64;
            n = (n / step) * step;
            if n < lo {
                n += step;
            }
        }
        n
    }

    fn string(&mut self, s: &Map<String, Value>, name: Option<&str>) -> String {
        let format = s.get("format").and_then(Value::as_str).unwrap_or("");
        let text = match format {
            "date-time" => self.date_time(),
            "date" => self.date_time()[..10].to_string(),
            "email" => self.email(),
            "uri" | "url" => format!("https://example.com/{}", id(&mut self.rng).to_lowercase()),
            "uuid" => uuid_from(&mut self.rng),
            "ipv4" => "192.0.2.10".to_string(),
            _ => self.word(name),
        };
        let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = s.get("maxLength").and_then(Value::as_u64).map(|m| m as usize);
        fit_length(text, min, max)
    }

    /// A string chosen by the property name, the way HighLevel fills it.
    fn word(&mut self, name: Option<&str>) -> String {
        let n = name.unwrap_or("");
        let lower = n.to_ascii_lowercase();
        if n == "id" || n == "_id" || n.ends_with("Id") || n.ends_with("_id") || n.ends_with("Ids") {
            id(&mut self.rng)
        } else if lower.contains("email") {
            self.email()
        } else if lower.contains("phone") {
            format!("+1555{:07}", self.rng.u32(0..10_000_000))
        } else if lower.starts_with("date") || lower.ends_with("at") && lower.len() > 2 || lower.contains("time") {
            self.date_time()
        } else if lower.contains("url") || lower.contains("website") {
            "https://example.com".to_string()
        } else if lower == "firstname" {
            ["Ada", "Grace", "Alan", "Edsger"][self.rng.usize(..4)].to_string()
        } else if lower == "lastname" {
            ["Lovelace", "Hopper", "Turing", "Dijkstra"][self.rng.usize(..4)].to_string()
        } else if lower == "name" || lower.ends_with("name") {
            format!("Sample {}", &id(&mut self.rng)[..6])
        } else if lower == "timezone" {
            "America/New_York".to_string()
        } else if lower == "country" {
            "US".to_string()
        } else {
            format!("string-{}", &id(&mut self.rng)[..8].to_lowercase())
        }
    }

    fn email(&mut self) -> String {
        format!("user.{}@example.com", &id(&mut self.rng)[..8].to_lowercase())
    }

    fn date_time(&mut self) -> String {
        let day = self.rng.u32(1..=28);
        let hour = self.rng.u32(0..24);
        let minute = self.rng.u32(0..60);
        format!("2026-{:02}-{day:02}T{hour:02}:{minute:02}:00.000Z", self.rng.u32(1..=12))
    }
}

fn uuid_from(rng: &mut fastrand::Rng) -> String {
    let bytes: [u8; 16] = std::array::from_fn(|_| rng.u8(..));
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

fn fit_length(mut text: String, min: usize, max: Option<usize>) -> String {
    while text.chars().count() < min {
        text.push('x');
    }
    if let Some(max) = max {
        if text.chars().count() > max {
            text = text.chars().take(max).collect();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_seed_gives_the_same_value() {
        let schema = json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}});
        assert_eq!(Generator::new(7, false).value(&schema), Generator::new(7, false).value(&schema));
    }

    #[test]
    fn ids_are_twenty_alphanumeric_characters() {
        let v =
            Generator::new(1, false).value(&json!({"type": "object", "properties": {"contactId": {"type": "string"}}}));
        let id = v["contactId"].as_str().unwrap();
        assert_eq!(id.len(), 20);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn bounds_and_lengths_are_respected() {
        let schema = json!({"type": "object", "properties": {
            "n": {"type": "integer", "minimum": 5, "maximum": 6},
            "s": {"type": "string", "minLength": 30, "maxLength": 31},
            "l": {"type": "array", "minItems": 3, "items": {"type": "boolean"}}}});
        let v = Generator::new(3, false).value(&schema);
        assert!((5..=6).contains(&v["n"].as_i64().unwrap()));
        assert!(v["s"].as_str().unwrap().len() >= 30);
        assert_eq!(v["l"].as_array().unwrap().len(), 3);
    }
}
