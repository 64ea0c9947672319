//! The OpenAPI document of `/api/v1`, built with the router itself: a route of the API is added
//! only through [`ApiRoutes::add`], which takes `utoipa_axum::routes!` of handlers annotated with
//! `#[utoipa::path]`, so an undocumented route cannot be written and the document cannot name a
//! path the router does not serve. What every operation shares (the session and CSRF security,
//! the 401, 403, 413, 415 and 503 answers) is filled in here once, by [`complete`].

use axum::Router;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use super::error::ErrorBody;
use super::{auth, AppState};

#[derive(OpenApi)]
#[openapi(
    info(title = "ELSE API", version = "1", description = "Postfix logs of a whole fleet, per message. \
        Log in with POST /auth/login; send the `X-CSRF-Token` header with every POST, PUT, PATCH and DELETE. \
        Errors are `{\"error\": \"...\", \"field\": \"...\"}` with their status; lists page with `page` and \
        `per_page` and answer `{total, total_capped, page, per_page, items}` (docs/api.md, \"Conventions\")."),
    servers((url = "/api/v1")),
    components(schemas(ErrorBody)),
    modifiers(&SessionSecurity),
    tags(
        (name = "auth", description = "Logging in and out, one's own account"),
        (name = "overview", description = "The landing page: alerts, servers, ingest, traffic, trouble"),
        (name = "alerts", description = "Delivery insights: alerts, their history, acknowledging and silencing"),
        (name = "servers", description = "The servers of the fleet, their health and queues"),
        (name = "search", description = "Messages, rejects, log lines, the live view, search history"),
        (name = "stats", description = "Statistics from the rollups, and the pflogsumm-style report"),
        (name = "ndr", description = "Non-delivery reports received by the NDR service"),
        (name = "greylist", description = "GreyLSE's decisions and statistics, its whitelists"),
        (name = "admin", description = "Administrators only; every change is audited"),
    )
)]
struct ApiDoc;

/// Names the session cookie and the CSRF header as the document's security schemes.
struct SessionSecurity;

impl Modify for SessionSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::COOKIE_NAME))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-CSRF-Token"))),
        );
    }
}

/// The routes of `/api/v1` and their document, which only grow together.
pub struct ApiRoutes(OpenApiRouter<AppState>);

impl Default for ApiRoutes {
    fn default() -> Self {
        ApiRoutes(OpenApiRouter::new())
    }
}

impl ApiRoutes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the handlers of one path, `routes!(get_x, post_x)`, each with its `#[utoipa::path]`.
    /// (`routes!` would serve every handler it is given on every path among them: one path each.)
    pub fn add(self, routes: UtoipaMethodRouter<AppState>) -> Self {
        let paths: Vec<&String> = routes.1.paths.keys().collect();
        assert_eq!(paths.len(), 1, "routes! of handlers of several paths: {paths:?}");
        ApiRoutes(self.0.routes(routes))
    }

    pub fn merge(self, other: ApiRoutes) -> Self {
        ApiRoutes(self.0.merge(other.0))
    }

    /// The router, and the document of exactly its routes (as JSON: the last touch is made
    /// there, see [`answers_carry_their_nulls`]).
    pub fn split(self) -> (Router<AppState>, serde_json::Value) {
        let (router, paths) = self.0.split_for_parts();
        let mut doc = ApiDoc::openapi();
        doc.merge(paths);
        complete(&mut doc);
        let mut json = serde_json::to_value(doc).expect("the OpenAPI document is JSON");
        answers_carry_their_nulls(&mut json);
        (router, json)
    }
}

/// Whether a method changes something (and so needs the CSRF token).
fn changes(method: &str) -> bool {
    method != "get"
}

/// Every operation of a path item, with its method in lower case.
fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
    .collect()
}

