//! The text format: pflogsumm's look (titled, underlined sections of aligned columns).

use super::sections::{tables, Table};
use super::Report;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for table in tables(report) {
        draw(&mut out, &table);
    }
    out
}

fn draw(out: &mut String, table: &Table) {
    out.push_str(&format!(
        "\n{}\n{}\n",
        table.title,
        "-".repeat(table.title.chars().count())
    ));
    if table.rows.is_empty() {
        out.push_str(" none\n");
        return;
    }
    let columns = table.header.len();
    let mut widths: Vec<usize> = table.header.iter().map(|h| h.chars().count()).collect();
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let last = i + 1 == columns;
            if table.numeric[i] {
                text.push_str(&format!(" {cell:>width$}", width = widths[i]));
            } else if last {
                text.push_str(&format!(" {cell}"));
            } else {
                text.push_str(&format!(" {cell:<width$}", width = widths[i]));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    if table.header.iter().any(|h| !h.is_empty()) {
        out.push_str(&line(table.header.clone()));
    }
    for row in &table.rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
}
