//! Resources created through the API, per location: contacts (with their
//! tags and notes) and opportunities.
//!
//! Records are kept as the JSON objects the API answers with, so that a read
//! returns exactly what was sent plus the fields the server adds. Each
//! location is a world of its own: ids are global (as HighLevel's are), but a
//! record answers only to callers of its own location. Nothing here knows
//! HTTP or tokens; the handlers in `respond::resources` do.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type Record = Map<String, Value>;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct LocationStore {
    pub contacts: HashMap<String, Record>,
    /// (dateAdded ms, id): the order lists page through.
    pub contact_order: BTreeSet<(i64, String)>,
    pub notes: HashMap<String, Record>,
    pub opportunities: HashMap<String, Record>,
    pub opportunity_order: BTreeSet<(i64, String)>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Store {
    pub locations: HashMap<String, LocationStore>,
    /// Record id → its location, for operations that name no location.
    pub owners: HashMap<String, String>,
    /// Locations that accept two contacts with one email or phone.
    pub allow_duplicate_contacts: BTreeSet<String>,
}

impl Store {
    pub fn location(&mut self, id: &str) -> &mut LocationStore {
        self.locations.entry(id.to_string()).or_default()
    }

    pub fn owner_of(&self, record_id: &str) -> Option<&str> {
        self.owners.get(record_id).map(String::as_str)
    }

    pub fn contact(&self, id: &str) -> Option<&Record> {
        let location = self.owners.get(id)?;
        self.locations.get(location)?.contacts.get(id)
    }

    pub fn contact_mut(&mut self, id: &str) -> Option<&mut Record> {
        let location = self.owners.get(id)?.clone();
        self.locations.get_mut(&location)?.contacts.get_mut(id)
    }

    /// Another contact of the location with this email (any case) or phone.
    pub fn duplicate_of(
        &self,
        location: &str,
        email: Option<&str>,
        phone: Option<&str>,
        except: Option<&str>,
    ) -> Option<(String, &'static str)> {
        let store = self.locations.get(location)?;
        let email = email.map(str::to_lowercase);
        store.contacts.iter().filter(|(id, _)| Some(id.as_str()) != except).find_map(|(id, c)| {
            let same_email = email
                .as_deref()
                .is_some_and(|e| c.get("email").and_then(Value::as_str).is_some_and(|x| x.to_lowercase() == e));
            let same_phone = phone.is_some_and(|p| c.get("phone").and_then(Value::as_str) == Some(p));
            if same_email {
                Some((id.clone(), "email"))
            } else if same_phone {
                Some((id.clone(), "phone"))
            } else {
                None
            }
        })
    }

    pub fn insert_contact(&mut self, location: &str, id: &str, added_ms: i64, record: Record) {
        let store = self.location(location);
        store.contacts.insert(id.to_string(), record);
        store.contact_order.insert((added_ms, id.to_string()));
        self.owners.insert(id.to_string(), location.to_string());
    }

    /// Removes a contact and its notes.
    pub fn remove_contact(&mut self, id: &str) -> Option<Record> {
        let location = self.owners.remove(id)?;
        let store = self.locations.get_mut(&location)?;
        let record = store.contacts.remove(id)?;
        store.contact_order.retain(|(_, c)| c != id);
        let notes: Vec<String> = store
            .notes
            .iter()
            .filter(|(_, n)| n.get("contactId").and_then(Value::as_str) == Some(id))
            .map(|(k, _)| k.clone())
            .collect();
        for note in notes {
            store.notes.remove(&note);
            self.owners.remove(&note);
        }
        Some(record)
    }

    pub fn insert_opportunity(&mut self, location: &str, id: &str, created_ms: i64, record: Record) {
        let store = self.location(location);
        store.opportunities.insert(id.to_string(), record);
        store.opportunity_order.insert((created_ms, id.to_string()));
        self.owners.insert(id.to_string(), location.to_string());
    }

    pub fn remove_opportunity(&mut self, id: &str) -> Option<Record> {
        let location = self.owners.remove(id)?;
        let store = self.locations.get_mut(&location)?;
        store.opportunity_order.retain(|(_, o)| o != id);
        store.opportunities.remove(id)
    }
}
