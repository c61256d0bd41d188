//! Values generated from a JSON Schema, repeatable for a given seed.
//!
//! The generator aims at values a HighLevel client would recognise: a
//! `format`, else the property's name, says what a string is (ids are 20
//! alphanumeric characters, `createdAt` is an ISO 8601 moment, `phone` is
//! E.164, `currency` is ISO 4217), and the fields of one object agree with
//! each other (one person's first name, last name and email; one place's
//! city, state and timezone; `createdAt` never after `updatedAt`). A
//! property's own `example` is used when the caller allows it. Vocabulary and
//! calendar arithmetic live in [`words`].
//!
//! Every generator is bounded, whatever the schema asks: string lengths,
//! array and object sizes, nesting depth, and the whole value's size. A bound
//! that cut something is reported by [`Generator::clamped`], so the loader can
//! warn about it.
//!
//! It does not promise validity for every schema (a `pattern` or a
//! contradictory `allOf` can defeat it); callers check the result with the
//! compiled validator.

pub(crate) mod words;

use std::fmt;

use serde_json::{Map, Number, Value};
use words::{Kind, Style};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Beyond this depth only required properties are generated, and arrays are empty.
const DEEP: usize = 6;
/// Beyond this depth a value is cut to `null` (and the cut reported).
pub const MAX_DEPTH: usize = 24;
/// The longest string generated, whatever `minLength` asks.
pub const MAX_STRING: usize = 4096;
/// The most items of one array, whatever `minItems` asks.
pub const MAX_ITEMS: usize = 64;
/// The most properties of one object, whatever `minProperties` asks.
pub const MAX_PROPERTIES: usize = 64;
/// The most values (of any kind, nested ones included) in one generated value.
pub const MAX_NODES: usize = 20_000;
/// The most bytes of string content in one generated value.
pub const MAX_BYTES: usize = 1 << 20;
/// Clamps recorded per value; one is enough to warn, a few help to find them.
const MAX_CLAMPS: usize = 8;

/// A HighLevel-shaped id: 20 alphanumeric characters.
pub fn id(rng: &mut fastrand::Rng) -> String {
    (0..20).map(|_| ALNUM[rng.usize(..ALNUM.len())] as char).collect()
}

/// Which bound cut a generated value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    MinLength,
    MinItems,
    MinProperties,
    Depth,
    Size,
}

/// One place where a generated value was cut to stay bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clamp {
    /// JSON pointer into the generated value.
    pub pointer: String,
    pub limit: Limit,
    /// What the schema asked for (the depth reached, for [`Limit::Depth`]).
    pub asked: u64,
}

impl fmt::Display for Clamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (at, asked) = (&self.pointer, self.asked);
        match self.limit {
            Limit::MinLength => write!(f, "minLength {asked} at '{at}' cut to {MAX_STRING}"),
            Limit::MinItems => write!(f, "minItems {asked} at '{at}' cut to {MAX_ITEMS}"),
            Limit::MinProperties => write!(f, "minProperties {asked} at '{at}' cut to {MAX_PROPERTIES}"),
            Limit::Depth => write!(f, "nesting deeper than {MAX_DEPTH} at '{at}' cut to null"),
            Limit::Size => {
                write!(f, "value reached {MAX_NODES} parts or {MAX_BYTES} bytes of text at '{at}'; the rest left out")
            }
        }
    }
}

/// What the fields of one object share, chosen when the first needs it.
#[derive(Default)]
struct Siblings {
    person: Option<(usize, usize)>,
    place: Option<usize>,
    company: Option<usize>,
    /// The moment the object was created; its other moments follow it.
    base: Option<i64>,
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
    /// Where in the value being generated we are, as pointer segments.
    path: Vec<String>,
    siblings: Vec<Siblings>,
    nodes: usize,
    bytes: usize,
    spent: bool,
    clamped: Vec<Clamp>,
}

