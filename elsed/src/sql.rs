//! SQL built from parts: the shape of a query is assembled in Rust, every value is a bound
//! parameter. Shared by the command line and the web API, so that no caller formats a value
//! into SQL text.

use tokio_postgres::types::ToSql;

/// A query under construction: conditions (joined with AND) and their bound parameters.
#[derive(Default)]
pub struct Query {
    pub conditions: Vec<String>,
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Query {
    /// Binds a value and returns its placeholder (`$3`).
    pub fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// Adds a condition (already written with placeholders from [`Query::bind`]).
    pub fn and(&mut self, condition: impl Into<String>) {
        self.conditions.push(condition.into());
    }

    /// Adds `condition` with its `{}` replaced by the placeholder of `value`, when there is one.
    pub fn and_bound<T: ToSql + Sync + Send + 'static>(&mut self, condition: &str, value: Option<T>) {
        if let Some(value) = value {
            let placeholder = self.bind(value);
            self.and(condition.replace("{}", &placeholder));
        }
    }

    /// `WHERE a AND b`, or nothing when there is no condition.
    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// [`Query::where_clause`], leaving no condition: the parameters stay, for the next part of
    /// the same statement (a `UNION ALL`'s other branch).
    pub fn take_where_clause(&mut self) -> String {
        let clause = self.where_clause();
        self.conditions.clear();
        clause
    }

    /// The parameters, as tokio-postgres takes them.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

/// `%`, `_` and `\` taken literally in a LIKE pattern (the default escape character is `\`).
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A `LIKE`/`ILIKE` pattern matching `text` anywhere, taken literally.
pub fn contains_pattern(text: &str) -> String {
    format!("%{}%", like_escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_are_literal() {
        assert_eq!(like_escape(r"50%_off\x"), r"50\%\_off\\x");
        assert_eq!(like_escape("plain"), "plain");
    }

    #[test]
    fn placeholders_follow_binding_order() {
        let mut q = Query::default();
        let a = q.bind(1_i32);
        let b = q.bind("x".to_owned());
        q.and(format!("a = {a}"));
        q.and(format!("b = {b}"));
        assert_eq!(q.where_clause(), "WHERE a = $1 AND b = $2");
        assert_eq!(q.params().len(), 2);
        q.and_bound("c >= {} AND c < {} + 1", Some(3_i64));
        q.and_bound("d = {}", None::<i64>);
        assert_eq!(q.where_clause(), "WHERE a = $1 AND b = $2 AND c >= $3 AND c < $3 + 1");
    }
}
