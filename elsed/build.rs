//! Build steps of elsed; each lives in its own module under `build/`.

#[path = "build/web.rs"]
mod web;

fn main() {
    web::build();
}
