//! The replay against the real console (waits for outpost-app's Console).
