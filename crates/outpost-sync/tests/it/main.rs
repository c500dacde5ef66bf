//! Integration tests of the sync engine against an in-process `outpost-server`.