impl Generator {
    pub fn new(seed: u64, use_examples: bool) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            use_examples,
            variant: 0,
            minimal: false,
            path: Vec::new(),
            siblings: Vec::new(),
            nodes: 0,
            bytes: 0,
            spent: false,
            clamped: Vec::new(),
        }
    }

    /// A value for `schema`, within the bounds of this module.
    pub fn value(&mut self, schema: &Value) -> Value {
        self.path.clear();
        self.siblings.clear();
        self.clamped.clear();
        (self.nodes, self.bytes, self.spent) = (0, 0, false);
        self.gen(schema, None, 0)
    }

    /// Where the last [`value`](Self::value) was cut to stay bounded (at most a
    /// few places; empty when nothing was cut).
    pub fn clamped(&self) -> &[Clamp] {
        &self.clamped
    }

    fn gen(&mut self, schema: &Value, name: Option<&str>, depth: usize) -> Value {
        let Value::Object(s) = schema else {
            return self.unknown(name);
        };
        if depth > MAX_DEPTH {
            self.clamp(Limit::Depth, depth as u64);
            return Value::Null;
        }
        if !self.spend() {
            return empty_of(type_of(s));
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
        match type_of(s) {
            "object" => self.object(s, depth),
            "array" => self.array(s, name, depth),
            "string" => Value::String(self.string(s, name)),
            "integer" => self.number(s, name.unwrap_or(""), true),
            "number" => self.number(s, name.unwrap_or(""), false),
            "boolean" => Value::Bool(boolean(name.unwrap_or(""))),
            "null" => Value::Null,
            _ => self.unknown(name),
        }
    }

    /// A value for a schema that says nothing: a string its name suggests.
    fn unknown(&mut self, name: Option<&str>) -> Value {
        let text = self.text(name);
        Value::String(self.charge(text))
    }

    fn object(&mut self, s: &Map<String, Value>, depth: usize) -> Value {
        self.siblings.push(Siblings::default());
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
                let value = self.at(key, |g| g.gen(sub, Some(key), depth + 1));
                out.insert(key.clone(), value);
            }
        }
        for key in required {
            if !out.contains_key(key) {
                let value = self.at(key, |g| g.unknown(Some(key)));
                out.insert(key.to_string(), value);
            }
        }
        let asked = s.get("minProperties").and_then(Value::as_u64).unwrap_or(0);
        if asked > out.len() as u64 {
            let wanted = self.cap(asked, MAX_PROPERTIES, Limit::MinProperties);
            let extra = s.get("additionalProperties").filter(|a| a.is_object());
            let mut n = out.len();
            while out.len() < wanted && !self.spent {
                n += 1;
                let key = format!("field{n}");
                if out.contains_key(&key) {
                    continue;
                }
                let value = self.at(&key, |g| match extra {
                    Some(extra) => g.gen(extra, Some(&key), depth + 1),
                    None => g.unknown(Some(&key)),
                });
                out.insert(key, value);
            }
        }
        self.order_pairs(&mut out);
        self.siblings.pop();
        Value::Object(out)
    }

    fn array(&mut self, s: &Map<String, Value>, name: Option<&str>, depth: usize) -> Value {
        let asked = s.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        let min = self.cap(asked, MAX_ITEMS, Limit::MinItems);
        let max = s.get("maxItems").and_then(Value::as_u64).map(|m| m as usize).unwrap_or(usize::MAX);
        let singular = name.map(words::singular);
        let singular = singular.as_deref();
        let items = s.get("items");
        // Items the schema says nothing about get a value only when the
        // array's name says what they are (`tags`, `contactIds`); otherwise
        // the array is left as short as allowed rather than filled with
        // guesses. NestJS renders `type: [Array]` as items `{"type": "array"}`
        // with no items of their own: the same ignorance, one level down.
        let informative = singular.is_some_and(|n| informative(words::kind_of(n)));
        let says_nothing = match items {
            None => !informative,
            Some(Value::Object(m)) if m.is_empty() => !informative,
            Some(Value::Object(m)) => m.len() == 1 && m.get("type") == Some(&Value::from("array")),
            Some(_) => false,
        };
        let wanted = if self.minimal || depth >= DEEP || says_nothing { min } else { min.max(1) }.min(max);
        let open = Value::Object(Map::new());
        let items = items.unwrap_or(&open);
        let unique = s.get("uniqueItems") == Some(&Value::Bool(true));
        let mut out: Vec<Value> = Vec::with_capacity(wanted);
        let mut tries = 0;
        while out.len() < wanted && tries < wanted * 4 && !self.spent {
            tries += 1;
            let value = self.at(&out.len().to_string(), |g| g.gen(items, singular, depth + 1));
            if unique && out.contains(&value) {
                continue;
            }
            out.push(value);
        }
        Value::Array(out)
    }

    fn string(&mut self, s: &Map<String, Value>, name: Option<&str>) -> String {
        let format = s.get("format").and_then(Value::as_str).unwrap_or("");
        let text = match format {
            "date-time" => self.moment_text(name, Style::DateTime),
            "date" => self.moment_text(name, Style::Date),
            "time" => format!("{:02}:{:02}:00", self.rng.u32(8..18), 15 * self.rng.u32(0..4)),
            "email" | "idn-email" => self.email(),
            "uri" | "url" | "uri-reference" | "iri" => match name.map(words::kind_of) {
                Some(Kind::ImageUrl) => self.image_url(),
                _ => self.page_url(),
            },
            "uuid" => uuid_from(&mut self.rng),
            "phone" | "phone-number" | "tel" => self.phone(),
            "ipv4" => "192.0.2.10".to_string(),
            "ipv6" => "2001:db8::10".to_string(),
            "hostname" => "app.example.com".to_string(),
            "byte" => "aGlnaGxldmVs".to_string(),
            _ => self.text(name),
        };
        let asked = s.get("minLength").and_then(Value::as_u64).unwrap_or(0);
        let min = self.cap(asked, MAX_STRING, Limit::MinLength);
        let max = s.get("maxLength").and_then(Value::as_u64).map(|m| m as usize);
        let text = self.fit(text, min, max);
        self.charge(text)
    }

    /// A string chosen by the property name, the way HighLevel fills it.
    fn text(&mut self, name: Option<&str>) -> String {
        let Some(full) = name else { return self.word() };
        // `firstNameLowerCase`, `emailLowerCase`: the same field, lowercased.
        let stem = full.strip_suffix("LowerCase").or_else(|| full.strip_suffix("Lowercase"));
        let name = stem.unwrap_or(full);
        let text = match words::kind_of(name) {
            Kind::Id => id(&mut self.rng),
            Kind::Email => self.email(),
            Kind::Phone => self.phone(),
            Kind::DateTime => self.moment_text(Some(name), Style::DateTime),
            Kind::BirthDate => {
                // 1960-01-01 to 2005-12-31.
                words::format(self.rng.i64(-315_619_200_000..=1_136_073_599_999), Style::Date)
            }
            Kind::Url => self.page_url(),
            Kind::ImageUrl => self.image_url(),
            Kind::Domain => pick(&mut self.rng, &["example.com", "app.example.com", "www.example.com"]).to_string(),
            Kind::FirstName => words::FIRST[self.person().0].to_string(),
            Kind::LastName => words::LAST[self.person().1].to_string(),
            Kind::FullName => self.full_name(),
            Kind::CompanyName => self.company_name(),
            Kind::Name => self.name_of(name),
            Kind::FileName => format!("{}-{}.pdf", pick(&mut self.rng, words::TAGS), self.rng.u32(100..1000)),
            Kind::Address1 => format!("{} {}", self.rng.u32(100..10_000), pick(&mut self.rng, words::STREETS)),
            Kind::Address2 => format!("Suite {}", self.rng.u32(100..1000)),
            Kind::City => self.place().city.to_string(),
            Kind::State => self.place().state.to_string(),
            Kind::Country => self.place().country.to_string(),
            Kind::PostalCode => self.place().postal_code.to_string(),
            Kind::Timezone => self.place().timezone.to_string(),
            Kind::Currency => self.place().currency.to_string(),
            Kind::Color => format!("#{:06x}", self.rng.u32(..0x0100_0000)),
            Kind::Status => pick(&mut self.rng, words::STATUSES).to_string(),
            Kind::Title => pick(&mut self.rng, words::TITLES).to_string(),
            Kind::Sentence => pick(&mut self.rng, words::SENTENCES).to_string(),
            Kind::Html => format!("<p>{}</p>", pick(&mut self.rng, words::SENTENCES)),
            Kind::Tag => pick(&mut self.rng, words::TAGS).to_string(),
            Kind::Slug => {
                let adjective = pick(&mut self.rng, words::ADJECTIVES);
                format!("{}-{}", adjective, pick(&mut self.rng, words::NOUNS)).to_ascii_lowercase()
            }
            Kind::Language => "en".to_string(),
            Kind::Token => format!("{}{}", id(&mut self.rng), id(&mut self.rng)),
            Kind::TokenType => "Bearer".to_string(),
            Kind::Version => format!("1.{}.{}", self.rng.u32(0..10), self.rng.u32(0..10)),
            Kind::Recurrence => {
                pick(&mut self.rng, &["FREQ=WEEKLY;BYDAY=MO", "FREQ=DAILY;COUNT=5", "FREQ=MONTHLY;BYMONTHDAY=1"])
                    .to_string()
            }
            Kind::Source => pick(&mut self.rng, words::SOURCES).to_string(),
            Kind::Word => self.word(),
        };
        if stem.is_some() {
            text.to_lowercase()
        } else {
            text
        }
    }

    fn word(&mut self) -> String {
        pick(&mut self.rng, words::WORDS).to_string()
    }

    /// `productName` names a product; a bare `name` names what holds it.
    fn name_of(&mut self, name: &str) -> String {
        let noun = if name.eq_ignore_ascii_case("name") {
            self.parent()
        } else {
            name.get(..name.len().saturating_sub(4)).map(str::to_string)
        };
        match noun.filter(|n| !n.is_empty()) {
            Some(n) if words::is_person(&n) => self.full_name(),
            Some(n) if words::is_business(&n) => self.company_name(),
            Some(n) if n.eq_ignore_ascii_case("tag") => pick(&mut self.rng, words::TAGS).to_string(),
            Some(n) => format!("{} {}", pick(&mut self.rng, words::ADJECTIVES), words::last_word_titled(&n)),
            None => format!("{} {}", pick(&mut self.rng, words::ADJECTIVES), pick(&mut self.rng, words::NOUNS)),
        }
    }

    /// The singular name of the nearest enclosing property that names a thing.
    fn parent(&self) -> Option<String> {
        self.path
            .iter()
            .rev()
            .skip(1)
            .find(|seg| !seg.bytes().all(|b| b.is_ascii_digit()) && !words::is_container(seg))
            .map(|seg| words::singular(seg))
    }

    fn full_name(&mut self) -> String {
        let (first, last) = self.person();
        format!("{} {}", words::FIRST[first], words::LAST[last])
    }

    fn email(&mut self) -> String {
        let (first, last) = self.person();
        format!("{}.{}@example.com", words::FIRST[first], words::LAST[last]).to_ascii_lowercase()
    }

    /// E.164, in the 555-01xx range reserved for fiction.
    fn phone(&mut self) -> String {
        format!("+1{}555{:04}", pick(&mut self.rng, words::AREA_CODES), self.rng.u32(100..200))
    }

    fn page_url(&mut self) -> String {
        let slug = format!("{}-{}", pick(&mut self.rng, words::ADJECTIVES), pick(&mut self.rng, words::NOUNS));
        format!("https://www.example.com/{}", slug.to_ascii_lowercase())
    }

    fn image_url(&mut self) -> String {
        format!("https://assets.example.com/images/{}.png", &id(&mut self.rng)[..12])
    }

    fn company_name(&mut self) -> String {
        let rng = &mut self.rng;
        let i = match self.siblings.last_mut() {
            Some(s) => *s.company.get_or_insert_with(|| rng.usize(..words::COMPANIES.len())),
            None => rng.usize(..words::COMPANIES.len()),
        };
        words::COMPANIES[i].to_string()
    }

    fn person(&mut self) -> (usize, usize) {
        let rng = &mut self.rng;
        let mut fresh = || (rng.usize(..words::FIRST.len()), rng.usize(..words::LAST.len()));
        match self.siblings.last_mut() {
            Some(s) => *s.person.get_or_insert_with(fresh),
            None => fresh(),
        }
    }

    fn place(&mut self) -> &'static words::Place {
        let rng = &mut self.rng;
        let i = match self.siblings.last_mut() {
            Some(s) => *s.place.get_or_insert_with(|| rng.usize(..words::PLACES.len())),
            None => rng.usize(..words::PLACES.len()),
        };
        &words::PLACES[i]
    }

    fn moment_text(&mut self, name: Option<&str>, style: Style) -> String {
        let ms = self.moment(name);
        words::format(ms, style)
    }

    /// A moment in epoch milliseconds: `createdAt`, `dateAdded` and
    /// `startTime` at the object's base moment, the fields that follow them
    /// a little later, anything else anywhere in the range.
    fn moment(&mut self, name: Option<&str>) -> i64 {
        match name.map(role) {
            Some(Role::Early) => self.base(),
            Some(late @ (Role::Updated | Role::EndTime | Role::EndDate)) => {
                let base = self.base();
                base + self.gap(late)
            }
            _ => self.rng.i64(words::EARLIEST_MS..=words::LATEST_MS),
        }
    }

    fn base(&mut self) -> i64 {
        // Leaves room for the later moments within the range.
        let range = words::EARLIEST_MS..=words::LATEST_MS - 61 * words::DAY_MS;
        let rng = &mut self.rng;
        match self.siblings.last_mut() {
            Some(s) => *s.base.get_or_insert_with(|| rng.i64(range)),
            None => rng.i64(range),
        }
    }

    fn gap(&mut self, late: Role) -> i64 {
        match late {
            Role::EndTime => pick(&mut self.rng, &[30, 45, 60, 90]) * words::MINUTE_MS,
            Role::EndDate => self.rng.i64(1..=30) * words::DAY_MS,
            _ => self.rng.i64(0..=60 * words::DAY_MS),
        }
    }

    /// Puts each later moment (`updatedAt`, `dateUpdated`, `endTime`) after
    /// its earlier sibling, for values that did not come from one base (an
    /// example beside a generated value).
    fn order_pairs(&mut self, out: &mut Map<String, Value>) {
        let pairs: Vec<(String, String)> = out
            .keys()
            .filter(|k| role(k) == Role::Early)
            .filter_map(|k| later_of(k).filter(|l| out.contains_key(l)).map(|l| (k.clone(), l)))
            .collect();
        for (early, late) in pairs {
            let fixed = match (out.get(&early), out.get(&late)) {
                (Some(Value::String(a)), Some(Value::String(b))) => match (words::parse(a), words::parse(b)) {
                    (Some((a, _)), Some((b, style))) if b < a => {
                        let gap = self.gap(role(&late));
                        Some(Value::String(words::format(a + gap, style)))
                    }
                    _ => None,
                },
                (Some(a @ Value::Number(na)), Some(Value::Number(nb))) if nb.as_f64() < na.as_f64() => Some(a.clone()),
                _ => None,
            };
            if let Some(value) = fixed {
                out.insert(late, value);
            }
        }
    }

    /// A number honouring `minimum`, `maximum` and `multipleOf`; where the
    /// schema leaves them open, a range the name suggests. Whole numbers are
    /// written as integers, money with two decimals at most.
    fn number(&mut self, s: &Map<String, Value>, name: &str, integral: bool) -> Value {
        let min = s.get("minimum").and_then(Value::as_f64);
        let max = s.get("maximum").and_then(Value::as_f64);
        let step = s.get("multipleOf").and_then(Value::as_f64).filter(|m| *m > 0.0);
        let excl_min = s.get("exclusiveMinimum") == Some(&Value::Bool(true));
        let excl_max = s.get("exclusiveMaximum") == Some(&Value::Bool(true));
        let money = words::is_money(name);
        if min.is_none() && max.is_none() && step.is_none() && words::is_instant(name) {
            return Value::Number(Number::from(self.moment(Some(name))));
        }
        let (dlo, dhi) = default_range(name, money);
        let hi = max.unwrap_or(if min.is_some_and(|m| m > dhi) { min.unwrap_or(0.0) + 100.0 } else { dhi });
        let lo = min.unwrap_or(if dlo <= hi { dlo } else { hi - 100.0 });
        let hi = hi.max(lo);
        if let Some(step) = step {
            let mut k_lo = (lo / step).ceil() as i64;
            let mut k_hi = (hi / step).floor() as i64;
            if excl_min && k_lo as f64 * step <= lo {
                k_lo = k_lo.saturating_add(1);
            }
            if excl_max && k_hi as f64 * step >= hi {
                k_hi = k_hi.saturating_sub(1);
            }
            let k = self.rng.i64(k_lo..=k_hi.max(k_lo));
            let value = round_to(k as f64 * step, step);
            return if integral || value.fract() == 0.0 { whole(value) } else { decimal(value) };
        }
        if integral || !(money || hi - lo < 2.0) {
            let lo = if excl_min && lo.fract() == 0.0 { lo + 1.0 } else { lo.ceil() };
            let hi = if excl_max && hi.fract() == 0.0 { hi - 1.0 } else { hi.floor() };
            let (lo, hi) = (lo as i64, hi as i64);
            return Value::Number(Number::from(self.rng.i64(lo..=hi.max(lo))));
        }
        // Cents, so that money has two decimals at most.
        let lo_c = (lo * 100.0).ceil() as i64 + i64::from(excl_min && (lo * 100.0).fract() == 0.0);
        let hi_c = (hi * 100.0).floor() as i64 - i64::from(excl_max && (hi * 100.0).fract() == 0.0);
        decimal(self.rng.i64(lo_c..=hi_c.max(lo_c)) as f64 / 100.0)
    }

    /// Pads `text` up to `min` characters (before the `@` of an email, with
    /// words after a phrase) and cuts it at `max`.
    fn fit(&mut self, mut text: String, min: usize, max: Option<usize>) -> String {
        let mut count = text.chars().count();
        if count < min {
            if text.contains(' ') {
                while count < min {
                    let word = pick(&mut self.rng, words::WORDS);
                    text.push(' ');
                    text.push_str(word);
                    count += 1 + word.len();
                }
            } else {
                let pad: String =
                    (count..min).map(|_| LOWER_ALNUM[self.rng.usize(..LOWER_ALNUM.len())] as char).collect();
                match text.find('@') {
                    Some(at) => text.insert_str(at, &pad),
                    None => text.push_str(&pad),
                }
                count = min;
            }
        }
        if let Some(max) = max.filter(|m| count > *m) {
            text = text.chars().take(max).collect();
        }
        text
    }

    /// Runs `f` one step deeper into the value, at `segment`.
    fn at<T>(&mut self, segment: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(segment.to_string());
        let out = f(self);
        self.path.pop();
        out
    }

    /// Counts one more part of the value; false once the budget is spent.
    fn spend(&mut self) -> bool {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.exhaust();
        }
        !self.spent
    }

    /// Counts a string's bytes against the budget; past it, the string is empty.
    fn charge(&mut self, text: String) -> String {
        self.bytes += text.len();
        if self.bytes > MAX_BYTES {
            self.exhaust();
            return String::new();
        }
        text
    }

    fn exhaust(&mut self) {
        if !self.spent {
            self.spent = true;
            self.clamp(Limit::Size, MAX_NODES as u64);
        }
    }

    /// `asked`, or `cap` (reported) when it asks for more.
    fn cap(&mut self, asked: u64, cap: usize, limit: Limit) -> usize {
        if asked > cap as u64 {
            self.clamp(limit, asked);
            cap
        } else {
            asked as usize
        }
    }

    fn clamp(&mut self, limit: Limit, asked: u64) {
        if self.clamped.len() >= MAX_CLAMPS {
            return;
        }
        let pointer: String =
            self.path.iter().map(|seg| format!("/{}", seg.replace('~', "~0").replace('/', "~1"))).collect();
        // The same cut in every item of an array is one cut.
        if !self.clamped.iter().any(|c| c.limit == limit && same_place(&c.pointer, &pointer)) {
            self.clamped.push(Clamp { pointer, limit, asked });
        }
    }
}

