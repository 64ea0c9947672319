//! Lists page on the server: `page` (1-based) and `per_page` (default 50, at most 500) in, and
//! `{total, page, per_page, items}` out (docs/api.md, "Conventions").

use serde::{Deserialize, Serialize};

use super::error::ApiError;

pub const DEFAULT_PER_PAGE: u32 = 50;
pub const MAX_PER_PAGE: u32 = 500;

/// `page` and `per_page` as the query string gives them (checked by [`PageParams::window`]).
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-based page number (default 1).
    pub page: Option<u32>,
    /// Items per page (default 50, at most 500).
    pub per_page: Option<u32>,
}

/// A checked page: what to put in LIMIT and OFFSET, and what to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub page: u32,
    pub per_page: u32,
}

impl PageParams {
    pub fn window(&self) -> Result<Window, ApiError> {
        let page = self.page.unwrap_or(1);
        if page == 0 {
            return Err(ApiError::bad_param("page", "page starts at 1"));
        }
        let per_page = self.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(ApiError::bad_param(
                "per_page",
                format!("per_page must be between 1 and {MAX_PER_PAGE}"),
            ));
        }
        Ok(Window { page, per_page })
    }
}

impl Window {
    pub fn limit(&self) -> i64 {
        i64::from(self.per_page)
    }

    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }

    pub fn page<T>(&self, total: i64, items: Vec<T>) -> Page<T> {
        Page {
            total,
            page: self.page,
            per_page: self.per_page,
            items,
        }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
    pub items: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_checked_and_offset() {
        let w = PageParams::default().window().unwrap();
        assert_eq!((w.page, w.per_page, w.offset()), (1, 50, 0));
        let w = PageParams {
            page: Some(3),
            per_page: Some(20),
        }
        .window()
        .unwrap();
        assert_eq!((w.limit(), w.offset()), (20, 40));
        for (page, per_page, field) in [
            (Some(0), None, "page"),
            (None, Some(0), "per_page"),
            (None, Some(501), "per_page"),
        ] {
            let e = PageParams { page, per_page }.window().unwrap_err();
            assert_eq!(e.field, Some(field));
        }
    }
}
