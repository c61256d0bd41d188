//! What a value of a given name looks like in HighLevel's answers: the
//! vocabulary (people, companies, places, phrases) and the calendar
//! arithmetic behind generated dates. Pure functions of a random source; the
//! walk over a schema lives in the parent module.

/// What a string property holds, judged by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Id,
    Email,
    Phone,
    DateTime,
    BirthDate,
    Url,
    ImageUrl,
    Domain,
    FirstName,
    LastName,
    FullName,
    CompanyName,
    /// `name` or `*Name`: what it names depends on where it is.
    Name,
    FileName,
    Address1,
    Address2,
    City,
    State,
    Country,
    PostalCode,
    Currency,
    Timezone,
    Color,
    Status,
    Title,
    Sentence,
    Html,
    Tag,
    Slug,
    Language,
    Token,
    TokenType,
    Version,
    Recurrence,
    Source,
    Word,
}

/// Classifies a property name (exact or suffix match, case-insensitive
/// except for the camelCase suffixes `Id`, `At`, `Date` and `Time`).
pub fn kind_of(name: &str) -> Kind {
    let l = name.to_ascii_lowercase();
    let l = l.as_str();
    let camel = |suffix: &str| name.len() > suffix.len() && name.ends_with(suffix);
    // `user` and `follower` are the singulars of HighLevel's lists of user ids.
    if matches!(l, "id" | "_id" | "uid" | "assignedto" | "createdby" | "updatedby" | "deletedby" | "user" | "follower")
        || camel("Id")
        || camel("ID")
        || l.ends_with("_id")
    {
        return Kind::Id;
    }
    if l.ends_with("email") || l.starts_with("email") || matches!(l, "fromaddress" | "toaddress" | "replyto") {
        return Kind::Email;
    }
    if l.ends_with("phone") || l.ends_with("phonenumber") || matches!(l, "fromnumber" | "tonumber" | "mobile") {
        return Kind::Phone;
    }
    if matches!(l, "dateofbirth" | "birthdate" | "birthday") {
        return Kind::BirthDate;
    }
    if camel("At")
        || l.ends_with("_at")
        || camel("Date")
        || camel("Time")
        || matches!(l, "date" | "timestamp" | "dateadded" | "dateupdated" | "datecreated" | "starttime" | "endtime")
    {
        return Kind::DateTime;
    }
    if ["image", "logo", "avatar", "photo", "thumbnail", "icon", "cover", "poster"]
        .iter()
        .any(|w| l.ends_with(w) || (l.ends_with("url") && l.contains(w)))
    {
        return Kind::ImageUrl;
    }
    if l.ends_with("url")
        || l.ends_with("uri")
        || l.ends_with("link")
        || l.ends_with("website")
        || matches!(l, "src" | "href" | "redirectto" | "attachment" | "finalurls")
    {
        return Kind::Url;
    }
    if l.ends_with("domain") || l == "hostname" {
        return Kind::Domain;
    }
    if l.ends_with("firstname") {
        return Kind::FirstName;
    }
    if l.ends_with("lastname") || l == "surname" {
        return Kind::LastName;
    }
    if matches!(
        l,
        "fullname"
            | "contactname"
            | "username"
            | "authorname"
            | "fromname"
            | "ownername"
            | "customername"
            | "sendername"
            | "displayname"
            | "assignedusername"
    ) {
        return Kind::FullName;
    }
    if matches!(l, "companyname" | "businessname" | "agencyname" | "brandname" | "legalname") {
        return Kind::CompanyName;
    }
    if matches!(l, "filename" | "file_name") {
        return Kind::FileName;
    }
    if l == "name" || l.ends_with("name") {
        return Kind::Name;
    }
    match l {
        "address" | "address1" | "address_line1" | "addressline1" | "street" | "streetaddress" => Kind::Address1,
        "address2" | "address_line2" | "addressline2" => Kind::Address2,
        "city" => Kind::City,
        "state" | "province" | "region" => Kind::State,
        "country" | "countrycode" => Kind::Country,
        "postalcode" | "postal_code" | "zip" | "zipcode" => Kind::PostalCode,
        "gender" | "type" | "role" | "channel" | "medium" | "category" => Kind::Word,
        "language" | "locale" => Kind::Language,
        "token_type" | "tokentype" => Kind::TokenType,
        "version" => Kind::Version,
        "rrule" | "recurrence" => Kind::Recurrence,
        "source" => Kind::Source,
        "tag" | "tags" | "keyword" => Kind::Tag,
        "html" | "rawhtml" => Kind::Html,
        _ if l.ends_with("currency") || l == "currencycode" => Kind::Currency,
        _ if l.ends_with("timezone") || l == "tz" => Kind::Timezone,
        _ if l.ends_with("color") || l.ends_with("colour") => Kind::Color,
        _ if l.ends_with("status") => Kind::Status,
        _ if l.ends_with("slug") => Kind::Slug,
        _ if l.ends_with("token") => Kind::Token,
        _ if ["title", "subject", "headline", "heading", "label"].iter().any(|w| l.ends_with(w)) => Kind::Title,
        _ if [
            "description",
            "message",
            "body",
            "notes",
            "note",
            "text",
            "content",
            "summary",
            "comment",
            "instructions",
            "reason",
            "question",
            "answer",
            "goal",
            "personality",
            "placeholder",
            "bio",
        ]
        .iter()
        .any(|w| l.ends_with(w)) =>
        {
            Kind::Sentence
        }
        _ => Kind::Word,
    }
}

