//! Records a mock starts with: each location of the world as a `/locations`
//! record (so `GET /locations/{id}` answers the fixture's own name and
//! company), and the `records:` section of each fixture location.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::hooks::{indexing_of, Family};
use super::new_id;
use crate::clock::iso8601;
use crate::fixture::Fixture;
use crate::spec::resources::Table;
use crate::state::{Indexing, NewRecord};
use crate::Mock;

/// The names a fixture's `records:` may use, and the kind each fills. A
/// name that starts with `/` is a collection path of the loaded specs.
pub const NAMES: &[(&str, &str)] = &[
    ("contacts", "/contacts"),
    ("opportunities", "/opportunities"),
    ("pipelines", "/opportunities/pipelines"),
    ("calendars", "/calendars"),
    ("appointments", "/calendars/events"),
    ("users", "/users"),
    ("customFields", "/locations/{}/customFields"),
    ("customValues", "/locations/{}/customValues"),
    ("tags", "/locations/{}/tags"),
    ("conversations", "/conversations"),
];

/// The kind a `records:` name fills.
pub fn kind_for(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return Some(crate::spec::resources::kind_of(name));
    }
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| k.to_string())
}

/// Every record the fixture and the world give, ready to insert. Kinds the
/// loaded specs do not serve are left out (their names are still checked).
pub fn records(mock: &Mock, fixture: &Fixture, now: i64) -> Vec<(NewRecord, Indexing)> {
    let table: &Table = &mock.spec.resources;
    let mut out = Vec::new();
    if let Some((_, locations)) = table.by_kind("/locations") {
        // The shape HighLevel answers (address, business, settings, …), with
        // the fixture's own id, name, company and profile over it.
        let shape = locations
            .operations
            .iter()
            .find(|(_, a)| *a == crate::spec::resources::Action::Get)
            .and_then(|(i, _)| table.binding(*i))
            .map(|b| b.single.iter().fold(&*b.frame, |v, k| v.get(k).unwrap_or(&Value::Null)).clone())
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        let world = mock.world_now();
        for location in world.locations() {
            let mut record = shape.clone();
            record.insert(locations.id_field.clone(), json!(location.id));
            record.insert("name".into(), json!(location.name));
            record.insert("companyId".into(), json!(location.company_id));
            let profile = fixture
                .companies
                .iter()
                .flat_map(|c| &c.locations)
                .find(|l| l.id == location.id)
                .map(|l| l.profile.clone())
                .unwrap_or_default();
            for (k, v) in profile {
                record.insert(k, v);
            }
            // Kept under its company, so the agency lists it.
            let mut seeded = new(&locations.kind, &location.company_id, record, now);
            seeded.id = location.id.clone();
            out.push((seeded, Indexing::NONE));
        }
    }
    for company in &fixture.companies {
        for location in &company.locations {
            for (name, items) in &location.records {
                let Some(kind) = kind_for(name) else { continue };
                let Some((_, resource)) = table.by_kind(&kind) else { continue };
                for (n, item) in items.iter().enumerate() {
                    let Value::Object(fields) = item else { continue };
                    let mut record = fields.clone();
                    let id = record.get(&resource.id_field).and_then(Value::as_str).map(str::to_string);
                    let id = id.unwrap_or_else(new_id);
                    record.insert(resource.id_field.clone(), json!(id));
                    if resource.fields.contains("locationId") || resource.fields.is_empty() {
                        record.entry("locationId").or_insert(json!(location.id));
                    }
                    for stamp in ["dateAdded", "createdAt", "dateUpdated", "updatedAt"] {
                        if resource.fields.contains(stamp) {
                            record.entry(stamp).or_insert(json!(iso8601(now)));
                        }
                    }
                    if kind == "/opportunities/pipelines" {
                        give_stage_ids(&mut record);
                    }
                    let family = Family::of(&kind);
                    // Seeds keep their order: one millisecond apart.
                    let mut seeded = new(&resource.kind, &location.id, record, now + n as i64);
                    seeded.id = id;
                    out.push((seeded, indexing_of(mock, family, &location.id)));
                }
            }
        }
    }
    out
}

fn new(kind: &Arc<str>, location: &str, record: Map<String, Value>, now: i64) -> NewRecord {
    let id = record.get("id").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| location.to_string());
    NewRecord { kind: kind.clone(), id, location: location.to_string(), created_ms: now, record }
}

/// Stages without an id get one, so opportunities can name them.
fn give_stage_ids(pipeline: &mut Map<String, Value>) {
    let Some(Value::Array(stages)) = pipeline.get_mut("stages") else { return };
    for (position, stage) in stages.iter_mut().enumerate() {
        if let Value::Object(stage) = stage {
            stage.entry("id").or_insert_with(|| json!(new_id()));
            stage.entry("position").or_insert(json!(position));
        }
    }
}
