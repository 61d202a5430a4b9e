//! scenario: under construction.