/// True for names of amounts of money: positive, two decimals at most.
pub fn is_money(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    ["amount", "price", "revenue", "monetary"].iter().any(|w| l.contains(w))
        || ["cost", "fee", "balance", "budget", "spend", "salary", "total"]
            .iter()
            .any(|w| l.ends_with(w) && l != "total")
}

/// True for names of numbers that hold a moment in epoch milliseconds.
pub fn is_instant(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    (name.len() > 2 && name.ends_with("At"))
        || matches!(l.as_str(), "timestamp" | "dateadded" | "dateupdated" | "starttime" | "endtime" | "startafter")
}

/// The singular of an array's name, for naming its items.
pub fn singular(name: &str) -> String {
    if let Some(stem) = name.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = name.strip_suffix("sses") {
        format!("{stem}ss")
    } else if name.ends_with("ss") || name.ends_with("us") {
        name.to_string()
    } else {
        name.strip_suffix('s').unwrap_or(name).to_string()
    }
}

pub const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Maya", "Liam", "Sofia", "Noah", "Priya", "Mateo", "Chloe", "Omar", "Hana", "Lucas",
    "Amara", "Ethan", "Yuki", "Diego", "Zara", "Felix", "Nora",
];
pub const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Patel", "Garcia", "Nguyen", "Okafor", "Kim", "Rossi", "Schmidt", "Johnson",
    "Silva", "Cohen", "Tanaka", "Murphy", "Dubois", "Novak", "Haddad", "Larsen", "Williams",
];
pub const COMPANIES: &[&str] = &[
    "Lovelace Analytics",
    "Northwind Dental",
    "Blue Harbor Realty",
    "Summit Fitness Studio",
    "Maple Street Bakery",
    "Brightside Marketing",
    "Redwood Roofing Co.",
    "Clearview Chiropractic",
    "Golden Gate Law Group",
    "Evergreen Landscaping",
];

/// A place whose fields agree with each other.
pub struct Place {
    pub city: &'static str,
    pub state: &'static str,
    pub postal_code: &'static str,
    pub country: &'static str,
    pub timezone: &'static str,
    pub currency: &'static str,
}

const fn place(
    city: &'static str,
    state: &'static str,
    postal_code: &'static str,
    country: &'static str,
    timezone: &'static str,
    currency: &'static str,
) -> Place {
    Place { city, state, postal_code, country, timezone, currency }
}

