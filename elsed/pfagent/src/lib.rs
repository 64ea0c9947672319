//! `else-pfagent`, the program snmpd runs on each Postfix host for ELSE (`main.rs`), and the MIB
//! it serves ([`mib`]): the objects, their numbers and what a queue id is, which elsed uses to
//! poll and act. Standard library only, so that the agent links neither net-snmp nor a database
//! client and builds without elsed's build steps (bindgen, npm).

#![deny(unsafe_code)]

pub mod mib;
