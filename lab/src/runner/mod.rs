//! runner: under construction.
