//! `elsed`: ELSE's daemon and command line.

fn main() {}
