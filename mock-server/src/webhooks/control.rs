//! The control plane's webhook calls (under `/__admin/`): installs
//! (`INSTALL`/`UNINSTALL`), an app's webhook settings, the deliveries journal,
//! manual resends, a flush, a simulated inbound message, and the public key.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{events, AppWebhooks, Install, INSTALL, UNINSTALL};
use crate::admin::{ok, parse, query, refuse, unavailable, Answer, Shared};
use crate::clock::iso8601;
use crate::state::deliveries::{Attempt, Delivery, DeliveryFilter};
use crate::state::{Indexing, NewRecord, Record};
use crate::world::{Owner, World};

/// What a manual resend did.
#[derive(Debug, Clone)]
pub enum Resent {
    Sent { attempt: Attempt, delivery: Option<Box<Delivery>> },
    Unknown,
    AlreadyDelivered,
    InFlight,
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/oauth/installs", get(list_installs).post(create_install))
        .route("/oauth/installs/{id}", delete(remove_install))
        .route("/oauth/apps/{client_id}/webhooks", put(set_app_webhooks).get(show_app_webhooks))
        .route("/webhooks/public-key", get(public_key))
        .route("/webhooks/deliveries", get(list_deliveries).delete(clear_deliveries))
        .route("/webhooks/deliveries/{id}", get(show_delivery))
        .route("/webhooks/deliveries/{id}/resend", post(resend))
        .route("/webhooks/flush", post(flush))
        .route("/webhooks/inbound-message", post(inbound_message))
}