/// Fills in what the handlers' annotations leave to the conventions: an operation that does not
/// say otherwise (`security(())` for a public one) needs the session cookie, and the CSRF header
/// when it changes something; and the answers every such operation may give.
fn complete(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in operations(item) {
            let public = op
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
            if !public {
                let mut needs = SecurityRequirement::new("session", Vec::<String>::new());
                if changes(method) {
                    needs = needs.add("csrf", Vec::<String>::new());
                }
                op.security = Some(vec![needs]);
                error(op, 401, "Not logged in, or the session ended");
                if path.starts_with("/admin/") {
                    error(
                        op,
                        403,
                        "Administrators only (or, for a change, a missing X-CSRF-Token)",
                    );
                } else if changes(method) {
                    error(op, 403, "Missing or wrong X-CSRF-Token, or a cross-site request");
                }
            }
            if op.request_body.is_some() {
                error(
                    op,
                    400,
                    "A malformed body, or a field that breaks a rule (named in `field`)",
                );
                error(op, 413, "A body over 2 MiB");
                error(op, 415, "A body that is not JSON");
            }
            error(op, 503, "The database is unavailable");
        }
    }
}

/// serde writes every field of an answer, `null` for an `Option` that is `None` (a field it
/// leaves out says `skip_serializing_if`, and `#[schema(nullable = false)]` for the document), so
/// in the schemas of answers a nullable property is a required one. utoipa marks every `Option`
/// optional, which would have clients test for fields that are never missing. The schemas that
/// requests use (their bodies, and what those refer to) keep it: there `Option` means "may be
/// left out".
fn answers_carry_their_nulls(json: &mut serde_json::Value) {
    use serde_json::Value;

    fn is_nullable(schema: &Value) -> bool {
        let null = serde_json::json!("null");
        schema["type"].as_array().is_some_and(|types| types.contains(&null))
            || schema["oneOf"]
                .as_array()
                .is_some_and(|choices| choices.iter().any(|c| c["type"] == null))
    }
    /// Every nullable property of every object schema in `schema` becomes required.
    fn require_nullable(schema: &mut Value) {
        let Value::Object(map) = schema else {
            if let Value::Array(items) = schema {
                items.iter_mut().for_each(require_nullable);
            }
            return;
        };
        let nullable: Vec<Value> = map
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(_, property)| is_nullable(property))
            .map(|(name, _)| Value::String(name.clone()))
            .collect();
        if !nullable.is_empty() {
            let required = map.entry("required").or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(required) = required {
                for name in nullable {
                    if !required.contains(&name) {
                        required.push(name);
                    }
                }
            }
        }
        map.values_mut().for_each(require_nullable);
    }
    /// The names of the schemas `value` refers to.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.extend(target.strip_prefix("#/components/schemas/").map(str::to_owned));
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    let mut requested = std::collections::BTreeSet::new();
    let mut pending = Vec::new();
    for item in json["paths"].as_object().into_iter().flat_map(|paths| paths.values()) {
        for op in item.as_object().into_iter().flat_map(|ops| ops.values()) {
            refs(&op["requestBody"], &mut pending);
        }
    }
    while let Some(name) = pending.pop() {
        if requested.insert(name.clone()) {
            refs(&json["components"]["schemas"][&name], &mut pending);
        }
    }
    if let Some(Value::Object(schemas)) = json["components"].get_mut("schemas") {
        for (name, schema) in schemas.iter_mut() {
            if !requested.contains(name) {
                require_nullable(schema);
            }
        }
    }
    for item in json["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
    {
        for op in item.as_object_mut().into_iter().flat_map(|ops| ops.values_mut()) {
            require_nullable(&mut op["responses"]);
        }
    }
}

/// Adds the answer `status` with an [`ErrorBody`], unless the handler describes it already.
fn error(op: &mut Operation, status: u16, description: &str) {
    op.responses.responses.entry(status.to_string()).or_insert_with(|| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    });
}

/// The document `/api/v1/openapi.json` serves.
pub fn document() -> serde_json::Value {
    super::api::routes().split().1
}

