//! Which events a change of a stored record makes, and their fields, taken
//! from the record (WEBHOOKS.md §1 for names and scopes, §2 for shapes).
//! Pure functions of (kind, before, after): no state, no clock, no HTTP.

use serde_json::{json, Map, Value};

use crate::state::Record;

/// What an event is about: a location's records, or a company (agency events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Location(String),
    Company(String),
}

/// One event, before it is addressed to an app.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: String,
    /// The scope an install must hold to get it; `None`: always sent.
    pub scope: Option<&'static str>,
    pub target: Target,
    /// The event's own fields, in the order they are sent.
    pub fields: Map<String, Value>,
}

/// How a record changed.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    Created(&'a Record),
    Updated {
        before: &'a Record,
        after: &'a Record,
    },
    Deleted(&'a Record),
    /// Tags added or removed through the tags operations.
    Tagged {
        before: &'a Record,
        after: &'a Record,
    },
}

/// The families that send events, by resource kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Contact,
    Note,
    Task,
    Opportunity,
    Appointment,
    Message,
    Location,
    /// Families sent flat, with every stored field: (event prefix, scope, sends Update, sends Delete).
    Flat(&'static str, &'static str, bool, bool),
}

fn source_of(kind: &str) -> Option<Source> {
    Some(match kind {
        "/contacts" => Source::Contact,
        "/contacts/{}/notes" => Source::Note,
        "/contacts/{}/tasks" => Source::Task,
        "/opportunities" => Source::Opportunity,
        "/calendars/events" => Source::Appointment,
        "/conversations/messages" => Source::Message,
        "/locations" => Source::Location,
        // [guess] scopes by analogy with the API's read scope (WEBHOOKS.md §1).
        "/users" => Source::Flat("User", "users.readonly", false, false),
        "/associations" => Source::Flat("Association", "associations.readonly", true, true),
        "/associations/relations" => Source::Flat("Relation", "associations/relation.readonly", false, true),
        "/objects" => Source::Flat("ObjectSchema", "objects/schema.readonly", true, false),
        "/objects/{}/records" => Source::Flat("Record", "objects/record.readonly", true, true),
        "/invoices" => Source::Flat("Invoice", "invoices.readonly", true, true),
        "/products" => Source::Flat("Product", "products.readonly", true, true),
        "/products/{}/price" => Source::Flat("Price", "products/prices.readonly", true, true),
        _ => return None,
    })
}

/// Every event name an app may turn on (WEBHOOKS.md §1); the mock sends those
/// its resource engine and control plane make.
pub const KNOWN: &[&str] = &[
    "INSTALL",
    "UNINSTALL",
    "UPDATE",
    "PLAN_CHANGE",
    "APP_PAYMENT_STATUS",
    "EXTERNAL_AUTH_CONNECTED",
    "SaasPlanCreate",
    "LocationCreate",
    "LocationUpdate",
    "UserCreate",
    "ContactCreate",
    "ContactUpdate",
    "ContactDelete",
    "ContactDndUpdate",
    "ContactTagUpdate",
    "NoteCreate",
    "NoteUpdate",
    "NoteDelete",
    "TaskCreate",
    "TaskComplete",
    "TaskDelete",
    "OpportunityCreate",
    "OpportunityUpdate",
    "OpportunityDelete",
    "OpportunityStageUpdate",
    "OpportunityStatusUpdate",
    "OpportunityMonetaryValueUpdate",
    "OpportunityAssignedToUpdate",
    "AppointmentCreate",
    "AppointmentUpdate",
    "AppointmentDelete",
    "CampaignStatusUpdate",
    "InboundMessage",
    "OutboundMessage",
    "ConversationUnreadUpdate",
    "ConversationUpdate",
    "LCEmailStats",
    "InvoiceCreate",
    "InvoiceUpdate",
    "InvoiceDelete",
    "InvoiceSent",
    "InvoicePaid",
    "InvoicePartiallyPaid",
    "InvoiceVoid",
    "OrderCreate",
    "OrderStatusUpdate",
    "ProductCreate",
    "ProductUpdate",
    "ProductDelete",
    "PriceCreate",
    "PriceUpdate",
    "PriceDelete",
    "ObjectSchemaCreate",
    "ObjectSchemaUpdate",
    "RecordCreate",
    "RecordUpdate",
    "RecordDelete",
    "AssociationCreate",
    "AssociationUpdate",
    "AssociationDelete",
    "RelationCreate",
    "RelationDelete",
    "VoiceAiCallEnd",
];

/// Whether a kind's changes can make events at all (a cheap test first).
pub fn sends_events(kind: &str) -> bool {
    source_of(kind).is_some()
}