/// An install of `client_id` on a location or a company, checked against the world.
pub fn new_install(
    world: &World,
    client_id: &str,
    location: Option<String>,
    company: Option<String>,
    scopes: Option<Vec<String>>,
    user_id: Option<String>,
    now_ms: i64,
) -> Result<Install, String> {
    let app = world.apps.get(client_id).ok_or_else(|| format!("no OAuth app with client_id '{client_id}'"))?;
    let (owner, company_id) = match (location, company) {
        (Some(l), None) => {
            let company =
                world.location(&l).map(|x| x.company_id.clone()).ok_or_else(|| format!("no location with id '{l}'"))?;
            (Owner::Location(l), company)
        }
        (None, Some(c)) => {
            if world.company(&c).is_none() {
                return Err(format!("no company with id '{c}'"));
            }
            (Owner::Company(c.clone()), c)
        }
        _ => return Err("give exactly one of `location` and `company`".into()),
    };
    if world.installs.values().any(|i| i.client_id == client_id && i.owner == owner) {
        return Err(format!("the app '{client_id}' is installed there already"));
    }
    let scopes = scopes.unwrap_or_else(|| app.scopes.clone());
    if let Some(extra) = scopes.iter().find(|s| !app.scopes.is_empty() && !app.scopes.contains(s)) {
        return Err(format!("the app may not be granted scope '{extra}'"));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let user_id = user_id.unwrap_or_else(|| crate::respond::generate::id(&mut fastrand::Rng::new()));
    Ok(Install { id, client_id: client_id.to_string(), owner, company_id, scopes, user_id, installed_at_ms: now_ms })
}

fn install_json(i: &Install) -> Value {
    json!({
        "id": i.id,
        "client_id": i.client_id,
        "app_id": super::app_id(&i.client_id),
        "owner": i.owner,
        "company_id": i.company_id,
        "scopes": i.scopes,
        "user_id": i.user_id,
        "installed_at_ms": i.installed_at_ms,
    })
}

async fn list_installs(State(mock): State<Shared>) -> Answer {
    let w = mock.world().await.map_err(|e| unavailable(&mock, e))?;
    ok(json!({"installs": w.installs.values().map(install_json).collect::<Vec<_>>()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInstall {
    client_id: String,
    location: Option<String>,
    company: Option<String>,
    /// With `company`: a bulk install of a sub-account app on these locations too (one INSTALL each).
    #[serde(default)]
    locations: Vec<String>,
    scopes: Option<Vec<String>>,
    user_id: Option<String>,
}

/// Installs an app: the install is kept (events flow to it), `INSTALL` goes
/// to the app's default URL, and the answer holds an authorization code for
/// it, as HighLevel's redirect does.
async fn create_install(State(mock): State<Shared>, body: Bytes) -> Answer {
    let req: CreateInstall = parse(&mock, &body)?;
    if !req.locations.is_empty() && req.company.is_none() {
        return Err(refuse(&mock, StatusCode::BAD_REQUEST, "`locations` (a bulk install) needs `company`"));
    }
    if let Some(scopes) = &req.scopes {
        crate::fixture::check_scopes(scopes, mock.known_scopes())
            .map_err(|e| refuse(&mock, StatusCode::BAD_REQUEST, e.to_string()))?;
    }
    let now = mock.clock.now_ms();
    let made = mock
        .change_world(|w| {
            let user = req.user_id.clone().or_else(|| Some(crate::respond::generate::id(&mut fastrand::Rng::new())));
            let first = new_install(
                w,
                &req.client_id,
                req.location.clone(),
                req.company.clone(),
                req.scopes.clone(),
                user.clone(),
                now,
            )?;
            let mut made = vec![first];
            if let Some(company) = &req.company {
                for l in &req.locations {
                    if !w.company_has_location(company, l) {
                        return Err(format!("location '{l}' is not a location of company '{company}'"));
                    }
                    made.push(new_install(
                        w,
                        &req.client_id,
                        Some(l.clone()),
                        None,
                        req.scopes.clone(),
                        user.clone(),
                        now,
                    )?);
                }
            }
            for i in &made {
                w.installs.insert(i.id.clone(), i.clone());
            }
            Ok::<_, String>(made)
        })
        .await
        .map_err(|e| unavailable(&mock, e))?
        .map_err(|e| {
            let status = if e.starts_with("no OAuth app") {
                StatusCode::NOT_FOUND
            } else if e.contains("already") {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            refuse(&mock, status, e)
        })?;
    let world = mock.world().await.map_err(|e| unavailable(&mock, e))?;
    for install in &made {
        mock.webhooks.app_event(&world, INSTALL, install).await;
    }
    let Some(first) = made.first() else {
        return Err(refuse(&mock, StatusCode::BAD_REQUEST, "nothing was installed"));
    };
    let grant = crate::auth::oauth::Grant {
        client_id: first.client_id.clone(),
        owner: first.owner.clone(),
        scopes: first.scopes.clone(),
        user_id: first.user_id.clone(),
        company_id: first.company_id.clone(),
    };
    let code = mock.oauth.issue_code(grant, now).await.map_err(|e| unavailable(&mock, e.into()))?;
    tracing::info!(client_id = %first.client_id, installs = made.len(), "app installed");
    Ok((
        StatusCode::CREATED,
        Json(json!({"install": install_json(first), "installs": made.iter().map(install_json).collect::<Vec<_>>(), "code": code})),
    )
        .into_response())
}

/// Uninstalls: the install is forgotten and `UNINSTALL` goes to the default URL.
async fn remove_install(State(mock): State<Shared>, Path(id): Path<String>) -> Answer {
    let removed = mock.change_world(|w| w.installs.remove(&id)).await.map_err(|e| unavailable(&mock, e))?;
    let Some(install) = removed else {
        return Err(refuse(&mock, StatusCode::NOT_FOUND, format!("no install with id '{id}'")));
    };
    let world = mock.world().await.map_err(|e| unavailable(&mock, e))?;
    mock.webhooks.app_event(&world, UNINSTALL, &install).await;
    ok(json!({"uninstalled": install_json(&install)}))
}

async fn show_app_webhooks(State(mock): State<Shared>, Path(client_id): Path<String>) -> Answer {
    let w = mock.world().await.map_err(|e| unavailable(&mock, e))?;
    let Some(app) = w.apps.get(&client_id) else {
        return Err(refuse(&mock, StatusCode::NOT_FOUND, format!("no OAuth app with client_id '{client_id}'")));
    };
    ok(
        json!({"client_id": client_id, "app_id": super::app_id(&client_id), "webhooks": app.webhooks.clone().unwrap_or_default()}),
    )
}

/// Sets an app's webhook settings (HighLevel lets them change at any time, even on a live version).
async fn set_app_webhooks(State(mock): State<Shared>, Path(client_id): Path<String>, body: Bytes) -> Answer {
    let settings: AppWebhooks = parse(&mock, &body)?;
    settings.check().map_err(|e| refuse(&mock, StatusCode::BAD_REQUEST, e))?;
    let found = mock
        .change_world(|w| match w.apps.get_mut(&client_id) {
            Some(app) => {
                app.webhooks = Some(settings.clone());
                true
            }
            None => false,
        })
        .await
        .map_err(|e| unavailable(&mock, e))?;
    if !found {
        return Err(refuse(&mock, StatusCode::NOT_FOUND, format!("no OAuth app with client_id '{client_id}'")));
    }
    ok(json!({"client_id": client_id, "app_id": super::app_id(&client_id), "webhooks": settings}))
}

async fn public_key(State(mock): State<Shared>) -> Answer {
    let (pem, raw) = mock.webhooks.public_key().await.map_err(|e| unavailable(&mock, e.into()))?;
    let mut answer = json!({
        "pem": pem,
        "raw_base64": raw,
        "algorithm": "Ed25519",
        "header": "x-ghl-signature",
        "env": "WEBHOOK_SIGNATURE_PUBLIC_KEY",
    });
    // The legacy RSA key only when that header is sent (`WEBHOOK_PUBLIC_KEY` in the Python SDK).
    if let Some(legacy) = mock.webhooks.legacy_public_key().await.map_err(|e| unavailable(&mock, e.into()))? {
        answer["legacy"] =
            json!({"pem": legacy, "algorithm": "RSA-SHA256", "header": "x-wh-signature", "env": "WEBHOOK_PUBLIC_KEY"});
    }
    ok(answer)
}

/// A delivery as the journal shows it: the payload parsed, attempts with times.
pub fn delivery_json(d: &Delivery) -> Value {
    let attempts: Vec<Value> = d
        .attempts
        .iter()
        .map(|a| {
            json!({
                "attempt": a.attempt,
                "at_ms": a.at_ms,
                "at": iso8601(a.at_ms),
                "status": a.status,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "manual": a.manual,
            })
        })
        .collect();
    json!({
        "webhook_id": d.webhook_id,
        "event": d.event,
        "client_id": d.client_id,
        "location": d.location,
        "url": d.url,
        "state": d.state,
        "created_ms": d.created_ms,
        "next_attempt_at_ms": d.next_attempt_at_ms,
        "in_flight": d.in_flight,
        "attempts": attempts,
        "payload": serde_json::from_str::<Value>(&d.body).unwrap_or(Value::Null),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    event: Option<String>,
    client_id: Option<String>,
    location: Option<String>,
    state: Option<String>,
    url: Option<String>,
    limit: Option<usize>,
}

async fn list_deliveries(State(mock): State<Shared>, q: Result<Query<DeliveriesQuery>, QueryRejection>) -> Answer {
    let q = query(&mock, q)?;
    if let Some(state) = &q.state {
        if crate::state::deliveries::DeliveryState::parse(state).is_none() {
            return Err(refuse(
                &mock,
                StatusCode::BAD_REQUEST,
                format!("`state` must be pending, delivered, failed or abandoned, not '{state}'"),
            ));
        }
    }
    let filter =
        DeliveryFilter { event: q.event, client_id: q.client_id, location: q.location, state: q.state, url: q.url };
    let store = mock.webhooks.store();
    let listed = store.list(&filter, q.limit.unwrap_or(1000)).await.map_err(|e| unavailable(&mock, e.into()))?;
    let stats = store.stats().await.map_err(|e| unavailable(&mock, e.into()))?;
    ok(json!({"deliveries": listed.iter().map(delivery_json).collect::<Vec<_>>(), "outbox": stats}))
}

async fn show_delivery(State(mock): State<Shared>, Path(id): Path<String>) -> Answer {
    match mock.webhooks.store().get(&id).await.map_err(|e| unavailable(&mock, e.into()))? {
        Some(d) => ok(json!({"delivery": delivery_json(&d)})),
        None => Err(refuse(&mock, StatusCode::NOT_FOUND, format!("no delivery with webhookId '{id}'"))),
    }
}

async fn clear_deliveries(State(mock): State<Shared>) -> Answer {
    let cleared = mock.webhooks.store().clear().await.map_err(|e| unavailable(&mock, e.into()))?;
    ok(json!({"cleared": cleared}))
}

/// "Resend" of the Webhook Logs Dashboard: the same body to the same URL, now.
async fn resend(State(mock): State<Shared>, Path(id): Path<String>) -> Answer {
    match mock.webhooks.resend(&id).await.map_err(|e| unavailable(&mock, e.into()))? {
        Resent::Sent { attempt, delivery } => {
            let delivery = delivery.as_deref().map(delivery_json).unwrap_or(Value::Null);
            ok(
                json!({"attempt": {"attempt": attempt.attempt, "status": attempt.status, "error": attempt.error, "latency_ms": attempt.latency_ms}, "delivery": delivery}),
            )
        }
        Resent::Unknown => Err(refuse(&mock, StatusCode::NOT_FOUND, format!("no delivery with webhookId '{id}'"))),
        Resent::AlreadyDelivered => Err(refuse(&mock, StatusCode::CONFLICT, "the webhook was delivered already")),
        Resent::InFlight => Err(refuse(&mock, StatusCode::CONFLICT, "an attempt of this webhook is in flight")),
    }
}

/// Sends every delivery due now and answers once their attempts are recorded.
async fn flush(State(mock): State<Shared>) -> Answer {
    mock.webhooks.flush().await;
    let stats = mock.webhooks.store().stats().await.map_err(|e| unavailable(&mock, e.into()))?;
    ok(json!({"outbox": stats}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Inbound {
    location_id: String,
    contact_id: String,
    body: String,
    /// SMS (the default), Email, Call, WhatsApp, …
    #[serde(default = "sms")]
    r#type: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

fn sms() -> String {
    "SMS".into()
}

/// HighLevel's numeric message types. [guess for all but SMS, Email and Call]
fn message_type_id(name: &str) -> u64 {
    match name.to_ascii_lowercase().as_str() {
        "call" => 1,
        "email" => 3,
        "webchat" => 5,
        "voicemail" => 10,
        "fb" => 11,
        "gmb" => 15,
        "ig" => 18,
        "whatsapp" => 19,
        "live_chat" => 29,
        _ => 2,
    }
}

/// A customer's reply: filed into the contact's conversation (unread), and
/// `InboundMessage` sent to the location's installs.
async fn inbound_message(State(mock): State<Shared>, body: Bytes) -> Answer {
    let req: Inbound = parse(&mock, &body)?;
    if req.body.is_empty() {
        return Err(refuse(&mock, StatusCode::BAD_REQUEST, "`body` must not be empty"));
    }
    let world = mock.world().await.map_err(|e| unavailable(&mock, e))?;
    if world.location(&req.location_id).is_none() {
        return Err(refuse(&mock, StatusCode::NOT_FOUND, format!("no location with id '{}'", req.location_id)));
    }
    let contact = mock.records.get(crate::resources::hooks::CONTACTS, &req.contact_id).await.ok();
    if contact.as_ref().is_none_or(|c| c.location != req.location_id) {
        return Err(refuse(
            &mock,
            StatusCode::NOT_FOUND,
            format!("no contact '{}' in location '{}'", req.contact_id, req.location_id),
        ));
    }
    let now = mock.clock.now_ms();
    let type_string = format!("TYPE_{}", req.r#type.to_uppercase());
    let conversation_id = file_inbound(&mock, &req, &type_string, now)
        .await
        .map_err(|e| refuse(&mock, StatusCode::SERVICE_UNAVAILABLE, e))?;
    let id = crate::resources::new_id();
    let mut message = Record::new();
    for (k, v) in [
        ("id", json!(id)),
        ("conversationId", json!(conversation_id)),
        ("contactId", json!(req.contact_id)),
        ("locationId", json!(req.location_id)),
        ("body", json!(req.body)),
        ("attachments", json!([])),
        ("contentType", json!("text/plain")),
        ("direction", json!("inbound")),
        ("status", json!("delivered")),
        ("messageType", json!(type_string)),
        ("type", json!(message_type_id(&req.r#type))),
        ("dateAdded", json!(iso8601(now))),
    ] {
        message.insert(k.into(), v);
    }
    if let Some(from) = &req.from {
        message.insert("from".into(), json!(from));
    }
    if let Some(to) = &req.to {
        message.insert("to".into(), json!(to));
    }
    const MESSAGES: &str = "/conversations/messages";
    if mock.spec.resources.by_kind(MESSAGES).is_some() {
        let new = NewRecord {
            kind: std::sync::Arc::from(MESSAGES),
            id: id.clone(),
            location: req.location_id.clone(),
            created_ms: now,
            record: message.clone(),
        };
        mock.records
            .insert(new, Indexing::NONE)
            .await
            .map_err(|e| refuse(&mock, StatusCode::SERVICE_UNAVAILABLE, format!("{e:?}")))?;
    }
    let events = events::of_change(
        MESSAGES,
        &req.location_id,
        events::Change::Created(&message),
        mock.config.fidelity.webhooks.real_quirks,
    );
    mock.webhooks.emit(&world, events).await;
    Ok((StatusCode::CREATED, Json(json!({"message": message}))).into_response())
}

/// The contact's conversation (made on first use) shows the reply, unread.
async fn file_inbound(mock: &crate::Mock, req: &Inbound, type_string: &str, now: i64) -> Result<String, String> {
    use crate::resources::hooks::{indexing_of, CONVERSATIONS};
    use crate::resources::Family;
    if mock.spec.resources.by_kind(CONVERSATIONS).is_none() {
        return Ok(crate::resources::new_id());
    }
    let id = crate::resources::new_id();
    let mut fresh = Record::new();
    for (k, v) in [
        ("id", json!(id)),
        ("contactId", json!(req.contact_id)),
        ("locationId", json!(req.location_id)),
        ("dateAdded", json!(now)),
        ("type", json!(type_string)),
        ("unreadCount", json!(0)),
    ] {
        fresh.insert(k.into(), v);
    }
    let text = req.body.clone();
    let type_string = type_string.to_string();
    let last = move |c: &mut Record| {
        c.insert("lastMessageBody".into(), json!(text));
        c.insert("lastMessageType".into(), json!(type_string));
        c.insert("lastMessageDirection".into(), json!("inbound"));
        c.insert("lastMessageDate".into(), json!(now));
        c.insert("dateUpdated".into(), json!(now));
        let unread = c.get("unreadCount").and_then(Value::as_u64).unwrap_or(0);
        c.insert("unreadCount".into(), json!(unread + 1));
    };
    last(&mut fresh);
    let new = NewRecord {
        kind: std::sync::Arc::from(CONVERSATIONS),
        id,
        location: req.location_id.clone(),
        created_ms: now,
        record: fresh,
    };
    let change = move |c: &mut Record| {
        last(c);
        Ok(())
    };
    let keys = vec![format!("contact:{}", req.contact_id)];
    let (_, filed) = mock
        .records
        .upsert(new, &keys, &change, indexing_of(mock, Family::Conversations, &req.location_id))
        .await
        .map_err(|e| format!("the conversation could not be stored: {e:?}"))?;
    Ok(filed.id)
}
