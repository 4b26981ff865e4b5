//! Test helpers: start a lode process or an in-process node on loopback, and talk to it