pub const PLACES: &[Place] = &[
    place("Austin", "TX", "78701", "US", "America/Chicago", "USD"),
    place("Denver", "CO", "80202", "US", "America/Denver", "USD"),
    place("San Francisco", "CA", "94105", "US", "America/Los_Angeles", "USD"),
    place("New York", "NY", "10001", "US", "America/New_York", "USD"),
    place("Miami", "FL", "33131", "US", "America/New_York", "USD"),
    place("Seattle", "WA", "98101", "US", "America/Los_Angeles", "USD"),
    place("Chicago", "IL", "60601", "US", "America/Chicago", "USD"),
    place("Phoenix", "AZ", "85004", "US", "America/Phoenix", "USD"),
    place("Toronto", "ON", "M5V 2T6", "CA", "America/Toronto", "CAD"),
    place("London", "England", "SW1A 1AA", "GB", "Europe/London", "GBP"),
    place("Sydney", "NSW", "2000", "AU", "Australia/Sydney", "AUD"),
];

pub const STREETS: &[&str] =
    &["Main Street", "Oak Avenue", "Market Street", "Elm Street", "Congress Avenue", "Pine Street", "Maple Drive"];
pub const AREA_CODES: &[u32] = &[415, 212, 312, 646, 305, 512, 206, 303];
pub const SENTENCES: &[&str] = &[
    "Thanks for reaching out! We will get back to you shortly.",
    "Following up on our call earlier today.",
    "Your appointment is confirmed for next Tuesday.",
    "Please find the updated proposal attached.",
    "Looking forward to working with you.",
    "Can we move our meeting to Thursday afternoon?",
    "Reminder: your subscription renews next week.",
    "Great speaking with you, here is the summary we discussed.",
];
pub const TITLES: &[&str] = &[
    "Welcome Call",
    "Quarterly Review",
    "Spring Promotion",
    "Product Demo",
    "Onboarding Session",
    "Follow-up Meeting",
    "Monthly Newsletter",
    "Free Consultation",
];
pub const ADJECTIVES: &[&str] =
    &["Main", "Spring", "Premium", "Standard", "Weekly", "Onboarding", "Discovery", "Priority", "Summer", "Starter"];
pub const NOUNS: &[&str] = &["Campaign", "Plan", "Offer", "Workflow", "Program", "Package"];
pub const TAGS: &[&str] = &["lead", "customer", "vip", "newsletter", "webinar", "referral", "hot-lead", "follow-up"];
pub const WORDS: &[&str] =
    &["standard", "primary", "general", "default", "active", "custom", "basic", "premium", "internal", "public"];
pub const STATUSES: &[&str] = &["active", "pending", "completed", "open"];
pub const SOURCES: &[&str] = &["api", "website", "manual", "form", "integration"];

/// Containers whose name says nothing about what their items are called.
pub fn is_container(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "data"
            | "items"
            | "item"
            | "list"
            | "result"
            | "results"
            | "record"
            | "records"
            | "doc"
            | "docs"
            | "row"
            | "rows"
            | "entries"
            | "entry"
            | "value"
            | "values"
            | "response"
            | "body"
            | "meta"
            | "payload"
    )
}

/// Names of things that are people, so their `name` is a person's.
pub fn is_person(noun: &str) -> bool {
    let l = noun.to_ascii_lowercase();
    ["contact", "user", "member", "author", "owner", "follower", "assignee", "customer", "staff", "sender", "recipient"]
        .iter()
        .any(|w| l.ends_with(w))
}

/// Names of things that are businesses, so their `name` is a company's.
pub fn is_business(noun: &str) -> bool {
    let l = noun.to_ascii_lowercase();
    ["company", "business", "location", "agency", "account", "brand"].iter().any(|w| l.ends_with(w))
}

/// The last word of a camelCase or snake_case name, capitalised: `calendarEvent` → `Event`.
pub fn last_word_titled(name: &str) -> String {
    let start = name.rfind(|c: char| c.is_ascii_uppercase() || c == '_').unwrap_or(0);
    let word = name[start..].trim_start_matches('_');
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase(),
        None => String::new(),
    }
}

// --- Time ---------------------------------------------------------------