/// Where a moment sits among its siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `createdAt`, `dateAdded`, `startTime`, `startDate`.
    Early,
    /// `updatedAt`, `dateUpdated`.
    Updated,
    /// `endTime`: shortly after its start.
    EndTime,
    /// `endDate` and other ends: days after the start.
    EndDate,
    Free,
}

fn role(name: &str) -> Role {
    if ["created", "Created", "Added", "Start"].iter().any(|w| name.contains(w)) || name.starts_with("start") {
        Role::Early
    } else if name.contains("updated") || name.contains("Updated") {
        Role::Updated
    } else if name.starts_with("end") || name.contains("End") {
        if name.ends_with("Time") {
            Role::EndTime
        } else {
            Role::EndDate
        }
    } else {
        Role::Free
    }
}

/// The sibling that must not come before `early`: `createdAt` → `updatedAt`,
/// `dateAdded` → `dateUpdated`, `startTime` → `endTime`.
fn later_of(early: &str) -> Option<String> {
    [("created", "updated"), ("Created", "Updated"), ("Added", "Updated"), ("start", "end"), ("Start", "End")]
        .iter()
        .find_map(|(from, to)| early.find(from).map(|i| format!("{}{to}{}", &early[..i], &early[i + from.len()..])))
}

fn same_place(a: &str, b: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || (digits(x) && digits(y)))
}

