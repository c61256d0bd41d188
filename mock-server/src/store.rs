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
    /// `e:` + lowercase email or `p:` + phone → the contacts that have it;
    /// derived from `contacts`, so duplicate checks need no scan.
    #[serde(skip)]
    contact_keys: HashMap<String, BTreeSet<String>>,
    /// (dateAdded ms, id): the order lists page through.
    pub contact_order: BTreeSet<(i64, String)>,
    /// Record id → its key in the order sets, so a removal needs no scan.
    #[serde(default)]
    pub order_keys: HashMap<String, i64>,
    pub notes: HashMap<String, Record>,
    pub opportunities: HashMap<String, Record>,
    pub opportunity_order: BTreeSet<(i64, String)>,
}

/// The most records of one kind a location keeps unless configured otherwise.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Store {
    pub locations: HashMap<String, LocationStore>,
    /// Record id → its location, for operations that name no location.
    pub owners: HashMap<String, String>,
    /// Locations that accept two contacts with one email or phone.
    pub allow_duplicate_contacts: BTreeSet<String>,
    /// Records of one kind (contacts, notes, opportunities) a location may
    /// hold: the store's memory stays bounded however long a client creates.
    #[serde(skip, default = "default_max_records")]
    pub max_records: usize,
}

fn default_max_records() -> usize {
    DEFAULT_MAX_RECORDS
}

impl Default for Store {
    fn default() -> Self {
        Self {
            locations: HashMap::new(),
            owners: HashMap::new(),
            allow_duplicate_contacts: BTreeSet::new(),
            max_records: DEFAULT_MAX_RECORDS,
        }
    }
}

/// The store refuses to grow past its bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full {
    pub location: String,
    pub kind: &'static str,
    pub max: usize,
}

fn keys_of(record: &Record) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(email) = record.get("email").and_then(Value::as_str).filter(|e| !e.is_empty()) {
        keys.push(format!("e:{}", email.to_lowercase()));
    }
    if let Some(phone) = record.get("phone").and_then(Value::as_str).filter(|p| !p.is_empty()) {
        keys.push(format!("p:{phone}"));
    }
    keys
}

impl LocationStore {
    fn index(&mut self, id: &str, record: &Record) {
        for key in keys_of(record) {
            self.contact_keys.entry(key).or_default().insert(id.to_string());
        }
    }

    fn unindex(&mut self, id: &str, record: &Record) {
        for key in keys_of(record) {
            if let Some(ids) = self.contact_keys.get_mut(&key) {
                ids.remove(id);
                if ids.is_empty() {
                    self.contact_keys.remove(&key);
                }
            }
        }
    }
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

    /// A stored contact to change in place; its email and phone must stay
    /// as they are (use [`Store::replace_contact`] for those).
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
        let find = |key: String| {
            store.contact_keys.get(&key).and_then(|ids| ids.iter().find(|id| Some(id.as_str()) != except).cloned())
        };
        let by_email = email
            .filter(|e| !e.is_empty())
            .and_then(|e| find(format!("e:{}", e.to_lowercase())))
            .map(|id| (id, "email"));
        by_email
            .or_else(|| phone.filter(|p| !p.is_empty()).and_then(|p| find(format!("p:{p}"))).map(|id| (id, "phone")))
    }

    /// Refuses a new record of `kind` when the location holds the most it may.
    pub fn room_for(&self, location: &str, kind: &'static str) -> Result<(), Full> {
        let held = self.locations.get(location).map_or(0, |l| match kind {
            "contacts" => l.contacts.len(),
            "notes" => l.notes.len(),
            _ => l.opportunities.len(),
        });
        if held >= self.max_records {
            return Err(Full { location: location.to_string(), kind, max: self.max_records });
        }
        Ok(())
    }

    /// Replaces a stored contact (keeping the duplicate index true).
    pub fn replace_contact(&mut self, id: &str, record: Record) {
        let Some(location) = self.owners.get(id).cloned() else { return };
        let Some(store) = self.locations.get_mut(&location) else { return };
        if let Some(old) = store.contacts.get(id).cloned() {
            store.unindex(id, &old);
        }
        store.index(id, &record);
        store.contacts.insert(id.to_string(), record);
    }

    /// Rebuilds what is derived after the store was read back from a snapshot.
    pub fn reindex(&mut self) {
        for store in self.locations.values_mut() {
            store.contact_keys.clear();
            let contacts: Vec<(String, Record)> = store.contacts.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for (id, record) in contacts {
                store.index(&id, &record);
            }
        }
    }

    pub fn insert_contact(&mut self, location: &str, id: &str, added_ms: i64, record: Record) {
        let store = self.location(location);
        store.index(id, &record);
        store.contacts.insert(id.to_string(), record);
        store.contact_order.insert((added_ms, id.to_string()));
        store.order_keys.insert(id.to_string(), added_ms);
        self.owners.insert(id.to_string(), location.to_string());
    }

    /// Removes a contact and its notes.
    pub fn remove_contact(&mut self, id: &str) -> Option<Record> {
        let location = self.owners.remove(id)?;
        let store = self.locations.get_mut(&location)?;
        let record = store.contacts.remove(id)?;
        store.unindex(id, &record);
        if let Some(ms) = store.order_keys.remove(id) {
            store.contact_order.remove(&(ms, id.to_string()));
        }
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
        store.order_keys.insert(id.to_string(), created_ms);
        self.owners.insert(id.to_string(), location.to_string());
    }

    pub fn remove_opportunity(&mut self, id: &str) -> Option<Record> {
        let location = self.owners.remove(id)?;
        let store = self.locations.get_mut(&location)?;
        if let Some(ms) = store.order_keys.remove(id) {
            store.opportunity_order.remove(&(ms, id.to_string()));
        }
        store.opportunities.remove(id)
    }
}