/// `elsed openapi`: the document on standard output, without a database or a server: what
/// `npm run api-types` (web/) turns into the browser application's types.
pub fn print() -> anyhow::Result<std::process::ExitCode> {
    println!("{}", serde_json::to_string_pretty(&document())?);
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;

    /// Every `$ref` of the document, anywhere in it.
    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", serde_json::Value::String(target)) => out.push(target.clone()),
                        _ => refs(value, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    fn doc() -> serde_json::Value {
        serde_json::to_value(document()).unwrap()
    }

    /// `(method, path, operation)` of every operation of the document.
    fn each_operation(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                all.push((method.clone(), path.clone(), op.clone()));
            }
        }
        all
    }

    #[test]
    fn every_reference_resolves() {
        let doc = doc();
        let mut targets = Vec::new();
        refs(&doc, &mut targets);
        assert!(targets.len() > 10, "{targets:?}");
        for target in targets {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target}"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{target} is not in the document's schemas"
            );
        }
        // Times are strings in the document, as on the wire.
        assert_eq!(
            doc["components"]["schemas"]["User"]["properties"]["last_login"]["format"],
            "date-time"
        );
    }

    /// Each operation says what it is, what it answers (errors included) and who may call it,
    /// under an id of its own.
    #[test]
    fn every_operation_is_described() {
        let doc = doc();
        let operations = each_operation(&doc);
        assert!(operations.len() >= 45, "{}", operations.len());
        let mut ids = std::collections::HashSet::new();
        for (method, path, op) in &operations {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(ids.insert(id.to_owned()), "{method} {path}: operationId {id} twice");
            assert!(op["summary"].is_string(), "{method} {path}: no summary");
            assert!(op["tags"][0].is_string(), "{method} {path}: no tag");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{method} {path}: no success answer"
            );
            assert!(responses.contains_key("503"), "{method} {path}");
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    let name = parameter["name"].as_str().unwrap();
                    assert!(path.contains(&format!("{{{name}}}")), "{method} {path}: {name}");
                }
            }
            for piece in path.split('/').filter(|p| p.starts_with('{')) {
                let name = piece.trim_matches(['{', '}']);
                assert!(
                    op["parameters"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path")),
                    "{method} {path}: path parameter {name} undescribed"
                );
            }
        }
    }

    /// docs/api.md, the overview, names every operation of the document as `` `METHOD /path``,
    /// and no operation the document does not have.
    #[test]
    fn the_overview_names_every_operation() {
        let overview = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
        let doc = doc();
        let documented: std::collections::BTreeSet<(String, String)> = each_operation(&doc)
            .into_iter()
            .map(|(method, path, _)| (method.to_uppercase(), path))
            .collect();
        let mut named = std::collections::BTreeSet::new();
        for piece in overview.split('`').skip(1).step_by(2) {
            let Some((method, rest)) = piece.split_once(' ') else {
                continue;
            };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) || !rest.starts_with('/') {
                continue;
            }
            let path = rest.split(['?', ' ']).next().unwrap();
            if ["/metrics", "/healthz"].contains(&path) {
                continue;
            }
            named.insert((method.to_owned(), path.to_owned()));
        }
        let missing: Vec<_> = documented.difference(&named).collect();
        assert!(missing.is_empty(), "docs/api.md does not name {missing:?}");
        let unknown: Vec<_> = named.difference(&documented).collect();
        assert!(
            unknown.is_empty(),
            "docs/api.md names what the API does not have: {unknown:?}"
        );
    }

    /// The browser application's types (web/src/api-types.ts) are what openapi-typescript makes
    /// of this document: a change of the API shows in the front end's types, and `npm run build`
    /// then names every page it breaks.
    #[test]
    fn the_front_ends_types_are_generated_from_this_document() {
        use std::io::Write;
        use std::process::{Command, Stdio};

        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
        let generator = web.join("node_modules/.bin/openapi-typescript");
        if else_tests::require(generator.exists().then_some(()), "web/node_modules (cd web && npm ci)").is_none() {
            return;
        }
        let mut check = Command::new("npm")
            .args(["run", "--silent", "api-types:check"])
            .current_dir(&web)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("npm runs");
        let json = serde_json::to_string(&document()).unwrap();
        check.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "web/src/api-types.ts is not what the API's document gives: regenerate it with \
             `cd web && npm run api-types`, then `npm run build` names the pages to adapt.\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Answers carry their `Option` fields (null when none), requests may leave them out.
    #[test]
    fn nullable_fields_of_answers_are_required_and_those_of_requests_optional() {
        let doc = doc();
        let schema = |name: &str| doc["components"]["schemas"][name].clone();
        let required = |name: &str| -> Vec<String> {
            serde_json::from_value(schema(name)["required"].clone()).unwrap_or_default()
        };
        // An answer: every field there, null or not.
        assert!(required("MessageRow").contains(&"client_ip".to_owned()));
        assert_eq!(
            schema("MessageRow")["properties"]["client_ip"]["type"],
            serde_json::json!(["string", "null"])
        );
        // A field serde leaves out when it has nothing: optional, never null.
        assert!(!required("Server").contains(&"health".to_owned()));
        assert!(schema("Server")["properties"]["health"]["$ref"].is_string());
        // A request body, and what it refers to: `Option` stays optional.
        assert!(required("UserChanges").is_empty());
        assert!(!required("AgentSecrets").contains(&"read_community".to_owned()));
        // A hop is shown in full or restricted, and says which.
        let hop = schema("Hop");
        assert_eq!(
            hop["oneOf"][1]["properties"]["restricted"]["enum"],
            serde_json::json!([true])
        );
        assert_eq!(hop["oneOf"][0]["allOf"][0]["$ref"], "#/components/schemas/HopDetail");
    }

    /// The application with a database that is not there: enough for what is answered before
    /// any query (an unknown route, a missing session).
    fn application() -> Router {
        let settings = crate::Settings {
            config: Default::default(),
            database_url: Some("postgresql://nobody@127.0.0.1:9/nothing".into()),
        };
        let state = AppState::new(crate::web::pool(&settings).unwrap(), settings.config.clone(), None).unwrap();
        crate::web::router(state)
    }

    async fn status_of(app: &Router, method: &str, path: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::builder()
            .method(method.to_uppercase().parse::<Method>().unwrap())
            .uri(format!("/api/v1{path}"))
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    /// The router serves every documented operation (as documented: without a session, one that
    /// needs it answers 401), and no method the document does not list: a route without its
    /// annotation, or an annotation on the wrong handler, fails here.
    #[tokio::test]
    async fn the_router_serves_exactly_the_documented_operations() {
        let app = application();
        let doc = doc();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let concrete: String = path
                .split('/')
                .map(|part| if part.starts_with('{') { "1" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            for method in ["get", "post", "put", "patch", "delete"] {
                let (status, body) = status_of(&app, method, &concrete).await;
                let Some(op) = item.get(method) else {
                    assert_eq!(
                        status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {path} is not documented"
                    );
                    continue;
                };
                let public = op["security"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r == &serde_json::json!({}));
                if public {
                    assert!(
                        ![
                            StatusCode::UNAUTHORIZED,
                            StatusCode::NOT_FOUND,
                            StatusCode::METHOD_NOT_ALLOWED
                        ]
                        .contains(&status),
                        "{method} {path}: {status}"
                    );
                } else {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
                    assert!(body["error"].is_string(), "{method} {path}: {body}");
                }
            }
        }
        // And what is not documented is not there.
        assert_eq!(
            status_of(&app, "get", "/no/such/endpoint").await.0,
            StatusCode::NOT_FOUND
        );
    }
}
