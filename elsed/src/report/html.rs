//! The HTML format: one self-contained page (no scripts, no external resources) that can be mailed.

use super::sections::tables;
use super::Report;

pub fn render(report: &Report) -> String {
    let scope = &report.scope;
    let mut title = "Postfix log summary".to_owned();
    for (what, value) in [
        ("host", &scope.host),
        ("domain", &scope.domain),
        ("since", &scope.since),
        ("until", &scope.until),
    ] {
        if let Some(value) = value {
            title.push_str(&format!(", {what} {value}"));
        }
    }
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n\
         <style>body{{font-family:sans-serif}}table{{border-collapse:collapse;margin-bottom:1em}}\
         td,th{{border:1px solid #ccc;padding:2px 6px}}td.n{{text-align:right}}</style></head>\n\
         <body><h1>{t}</h1>\n",
        t = escape(&title)
    );
    for table in tables(report) {
        out.push_str(&format!("<h2>{}</h2>\n", escape(&table.title)));
        if table.rows.is_empty() {
            out.push_str("<p>none</p>\n");
            continue;
        }
        out.push_str("<table>\n");
        if table.header.iter().any(|h| !h.is_empty()) {
            out.push_str("<tr>");
            for h in &table.header {
                out.push_str(&format!("<th>{}</th>", escape(h)));
            }
            out.push_str("</tr>\n");
        }
        for row in &table.rows {
            out.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let class = if table.numeric[i] { " class=\"n\"" } else { "" };
                out.push_str(&format!("<td{class}>{}</td>", escape(cell)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_in_log_text_is_escaped() {
        assert_eq!(super::escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }
}