/// 2024-01-01T00:00:00.000Z, the earliest generated moment.
pub const EARLIEST_MS: i64 = 1_704_067_200_000;
/// 2026-12-31T23:59:59.999Z, the latest generated moment.
pub const LATEST_MS: i64 = 1_798_761_599_999;
pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;

/// How a date string was written, so a changed one keeps its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Date,
    DateTime,
}

/// ISO 8601 in UTC with milliseconds: `2025-03-04T05:06:07.089Z`.
pub fn iso(ms: i64) -> String {
    crate::clock::iso8601(ms)
}

pub fn format(ms: i64, style: Style) -> String {
    let mut text = iso(ms);
    if style == Style::Date {
        text.truncate(10);
    }
    text
}

/// Reads `YYYY-MM-DD`, optionally followed by `THH:MM[:SS[.fff]]` and `Z` or
/// `±HH:MM`. Anything else is not a date the generator compares.
pub fn parse(text: &str) -> Option<(i64, Style)> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = text.get(from..from + len)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day_ms = crate::clock::days_from_civil(y, m, d) * DAY_MS;
    if b.len() == 10 {
        return Some((day_ms, Style::Date));
    }
    if b.len() < 16 || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let mut ms = day_ms + num(11, 2)? * 3_600_000 + num(14, 2)? * MINUTE_MS;
    let mut at = 16;
    if b.get(at) == Some(&b':') {
        ms += num(at + 1, 2)? * 1000;
        at += 3;
        if b.get(at) == Some(&b'.') {
            let digits = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let frac = text.get(at + 1..at + 1 + digits.min(3))?;
            ms += format!("{frac:0<3}").parse::<i64>().ok()?;
            at += 1 + digits;
        }
    }
    match text.get(at..)? {
        "Z" | "" => Some((ms, Style::DateTime)),
        offset if offset.len() == 6 && (offset.starts_with('+') || offset.starts_with('-')) => {
            let minutes = num(at + 1, 2)? * 60 + num(at + 4, 2)?;
            let sign = if offset.starts_with('+') { 1 } else { -1 };
            Some((ms - sign * minutes * MINUTE_MS, Style::DateTime))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_round_trip_through_parse() {
        for ms in [EARLIEST_MS, LATEST_MS, 1_740_000_123_456, 951_782_400_000] {
            assert_eq!(parse(&iso(ms)), Some((ms, Style::DateTime)), "{}", iso(ms));
        }
        assert_eq!(iso(EARLIEST_MS), "2024-01-01T00:00:00.000Z");
        assert_eq!(iso(LATEST_MS), "2026-12-31T23:59:59.999Z");
        assert_eq!(parse("2024-01-01"), Some((EARLIEST_MS, Style::Date)));
        assert_eq!(parse("2024-01-01T01:00:00+01:00"), Some((EARLIEST_MS, Style::DateTime)));
        assert_eq!(parse("2024-01-01T00:00:00.5Z"), Some((EARLIEST_MS + 500, Style::DateTime)));
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn names_are_classified_by_exact_or_suffix_match() {
        assert_eq!(kind_of("contactId"), Kind::Id);
        assert_eq!(kind_of("paid"), Kind::Word);
        assert_eq!(kind_of("alertEmail"), Kind::Email);
        assert_eq!(kind_of("businessPhone"), Kind::Phone);
        assert_eq!(kind_of("lastStageChangeAt"), Kind::DateTime);
        assert_eq!(kind_of("format"), Kind::Word);
        assert_eq!(kind_of("logoUrl"), Kind::ImageUrl);
        assert_eq!(kind_of("canonicalLink"), Kind::Url);
        assert_eq!(kind_of("resourceName"), Kind::Name);
        assert_eq!(kind_of("eventColor"), Kind::Color);
        assert_eq!(kind_of("lastMessageBody"), Kind::Sentence);
    }

    #[test]
    fn singulars_name_array_items() {
        assert_eq!(singular("tags"), "tag");
        assert_eq!(singular("contactIds"), "contactId");
        assert_eq!(singular("addresses"), "address");
        assert_eq!(singular("status"), "status");
        assert_eq!(singular("opportunities"), "opportunity");
    }
}
