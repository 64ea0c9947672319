//! The OpenAPI document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! annotations: add each new handler to `paths(...)` below (its request and answer types follow).

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{api, auth};

#[derive(OpenApi)]
#[openapi(
    info(title = "ELSE API", version = "1", description = "Postfix logs of a whole fleet, per message. \
        Log in with POST /auth/login; send the `X-CSRF-Token` header with every POST, PUT, PATCH and DELETE."),
    servers((url = "/api/v1")),
    paths(
        auth::login, auth::logout, auth::me, auth::password,
        api::servers::list,
        api::admin::list_users, api::admin::create_user, api::admin::update_user, api::admin::delete_user,
        api::admin::list_groups, api::admin::create_group, api::admin::update_group, api::admin::delete_group,
        api::admin::update_server, api::admin::list_audit,
    ),
    modifiers(&SessionSecurity),
    tags(
        (name = "auth", description = "Logging in and out, one's own account"),
        (name = "servers", description = "The servers of the fleet"),
        (name = "admin", description = "Administrators only; every change is audited"),
    )
)]
pub struct ApiDoc;

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

/// `GET /api/v1/openapi.json`: public, it describes the API and holds no data.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn every_reference_resolves() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
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
}
