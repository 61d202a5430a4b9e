//! dr: under construction.