fn type_of(s: &Map<String, Value>) -> &str {
    match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
        _ if s.contains_key("properties") => "object",
        _ if s.contains_key("items") => "array",
        _ => "any",
    }
}

/// The cheapest value of a type, for when the budget is spent.
fn empty_of(ty: &str) -> Value {
    match ty {
        "object" => Value::Object(Map::new()),
        "array" => Value::Array(Vec::new()),
        "string" => Value::String(String::new()),
        "integer" | "number" => Value::Number(Number::from(0)),
        "boolean" => Value::Bool(false),
        _ => Value::Null,
    }
}

/// True where an array's name alone says what its items are.
fn informative(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Id
            | Kind::Email
            | Kind::Phone
            | Kind::Url
            | Kind::ImageUrl
            | Kind::Tag
            | Kind::DateTime
            | Kind::Domain
            | Kind::Color
            | Kind::Currency
            | Kind::Country
    )
}

/// Flags that are off in a typical record (`deleted`, `dnd`) are false; the rest true.
fn boolean(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    !["deleted", "archived", "disabled", "blocked", "spam", "dnd", "error", "failed"].iter().any(|w| l.contains(w))
}

/// The range a number's name suggests when the schema gives none.
fn default_range(name: &str, money: bool) -> (f64, f64) {
    if money {
        return (5.0, 5000.0);
    }
    match name.to_ascii_lowercase().as_str() {
        "page" | "currentpage" | "nextpage" | "prevpage" => (1.0, 5.0),
        "limit" | "pagesize" | "perpage" => (20.0, 20.0),
        "statuscode" => (200.0, 200.0),
        "expires_in" | "expiresin" => (86_399.0, 86_399.0),
        "position" | "index" | "order" | "sortorder" => (0.0, 10.0),
        _ => (0.0, 100.0),
    }
}

