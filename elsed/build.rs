//! Build steps of elsed; each lives in its own module under `build/`.

#[path = "build/snmp.rs"]
mod snmp;
#[path = "build/web.rs"]
mod web;

fn main() {
    snmp::build();
    web::build();
}
