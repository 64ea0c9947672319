//! Who is asking: the kinds of account, and the authenticated account behind a request.

/// The kinds of account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, and the active operations (users, groups, servers, queue actions, whitelists).
    Admin,
    /// Messages of their groups' servers and domains.
    User,
    /// Mail from or to their own addresses (the original's "Messaging Center").
    Enduser,
}

impl Role {
    /// The name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Enduser => "enduser",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "enduser" => Ok(Role::Enduser),
            _ => Err(format!("'{text}' is not a role (admin, user or enduser)")),
        }
    }
}

/// The authenticated account behind a request: what the session extractor (`auth`) makes of
/// the cookie. Taking a `Caller` (or the web application's `Admin`) is what makes a handler require a
/// login, and, for a request that changes something, a matching `X-CSRF-Token`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub login: String,
    pub role: Role,
    pub scope: super::Scope,
    /// The session the request came with (to end it, or to keep it when the others end).
    pub session: Session,
}

/// A logged-in browser, as the server knows it.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie's token: the row of `web_sessions`.
    pub id: Vec<u8>,
    pub csrf_token: String,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
