//! `outpost-server`: the central server and admin tool.

fn main() {}