fn round_to(value: f64, step: f64) -> f64 {
    let mut decimals = 0;
    while decimals < 10 && (step * 10f64.powi(decimals)).fract().abs() > 1e-9 {
        decimals += 1;
    }
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn whole(value: f64) -> Value {
    Value::Number(Number::from(value.round() as i64))
}

fn decimal(value: f64) -> Value {
    Number::from_f64(value).map(Value::Number).unwrap_or(Value::Null)
}

fn pick<T: Copy>(rng: &mut fastrand::Rng, from: &[T]) -> T {
    from[rng.usize(..from.len())]
}

fn uuid_from(rng: &mut fastrand::Rng) -> String {
    let bytes: [u8; 16] = std::array::from_fn(|_| rng.u8(..));
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
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

    fn strings_of(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|i| strings_of(i, out)),
            Value::Object(map) => map.values().for_each(|v| strings_of(v, out)),
            _ => {}
        }
    }

    fn millis(text: &str) -> i64 {
        words::parse(text).unwrap_or_else(|| panic!("not a date: {text}")).0
    }

    #[test]
    fn date_time_fields_are_iso_8601_in_a_sane_range() {
        let schema = json!({"type": "object", "properties": {
            "when": {"type": "string", "format": "date-time"},
            "createdAt": {"type": "string"}, "lastMessageDate": {"type": "string"}, "updatedAt": {"type": "string"}}});
        for seed in 0..300 {
            let v = Generator::new(seed, false).value(&schema);
            for key in ["when", "createdAt", "lastMessageDate", "updatedAt"] {
                let text = v[key].as_str().unwrap();
                let b = text.as_bytes();
                assert!(text.len() == 24 && b[10] == b'T' && b[19] == b'.' && text.ends_with('Z'), "{key}: {text}");
                assert!((words::EARLIEST_MS..=words::LATEST_MS).contains(&millis(text)), "{key}: {text}");
            }
        }
    }

    #[test]
    fn dates_are_year_month_day() {
        let schema = json!({"type": "object", "properties": {
            "day": {"type": "string", "format": "date"}, "dateOfBirth": {"type": "string"}}});
        let v = Generator::new(4, false).value(&schema);
        for key in ["day", "dateOfBirth"] {
            let text = v[key].as_str().unwrap();
            assert_eq!(words::parse(text).map(|(_, style)| style), Some(Style::Date), "{text}");
        }
        assert!(v["dateOfBirth"].as_str().unwrap() < "2006", "{v}");
    }

    #[test]
    fn created_at_is_never_after_updated_at() {
        let s = json!({"type": "string"});
        let schema = json!({"type": "object", "properties": {
            "updatedAt": s, "createdAt": s, "dateUpdated": {"type": "string", "format": "date-time"},
            "dateAdded": {"type": "string", "format": "date-time"}, "endTime": s, "startTime": s,
            "startDate": {"type": "string", "format": "date"}, "endDate": {"type": "string", "format": "date"},
            "startAfter": {"type": "number"}, "endAfter": {"type": "number"}}});
        for seed in 0..300 {
            let v = Generator::new(seed, false).value(&schema);
            for (early, late) in [
                ("createdAt", "updatedAt"),
                ("dateAdded", "dateUpdated"),
                ("startTime", "endTime"),
                ("startDate", "endDate"),
            ] {
                let (a, b) = (millis(v[early].as_str().unwrap()), millis(v[late].as_str().unwrap()));
                assert!(a <= b, "{early} after {late}: {v}");
            }
            let minutes = (millis(v["endTime"].as_str().unwrap()) - millis(v["startTime"].as_str().unwrap())) / 60_000;
            assert!((30..=90).contains(&minutes), "an appointment of {minutes} minutes: {v}");
        }
    }

    #[test]
    fn an_example_beside_a_generated_moment_is_kept_in_order() {
        let schema = json!({"type": "object", "properties": {
            "createdAt": {"type": "string", "example": "2026-12-01T10:00:00.000Z"},
            "updatedAt": {"type": "string", "format": "date-time"}}});
        for seed in 0..50 {
            let v = Generator::new(seed, true).value(&schema);
            assert_eq!(v["createdAt"], "2026-12-01T10:00:00.000Z");
            assert!(millis(v["updatedAt"].as_str().unwrap()) >= millis("2026-12-01T10:00:00.000Z"), "{v}");
        }
    }

    #[test]
    fn names_say_what_a_string_holds() {
        let names = [
            "id",
            "_id",
            "contactId",
            "email",
            "alertEmail",
            "phone",
            "currency",
            "timezone",
            "country",
            "color",
            "website",
            "url",
            "firstName",
            "lastName",
            "fullName",
            "companyName",
            "address1",
            "city",
            "state",
            "postalCode",
            "status",
            "title",
            "description",
            "message",
            "body",
            "type",
            "assignedTo",
        ];
        let props: Map<String, Value> = names.iter().map(|n| (n.to_string(), json!({"type": "string"}))).collect();
        let schema = json!({"type": "object", "properties": props});
        for seed in 0..50 {
            let v = Generator::new(seed, false).value(&schema);
            let text = |k: &str| v[k].as_str().unwrap().to_string();
            for key in ["id", "_id", "contactId", "assignedTo"] {
                assert!(text(key).len() == 20 && text(key).chars().all(|c| c.is_ascii_alphanumeric()), "{key}: {v}");
            }
            for key in ["email", "alertEmail"] {
                assert!(text(key).contains('@') && text(key).ends_with(".com"), "{key}: {v}");
            }
            let phone = text("phone");
            assert!(phone.len() == 12 && phone.starts_with("+1") && phone[1..].bytes().all(|b| b.is_ascii_digit()));
            assert!(["USD", "CAD", "GBP", "AUD"].contains(&text("currency").as_str()), "{v}");
            assert!(text("timezone").contains('/'), "{v}");
            assert!(text("country").len() == 2 && text("country").chars().all(|c| c.is_ascii_uppercase()), "{v}");
            assert!(text("color").len() == 7 && text("color").starts_with('#'), "{v}");
            for key in ["website", "url"] {
                assert!(text(key).starts_with("https://"), "{key}: {v}");
            }
            assert!(text("message").ends_with(['.', '!', '?']) && text("message").contains(' '), "{v}");
            let mut all = Vec::new();
            strings_of(&v, &mut all);
            assert!(all.iter().all(|s| !s.starts_with("string-") && !s.is_empty()), "{v}");
        }
    }

    #[test]
    fn one_objects_person_and_place_agree() {
        let s = json!({"type": "string"});
        let schema = json!({"type": "object", "properties": {"contact": {"type": "object", "properties": {
            "firstName": s, "lastName": s, "name": s, "email": s, "city": s, "state": s, "timezone": s}}}});
        for seed in 0..50 {
            let v = &Generator::new(seed, false).value(&schema)["contact"];
            let (first, last) = (v["firstName"].as_str().unwrap(), v["lastName"].as_str().unwrap());
            assert_eq!(v["name"], format!("{first} {last}"));
            assert_eq!(v["email"], format!("{first}.{last}@example.com").to_ascii_lowercase());
            let place = words::PLACES.iter().find(|p| v["city"] == p.city).unwrap();
            assert_eq!((v["state"].as_str(), v["timezone"].as_str()), (Some(place.state), Some(place.timezone)));
        }
    }

    #[test]
    fn a_name_is_named_after_what_holds_it() {
        let schema = json!({"type": "object", "properties": {
            "pipelines": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "location": {"type": "object", "properties": {"name": {"type": "string"}}}}});
        let v = Generator::new(2, false).value(&schema);
        assert!(v["pipelines"][0]["name"].as_str().unwrap().ends_with(" Pipeline"), "{v}");
        assert!(words::COMPANIES.contains(&v["location"]["name"].as_str().unwrap()), "{v}");
    }

    #[test]
    fn formats_are_honoured() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "string", "format": "email"}, "b": {"type": "string", "format": "uri"},
            "c": {"type": "string", "format": "uuid"}, "d": {"type": "string", "format": "phone"}}});
        let validator = crate::spec::schema::compile(&schema).unwrap();
        for seed in 0..50 {
            let v = Generator::new(seed, false).value(&schema);
            assert!(validator.is_valid(&v), "{v}");
            assert!(v["b"].as_str().unwrap().starts_with("https://"));
            assert!(uuid::Uuid::parse_str(v["c"].as_str().unwrap()).is_ok());
            assert!(v["d"].as_str().unwrap().starts_with("+1"));
        }
    }

    #[test]
    fn whole_numbers_are_written_as_integers() {
        let schema = json!({"type": "object", "properties": {
            "total": {"type": "number"}, "count": {"type": "integer"}, "step": {"type": "number", "multipleOf": 5}}});
        for seed in 0..50 {
            let text = serde_json::to_string(&Generator::new(seed, false).value(&schema)).unwrap();
            assert!(!text.contains('.'), "{text}");
        }
    }

    #[test]
    fn money_is_positive_with_two_decimals_at_most() {
        let schema = json!({"type": "object", "properties": {
            "amount": {"type": "number"}, "monetaryValue": {"type": "number"}, "price": {"type": "number"}}});
        for seed in 0..200 {
            let v = Generator::new(seed, false).value(&schema);
            for key in ["amount", "monetaryValue", "price"] {
                let n = v[key].as_f64().unwrap();
                assert!(n > 0.0, "{key}: {n}");
                let written = v[key].to_string();
                assert!(written.split('.').nth(1).is_none_or(|d| d.len() <= 2), "{key}: {written}");
            }
        }
    }

    #[test]
    fn numbers_honour_minimum_maximum_and_multiple_of() {
        let schema = json!({"type": "object", "properties": {
            "ratio": {"type": "number", "minimum": 0, "maximum": 1},
            "quarter": {"type": "number", "minimum": 1, "maximum": 3, "multipleOf": 0.25},
            "above": {"type": "integer", "minimum": 10, "exclusiveMinimum": true, "maximum": 11},
            "big": {"type": "integer", "minimum": 1000}}});
        let validator = crate::spec::schema::compile(&schema).unwrap();
        for seed in 0..200 {
            let v = Generator::new(seed, false).value(&schema);
            assert!(validator.is_valid(&v), "{v}");
            assert_eq!(v["above"], 11);
        }
    }

    #[test]
    fn arrays_of_objects_generate_objects_not_nested_strings() {
        let stage = json!({"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}});
        let schema = json!({"type": "object", "properties": {
            "stages": {"type": "array", "items": stage},
            "grid": {"type": "array", "items": {"type": "array", "items": stage}}}});
        let v = Generator::new(1, false).value(&schema);
        assert_eq!(v["stages"][0]["id"].as_str().map(str::len), Some(20), "{v}");
        assert_eq!(v["grid"][0][0]["id"].as_str().map(str::len), Some(20), "{v}");
    }

    #[test]
    fn arrays_whose_items_say_nothing_are_filled_only_when_their_name_does() {
        // The official pipelines schema: NestJS's `type: [Array]` for stages.
        let schema = json!({"type": "object", "properties": {
            "stages": {"type": "array", "items": {"type": "array"}},
            "versions": {"type": "array"}, "tags": {"type": "array"}, "contactIds": {"type": "array", "items": {}},
            "followers": {"type": "array"}}});
        let v = Generator::new(1, false).value(&schema);
        assert_eq!(v["stages"], json!([]));
        assert_eq!(v["versions"], json!([]));
        assert_eq!(v["followers"][0].as_str().map(str::len), Some(20), "{v}");
        assert!(words::TAGS.contains(&v["tags"][0].as_str().unwrap()), "{v}");
        assert_eq!(v["contactIds"][0].as_str().map(str::len), Some(20), "{v}");
    }

    #[test]
    fn a_huge_min_length_is_clamped_and_reported() {
        let schema =
            json!({"type": "object", "properties": {"name": {"type": "string", "minLength": 1_000_000_000u64}}});
        let mut generator = Generator::new(1, false);
        let v = generator.value(&schema);
        assert_eq!(v["name"].as_str().unwrap().len(), MAX_STRING);
        assert_eq!(
            generator.clamped(),
            [Clamp { pointer: "/name".into(), limit: Limit::MinLength, asked: 1_000_000_000 }]
        );
        assert_eq!(generator.clamped()[0].to_string(), "minLength 1000000000 at '/name' cut to 4096");
    }

    #[test]
    fn huge_min_items_and_min_properties_are_clamped_and_reported() {
        let schema = json!({"type": "object", "properties": {
            "l": {"type": "array", "minItems": 1_000_000, "items": {"type": "object", "minProperties": 500}}}});
        let mut generator = Generator::new(1, false);
        let v = generator.value(&schema);
        assert_eq!(v["l"].as_array().unwrap().len(), MAX_ITEMS);
        assert_eq!(v["l"][63].as_object().unwrap().len(), MAX_PROPERTIES);
        let cuts: Vec<(&str, Limit)> = generator.clamped().iter().map(|c| (c.pointer.as_str(), c.limit)).collect();
        // The same cut in all 64 items is reported once.
        assert_eq!(cuts, [("/l", Limit::MinItems), ("/l/0", Limit::MinProperties)]);
    }

    #[test]
    fn a_value_that_would_grow_past_the_budget_is_cut_and_reported() {
        let text = json!({"type": "string", "minLength": 4096});
        let level = |items: Value| json!({"type": "array", "minItems": 64, "items": items});
        let schema = level(level(level(text)));
        let mut generator = Generator::new(1, false);
        let v = generator.value(&schema);
        assert!(serde_json::to_vec(&v).unwrap().len() < 2 * MAX_BYTES);
        assert!(generator.clamped().iter().any(|c| c.limit == Limit::Size), "{:?}", generator.clamped());
    }

    #[test]
    fn nesting_past_the_depth_limit_is_cut_and_reported() {
        let mut schema = json!({"type": "string"});
        for _ in 0..40 {
            schema = json!({"type": "object", "required": ["next"], "properties": {"next": schema}});
        }
        let mut generator = Generator::new(1, false);
        let v = generator.value(&schema);
        let pointer = "/next".repeat(MAX_DEPTH + 1);
        assert_eq!(v.pointer(&pointer), Some(&Value::Null));
        assert_eq!(generator.clamped()[0].limit, Limit::Depth);
        assert_eq!(generator.clamped()[0].pointer, pointer);
    }

    #[test]
    fn nothing_is_clamped_in_an_ordinary_schema() {
        let mut generator = Generator::new(1, false);
        generator
            .value(&json!({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}}));
        assert!(generator.clamped().is_empty());
    }

    /// Every default answer of the official corpus: no placeholder, no cut,
    /// and every generated one valid. Skipped loudly without the corpus.
    #[test]
    fn the_official_corpus_answers_with_believable_values() {
        let Some(dir) = crate::spec::shared_corpus() else { return };
        let set = crate::spec::load(crate::spec::Source::Dir(dir), 1).unwrap();
        let cut: Vec<_> =
            set.warnings.iter().filter(|w| w.kind == crate::spec::WarningKind::GeneratorClamped).collect();
        assert!(cut.is_empty(), "{cut:?}");
        let unsatisfied: Vec<_> = set.warnings.iter().filter(|w| w.message.contains("no generated answer")).collect();
        assert!(unsatisfied.is_empty(), "{unsatisfied:?}");
        let mut strings = Vec::new();
        for op in &set.operations {
            let body: Value = serde_json::from_slice(&op.success.body).unwrap();
            strings_of(&body, &mut strings);
            if op.path == "/opportunities/pipelines" {
                assert_eq!(body["pipelines"][0]["stages"], json!([]), "{body}");
            }
            // Fresh values too, as `Prefer: dynamic=true` serves them.
            if let Some(schema) = &op.success.schema {
                let fresh = super::super::generate_valid_with(schema, op.success.validator.as_deref(), 9, false);
                strings_of(&fresh.unwrap_or_else(|(v, why)| panic!("{}: {why}: {v}", op.id)), &mut strings);
            }
        }
        let placeholders: Vec<&String> = strings.iter().filter(|s| s.starts_with("string-")).collect();
        assert!(placeholders.is_empty(), "{placeholders:?}");
    }
}