const CONTACTS: &str = "contacts.readonly";
const OPPORTUNITIES: &str = "opportunities.readonly";
/// [guess] not in HighLevel's scope table.
const APPOINTMENTS: &str = "calendars/events.readonly";
const MESSAGES: &str = "conversations/message.readonly";
const LOCATIONS: &str = "locations.readonly";

/// Copies `keys` of `record` that are present, in that order.
fn pick(record: &Record, keys: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for key in keys {
        if let Some(v) = record.get(*key) {
            out.insert((*key).to_string(), v.clone());
        }
    }
    out
}

fn contact_fields(c: &Record) -> Map<String, Value> {
    let mut out = pick(c, &["id", "address1", "city", "state", "companyName", "country", "source", "dateAdded"]);
    out.extend(pick(c, &["dateOfBirth", "dnd", "email"]));
    let name = c.get("name").and_then(Value::as_str).map(str::to_string).or_else(|| {
        let parts: Vec<&str> =
            ["firstName", "lastName"].iter().filter_map(|k| c.get(*k).and_then(Value::as_str)).collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    if let Some(name) = name {
        out.insert("name".into(), json!(name));
    }
    // `attachments` is left out: HighLevel omits it or sends it empty (WEBHOOKS.md §2.2).
    out.extend(pick(
        c,
        &["firstName", "lastName", "phone", "postalCode", "tags", "website", "assignedTo", "customFields"],
    ));
    out
}

fn dnd_fields(c: &Record, slim: bool) -> Map<String, Value> {
    let mut out = if slim { pick(c, &["id", "email", "phone", "dnd"]) } else { contact_fields(c) };
    out.insert("dndSettings".into(), c.get("dndSettings").cloned().unwrap_or_else(|| json!({})));
    out
}

fn task_fields(t: &Record, slim: bool) -> Map<String, Value> {
    // Real TaskCreate deliveries carry no contactId and no body (WEBHOOKS.md §2.2).
    let keys: &[&str] = if slim {
        &["id", "assignedTo", "title", "dateAdded", "dueDate", "completed"]
    } else {
        &["id", "assignedTo", "body", "contactId", "title", "dateAdded", "dueDate", "completed"]
    };
    pick(t, keys)
}

fn opportunity_fields(o: &Record) -> Map<String, Value> {
    let mut out = pick(o, &["id", "name"]);
    out.insert("assignedTo".into(), o.get("assignedTo").cloned().unwrap_or(Value::Null));
    out.extend(pick(o, &["contactId", "pipelineId", "pipelineStageId", "status", "monetaryValue", "source"]));
    if let Some(added) = o.get("dateAdded").or_else(|| o.get("createdAt")) {
        out.insert("dateAdded".into(), added.clone());
    }
    out
}

fn appointment_fields(a: &Record) -> Map<String, Value> {
    let appointment = pick(
        a,
        &[
            "id",
            "address",
            "title",
            "calendarId",
            "contactId",
            "groupId",
            "appointmentStatus",
            "assignedUserId",
            "users",
            "notes",
            "source",
            "startTime",
            "endTime",
            "dateAdded",
            "dateUpdated",
        ],
    );
    let mut out = Map::new();
    out.insert("appointment".into(), Value::Object(appointment));
    out
}

/// `InboundMessage` / `OutboundMessage` fields from a stored message.
pub fn message_fields(m: &Record) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("attachments".into(), m.get("attachments").cloned().unwrap_or_else(|| json!([])));
    out.extend(pick(m, &["body", "contactId"]));
    out.insert("contentType".into(), m.get("contentType").cloned().unwrap_or_else(|| json!("text/plain")));
    out.extend(pick(m, &["conversationId", "dateAdded", "direction"]));
    let type_string = m.get("messageType").and_then(Value::as_str).unwrap_or("TYPE_SMS").to_string();
    let name = match type_string.trim_start_matches("TYPE_") {
        "EMAIL" => "Email".to_string(),
        "CALL" => "CALL".to_string(),
        other => other.to_string(),
    };
    out.insert("messageType".into(), json!(name));
    if let Some(id) = m.get("id") {
        out.insert("messageId".into(), id.clone());
    }
    out.extend(pick(m, &["status", "userId", "from", "to"]));
    if let Some(number) = m.get("type").filter(|t| t.is_number()) {
        out.insert("messageTypeId".into(), number.clone());
    }
    out.insert("messageTypeString".into(), json!(type_string));
    out
}

/// Every stored field, `id` first, without the location (the envelope has it).
fn flat_fields(r: &Record) -> Map<String, Value> {
    let mut out = pick(r, &["id"]);
    for (k, v) in r {
        if k != "id" && k != "locationId" {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn changed(before: &Record, after: &Record, key: &str) -> bool {
    before.get(key) != after.get(key)
}

/// The events a change of a record of `kind` in `location` makes.
/// `real_quirks`: copy what real deliveries do where the docs differ
/// (opportunity fan-out, slim task and DND payloads).
pub fn of_change(kind: &str, location: &str, change: Change<'_>, real_quirks: bool) -> Vec<Event> {
    let Some(source) = source_of(kind) else { return Vec::new() };
    let at = || Target::Location(location.to_string());
    let event = |name: String, scope: &'static str, fields: Map<String, Value>| Event {
        kind: name,
        scope: Some(scope),
        target: at(),
        fields,
    };
    let mut out = Vec::new();
    match (source, change) {
        (Source::Contact, Change::Created(r)) => out.push(event("ContactCreate".into(), CONTACTS, contact_fields(r))),
        (Source::Contact, Change::Deleted(r)) => out.push(event("ContactDelete".into(), CONTACTS, contact_fields(r))),
        (Source::Contact, Change::Tagged { after, .. }) => {
            out.push(event("ContactTagUpdate".into(), CONTACTS, contact_fields(after)));
        }
        (Source::Contact, Change::Updated { before, after }) => {
            // [guess] an edit is a ContactUpdate, plus the narrower event of what changed.
            out.push(event("ContactUpdate".into(), CONTACTS, contact_fields(after)));
            if changed(before, after, "tags") {
                out.push(event("ContactTagUpdate".into(), CONTACTS, contact_fields(after)));
            }
            if changed(before, after, "dnd") || changed(before, after, "dndSettings") {
                out.push(event("ContactDndUpdate".into(), CONTACTS, dnd_fields(after, real_quirks)));
            }
        }
        // Notes are built from a fixed allowlist (WEBHOOKS.md §2.2).
        (Source::Note, Change::Created(r)) => {
            out.push(event("NoteCreate".into(), CONTACTS, pick(r, &["id", "body", "contactId", "dateAdded"])));
        }
        (Source::Note, Change::Updated { after, .. }) => {
            out.push(event("NoteUpdate".into(), CONTACTS, pick(after, &["id", "body", "contactId", "dateAdded"])));
        }
        (Source::Note, Change::Deleted(r)) => {
            out.push(event("NoteDelete".into(), CONTACTS, pick(r, &["id", "body", "contactId", "dateAdded"])));
        }
        (Source::Task, Change::Created(r)) => {
            out.push(event("TaskCreate".into(), CONTACTS, task_fields(r, real_quirks)))
        }
        (Source::Task, Change::Deleted(r)) => {
            out.push(event("TaskDelete".into(), CONTACTS, task_fields(r, real_quirks)))
        }
        (Source::Task, Change::Updated { before, after }) => {
            let done = |r: &Record| r.get("completed").and_then(Value::as_bool).unwrap_or(false);
            if done(after) && !done(before) {
                out.push(event("TaskComplete".into(), CONTACTS, task_fields(after, real_quirks)));
            }
        }
        (Source::Opportunity, Change::Created(r)) => {
            out.push(event("OpportunityCreate".into(), OPPORTUNITIES, opportunity_fields(r)));
            if real_quirks {
                out.push(event("OpportunityUpdate".into(), OPPORTUNITIES, opportunity_fields(r)));
            }
        }
        (Source::Opportunity, Change::Deleted(r)) => {
            out.push(event("OpportunityDelete".into(), OPPORTUNITIES, opportunity_fields(r)));
            if real_quirks {
                out.push(event("OpportunityUpdate".into(), OPPORTUNITIES, opportunity_fields(r)));
            }
        }
        (Source::Opportunity, Change::Updated { before, after }) => {
            let narrower: Vec<&str> = [
                ("status", "OpportunityStatusUpdate"),
                ("pipelineStageId", "OpportunityStageUpdate"),
                ("monetaryValue", "OpportunityMonetaryValueUpdate"),
                ("assignedTo", "OpportunityAssignedToUpdate"),
            ]
            .into_iter()
            .filter(|(key, _)| changed(before, after, key))
            .map(|(_, name)| name)
            .collect();
            // Real deliveries send OpportunityUpdate beside each narrower event (WEBHOOKS.md §2.2, I#27).
            if real_quirks || narrower.is_empty() {
                out.push(event("OpportunityUpdate".into(), OPPORTUNITIES, opportunity_fields(after)));
            }
            for name in narrower {
                out.push(event(name.into(), OPPORTUNITIES, opportunity_fields(after)));
            }
        }
        (Source::Appointment, Change::Created(r)) => {
            out.push(event("AppointmentCreate".into(), APPOINTMENTS, appointment_fields(r)));
        }
        (Source::Appointment, Change::Updated { after, .. }) => {
            out.push(event("AppointmentUpdate".into(), APPOINTMENTS, appointment_fields(after)));
        }
        (Source::Appointment, Change::Deleted(r)) => {
            out.push(event("AppointmentDelete".into(), APPOINTMENTS, appointment_fields(r)));
        }
        (Source::Message, Change::Created(r)) => {
            let kind = if r.get("direction").and_then(Value::as_str) == Some("inbound") {
                "InboundMessage"
            } else {
                "OutboundMessage"
            };
            out.push(event(kind.into(), MESSAGES, message_fields(r)));
        }
        (Source::Location, change @ (Change::Created(_) | Change::Updated { .. })) => {
            // Agency events: sent to the company's installs, with no locationId (WEBHOOKS.md §2.1).
            let (name, r) = match change {
                Change::Created(r) => ("LocationCreate", r),
                Change::Updated { after, .. } => ("LocationUpdate", after),
                _ => return out,
            };
            let company = r.get("companyId").and_then(Value::as_str).unwrap_or(location).to_string();
            out.push(Event {
                kind: name.into(),
                scope: Some(LOCATIONS),
                target: Target::Company(company),
                fields: pick(r, &["id", "name", "email", "stripeProductId"]),
            });
        }
        (Source::Flat(prefix, scope, updates, deletes), change) => {
            let (verb, r) = match change {
                Change::Created(r) => ("Create", r),
                Change::Updated { after, .. } | Change::Tagged { after, .. } if updates => ("Update", after),
                Change::Deleted(r) if deletes => ("Delete", r),
                _ => return out,
            };
            out.push(event(format!("{prefix}{verb}"), scope, flat_fields(r)));
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(v: Value) -> Record {
        v.as_object().cloned().unwrap_or_default()
    }

    fn names(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn an_opportunity_status_change_fans_out_as_real_deliveries_do() {
        let before = record(json!({"id": "o1", "status": "open", "pipelineStageId": "s1"}));
        let after = record(json!({"id": "o1", "status": "won", "pipelineStageId": "s1"}));
        let change = Change::Updated { before: &before, after: &after };
        assert_eq!(
            names(&of_change("/opportunities", "l", change, true)),
            ["OpportunityUpdate", "OpportunityStatusUpdate"]
        );
        assert_eq!(names(&of_change("/opportunities", "l", change, false)), ["OpportunityStatusUpdate"]);
        let renamed = record(json!({"id": "o1", "status": "open", "pipelineStageId": "s1", "name": "x"}));
        let change = Change::Updated { before: &before, after: &renamed };
        assert_eq!(names(&of_change("/opportunities", "l", change, false)), ["OpportunityUpdate"]);
    }

    #[test]
    fn an_opportunity_sends_assigned_to_as_null_when_unset() {
        let created = record(json!({"id": "o1", "name": "Deal", "createdAt": "2026-01-01T00:00:00.000Z"}));
        let events = of_change("/opportunities", "l", Change::Created(&created), false);
        assert_eq!(
            Value::Object(events[0].fields.clone()),
            json!({"id": "o1", "name": "Deal", "assignedTo": null, "dateAdded": "2026-01-01T00:00:00.000Z"})
        );
    }

    #[test]
    fn a_contact_edit_that_changes_tags_and_dnd_sends_each_event_once() {
        let before = record(json!({"id": "c1", "tags": [], "dnd": false, "email": "a@x.io"}));
        let after = record(json!({"id": "c1", "tags": ["vip"], "dnd": true, "email": "a@x.io"}));
        let events = of_change("/contacts", "l", Change::Updated { before: &before, after: &after }, true);
        assert_eq!(names(&events), ["ContactUpdate", "ContactTagUpdate", "ContactDndUpdate"]);
        assert_eq!(
            Value::Object(events[2].fields.clone()),
            json!({"id": "c1", "email": "a@x.io", "dnd": true, "dndSettings": {}})
        );
    }

    #[test]
    fn a_task_completes_once_and_other_task_edits_send_nothing() {
        let open = record(json!({"id": "t1", "completed": false, "title": "Call"}));
        let done = record(json!({"id": "t1", "completed": true, "title": "Call"}));
        let kind = "/contacts/{}/tasks";
        assert_eq!(
            names(&of_change(kind, "l", Change::Updated { before: &open, after: &done }, true)),
            ["TaskComplete"]
        );
        assert!(of_change(kind, "l", Change::Updated { before: &done, after: &done }, true).is_empty());
    }

    #[test]
    fn a_created_location_is_an_agency_event_of_its_company() {
        let loc = record(json!({"id": "newLoc", "name": "N", "companyId": "co1"}));
        let events = of_change("/locations", "co1", Change::Created(&loc), true);
        assert_eq!(events[0].target, Target::Company("co1".into()));
        assert_eq!(events[0].kind, "LocationCreate");
    }

    #[test]
    fn kinds_without_webhooks_send_nothing() {
        assert!(!sends_events("/links"));
        assert!(of_change("/links", "l", Change::Created(&record(json!({"id": "x"}))), true).is_empty());
    }
}
