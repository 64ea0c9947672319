//! `elsed`: ELSE's daemon and command line.

mod greylist;

fn main() {}
